// SPDX-License-Identifier: MIT
// Profile lint: the risks a profile takes, listed so a reviewer sees them before an agent does.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <shannot/allowlist.hpp>
#include <shannot/limits.hpp>
#include <shannot/profile.hpp>
#include <shannot/syscall_filter.hpp>

namespace shannot {

/// One risk. `code` is stable (for tests and suppression lists); `message` is for people.
struct LintFinding {
    enum class Severity { info, warning, danger };
    Severity severity;
    std::string code;
    std::string message;
};

/// Commands that run other commands: allowing one of them allows everything the sandbox can see.
inline constexpr std::array<std::string_view, 36> exec_capable_commands{
    "env", "find", "xargs",   "sh",     "bash",    "dash",    "zsh",     "ksh",    "fish",
    "csh", "tcsh", "busybox", "python", "python3", "perl",    "ruby",    "node",   "lua",
    "php", "awk",  "gawk",    "mawk",   "nice",    "nohup",   "timeout", "strace", "ltrace",
    "gdb", "sudo", "su",      "chroot", "unshare", "nsenter", "setsid",  "watch",  "flock"};

/// A limit above this many times its default (ResourceLimits{}) is flagged ("high-limit").
inline constexpr std::uint64_t limit_lint_factor = 16;

/// The findings for `p`. Where bwrap runs on this host (Transport::checks_local_paths, e.g. a
/// LocalProfile) it also looks for each bind source here: a missing one is skipped at run time
/// (`skipped-bind`), or fails the run when the bind is never skipped (`missing-source`).
template <class Transport>
[[nodiscard]] std::vector<LintFinding> lint_profile(const SandboxProfile<Transport>& p) {
    using S = LintFinding::Severity;
    std::vector<LintFinding> out;
    if (p.allowed_commands.empty())
        out.push_back({S::danger, "empty-allowlist", "allowed_commands is empty: every command is allowed"});
    for (const auto& pattern : p.allowed_commands) {
        const auto slash = pattern.rfind('/');
        const std::string_view base =
            slash == std::string::npos ? std::string_view(pattern) : std::string_view(pattern).substr(slash + 1);
        for (auto exec : exec_capable_commands) {
            // A pattern is exec-capable if it names such a command or a glob admits one.
            const bool named =
                base == exec || (base.size() > exec.size() && base.substr(0, exec.size()) == exec &&
                                 base.find_first_not_of("0123456789.", exec.size()) == std::string_view::npos);
            if (named || glob_match(base, exec)) {
                out.push_back({S::danger, "exec-capable",
                               "allowed command '" + pattern + "' can run other commands (" + std::string(exec) +
                                   "); anything visible in the sandbox becomes runnable"});
                break;
            }
        }
        if (pattern.find_first_of("*?[") != std::string::npos)
            out.push_back(
                {S::warning, "glob-pattern", "allowed command '" + pattern + "' is a glob: review what it admits"});
    }
    for (std::size_t i = 0; i < p.binds.size(); ++i)
        if (!p.binds[i].read_only)
            out.push_back(
                {S::warning, "writable-bind",
                 "binds[" + std::to_string(i) + "]: " + p.binds[i].source + " is writable at " + p.binds[i].target});
    if (!p.network_isolation)
        out.push_back({S::danger, "network", "network_isolation is false: the sandbox shares the host's network"});
    if (!p.user_namespace_isolation)
        out.push_back(
            {S::warning, "user-namespace", "user_namespace_isolation is false: no user namespace is created"});
    if (!p.additional_args.empty())
        out.push_back(
            {S::warning, "additional-args", "additional_args are passed to bwrap verbatim and can weaken the sandbox"});
    if (p.syscall_filter == no_syscall_filter_name)
        out.push_back(
            {S::danger, "syscall-filter-off",
             "syscall_filter is \"none\": the whole kernel interface is reachable (unix sockets under bound paths, "
             "nested user namespaces, io_uring, ptrace, ...)"});
    for (std::size_t i = 0; i < p.syscall_filter_allow.size(); ++i) {
        const auto& group = p.syscall_filter_allow[i];
        const auto index = DefaultSyscallFilter::group_index(group);
        out.push_back({S::warning, "syscall-filter-relaxed",
                       "syscall_filter_allow[" + std::to_string(i) + "]: '" + group + "' is allowed" +
                           (index ? ": " + std::string(DefaultSyscallFilter::summaries[*index])
                                  : std::string(" (no such group)"))});
    }
    for (std::size_t i = 0; i < p.binds.size(); ++i)
        if (detail::strip_trailing_slash(p.binds[i].source) == "/")
            out.push_back(
                {S::warning, "root-bind", "binds[" + std::to_string(i) + "]: the whole host filesystem is visible"});
    for (std::size_t i = 0; i < p.binds.size(); ++i) {
        const auto& b = p.binds[i];
        const auto field = "binds[" + std::to_string(i) + "]";
        const auto outer = detail::enclosing_mount(p, i);
        if (b.optional && outer)
            out.push_back({S::warning, "optional-ignored",
                           field + ": \"optional\" is ignored: the bind masks part of " + outer->field + " (" +
                               outer->target + "), and a masking bind is never skipped"});
        if constexpr (Transport::checks_local_paths) {
            std::error_code ec;
            if (std::filesystem::exists(b.source, ec) || ec) continue;  // there, or not lookable (validate() says)
            if (b.required || outer)
                out.push_back(
                    {S::warning, "missing-source",
                     field + ".source: " + b.source + " does not exist on this host, and the bind is " +
                         (b.required ? "\"required\"" : "never skipped (it masks part of " + outer->field + ")") +
                         ": a run here fails"});
            else if (!b.optional)
                out.push_back({S::warning, "skipped-bind",
                               field + ".source: " + b.source +
                                   " does not exist on this host: a run here skips the bind to " + b.target +
                                   " (\"required\": true makes it an error, \"optional\": true silences this)"});
        }
    }
    static constexpr ResourceLimits defaults{};
    for (const auto& spec : limit_specs) {
        const auto value = p.limits.*spec.value, ceiling = defaults.*spec.value * limit_lint_factor;
        if (value > ceiling)
            out.push_back({S::warning, "high-limit",
                           "limits." + std::string(spec.name) + " is " + std::to_string(value) + ", more than " +
                               std::to_string(limit_lint_factor) + " times the default (" +
                               std::to_string(defaults.*spec.value) +
                               "): a runaway command can take that much of the host"});
    }
    return out;
}

}  // namespace shannot
