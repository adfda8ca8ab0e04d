// SPDX-License-Identifier: MIT
// Shared by the benchmark programs (issue 6): timing, interleaved A/B repetitions, medians, a bare
// posix_spawn that drains pipes, and the one-line report every benchmark prints.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <shannot/detail/posix/data_fd.hpp>

extern char** environ;

namespace shannot_bench {

using Clock = std::chrono::steady_clock;

/// A benchmark that cannot measure (a run failed, a tool is missing) throws this; main() prints
/// it and exits 1, after destructors have stopped what the benchmark started (sshd, ssh masters).
struct Failure : std::runtime_error {
    using std::runtime_error::runtime_error;
};
[[noreturn]] inline void die(const std::string& what) { throw Failure(what); }

/// Calls `body()` and turns a Failure into exit status 1 with the reason on stderr.
template <class F>
int guarded(F&& body) {
    // Output piped into `head` must not kill the benchmark before its destructors stop the
    // private sshd and ControlMasters it started: a write to a closed pipe just fails.
    std::signal(SIGPIPE, SIG_IGN);
    try {
        return body();
    } catch (const std::exception& e) {
        std::fflush(stdout);
        std::fprintf(stderr, "bench: measurement failed: %s\n", e.what());
        return 1;
    }
}

/// Exit status meson reads as "skipped".
inline constexpr int exit_skip = 77;

/// Seconds `f()` took.
template <class F>
double time_once(F&& f) {
    const auto start = Clock::now();
    f();
    return std::chrono::duration<double>(Clock::now() - start).count();
}

/// The value at quantile q (0..1) of the samples, by nearest rank; the median is q = 0.5
/// (the mean of the two middle values for an even count).
inline double quantile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    if (q == 0.5) {
        const auto n = v.size();
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
    const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}
inline double median(std::vector<double> v) { return quantile(std::move(v), 0.5); }

struct Samples {
    std::vector<double> a, b;  ///< seconds per repetition
};

/// `warmup` untimed runs of each, then `reps` timed runs of each, interleaved, the starting one
/// rotated every repetition so no side always runs on a cache (or a scheduler) another left warm.
inline std::vector<std::vector<double>> interleave_all(int reps, int warmup,
                                                       const std::vector<std::function<void()>>& runs) {
    for (int i = 0; i < warmup; ++i)
        for (const auto& run : runs) run();
    std::vector<std::vector<double>> samples(runs.size());
    for (auto& s : samples) s.reserve(static_cast<std::size_t>(reps));
    for (int i = 0; i < reps; ++i)
        for (std::size_t k = 0; k < runs.size(); ++k) {
            const auto j = (k + static_cast<std::size_t>(i)) % runs.size();
            samples[j].push_back(time_once(runs[j]));
        }
    return samples;
}

/// Two-way interleave_all: A/B, then B/A, and so on.
template <class A, class B>
Samples interleave(int reps, int warmup, A&& a, B&& b) {
    auto s = interleave_all(reps, warmup,
                            {std::function<void()>(std::forward<A>(a)), std::function<void()>(std::forward<B>(b))});
    return Samples{std::move(s[0]), std::move(s[1])};
}

inline std::string format(const char* fmt, double value) {
    char text[64];
    std::snprintf(text, sizeof text, fmt, value);
    return text;
}

/// "850 us", "6.12 ms", "1.25 s".
inline std::string fmt_time(double seconds) {
    if (seconds < 1e-3) return format("%.0f us", seconds * 1e6);
    if (seconds < 1) return format(seconds < 0.1 ? "%.2f ms" : "%.1f ms", seconds * 1e3);
    return format("%.2f s", seconds);
}

/// "1.03x", "12.5x", "140x"; one more digit when rounding would make it read as the target
/// (0.797 against 0.8 prints "0.797x", not a MISS next to "0.80x").
inline std::string fmt_ratio(double r, double target = 0) {
    const auto text = format(r < 10 ? "%.2fx" : r < 100 ? "%.1fx" : "%.0fx", r);
    if (r != target && text == format(r < 10 ? "%.2fx" : r < 100 ? "%.1fx" : "%.0fx", target))
        return format(r < 10 ? "%.3fx" : r < 100 ? "%.2fx" : "%.1fx", r);
    return text;
}

inline std::string fmt_mib(double bytes) { return format("%.1f MiB", bytes / (1024.0 * 1024.0)); }
inline std::string fmt_rate(double bytes_per_second) { return format("%.2f GB/s", bytes_per_second / 1e9); }

enum class Goal { at_most, at_least };

/// The uniform result line, e.g.
///   B1 local run vs bare spawn: 6.10 ms vs 5.90 ms = 1.03x (target <= 1.05x) PASS
/// `figures` may be empty (a single figure: "B8 ...: 9.1 MiB (target <= 16 MiB) PASS").
inline void print_result(const std::string& id, const std::string& label, const std::string& figures, double value,
                         const std::string& value_text, Goal goal, double target, const std::string& target_text) {
    const bool pass = goal == Goal::at_most ? value <= target : value >= target;
    std::printf("%s %s: %s%s%s (target %s %s) %s\n", id.c_str(), label.c_str(), figures.c_str(),
                figures.empty() ? "" : " = ", value_text.c_str(),
                goal == Goal::at_most ? "<=" : ">=", target_text.c_str(), pass ? "PASS" : "MISS");
    std::fflush(stdout);
}

/// An indented detail line under a result: how many runs, and their spread.
inline void print_spread(const std::string& name_a, const std::vector<double>& a, const std::string& name_b,
                         const std::vector<double>& b) {
    std::printf("    medians of %zu interleaved runs each; %s min/p90 %s/%s, %s min/p90 %s/%s\n", a.size(),
                name_a.c_str(), fmt_time(quantile(a, 0)).c_str(), fmt_time(quantile(a, 0.9)).c_str(), name_b.c_str(),
                fmt_time(quantile(b, 0)).c_str(), fmt_time(quantile(b, 0.9)).c_str());
    std::fflush(stdout);
}

inline void print_note(const std::string& text) {
    std::printf("    %s\n", text.c_str());
    std::fflush(stdout);
}

/// How a bare spawn ended and what it printed.
struct Spawned {
    int status = -1;  ///< waitpid status
    std::uint64_t out_bytes = 0, err_bytes = 0;
    std::string out, err;  ///< the first `keep` bytes of each

