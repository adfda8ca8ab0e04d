// SPDX-License-Identifier: MIT
// Resource limits: how much memory, processes, CPU time, file size, descriptors and tmpfs a sandbox gets.
#pragma once

#include <signal.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <shannot/error.hpp>

namespace shannot {

/// What one sandbox may consume. A profile always has limits: these defaults stop runaway
/// behaviour (a fork bomb, a memory hog, a spinner, a tmpfs filler) and stay out of the way of
/// a diagnostic command; docs/limits.md says why each value.
struct ResourceLimits {
    /// Address space of each process (RLIMIT_AS): a malloc or mmap past it fails with ENOMEM.
    std::uint64_t memory_bytes = std::uint64_t(4) << 30;
    /// Processes and threads the run may hold at once, bwrap's own process included.
    std::uint64_t processes = 256;
    /// CPU time of each process (RLIMIT_CPU): SIGXCPU at the limit, SIGKILL a second later.
    std::uint64_t cpu_seconds = 300;
    /// Largest file a process may write (RLIMIT_FSIZE): the write is cut there, SIGXFSZ.
    std::uint64_t file_size_bytes = std::uint64_t(1) << 30;
    /// Descriptors each process may hold (RLIMIT_NOFILE).
    std::uint64_t open_files = 1024;
    /// Size of every tmpfs in the sandbox: the profile's, /dev/shm, a session agent's.
    std::uint64_t tmpfs_bytes = std::uint64_t(256) << 20;

    friend bool operator==(const ResourceLimits&, const ResourceLimits&) = default;
};

/// Per-run (RunOptions::limits) or per-session (SessionOptions::limits) changes to a profile's
/// limits: a member that is set replaces the profile's, higher or lower.
struct LimitOverrides {
    std::optional<std::uint64_t> memory_bytes{};
    std::optional<std::uint64_t> processes{};
    std::optional<std::uint64_t> cpu_seconds{};
    std::optional<std::uint64_t> file_size_bytes{};
    std::optional<std::uint64_t> open_files{};
    std::optional<std::uint64_t> tmpfs_bytes{};

