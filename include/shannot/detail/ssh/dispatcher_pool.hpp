// SPDX-License-Identifier: MIT
// DispatcherPool: ControlMaster connections to one host, and the long-lived dispatchers on them.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/detail/first_frames.hpp>
#include <shannot/detail/frame_filter.hpp>
#include <shannot/detail/paths.hpp>
#include <shannot/detail/posix/child.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/process.hpp>
#include <shannot/detail/posix/random.hpp>
#include <shannot/detail/scripts/dispatcher_script.hpp>
#include <shannot/detail/scripts/protocol.hpp>
#include <shannot/detail/shell_quote.hpp>
#include <shannot/error.hpp>
#include <shannot/limits.hpp>
#include <shannot/ssh_connection.hpp>

namespace shannot::detail {

/// Maps ssh's own diagnostics (not the command's output) to an error code.
[[nodiscard]] inline errc classify_ssh_failure(std::string_view text) {
    auto has = [&](std::string_view s) { return text.find(s) != std::string_view::npos; };
    if (has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("host key for"))
        return errc::host_key_mismatch;
    if (has("Permission denied") || has("Too many authentication failures")) return errc::authentication_failed;
    if (has("Connection refused") || has("Connection timed out") || has("No route to host") ||
        has("Could not resolve hostname") || has("Network is unreachable") || has("Connection closed by") ||
        has("Connection reset") || has("kex_exchange_identification") || has("Broken pipe"))
        return errc::connection_failed;
    return errc::transport_error;
}

[[nodiscard]] inline std::string last_line(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    const auto nl = text.rfind('\n');
    return nl == std::string::npos ? text : text.substr(nl + 1);
}

/// The last 64 KiB of a small local file (ssh's log); empty when unreadable.
[[nodiscard]] inline std::string read_small_file(const std::string& path) {
    std::string text;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    char buffer[8192];
    while (true) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
            text.append(buffer, static_cast<std::size_t>(n));
            if (text.size() > 65536) text.erase(0, text.size() - 65536);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::close(fd);
    return text;
}

/// One ssh channel running the dispatcher: the local `ssh -S` client and its pipes.
/// The ssh classes are templates over an unused parameter only so that their code is compiled
/// where the ssh transport is used, not in every file that includes shannot (docs/architecture.md,
/// "Compile time"); the types they name depend on it for the same reason.
template <class Deferred>
struct Dispatcher {
    Child child;
    std::size_t master = 0;               ///< index of the ControlMaster it rides on
    std::vector<std::string> argv{};      ///< the ssh command, up to the destination
    std::string hello{};                  ///< the dispatcher's marker (names its remote folder)
    std::uint64_t commands = 0;           ///< commands run on it so far
    /// bwrap argument lists (the part before "--") its dispatcher holds, by number (P requests).
    std::vector<std::vector<std::string>> kept_args{};
    std::size_t next_slot = 0;            ///< the slot a new list replaces once all are taken
    /// The built-in syscall filter its dispatcher holds (the last B request), empty for none.
    std::string kept_filter{};
};

/// Connections to one host: up to max_connections ControlMasters (sockets in a private 0700
/// folder), each carrying up to sessions_per_connection dispatchers (one ssh session each). Dispatchers are reused
/// across commands; a dead one is noticed and replaced. Thread-safe.
template <class Deferred>
class DispatcherPool {
    using Dispatcher = detail::Dispatcher<Deferred>;

public:
    explicit DispatcherPool(SshConnection connection) : conn_(std::move(connection)) {}
    DispatcherPool(const DispatcherPool&) = delete;
    DispatcherPool& operator=(const DispatcherPool&) = delete;
    ~DispatcherPool() { close(); }

    [[nodiscard]] const SshConnection& connection() const noexcept { return conn_; }
    /// The remote's top-level symlinks to folders ("/bin" -> "/usr/bin" where /usr is merged), as
    /// the last dispatcher to start reported them in its ready frame; empty before the first.
    [[nodiscard]] std::map<std::string, std::string> remote_symlinks() const {
        std::lock_guard lock(links_mutex_);
        return links_;
    }
    /// How runs' limits are enforced on the remote (shannot::limits_mechanism), as the last
    /// dispatcher to start reported it; "unknown" before the first.
    [[nodiscard]] std::string limits_mechanism() const {
        std::lock_guard lock(links_mutex_);
        return limits_mechanism_;
    }

