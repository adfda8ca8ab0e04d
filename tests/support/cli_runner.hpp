// SPDX-License-Identifier: MIT
// Running the shannot tool (examples/cli) as a real process from the tests: a private HOME,
// its exit status and both output streams, a signal sent while it runs.
#pragma once

#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "sandbox_env.hpp"

extern char** environ;

namespace shannot_test::cli {

namespace fs = std::filesystem;

/// The tool as meson builds it, or empty when SHANNOT_BUILD_ROOT does not lead to it.
inline std::string cli_path() {
    const char* root = std::getenv("SHANNOT_BUILD_ROOT");
    if (!root) return {};
    const auto path = fs::path(root) / "examples" / "cli" / "shannot";
    return ::access(path.c_str(), X_OK) == 0 ? path.string() : std::string();
}

/// A private folder (XDG_CONFIG_HOME and HOME of the tool, and XDG_RUNTIME_DIR below it, where
/// the connections --persist keeps live), removed afterwards with those connections.
struct TempDir {
    fs::path path;
    TempDir() {
        char templ[] = "/tmp/shannot-cli-XXXXXX";
        REQUIRE(::mkdtemp(templ) != nullptr);
        path = templ;
        ::mkdir((path / "run").c_str(), 0700);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        auto closed = shannot::close_persisted(kept_folder().string());
        (void)closed;
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    [[nodiscard]] fs::path config_file() const { return path / "shannot" / "config.json"; }
    /// Where the tool keeps connections (--persist) with this HOME.
    [[nodiscard]] fs::path kept_folder() const { return path / "run" / "shannot"; }
};

inline void write_file(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
}

struct CliResult {
    int status = -1;
    std::string out;
    std::string err;
};

/// A signal sent to the tool while it runs.
struct SignalAfter {
    int signal = 0;
    std::chrono::milliseconds delay{0};
};

/// Runs the tool with `args`, stdin from `input` (empty file by default), and the environment
/// of this process plus `env` (an empty value removes a variable). Killed after 120 s.
inline CliResult run_cli(const TempDir& home, const std::vector<std::string>& args, const std::string& input = {},
                         const std::map<std::string, std::string>& env = {}, SignalAfter send = {}) {
    CliResult result;
    const auto stdin_file = home.path / ".stdin";
    write_file(stdin_file, input);

    std::map<std::string, std::string> vars;
    for (char** e = environ; *e; ++e) {
        const std::string entry = *e;
        const auto eq = entry.find('=');
        if (eq != std::string::npos) vars[entry.substr(0, eq)] = entry.substr(eq + 1);
    }
    vars["XDG_CONFIG_HOME"] = home.path.string();
    vars["HOME"] = home.path.string();
    vars["XDG_RUNTIME_DIR"] = (home.path / "run").string();
    for (const auto& [k, v] : env) {
        if (v.empty())
            vars.erase(k);
        else
            vars[k] = v;
    }
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : vars) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);

    const std::string program = cli_path();
    std::vector<std::string> argv_strings = {program};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);

    int out_pipe[2], err_pipe[2];
    REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, stdin_file.c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(out_pipe[1]);
    ::close(err_pipe[1]);
    REQUIRE(rc == 0);

    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + std::chrono::seconds(120);
    pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0) {
        const auto now = std::chrono::steady_clock::now();
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
        if (left <= 0) {
            ::kill(pid, SIGKILL);
            FAIL_CHECK("shannot did not finish within 120 s");
            break;
        }
        if (send.signal) {
            const auto due = std::chrono::duration_cast<std::chrono::milliseconds>(start + send.delay - now).count();
            if (due <= 0) {
                ::kill(pid, send.signal);
                send.signal = 0;
            } else {
                left = std::min<long long>(left, due);
            }
        }
        if (::poll(fds, 2, static_cast<int>(left)) < 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buffer[65536];
            const auto n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
            } else {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open_fds;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) ::close(f.fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

inline std::size_t count_lines(const std::string& s) {
    std::size_t n = 0;
    for (char c : s) n += c == '\n' ? 1 : 0;
    return n;
}

/// A profile file that also allows the shell tools these tests drive.
inline fs::path write_tool_profile(const TempDir& home, bool network_isolation = true) {
    auto p = shannot_test::test_profile();
    p.network_isolation = network_isolation;
    const auto file = home.path / (network_isolation ? "tools.json" : "tools-net.json");
    write_file(file, p.to_json().dump(2));
    return file;
}

}  // namespace shannot_test::cli

/// Skips when the tool was not built (or bwrap cannot run), except under CI=true.
#define SHANNOT_REQUIRE_CLI()                                                                                \
    do {                                                                                                     \
        if (shannot_test::cli::cli_path().empty()) {                                                         \
            if (shannot_test::in_ci())                                                                       \
                FAIL("the shannot tool is not built at $SHANNOT_BUILD_ROOT/examples/cli/shannot (CI=true)"); \
            MESSAGE("skipped: the shannot tool is not built ($SHANNOT_BUILD_ROOT/examples/cli/shannot)");    \
            return;                                                                                          \
        }                                                                                                    \
        SHANNOT_REQUIRE_BWRAP();                                                                             \
    } while (0)
