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

}  // namespace shannot::detail
