// SPDX-License-Identifier: MIT
// The run path a fresh run (SandboxManager) and a session command (SandboxSession) share once
// the command is launched: output policies, the run loop, and the caller's result or error.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/run_loop.hpp>
#include <shannot/error.hpp>
#include <shannot/limits.hpp>
#include <shannot/process_result.hpp>

namespace shannot::detail {

/// The last 2000 bytes of stderr without trailing blanks: what an error message quotes.
[[nodiscard]] inline std::string stderr_tail(std::string_view err) {
    constexpr std::size_t limit = 2000;
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.remove_suffix(1);
    return std::string(err.size() > limit ? err.substr(err.size() - limit) : err);
}

/// How an unsuccessful run ended, for an error message: "'CMD' exited with status 3: <stderr's
/// tail>" (or timed out, was cancelled, was killed by signal N).
[[nodiscard]] inline std::string failure_message(const ProcessResult& r) {
    std::string message = "'" + (r.command.empty() ? std::string() : r.command.front()) + "' ";
    if (r.timed_out)
        message += "timed out";
    else if (r.cancelled)
        message += "was cancelled";
    else if (r.signal)
        message += "was killed by signal " + std::to_string(r.signal);
    else
        message += "exited with status " + std::to_string(r.exit_code);
    if (r.limit_exceeded) message += " (the " + *r.limit_exceeded + " limit was exceeded)";
    if (auto tail = stderr_tail(r.stderr_data); !tail.empty()) message += ": " + tail;
    return message;
}

/// What a run's result says about its limits: those it had, how they were enforced, and
/// whether a pids cgroup refused a fork.
struct LimitsOutcome {
    ResourceLimits limits{};
    std::string mechanism{};
    bool processes_hit = false;
};

/// The limits part of a run's result, from a process handle's optional hooks (read after its
/// wait()); `fallback` names the mechanism when the handle does not.
template <class P>
[[nodiscard]] LimitsOutcome limits_outcome(const P& process, const ResourceLimits& limits, std::string_view fallback) {
    LimitsOutcome outcome{limits, std::string(fallback), false};
    if constexpr (requires {
                      { process.limits_mechanism() } -> std::convertible_to<std::string_view>;
                  }) {
        if (!process.limits_mechanism().empty()) outcome.mechanism = std::string(process.limits_mechanism());
    }
    if constexpr (requires {
                      { process.processes_limit_hit() } -> std::convertible_to<bool>;
                  })
        outcome.processes_hit = process.processes_limit_hit();
    return outcome;
}

/// Turns how a run ended into the caller's result: a ProcessResult when the command ran (it
/// exited, or was stopped), an error with the partial result attached when the sandbox or the
/// transport failed, errc::command_failed for an unsuccessful run under `options.check`.
template <class Output>
[[nodiscard]] Result<ProcessResult> assemble_result(std::string_view transport_name, std::vector<std::string> command,
                                                    std::vector<std::string> argv, std::vector<std::string> warnings,
                                                    const LoopOutcome& outcome, Output& out, Output& err,
                                                    const RunOptions& options, const LimitsOutcome& limits = {}) {
    auto result = std::make_shared<ProcessResult>();
    result->command = std::move(command);
    result->argv = std::move(argv);
    result->warnings = std::move(warnings);
    result->timed_out = outcome.timed_out;
    result->cancelled = outcome.cancelled;
    result->stdout_dropped = out.dropped();
    result->stderr_dropped = err.dropped();
    result->stdout_truncated = result->stdout_dropped > 0;
    result->stderr_truncated = result->stderr_dropped > 0;
    result->stdout_data = out.take();
    result->stderr_data = err.take();
    result->duration = outcome.duration;
    result->limits = limits.limits;
    result->limits_mechanism = limits.mechanism;

    const auto& exit = outcome.exit;
    const bool stopped_by_us = outcome.timed_out || outcome.cancelled;
    if (exit.kind == ExitInfo::Kind::exited) {
        result->exit_code = exit.exit_code;
    } else if (exit.kind == ExitInfo::Kind::signaled || stopped_by_us) {
        result->signal = exit.signal;
    } else {
        // The sandbox or the transport failed: an error, with what was printed attached.
        result->limit_exceeded = exceeded_limit(-1, 0, limits.processes_hit);
        std::string message = exit.detail.empty() ? std::string(transport_name) + " transport failed" : exit.detail;
        if (result->limit_exceeded) message += " (the " + *result->limit_exceeded + " limit was exceeded)";
        if (auto tail = stderr_tail(result->stderr_data); !tail.empty()) message += ": " + tail;
        return tl::make_unexpected(
            Error{exit.error == errc::ok ? errc::transport_error : exit.error, std::move(message), std::move(result)});
    }
    if (!stopped_by_us)
        result->limit_exceeded = exceeded_limit(result->exit_code, result->signal, limits.processes_hit);
    if (options.check && !result->succeeded())
        return tl::make_unexpected(
            Error{errc::command_failed, "command " + failure_message(*result), std::move(result)});
    return std::move(*result);
}

/// Runs a launched process to its end: its output goes to one `Output` policy per stream and
/// to `on_chunk(const OutputChunk&)` as it arrives; input, deadline and cancel come from
/// `options`. Then the caller's result for `command` (as admitted), with `warnings` about how
/// its sandbox was set up (PreparedLaunch::warnings) and what `limits_of()` (called once the
/// process has ended) says of its limits.
template <class Output, ProcessHandle P, class F, class LimitsOf>
[[nodiscard]] Result<ProcessResult> run_prepared(std::string_view transport_name, P& process,
                                                 std::vector<std::string> command, std::vector<std::string> warnings,
                                                 const RunOptions& options, F&& on_chunk, LimitsOf&& limits_of) {
    Output out(options.max_output), err(options.max_output);
    auto sink = [&](StreamKind kind, std::string_view bytes) {
        (kind == StreamKind::out ? out : err).append(bytes);
        on_chunk(OutputChunk{kind, bytes});
    };
    const int cancel_fd = options.cancel ? options.cancel->fd() : -1;
    const auto outcome = run_loop(process, options.input, options.timeout, options.kill_grace, cancel_fd, sink);
    return assemble_result(transport_name, std::move(command), process.argv(), std::move(warnings), outcome, out, err,
                           options, limits_of());
}

}  // namespace shannot::detail