    /// A ready dispatcher for one command: an idle live one, else a new one (starting a master when
    /// needed). Waits while max_connections * sessions_per_connection dispatchers are busy.
    /// With a `deadline`, gives up waiting for a free slot then (errc::connection_failed).
    [[nodiscard]] Result<std::unique_ptr<Dispatcher>> acquire(std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt) {
        std::unique_lock lock(mutex_);
        while (true) {
            if (closed_) return fail(errc::session_closed, "the ssh transport was closed");
            while (!idle_.empty()) {
                auto dispatcher = std::move(idle_.back());
                idle_.pop_back();
                if (!has_exited(dispatcher->child.pidfd)) return dispatcher;
                discard_locked(*dispatcher);
            }
            if (busy_ < conn_.max_connections * conn_.sessions_per_connection) {
                if (auto index = master_with_room(); index < masters_.size()) {
                    ++masters_[index].channels;
                    ++busy_;
                    const auto socket = masters_[index].socket;
                    lock.unlock();
                    auto dispatcher = start_dispatcher(index, socket);
                    lock.lock();
                    if (dispatcher) return dispatcher;
                    --masters_[index].channels;
                    --busy_;
                    cv_.notify_all();
                    return propagate(dispatcher);
                }
                if (masters_alive() < conn_.max_connections) {
                    if (auto started = start_master(lock); !started) return propagate(started);
                    continue;
                }
            }
            if (!deadline) cv_.wait(lock);
            else if (cv_.wait_until(lock, *deadline) == std::cv_status::timeout)
                return fail(errc::connection_failed, "every ssh session to " + ssh_destination(conn_) + " is busy");
        }
    }

    /// Gives a dispatcher back: kept for the next command when `reusable`, else ended.
    void release(std::unique_ptr<Dispatcher> dispatcher, bool reusable) {
        if (!dispatcher) return;
        std::lock_guard lock(mutex_);
        if (reusable && !closed_ && !has_exited(dispatcher->child.pidfd)) {
            ++dispatcher->commands;
            idle_.push_back(std::move(dispatcher));
        } else {
            discard_locked(*dispatcher);
        }
        cv_.notify_all();
    }

    /// Ends every dispatcher and master and removes every socket, log and the folder.
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        for (auto& s : idle_) discard_locked(*s);
        idle_.clear();
        for (auto& m : masters_) stop_master(m);
        if (!dir_.empty()) ::rmdir(dir_.c_str());
        dir_.clear();
        cv_.notify_all();
    }

    /// Master connections alive now (for tests and monitoring).
    [[nodiscard]] std::size_t connections() {
        std::lock_guard lock(mutex_);
        return masters_alive();
    }
    /// Idle dispatchers kept for reuse.
    [[nodiscard]] std::size_t idle_dispatchers() {
        std::lock_guard lock(mutex_);
        return idle_.size();
    }

private:
    struct Master {
        Child child;
        std::string socket, log;
        std::size_t channels = 0;  ///< ssh sessions open on it (busy or idle)
        bool ready = false;        ///< listening on its socket
        bool starting = false;
    };

    /// Masters running or being started.
    std::size_t masters_alive() const {
        std::size_t n = 0;
        for (const auto& m : masters_) n += (m.child.pidfd || m.starting) ? 1 : 0;
        return n;
    }

    std::size_t master_with_room() {
        std::size_t best = masters_.size();
        for (std::size_t i = 0; i < masters_.size(); ++i) {
            auto& m = masters_[i];
            if (!m.ready || !m.child.pidfd) continue;
            if (has_exited(m.child.pidfd)) {
                if (m.channels == 0) stop_master(m);
                else m.ready = false;  // its dispatchers fail and are discarded; then it is stopped
                continue;
            }
            if (m.channels < conn_.sessions_per_connection && (best == masters_.size() || m.channels < masters_[best].channels))
                best = i;
        }
        return best;
    }

