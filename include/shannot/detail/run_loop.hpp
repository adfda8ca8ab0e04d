// SPDX-License-Identifier: MIT
// The one poll loop of a run: feed stdin, drain stdout and stderr, watch exit, deadline, cancel.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/process_result.hpp>

namespace shannot::detail {

/// After the process exits, how long its pipes may stay open before we stop reading: a
/// grandchild that inherited stdout must not hold the caller forever.
inline constexpr std::chrono::milliseconds drain_after_exit{250};

struct LoopOutcome {
    ExitInfo exit;
    bool timed_out = false;
    bool cancelled = false;
    std::chrono::nanoseconds duration{0};
};

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
