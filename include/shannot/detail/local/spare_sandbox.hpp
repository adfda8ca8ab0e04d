// SPDX-License-Identifier: MIT
// A local sandbox started before its command is known (PosixSpawnOptions::spare_sandbox).
#pragma once

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/unique_fd.hpp>
#include <shannot/detail/shell_quote.hpp>
#include <shannot/error.hpp>
#include <shannot/limits.hpp>

namespace shannot::detail {

/// Where a spare's stand-in command reads its script, and where it says it is waiting for it
/// (single digits: dash's redirections take no other; 3, 4, 6 and 7 are bwrap's).
inline constexpr int spare_script_fd = 9;
inline constexpr int spare_ready_fd = 5;

/// What a spare sandbox runs until its command is known: the shell writes a byte to
/// spare_ready_fd once it is running (bwrap's setup is done then, limits set), closes it, and
/// sources its script from spare_script_fd, which blocks until the run writes it (spare_script).
[[nodiscard]] inline std::vector<std::string> spare_stand_in() {
    return {"/bin/sh", "-c", "echo >&5 && exec 5>&- && . /proc/self/fd/9"};
}

/// The script a spare's shell sources for `command`: it closes the script's descriptor, puts
/// back the variables a shell sets for itself (PWD, and bash's OLDPWD and SHLVL) as bwrap's
/// `--setenv`s in `options` (the bwrap options before `--`) left them, and execs the command,
/// which becomes the sandbox process a fresh sandbox would have started (same environment but
/// for its order, working directory, descriptors, rlimits, pids cgroup and syscall filter). If
/// the exec fails the shell exits 127 (not found) or 126, where bwrap would report a setup failure.
[[nodiscard]] inline std::string spare_script(const std::vector<std::string>& options,
                                              const std::vector<std::string>& command) {
    std::string script = "exec 9<&- && ";
    for (const char* name : {"PWD", "OLDPWD", "SHLVL"}) {
        const std::string* value = nullptr;
        for (std::size_t i = 0; i + 2 < options.size(); ++i)
            if (options[i] == "--setenv" && options[i + 1] == name) value = &options[i + 2];
        script += value ? std::string(name) + "=" + shell_quote(*value) + " && export " + name + " && "
                        : std::string("unset ") + name + " && ";
    }
    return script + "exec " + shell_join(command) + "\n";
}

/// What two launches must share for one to take a sandbox started for the other: everything
/// but the command (the bwrap options before `--`, the inherited files, stdin, the limits).
struct SpareShape {
    std::vector<std::string> options{};
    std::vector<InheritedFile> files{};
    bool pipe_stdin = false;
    std::optional<ResourceLimits> limits{};

    [[nodiscard]] static std::optional<SpareShape> of(const LaunchSpec& spec) {
        const auto& a = spec.bwrap_args;
        const auto end = std::find(a.begin(), a.end(), std::string("--"));
        if (end == a.end() || end + 1 == a.end()) return std::nullopt;
        return SpareShape{{a.begin(), end}, spec.files, spec.pipe_stdin, spec.limits};
    }
    [[nodiscard]] friend bool operator==(const SpareShape& x, const SpareShape& y) {
        if (x.options != y.options || x.pipe_stdin != y.pipe_stdin || x.limits != y.limits ||
            x.files.size() != y.files.size())
            return false;
        for (std::size_t i = 0; i < x.files.size(); ++i)
            if (x.files[i].fd != y.files[i].fd || x.files[i].path != y.files[i].path ||
                x.files[i].data != y.files[i].data)
                return false;
        return true;
    }
};

/// One spare sandbox kept ready for the next run of the same shape, built by a thread of its
/// own while the caller does other things: a run that finds it ready only hands the shell its
/// command (docs/performance.md, B17). The first run's shape gets a spare, later a shape that
/// two runs in a row had, so a caller whose every run differs does not pay for spares it never
/// uses (one per change of shape at most, killed unused). A spare whose shell does not start (a profile without /bin/sh) is not tried again for that shape. Thread-safe.
/// `Process` is the transport's process handle; `start` launches a spec with the two
/// descriptors of the stand-in (or -1, -1 for a plain launch).
template <class Process>
class SpareSandbox {
public:
    using Start = std::function<Result<Process>(const LaunchSpec&, int script_fd, int ready_fd)>;

    explicit SpareSandbox(Start start) : start_(std::move(start)) {}
    SpareSandbox(const SpareSandbox&) = delete;
    SpareSandbox& operator=(const SpareSandbox&) = delete;
    ~SpareSandbox() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        changed_.notify_all();
        if (worker_.joinable()) worker_.join();
    }

