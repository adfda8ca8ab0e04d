// SPDX-License-Identifier: MIT
// OpenSshProcessTransport: runs bwrap on a remote host through the system ssh, over reused sessions.
#pragma once

#include <poll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/command_frames.hpp>
#include <shannot/detail/event_loop.hpp>
#include <shannot/detail/frame_filter.hpp>
#include <shannot/detail/spawn.hpp>
#include <shannot/detail/ssh_dispatcher.hpp>
#include <shannot/detail/ssh_pool.hpp>
#include <shannot/error.hpp>
#include <shannot/fwd.hpp>
#include <shannot/process_result.hpp>
#include <shannot/ssh_options.hpp>

namespace shannot {

namespace detail {

/// One command on a borrowed dispatcher session. Its output arrives on the session's pipes and
/// ends with this command's frames; exit_fd() is its own timer (see CommandFrames).
template <class Deferred>
class SshProcess {
    using SshSessionPool = detail::SshSessionPool<Deferred>;
    using SshSession = detail::SshSession<Deferred>;

public:
    static constexpr auto kill_fallback = CommandFrames::kill_fallback;

    SshProcess(std::shared_ptr<SshSessionPool> pool, std::unique_ptr<SshSession> session, std::string nonce,
               std::vector<std::string> argv, UniqueFd timer)
        : pool_(std::move(pool)), session_(std::move(session)), argv_(std::move(argv)), timer_(std::move(timer)),
          frames_(nonce, timer_.get(), &is_end_report) {}
    SshProcess(SshProcess&&) noexcept = default;
    SshProcess& operator=(SshProcess&& other) noexcept {
        if (this != &other) {
            give_back(false);
            pool_ = std::move(other.pool_);
            session_ = std::move(other.session_);
            argv_ = std::move(other.argv_);
            timer_ = std::move(other.timer_);
            frames_ = std::move(other.frames_);
            ssh_errors_ = std::move(other.ssh_errors_);
        }
        return *this;
    }
    ~SshProcess() { give_back(false); }

    [[nodiscard]] int stdin_fd() const { return -1; }  // input was staged on the remote by launch()
    [[nodiscard]] int stdout_fd() const { return session_ ? session_->child.out.get() : -1; }
    [[nodiscard]] int stderr_fd() const { return session_ ? session_->child.err.get() : -1; }
    [[nodiscard]] int exit_fd() const { return timer_.get(); }
    [[nodiscard]] const std::vector<std::string>& argv() const { return argv_; }
    void close_stdin() {}

    /// Asks the dispatcher to signal bwrap; the sandbox dies with it (--die-with-parent).
    void terminate() { request_signal("TERM", 1); }
    /// As terminate(), and if the remote does not answer within kill_fallback the session is
    /// dropped: closing the channel makes the dispatcher kill the command itself.
    void kill() { request_signal("KILL", 2); }

    void filter_output(StreamKind kind, std::string_view in, std::string& out) {
        const auto before = out.size();
        frames_.feed(kind, in, out);
        if (kind == StreamKind::err) keep_tail(std::string_view(out).substr(before));
    }
    void finish_output(StreamKind kind, std::string& out) {
        const auto before = out.size();
        frames_.finish(kind, out);  // EOF on a session stream: the session is gone
        if (kind == StreamKind::err) keep_tail(std::string_view(out).substr(before));
    }
    [[nodiscard]] bool output_finished(StreamKind kind) const { return frames_.finished(kind); }

    ExitInfo wait() {
        ExitInfo info;
        if (frames_.complete()) {
            info = from_report();
            give_back(true);
            return info;
        }
        // The session broke, or a kill went unanswered: it cannot carry another command.
        int status = -1;
        if (session_ && session_->child.pid > 0) {
            pollfd p{session_->child.pidfd.get(), POLLIN, 0};
            if (::poll(&p, 1, frames_.stopped() ? 0 : 2000) <= 0) pidfd_send_signal(session_->child.pidfd.get(), SIGKILL);
            while (::waitpid(session_->child.pid, &status, 0) < 0 && errno == EINTR) {
            }
            session_->child.pid = -1;
        }
        give_back(false);
        if (frames_.stopped() > 0) {  // we asked it to stop; the local side gave up waiting for the remote
            info.kind = ExitInfo::Kind::signaled;
            info.signal = frames_.stopped() == 2 ? SIGKILL : SIGTERM;
            return info;
        }
        info.kind = ExitInfo::Kind::transport_failed;
        info.error = classify_ssh_failure(ssh_errors_);
        if (info.error == errc::transport_error) info.error = errc::connection_failed;
        const auto line = last_line(ssh_errors_);
        const int code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        info.detail = "the ssh session ended mid-command (ssh exit status " + std::to_string(code) + ")" +
                      (line.empty() ? std::string(": connection lost?") : ": " + line);
        ssh_errors_.clear();  // the message carries them
        return info;
    }

private:
    void request_signal(const char* name, int level) {
        if (session_) frames_.request_stop(session_->child.in.get(), dispatcher_request({"K", name}), level);
    }

