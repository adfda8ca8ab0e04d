// SPDX-License-Identifier: MIT
// SpawnSetup: posix_spawn's file actions and attributes, with what every child of ours starts with.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>

#include <shannot/detail/posix/pipe.hpp>
#include <shannot/platform.hpp>

#if !SHANNOT_PLATFORM_LINUX
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <mutex>
#endif
#if defined(__APPLE__)
#include <crt_externs.h>
#endif

extern char** environ;

namespace shannot::detail {

/// The environment a spawned helper (ssh) gets: this process's. On macOS a shared library cannot
/// name `environ` (only the main program's link can): it asks the C runtime for it.
[[nodiscard]] inline char** spawn_environment() noexcept {
#if defined(__APPLE__)
    return *_NSGetEnviron();
#else
    return environ;
#endif
}

/// The file actions and attributes of one posix_spawn, destroyed with this object. Every child
/// (bwrap here, the ssh client) starts with an empty signal mask and default dispositions for
/// every signal, whatever the caller's threads block or ignore (an ignored SIGPIPE or SIGTERM
/// would otherwise be inherited through exec), and in a process group of its own: a terminal's
/// Ctrl-C, sent to the caller's foreground group, does not reach it; the caller decides how its
/// runs end.
class SpawnSetup {
public:
    SpawnSetup() noexcept {
        posix_spawn_file_actions_init(&actions_);
        posix_spawnattr_init(&attributes_);
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        sigdelset(&all, SIGKILL);
        sigdelset(&all, SIGSTOP);
        posix_spawnattr_setsigmask(&attributes_, &none);
        posix_spawnattr_setsigdefault(&attributes_, &all);
        posix_spawnattr_setpgroup(&attributes_, 0);
        posix_spawnattr_setflags(&attributes_, flags_);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions_);
        posix_spawnattr_destroy(&attributes_);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;

    /// The child starts a session of its own (setsid) instead of a process group. Kept in
    /// flags_, so that close_from() on macOS (which adds a flag) does not undo it.
    void new_session() noexcept {
        flags_ = static_cast<short>((flags_ & ~POSIX_SPAWN_SETPGROUP) | POSIX_SPAWN_SETSID);
        posix_spawnattr_setflags(&attributes_, flags_);
    }
    /// The child's descriptor `target` becomes a copy of our `fd`.
    void dup_to(int fd, int target) noexcept { posix_spawn_file_actions_adddup2(&actions_, fd, target); }
    /// The child's descriptor `target` is `path`, opened there.
    void open_at(int target, const char* path, int flags, mode_t mode = 0) noexcept {
        posix_spawn_file_actions_addopen(&actions_, target, path, flags, mode);
    }
    void close(int fd) noexcept { posix_spawn_file_actions_addclose(&actions_, fd); }

#if SHANNOT_PLATFORM_LINUX
    /// Every descriptor from `lowest` up is closed in the child.
    void close_from(int lowest) noexcept { posix_spawn_file_actions_addclosefrom_np(&actions_, lowest); }

    /// posix_spawn (`search_path`: posix_spawnp) with these actions and attributes: 0 or an errno value.
    [[nodiscard]] int spawn(pid_t* pid, const char* path, char* const argv[], char* const envp[],
                            bool search_path) const noexcept {
        return search_path ? ::posix_spawnp(pid, path, &actions_, &attributes_, argv, envp)
                           : ::posix_spawn(pid, path, &actions_, &attributes_, argv, envp);
    }
#else
    /// Every descriptor from `lowest` up that no file action made is closed in the child, when
    /// spawn() runs. macOS does it atomically (POSIX_SPAWN_CLOEXEC_DEFAULT, which also closes
    /// any descriptor below `lowest` that no action made: callers give 0-2 by actions). Other
    /// systems have no such call in POSIX (closefrom_np is glibc's and FreeBSD 13's): spawn()
    /// lists the descriptors open without FD_CLOEXEC and closes each.
    void close_from(int lowest) noexcept {
#if defined(__APPLE__)
        flags_ |= POSIX_SPAWN_CLOEXEC_DEFAULT;
        posix_spawnattr_setflags(&attributes_, flags_);
        static_cast<void>(lowest);
#else
        close_from_ = lowest;
#endif
    }

    /// posix_spawn (`search_path`: posix_spawnp) with these actions and attributes: 0 or an errno
    /// value. Holds descriptor_creation_lock(), so that no descriptor of the library is between
    /// pipe() and its FD_CLOEXEC now. What it cannot see: a descriptor the application opens
    /// without FD_CLOEXEC on another thread after the listing reaches the child.
    [[nodiscard]] int spawn(pid_t* pid, const char* path, char* const argv[], char* const envp[],
                            bool search_path) noexcept {
        std::lock_guard lock(descriptor_creation_lock());
#if !defined(__APPLE__)
        if (close_from_ >= 0) {
            for_each_inheritable(close_from_, [&](int fd) { posix_spawn_file_actions_addclose(&actions_, fd); });
            close_from_ = -1;
        }
#endif
        return search_path ? ::posix_spawnp(pid, path, &actions_, &attributes_, argv, envp)
                           : ::posix_spawn(pid, path, &actions_, &attributes_, argv, envp);
    }

    /// Calls `f(fd)` for each descriptor from `lowest` up to the descriptor limit that is open and
    /// not close-on-exec: what a child would inherit. poll(2) tells closed descriptors (POLLNVAL)
    /// a thousand at a time, so even a limit of a million costs about a millisecond.
    template <class F>
    static void for_each_inheritable(int lowest, F&& f) noexcept {
        constexpr long cap = 1L << 20;  // an unlimited RLIMIT_NOFILE: the first million only
        long limit = cap;
        rlimit lim{};
        if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
            limit = std::min(cap, static_cast<long>(lim.rlim_cur));
        std::array<pollfd, 1024> batch{};
        for (long first = lowest; first < limit;) {
            const auto n = static_cast<nfds_t>(std::min<long>(static_cast<long>(batch.size()), limit - first));
            for (nfds_t i = 0; i < n; ++i) batch[i] = pollfd{static_cast<int>(first + static_cast<long>(i)), 0, 0};
            int rc = 0;
            while ((rc = ::poll(batch.data(), n, 0)) < 0 && errno == EINTR) {
            }
            for (nfds_t i = 0; i < n; ++i) {
                if (rc >= 0 && (batch[i].revents & POLLNVAL)) continue;  // not open
                const int flags = ::fcntl(batch[i].fd, F_GETFD);
                if (flags >= 0 && !(flags & FD_CLOEXEC)) f(batch[i].fd);
            }
            first += static_cast<long>(n);
        }
    }
#endif

    [[nodiscard]] const posix_spawn_file_actions_t* actions() const noexcept { return &actions_; }
    [[nodiscard]] const posix_spawnattr_t* attributes() const noexcept { return &attributes_; }

private:
    posix_spawn_file_actions_t actions_;
    posix_spawnattr_t attributes_;
    short flags_ = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP;
#if !SHANNOT_PLATFORM_LINUX && !defined(__APPLE__)
    int close_from_ = -1;  ///< the lowest descriptor spawn() closes (-1: none)
#endif
};

}  // namespace shannot::detail
