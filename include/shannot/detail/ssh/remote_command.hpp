// SPDX-License-Identifier: MIT
// RemoteCommand: one fresh run on a borrowed dispatcher, as the run loop sees it.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/command_frames.hpp>
#include <shannot/detail/posix/process.hpp>
#include <shannot/detail/posix/timer.hpp>
#include <shannot/detail/scripts/protocol.hpp>
#include <shannot/detail/shell_quote.hpp>
#include <shannot/detail/ssh/dispatcher_pool.hpp>
#include <shannot/error.hpp>
#include <shannot/limits.hpp>
#include <shannot/process_result.hpp>

namespace shannot::detail {

/// One command on a borrowed dispatcher. Its output arrives on the dispatcher's pipes and
/// ends with this command's frames; exit_fd() is its own timer (see CommandFrames).
template <class Deferred>
class RemoteCommand {
    using DispatcherPool = detail::DispatcherPool<Deferred>;
    using Dispatcher = detail::Dispatcher<Deferred>;

public:
    static constexpr auto kill_fallback = CommandFrames::kill_fallback;

    /// `mechanism`: how the remote enforces limits (its ready frame), when the run has limits.
    RemoteCommand(std::shared_ptr<DispatcherPool> pool, std::unique_ptr<Dispatcher> dispatcher, std::string nonce,
                  std::vector<std::string> argv, OneShotTimer timer, std::string mechanism = {})
        : pool_(std::move(pool)),
          dispatcher_(std::move(dispatcher)),
          argv_(std::move(argv)),
          timer_(std::move(timer)),
          frames_(nonce, timer_.ref(), &is_end_report),
          mechanism_(std::move(mechanism)) {}
    RemoteCommand(RemoteCommand&&) noexcept = default;
    RemoteCommand& operator=(RemoteCommand&& other) noexcept {
        if (this != &other) {
            give_back(false);
            pool_ = std::move(other.pool_);
            dispatcher_ = std::move(other.dispatcher_);
            argv_ = std::move(other.argv_);
            timer_ = std::move(other.timer_);
            frames_ = std::move(other.frames_);
            ssh_errors_ = std::move(other.ssh_errors_);
            mechanism_ = std::move(other.mechanism_);
        }
        return *this;
    }
    ~RemoteCommand() { give_back(false); }

    [[nodiscard]] int stdin_fd() const { return -1; }  // input was staged on the remote by launch()
    [[nodiscard]] int stdout_fd() const { return dispatcher_ ? dispatcher_->child.out.get() : -1; }
    [[nodiscard]] int stderr_fd() const { return dispatcher_ ? dispatcher_->child.err.get() : -1; }
    [[nodiscard]] int exit_fd() const { return timer_.fd(); }
    [[nodiscard]] const std::vector<std::string>& argv() const { return argv_; }
    void close_stdin() {}

    /// Asks the dispatcher to signal bwrap; the sandbox dies with it (--die-with-parent).
    void terminate() { request_signal(protocol::dispatcher::term_signal, StopLevel::terminate); }
    /// As terminate(), and if the remote does not answer within kill_fallback the dispatcher is
    /// dropped: closing the channel makes the dispatcher kill the command itself.
    void kill() { request_signal(protocol::dispatcher::kill_signal, StopLevel::kill); }

    void filter_output(StreamKind kind, std::string_view in, std::string& out) {
        const auto before = out.size();
        frames_.feed(kind, in, out);
        if (kind == StreamKind::err) keep_tail(std::string_view(out).substr(before));
    }
    void finish_output(StreamKind kind, std::string& out) {
        const auto before = out.size();
        frames_.finish(kind, out);  // EOF on a dispatcher stream: it is gone
        if (kind == StreamKind::err) keep_tail(std::string_view(out).substr(before));
    }
    [[nodiscard]] bool output_finished(StreamKind kind) const { return frames_.finished(kind); }

    /// How this run's limits were enforced (after wait()): the exit report says whether the run
    /// was in the remote's pids cgroup; a run that was not has no bound on its process count.
    [[nodiscard]] std::string_view limits_mechanism() const {
        if (mechanism_.empty() || mechanism_ == shannot::limits_mechanism::unknown) return mechanism_;
        return report_field(2) == 1 ? std::string_view(mechanism_) : shannot::limits_mechanism::no_process_limit;
    }
    /// Whether the run's pids cgroup refused a fork (after wait()).
    [[nodiscard]] bool processes_limit_hit() const { return report_field(3) == 1; }

