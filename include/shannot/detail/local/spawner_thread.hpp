// SPDX-License-Identifier: MIT
// One long-lived thread that performs every posix_spawn of bwrap, so --die-with-parent holds.
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <cerrno>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace shannot::detail {

/// bwrap's --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that forked
/// bwrap exits, not the process. A sandbox started from a short-lived thread would be killed
/// with it. So every spawn happens on this thread, which lives as long as the process.
/// A template only to defer its compilation to where it is used (see BasicPosixSpawnTransport).
template <class Deferred>
class SpawnerThread {
public:
    /// Runs `spawn` on the spawner thread and returns its result (an errno value, 0 on success;
    /// ESRCH once quit()).
    int run(const std::function<int()>& spawn) {
        std::unique_lock lock(mutex_);
        if (quit_) return ESRCH;
        if (!started_) {
            std::thread(&SpawnerThread::loop, this).detach();
            started_ = true;
        }
        // One request at a time; callers queue on the mutex.
        done_cv_.wait(lock, [&] { return job_ == nullptr; });
        const std::function<int()>* mine = &spawn;
        job_ = mine;
        finished_ = false;
        job_cv_.notify_one();
        done_cv_.wait(lock, [&] { return finished_ && job_ == mine; });
        const int result = result_;
        job_ = nullptr;
        done_cv_.notify_all();
        return result;
    }

    /// Ends the thread once it is idle (CgroupSlots at exit, so that its cgroup can go).
    void quit() {
        std::lock_guard lock(mutex_);
        quit_ = true;
        job_cv_.notify_all();
    }

    static SpawnerThread& instance() {
        // Leaked on purpose: the thread must outlive every static destructor that may still spawn.
        static auto* spawner = new SpawnerThread;
        return *spawner;
    }

private:
    void loop() {
        std::unique_lock lock(mutex_);
        while (true) {
            job_cv_.wait(lock, [&] { return quit_ || (job_ != nullptr && !finished_); });
            if (quit_) return;
            const auto* job = job_;
            lock.unlock();
            const int result = (*job)();
            lock.lock();
            result_ = result;
            finished_ = true;
            done_cv_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable job_cv_;
    std::condition_variable done_cv_;
    const std::function<int()>* job_ = nullptr;
    bool finished_ = false;
    bool started_ = false;
    bool quit_ = false;
    int result_ = 0;
};

}  // namespace shannot::detail
