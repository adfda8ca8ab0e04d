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
#include <type_traits>

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

/// One run of one process, driven by poll(2) until it has exited and its output is drained.
/// run_loop() below is how the hosts use it.
template <ProcessHandle P, class Sink>
class RunLoop {
public:
    RunLoop(P& process, const std::optional<std::string>& input, std::optional<std::chrono::milliseconds> timeout,
            std::chrono::milliseconds grace, int cancel_fd, Sink& sink)
        : process_(process),
          input_(input),
          grace_(grace),
          cancel_fd_(cancel_fd),
          sink_(sink),
          start_(Clock::now()),
          has_deadline_(timeout.has_value()),
          deadline_(has_deadline_ ? start_ + *timeout : Clock::time_point::max()),
          open_{process.stdout_fd() >= 0, process.stderr_fd() >= 0},
          stdin_open_(process.stdin_fd() >= 0) {}

    LoopOutcome run() {
        if (!input_ || input_->empty()) close_input();
        while (true) {
            const auto now = Clock::now();
            enforce_deadlines(now);
            if (exited_ && ((!open_[0] && !open_[1]) || now >= drain_until_)) break;
            if (!poll_once(poll_timeout_ms(now))) break;
        }
        close_input();
        for (const auto kind : {StreamKind::out, StreamKind::err})
            if (stream_open(kind)) deliver(kind, {}, true);
        outcome_.exit = process_.wait();
        outcome_.duration = Clock::now() - start_;
        return outcome_;
    }

private:
    enum class Stop { none, terminated, killed };
    /// What a descriptor of one poll(2) round stands for.
    enum class Role { out, err, input, exit, cancel };

    bool& stream_open(StreamKind kind) { return open_[kind == StreamKind::out ? 0 : 1]; }

    /// Passes bytes (and, at `eof`, the end of the stream) through the transport's optional
    /// filter to the sink.
    void deliver(StreamKind kind, std::string_view bytes, bool eof) {
        if constexpr (requires(P & p, std::string & out) { p.filter_output(kind, bytes, out); }) {
            filtered_.clear();
            if (!bytes.empty()) process_.filter_output(kind, bytes, filtered_);
            if (eof) process_.finish_output(kind, filtered_);
            if (!filtered_.empty()) sink_(kind, std::string_view(filtered_));
        } else {
            if (!bytes.empty()) sink_(kind, bytes);
        }
    }

    void close_input() {
        if (stdin_open_) process_.close_stdin();
        stdin_open_ = false;
    }

    void stop_process(Clock::time_point now) {
        if (stop_ != Stop::none) return;
        process_.terminate();
        stop_ = Stop::terminated;
        kill_at_ = now + grace_;
    }

    /// Past the deadline: SIGTERM; past the grace after it: SIGKILL.
    void enforce_deadlines(Clock::time_point now) {
        if (!exited_ && stop_ == Stop::none && has_deadline_ && now >= deadline_) {
            outcome_.timed_out = true;
            stop_process(now);
        }
        if (!exited_ && stop_ == Stop::terminated && now >= kill_at_) {
            process_.kill();
            stop_ = Stop::killed;
        }
    }