    /// The dispatcher's last frame on stderr: its exit report, or why bwrap did not start.
    static bool is_end_report(std::string_view p) {
        return p == "nobwrap" || p == "noseccomp" || p == "nostage" || p == "noargs" || p.rfind("exit ", 0) == 0;
    }

    [[nodiscard]] ExitInfo from_report() const {
        ExitInfo info;
        for (const auto& payload : frames_.err_payloads()) {
            if (payload == "nobwrap") {
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::remote_bwrap_missing;
                info.detail = "bwrap is not installed on the remote host (or not on its PATH): install bubblewrap there";
                return info;
            }
            if (payload == "noseccomp") {
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::sandbox_setup_failed;
                info.detail = "the profile's seccomp_profile cannot be opened on the remote host";
                return info;
            }
            if (payload == "nostage") {
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::io_error;
                info.detail = "the remote host could not store the command's input under its $TMPDIR (or /tmp): is it full?";
                return info;
            }
            if (payload == "noargs") {  // a P request went missing: a bug, not the command's doing
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::transport_error;
                info.detail = "the remote dispatcher does not hold the bwrap arguments the request names";
                return info;
            }
            int code = -1, setup = 0;
            if (std::sscanf(payload.c_str(), "exit %d %d", &code, &setup) != 2) continue;
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
        if (pool_ && session_) pool_->release(std::move(session_), reusable);
        session_.reset();
    }

    void keep_tail(std::string_view text) {
        ssh_errors_.append(text);
        if (ssh_errors_.size() > 4096) ssh_errors_.erase(0, ssh_errors_.size() - 4096);
    }

    std::shared_ptr<SshSessionPool> pool_;
    std::unique_ptr<SshSession> session_;
    std::vector<std::string> argv_;
    UniqueFd timer_;  // before frames_, which keeps its number
    CommandFrames frames_;
    std::string ssh_errors_;
};

/// A warm session's sandbox on the remote: one ssh session whose dispatcher handed its stdin,
/// stdout and stderr to a long-lived bwrap (the `S` request). Owns the ssh session; ending the
/// ssh client ends the sandbox (the agent reads EOF, kills what runs and exits).
template <class Deferred>
class SshChannel {
    using SshSessionPool = detail::SshSessionPool<Deferred>;
    using SshSession = detail::SshSession<Deferred>;

public:
    SshChannel(std::shared_ptr<SshSessionPool> pool, std::unique_ptr<SshSession> session, std::vector<std::string> argv,
               std::string shell)
        : pool_(std::move(pool)), session_(std::move(session)), argv_(std::move(argv)), shell_(std::move(shell)) {}
    SshChannel(SshChannel&&) noexcept = default;
    SshChannel& operator=(SshChannel&& other) noexcept {
        if (this != &other) {
            end();
            pool_ = std::move(other.pool_);
            session_ = std::move(other.session_);
            argv_ = std::move(other.argv_);
            shell_ = std::move(other.shell_);
            killed_remote_ = other.killed_remote_;
        }
        return *this;
    }
    ~SshChannel() { end(); }

    [[nodiscard]] int stdin_fd() const { return session_ ? session_->child.in.get() : -1; }
    [[nodiscard]] int stdout_fd() const { return session_ ? session_->child.out.get() : -1; }
    [[nodiscard]] int stderr_fd() const { return session_ ? session_->child.err.get() : -1; }
    [[nodiscard]] int exit_fd() const { return session_ ? session_->child.pidfd.get() : -1; }
    [[nodiscard]] const std::vector<std::string>& argv() const { return argv_; }
    void close_stdin() {
        if (session_) session_->child.in.reset();
    }
    /// Ends the remote sandbox (through another session: this one may be wedged) and the client.
    void terminate() { kill(); }
    void kill() {
        if (!session_) return;
        if (!killed_remote_ && pool_) {
            killed_remote_ = true;
            auto other = pool_->acquire(std::chrono::steady_clock::now() + std::chrono::seconds(2));
            if (other) {
                const bool sent = write_all((*other)->child.in.get(), dispatcher_request({"Z", session_->hello}),
                                            Clock::now() + std::chrono::seconds(2));
                pool_->release(std::move(*other), sent);
            }
        }
        signal(SIGKILL);
    }

