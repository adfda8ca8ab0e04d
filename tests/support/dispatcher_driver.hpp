// SPDX-License-Identifier: MIT
// The ssh dispatcher (detail/scripts/dispatcher.sh) driven by hand: what the transport does, minus the
// transport, so that a test can withhold the K a local deadline would send and see every byte, and
// a benchmark can time the dispatcher alone. No doctest macros: the benchmarks build this with
// DOCTEST_CONFIG_DISABLE, under which an assertion would not even evaluate its expression.
#pragma once

#include <shannot/shannot.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace shannot_test {

class DispatcherDriver {
public:
    /// The dispatcher run by `sh` here, over pipes.
    static std::vector<std::string> local(const std::string& hello) {
        return {"sh", "-c", std::string(shannot::detail::ssh_dispatcher_script), "shannot", hello};
    }
    /// The dispatcher run by `sh` on the far side of an ssh session to `c`, as the pool starts it.
    static std::vector<std::string> over_ssh(const shannot::SshConnection& c, const std::string& hello) {
        std::vector<std::string> argv{"ssh"};
        const auto options = shannot::ssh_base_options(c);
        argv.insert(argv.end(), options.begin(), options.end());
        auto remote = local(hello);
        remote.insert(remote.begin(), "exec");
        argv.insert(argv.end(), {"--", shannot::ssh_destination(c), shannot::detail::shell_join(remote)});
        return argv;
    }

    explicit DispatcherDriver(std::vector<std::string> argv) {
        auto child = shannot::detail::spawn_child({.argv = std::move(argv), .pipe_stdin = true});
        if (child) child_ = std::move(*child);
        else error_ = child.error().describe();
    }
    DispatcherDriver(const DispatcherDriver&) = delete;
    DispatcherDriver& operator=(const DispatcherDriver&) = delete;
    /// EOF first, so that the dispatcher ends by itself and removes its folder; killed after 5 s.
    ~DispatcherDriver() {
        if (child_.pid <= 0) return;
        close_input();
        for (int i = 0; i < 500; ++i) {
            if (::waitpid(child_.pid, nullptr, WNOHANG) == child_.pid) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        ::kill(child_.pid, SIGKILL);
        ::waitpid(child_.pid, nullptr, 0);
    }

    [[nodiscard]] bool started() const { return child_.pid > 0; }
    [[nodiscard]] const std::string& error() const { return error_; }

    [[nodiscard]] bool send(const std::string& text) {
        return shannot::detail::write_all(child_.in.get(), text, shannot::detail::Clock::now() + std::chrono::seconds(10));
    }
    void close_input() { child_.in.reset(); }

    /// Reads both streams until `done()` holds, they end, or `bound` passes; returns `done()`.
    template <class Done>
    bool read_until(Done done, std::chrono::milliseconds bound = std::chrono::seconds(30)) {
        const auto deadline = std::chrono::steady_clock::now() + bound;
        char buffer[4096];
        while (!done()) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd fds[2] = {{child_.out.get(), POLLIN, 0}, {child_.err.get(), POLLIN, 0}};
            if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
            for (int i = 0; i < 2; ++i) {
                if (!fds[i].revents) continue;
                const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
                if (n > 0) (i == 0 ? out : err).append(buffer, static_cast<std::size_t>(n));
                else if (n == 0) return done();
            }
        }
        return true;
    }

    struct Frames {
        std::string report, out, err;  ///< "exit RC SETUP" (or "" when the frames did not come), what came before
    };
    /// Waits for both frames of request `nonce` and consumes the streams up to them.
    Frames frames(const std::string& nonce, std::chrono::milliseconds bound = std::chrono::seconds(30)) {
        const auto eof = "\n" + nonce + " eof\n", report = "\n" + nonce + " ";
        const auto report_end = [&] {
            const auto at = err.find(report);
            return at == std::string::npos ? at : err.find('\n', at + 1);
        };
        if (!read_until([&] { return out.find(eof) != std::string::npos && report_end() != std::string::npos; }, bound)) return {};
        const auto at = err.find(report), end = report_end();
        Frames result{err.substr(at + report.size(), end - at - report.size()), out.substr(0, out.find(eof)), err.substr(0, at)};
        err.erase(0, end + 1);
        out.erase(0, out.find(eof) + eof.size());
        return result;
    }

    std::string out, err;

private:
    shannot::detail::Child child_;
    std::string error_;
};

}  // namespace shannot_test
