// SPDX-License-Identifier: MIT
// Test support for the transport alone: a tiny process driver of its own, why bwrap is unusable,
// helper-program paths, zombie scans. Builds on sandbox_env.hpp (in_ci, SHANNOT_REQUIRE_BWRAP).
#pragma once

#include <dirent.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include "sandbox_env.hpp"

namespace shannot_test {

/// Everything a process printed and how it ended, as the transport reported it.
struct Driven {
    std::string out, err;
    shannot::ExitInfo exit;
    bool hung = false;  ///< the overall bound expired and the process was killed
};

/// Drives a launched process to its end with one poll loop of its own (independent of the
/// library's loop): writes `input`, reads both pipes to EOF, then waits. Kills it after `bound`.
/// Give `input` only to commands that read all of it (a write to a closed pipe raises SIGPIPE).
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
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            d.hung = true;
            process.kill();
            break;
        }
        pollfd fds[3] = {{out_open ? process.stdout_fd() : -1, POLLIN, 0},
                         {err_open ? process.stderr_fd() : -1, POLLIN, 0},
                         {in_open ? process.stdin_fd() : -1, POLLOUT, 0}};
        if (::poll(fds, 3, static_cast<int>(left.count())) < 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (!fds[i].revents) continue;
            const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0)
                (i == 0 ? d.out : d.err).append(buffer, static_cast<std::size_t>(n));
            else if (n == 0 || (errno != EAGAIN && errno != EINTR))
                (i == 0 ? out_open : err_open) = false;
        }
        if (in_open && fds[2].revents) {
            const ssize_t n =
                (fds[2].revents & POLLOUT) ? ::write(fds[2].fd, input.data() + written, input.size() - written) : -1;
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

#if SHANNOT_PLATFORM_LINUX
/// Whether a trivial sandbox starts here; `why` says what is wrong otherwise. Cached.
inline bool transport_usable(std::string* why = nullptr) {
    static const std::string problem = [] {
        shannot::PosixSpawnTransport transport;
        auto bwrap = transport.bwrap();
        if (!bwrap) return bwrap.error().describe();
        shannot::LaunchSpec spec;
        spec.bwrap_args = {"--unshare-all",
                           "--die-with-parent",
                           "--ro-bind",
                           "/usr",
                           "/usr",
                           "--ro-bind-try",
                           "/bin",
                           "/bin",
                           "--ro-bind-try",
                           "/lib",
                           "/lib",
                           "--ro-bind-try",
                           "/lib64",
                           "/lib64",
                           "--proc",
                           "/proc",
                           "--dev",
                           "/dev",
                           "--json-status-fd",
                           "4",
                           "--",
                           "/bin/true"};
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
#endif

#if defined(__x86_64__)
inline constexpr unsigned test_audit_arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
inline constexpr unsigned test_audit_arch = AUDIT_ARCH_AARCH64;
#else
inline constexpr unsigned test_audit_arch = 0;  // the seccomp tests skip themselves
#endif

/// Writes a classic-BPF seccomp program to `path`: mkdir and mkdirat fail with EPERM, any other
/// call is allowed, a foreign architecture is killed. Returns false if it could not be written.
inline bool write_mkdir_denying_filter(const std::string& path) {
#ifdef SYS_mkdir
    constexpr unsigned legacy_mkdir = SYS_mkdir;
#else
    constexpr unsigned legacy_mkdir = SYS_mkdirat;  // aarch64 has only mkdirat
#endif
    const sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, test_audit_arch, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, legacy_mkdir, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mkdirat, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
    };
    std::FILE* f = std::fopen(path.c_str(), "wbe");
    if (!f) return false;
    const bool ok = std::fwrite(program, sizeof program, 1, f) == 1;
    return std::fclose(f) == 0 && ok;
}

/// A private directory under /tmp, removed (with its files) at scope exit.
class TempDir {
public:
    TempDir() {
        char name[] = "/tmp/shannot-test-XXXXXX";
        if (::mkdtemp(name)) path_ = name;
    }
    ~TempDir() {
        if (path_.empty()) return;
        if (DIR* d = ::opendir(path_.c_str())) {
            while (dirent* e = ::readdir(d))
                if (e->d_name[0] != '.') ::unlink((path_ + "/" + e->d_name).c_str());
            ::closedir(d);
        }
        ::rmdir(path_.c_str());
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::string& path() const { return path_; }

private:
    std::string path_;
};

/// Processes whose parent is this process and which are zombies (exited, not reaped). The
/// processes an earlier test's kept ssh connections left running (the library reaps them by
/// pidfd at its next use of a kept connection, detail::reap_parked) are reaped first: a check of
/// this test's own children should not see another test's.
inline std::vector<int> zombie_children() {
    shannot::detail::reap_parked();
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

}  // namespace shannot_test

/// As SHANNOT_REQUIRE_BWRAP, for tests of the transport alone, and the message says why.
#define SHANNOT_REQUIRE_SPAWN()                                                           \
    do {                                                                                  \
        std::string shannot_why_;                                                         \
        if (!shannot_test::transport_usable(&shannot_why_)) {                             \
            if (shannot_test::in_ci()) FAIL("bwrap unusable, CI=true: " << shannot_why_); \
            MESSAGE("skipped, bwrap is unusable: " << shannot_why_);                      \
            return;                                                                       \
        }                                                                                 \
    } while (false)
