// SPDX-License-Identifier: MIT
// A one-shot timer descriptor: the exit_fd() of handles whose end is a frame, not a process exit.
#pragma once

#include <sys/timerfd.h>

#include <ctime>

namespace shannot::detail {

/// Arms a timerfd to fire after `ns` nanoseconds (0: at once). Exit timers of the ssh and the
/// session process handles use it: they end the run loop when the end frames arrived.
inline void arm_timer(int timer_fd, long long ns) noexcept {
    itimerspec when{};
    when.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    when.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    if (ns == 0) when.it_value.tv_nsec = 1;
    ::timerfd_settime(timer_fd, 0, &when, nullptr);
}

}  // namespace shannot::detail
