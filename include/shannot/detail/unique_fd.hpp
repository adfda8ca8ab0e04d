// SPDX-License-Identifier: MIT
// UniqueFd: owns one file descriptor and closes it once.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include <utility>

namespace shannot::detail {

class UniqueFd {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

private:
    int fd_ = -1;
};

/// Moves `fd` to a number >= `floor`, close-on-exec, closing the original: file actions that
/// dup2 onto 0..4 can then never clobber a descriptor they still need to read. The floor is
/// just past them so that a small RLIMIT_NOFILE still leaves room; on failure errno is EMFILE
/// when the limit is what stood in the way (fcntl says EINVAL when `floor` is past it).
[[nodiscard]] inline UniqueFd lift_fd(int fd, int floor = 5) noexcept {
    if (fd < 0) return UniqueFd();
    if (fd >= floor) return UniqueFd(fd);
    const int lifted = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
    const int saved = lifted < 0 && errno == EINVAL ? EMFILE : errno;
    ::close(fd);
    errno = saved;
    return UniqueFd(lifted);
}

/// Creates a close-on-exec pipe with both ends lifted (see lift_fd). False (errno set) on failure.
[[nodiscard]] inline bool make_pipe(UniqueFd& read_end, UniqueFd& write_end) noexcept {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read_end = lift_fd(fds[0]);
    write_end = lift_fd(fds[1]);
    return read_end && write_end;
}

/// Capacity asked for a command's stdout and stderr pipes: the unprivileged maximum by default.
inline constexpr int output_pipe_capacity = 1 << 20;

/// Makes an output pipe as large as an unprivileged process may (1 MiB by default): a command
/// printing fast then writes 16 times more before it waits for us, and each of our reads takes
/// a full buffer (B7: 1 GiB of output ran at 0.47x a plain pipe with 64 KiB, 1.08x with this).
/// Best effort: a lower /proc/sys/fs/pipe-max-size leaves the 64 KiB default.
inline void enlarge_output_pipe(int fd) noexcept { ::fcntl(fd, F_SETPIPE_SZ, output_pipe_capacity); }

inline bool set_nonblocking(int fd) noexcept {
    const int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

}  // namespace shannot::detail
