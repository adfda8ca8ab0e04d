// SPDX-License-Identifier: MIT
// Test support for real-bwrap tests: skip-or-fail when bwrap is unusable, a tiny process driver,
// helper-program paths and /proc scans.
#pragma once

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

namespace shannot_test {

/// True when the environment says we run in CI: then a missing sandbox is a failure, not a skip.
inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci && std::string_view(ci) == "true";
}

/// Everything a process printed and how it ended, as the transport reported it.
struct Driven {
    std::string out, err;
    shannot::ExitInfo exit;
    bool hung = false;  ///< the overall bound expired and the process was killed
};

/// Drives a launched process to its end with one poll loop of its own (independent of the
/// library's loop): writes `input`, reads both pipes to EOF, then waits. Kills it after `bound`.
template <class P>
Driven drive(P& process, std::string_view input = {}, std::chrono::seconds bound = std::chrono::seconds(60)) {
    Driven d;
    const auto deadline = std::chrono::steady_clock::now() + bound;
    bool out_open = true, err_open = true, in_open = process.stdin_fd() >= 0;
    if (in_open && input.empty()) {
        process.close_stdin();
        in_open = false;
    }
    std::size_t written = 0;
    char buffer[65536];
    while (out_open || err_open) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            d.hung = true;
            process.kill();
            break;
        }
        pollfd fds[3] = {{process.stdout_fd(), out_open ? short(POLLIN) : short(0), 0},
                         {process.stderr_fd(), err_open ? short(POLLIN) : short(0), 0},
                         {in_open ? process.stdin_fd() : -1, POLLOUT, 0}};
        if (::poll(fds, 3, static_cast<int>(left.count())) < 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (!fds[i].revents) continue;
            const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) (i == 0 ? d.out : d.err).append(buffer, static_cast<std::size_t>(n));
            else if (n == 0 || (errno != EAGAIN && errno != EINTR)) (i == 0 ? out_open : err_open) = false;
        }
        if (in_open && fds[2].revents) {
            const ssize_t n = (fds[2].revents & POLLOUT) ? ::write(fds[2].fd, input.data() + written, input.size() - written) : -1;
            if (n > 0) written += static_cast<std::size_t>(n);
            if (n < 0 || written == input.size()) {
                process.close_stdin();
                in_open = false;
            }
        }
    }
    d.exit = process.wait();
    return d;
}

/// Directory of the running test executable: meson builds the helper programs next to it.
inline std::string exe_dir() {
    char path[4096];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) return ".";
    std::string s(path, static_cast<std::size_t>(n));
    return s.substr(0, s.rfind('/'));
}

/// Host path of a helper program from tests/helpers, or "" when it was not built.
inline std::string helper_path(const std::string& name) {
    const std::string p = exe_dir() + "/" + name;
    return ::access(p.c_str(), X_OK) == 0 ? p : std::string();
}

/// Whether a trivial sandbox starts here; `why` says what is wrong otherwise. Cached.
inline bool bwrap_usable(std::string* why = nullptr) {
    static const std::string problem = [] {
        shannot::PosixSpawnTransport transport;
        auto bwrap = transport.bwrap();
        if (!bwrap) return bwrap.error().describe();
        shannot::LaunchSpec spec;
        spec.bwrap_args = {"--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
                           "--ro-bind-try", "/bin", "/bin", "--ro-bind-try", "/lib", "/lib",
                           "--ro-bind-try", "/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev",
                           "--json-status-fd", "4", "--", "/bin/true"};
        auto process = transport.launch(spec);
        if (!process) return process.error().describe();
        auto d = drive(*process, {}, std::chrono::seconds(30));
        if (d.exit.kind != shannot::ExitInfo::Kind::exited || d.exit.exit_code != 0)
            return "a trivial sandbox failed: " + d.exit.detail + " " + d.err;
        return std::string();
    }();
    if (why) *why = problem;
    return problem.empty();
}

/// Processes whose parent is this process and which are zombies (exited, not reaped).
inline std::vector<int> zombie_children() {
    std::vector<int> zombies;
    DIR* proc = ::opendir("/proc");
    if (!proc) return zombies;
    while (dirent* e = ::readdir(proc)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        const std::string path = std::string("/proc/") + e->d_name + "/stat";
        std::FILE* f = std::fopen(path.c_str(), "re");
        if (!f) continue;
        char buf[1024];
        const std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
        std::fclose(f);
        buf[n] = '\0';
        const char* paren = std::strrchr(buf, ')');
        char state = 0;
        int ppid = 0;
        if (paren && std::sscanf(paren + 1, " %c %d", &state, &ppid) == 2 && ppid == ::getpid() && state == 'Z')
            zombies.push_back(std::atoi(e->d_name));
    }
    ::closedir(proc);
    return zombies;
}

/// Pids of live processes whose command line contains `needle` (NULs read as spaces).
inline std::vector<int> processes_with_cmdline(std::string_view needle) {
    std::vector<int> found;
    DIR* proc = ::opendir("/proc");
    if (!proc) return found;
    while (dirent* e = ::readdir(proc)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        const std::string path = std::string("/proc/") + e->d_name + "/cmdline";
        std::FILE* f = std::fopen(path.c_str(), "re");
        if (!f) continue;
        std::string cmdline;
        char buf[4096];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) cmdline.append(buf, n);
        std::fclose(f);
        for (auto& c : cmdline)
            if (c == '\0') c = ' ';
        if (cmdline.find(needle) != std::string::npos) found.push_back(std::atoi(e->d_name));
    }
    ::closedir(proc);
    return found;
}

/// Number of descriptors open in this process.
inline int open_fd_count() {
    int count = 0;
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return -1;
    while (dirent* e = ::readdir(d))
        if (e->d_name[0] != '.') ++count;
    ::closedir(d);
    return count - 1;  // the directory's own descriptor
}

}  // namespace shannot_test

/// At the top of a test that needs bwrap: without a usable bwrap, skip with a message, or fail
/// when CI=true.
#define SHANNOT_REQUIRE_BWRAP()                                                                  \
    do {                                                                                         \
        std::string shannot_why_;                                                                \
        if (!shannot_test::bwrap_usable(&shannot_why_)) {                                        \
            if (shannot_test::in_ci()) FAIL("bwrap is unusable and CI=true: " << shannot_why_); \
            MESSAGE("skipped, bwrap is unusable: " << shannot_why_);                             \
            return;                                                                              \
        }                                                                                        \
    } while (false)
