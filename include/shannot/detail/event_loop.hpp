// SPDX-License-Identifier: MIT
// The one poll loop of a run: feed stdin, drain stdout and stderr, watch exit, deadline, cancel.
#pragma once

#include <poll.h>
#include <pthread.h>
#include <sys/timerfd.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/frame_filter.hpp>
#include <shannot/process_result.hpp>

namespace shannot::detail {

using Clock = std::chrono::steady_clock;

/// After the process exits, how long its pipes may stay open before we stop reading: a
/// grandchild that inherited stdout must not hold the caller forever.
inline constexpr std::chrono::milliseconds drain_after_exit{250};

struct LoopOutcome {
    ExitInfo exit;
    bool timed_out = false;
    bool cancelled = false;
    std::chrono::nanoseconds duration{0};
};

/// write(2) to a pipe without risking SIGPIPE for the whole process: block it for this thread,
/// and swallow the one our write raised (the technique git and curl use).
[[nodiscard]] inline ssize_t write_no_sigpipe(int fd, const char* data, std::size_t size) {
    sigset_t pipe_set, old_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
    ssize_t n = ::write(fd, data, size);
    const int saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
        const timespec zero{0, 0};
        while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
    errno = saved;
    return n;
}

/// Writes all of `data` to a non-blocking fd, waiting with poll until `deadline`.
[[nodiscard]] inline bool write_all(int fd, std::string_view data, Clock::time_point deadline) {
    while (!data.empty()) {
        const ssize_t n = write_no_sigpipe(fd, data.data(), data.size());
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) return false;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000))) < 0 && errno != EINTR) return false;
        if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return false;
    }
    return true;
}

/// Arms a timerfd to fire after `ns` nanoseconds (0: at once). Exit timers of the ssh and the
/// session process handles use it: they end the run loop when the end frames arrived.
inline void arm_timer(int timer_fd, long long ns) noexcept {
    itimerspec when{};
    when.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    when.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    if (ns == 0) when.it_value.tv_nsec = 1;
    ::timerfd_settime(timer_fd, 0, &when, nullptr);
}

/// How waiting for a helper's first frames ended.
enum class FirstFrames { ready, ended, timed_out };

/// Reads `out_fd` and `err_fd` through their frame filters until each has carried a frame (the
/// "ready" a dispatcher or a session agent prints at start), a stream hits EOF or `exit_fd`
/// (a pidfd) fires, or `deadline` passes. What arrives on stderr outside frames (a login
/// banner, bwrap's or ssh's complaints) is kept in `diagnostics`, its last 8 KiB.
inline FirstFrames await_first_frames(int out_fd, int err_fd, int exit_fd, FrameFilter& out_frames, FrameFilter& err_frames,
                                      Clock::time_point deadline, std::string& diagnostics) {
    std::string junk;
    char buffer[8192];
    while (out_frames.payloads().empty() || err_frames.payloads().empty()) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return FirstFrames::timed_out;
        pollfd fds[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {exit_fd, POLLIN, 0}};
        if (::poll(fds, 3, static_cast<int>(std::min<long long>(left, 60'000))) < 0) {
            if (errno == EINTR) continue;
            return FirstFrames::ended;
        }
        bool ended = fds[2].revents != 0;
        for (int k = 0; k < 2; ++k) {
            if (!fds[k].revents) continue;
            const ssize_t n = ::read(fds[k].fd, buffer, sizeof buffer);
            if (n > 0) {
                junk.clear();
                (k == 0 ? out_frames : err_frames).feed(std::string_view(buffer, static_cast<std::size_t>(n)), junk);
                if (k == 1) diagnostics += junk;
                if (diagnostics.size() > 8192) diagnostics.erase(0, diagnostics.size() - 8192);
            } else if (n == 0) {
                ended = true;
            }
        }
        if (ended && (out_frames.payloads().empty() || err_frames.payloads().empty())) return FirstFrames::ended;
    }
    return FirstFrames::ready;
}

/// Appends what the non-blocking `fd` holds to `into`: until EOF or an error, until nothing more
/// arrives within `wait` (0: only what is there now), or after 512 KiB (a process still alive
/// could write forever). Collects a failed start's last words (bwrap's or ssh's complaints).
inline void drain_into(int fd, std::string& into, std::chrono::milliseconds wait) {
    char buffer[8192];
    for (std::size_t taken = 0; taken < (512u << 10);) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
            into.append(buffer, static_cast<std::size_t>(n));
            taken += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN && wait.count() > 0) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(wait.count())) > 0) continue;
        }
        return;
    }
}

