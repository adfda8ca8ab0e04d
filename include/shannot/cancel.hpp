// SPDX-License-Identifier: MIT
// CancelToken: a copyable handle that stops a run from any thread, waking its poll loop.
#pragma once

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>

#include <shannot/detail/posix/pipe.hpp>
#include <shannot/platform.hpp>

#if SHANNOT_PLATFORM_LINUX
#include <sys/eventfd.h>
#endif

namespace shannot {

/// Copies share one state. `cancel()` is thread-safe, idempotent and async-signal-safe (an
/// atomic flag and one write(2)); a run polls `fd()`.
class CancelToken {
public:
    CancelToken() : state_(std::make_shared<State>()) {}

    void cancel() noexcept {
        if (state_->cancelled.exchange(true)) return;
#if SHANNOT_PLATFORM_LINUX
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(state_->fd, &one, sizeof one);
#else
        const char one = 1;
        [[maybe_unused]] auto n = ::write(state_->write_fd, &one, sizeof one);
#endif
    }
    [[nodiscard]] bool cancelled() const noexcept { return state_->cancelled.load(); }
    /// Readable once cancelled (an eventfd on Linux, else a pipe's read end); -1 only if the
    /// kernel refused to make one.
    [[nodiscard]] int fd() const noexcept { return state_->fd; }

private:
#if SHANNOT_PLATFORM_LINUX
    struct State {
        int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        std::atomic<bool> cancelled{false};
        ~State() {
            if (fd >= 0) ::close(fd);
        }
    };
#else
    struct State {
        int fd = -1, write_fd = -1;
        std::atomic<bool> cancelled{false};
        State() noexcept {
            int fds[2];
            if (!detail::make_cloexec_pipe(fds)) return;
            // The write end must never block a signal handler: one byte is all it ever takes.
            if (!detail::set_nonblocking(fds[0]) || !detail::set_nonblocking(fds[1])) {
                ::close(fds[0]);
                ::close(fds[1]);
                return;
            }
            fd = fds[0];
            write_fd = fds[1];
        }
        ~State() {
            if (fd >= 0) ::close(fd);
            if (write_fd >= 0) ::close(write_fd);
        }
    };
#endif
    std::shared_ptr<State> state_;
};

}  // namespace shannot
