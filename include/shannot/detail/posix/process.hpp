// SPDX-License-Identifier: MIT
// Child processes: whether one has exited, reaping one, and ChildProcess: waiting for and
// signalling a child of ours through an exit descriptor a poll loop can watch.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <utility>

#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/thread.hpp>
#include <shannot/detail/posix/unique_fd.hpp>
#include <shannot/error.hpp>
#include <shannot/platform.hpp>

#if SHANNOT_PLATFORM_LINUX
#include <sys/syscall.h>
#else
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#endif

namespace shannot::detail {

#if SHANNOT_PLATFORM_LINUX
inline int pidfd_open(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
inline int pidfd_send_signal(int pidfd, int sig) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}
#endif

/// Whether an exit descriptor (a ChildProcess's, or a process handle's exit_fd()) says its
/// process has exited; no descriptor counts as exited.
[[nodiscard]] inline bool has_exited(int exit_fd) {
    if (exit_fd < 0) return true;
    pollfd p{exit_fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}
[[nodiscard]] inline bool has_exited(const UniqueFd& exit_fd) { return has_exited(exit_fd.get()); }

/// Waits for child `pid` to end (through EINTR) and marks it reaped (`pid` = -1): its wait
/// status, or nothing when there was no child to wait for (pid <= 0, or not ours to reap).
inline std::optional<int> reap(pid_t& pid) noexcept {
    if (pid <= 0) return std::nullopt;
    int status = 0;
    int rc = 0;
    while ((rc = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
    }
    pid = -1;
    if (rc < 0) return std::nullopt;
    return status;
}

#if SHANNOT_PLATFORM_LINUX

/// A child we spawned, watched through a pidfd: readable once it exited, and a signal through
/// it can never reach another process that got its pid. Move-only. Dropping one unreaped
/// leaves a zombie: its owner reaps it (reap()). Also a process that need not be our child
/// (adopt(): reaped only if it is) or a second handle on one (observer(): never reaps).
class ChildProcess {
public:
    ChildProcess() = default;
    ChildProcess(ChildProcess&& other) noexcept
        : pid_(std::exchange(other.pid_, -1)),
          exit_fd_(std::move(other.exit_fd_)),
          reaps_(other.reaps_),
          status_(std::exchange(other.status_, std::nullopt)) {}
    ChildProcess& operator=(ChildProcess&& other) noexcept {
        pid_ = std::exchange(other.pid_, -1);
        exit_fd_ = std::move(other.exit_fd_);
        reaps_ = other.reaps_;
        status_ = std::exchange(other.status_, std::nullopt);
        return *this;
    }

    /// Watches `pid`, a child this process just spawned and nobody reaped yet. On failure the
    /// child is killed and reaped.
    [[nodiscard]] static Result<ChildProcess> watch(pid_t pid) {
        ChildProcess child;
        child.exit_fd_ = UniqueFd(pidfd_open(pid));
        if (!child.exit_fd_) {
            const int saved = errno;
            ::kill(pid, SIGKILL);
            detail::reap(pid);
            return fail(errc::spawn_failed,
                        std::string("pidfd_open failed (Linux 5.3 or newer is needed): ") + std::strerror(saved));
        }
        child.pid_ = pid;
        return child;
    }

    /// Watches `pid`, a live process that need not be our child (a kept connection's ssh,
    /// started by an earlier process, or by this one before it parked it): exit_fd() and
    /// signal() work; reap() reaps it when it is our child, else only forgets it. The caller has
    /// checked that `pid` names the process it means (see same_process).
    [[nodiscard]] static Result<ChildProcess> adopt(pid_t pid) {
        ChildProcess process;
        process.exit_fd_ = UniqueFd(pidfd_open(pid));
        if (!process.exit_fd_)
            return fail(errc::spawn_failed,
                        "cannot watch process " + std::to_string(pid) + ": " + std::strerror(errno));
        process.pid_ = pid;
        return process;
    }

    /// A second handle on the same process (a ControlMaster entry watching a dispatcher's own
    /// connection): it sees the exit and can signal, but never reaps, which is the owner's job.
    /// An empty handle when no descriptor is left.
    [[nodiscard]] ChildProcess observer() const {
        ChildProcess copy;
        if (!exit_fd_) return copy;
        copy.exit_fd_ = UniqueFd(::fcntl(exit_fd_.get(), F_DUPFD_CLOEXEC, 3));
        if (!copy.exit_fd_) return copy;
        copy.pid_ = pid_;
        copy.reaps_ = false;
        return copy;
    }

    /// Whether this watches a process (reaped or not); false when default-constructed.
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(exit_fd_); }
    /// The child's pid until it is reaped, then -1.
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    /// Becomes readable when the child has exited, and stays so (also once it is reaped).
    [[nodiscard]] int exit_fd() const noexcept { return exit_fd_.get(); }
    [[nodiscard]] bool exited() const { return has_exited(exit_fd_.get()); }
    /// Sends `sig` to the child unless it was reaped.
    /// A pidfd that no longer works (a descriptor closed under us) is no proof the child ended:
    /// one of ours not reaped yet keeps its pid, so it is checked (waitpid WNOHANG) and then
    /// signalled through kill(2); one found ended is reaped there, and reap() returns its status.
    void signal(int sig) noexcept {
        if (pid_ <= 0 || !exit_fd_ || status_) return;
        if (pidfd_send_signal(exit_fd_.get(), sig) == 0 || errno == ESRCH || !reaps_) return;
        int status = 0;
        pid_t rc = 0;
        while ((rc = ::waitpid(pid_, &status, WNOHANG)) < 0 && errno == EINTR) {
        }
        if (rc == pid_)
            status_ = status;
        else if (rc == 0)
            ::kill(pid_, sig);  // ours and unreaped: the pid is still its own
    }
    /// Waits for the child to end and reaps it: its wait status, or nothing when it was reaped
    /// already (or by someone else), or this handle does not reap (adopt(), observer()).
    std::optional<int> reap() noexcept {
        if (!reaps_ || pid_ <= 0) {
            pid_ = -1;
            return std::nullopt;
        }
        if (status_) {  // reaped by signal() already
            pid_ = -1;
            return std::exchange(status_, std::nullopt);
        }
        // Through the pidfd first (without reaping): only a process that is still our unreaped
        // child passes, so the waitpid by pid below can take no other child's status, even when
        // another handle on the same process (adopt()) reaped it and its pid was given again.
        siginfo_t info{};
        int rc = 0;
        while ((rc = ::waitid(P_PIDFD, static_cast<id_t>(exit_fd_.get()), &info, WEXITED | WNOWAIT)) < 0 &&
               errno == EINTR) {
        }
        if (rc != 0 && errno == ECHILD) {
            pid_ = -1;  // not our child, or reaped already
            return std::nullopt;
        }
        return detail::reap(pid_);  // our zombie now, or a stale pidfd (then by pid: still ours, unreaped)
    }

private:
    pid_t pid_ = -1;
    UniqueFd exit_fd_;
    bool reaps_ = true;
    std::optional<int> status_;  ///< reaped by signal() (a stale pidfd), kept for reap()
};

#else

/// A child we spawned, watched by a reaper thread of its own: the thread waits for that one pid
/// (waitid with WNOWAIT, so the pid stays ours meanwhile), reaps it, keeps its status and makes
/// exit_fd() readable. The library installs no SIGCHLD handler and never waits for any child but
/// its own, by pid: an application's handler and its own children are left alone. What it needs
/// from the application: SIGCHLD not ignored (SIG_IGN or SA_NOCLDWAIT make the kernel reap our
/// children) and no wait(-1) for children it does not own; either way the exit is still seen,
/// the status is lost, and a signal could reach a recycled pid. Signals are sent under the same
/// lock the reaper reaps under, so never to a pid that is no longer our child. Move-only;
/// dropping one unreaped leaves the reaping to its thread. Also a process that is not our
/// child (adopt(): a thread polls whether it still exists) or a second handle on one
/// (observer()): those wait and signal, never reap.
class ChildProcess {
public:
    ChildProcess() = default;
    ChildProcess(ChildProcess&& other) noexcept
        : pid_(std::exchange(other.pid_, -1)),
          exit_fd_(std::move(other.exit_fd_)),
          state_(std::move(other.state_)),
          reaps_(other.reaps_) {}
    ChildProcess& operator=(ChildProcess&& other) noexcept {
        pid_ = std::exchange(other.pid_, -1);
        exit_fd_ = std::move(other.exit_fd_);
        state_ = std::move(other.state_);
        reaps_ = other.reaps_;
        return *this;
    }

    /// Watches `pid`, a child this process just spawned and nobody reaped yet. On failure the
    /// child is killed and reaped.
    [[nodiscard]] static Result<ChildProcess> watch(pid_t pid) {
        int fds[2];
        if (!make_cloexec_pipe(fds)) {
            const int saved = errno;
            ::kill(pid, SIGKILL);
            detail::reap(pid);
            return fail(errc::spawn_failed,
                        std::string("cannot create the exit pipe of a child: ") + std::strerror(saved));
        }
        ChildProcess child;
        child.exit_fd_ = lift_fd(fds[0]);
        UniqueFd notify(fds[1]);
        if (!child.exit_fd_) {
            const int saved = errno;
            ::kill(pid, SIGKILL);
            detail::reap(pid);
            return fail(errc::spawn_failed,
                        std::string("cannot create the exit pipe of a child: ") + std::strerror(saved));
        }
        auto state = std::make_shared<State>();
        state->pid = pid;
        if (const int rc = start_detached([state, notify = std::move(notify)]() mutable { reaper(*state, notify); });
            rc != 0) {
            ::kill(pid, SIGKILL);
            detail::reap(pid);
            return fail(errc::spawn_failed,
                        std::string("cannot start the thread that waits for a child: ") + std::strerror(rc));
        }
        child.state_ = std::move(state);
        child.pid_ = pid;
        return child;
    }

    /// Watches `pid`, a live process that is not our child (a kept connection's ssh, started by
    /// an earlier process): POSIX can neither wait for it nor be told when it ends, so a thread
    /// asks every 50 ms whether it still exists (kill with signal 0) and makes exit_fd() readable
    /// when not; it leaves once every handle on the process is gone. reap() only forgets it. The
    /// caller has checked that `pid` names the process it means (see same_process); a signal
    /// between its end and the next poll could reach a process that got its pid since.
    [[nodiscard]] static Result<ChildProcess> adopt(pid_t pid) {
        int fds[2];
        if (!make_cloexec_pipe(fds))
            return fail(errc::spawn_failed,
                        std::string("cannot create the exit pipe of a process: ") + std::strerror(errno));
        ChildProcess process;
        process.exit_fd_ = lift_fd(fds[0]);
        UniqueFd notify(fds[1]);
        if (!process.exit_fd_)
            return fail(errc::spawn_failed,
                        std::string("cannot create the exit pipe of a process: ") + std::strerror(errno));
        auto state = std::make_shared<State>();
        state->pid = pid;
        std::weak_ptr<State> weak = state;
        if (const int rc = start_detached([weak, notify = std::move(notify)]() mutable { poller(weak, notify); });
            rc != 0)
            return fail(errc::spawn_failed,
                        std::string("cannot start the thread that watches a process: ") + std::strerror(rc));
        process.state_ = std::move(state);
        process.pid_ = pid;
        process.reaps_ = false;
        return process;
    }

    /// A second handle on the same process (a ControlMaster entry watching a dispatcher's own
    /// connection): it sees the exit and can signal, but never reaps, which is the owner's job.
    /// An empty handle when no descriptor is left.
    [[nodiscard]] ChildProcess observer() const {
        ChildProcess copy;
        if (!exit_fd_) return copy;
        copy.exit_fd_ = UniqueFd(::fcntl(exit_fd_.get(), F_DUPFD_CLOEXEC, 3));
        if (!copy.exit_fd_) return copy;
        copy.state_ = state_;
        copy.pid_ = pid_;
        copy.reaps_ = false;
        return copy;
    }

    /// Whether this watches a process (reaped or not); false when default-constructed.
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(exit_fd_); }
    /// The child's pid until it is reaped (by reap()), then -1.
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    /// Becomes readable when the child has exited, and stays so (also once it is reaped).
    [[nodiscard]] int exit_fd() const noexcept { return exit_fd_.get(); }
    [[nodiscard]] bool exited() const { return has_exited(exit_fd_.get()); }
    /// Sends `sig` to the child unless it was reaped.
    void signal(int sig) noexcept {
        if (!state_ || pid_ <= 0) return;
        std::lock_guard lock(state_->mutex);
        if (!state_->reaped) ::kill(state_->pid, sig);
    }
    /// Waits for the child to end and be reaped: its wait status, or nothing when it was reaped
    /// already (by reap(), or by someone else).
    std::optional<int> reap() noexcept {
        if (!state_ || pid_ <= 0) return std::nullopt;
        pid_ = -1;
        if (!reaps_) return std::nullopt;
        std::unique_lock lock(state_->mutex);
        state_->done.wait(lock, [&] { return state_->reaped; });
        return state_->status;
    }

private:
    struct State {
        std::mutex mutex;
        std::condition_variable done;
        pid_t pid = -1;
        bool reaped = false;
        std::optional<int> status;
    };

    /// The thread: waits without reaping, makes exit_fd() readable for good (the child has
    /// exited: whoever sees that may reap() at once), then reaps under the lock, so that signal()
    /// never sees a reaped pid. Once the pid is gone from the process table, the byte is there.
    static void reaper(State& state, const UniqueFd& notify) {
        siginfo_t info{};
        int rc = 0;
        while ((rc = ::waitid(P_PID, static_cast<id_t>(state.pid), &info, WEXITED | WNOWAIT)) < 0 && errno == EINTR) {
        }
        const bool no_wnowait = rc < 0 && errno == EINVAL;
        int status = 0;
        pid_t got = -1;
        if (no_wnowait) {
            // A system without WNOWAIT in waitid: reap unlocked; a signal() racing this could
            // then reach a pid recycled in between.
            while ((got = ::waitpid(state.pid, &status, 0)) < 0 && errno == EINTR) {
            }
        }
        const char byte = 0;
        while (write_no_sigpipe(notify.get(), &byte, 1) < 0 && errno == EINTR) {
        }
        {
            std::lock_guard lock(state.mutex);
            if (rc == 0) {
                while ((got = ::waitpid(state.pid, &status, 0)) < 0 && errno == EINTR) {
                }
            }
            // ECHILD: someone else reaped it (SIGCHLD ignored, or a wait(-1) in the application).
            if (got == state.pid) state.status = status;
            state.reaped = true;
        }
        state.done.notify_all();
    }

    /// adopt()'s thread: polls until the process is gone or nobody watches it any more.
    static void poller(const std::weak_ptr<State>& weak, const UniqueFd& notify) {
        for (;;) {
            {
                auto state = weak.lock();
                if (!state) return;
                std::lock_guard lock(state->mutex);
                if (::kill(state->pid, 0) != 0 && errno == ESRCH) {
                    const char byte = 0;
                    while (write_no_sigpipe(notify.get(), &byte, 1) < 0 && errno == EINTR) {
                    }
                    state->reaped = true;  // gone: signal() sends nothing from now on
                    state->done.notify_all();
                    return;
                }
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }

    pid_t pid_ = -1;
    UniqueFd exit_fd_;
    std::shared_ptr<State> state_;
    bool reaps_ = true;
};

#endif

}  // namespace shannot::detail