    /// How long poll may sleep: until the nearest moment something must happen without any
    /// descriptor becoming ready (-1: no such moment).
    [[nodiscard]] int poll_timeout_ms(Clock::time_point now) const {
        std::optional<Clock::time_point> wake;
        auto consider = [&](Clock::time_point t) { wake = wake ? std::min(*wake, t) : t; };
        if (!exited_ && stop_ == Stop::none && has_deadline_) consider(deadline_);
        if (!exited_ && stop_ == Stop::terminated) consider(kill_at_);
        if (exited_) consider(drain_until_);
        if (!wake) return -1;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(*wake - now).count();
        return static_cast<int>(std::max<long long>(0, std::min<long long>(left, 60'000)));
    }

    /// One poll(2) round over the descriptors still of interest. False when poll itself failed:
    /// that is unrecoverable for this run, so the process is killed and the loop ends to reap it.
    bool poll_once(int wait_ms) {
        std::array<pollfd, 5> fds{};
        std::array<Role, 5> roles{};
        nfds_t n = 0;
        auto add = [&](int fd, short events, Role role) {
            fds[n] = pollfd{fd, events, 0};
            roles[n++] = role;
        };
        if (open_[0]) add(process_.stdout_fd(), POLLIN, Role::out);
        if (open_[1]) add(process_.stderr_fd(), POLLIN, Role::err);
        if (stdin_open_) add(process_.stdin_fd(), POLLOUT, Role::input);
        if (!exited_) add(process_.exit_fd(), POLLIN, Role::exit);
        if (!exited_ && stop_ == Stop::none && cancel_fd_ >= 0) add(cancel_fd_, POLLIN, Role::cancel);

        if (::poll(fds.data(), n, wait_ms) < 0) {
            if (errno == EINTR) return true;
            process_.kill();
            return false;
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (fds[i].revents == 0) continue;
            switch (roles[i]) {
            case Role::out: read_stream(fds[i].fd, StreamKind::out); break;
            case Role::err: read_stream(fds[i].fd, StreamKind::err); break;
            case Role::input: write_input(fds[i]); break;
            case Role::exit:
                exited_ = true;
                drain_until_ = Clock::now() + drain_after_exit;
                close_input();
                break;
            case Role::cancel:
                outcome_.cancelled = true;
                stop_process(Clock::now());
                break;
            }
        }
        return true;
    }

    /// Reads what `fd` holds, in a bounded number of reads so both streams stay fair. EOF or a
    /// read error ends the stream, and so does the transport saying its output is finished.
    void read_stream(int fd, StreamKind kind) {
        static thread_local std::array<char, 1 << 16> buffer;
        for (int round = 0; round < 16; ++round) {
            const ssize_t got = ::read(fd, buffer.data(), buffer.size());
            if (got > 0) {
                deliver(kind, std::string_view(buffer.data(), static_cast<std::size_t>(got)), false);
                if constexpr (requires(P & p) {
                                  { p.output_finished(kind) } -> std::convertible_to<bool>;
                              }) {
                    if (process_.output_finished(kind)) {
                        stream_open(kind) = false;
                        return;
                    }
                }
                if (static_cast<std::size_t>(got) < buffer.size()) return;
                continue;
            }
            if (got < 0 && errno == EINTR) continue;
            if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            stream_open(kind) = false;
            deliver(kind, {}, true);
            return;
        }
    }

    /// Writes the next piece of input; stdin is closed once all of it went, or when the command
    /// stopped reading (EPIPE: it never read stdin).
    void write_input(const pollfd& p) {
        if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
            close_input();
            return;
        }
        const auto& data = *input_;
        const std::size_t chunk = std::min<std::size_t>(data.size() - written_, 1 << 16);
        const ssize_t put = write_no_sigpipe(p.fd, data.data() + written_, chunk);
        if (put > 0)
            written_ += static_cast<std::size_t>(put);
        else if (put < 0 && errno != EAGAIN && errno != EINTR)
            close_input();
        if (written_ == data.size()) close_input();
    }

    P& process_;
    const std::optional<std::string>& input_;
    std::chrono::milliseconds grace_;
    int cancel_fd_;
    Sink& sink_;
    LoopOutcome outcome_{};
    Clock::time_point start_;
    // A plain time_point and a flag: g++ 12 -O2 misreads std::optional here as maybe-uninitialized.
    bool has_deadline_;
    Clock::time_point deadline_;
    Stop stop_ = Stop::none;
    Clock::time_point kill_at_{}, drain_until_{};
    bool exited_ = false;
    std::array<bool, 2> open_;  ///< stdout, stderr still read
    bool stdin_open_;
    std::size_t written_ = 0;  ///< input bytes written so far
    std::string filtered_;     ///< the transport filter's output, reused across reads
};

/// Runs `process` to completion. `sink(StreamKind, std::string_view)` receives every byte the
/// command printed, after the transport's optional filter. Never blocks on a full pipe: output
/// is read as long as the process lives, whatever the sink keeps.
template <ProcessHandle P, class Sink>
LoopOutcome run_loop(P& process, const std::optional<std::string>& input,
                     std::optional<std::chrono::milliseconds> timeout, std::chrono::milliseconds grace, int cancel_fd,
                     Sink&& sink) {
    return RunLoop<P, std::remove_reference_t<Sink>>(process, input, timeout, grace, cancel_fd, sink).run();
}

}  // namespace shannot::detail