    /// Reaps the ssh client. Exit statuses 94-96 are the dispatcher's refusals.
    ExitInfo wait() {
        ExitInfo info;
        int status = -1;
        if (session_ && session_->child.pid > 0) {
            while (::waitpid(session_->child.pid, &status, 0) < 0 && errno == EINTR) {
            }
            session_->child.pid = -1;
        }
        end();
        if (status >= 0 && WIFSIGNALED(status)) {
            info.kind = ExitInfo::Kind::signaled;
            info.signal = WTERMSIG(status);
            return info;
        }
        const int code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        info.exit_code = code;
        if (code == 0) return info;
        info.kind = ExitInfo::Kind::setup_failed;
        info.error = errc::sandbox_setup_failed;
        if (code == 96) {
            info.error = errc::remote_bwrap_missing;
            info.detail = "bwrap is not installed on the remote host (or not on its PATH): install bubblewrap there";
        } else if (code == 95) {
            info.detail = "the profile's seccomp_profile cannot be opened on the remote host";
        } else if (code == 94) {
            info.detail = "the session's shell '" + shell_ + "' (SessionOptions::shell) is not readable on the remote host";
        } else if (code == 255) {
            info.kind = ExitInfo::Kind::transport_failed;
            info.error = errc::connection_failed;
            info.detail = "the ssh session ended (ssh exit status 255)";
        } else {
            info.detail = "the remote sandbox exited with status " + std::to_string(code);
        }
        return info;
    }

private:
    void signal(int sig) {
        if (session_ && session_->child.pid > 0 && session_->child.pidfd) pidfd_send_signal(session_->child.pidfd.get(), sig);
    }
    void end() {
        if (pool_ && session_) pool_->release(std::move(session_), false);  // kills and reaps the client if still running
        session_.reset();
    }

    std::shared_ptr<SshSessionPool> pool_;
    std::unique_ptr<SshSession> session_;
    std::vector<std::string> argv_;
    std::string shell_;
    bool killed_remote_ = false;
};

/// The slot of the session's dispatcher that holds `args` (bwrap's arguments before "--"), adding
/// the P request that stores them to `lines` when it holds them not yet. A fresh run's request
/// then carries only the command: the dispatcher reads its requests a system call per byte, and
/// the arguments of a profile are ~1.3 KB (~0.4 ms a run here).
template <class Session>
std::size_t keep_args(Session& session, std::vector<std::string> args, std::string& lines) {
    constexpr std::size_t slots = 8;
    auto& kept = session.kept_args;
    if (auto it = std::find(kept.begin(), kept.end(), args); it != kept.end()) return static_cast<std::size_t>(it - kept.begin());
    std::size_t slot = kept.size();
    if (slot < slots) {
        kept.push_back({});
    } else {
        slot = session.next_slot;
        session.next_slot = (session.next_slot + 1) % slots;
    }
    auto text = dispatcher_request(args);
    text.pop_back();  // the newline
    lines += dispatcher_request({"P", std::to_string(slot), text});
    kept[slot] = std::move(args);
    return slot;
}

}  // namespace detail

/// The remote transport: bwrap runs on `SshConnection::host`, started by a small POSIX-sh
/// dispatcher that a long-lived ssh session runs there (see detail/ssh_dispatcher.hpp). Sessions
/// ride on a bounded pool of ControlMaster connections and are reused across commands: a new
/// connection costs ~0.2 s and every ssh session a login shell, a command on a warm session a
/// bwrap start. Copies share the pool; the last copy's destruction closes it.
/// Users name it OpenSshProcessTransport; the parameter only defers compilation (see SshSession).
template <class Deferred>
class BasicOpenSshProcessTransport {
public:
    using process_type = detail::SshProcess<Deferred>;
    /// A warm session's sandbox (see session.hpp) on a dedicated ssh session.
    using channel_type = detail::SshChannel<Deferred>;
    static constexpr std::string_view name = "ssh";
    static constexpr bool checks_local_paths = false;
    /// The dispatcher opens the profile's seccomp file (a path on the remote) at fd 3.
    static constexpr int seccomp_fd = 3;
    /// The dispatcher reads bwrap's status there to tell setup failures from command failures.
    static constexpr int json_status_fd = 4;

    explicit BasicOpenSshProcessTransport(SshConnection connection)
        : pool_(std::make_shared<detail::SshSessionPool<Deferred>>(std::move(connection))) {}

    [[nodiscard]] const SshConnection& connection() const noexcept { return pool_->connection(); }
    [[nodiscard]] std::optional<std::string> default_working_directory() const { return connection().working_directory; }
    /// Which of `paths` are symlinks on the remote, as far as its dispatchers tell: the top-level
    /// ones (/bin -> /usr/bin where /usr is merged), known once a first session has started.
    [[nodiscard]] std::map<std::string, std::string> host_symlinks(const std::vector<std::string>& paths) const {
        const auto known = pool_->remote_symlinks();
        std::map<std::string, std::string> links;
        for (const auto& path : paths)
            if (auto it = known.find(path); it != known.end()) links.insert(*it);
        return links;
    }
    /// Master connections alive now.
    [[nodiscard]] std::size_t connections() const { return pool_->connections(); }
    /// Warm sessions waiting for the next command.
    [[nodiscard]] std::size_t idle_sessions() const { return pool_->idle_sessions(); }
    /// Ends every ssh process and removes every socket; later runs fail with errc::session_closed.
    void close() { pool_->close(); }

