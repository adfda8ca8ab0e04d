// SPDX-License-Identifier: MIT
// The built-in profiles, usable from the header alone: minimal, readonly, diagnostics, systemd.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/error.hpp>
#include <shannot/limits.hpp>
#include <shannot/profile.hpp>

namespace shannot {

/// The profile used when none is named.
inline constexpr std::string_view default_profile_name = "minimal";

/// Built-in names, in order of increasing reach.
inline constexpr std::array<std::string_view, 4> builtin_profile_names{"minimal", "readonly", "diagnostics", "systemd"};

namespace detail {

/// A read-only bind of `path` at the same place: optional (skipped silently when missing), or
/// required (missing: an error).
enum class Need { optional, required };
inline SandboxBind ro(std::string path, Need need = Need::optional) {
    return {.source = path, .target = path, .optional = need == Need::optional, .required = need == Need::required};
}

/// Binaries, libraries and the handful of /etc files a dynamically linked tool needs. Every
/// path but /usr is optional so one profile serves Debian (merged /usr, /etc/alternatives) and
/// Fedora (/lib64, no alternatives tree) alike; /usr is required.
template <class T>
SandboxProfile<T> base_profile(std::string name, std::vector<std::string> commands) {
    SandboxProfile<T> p;
    p.name = std::move(name);
    p.allowed_commands = std::move(commands);
    p.binds.push_back(detail::ro("/usr", detail::Need::required));
    for (const char* path : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/alternatives",
                             "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                             "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/os-release"})
        p.binds.push_back(detail::ro(path));
    p.tmpfs_paths = {"/tmp"};
    p.environment = {{"HOME", "/tmp"},
                     {"LANG", "C.UTF-8"},
                     {"PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}};
    // The library's defaults, written out: enough for any diagnostic command, not for a runaway
    // (docs/limits.md).
    p.limits = ResourceLimits{.memory_bytes = std::uint64_t(4) << 30,
                              .processes = 256,
                              .cpu_seconds = 300,
                              .file_size_bytes = std::uint64_t(1) << 30,
                              .open_files = 1024,
                              .tmpfs_bytes = std::uint64_t(256) << 20};
    return p;
}

/// Adds a read-only view of /etc with its secrets masked, plus logs and application trees.
template <class T>
void add_readonly_views(SandboxProfile<T>& p) {
    std::erase_if(p.binds, [](const SandboxBind& b) { return b.target.rfind("/etc/", 0) == 0; });
    p.binds.push_back(detail::ro("/etc", detail::Need::required));
    // Secrets under /etc stay hidden: an empty file over each hash file, a tmpfs over ssh keys.
    // Inside the bind of /etc, these masks are never skipped (SandboxBind).
    for (const char* secret : {"/etc/shadow", "/etc/gshadow"})
        p.binds.push_back({.source = "/dev/null", .target = secret});
    p.tmpfs_paths.push_back("/etc/ssh");
    for (const char* path : {"/opt", "/srv", "/var/log"}) p.binds.push_back(detail::ro(path));
}

}  // namespace detail

/// A built-in profile by name; the error lists the names there are.
template <class Transport = PosixSpawnTransport>
[[nodiscard]] Result<SandboxProfile<Transport>> builtin_profile(std::string_view name) {
    std::vector<std::string> commands{"ls", "cat", "grep", "find"};
    const auto level = [&]() -> int {
        for (std::size_t i = 0; i < builtin_profile_names.size(); ++i)
            if (builtin_profile_names[i] == name) return static_cast<int>(i);
        return -1;
    }();
    if (level < 0) {
        std::string names;
        for (auto n : builtin_profile_names) names += (names.empty() ? "" : ", ") + std::string(n);
        return fail(errc::invalid_argument,
                    "no built-in profile named '" + std::string(name) + "' (built-ins: " + names + ")");
    }
    if (level >= 1) commands.insert(commands.end(), {"head", "tail", "stat"});
    if (level >= 2) commands.insert(commands.end(), {"df", "free", "ps", "uptime", "wc"});
    if (level >= 3) commands.insert(commands.end(), {"journalctl", "systemd-cgls", "systemd-cgtop"});
    auto p = detail::base_profile<Transport>(std::string(name), std::move(commands));
    if (level >= 1) detail::add_readonly_views(p);
    if (level >= 2) {
        // Host processes, read-only: `ps` sees the host. The sandbox still has its own pid namespace.
        p.binds.push_back(detail::ro("/proc", detail::Need::required));
        p.binds.push_back(detail::ro("/run/utmp"));
    }
    if (level >= 3) {
        for (const char* path : {"/run/log/journal", "/var/lib/systemd/catalog", "/sys/fs/cgroup"})
            p.binds.push_back(detail::ro(path));
    }
    return p;
}

}  // namespace shannot
