// SPDX-License-Identifier: MIT
// Child processes: pidfd_open, signals through a pidfd, whether one has exited, reaping one.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include <shannot/detail/posix/unique_fd.hpp>

namespace shannot::detail {

inline int pidfd_open(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
inline int pidfd_send_signal(int pidfd, int sig) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

/// Whether an exit descriptor (a pidfd, or a process handle's exit_fd()) says its process has
/// exited; no descriptor counts as exited.
[[nodiscard]] inline bool has_exited(int exit_fd) {
    if (exit_fd < 0) return true;
    pollfd p{exit_fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}
[[nodiscard]] inline bool has_exited(const UniqueFd& pidfd) { return has_exited(pidfd.get()); }

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

/// Signals child `pid` with `sig` and reaps it: through `pidfd` when there is one; without one
/// (pidfd_open failed, or the handle lost it) through kill(2), which is safe only because a child
/// that is not reaped yet keeps its pid: it is checked first (waitpid WNOHANG), so the signal
/// never reaches another process, and the wait never blocks on a child nobody signalled.
/// A pidfd that no longer works (pidfd_send_signal fails: a descriptor closed under us) is
/// treated as none.
inline std::optional<int> signal_and_reap(pid_t& pid, const UniqueFd& pidfd, int sig) noexcept {
    if (pid <= 0) return std::nullopt;
    if (pidfd && (pidfd_send_signal(pidfd.get(), sig) == 0 || errno == ESRCH)) return reap(pid);
    int status = 0;
    pid_t rc = 0;
    while ((rc = ::waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR) {
    }
    if (rc != 0) {  // already ended (reaped now), or not a child of ours
        pid = -1;
        return rc > 0 ? std::optional<int>(status) : std::nullopt;
    }
    ::kill(pid, sig);
    return reap(pid);
}

}  // namespace shannot::detail