    /// Kills and reaps a dispatcher's ssh client and frees its channel. Caller holds the lock.
    void discard_locked(Dispatcher& s) {
        if (s.child.pid > 0) {
            if (s.child.pidfd) pidfd_send_signal(s.child.pidfd.get(), SIGKILL);
            reap(s.child.pid);
            s.child = Child{};
        }
        --busy_;
        if (s.master < masters_.size()) {
            auto& m = masters_[s.master];
            if (m.channels > 0) --m.channels;
            if (m.channels == 0 && m.child.pidfd && has_exited(m.child.pidfd)) stop_master(m);
        }
    }

    void stop_master(Master& m) {
        if (m.child.pidfd) {
            pidfd_send_signal(m.child.pidfd.get(), SIGTERM);
            reap(m.child.pid);
            m.child = Child{};
        }
        m.ready = false;
        if (!m.socket.empty()) ::unlink(m.socket.c_str());
        if (!m.log.empty()) ::unlink(m.log.c_str());
    }

    /// Starts one ControlMaster and waits, unlocked, until it listens or gives up.
    Result<void> start_master(std::unique_lock<std::mutex>& lock) {
        if (dir_.empty()) {
            char templ[] = "/tmp/shannot-ssh-XXXXXX";  // mkdtemp makes it 0700
            if (!::mkdtemp(templ)) return fail(errc::io_error, std::string("cannot create a private ssh folder: ") + std::strerror(errno));
            dir_ = templ;
        }
        std::size_t slot = masters_.size();
        for (std::size_t i = 0; i < masters_.size(); ++i)
            if (!masters_[i].child.pidfd && !masters_[i].starting && masters_[i].channels == 0) slot = i;
        if (slot == masters_.size()) masters_.emplace_back();
        auto& m = masters_[slot];
        stop_master(m);
        m.socket = dir_ + "/m" + std::to_string(slot);
        m.log = m.socket + ".log";
        ChildSpec spec;
        spec.argv = {conn_.ssh_binary, "-M", "-S", m.socket, "-N", "-o", "ControlPersist=no"};
        for (auto& a : ssh_base_options(conn_)) spec.argv.push_back(std::move(a));
        spec.argv.insert(spec.argv.end(), {"--", ssh_destination(conn_)});
        spec.log_file = m.log;
        auto child = spawn_child(spec);
        if (!child) return propagate(child);
        m.child = std::move(*child);
        m.starting = true;
        const auto socket = m.socket;
        const int pidfd = m.child.pidfd.get();
        const auto deadline = std::chrono::steady_clock::now() + conn_.connect_timeout + std::chrono::seconds(5);
        lock.unlock();
        bool ready = false, died = false;
        while (std::chrono::steady_clock::now() < deadline) {
            struct stat st {};
            if (::stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
                ready = true;
                break;
            }
            pollfd p{pidfd, POLLIN, 0};
            if (::poll(&p, 1, 5) > 0) {
                died = true;
                break;
            }
        }
        lock.lock();
        auto& again = masters_[slot];
        again.starting = false;
        cv_.notify_all();
        if (ready && !closed_) {
            again.ready = true;
            return {};
        }
        const std::string diagnostics = read_small_file(again.log);
        stop_master(again);
        if (closed_) return fail(errc::session_closed, "the ssh transport was closed");
        const std::string where = ssh_destination(conn_) + ":" + std::to_string(conn_.port);
        if (!died)
            return fail(errc::connection_failed,
                        "ssh to " + where + " did not connect within " + std::to_string(conn_.connect_timeout.count()) + " s");
        return fail(classify_ssh_failure(diagnostics), "ssh to " + where + " failed: " + last_line(diagnostics));
    }