    [[nodiscard]] bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
    [[nodiscard]] std::string describe() const {
        std::string what = WIFEXITED(status)     ? "exit status " + std::to_string(WEXITSTATUS(status))
                           : WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                                 : "status " + std::to_string(status);
        if (!err.empty()) what += ": " + err.substr(0, 500);
        return what;
    }
};

struct SpawnOptions {
    bool search_path = false;  ///< posix_spawnp (argv[0] looked up on PATH) instead of posix_spawn
    bool inherit_env = true;   ///< this process's environment, else an empty one
    bool fd4_devnull = false;  ///< fd 4 open on /dev/null (for a bwrap argv holding --json-status-fd 4)
    /// Bytes readable at fd 6, from a sealed memfd as the local transport makes it (for a bwrap
    /// argv holding --seccomp 6: the built-in syscall filter).
    std::string fd6_data{};
    bool stderr_devnull = false;  ///< stderr on /dev/null: stdout alone is read, blocking, no poll
    std::size_t keep = 4096;      ///< bytes of each stream kept in Spawned::out / err
};

/// Spawns argv with stdin on /dev/null and stdout/stderr on pipes, reads both to EOF into one
/// 64 KiB buffer (counting, keeping only the first `keep` bytes), and reaps the child: the least
/// a caller can do to run a command and drain it. With `stderr_devnull`, a plain blocking read
/// loop on stdout: a raw pipe.
inline Spawned spawn_drain(const std::vector<std::string>& argv, const SpawnOptions& options = {}) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
        die(std::string("pipe2: ") + std::strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    if (options.stderr_devnull)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    else
        posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    if (options.fd4_devnull) posix_spawn_file_actions_addopen(&actions, 4, "/dev/null", O_WRONLY, 0);
    shannot::detail::UniqueFd fd6;
    if (!options.fd6_data.empty()) {
        fd6 = shannot::detail::sealed_data_fd(options.fd6_data, 7);
        if (!fd6) die(std::string("memfd for fd 6: ") + std::strerror(errno));
        posix_spawn_file_actions_adddup2(&actions, fd6.get(), 6);
    }
    // A `--file N PATH` of the argv (a file the local transport gives bwrap as a copy, always of
    // the same path on the host): PATH opened at N, as the transport does. Last, so that nothing
    // dup'd above is closed before its turn.
    for (const auto& [fd, path] : shannot::detail::file_copies(argv))
        posix_spawn_file_actions_addopen(&actions, fd, path.c_str(), O_RDONLY, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    char* no_env[] = {nullptr};
    char** envp = options.inherit_env ? environ : no_env;
    pid_t pid = -1;
    const int rc = options.search_path ? ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp)
                                       : ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    if (rc != 0) die("cannot start " + argv[0] + ": " + std::strerror(rc));

    Spawned result;
    static thread_local char buffer[1 << 16];
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open = 2;
    if (options.stderr_devnull) {
        ::close(err[0]);
        fds[1].fd = -1;
        open = 1;
        while (true) {
            const ssize_t n = ::read(out[0], buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            result.out_bytes += static_cast<std::uint64_t>(n);
            if (result.out.size() < options.keep)
                result.out.append(buffer, std::min(static_cast<std::size_t>(n), options.keep - result.out.size()));
        }
        ::close(out[0]);
        open = 0;
    }
    while (open > 0) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            die(std::string("poll: ") + std::strerror(errno));
        }
        for (int k = 0; k < 2; ++k) {
            if (fds[k].fd < 0 || fds[k].revents == 0) continue;
            const ssize_t n = ::read(fds[k].fd, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n > 0) {
                auto& kept = k == 0 ? result.out : result.err;
                (k == 0 ? result.out_bytes : result.err_bytes) += static_cast<std::uint64_t>(n);
                if (kept.size() < options.keep)
                    kept.append(buffer, std::min(static_cast<std::size_t>(n), options.keep - kept.size()));
                continue;
            }
            ::close(fds[k].fd);
            fds[k].fd = -1;
            --open;
        }
    }
    while (::waitpid(pid, &result.status, 0) < 0)
        if (errno != EINTR) die(std::string("waitpid: ") + std::strerror(errno));
    return result;
}

/// The transport's bwrap argv (dry_run's), made runnable by spawn_drain: `--block-fd N` (the
/// limits handshake: the transport lets bwrap go once it has set the limits; a bare spawn sets
/// none) is left out, and `--seccomp N` reads SpawnOptions::fd6_data at fd 6.
inline std::vector<std::string> bare_bwrap_args(const std::vector<std::string>& args) {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--") {
            out.insert(out.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
            break;
        }
        if (args[i] == "--block-fd" && i + 1 < args.size()) {
            ++i;
            continue;
        }
        out.push_back(args[i]);
        if (args[i] == "--seccomp" && i + 1 < args.size()) {
            out.push_back("6");
            ++i;
        }
    }
    return out;
}

/// `--reps N` on the command line overrides a benchmark's default repetition count.
inline int reps_from_args(int argc, char** argv, int fallback) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--reps") == 0) {
            const int n = std::atoi(argv[i + 1]);
            if (n > 0) return n;
        }
    return fallback;
}

}  // namespace shannot_bench