    [[nodiscard]] bool empty() const noexcept {
        return !memory_bytes && !processes && !cpu_seconds && !file_size_bytes && !open_files && !tmpfs_bytes;
    }
    friend bool operator==(const LimitOverrides&, const LimitOverrides&) = default;
};

/// One limit's name (the profile key, the CLI's --limit NAME), where it lives in both structs,
/// the largest value accepted, and whether it counts bytes (K, M, G suffixes on the CLI).
struct LimitSpec {
    std::string_view name;
    std::uint64_t ResourceLimits::*value;
    std::optional<std::uint64_t> LimitOverrides::*override_value;
    std::uint64_t max;
    bool bytes;
};

/// Every limit, in the order profiles and results list them. The maxima are what the kernel and
/// bwrap accept: PID_MAX_LIMIT processes, NR_OPEN descriptors, bwrap's tmpfs size bound.
inline constexpr std::array<LimitSpec, 6> limit_specs{{
    {"memory_bytes", &ResourceLimits::memory_bytes, &LimitOverrides::memory_bytes, std::uint64_t(1) << 62, true},
    {"processes", &ResourceLimits::processes, &LimitOverrides::processes, std::uint64_t(1) << 22, false},
    {"cpu_seconds", &ResourceLimits::cpu_seconds, &LimitOverrides::cpu_seconds, std::uint64_t(1) << 32, false},
    {"file_size_bytes", &ResourceLimits::file_size_bytes, &LimitOverrides::file_size_bytes, std::uint64_t(1) << 62,
     true},
    {"open_files", &ResourceLimits::open_files, &LimitOverrides::open_files, std::uint64_t(1) << 30, false},
    {"tmpfs_bytes", &ResourceLimits::tmpfs_bytes, &LimitOverrides::tmpfs_bytes, std::uint64_t(1) << 62, true},
}};

/// The limit called `name`, or nullptr.
[[nodiscard]] constexpr const LimitSpec* find_limit(std::string_view name) noexcept {
    for (const auto& spec : limit_specs)
        if (spec.name == name) return &spec;
    return nullptr;
}

/// "memory_bytes, processes, ...": for messages that list what there is.
[[nodiscard]] inline std::string limit_names_list() {
    std::string out;
    for (const auto& spec : limit_specs) out += (out.empty() ? "" : ", ") + std::string(spec.name);
    return out;
}

/// Checks one value; `field` names it in the message ("limits.processes").
[[nodiscard]] inline Result<void> check_limit(const LimitSpec& spec, std::uint64_t value, const std::string& field,
                                              errc code) {
    if (value == 0) return fail(code, field + ": must be a positive integer (0 would stop every command)");
    if (value > spec.max)
        return fail(code, field + ": " + std::to_string(value) + " is more than the largest accepted (" +
                              std::to_string(spec.max) + ")");
    return {};
}

/// Checks every limit; messages name the field as `prefix.NAME` ("limits.processes").
[[nodiscard]] inline Result<void> check_limits(const ResourceLimits& limits, std::string_view prefix, errc code) {
    for (const auto& spec : limit_specs)
        if (auto ok = check_limit(spec, limits.*spec.value, std::string(prefix) + "." + std::string(spec.name), code);
            !ok)
            return ok;
    return {};
}

/// Checks the members that are set.
[[nodiscard]] inline Result<void> check_limits(const LimitOverrides& overrides, std::string_view prefix, errc code) {
    for (const auto& spec : limit_specs)
        if (const auto& v = overrides.*spec.override_value)
            if (auto ok = check_limit(spec, *v, std::string(prefix) + "." + std::string(spec.name), code); !ok)
                return ok;
    return {};
}

/// `base` with the members `overrides` sets replaced.
[[nodiscard]] inline ResourceLimits apply_overrides(ResourceLimits base, const LimitOverrides& overrides) noexcept {
    for (const auto& spec : limit_specs)
        if (const auto& v = overrides.*spec.override_value) base.*spec.value = *v;
    return base;
}

/// How the limits of a run were enforced; ProcessResult::limits_mechanism and
/// SandboxManager::limits_in_force() report it. Every limit but `processes` is always an rlimit
/// (tmpfs_bytes: bwrap's --size); `processes` is a pids cgroup where one can be made, else
/// RLIMIT_NPROC, which Linux does not apply to root (uid 0 is exempt, in any user namespace).
namespace limits_mechanism {
/// Every limit by setrlimit; processes by RLIMIT_NPROC, counted in the sandbox's user namespace.
inline constexpr std::string_view rlimits = "rlimits";
/// processes by a pids cgroup (v1 or v2) the library made for the run; the rest by rlimits.
inline constexpr std::string_view cgroup_v1 = "rlimits+cgroup-v1";
inline constexpr std::string_view cgroup_v2 = "rlimits+cgroup-v2";
/// The caller is root and no pids cgroup could be made: the process count is not bounded.
inline constexpr std::string_view no_process_limit = "rlimits-without-processes";
/// Not known yet: decided where bwrap runs (a remote host not yet reached).
inline constexpr std::string_view unknown = "unknown";
}  // namespace limits_mechanism

/// The limits a run would have, and how they would be enforced (SandboxManager::limits_in_force).
struct LimitsInForce {
    ResourceLimits limits{};
    std::string mechanism{};
};

namespace detail {
/// Which limit, if any, ended a run that exited with `exit_code` or died of `signal`: a shell
/// and bwrap report a command killed by signal N as 128+N. SIGXCPU is RLIMIT_CPU's, SIGXFSZ
/// RLIMIT_FSIZE's; the other limits make a call fail (ENOMEM, EAGAIN, ENOSPC, EMFILE), which
/// the command reports in its own way, and `processes_hit` says the pids cgroup refused a fork.
[[nodiscard]] inline std::optional<std::string> exceeded_limit(int exit_code, int signal, bool processes_hit) {
    const int sig = signal != 0 ? signal : exit_code > 128 ? exit_code - 128 : 0;
    if (sig == SIGXCPU) return std::string("cpu_seconds");
    if (sig == SIGXFSZ) return std::string("file_size_bytes");
    if (processes_hit && (exit_code != 0 || signal != 0)) return std::string("processes");
    return std::nullopt;
}
}  // namespace detail

}  // namespace shannot