    /// Sends the request (and the input, staged on the remote before the command starts) over a
    /// warm session. A session found dead on the way is replaced once.
    [[nodiscard]] Result<process_type> launch(const LaunchSpec& spec) {
        if (auto ok = validate(connection()); !ok) return tl::make_unexpected(std::move(ok.error()));
        long long timeout_s = 0;
        if (spec.timeout) timeout_s = (spec.timeout->count() + 999) / 1000 + 2;  // a backstop behind the local deadline
        const auto input = spec.pipe_stdin ? spec.input : std::string_view{};
        const auto deadline = detail::Clock::now() + (spec.timeout ? *spec.timeout : std::chrono::milliseconds(3'600'000));
        for (int attempt = 0;; ++attempt) {
            auto session = pool_->acquire();
            if (!session) return tl::make_unexpected(std::move(session.error()));
            const auto nonce = detail::random_marker();
            const auto split = std::find(spec.bwrap_args.begin(), spec.bwrap_args.end(), "--");
            std::string lines;
            const auto slot = detail::keep_args(**session, {spec.bwrap_args.begin(), split}, lines);
            std::vector<std::string> request = {"R", nonce, std::to_string(timeout_s),
                                                spec.files.empty() ? std::string() : spec.files.front().path,
                                                std::to_string(input.size()), connection().remote_bwrap, std::to_string(slot)};
            request.insert(request.end(), split, spec.bwrap_args.end());
            lines += detail::dispatcher_request(request);
            const int fd = (*session)->child.in.get();
            if (!detail::write_all(fd, lines, deadline) || !detail::write_all(fd, input, deadline)) {
                pool_->release(std::move(*session), false);
                if (attempt == 0 && detail::Clock::now() < deadline) continue;
                return fail(errc::connection_failed, "cannot send the command to the ssh session on " + ssh_destination(connection()));
            }
            detail::UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
            if (!timer) {
                pool_->release(std::move(*session), false);
                return fail(errc::spawn_failed, std::string("timerfd_create failed: ") + std::strerror(errno));
            }
            std::vector<std::string> argv = (*session)->argv;
            argv.push_back(connection().remote_bwrap);
            argv.insert(argv.end(), spec.bwrap_args.begin(), spec.bwrap_args.end());
            return process_type(pool_, std::move(*session), nonce, std::move(argv), std::move(timer));
        }
    }

    /// Starts a warm session's long-lived sandbox on a dedicated ssh session (it does not go
    /// back to the pool): the dispatcher's `S` request runs bwrap with the session's pipes.
    /// It holds one of the pool's max_connections * sessions_per_connection channels until it
    /// ends; `spec.timeout` bounds the wait for a free one.
    [[nodiscard]] Result<channel_type> open_channel(const LaunchSpec& spec) {
        if (auto ok = validate(connection()); !ok) return tl::make_unexpected(std::move(ok.error()));
        std::string seccomp, shell;
        for (const auto& f : spec.files) (f.fd == seccomp_fd ? seccomp : shell) = f.path;
        std::vector<std::string> request = {"S", seccomp, shell, connection().remote_bwrap};
        request.insert(request.end(), spec.bwrap_args.begin(), spec.bwrap_args.end());
        const auto line = detail::dispatcher_request(request);
        std::optional<std::chrono::steady_clock::time_point> wait_until;
        if (spec.timeout) wait_until = std::chrono::steady_clock::now() + *spec.timeout;
        for (int attempt = 0;; ++attempt) {
            auto session = pool_->acquire(wait_until);
            if (!session) return tl::make_unexpected(std::move(session.error()));
            if (!detail::write_all((*session)->child.in.get(), line, detail::Clock::now() + connection().connect_timeout)) {
                pool_->release(std::move(*session), false);
                if (attempt == 0) continue;  // a session found dead on the way is replaced once
                return fail(errc::connection_failed, "cannot send the session request to the ssh session on " + ssh_destination(connection()));
            }
            std::vector<std::string> argv = (*session)->argv;
            argv.push_back(connection().remote_bwrap);
            argv.insert(argv.end(), spec.bwrap_args.begin(), spec.bwrap_args.end());
            return channel_type(pool_, std::move(*session), std::move(argv), shell);
        }
    }

private:
    std::shared_ptr<detail::SshSessionPool<Deferred>> pool_;
};

}  // namespace shannot
