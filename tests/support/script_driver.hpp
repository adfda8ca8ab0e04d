// SPDX-License-Identifier: MIT
// One of the two shell programs (detail/scripts/) driven by hand over pipes: write request lines,
// read both streams, pick out the frames of a request. No doctest macros: the benchmarks build
// this with DOCTEST_CONFIG_DISABLE, under which an assertion would not even evaluate its expression.
#pragma once

#include <shannot/shannot.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace shannot_test {

/// Polls `condition` every 10 ms until it holds (true) or `bound` passes (false).
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds bound = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

class ScriptDriver {
public:
    /// Starts `argv` (argv[0] looked up on PATH) with its stdin, stdout and stderr on pipes.
    explicit ScriptDriver(std::vector<std::string> argv) {
        auto child = shannot::detail::spawn_child({.argv = std::move(argv), .pipe_stdin = true});
        if (child)
            child_ = std::move(*child);
        else
            error_ = child.error().describe();
    }
    ScriptDriver(const ScriptDriver&) = delete;
    ScriptDriver& operator=(const ScriptDriver&) = delete;
    /// EOF first, so that the program ends by itself (and the dispatcher removes its folder);
    /// killed after 5 s.
    ~ScriptDriver() {
        if (child_.process.pid() <= 0) return;
        close_input();
        if (wait_exit(std::chrono::seconds(5)) != -1 || child_.process.pid() <= 0) return;
        signal(SIGKILL);
        child_.process.reap();
    }

    [[nodiscard]] bool started() const { return child_.process.pid() > 0 || exit_status_ != -1; }
    [[nodiscard]] const std::string& error() const { return error_; }
    /// The program's pid while it has not been reaped, else -1: never pass it to kill(2)
    /// unchecked (kill(-1, ...) signals every process there is); use signal().
    [[nodiscard]] pid_t pid() const { return child_.process.pid(); }
    /// Sends `sig` to the program, if it has not been reaped yet.
    void signal(int sig) { child_.process.signal(sig); }

    [[nodiscard]] bool send(std::string_view text) {
        return shannot::detail::write_all(child_.in.get(), text,
                                          shannot::detail::Clock::now() + std::chrono::seconds(10));
    }
    void close_input() { child_.in.reset(); }

