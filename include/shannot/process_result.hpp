// SPDX-License-Identifier: MIT
// The values a run exchanges: RunOptions in, ProcessResult out, OutputChunk while streaming.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/cancel.hpp>
#include <shannot/limits.hpp>

namespace shannot {

/// Which stream a chunk came from. (Not `stdout`/`stderr`: those are macros in <cstdio>.)
enum class StreamKind { out, err };

/// A piece of output, delivered to a `stream()` callback as it arrives. `data` is only valid
/// during the callback.
struct OutputChunk {
    StreamKind stream{};
    std::string_view data{};
};

/// Per-run settings. The defaults are the safe ones.
struct RunOptions {
    /// Added to (and overriding) the profile's variables. Names must match [A-Za-z_][A-Za-z0-9_]*.
    std::map<std::string, std::string> environment{};
    /// Working directory inside the sandbox (absolute).
    std::optional<std::string> working_directory{};
    /// Bytes for the command's stdin. Without it stdin is /dev/null, never the caller's.
    std::optional<std::string> input{};
    /// Wall-clock limit; std::nullopt means none. On expiry: SIGTERM, `kill_grace`, SIGKILL.
    std::optional<std::chrono::milliseconds> timeout = std::chrono::seconds(30);
    std::chrono::milliseconds kill_grace = std::chrono::milliseconds(500);
    /// Per-stream cap on kept output: the head and the tail are kept, the middle is counted.
    std::size_t max_output = 4u << 20;
    /// Turn an unsuccessful result into errc::command_failed (the result rides along).
    bool check = false;
    /// Set to a token you keep; `token.cancel()` from any thread stops the run.
    std::optional<CancelToken> cancel{};
    /// Replaces the profile's limits for this run, higher or lower. In a session the sandbox's
    /// limits are set when it opens (SessionOptions::limits); a command may only lower its
    /// cpu_seconds, memory_bytes, file_size_bytes and open_files.
    LimitOverrides limits{};
};

/// How a sandboxed command ended and what it printed.
struct ProcessResult {
    std::vector<std::string> command{};  ///< what the caller asked to run (after admission)
    std::vector<std::string> argv{};     ///< what was executed here: bwrap or ssh and all arguments
    int exit_code = -1;                  ///< -1 when there is no exit code (killed by a signal)
    int signal = 0;                      ///< terminating signal, 0 if it exited
    bool timed_out = false;
    bool cancelled = false;
    std::string stdout_data{};  ///< bytes; when truncated, head then tail
    std::string stderr_data{};
    bool stdout_truncated = false;
    bool stderr_truncated = false;
    std::uint64_t stdout_dropped = 0;  ///< bytes read but not kept
    std::uint64_t stderr_dropped = 0;
    std::chrono::nanoseconds duration{0};
    /// What the caller should know about how the sandbox was set up: each bind skipped because
    /// its source is missing here (SandboxBind). Empty when nothing was skipped.
    std::vector<std::string> warnings{};
    /// The limits the run had: the profile's, with the run's (or the session's) overrides.
    ResourceLimits limits{};
    /// How they were enforced: one of the values in shannot::limits_mechanism.
    std::string limits_mechanism{};
    /// The limit the run's end is attributable to ("cpu_seconds" after SIGXCPU,
    /// "file_size_bytes" after SIGXFSZ, "processes" when a pids cgroup refused a fork and the
    /// command failed), else empty. A limit that makes a call fail (memory_bytes: ENOMEM;
    /// open_files: EMFILE; tmpfs_bytes: ENOSPC) is reported by the command itself.
    std::optional<std::string> limit_exceeded{};

    /// Exited with status 0, within its deadline, not cancelled.
    [[nodiscard]] bool succeeded() const noexcept { return exit_code == 0 && signal == 0 && !timed_out && !cancelled; }
};

}  // namespace shannot