    ExitInfo wait() {
        ExitInfo info;
        if (frames_.complete()) {
            info = from_report();
            // The dispatcher could not pass the filter it holds: send it again next time.
            const auto& reports = frames_.err_payloads();
            if (dispatcher_ &&
                std::find(reports.begin(), reports.end(), protocol::dispatcher::no_filter) != reports.end())
                dispatcher_->kept_filter.clear();
            // What the dispatcher found of the files it was asked about (once per dispatcher).
            for (const auto& payload : reports)
                if (pool_ && protocol::dispatcher::is_files_report(payload)) pool_->keep_files(payload);
            give_back(true);
            return info;
        }
        // The dispatcher broke, or a kill went unanswered: it cannot carry another command.
        std::optional<int> status;
        if (dispatcher_ && dispatcher_->child.process.pid() > 0) {
            auto& ssh = dispatcher_->child.process;
            pollfd p{ssh.exit_fd(), POLLIN, 0};
            const int wait_ms = frames_.stopped() != StopLevel::none ? 0 : 2000;
            // Given wait_ms to end by itself (POLLIN), else killed; a stale descriptor (POLLNVAL) is no proof.
            if (::poll(&p, 1, wait_ms) <= 0 || p.revents != POLLIN) ssh.signal(SIGKILL);
            status = ssh.reap();
        }
        give_back(false);
        // We asked it to stop; the local side gave up waiting for the remote.
        if (frames_.stopped() != StopLevel::none) {
            info.kind = ExitInfo::Kind::signaled;
            info.signal = frames_.stop_signal();
            return info;
        }
        info.kind = ExitInfo::Kind::transport_failed;
        info.error = classify_ssh_failure(ssh_errors_);
        if (info.error == errc::transport_error) info.error = errc::connection_failed;
        const auto line = last_line(ssh_errors_);
        const int code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
        info.detail = "the ssh session ended mid-command (ssh exit status " + std::to_string(code) + ")" +
                      (line.empty() ? std::string(": connection lost?") : ": " + line);
        ssh_errors_.clear();  // the message carries them
        return info;
    }

private:
    void request_signal(std::string_view name, StopLevel level) {
        if (!dispatcher_) return;
        const auto line = dispatcher_request({std::string(protocol::dispatcher::signal_verb), std::string(name)});
        frames_.request_stop(dispatcher_->child.in.get(), line, level);
    }

    /// The dispatcher's last frame on stderr: its exit report, or why bwrap did not start.
    static bool is_end_report(std::string_view p) {
        namespace words = protocol::dispatcher;
        return p == words::no_bwrap || p == words::no_seccomp || p == words::no_stage || p == words::no_args ||
               p == words::no_limits || p == words::no_filter || protocol::is_exit_report(p);
    }

    /// Field `index` of the exit report "exit RC SETUP CGROUP HIT" (0: RC), -1 when absent.
    [[nodiscard]] int report_field(int index) const {
        for (const auto& payload : frames_.err_payloads()) {
            if (!protocol::is_exit_report(payload)) continue;
            int fields[4] = {-1, -1, -1, -1};
            std::sscanf(payload.c_str() + protocol::exit_report.size(), "%d %d %d %d", &fields[0], &fields[1],
                        &fields[2], &fields[3]);
            return fields[index];
        }
        return -1;
    }