    /// Reads both streams until `done()` holds, they end, or `bound` passes; returns `done()`.
    template <class Done>
    bool read_until(Done done, std::chrono::milliseconds bound = std::chrono::seconds(30)) {
        const auto deadline = std::chrono::steady_clock::now() + bound;
        char buffer[4096];
        while (!done()) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd fds[2] = {{child_.out.get(), POLLIN, 0}, {child_.err.get(), POLLIN, 0}};
            if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
            for (int i = 0; i < 2; ++i) {
                if (!fds[i].revents) continue;
                const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
                if (n > 0)
                    (i == 0 ? out : err).append(buffer, static_cast<std::size_t>(n));
                else if (n == 0)
                    return done();
            }
        }
        return true;
    }
    /// Reads until both streams end (or `bound` passes); returns whether they did.
    bool read_to_end(std::chrono::milliseconds bound = std::chrono::seconds(30)) {
        bool out_open = true, err_open = true;
        const auto deadline = std::chrono::steady_clock::now() + bound;
        char buffer[4096];
        while (out_open || err_open) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd fds[2] = {{out_open ? child_.out.get() : -1, POLLIN, 0},
                             {err_open ? child_.err.get() : -1, POLLIN, 0}};
            if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
            for (int i = 0; i < 2; ++i) {
                if (!fds[i].revents) continue;
                const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
                if (n > 0)
                    (i == 0 ? out : err).append(buffer, static_cast<std::size_t>(n));
                else if (n == 0)
                    (i == 0 ? out_open : err_open) = false;
            }
        }
        return true;
    }

    /// Waits until both streams carried their "ready" frame (marked `hello`); returns the payload
    /// on stdout ("" when they did not come), sets `*err_payload` to the one on stderr, and
    /// consumes the streams up to the frames.
    std::string ready(const std::string& hello, std::string* err_payload = nullptr,
                      std::chrono::milliseconds bound = std::chrono::seconds(30)) {
        const auto mark = "\n" + hello + " ";
        const auto end_of = [&](const std::string& s) {
            const auto at = s.find(mark);
            return at == std::string::npos ? at : s.find('\n', at + 1);
        };
        if (!read_until([&] { return end_of(out) != std::string::npos && end_of(err) != std::string::npos; }, bound))
            return {};
        const auto at = out.find(mark), end = end_of(out);
        std::string payload = out.substr(at + mark.size(), end - at - mark.size());
        out.erase(0, end + 1);
        const auto err_at = err.find(mark), err_end = end_of(err);
        if (err_payload) *err_payload = err.substr(err_at + mark.size(), err_end - err_at - mark.size());
        err.erase(0, err_end + 1);
        return payload;
    }

    struct Frames {
        std::string report;                 ///< the last frame on stderr ("" when the frames did not come)
        std::vector<std::string> payloads;  ///< every frame of the request on stderr, in order
        std::string out, err;               ///< what came before them
    };
    /// Waits for the frames of request `nonce`, "eof" on stdout and on stderr one that `is_end`
    /// accepts (any frame when null), and consumes the streams up to them.
    Frames frames(const std::string& nonce, std::chrono::milliseconds bound = std::chrono::seconds(30),
                  bool (*is_end)(std::string_view) = nullptr) {
        const auto eof = "\n" + nonce + " eof\n", mark = "\n" + nonce + " ";
        std::size_t end_at = 0;  // the newline that ends the last frame on stderr
        const auto found_end = [&] {
            for (std::size_t at = err.find(mark); at != std::string::npos; at = err.find(mark, at + 1)) {
                const auto nl = err.find('\n', at + mark.size());
                if (nl == std::string::npos) return false;
                if (!is_end || is_end(std::string_view(err).substr(at + mark.size(), nl - at - mark.size()))) {
                    end_at = nl;
                    return true;
                }
            }
            return false;
        };
        if (!read_until([&] { return out.find(eof) != std::string::npos && found_end(); }, bound)) return {};
        Frames result;
        const std::string_view text = std::string_view(err).substr(0, end_at + 1);
        for (std::size_t pos = 0; pos < text.size();) {
            const auto at = text.find(mark, pos);
            if (at == std::string_view::npos) {
                result.err.append(text.substr(pos));
                break;
            }
            result.err.append(text.substr(pos, at - pos));
            const auto nl = text.find('\n', at + mark.size());
            result.payloads.emplace_back(text.substr(at + mark.size(), nl - at - mark.size()));
            pos = nl + 1;
        }
        result.report = result.payloads.back();
        result.out = out.substr(0, out.find(eof));
        err.erase(0, end_at + 1);
        out.erase(0, out.find(eof) + eof.size());
        return result;
    }

    /// Waits up to `bound` for the program to exit: its exit status, 128+N for signal N, or -1
    /// when it is still running.
    int wait_exit(std::chrono::milliseconds bound = std::chrono::seconds(10)) {
        if (exit_status_ != -1 || child_.process.pid() <= 0) return exit_status_;
        // Through the child's exit descriptor, never waitpid: the portable build's reaper thread
        // reaps it, and a waitpid here would take the status from under it.
        pollfd exited{child_.process.exit_fd(), POLLIN, 0};
        if (::poll(&exited, 1, static_cast<int>(bound.count())) <= 0) return -1;
        const auto status = child_.process.reap();
        if (!status) return exit_status_ = 255;  // reaped by someone else: no status
        exit_status_ = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
        return exit_status_;
    }

    std::string out, err;

private:
    shannot::detail::Child child_;
    std::string error_;
    int exit_status_ = -1;
};

}  // namespace shannot_test
