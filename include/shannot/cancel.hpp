// SPDX-License-Identifier: MIT
// CancelToken: a copyable handle that stops a run from any thread, waking its poll loop.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>

namespace shannot {

/// Copies share one state. `cancel()` is thread-safe and idempotent; a run polls `fd()`.
class CancelToken {
public:
    CancelToken() : state_(std::make_shared<State>()) {}

    void cancel() noexcept {
        if (state_->cancelled.exchange(true)) return;
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(state_->fd, &one, sizeof one);
    }
    [[nodiscard]] bool cancelled() const noexcept { return state_->cancelled.load(); }
    /// Readable once cancelled (an eventfd); -1 only if the kernel refused to make one.
    [[nodiscard]] int fd() const noexcept { return state_->fd; }

private:
    struct State {
        int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        std::atomic<bool> cancelled{false};
        ~State() {
            if (fd >= 0) ::close(fd);
        }
    };
    std::shared_ptr<State> state_;
};

}  // namespace shannot
