// SPDX-License-Identifier: MIT
// SpawnSetup: posix_spawn's file actions and attributes, with what every child of ours starts with.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>

namespace shannot::detail {

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
        posix_spawnattr_setflags(&attributes_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions_);
        posix_spawnattr_destroy(&attributes_);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;

    /// The child starts a session of its own (setsid) instead of a process group.
    void new_session() noexcept {
        posix_spawnattr_setflags(&attributes_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
    }
    /// The child's descriptor `target` becomes a copy of our `fd`.
    void dup_to(int fd, int target) noexcept { posix_spawn_file_actions_adddup2(&actions_, fd, target); }
    /// The child's descriptor `target` is `path`, opened there.
    void open_at(int target, const char* path, int flags, mode_t mode = 0) noexcept {
        posix_spawn_file_actions_addopen(&actions_, target, path, flags, mode);
    }
    void close(int fd) noexcept { posix_spawn_file_actions_addclose(&actions_, fd); }
    /// Every descriptor from `lowest` up is closed in the child.
    void close_from(int lowest) noexcept { posix_spawn_file_actions_addclosefrom_np(&actions_, lowest); }

    [[nodiscard]] const posix_spawn_file_actions_t* actions() const noexcept { return &actions_; }
    [[nodiscard]] const posix_spawnattr_t* attributes() const noexcept { return &attributes_; }

private:
    posix_spawn_file_actions_t actions_;
    posix_spawnattr_t attributes_;
};

}  // namespace shannot::detail