    /// Opens a channel on master `index` running the dispatcher, and waits for its ready frames
    /// on both streams (discarding whatever a login banner or rc file printed before them).
    Result<std::unique_ptr<Dispatcher>> start_dispatcher(std::size_t index, const std::string& socket) {
        auto dispatcher = std::make_unique<Dispatcher>();
        dispatcher->master = index;
        const auto hello = random_marker();
        dispatcher->hello = hello;
        ChildSpec spec;
        spec.pipe_stdin = true;
        spec.argv = {conn_.ssh_binary, "-S", socket, "-o", "ControlMaster=no"};
        for (auto& a : ssh_base_options(conn_)) spec.argv.push_back(std::move(a));
        spec.argv.insert(spec.argv.end(), {"--", ssh_destination(conn_)});
        dispatcher->argv = spec.argv;
        spec.argv.push_back(shell_join({"exec", "sh", "-c", std::string(ssh_dispatcher_script), "shannot", hello}));
        auto child = spawn_child(spec);
        if (!child) return propagate(child);
        dispatcher->child = std::move(*child);

        FrameFilter out_frames(hello), err_frames(hello);
        std::string diagnostics;
        const auto deadline = Clock::now() + conn_.connect_timeout + std::chrono::seconds(10);
        const auto started = await_first_frames(dispatcher->child.out.get(), dispatcher->child.err.get(), dispatcher->child.pidfd.get(),
                                                out_frames, err_frames, deadline, diagnostics);
        if (started == FirstFrames::ready) {
            keep_symlinks(out_frames.payloads().front());
            return dispatcher;
        }
        const bool exited = started == FirstFrames::ended;

        // Not ready: collect what ssh said, end it, and say why.
        if (!exited) pidfd_send_signal(dispatcher->child.pidfd.get(), SIGKILL);
        drain_into(dispatcher->child.err.get(), diagnostics, std::chrono::seconds(1));
        const int status = reap(dispatcher->child.pid).value_or(0);
        const std::string where = ssh_destination(conn_) + ":" + std::to_string(conn_.port);
        if (!exited) return fail(errc::connection_failed, "the remote dispatcher on " + where + " did not start within " +
                                                            std::to_string((conn_.connect_timeout + std::chrono::seconds(10)).count()) + " s");
        if (WIFEXITED(status) && WEXITSTATUS(status) == protocol::dispatcher::exit_no_folder)
            return fail(errc::transport_error, "cannot create a private folder under $TMPDIR or /tmp on " + where);
        const auto line = last_line(diagnostics);
        return fail(classify_ssh_failure(diagnostics),
                    "ssh session to " + where + " failed (exit status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                        ")" + (line.empty() ? std::string() : ": " + line));
    }

    /// Reads "ready /bin=/usr/bin /lib=/usr/lib ... limits=MECHANISM" (the dispatcher prints only
    /// absolute paths of [A-Za-z0-9._/-]).
    void keep_symlinks(std::string_view ready) {
        std::map<std::string, std::string> links;
        std::string mechanism(shannot::limits_mechanism::unknown);
        if (auto words = shell_split(ready)) {
            for (std::string_view word : *words) {
                if (word.substr(0, protocol::dispatcher::limits_word.size()) == protocol::dispatcher::limits_word) {
                    mechanism = std::string(word.substr(protocol::dispatcher::limits_word.size()));
                    continue;
                }
                const auto eq = word.find('=');
                if (eq != std::string_view::npos && is_absolute(word.substr(0, eq)) && is_absolute(word.substr(eq + 1)))
                    links.emplace(std::string(word.substr(0, eq)), std::string(word.substr(eq + 1)));
            }
        }
        std::lock_guard lock(links_mutex_);
        links_ = std::move(links);
        limits_mechanism_ = std::move(mechanism);
    }

    SshConnection conn_;
    mutable std::mutex links_mutex_;
    std::map<std::string, std::string> links_;
    std::string limits_mechanism_{shannot::limits_mechanism::unknown};
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<Master> masters_;
    std::vector<std::unique_ptr<Dispatcher>> idle_;
    std::size_t busy_ = 0;  ///< dispatchers holding a channel: busy, idle or starting
    std::string dir_;
    bool closed_ = false;
};

}  // namespace shannot::detail
