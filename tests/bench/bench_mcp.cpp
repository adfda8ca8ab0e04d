// SPDX-License-Identifier: MIT
// Benchmark B13 (issue 21): a tools/call round trip of `ls /` through `shannot mcp` (request
// written, response read and parsed, as a client does) vs LocalSandbox::run of the same command,
// interleaved. `bench_mcp PATH-TO-SHANNOT [--reps N]`. Informational: prints the figures and
// PASS/MISS, exits 0 unless a run failed (77: cannot run here).
#define DOCTEST_CONFIG_DISABLE  // the support headers use doctest macros; no test runner here
#include <shannot/shannot.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_util.hpp"
#include "support/sandbox_env.hpp"

using namespace shannot_bench;

namespace {

/// `shannot mcp --profile minimal` on two pipes, initialized, as a client holds it.
class McpServer {
public:
    explicit McpServer(const std::string& shannot) {
        int in[2], out[2];
        if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) die("pipe2 failed");
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, in[0], 0);
        posix_spawn_file_actions_adddup2(&actions, out[1], 1);
        std::vector<std::string> words = {shannot, "mcp", "--profile", "minimal"};
        std::vector<char*> argv;
        for (auto& w : words) argv.push_back(w.data());
        argv.push_back(nullptr);
        if (::posix_spawn(&pid_, shannot.c_str(), &actions, nullptr, argv.data(), environ) != 0)
            die("cannot start " + shannot);
        posix_spawn_file_actions_destroy(&actions);
        ::close(in[0]);
        ::close(out[1]);
        to_ = in[1];
        from_ = out[0];
        request(R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25",)"
                R"("capabilities":{},"clientInfo":{"name":"b13","version":"1"}}})");
        send(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
    }
    McpServer(const McpServer&) = delete;
    McpServer& operator=(const McpServer&) = delete;
    ~McpServer() {
        ::close(to_);  // EOF: the server exits
        int status = 0;
        ::waitpid(pid_, &status, 0);
        ::close(from_);
    }

    /// Sends one request line and returns the parsed response.
    nlohmann::json request(const std::string& line) {
        send(line);
        for (;;) {
            if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
                auto message = nlohmann::json::parse(buffer_.substr(0, nl));
                buffer_.erase(0, nl + 1);
                if (message.contains("id")) return message;
                continue;  // a notification
            }
            char chunk[65536];
            const auto n = ::read(from_, chunk, sizeof chunk);
            if (n <= 0) die("the server closed its stdout");
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }

private:
    void send(std::string line) {
        line += '\n';
        if (::write(to_, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
            die("cannot write to the server");
    }

    pid_t pid_ = -1;
    int to_ = -1, from_ = -1;
    std::string buffer_;
};

int bench_b13(const std::string& shannot, int reps) {
    auto profile = shannot::builtin_profile("minimal");
    if (!profile) die(profile.error().message);
    shannot::LocalSandbox sandbox(*profile);
    McpServer server(shannot);
    std::size_t expected = 0;
    auto direct = [&] {
        auto r = sandbox.run({"ls", "/"});
        if (!r || r->exit_code != 0) die("B13: LocalSandbox::run of ls / failed");
        expected = r->stdout_data.size();
    };
    int id = 0;
    auto through_mcp = [&] {
        const auto response = server.request(
            R"({"jsonrpc":"2.0","id":)" + std::to_string(++id) +
            R"(,"method":"tools/call","params":{"name":"sandbox_minimal","arguments":{"command":["ls","/"]}}})");
        const auto& s = response.at("result").at("structuredContent");
        if (s.at("exit_code") != 0 || (expected && s.at("stdout").get<std::string>().size() != expected))
            die("B13: the tools/call of ls / did not return its output: " + response.dump().substr(0, 500));
    };
    const auto s = interleave(reps, 10, through_mcp, direct);
    const double a = median(s.a), b = median(s.b);
    print_result("B13", "tools/call round trip of ls / through shannot mcp vs LocalSandbox::run",
                 fmt_time(a) + " vs " + fmt_time(b), a / b, fmt_ratio(a / b, 1.2), Goal::at_most, 1.2, "1.2x");
    print_spread("mcp", s.a, "run", s.b);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || ::access(argv[1], X_OK) != 0) {
        std::fprintf(stderr, "usage: %s PATH-TO-SHANNOT [--reps N]\n", argv[0]);
        return 2;
    }
    if (!shannot_test::bwrap_usable()) {
        std::printf("B13: SKIP (bwrap is not usable on this machine)\n");
        return exit_skip;
    }
    std::signal(SIGPIPE, SIG_IGN);
    return guarded([&] { return bench_b13(argv[1], reps_from_args(argc - 1, argv + 1, 200)); });
}