    [[nodiscard]] ExitInfo from_report() const {
        namespace words = protocol::dispatcher;
        ExitInfo info;
        for (const auto& payload : frames_.err_payloads()) {
            if (payload == words::no_bwrap) {
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::remote_bwrap_missing;
                info.detail =
                    "bwrap is not installed on the remote host (or not on its PATH): install bubblewrap there";
                return info;
            }
            if (payload == words::no_seccomp) {
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::sandbox_setup_failed;
                info.detail = "the profile's seccomp_profile cannot be opened on the remote host";
                return info;
            }
            if (payload == words::no_stage) {
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::io_error;
                info.detail =
                    "the remote host could not store the command's input under its $TMPDIR (or /tmp): is it full?";
                return info;
            }
            if (payload == words::no_filter) {
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::io_error;
                info.detail =
                    "the remote dispatcher could not give bwrap the syscall filter (its sh made no here-document "
                    "pipe, and an old bash's here-document file in $TMPDIR could not be written: is it full?)";
                return info;
            }
            if (payload == words::no_limits) {  // a malformed LIMITS word: a bug, not the command's doing
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::transport_error;
                info.detail = "the remote dispatcher refused the run's limits as malformed";
                return info;
            }
            if (payload == words::no_args) {  // a P request went missing: a bug, not the command's doing
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::transport_error;
                info.detail = "the remote dispatcher does not hold the bwrap arguments the request names";
                return info;
            }
            int code = -1, setup = 0;  // "exit RC SETUP CGROUP HIT"
            if (!protocol::is_exit_report(payload)) continue;
            if (std::sscanf(payload.c_str() + protocol::exit_report.size(), "%d %d", &code, &setup) != 2) continue;
            if (setup == 1 || code == 0) {
                info.exit_code = code;
            } else if (code > 128) {  // bwrap itself was killed (by us, or by the remote backstop)
                info.kind = ExitInfo::Kind::signaled;
                info.signal = code - 128;
            } else {
                info.kind = ExitInfo::Kind::setup_failed;
                info.exit_code = code;
                info.error = errc::sandbox_setup_failed;
                info.detail = "bwrap on the remote host exited with status " + std::to_string(code) +
                              " before running the command (a mount failed, or the command could not be executed)";
            }
            return info;
        }
        info.kind = ExitInfo::Kind::transport_failed;
        info.error = errc::transport_error;
        info.detail = "the remote dispatcher sent no exit report";
        return info;
    }

    void give_back(bool reusable) {
        if (pool_ && dispatcher_) pool_->release(std::move(dispatcher_), reusable);
        dispatcher_.reset();
    }

    void keep_tail(std::string_view text) {
        ssh_errors_.append(text);
        if (ssh_errors_.size() > 4096) ssh_errors_.erase(0, ssh_errors_.size() - 4096);
    }

    std::shared_ptr<DispatcherPool> pool_;
    std::unique_ptr<Dispatcher> dispatcher_;
    std::vector<std::string> argv_;
    OneShotTimer timer_;  // before frames_, which refers to it
    CommandFrames frames_;
    std::string ssh_errors_;
    std::string mechanism_;  ///< the remote's, when the run has limits (see limits_mechanism())
};

/// A run's limits as the dispatcher takes them (the LIMITS word of R and S, docs/protocol.md):
/// "MEMORY_KIB CPU_SECONDS FILE_BLOCKS OPEN_FILES PROCESSES" for ulimit, which counts -v in KiB
/// and -f in 512-byte blocks (rounded down, at least 1); "" for none.
[[nodiscard]] inline std::string remote_limits(const std::optional<ResourceLimits>& limits) {
    if (!limits) return {};
    return std::to_string(std::max<std::uint64_t>(limits->memory_bytes / 1024, 1)) + " " +
           std::to_string(limits->cpu_seconds) + " " +
           std::to_string(std::max<std::uint64_t>(limits->file_size_bytes / 512, 1)) + " " +
           std::to_string(limits->open_files) + " " + std::to_string(limits->processes);
}

/// The slot of the dispatcher that holds `args` (bwrap's arguments before "--"), adding
/// the P request that stores them to `lines` when it holds them not yet. A fresh run's request
/// then carries only the command: the dispatcher reads its requests a system call per byte, and
/// a profile's arguments are most of a request. `redirections` (sh text: the copies' "5<'PATH'
/// ...") follow the arguments in the kept text; the arguments name the copies' fds and targets,
/// so they alone tell slots apart.
template <class Session>
std::size_t keep_args(Session& dispatcher, std::vector<std::string> args, std::string& lines,
                      const std::string& redirections = {}) {
    constexpr std::size_t slots = 8;
    auto& kept = dispatcher.kept_args;
    if (auto it = std::find(kept.begin(), kept.end(), args); it != kept.end())
        return static_cast<std::size_t>(it - kept.begin());
    std::size_t slot = kept.size();
    if (slot < slots) {
        kept.push_back({});
    } else {
        slot = dispatcher.next_slot;
        dispatcher.next_slot = (dispatcher.next_slot + 1) % slots;
    }
    auto text = dispatcher_request(args);
    text.pop_back();  // the newline
    if (!redirections.empty()) text += ' ' + redirections;
    lines += dispatcher_request({std::string(protocol::dispatcher::keep_args_verb), std::to_string(slot), text});
    kept[slot] = std::move(args);
    return slot;
}

}  // namespace shannot::detail
