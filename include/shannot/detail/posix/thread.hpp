// SPDX-License-Identifier: MIT
// start_detached: the portable seam's helper threads (a child's reaper, a timer), with every signal blocked.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <memory>
#include <type_traits>
#include <utility>

namespace shannot::detail {

/// Runs `work()` on a new detached thread. The thread blocks every signal, so the application's
/// handlers never run on it and a signal it waits for with sigwait is never taken here. Returns
/// 0, or pthread_create's error (EAGAIN when the system has no thread left): an error value,
/// where std::thread would throw.
template <class F>
[[nodiscard]] int start_detached(F&& work) noexcept {
    using Work = std::decay_t<F>;
    auto owned = std::make_unique<Work>(std::forward<F>(work));
    pthread_attr_t attributes;
    if (const int rc = pthread_attr_init(&attributes); rc != 0) return rc;
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);  // inherited by the new thread
    pthread_t thread;
    const int rc = pthread_create(
        &thread, &attributes,
        [](void* arg) -> void* {
            std::unique_ptr<Work> mine(static_cast<Work*>(arg));
            (*mine)();
            return nullptr;
        },
        owned.get());
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    pthread_attr_destroy(&attributes);
    if (rc == 0) static_cast<void>(owned.release());  // the thread owns it now
    return rc;
}

}  // namespace shannot::detail
