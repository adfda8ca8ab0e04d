// SPDX-License-Identifier: MIT
// Fleet: one command on many remote hosts at once, each host its own transport, sandbox and result.
#pragma once

#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <shannot/allowlist.hpp>
#include <shannot/cancel.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/unique_fd.hpp>
#include <shannot/error.hpp>
#include <shannot/output.hpp>
#include <shannot/process_result.hpp>
#include <shannot/profile.hpp>
#include <shannot/sandbox_manager.hpp>
#include <shannot/session.hpp>
#include <shannot/ssh_connection.hpp>
#include <shannot/transport/openssh_process.hpp>

namespace shannot {

/// One host of a fleet: the name results carry (the destination as the caller wrote it, an
/// inventory name, a remote's name) and how to reach it.
struct FleetHost {
    std::string name{};
    SshConnection connection{};
};

/// How many hosts a fan-out works on at once by default: 16 per core (a host in flight mostly
/// waits on the network or the remote; its CPU is the ssh handshake), at least 8, at most 256, and
/// no more than the descriptor limit allows at `descriptors_per_host` each (docs/fleet.md).
inline constexpr std::size_t descriptors_per_host = 16;
[[nodiscard]] inline std::size_t default_fanout() {
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    std::size_t n = std::clamp<std::size_t>(16 * cores, 8, 256);
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur > 64)
        n = std::min<std::size_t>(n, std::max<std::size_t>(1, (limit.rlim_cur - 64) / descriptors_per_host));
    return n;
}

/// How a fan-out runs. The defaults: default_fanout() hosts at once, no deadline but the run's.
struct FleetOptions {
    std::size_t fanout = 0;  ///< hosts in flight at once; 0: default_fanout()
    /// Per host, from its start: connecting and running. A host past it is stopped (its command
    /// killed, or its connection attempt abandoned) and reported as timed out, alone.
    std::optional<std::chrono::milliseconds> host_timeout{};
    /// The whole fan-out: every host still running then is stopped; hosts not started never are.
    std::optional<std::chrono::milliseconds> timeout{};
    /// Cancels the fan-out from any thread: as the overall deadline, now.
    std::optional<CancelToken> cancel{};
};

/// One host's outcome: its result (the command ran: how it ended and what it printed) or its
/// error (it could not be reached, refused the key, changed its host key, ...), naming the host.
struct HostResult {
    std::size_t index = 0;  ///< the host's position in the fleet
    std::string host{};
    Result<ProcessResult> result{};
    std::chrono::steady_clock::time_point started{}, finished{};  ///< when this host's turn began and ended
};

