// SPDX-License-Identifier: MIT
// Test support: is real bwrap usable here, and profiles the end-to-end tests share.
#pragma once

#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace shannot_test {

inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci && std::strcmp(ci, "true") == 0;
}

/// True when `bwrap` runs a trivial sandbox here (where the test sshd runs it too). Cached.
inline bool bwrap_usable() {
    static const bool usable = [] {
#if SHANNOT_PLATFORM_LINUX
        auto profile = shannot::builtin_profile("minimal");
        if (!profile) return false;
        shannot::LocalSandbox sandbox(*profile);
        auto r = sandbox.run({"ls", "/"});
        return r && r->exit_code == 0;
#else
        // The portable build has no local transport: run bwrap by hand, as the remote side will.
        const char* argv[] = {"bwrap",
                              "--unshare-all",
                              "--die-with-parent",
                              "--ro-bind",
                              "/",
                              "/",
                              "--proc",
                              "/proc",
                              "--dev",
                              "/dev",
                              "--",
                              "ls",
                              "/",
                              nullptr};
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
        pid_t pid = -1;
        const int rc = ::posix_spawnp(&pid, argv[0], &actions, nullptr, const_cast<char* const*>(argv), environ);
        posix_spawn_file_actions_destroy(&actions);
        int status = 0;
        return rc == 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
#endif
    }();
    return usable;
}

/// The minimal profile plus the tools the tests drive.
template <class T = shannot::PosixSpawnTransport>
shannot::SandboxProfile<T> test_profile() {
    auto p = *shannot::builtin_profile<T>("minimal");
    p.name = "test";
    for (const char* c :
         {"sh", "bash", "sleep", "head", "printf", "echo", "env", "cat", "od", "mkdir", "touch", "true", "wc"})
        p.allowed_commands.emplace_back(c);
    p.environment["SHANNOT_PROFILE_VAR"] = "from-profile";
    return p;
}

/// Open descriptors of this process.
inline int count_fds() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (auto* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
    }
    return n - 1;  // the DIR's own fd
}

/// A small /proc file's bytes; empty when the process is gone. Plain read(2), not iostreams:
/// libstdc++'s filebuf throws when a process exits mid-read (read fails with ESRCH).
inline std::string read_proc_file(const std::string& path) {
    std::string text;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    char buffer[4096];
    while (true) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
            text.append(buffer, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::close(fd);
    return text;
}

/// The command line of a process (NUL-separated words), empty when it is gone.
inline std::string process_cmdline(int pid) { return read_proc_file("/proc/" + std::to_string(pid) + "/cmdline"); }

/// Live processes (but this one) whose raw command line (NUL-separated words) satisfies `match`;
/// each command line is read once.
template <class Match>
std::vector<int> pids_matching(Match match) {
    std::vector<int> pids;
    if (DIR* d = ::opendir("/proc")) {
        while (auto* e = ::readdir(d)) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
            const int pid = std::atoi(e->d_name);
            if (pid != ::getpid() && match(process_cmdline(pid))) pids.push_back(pid);
        }
        ::closedir(d);
    }
    return pids;
}

/// Live processes whose command line contains `marker`.
inline std::vector<int> pids_with(const std::string& marker) {
    return pids_matching([&](const std::string& cmdline) { return cmdline.find(marker) != std::string::npos; });
}

inline int processes_with(const std::string& marker) { return static_cast<int>(pids_with(marker).size()); }

/// Live processes whose command line starts with `prefix` (e.g. "sleep\0" + marker + "\0": the
/// sleeps themselves, not the bwrap or sh whose arguments mention them).
inline std::vector<int> pids_starting_with(const std::string& prefix) {
    return pids_matching([&](const std::string& cmdline) { return cmdline.rfind(prefix, 0) == 0; });
}

/// How many live processes have a command line starting with `argv_prefix`.
inline int processes_running(const std::string& argv_prefix) {
    return static_cast<int>(pids_starting_with(argv_prefix).size());
}

/// VmHWM (peak resident set) of this process in KiB.
inline long peak_rss_kib() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
    return -1;
}

}  // namespace shannot_test

/// Skips the test when bwrap cannot run here, except under CI=true, where that is a failure.
#define SHANNOT_REQUIRE_BWRAP()                                                               \
    do {                                                                                      \
        if (!shannot_test::bwrap_usable()) {                                                  \
            if (shannot_test::in_ci()) FAIL("bwrap is not usable on this machine (CI=true)"); \
            MESSAGE("skipped: bwrap is not usable on this machine");                          \
            return;                                                                           \
        }                                                                                     \
    } while (0)
