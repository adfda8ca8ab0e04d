// SPDX-License-Identifier: MIT
// RemoteSessionSandbox: a warm session's long-lived sandbox on the remote, on a dispatcher of its own.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/process.hpp>
#include <shannot/detail/scripts/protocol.hpp>
#include <shannot/detail/shell_quote.hpp>
#include <shannot/detail/ssh/dispatcher_pool.hpp>
#include <shannot/error.hpp>

namespace shannot::detail {

/// A warm session's sandbox on the remote: one ssh session whose dispatcher handed its stdin,
/// stdout and stderr to a long-lived bwrap (the `S` request). Owns the ssh session; ending the
/// ssh client ends the sandbox (the agent reads EOF, kills what runs and exits).
template <class Deferred>
class RemoteSessionSandbox {
    using DispatcherPool = detail::DispatcherPool<Deferred>;
    using Dispatcher = detail::Dispatcher<Deferred>;

public:
    /// `mechanism`: how the remote enforces the session's limits (its ready frame), if it has any.
    RemoteSessionSandbox(std::shared_ptr<DispatcherPool> pool, std::unique_ptr<Dispatcher> dispatcher,
                         std::vector<std::string> argv, std::string shell, std::string mechanism = {})
        : pool_(std::move(pool)),
          dispatcher_(std::move(dispatcher)),
          argv_(std::move(argv)),
          shell_(std::move(shell)),
          mechanism_(std::move(mechanism)) {}
    RemoteSessionSandbox(RemoteSessionSandbox&&) noexcept = default;
    RemoteSessionSandbox& operator=(RemoteSessionSandbox&& other) noexcept {
        if (this != &other) {
            end();
            pool_ = std::move(other.pool_);
            dispatcher_ = std::move(other.dispatcher_);
            argv_ = std::move(other.argv_);
            shell_ = std::move(other.shell_);
            mechanism_ = std::move(other.mechanism_);
            killed_remote_ = other.killed_remote_;
        }
        return *this;
    }
    ~RemoteSessionSandbox() { end(); }

    [[nodiscard]] int stdin_fd() const { return dispatcher_ ? dispatcher_->child.in.get() : -1; }
    [[nodiscard]] int stdout_fd() const { return dispatcher_ ? dispatcher_->child.out.get() : -1; }
    [[nodiscard]] int stderr_fd() const { return dispatcher_ ? dispatcher_->child.err.get() : -1; }
    [[nodiscard]] int exit_fd() const { return dispatcher_ ? dispatcher_->child.process.exit_fd() : -1; }
    [[nodiscard]] const std::vector<std::string>& argv() const { return argv_; }
    /// How the session's limits are enforced: the dispatcher starts it in a pids cgroup where it
    /// can make one (and refuses the session, 93, where it then cannot).
    [[nodiscard]] std::string_view limits_mechanism() const { return mechanism_; }
    void close_stdin() {
        if (dispatcher_) dispatcher_->child.in.reset();
    }
    /// Ends the remote sandbox (through another dispatcher: this one may be wedged) and the client.
    void terminate() { kill(); }
    void kill() {
        if (!dispatcher_) return;
        if (!killed_remote_ && pool_) {
            killed_remote_ = true;
            auto other = pool_->acquire(std::chrono::steady_clock::now() + std::chrono::seconds(2));
            if (other) {
                const auto line =
                    dispatcher_request({std::string(protocol::dispatcher::kill_session_verb), dispatcher_->hello});
                const bool sent = write_all((*other)->child.in.get(), line, Clock::now() + std::chrono::seconds(2));
                pool_->release(std::move(*other), sent);
            }
        }
        signal(SIGKILL);
    }

    /// Reaps the ssh client. Exit statuses 92-96 are the dispatcher's refusals of the S request.
    ExitInfo wait() {
        ExitInfo info;
        std::optional<int> status;
        if (dispatcher_) status = dispatcher_->child.process.reap();
        end();
        if (status && WIFSIGNALED(*status)) {
            info.kind = ExitInfo::Kind::signaled;
            info.signal = WTERMSIG(*status);
            return info;
        }
        const int code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
        info.exit_code = code;
        if (code == 0) return info;
        info.kind = ExitInfo::Kind::setup_failed;
        info.error = errc::sandbox_setup_failed;
        if (code == protocol::dispatcher::exit_session_no_bwrap) {
            info.error = errc::remote_bwrap_missing;
            info.detail = "bwrap is not installed on the remote host (or not on its PATH): install bubblewrap there";
        } else if (code == protocol::dispatcher::exit_session_no_seccomp) {
            info.detail = "the profile's seccomp_profile cannot be opened on the remote host";
        } else if (code == protocol::dispatcher::exit_session_no_shell) {
            info.detail =
                "the session's shell '" + shell_ + "' (SessionOptions::shell) is not readable on the remote host";
        } else if (code == protocol::dispatcher::exit_session_no_limits) {
            info.detail =
                "the remote host could not make the session's pids cgroup (or refused its limits as malformed)";
        } else if (code == protocol::dispatcher::exit_session_no_filter) {
            info.error = errc::io_error;
            info.detail =
                "the remote dispatcher could not give bwrap the syscall filter (its sh made no here-document "
                "pipe, and an old bash's here-document file in $TMPDIR could not be written: is it full?)";
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
        if (dispatcher_) dispatcher_->child.process.signal(sig);
    }
    void end() {
        if (pool_ && dispatcher_)
            pool_->release(std::move(dispatcher_), false);  // kills and reaps the client if still running
        dispatcher_.reset();
    }

    std::shared_ptr<DispatcherPool> pool_;
    std::unique_ptr<Dispatcher> dispatcher_;
    std::vector<std::string> argv_;
    std::string shell_;
    std::string mechanism_;
    bool killed_remote_ = false;
};

}  // namespace shannot::detail