namespace detail {

/// An error of one host, its message naming the host when it does not already.
[[nodiscard]] inline Error host_error(const std::string& host, Error e) {
    if (e.message.find(host) == std::string::npos) e.message = "host " + host + ": " + e.message;
    return e;
}

/// The fan-out engine: `work(index, options)` runs host `index` with RunOptions whose cancel
/// token is that host's; at most `fanout` at once, on as many threads; `on_result(HostResult&)`
/// is called as each host ends (serialised, on the thread that ran it). This thread watches the
/// deadlines and the caller's cancel and stops hosts through their tokens.
template <class Work, class OnResult>
std::vector<HostResult> fan_out(const std::vector<std::string>& names, const RunOptions& base,
                                const FleetOptions& fleet, Work&& work, OnResult&& on_result) {
    using Clock = std::chrono::steady_clock;
    const std::size_t n = names.size();
    std::vector<HostResult> results(n);
    if (n == 0) return results;
    struct Slot {
        CancelToken token;
        bool active = false, done = false, timed_out = false;
        Clock::time_point deadline = Clock::time_point::max();
    };
    std::vector<Slot> slots(n);
    std::mutex mutex;
    std::size_t next = 0, finished = 0;
    bool stopping = false;
    const char* stop_reason = nullptr;
    // Wakes the scheduling loop: a pipe (POSIX has no eventfd), both ends non-blocking, so that
    // a poke into a full pipe (already readable) returns at once. Without one, the loop polls.
    UniqueFd wake, wake_write;
    if (!make_pipe(wake, wake_write) || !set_nonblocking(wake.get()) || !set_nonblocking(wake_write.get())) {
        wake.reset();
        wake_write.reset();
    }
    const auto poke = [&] {
        const char one = 1;
        if (wake_write) [[maybe_unused]]
            auto r = ::write(wake_write.get(), &one, sizeof one);
    };
    // The caller's token (FleetOptions' or, failing that, RunOptions'); a plain value and a flag,
    // not std::optional: g++ 12 -O2 misreads an optional token here as maybe-uninitialized.
    const bool has_caller = fleet.cancel.has_value() || base.cancel.has_value();
    const CancelToken caller = fleet.cancel ? *fleet.cancel : base.cancel ? *base.cancel : CancelToken{};

    const auto worker = [&] {
        while (true) {
            std::unique_lock lock(mutex);
            if (next >= n) return;
            const std::size_t i = next++;
            auto& slot = slots[i];
            results[i].index = i;
            results[i].host = names[i];
            results[i].started = Clock::now();
            if (stopping) {
                results[i].finished = results[i].started;
                results[i].result = tl::make_unexpected(
                    Error{errc::cancelled, "host " + names[i] + ": not started: " + stop_reason, nullptr});
                ++finished;
                on_result(results[i]);
                poke();
                continue;
            }
            slot.active = true;
            if (fleet.host_timeout) slot.deadline = results[i].started + *fleet.host_timeout;
            lock.unlock();
            poke();
            RunOptions options = base;
            options.cancel = slot.token;
            if (fleet.host_timeout && (!options.timeout || *options.timeout > *fleet.host_timeout))
                options.timeout = *fleet.host_timeout;
            Result<ProcessResult> r = work(i, options);
            lock.lock();
            slot.active = false;
            slot.done = true;
            if (r && r->cancelled && slot.timed_out) {
                r->cancelled = false;
                r->timed_out = true;
            } else if (!r && r.error().code == errc::cancelled && slot.timed_out) {
                r = tl::make_unexpected(Error{
                    errc::connection_failed,
                    "did not connect within the host deadline (" + std::to_string(fleet.host_timeout->count()) + " ms)",
                    nullptr});
            }
            if (!r) r = tl::make_unexpected(host_error(names[i], std::move(r.error())));
            results[i].result = std::move(r);
            results[i].finished = Clock::now();
            ++finished;
            on_result(results[i]);
            poke();
        }
    };
    const std::size_t fanout = std::max<std::size_t>(1, fleet.fanout ? fleet.fanout : default_fanout());
    std::vector<std::thread> threads;
    const std::size_t count = std::min(n, fanout);
    threads.reserve(count);
    for (std::size_t t = 0; t < count; ++t) threads.emplace_back(worker);

    const auto overall = fleet.timeout ? Clock::now() + *fleet.timeout : Clock::time_point::max();
    while (true) {
        std::unique_lock lock(mutex);
        if (finished == n) break;
        const auto now = Clock::now();
        const bool cancelled = has_caller && caller.cancelled();
        if (!stopping && (cancelled || now >= overall)) {
            stopping = true;
            stop_reason = cancelled ? "the fan-out was cancelled" : "the fan-out's deadline passed";
            for (auto& s : slots)
                if (s.active) s.token.cancel();
        }
        auto wake_at = stopping ? Clock::time_point::max() : overall;
        for (auto& s : slots) {
            if (!s.active || s.timed_out) continue;
            if (now >= s.deadline) {
                s.timed_out = true;
                s.token.cancel();
            } else {
                wake_at = std::min(wake_at, s.deadline);
            }
        }
        lock.unlock();
        pollfd fds[2] = {{wake.get(), POLLIN, 0}, {has_caller ? caller.fd() : -1, POLLIN, 0}};
        int wait_ms = 1000;
        if (wake_at != Clock::time_point::max())
            wait_ms = static_cast<int>(std::clamp<long long>(
                std::chrono::ceil<std::chrono::milliseconds>(wake_at - Clock::now()).count(), 0, 1000));
        if (::poll(fds, has_caller && !stopping ? 2 : 1, wake ? wait_ms : std::min(wait_ms, 10)) > 0 &&
            fds[0].revents) {
            char drained[64];
            while (::read(wake.get(), drained, sizeof drained) > 0) {
            }
        }
    }
    for (auto& t : threads) t.join();
    return results;
}

}  // namespace detail

/// Warm sessions on every host of a fleet (BasicFleet::open_sessions): one sandbox per host, each
/// command run in all of them at once. A host whose session did not open keeps its error, which
/// every run reports for it; the others go on.
template <class Admission = GlobAllowlist, class Output = HeadTailCapture>
class BasicFleetSessions {
public:
    using session_type = SandboxSession<OpenSshProcessTransport, Admission, Output>;

    BasicFleetSessions(std::vector<std::string> names, std::vector<Result<session_type>> sessions)
        : names_(std::move(names)), sessions_(std::move(sessions)) {}

    [[nodiscard]] std::size_t size() const noexcept { return sessions_.size(); }
    [[nodiscard]] const std::vector<std::string>& hosts() const noexcept { return names_; }
    /// Host `i`'s session, or why it did not open.
    [[nodiscard]] Result<session_type>& session(std::size_t i) { return sessions_.at(i); }

    /// Runs `command` in every host's session, as BasicFleet::run does with fresh sandboxes.
    template <class F>
    std::vector<HostResult> run(std::vector<std::string> command, RunOptions options, FleetOptions fleet,
                                F&& on_result) {
        return detail::fan_out(
            names_, options, fleet,
            [&](std::size_t i, const RunOptions& o) -> Result<ProcessResult> {
                if (!sessions_[i]) return tl::make_unexpected(sessions_[i].error());
                return sessions_[i]->run(command, o);
            },
            std::forward<F>(on_result));
    }
    std::vector<HostResult> run(std::vector<std::string> command, RunOptions options = {}, FleetOptions fleet = {}) {
        return run(std::move(command), std::move(options), std::move(fleet), [](const HostResult&) {});
    }