/// Runs `process` to completion. `sink(StreamKind, std::string_view)` receives every byte the
/// command printed, after the transport's optional filter. Never blocks on a full pipe: output
/// is read as long as the process lives, whatever the sink keeps.
template <ProcessHandle P, class Sink>
LoopOutcome run_loop(P& process, const std::optional<std::string>& input, std::optional<std::chrono::milliseconds> timeout,
                     std::chrono::milliseconds grace, int cancel_fd, Sink&& sink) {
    LoopOutcome outcome;
    const auto start = Clock::now();
    // A plain time_point and a flag: g++ 12 -O2 misreads std::optional here as maybe-uninitialized.
    const bool has_deadline = timeout.has_value();
    const Clock::time_point deadline = has_deadline ? start + *timeout : Clock::time_point::max();
    enum class Stop { none, terminated, killed } stop = Stop::none;
    Clock::time_point kill_at{}, drain_until{};
    bool exited = false;
    std::array<bool, 2> open{process.stdout_fd() >= 0, process.stderr_fd() >= 0};
    std::size_t written = 0;
    bool stdin_open = process.stdin_fd() >= 0;
    std::string filtered;
    static thread_local std::array<char, 1 << 16> buffer;

    auto deliver = [&](StreamKind kind, std::string_view bytes, bool eof) {
        if constexpr (requires { process.filter_output(kind, bytes, filtered); }) {
            filtered.clear();
            if (!bytes.empty()) process.filter_output(kind, bytes, filtered);
            if (eof) process.finish_output(kind, filtered);
            if (!filtered.empty()) sink(kind, std::string_view(filtered));
        } else {
            if (!bytes.empty()) sink(kind, bytes);
        }
    };
    auto close_input = [&] {
        if (stdin_open) process.close_stdin();
        stdin_open = false;
    };
    auto stop_process = [&](Clock::time_point now) {
        if (stop != Stop::none) return;
        process.terminate();
        stop = Stop::terminated;
        kill_at = now + grace;
    };
    if (!input || input->empty()) close_input();

    while (true) {
        const auto now = Clock::now();
        if (!exited && stop == Stop::none && has_deadline && now >= deadline) {
            outcome.timed_out = true;
            stop_process(now);
        }
        if (!exited && stop == Stop::terminated && now >= kill_at) {
            process.kill();
            stop = Stop::killed;
        }
        if (exited && ((!open[0] && !open[1]) || now >= drain_until)) break;

        // The nearest moment something must happen without any fd becoming ready.
        std::optional<Clock::time_point> wake;
        auto consider = [&](Clock::time_point t) { wake = wake ? std::min(*wake, t) : t; };
        if (!exited && stop == Stop::none && has_deadline) consider(deadline);
        if (!exited && stop == Stop::terminated) consider(kill_at);
        if (exited) consider(drain_until);
        int wait_ms = -1;
        if (wake) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(*wake - now).count();
            wait_ms = static_cast<int>(std::max<long long>(0, std::min<long long>(left, 60'000)));
        }

        std::array<pollfd, 5> fds{};
        std::array<int, 5> role{};  // 0 out, 1 err, 2 stdin, 3 exit, 4 cancel
        nfds_t n = 0;
        auto add = [&](int fd, short events, int r) {
            fds[n] = pollfd{fd, events, 0};
            role[n++] = r;
        };
        if (open[0]) add(process.stdout_fd(), POLLIN, 0);
        if (open[1]) add(process.stderr_fd(), POLLIN, 1);
        if (stdin_open) add(process.stdin_fd(), POLLOUT, 2);
        if (!exited) add(process.exit_fd(), POLLIN, 3);
        if (!exited && stop == Stop::none && cancel_fd >= 0) add(cancel_fd, POLLIN, 4);

        const int ready = ::poll(fds.data(), n, wait_ms);
        if (ready < 0) {
            if (errno == EINTR) continue;
            // poll itself failing is unrecoverable for this run: stop the process and reap it.
            process.kill();
            break;
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (fds[i].revents == 0) continue;
            switch (role[i]) {
            case 0:
            case 1: {
                const auto kind = role[i] == 0 ? StreamKind::out : StreamKind::err;
                // Bounded reads per wake-up keep both streams fair.
                for (int round = 0; round < 16; ++round) {
                    const ssize_t got = ::read(fds[i].fd, buffer.data(), buffer.size());
                    if (got > 0) {
                        deliver(kind, std::string_view(buffer.data(), static_cast<std::size_t>(got)), false);
                        if constexpr (requires { { process.output_finished(kind) } -> std::convertible_to<bool>; }) {
                            if (process.output_finished(kind)) {
                                open[static_cast<std::size_t>(role[i])] = false;
                                break;
                            }
                        }
                        if (static_cast<std::size_t>(got) < buffer.size()) break;
                        continue;
                    }
                    if (got < 0 && errno == EINTR) continue;
                    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                    open[static_cast<std::size_t>(role[i])] = false;  // EOF or a read error ends this stream
                    deliver(kind, {}, true);
                    break;
                }
                break;
            }
            case 2: {
                if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
                    close_input();
                    break;
                }
                const auto& data = *input;
                const std::size_t chunk = std::min<std::size_t>(data.size() - written, 1 << 16);
                const ssize_t put = write_no_sigpipe(fds[i].fd, data.data() + written, chunk);
                if (put > 0) written += static_cast<std::size_t>(put);
                else if (put < 0 && errno != EAGAIN && errno != EINTR) close_input();  // EPIPE: it never read stdin
                if (written == data.size()) close_input();
                break;
            }
            case 3:
                exited = true;
                drain_until = Clock::now() + drain_after_exit;
                close_input();
                break;
            case 4:
                outcome.cancelled = true;
                stop_process(Clock::now());
                break;
            }
        }
    }
    close_input();
    for (int k = 0; k < 2; ++k)
        if (open[static_cast<std::size_t>(k)]) deliver(k == 0 ? StreamKind::out : StreamKind::err, {}, true);
    outcome.exit = process.wait();
    outcome.duration = Clock::now() - start;
    return outcome;
}

}  // namespace shannot::detail
