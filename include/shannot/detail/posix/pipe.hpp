// SPDX-License-Identifier: MIT
// Pipes: made close-on-exec and large, written in full without SIGPIPE, drained with a bound.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <string_view>

#include <shannot/detail/posix/unique_fd.hpp>
#include <shannot/platform.hpp>

#if !SHANNOT_PLATFORM_LINUX
#include <mutex>
#endif

namespace shannot::detail {

using Clock = std::chrono::steady_clock;

/// Capacity asked for a command's stdout and stderr pipes: the unprivileged maximum by default.
inline constexpr int output_pipe_capacity = 1 << 20;

#if SHANNOT_PLATFORM_LINUX

/// Creates a close-on-exec pipe with both ends lifted (see lift_fd). False (errno set) on failure.
[[nodiscard]] inline bool make_pipe(UniqueFd& read_end, UniqueFd& write_end) noexcept {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read_end = lift_fd(fds[0]);
    write_end = lift_fd(fds[1]);
    return read_end && write_end;
}

/// Makes an output pipe as large as an unprivileged process may (1 MiB by default): with the
/// kernel's 64 KiB, a command printing fast and our loop wake each other every few KiB; with
/// this it writes 16 times more before it waits, and each of our reads takes a full buffer.
/// Best effort: a lower /proc/sys/fs/pipe-max-size leaves the 64 KiB default.
inline void enlarge_output_pipe(int fd) noexcept { ::fcntl(fd, F_SETPIPE_SZ, output_pipe_capacity); }

#else

/// Without pipe2 (POSIX only has it since 2024; macOS has none) a pipe is made, then marked
/// close-on-exec: two steps, and a child spawned between them inherits the new ends. Every
/// descriptor the library makes that way, and every child it spawns (SpawnSetup::spawn), holds
/// this lock, so no child of ours ever inherits a descriptor of ours. (A plain mutex: each hold
/// is a few system calls, and a reader-writer lock would let a stream of pipe creations starve
/// a spawn.) A child the application spawns from another thread at that instant can still
/// inherit one (for it, the window is two fcntl calls wide); the effect is that we see EOF on
/// that pipe late, and every wait on a pipe has a bound (the run loop drains for
/// drain_after_exit once the process has exited; writes have deadlines).
[[nodiscard]] inline std::mutex& descriptor_creation_lock() noexcept {
    static std::mutex lock;
    return lock;
}

/// pipe(2), both ends close-on-exec, under descriptor_creation_lock(). False (errno set) on failure.
[[nodiscard]] inline bool make_cloexec_pipe(int (&fds)[2]) noexcept {
    std::lock_guard lock(descriptor_creation_lock());
    if (::pipe(fds) != 0) return false;
    if (::fcntl(fds[0], F_SETFD, FD_CLOEXEC) != 0 || ::fcntl(fds[1], F_SETFD, FD_CLOEXEC) != 0) {
        const int saved = errno;
        ::close(fds[0]);
        ::close(fds[1]);
        errno = saved;
        return false;
    }
    return true;
}

/// Creates a close-on-exec pipe with both ends lifted (see lift_fd). False (errno set) on failure.
[[nodiscard]] inline bool make_pipe(UniqueFd& read_end, UniqueFd& write_end) noexcept {
    int fds[2];
    if (!make_cloexec_pipe(fds)) return false;
    read_end = lift_fd(fds[0]);
    write_end = lift_fd(fds[1]);
    return read_end && write_end;
}

/// Pipe sizes cannot be set in POSIX (F_SETPIPE_SZ is Linux's): macOS and the BSDs grow a pipe's
/// buffer by themselves as a writer gets ahead (up to 64 KiB), so the default is kept.
inline void enlarge_output_pipe(int) noexcept {}

#endif

inline bool set_nonblocking(int fd) noexcept {
    const int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

/// write(2) to a pipe without risking SIGPIPE for the whole process: block it for this thread,
/// and swallow the one our write raised (the technique git and curl use).
[[nodiscard]] inline ssize_t write_no_sigpipe(int fd, const char* data, std::size_t size) {
    sigset_t pipe_set, old_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    ssize_t n = ::write(fd, data, size);
    const int saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
#if SHANNOT_PLATFORM_LINUX
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
        }
#else
        // macOS has no sigtimedwait: take the signal with sigwait, which returns at once when
        // it is pending (it is: our write raised it, for this thread, where it is blocked).
        sigpending(&pending);
        int taken = 0;
        if (sigismember(&pending, SIGPIPE) == 1) sigwait(&pipe_set, &taken);
#endif
    }
    pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
    errno = saved;
    return n;
}

/// Writes all of `data` to a non-blocking fd, waiting with poll until `deadline`.
[[nodiscard]] inline bool write_all(int fd, std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
        const ssize_t n = write_no_sigpipe(fd, data.data(), data.size());
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) return false;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000))) < 0 && errno != EINTR) return false;
        if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return false;
    }
    return true;
}

/// Appends what the non-blocking `fd` holds to `into`: until EOF or an error, until nothing more
/// arrives within `wait` (0: only what is there now), or after 512 KiB (a process still alive
/// could write forever). Collects a failed start's last words (bwrap's or ssh's complaints).
inline void drain_into(int fd, std::string& into, std::chrono::milliseconds wait) {
    char buffer[8192];
    for (std::size_t taken = 0; taken < (512u << 10);) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
            into.append(buffer, static_cast<std::size_t>(n));
            taken += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN && wait.count() > 0) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(wait.count())) > 0) continue;
        }
        return;
    }
}

}  // namespace shannot::detail