    /// Ends every session.
    void close() {
        for (auto& s : sessions_)
            if (s) s->close();
    }

private:
    std::vector<std::string> names_;
    std::vector<Result<session_type>> sessions_;
};

/// One profile, many remote hosts: `run()` runs a command on all of them at once, each host in
/// its own sandbox through its own transport (and so its own connections), at most
/// FleetOptions::fanout hosts at a time. Results come to a callback as each host ends and are
/// returned together, in the fleet's order. A host that cannot be reached, refuses the key or
/// changed its host key fails alone with its own Error naming it; the others go on. Cancel or
/// the overall deadline stops every host: commands are killed on the remote (nothing is left
/// running), connection attempts abandoned, hosts not started never start.
/// Connections are kept between run() calls (a second run costs a sandbox start per host, not
/// a login) until close() or the fleet's end. Hosts with ConnectStyle::master_first (the
/// SshConnection default) are switched to session_first: a host that gets one command costs one
/// ssh login and one local process (docs/fleet.md).
template <class Admission = GlobAllowlist, class Output = HeadTailCapture>
class BasicFleet {
public:
    using sandbox_type = SandboxManager<OpenSshProcessTransport, Admission, Output>;
    using profile_type = SandboxProfile<OpenSshProcessTransport>;
    using sessions_type = BasicFleetSessions<Admission, Output>;

    BasicFleet(profile_type profile, std::vector<FleetHost> hosts, Admission admission = Admission{}) {
        names_.reserve(hosts.size());
        sandboxes_.reserve(hosts.size());
        for (auto& h : hosts) {
            names_.push_back(h.name.empty() ? ssh_destination(h.connection) : h.name);
            if (h.connection.connect_style == ConnectStyle::master_first)
                h.connection.connect_style = ConnectStyle::session_first;
            sandboxes_.emplace_back(profile, OpenSshProcessTransport(std::move(h.connection)), admission);
        }
    }

    [[nodiscard]] std::size_t size() const noexcept { return names_.size(); }
    [[nodiscard]] const std::vector<std::string>& hosts() const noexcept { return names_; }
    /// Host `i`'s sandbox (its transport holds its connections).
    [[nodiscard]] sandbox_type& sandbox(std::size_t i) { return sandboxes_.at(i); }

    /// Runs `command` on every host; `on_result(const HostResult&)` is called as each ends
    /// (from the thread that ran it, one call at a time). Returns every host's result, in order.
    template <class F>
    std::vector<HostResult> run(std::vector<std::string> command, RunOptions options, FleetOptions fleet,
                                F&& on_result) {
        return detail::fan_out(
            names_, options, fleet, [&](std::size_t i, const RunOptions& o) { return sandboxes_[i].run(command, o); },
            std::forward<F>(on_result));
    }
    std::vector<HostResult> run(std::vector<std::string> command, RunOptions options = {}, FleetOptions fleet = {}) {
        return run(std::move(command), std::move(options), std::move(fleet), [](const HostResult&) {});
    }

    /// Opens a warm session on every host (at most `fleet.fanout` opening at once); see
    /// BasicFleetSessions. `on_result` sees each host's opening (an empty result, or its error).
    template <class F>
    [[nodiscard]] sessions_type open_sessions(SessionOptions session_options, FleetOptions fleet, F&& on_result) {
        std::vector<Result<typename sessions_type::session_type>> sessions;
        sessions.reserve(names_.size());
        for (std::size_t i = 0; i < names_.size(); ++i) sessions.emplace_back(fail(errc::session_closed, "not opened"));
        detail::fan_out(
            names_, RunOptions{}, fleet,
            [&](std::size_t i, const RunOptions&) -> Result<ProcessResult> {
                sessions[i] = sandboxes_[i].open_session(session_options);
                if (!sessions[i]) {
                    sessions[i] = tl::make_unexpected(detail::host_error(names_[i], sessions[i].error()));
                    return tl::make_unexpected(sessions[i].error());
                }
                return ProcessResult{};
            },
            std::forward<F>(on_result));
        return sessions_type(names_, std::move(sessions));
    }
    [[nodiscard]] sessions_type open_sessions(SessionOptions session_options = {}, FleetOptions fleet = {}) {
        return open_sessions(std::move(session_options), std::move(fleet), [](const HostResult&) {});
    }

    /// Ends every host's connections (kept ones, SshConnection::persist, are handed back).
    void close() {
        for (auto& s : sandboxes_) s.transport().close();
    }

private:
    std::vector<std::string> names_;
    std::vector<sandbox_type> sandboxes_;
};

/// The fleet users meet first.
using Fleet = BasicFleet<>;
using FleetSessions = BasicFleetSessions<>;

}  // namespace shannot