    /// Starts `spec`: in the spare if one of its shape is ready (or on its way: it waits for it,
    /// which is sooner than a sandbox started now), else a fresh sandbox.
    [[nodiscard]] Result<Process> launch(const LaunchSpec& spec) {
        auto shape = SpareShape::of(spec);
        if (!shape) return start_(spec, -1, -1);
        const auto dash = std::find(spec.bwrap_args.begin(), spec.bwrap_args.end(), std::string("--"));
        const std::vector<std::string> command(dash + 1, spec.bwrap_args.end());
        std::optional<Spare> taken, replaced;
        {
            std::unique_lock lock(mutex_);
            // A spare takes ~5 ms to build; one still not built after 2 s is stuck (a hung mount,
            // a stopped bwrap): the run does not wait for it any longer, nor past its own deadline.
            auto wait = std::chrono::milliseconds(2000);
            if (spec.timeout) wait = std::min(wait, *spec.timeout);
            changed_.wait_for(lock, wait, [&] { return stop_ || !coming_ || !(*coming_ == *shape); });
            if (ready_ && ready_->shape == *shape) {
                taken = std::move(ready_);
            } else if (ready_) {
                replaced = std::move(ready_);  // another shape's: this caller's runs have moved on
            }
            ready_.reset();
            const bool again = taken || !last_ || *last_ == *shape;
            last_ = *shape;
            if (again && !stop_ && !(failed_ && *failed_ == *shape)) {
                LaunchSpec stand_in = spec;
                stand_in.bwrap_args.assign(spec.bwrap_args.begin(), dash + 1);
                const auto program = spare_stand_in();
                stand_in.bwrap_args.insert(stand_in.bwrap_args.end(), program.begin(), program.end());
                wanted_ = std::move(stand_in);
                coming_ = *shape;
                if (!worker_.joinable()) worker_ = std::thread([this] { work(); });
            }
        }
        changed_.notify_all();
        replaced.reset();  // kills and reaps it, outside the lock
        if (taken) {
            if (hand_over(*taken, spec, command)) {
                used_.fetch_add(1, std::memory_order_relaxed);
                return std::move(taken->process);
            }
            taken.reset();
        }
        return start_(spec, -1, -1);
    }

    /// How many runs a spare served so far.
    [[nodiscard]] std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }

private:
    struct Spare {
        SpareShape shape;
        Process process;
        UniqueFd script;  ///< our end of the pipe the shell sources
    };

    /// Writes the command to the spare's shell; false (the caller starts a fresh sandbox) if the
    /// spare has died or its shell cannot take the script.
    [[nodiscard]] static bool hand_over(Spare& spare, const LaunchSpec& spec, const std::vector<std::string>& command) {
        pollfd exited{spare.process.exit_fd(), POLLIN, 0};
        if (::poll(&exited, 1, 0) != 0) return false;
        const std::string script = spare_script(spare.shape.options, command);
        // A pipe holds 64 KiB: a script that fits is written at once, whatever the shell does.
        if (script.size() > 65536) return false;
        if (write_no_sigpipe(spare.script.get(), script.data(), script.size()) != static_cast<ssize_t>(script.size()))
            return false;
        spare.script.reset();
        // The run's argv, as a fresh start of `spec` would have it: bwrap, then its arguments.
        std::vector<std::string> argv{spare.process.argv().front()};
        argv.insert(argv.end(), spec.bwrap_args.begin(), spec.bwrap_args.end());
        spare.process.set_argv(std::move(argv));
        return true;
    }

    void work() {
        std::unique_lock lock(mutex_);
        for (;;) {
            changed_.wait(lock, [&] { return stop_ || wanted_; });
            if (stop_) return;
            LaunchSpec spec = std::move(*wanted_);
            wanted_.reset();
            SpareShape shape = *coming_;
            lock.unlock();
            auto made = build(spec, shape);
            lock.lock();
            if (made)
                ready_ = std::move(made);
            else
                failed_ = shape;
            if (coming_ && *coming_ == shape && !wanted_) coming_.reset();
            changed_.notify_all();
        }
    }

    /// Starts the stand-in and waits (up to 30 s, or until the SpareSandbox goes) for its shell
    /// to say it runs.
    [[nodiscard]] std::optional<Spare> build(const LaunchSpec& spec, SpareShape shape) {
        UniqueFd script_read, script_write, ready_read, ready_write;
        if (!make_pipe(script_read, script_write) || !make_pipe(ready_read, ready_write)) return std::nullopt;
        auto process = start_(spec, script_read.get(), ready_write.get());
        script_read.reset();
        ready_write.reset();
        if (!process) return std::nullopt;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        for (;;) {
            {
                std::lock_guard lock(mutex_);
                if (stop_) return std::nullopt;  // the process handle kills and reaps it
            }
            if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
            pollfd p[2] = {{ready_read.get(), POLLIN, 0}, {process->exit_fd(), POLLIN, 0}};
            const int n = ::poll(p, 2, 100);
            if (n < 0 && errno != EINTR) return std::nullopt;
            if (n <= 0) continue;
            char byte = 0;
            if ((p[0].revents & POLLIN) && ::read(ready_read.get(), &byte, 1) == 1)
                return Spare{std::move(shape), std::move(*process), std::move(script_write)};
            return std::nullopt;  // the shell ended without a word, or bwrap did
        }
    }

    Start start_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::thread worker_;
    bool stop_ = false;
    std::optional<LaunchSpec> wanted_;  ///< the stand-in the worker starts next
    std::optional<SpareShape> coming_;  ///< the shape of the spare wanted or being built
    std::optional<Spare> ready_;        ///< a spare waiting for its command
    std::optional<SpareShape> last_;    ///< the shape of the last launch
    std::optional<SpareShape> failed_;  ///< a shape whose spare did not start
    std::atomic<std::uint64_t> used_{0};
};

}  // namespace shannot::detail
