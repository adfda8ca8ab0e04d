// SPDX-License-Identifier: MIT
// Test support: is real bwrap usable here, and profiles the end-to-end tests share.
#pragma once

#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

namespace shannot_test {

inline bool in_ci() {
    const char* ci = std::getenv("CI");
    return ci && std::strcmp(ci, "true") == 0;
}

/// True when `bwrap` runs a trivial sandbox here. Cached.
inline bool bwrap_usable() {
    static const bool usable = [] {
        auto profile = shannot::builtin_profile("minimal");
        if (!profile) return false;
        shannot::LocalSandbox sandbox(*profile);
        auto r = sandbox.run({"ls", "/"});
        return r && r->exit_code == 0;
    }();
    return usable;
}

/// The minimal profile plus the tools the tests drive.
template <class T = shannot::PosixSpawnTransport>
shannot::SandboxProfile<T> test_profile() {
    auto p = *shannot::builtin_profile<T>("minimal");
    p.name = "test";
    for (const char* c : {"sh", "bash", "sleep", "head", "printf", "echo", "env", "cat", "od", "mkdir", "touch", "true", "wc"})
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

/// Live processes whose raw command line (NUL-separated arguments) satisfies `match`.
template <class Match>
int processes_matching(Match match) {
    int n = 0;
    if (DIR* d = ::opendir("/proc")) {
        while (auto* e = ::readdir(d)) {
            if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
            // read(2), not a stream: a process that exits mid-read makes it fail with ESRCH.
            const int fd = ::open((std::string("/proc/") + e->d_name + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            std::string cmdline;
            char buffer[4096];
            ssize_t got = 0;
            while ((got = ::read(fd, buffer, sizeof buffer)) > 0) cmdline.append(buffer, static_cast<std::size_t>(got));
            ::close(fd);
            if (match(cmdline)) ++n;
        }
        ::closedir(d);
    }
    return n;
}

/// Live processes whose command line contains `marker`.
inline int processes_with(const std::string& marker) {
    return processes_matching([&](const std::string& cmdline) { return cmdline.find(marker) != std::string::npos; });
}

/// Live processes whose command line starts with `argv_prefix` (e.g. "sleep\0" "42\0"): the
/// program itself, not a bwrap or sh whose arguments mention it.
inline int processes_running(const std::string& argv_prefix) {
    return processes_matching([&](const std::string& cmdline) { return cmdline.rfind(argv_prefix, 0) == 0; });
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
#define SHANNOT_REQUIRE_BWRAP()                                                                  \
    do {                                                                                         \
        if (!shannot_test::bwrap_usable()) {                                                     \
            if (shannot_test::in_ci()) FAIL("bwrap is not usable on this machine (CI=true)");    \
            MESSAGE("skipped: bwrap is not usable on this machine");                            \
            return;                                                                              \
        }                                                                                        \
    } while (0)
