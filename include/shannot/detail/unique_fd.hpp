// SPDX-License-Identifier: MIT
// UniqueFd: owns one file descriptor and closes it once.
#pragma once

#include <fcntl.h>
#include <unistd.h>

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
/// dup2 onto 0..4 can then never clobber a descriptor they still need to read.
[[nodiscard]] inline UniqueFd lift_fd(int fd, int floor = 10) noexcept {
    if (fd < 0) return UniqueFd();
    if (fd >= floor) return UniqueFd(fd);
    const int lifted = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
    ::close(fd);
    return UniqueFd(lifted);
}

inline bool set_nonblocking(int fd) noexcept {
    const int flags = ::fcntl(fd, F_GETFL);
    return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

}  // namespace shannot::detail
