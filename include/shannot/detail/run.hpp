// SPDX-License-Identifier: MIT
// The steps a fresh run (SandboxManager) and a session command (SandboxSession) share:
// admission with the caller's PATH, mapping sandbox paths to host paths, and turning a loop
// outcome into a ProcessResult or an error.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/allowlist.hpp>
#include <shannot/concepts/transport.hpp>
#include <shannot/detail/run_loop.hpp>
#include <shannot/detail/paths.hpp>
#include <shannot/error.hpp>
#include <shannot/process_result.hpp>
#include <shannot/profile.hpp>

namespace shannot::detail {

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

/// The last 2000 bytes of stderr without trailing blanks: what an error message quotes.
[[nodiscard]] inline std::string stderr_tail(std::string_view err) {
    constexpr std::size_t limit = 2000;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.remove_suffix(1);
    return std::string(err.size() > limit ? err.substr(err.size() - limit) : err);
}

/// Checks the caller's environment names and asks the admission policy about `command`. Bare
/// names resolve through the command's PATH, checked on this host when the transport can.
template <class T, class Admission>
[[nodiscard]] Result<std::vector<std::string>> admit_command(const SandboxProfile<T>& profile, T& transport,
                                                            const Admission& admission, std::vector<std::string> command,
                                                            const RunOptions& options) {
    for (const auto& [name, value] : options.environment)
        if (!is_env_name(name))
            return fail(errc::invalid_argument, "environment variable name '" + name +
                                                    "' is not valid (want [A-Za-z_][A-Za-z0-9_]*)");
    const std::string path = effective_path(profile, options);  // the request holds a view of it
    AdmissionRequest request{profile.name, profile.allowed_commands, std::move(command), path, {}};
    if constexpr (T::checks_local_paths && requires(T& t, std::string_view p) {
                      { t.executable_exists(p) } -> std::convertible_to<bool>;
                  }) {
        request.exists = [&profile, &transport](std::string_view in_sandbox) {
            const auto host = host_path(profile, in_sandbox);
            return host && transport.executable_exists(*host);
        };
    }
    return admission.admit(std::move(request));
}

/// Turns how a run ended into the caller's result: a ProcessResult when the command ran (it
/// exited, or was stopped), an error with the partial result attached when the sandbox or the
/// transport failed, errc::command_failed for an unsuccessful run under `options.check`.
template <class Output>
[[nodiscard]] Result<ProcessResult> assemble_result(std::string_view transport_name, std::vector<std::string> command,
                                                    std::vector<std::string> argv, const LoopOutcome& outcome, Output& out,
                                                    Output& err, const RunOptions& options) {
    auto result = std::make_shared<ProcessResult>();
    result->command = std::move(command);
    result->argv = std::move(argv);
    result->timed_out = outcome.timed_out;
    result->cancelled = outcome.cancelled;
    result->stdout_dropped = out.dropped();
    result->stderr_dropped = err.dropped();
    result->stdout_truncated = result->stdout_dropped > 0;
    result->stderr_truncated = result->stderr_dropped > 0;
    result->stdout_data = out.take();
    result->stderr_data = err.take();
    result->duration = outcome.duration;

    const auto& exit = outcome.exit;
    const bool stopped_by_us = outcome.timed_out || outcome.cancelled;
    if (exit.kind == ExitInfo::Kind::exited) {
        result->exit_code = exit.exit_code;
    } else if (exit.kind == ExitInfo::Kind::signaled || stopped_by_us) {
        result->signal = exit.signal;
    } else {
        // The sandbox or the transport failed: an error, with what was printed attached.
        std::string message = exit.detail.empty() ? std::string(transport_name) + " transport failed" : exit.detail;
        if (auto tail = stderr_tail(result->stderr_data); !tail.empty()) message += ": " + tail;
        return tl::make_unexpected(Error{exit.error == errc::ok ? errc::transport_error : exit.error, std::move(message),
                                         std::move(result)});
    }
    if (options.check && !result->succeeded()) {
        std::string message = "command '" + result->command.front() + "' ";
        if (result->timed_out) message += "timed out";
        else if (result->cancelled) message += "was cancelled";
        else if (result->signal) message += "was killed by signal " + std::to_string(result->signal);
        else message += "exited with status " + std::to_string(result->exit_code);
        if (auto tail = stderr_tail(result->stderr_data); !tail.empty()) message += ": " + tail;
        return tl::make_unexpected(Error{errc::command_failed, std::move(message), std::move(result)});
    }
    return std::move(*result);
}

}  // namespace shannot::detail
