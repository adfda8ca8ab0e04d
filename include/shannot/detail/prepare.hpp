// SPDX-License-Identifier: MIT
// The prepare path every launch takes: per-run input checks, admission, then the builder and the
// LaunchSpec. Fresh runs (SandboxManager) and sessions (SandboxSession) share it.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <shannot/allowlist.hpp>
#include <shannot/builder.hpp>
#include <shannot/concepts/transport.hpp>
#include <shannot/detail/paths.hpp>
#include <shannot/error.hpp>
#include <shannot/limits.hpp>
#include <shannot/process_result.hpp>
#include <shannot/profile.hpp>
#include <shannot/syscall_filter.hpp>

namespace shannot::detail {

/// `what` names the setting in the message: "working directory" (RunOptions), or the option a
/// session or transport took it from.
[[nodiscard]] inline Result<void> check_working_directory(std::string_view what, std::string_view path) {
    if (is_absolute(path) && !has_nul(path)) return {};
    return fail(errc::invalid_argument,
                std::string(what) + " '" + std::string(path) + "' must be an absolute path without NUL");
}

/// The checks of a caller's command and RunOptions, made once for fresh runs and session
/// commands alike, before admission sees the command: a NUL cannot cross argv (or a session's
/// request), and bwrap and the session agent would misread a bad variable name or a relative
/// working directory. (The builder checks only the limits of bwrap's own argv.)
[[nodiscard]] inline Result<void> check_run_input(const std::vector<std::string>& command, const RunOptions& options) {
    if (command.empty() || command.front().empty()) return fail(errc::invalid_argument, "empty command");
    for (std::size_t i = 0; i < command.size(); ++i)
        if (has_nul(command[i]))
            return fail(errc::invalid_argument, "command[" + std::to_string(i) + "] contains a NUL byte");
    for (const auto& [name, value] : options.environment) {
        if (!is_env_name(name))
            return fail(errc::invalid_argument,
                        "environment variable name '" + name + "' is not valid (want [A-Za-z_][A-Za-z0-9_]*)");
        if (has_nul(value))
            return fail(errc::invalid_argument, "environment variable " + name + " contains a NUL byte");
    }
    if (options.working_directory) return check_working_directory("working directory", *options.working_directory);
    return {};
}

/// The PATH the command will see: the caller's, else the profile's, else execvp's default.
template <class T>
[[nodiscard]] std::string effective_path(const SandboxProfile<T>& profile, const RunOptions& options) {
    if (auto it = options.environment.find("PATH"); it != options.environment.end()) return it->second;
    if (auto it = profile.environment.find("PATH"); it != profile.environment.end()) return it->second;
    return "/bin:/usr/bin";
}

/// Where a path inside the sandbox comes from on this host: the deepest mount covering it.
/// A tmpfs (empty at start), /proc, /dev or an unmounted path has no host counterpart.
template <class T>
[[nodiscard]] std::optional<std::string> host_path(const SandboxProfile<T>& profile, std::string_view in_sandbox) {
    std::string_view best_target;
    const SandboxBind* best = nullptr;
    bool best_is_bind = false;
    auto consider = [&](std::string_view target, const SandboxBind* bind) {
        target = strip_trailing_slash(target);
        if (!is_same_or_under(in_sandbox, target)) return;
        if (best_target.empty() || target.size() > best_target.size()) {
            best_target = target;
            best = bind;
            best_is_bind = bind != nullptr;
        }
    };
    for (const auto& b : profile.binds) consider(b.target, &b);
    for (const auto& t : profile.tmpfs_paths) consider(t, nullptr);
    consider("/proc", nullptr);
    consider("/dev", nullptr);
    if (!best_is_bind) return std::nullopt;
    std::string rest(in_sandbox.substr(best_target == "/" ? 0 : best_target.size()));
    std::string source(strip_trailing_slash(best->source));
    if (source == "/") source.clear();
    return source + rest;
}

/// Checks the caller's input (check_run_input) and asks the admission policy about `command`.
/// Bare names resolve through the command's PATH, checked on this host when the transport can.
template <class T, class Admission>
[[nodiscard]] Result<std::vector<std::string>> admit_command(const SandboxProfile<T>& profile, T& transport,
                                                             const Admission& admission,
                                                             std::vector<std::string> command,
                                                             const RunOptions& options) {
    if (auto ok = check_run_input(command, options); !ok) return propagate(ok);
    const std::string path = effective_path(profile, options);  // the request holds a view of it
    AdmissionRequest request{profile.name, profile.allowed_commands, std::move(command), path, {}};
    if constexpr (T::checks_local_paths && requires(T & t, std::string_view p) {
                      { t.executable_exists(p) } -> std::convertible_to<bool>;
                  }) {
        request.exists = [&profile, &transport](std::string_view in_sandbox) {
            const auto host = host_path(profile, in_sandbox);
            return host && transport.executable_exists(*host);
        };
    }
    return admission.admit(std::move(request));
}

/// What the transport can tell of the profile's bind sources that are symlinks where bwrap runs
/// (see BuildExtras::host_symlinks); nothing for a transport that cannot tell.
template <class T>
[[nodiscard]] std::map<std::string, std::string> host_symlinks(const T& transport, const SandboxProfile<T>& profile) {
    if constexpr (requires(const std::vector<std::string>& paths) {
                      { transport.host_symlinks(paths) } -> std::same_as<std::map<std::string, std::string>>;
                  }) {
        std::vector<std::string> sources;
        for (const auto& b : profile.binds)
            if (is_identity_bind(b)) sources.emplace_back(strip_trailing_slash(b.target));
        return transport.host_symlinks(sources);
    } else {
        return {};
    }
}

/// Copies of files are for files this small: bwrap reads and writes each one per sandbox
/// (/etc/ld.so.cache, the largest of the default profile, is ~40 KiB).
inline constexpr std::uint64_t max_copied_file_bytes = 256 * 1024;

/// The binds the transport gives bwrap as copies (BuildExtras::copied_files): the builder's
/// candidates whose sources are small regular files where bwrap runs, in argv order, each at
/// the transport's next free descriptor (one of T::copied_file_fds that is not in `taken`, the
/// launch's other files); none for a transport that cannot pass them.
template <class T>
[[nodiscard]] std::map<std::string, BuildExtras::CopiedFile> copied_files(const T& transport,
                                                                          const SandboxProfile<T>& profile,
                                                                          const BuildExtras& extras,
                                                                          const std::vector<int>& taken) {
    std::map<std::string, BuildExtras::CopiedFile> copies;
    if constexpr (requires(const std::vector<std::string>& paths) {
                      T::copied_file_fds.size();
                      {
                          transport.host_small_files(paths, max_copied_file_bytes)
                          } -> std::same_as<std::map<std::string, unsigned>>;
                  }) {
        const auto candidates = BubblewrapCommandBuilder<T>(profile, {}, extras).copy_candidates();
        if (candidates.empty()) return copies;
        const auto small = transport.host_small_files(candidates, max_copied_file_bytes);
        auto fd = T::copied_file_fds.begin();
        const auto next_free = [&] {
            while (fd != T::copied_file_fds.end() && std::find(taken.begin(), taken.end(), *fd) != taken.end()) ++fd;
        };
        for (const auto& target : candidates) {
            next_free();
            if (fd == T::copied_file_fds.end()) break;
            if (const auto found = small.find(target); found != small.end())
                copies.emplace(target, BuildExtras::CopiedFile{*fd++, found->second});
        }
    }
    return copies;
}

/// The bind sources missing where bwrap runs, and what to tell the caller about them.
struct BindSourceCheck {
    /// Indices into the profile's binds (BuildExtras::missing_sources); nullopt when the
    /// transport cannot look (a remote: its bwrap skips a missing source with --ro-bind-try).
    std::optional<std::vector<std::size_t>> missing{};
    /// One line per bind skipped for it, but for `optional` ones (ProcessResult::warnings).
    std::vector<std::string> warnings{};
};

/// Looks for each bind source on this host when bwrap runs here (T::checks_local_paths). A
/// missing one that may be skipped is skipped, and said unless the bind is `optional`; one that
/// is never skipped (detail::never_skipped) was refused by validate() already.
template <class T>
[[nodiscard]] BindSourceCheck check_bind_sources(const SandboxProfile<T>& profile) {
    BindSourceCheck out;
    if constexpr (T::checks_local_paths) {
        out.missing.emplace();
        for (std::size_t i = 0; i < profile.binds.size(); ++i) {
            const auto& b = profile.binds[i];
            std::error_code ec;  // a source that cannot be looked up was refused by validate()
            if (std::filesystem::exists(b.source, ec) || ec || never_skipped(profile, i)) continue;
            out.missing->push_back(i);
            if (!b.optional)
                out.warnings.push_back("binds[" + std::to_string(i) + "].source: " + b.source +
                                       " does not exist here: the bind to " + b.target +
                                       " is skipped (\"required\": true makes this an error)");
        }
    }
    return out;
}

/// The syscall filters bwrap loads, as LaunchSpec files at the descriptors the builder named:
/// the profile's seccomp_profile (a file where bwrap runs) and the built-in filter (its bytes).
template <class T>
[[nodiscard]] Result<void> add_filter_files(const SandboxProfile<T>& profile, LaunchSpec& spec) {
    if constexpr (requires { T::seccomp_fd; }) {
        if (profile.seccomp_profile) spec.files.push_back({.fd = T::seccomp_fd, .path = *profile.seccomp_profile});
    }
    if constexpr (requires { T::syscall_filter_fd; }) {
        auto bytes = syscall_filter_bytes(profile.syscall_filter, profile.syscall_filter_allow);
        if (!bytes) return propagate(bytes);
        if (!bytes->empty()) spec.files.push_back({.fd = T::syscall_filter_fd, .data = std::move(*bytes)});
    }
    return {};
}

/// What one launch adds to the profile: a fresh run's admitted command and RunOptions, or a
/// session's agent and SessionOptions. launch_spec() turns it into the transport's LaunchSpec.
struct LaunchPlan {
    std::vector<std::string> command{};                ///< after `--`: the admitted command, or the session agent
    std::map<std::string, std::string> environment{};  ///< added to the profile's variables
    std::optional<std::string> working_directory{};    ///< checked; when unset, the transport's default
    std::vector<std::string> extra_args{};             ///< before `--` (a session's own mounts)
    std::vector<InheritedFile> files{};                ///< besides the syscall filters (add_filter_files)
    bool pipe_stdin = false;
    std::string_view input{};
    std::optional<std::chrono::milliseconds> timeout{};
    std::optional<std::vector<std::size_t>> missing_sources{};  ///< BindSourceCheck::missing
    ResourceLimits limits{};  ///< the profile's, with the run's or the session's overrides (run_limits)
    int cancel_fd = -1;       ///< the run's CancelToken descriptor (-1: none)
};

/// The one place a LaunchSpec is made: BuildExtras from the plan and the transport, the bwrap
/// arguments from the builder, the files bwrap inherits.
template <class T>
[[nodiscard]] Result<LaunchSpec> launch_spec(const SandboxProfile<T>& profile, const T& transport, LaunchPlan plan) {
    BuildExtras extras{std::move(plan.environment),       std::move(plan.working_directory), std::move(plan.extra_args),
                       host_symlinks(transport, profile), std::move(plan.missing_sources),   plan.limits};
    if constexpr (requires(const T& t) {
                      { t.default_working_directory() } -> std::convertible_to<std::optional<std::string>>;
                  }) {
        if (!extras.working_directory) {
            extras.working_directory = transport.default_working_directory();
            if (extras.working_directory) {
                auto ok = check_working_directory("the transport's working directory", *extras.working_directory);
                if (!ok) return propagate(ok);
            }
        }
    }
    // The syscall filters' files first: the copies take the descriptors they leave free.
    LaunchSpec filters;
    if (auto ok = add_filter_files(profile, filters); !ok) return propagate(ok);
    std::vector<int> taken;
    for (const auto& f : filters.files) taken.push_back(f.fd);
    for (const auto& f : plan.files) taken.push_back(f.fd);
    auto copies = copied_files(transport, profile, extras, taken);
    for (const auto& [target, copy] : copies) plan.files.push_back({.fd = copy.fd, .path = target});
    extras.copied_files = std::move(copies);
    auto args = BubblewrapCommandBuilder<T>(profile, std::move(plan.command), std::move(extras)).build();
    if (!args) return propagate(args);
    LaunchSpec spec{.bwrap_args = std::move(*args),
                    .pipe_stdin = plan.pipe_stdin,
                    .timeout = plan.timeout,
                    .input = plan.input,
                    .limits = plan.limits,
                    .cancel_fd = plan.cancel_fd};
    spec.files = std::move(filters.files);
    spec.files.insert(spec.files.end(), plan.files.begin(), plan.files.end());
    return spec;
}

/// The limits a launch has: the profile's, with `overrides` (the run's or the session's)
/// applied; a bad override is an error naming it ("limits.processes: ...").
template <class T>
[[nodiscard]] Result<ResourceLimits> run_limits(const SandboxProfile<T>& profile, const LimitOverrides& overrides) {
    if (auto ok = check_limits(overrides, "limits", errc::invalid_argument); !ok) return propagate(ok);
    return apply_overrides(profile.limits, overrides);
}

/// A fresh run ready to launch: the command as admitted, what the transport gets, and the
/// limits the run has (for its result).
struct PreparedLaunch {
    std::vector<std::string> command;
    LaunchSpec spec;
    std::vector<std::string> warnings{};  ///< binds skipped for a missing source (ProcessResult::warnings)
    ResourceLimits limits{};              ///< what the run may consume (run_limits), for its result
};

/// A fresh run's prepare path: the profile is validated, the command checked and admitted, then
/// built into a LaunchSpec with the caller's RunOptions. Nothing is spawned.
template <class T, class Admission>
[[nodiscard]] Result<PreparedLaunch> prepare_launch(const SandboxProfile<T>& profile, T& transport,
                                                    const Admission& admission, std::vector<std::string> command,
                                                    const RunOptions& options) {
    if (auto ok = profile.validate(); !ok) return propagate(ok);
    auto limits = run_limits(profile, options.limits);
    if (!limits) return propagate(limits);
    auto admitted = admit_command(profile, transport, admission, std::move(command), options);
    if (!admitted) return propagate(admitted);
    auto sources = check_bind_sources(profile);
    LaunchPlan plan{.command = *admitted,
                    .environment = options.environment,
                    .working_directory = options.working_directory,
                    .pipe_stdin = options.input.has_value(),
                    .input = options.input ? std::string_view(*options.input) : std::string_view{},
                    .timeout = options.timeout,
                    .missing_sources = std::move(sources.missing),
                    .limits = *limits,
                    .cancel_fd = options.cancel ? options.cancel->fd() : -1};
    auto spec = launch_spec(profile, transport, std::move(plan));
    if (!spec) return propagate(spec);
    return PreparedLaunch{std::move(*admitted), std::move(*spec), std::move(sources.warnings), *limits};
}

}  // namespace shannot::detail
