// SPDX-License-Identifier: MIT
// A one-shot timer descriptor: the exit_fd() of handles whose end is a frame, not a process exit.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/thread.hpp>
#include <shannot/detail/posix/unique_fd.hpp>
#include <shannot/error.hpp>
#include <shannot/platform.hpp>

#if SHANNOT_PLATFORM_LINUX
#include <sys/timerfd.h>

#include <ctime>
#else
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#endif

namespace shannot::detail {

#if SHANNOT_PLATFORM_LINUX

/// A non-owning handle on a OneShotTimer, valid while the timer lives (also across its moves).
class TimerRef {
public:
    TimerRef() = default;
    explicit TimerRef(int fd) noexcept : fd_(fd) {}
    [[nodiscard]] int fd() const noexcept { return fd_; }
    /// Makes fd() readable after `ns` nanoseconds (0: at once), replacing an earlier arming.
    void arm(long long ns) const noexcept {
        itimerspec when{};
        when.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        when.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        if (ns == 0) when.it_value.tv_nsec = 1;
        ::timerfd_settime(fd_, 0, &when, nullptr);
    }
    /// Cancels an arming and clears an expiry: fd() is not readable until the next arm().
    void disarm() const noexcept {
        itimerspec off{};
        ::timerfd_settime(fd_, 0, &off, nullptr);
        std::uint64_t expirations = 0;
        [[maybe_unused]] auto n = ::read(fd_, &expirations, sizeof expirations);
    }

private:
    int fd_ = -1;
};

/// A descriptor that becomes readable when the timer fires: a timerfd.
class OneShotTimer {
public:
    OneShotTimer() = default;
    [[nodiscard]] static Result<OneShotTimer> create() {
        OneShotTimer timer;
        timer.fd_ = UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
        if (!timer.fd_) return fail(errc::spawn_failed, std::string("timerfd_create failed: ") + std::strerror(errno));
        return timer;
    }
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] TimerRef ref() const noexcept { return TimerRef(fd_.get()); }

private:
    UniqueFd fd_;
};

#else

/// What a portable timer shares with the thread that fires it late: a pipe (readable once
/// fired) and the arming in force.
struct TimerState {
    std::mutex mutex;
    std::condition_variable changed;
    UniqueFd read_end, write_end;
    std::uint64_t arming = 0;  ///< bumped by every arm() and disarm(): a late firing checks it
    bool fired = false;        ///< a byte is in the pipe

    /// Puts the byte in the pipe. Caller holds `mutex`.
    void fire_locked() noexcept {
        if (fired) return;
        const char byte = 0;
        while (write_no_sigpipe(write_end.get(), &byte, 1) < 0 && errno == EINTR) {
        }
        fired = true;
    }
};

/// A non-owning handle on a OneShotTimer, valid while the timer lives (also across its moves).
class TimerRef {
public:
    TimerRef() = default;
    explicit TimerRef(const std::shared_ptr<TimerState>& state) noexcept : state_(state.get()), owner_(state) {}
    [[nodiscard]] int fd() const noexcept { return state_ ? state_->read_end.get() : -1; }
    /// Makes fd() readable after `ns` nanoseconds (0: at once), replacing an earlier arming. A
    /// later firing is a thread that sleeps until then (only a kill that goes unanswered asks
    /// for one: the run loop's fast path is the immediate firing, a write to the pipe).
    void arm(long long ns) const noexcept {
        if (!state_) return;
        std::unique_lock lock(state_->mutex);
        const auto arming = ++state_->arming;
        state_->changed.notify_all();
        if (ns <= 0) {
            state_->fire_locked();
            return;
        }
        const auto at = std::chrono::steady_clock::now() + std::chrono::nanoseconds(ns);
        auto owner = owner_.lock();
        if (!owner) return;
        lock.unlock();
        const int rc = start_detached([owner, at, arming] {
            std::unique_lock waiting(owner->mutex);
            owner->changed.wait_until(waiting, at, [&] { return owner->arming != arming; });
            if (owner->arming == arming) owner->fire_locked();
        });
        // No thread to fire it later: fire now, which ends the wait early rather than never.
        if (rc != 0) arm(0);
    }
    /// Cancels an arming and clears an expiry: fd() is not readable until the next arm().
    void disarm() const noexcept {
        if (!state_) return;
        std::lock_guard lock(state_->mutex);
        ++state_->arming;
        state_->changed.notify_all();
        if (!state_->fired) return;
        char byte = 0;
        while (::read(state_->read_end.get(), &byte, 1) < 0 && errno == EINTR) {
        }
        state_->fired = false;
    }

private:
    TimerState* state_ = nullptr;
    std::weak_ptr<TimerState> owner_;
};

/// A descriptor that becomes readable when the timer fires: the read end of a pipe, written by
/// arm(0) directly or by a thread that waits for a later deadline (POSIX has no timerfd).
class OneShotTimer {
public:
    OneShotTimer() = default;
    OneShotTimer(OneShotTimer&&) noexcept = default;
    OneShotTimer& operator=(OneShotTimer&& other) noexcept {
        if (this != &other) {
            stop();
            state_ = std::move(other.state_);
        }
        return *this;
    }
    ~OneShotTimer() { stop(); }

    [[nodiscard]] static Result<OneShotTimer> create() {
        auto state = std::make_shared<TimerState>();
        if (!make_pipe(state->read_end, state->write_end) || !set_nonblocking(state->read_end.get()) ||
            !set_nonblocking(state->write_end.get()))
            return fail(errc::spawn_failed, std::string("cannot create a timer pipe: ") + std::strerror(errno));
        OneShotTimer timer;
        timer.state_ = std::move(state);
        return timer;
    }
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(state_); }
    [[nodiscard]] int fd() const noexcept { return state_ ? state_->read_end.get() : -1; }
    [[nodiscard]] TimerRef ref() const noexcept { return state_ ? TimerRef(state_) : TimerRef(); }

private:
    /// Ends a pending later firing now (its thread wakes and leaves).
    void stop() noexcept {
        if (!state_) return;
        std::lock_guard lock(state_->mutex);
        ++state_->arming;
        state_->changed.notify_all();
    }

    std::shared_ptr<TimerState> state_;
};

#endif

}  // namespace shannot::detail
