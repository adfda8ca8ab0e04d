// SPDX-License-Identifier: MIT
// The transport policy contract: start, feed, drain, wait for and kill one process.
#pragma once

#include <chrono>
#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/error.hpp>
#include <shannot/limits.hpp>

namespace shannot {

/// What the transport must make readable to bwrap as descriptor `fd`: a file (a profile's
/// seccomp_profile, a session's shell), or bytes (the built-in syscall filter), which must reach
/// bwrap without a file a sandbox could see.
struct InheritedFile {
    int fd{};
    std::string path{};  ///< where bwrap runs: a local path, or a path on the remote host; empty: `data`
    std::string data{};  ///< when `path` is empty: these bytes, read from the start to EOF
};

/// Everything a transport needs to start one sandbox. Transports never see the profile.
struct LaunchSpec {
    std::vector<std::string> bwrap_args{};  ///< from BubblewrapCommandBuilder, without the executable
    std::vector<InheritedFile> files{};
    bool pipe_stdin = false;  ///< false: stdin is /dev/null
    /// The run's deadline, for transports that must enforce it on the far side too (ssh).
    std::optional<std::chrono::milliseconds> timeout{};
    /// The input bytes (valid during launch). A transport may send them itself while launching
    /// (the ssh dispatcher stages them on the remote); its process then reports stdin_fd() == -1
    /// and the host's loop writes nothing. Otherwise the loop writes them to stdin_fd().
    std::string_view input{};
    /// The run's limits, for the transport to set on the sandbox before the command starts
    /// (tmpfs_bytes is already in bwrap_args). Unset: none (only benchmarks measure that).
    std::optional<ResourceLimits> limits{};
    /// The run's CancelToken descriptor (-1: none), for a transport that may wait before the
    /// process exists (connecting to a remote host): a cancel ends that wait too.
    int cancel_fd = -1;
};

/// How a process ended, as the transport saw it.
struct ExitInfo {
    enum class Kind {
        exited,            ///< the command ran and exited (exit_code valid)
        signaled,          ///< the command was killed by `signal`
        setup_failed,      ///< bwrap (or the remote side) failed before running the command
        transport_failed,  ///< the transport itself failed (ssh could not connect, ...)
    };
    Kind kind = Kind::exited;
    int exit_code = -1;
    int signal = 0;
    errc error = errc::ok;  ///< for setup_failed / transport_failed: the most specific code known
    std::string detail{};   ///< for failures: what the transport knows (not parsed from stderr text)
};

/// A running process. Owns its descriptors; the host's loop polls them but never closes them.
template <class P>
concept ProcessHandle = std::movable<P> && requires(P& p, const P& cp) {
    { cp.stdin_fd() } -> std::same_as<int>;   // write end of stdin, -1 when stdin is /dev/null
    { cp.stdout_fd() } -> std::same_as<int>;  // non-blocking read ends
    { cp.stderr_fd() } -> std::same_as<int>;
    { cp.exit_fd() } -> std::same_as<int>;  // becomes readable when the process has exited (a pidfd)
    { p.close_stdin() } -> std::same_as<void>;
    { p.terminate() } -> std::same_as<void>;  // polite stop (SIGTERM) of everything the run started
    { p.kill() } -> std::same_as<void>;       // forced stop (SIGKILL) of everything the run started
    { p.wait() } -> std::same_as<ExitInfo>;   // reaps; blocks until exit; called once
    { cp.argv() } -> std::same_as<const std::vector<std::string>&>;  // what was executed here
};

/// A transport policy: a value the host class owns, asked to launch sandboxes.
template <class T>
concept Transport = requires(T& t, const LaunchSpec& spec) {
    typename T::process_type;
    requires ProcessHandle<typename T::process_type>;
    { T::name } -> std::convertible_to<std::string_view>;
    { T::checks_local_paths } -> std::convertible_to<bool>;
    { t.launch(spec) } -> std::same_as<Result<typename T::process_type>>;
};

/// The archetype: the smallest type that models Transport, with each member's contract.
/// Optional members a transport may add (detected with `requires`):
///  - `static constexpr int seccomp_fd`: the descriptor a profile's seccomp_profile file is given
///    to bwrap on (`--seccomp N`); the transport then opens that LaunchSpec::files entry there.
///  - `static constexpr int syscall_filter_fd`: the descriptor the built-in syscall filter's
///    bytes are given to bwrap on (a LaunchSpec::files entry with `data`). Without it a profile
///    must say `"syscall_filter": "none"`: the builder refuses to run without the filter it asks for.
///  - `static constexpr int json_status_fd`: bwrap reports child pid and exit there; the
///    transport reads it to tell "setup failed" from "the command failed" and to kill PID 1.
///  - `static constexpr int limits_block_fd`: the builder adds `--block-fd N`, and the
///    transport holds bwrap's sandbox process there until LaunchSpec::limits are set on it.
///  - `std::string_view limits_mechanism() const`: how limits are enforced where bwrap runs
///    (shannot::limits_mechanism), for SandboxManager::limits_in_force().
///  - `bool executable_exists(std::string_view host_path)`: lets admission resolve bare
///    names through PATH (only where bwrap runs on this host).
///  - `std::map<std::string, std::string> host_symlinks(const std::vector<std::string>& paths) const`:
///    which of these bind sources are symlinks where bwrap runs, each with the absolute path it
///    resolves to there; the builder then makes a bind that repeats another one a `--symlink`
///    (BuildExtras::host_symlinks). Saying nothing is always correct, only slower.
///  - `static constexpr std::array<int, N> copied_file_fds`, with
///    `std::map<std::string, unsigned> host_small_files(const std::vector<std::string>& paths,
///    std::uint64_t max_bytes) const`: which of these bind sources are regular files of at most
///    `max_bytes` where bwrap runs, with their permission bits. As many of them as there are
///    descriptors in `copied_file_fds` that the launch does not use otherwise are then given to
///    bwrap as a copy (`--file FD`, BuildExtras::copied_files), LaunchSpec::files entries with
///    the source's path, instead of a bind mount each. Saying nothing is always correct, only
///    slower.
/// Optional members of process_type:
///  - `void filter_output(StreamKind, std::string_view in, std::string& out)`: sees every chunk
///    read from stdout/stderr before the host keeps or streams it and appends to `out` what the
///    caller should get (may hold bytes back, strip framing, or note the transport's own messages,
///    e.g. ssh's diagnostics).
///  - `void finish_output(StreamKind, std::string& out)`: at EOF of that stream, flushes held bytes.
///  - `bool output_finished(StreamKind) const`: true once the stream carried the run's last byte
///    though its descriptor stays open (a reused ssh session); the loop then stops reading it.
///  - `std::string_view limits_mechanism() const` and `bool processes_limit_hit() const` (read
///    after wait()): how this run's limits were enforced, and whether a pids cgroup refused a
///    fork; they fill ProcessResult::limits_mechanism and limit_exceeded.
/// Thread safety: `launch` may be called from many threads at once; a process handle is used by
/// one thread at a time.
struct TransportArchetype {
    /// The handle of one running sandbox (see ProcessHandle).
    struct process_type {
        int stdin_fd() const { return -1; }
        int stdout_fd() const { return -1; }
        int stderr_fd() const { return -1; }
        int exit_fd() const { return -1; }
        void close_stdin() {}
        void terminate() {}
        void kill() {}
        ExitInfo wait() { return {}; }
        const std::vector<std::string>& argv() const { return argv_; }
        std::vector<std::string> argv_;
    };
    /// Shown in errors and test names.
    static constexpr std::string_view name = "archetype";
    /// True when bind sources and the seccomp file live on this host and can be checked here.
    static constexpr bool checks_local_paths = false;
    /// Starts bwrap with `spec`; the returned handle's descriptors are open and non-blocking.
    /// Called on the caller's thread, once per run, after admission let the command through.
    Result<process_type> launch(const LaunchSpec&) { return fail(errc::spawn_failed, "archetype"); }
};
static_assert(Transport<TransportArchetype>);

}  // namespace shannot
