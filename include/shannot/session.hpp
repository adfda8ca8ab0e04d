// SPDX-License-Identifier: MIT
// SandboxSession: one warm sandbox (and, remotely, one ssh session) that runs many commands.
#pragma once

#include <poll.h>
#include <signal.h>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/allowlist.hpp>
#include <shannot/concepts/session_transport.hpp>
#include <shannot/concepts/transport.hpp>
#include <shannot/detail/first_frames.hpp>
#include <shannot/detail/frame_filter.hpp>
#include <shannot/detail/paths.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/process.hpp>
#include <shannot/detail/posix/random.hpp>
#include <shannot/detail/posix/timer.hpp>
#include <shannot/detail/prepare.hpp>
#include <shannot/detail/run.hpp>
#include <shannot/detail/scripts/protocol.hpp>
#include <shannot/detail/session/agent.hpp>
#include <shannot/detail/session/session_command.hpp>
#include <shannot/error.hpp>
#include <shannot/limits.hpp>
#include <shannot/output.hpp>
#include <shannot/process_result.hpp>
#include <shannot/profile.hpp>

namespace shannot {

/// How a session's sandbox starts.
struct SessionOptions {
    /// The directory every command starts in unless its RunOptions name another (absolute,
    /// inside the sandbox). Default: where a fresh run would start.
    std::optional<std::string> working_directory{};
    /// How long the sandbox may take to start and report ready.
    std::chrono::milliseconds start_timeout = std::chrono::seconds(30);
    /// A POSIX shell where bwrap runs (this host, or the remote host). It is copied into the
    /// sandbox, execute-only, to run the session agent, so the profile need not mount it.
    std::string shell = "/bin/sh";
    /// Replaces the profile's limits for the whole session. They hold for the sandbox (every
    /// tmpfs, the process count) and for each command (memory, CPU time, file size and
    /// descriptors are per process: each command gets them anew). The agent's two processes
    /// count towards `processes`.
    LimitOverrides limits{};
};

/// One sandbox that stays up and runs commands one after another: what an agent does, dozens
/// of short commands in a row, without paying a sandbox start (or, remotely, an ssh session)
/// for each. Open one with SandboxManager::open_session().
///
/// Semantics:
///  - The commands of a session share the sandbox's mounts, so what one writes to a tmpfs or a
///    writable bind the next one sees, and the session's working directory. Nothing else: each
///    command passes admission, gets the profile's environment plus its own RunOptions
///    variables (never a previous command's), its own input, deadline, output cap and exit
///    status, and starts with default signal dispositions.
///  - When a command ends, everything it started is killed and reaped before run() returns: no
///    process survives from one command to the next.
///  - A timeout or cancel stops that command and its children; the session stays usable. A
///    session whose sandbox or connection died says so (errc::session_lost) on the next call;
///    reopen() starts a fresh sandbox.
///  - Sessions are independent of each other and of fresh runs.
///  - Output framing uses a random nonce per command that no command can read, so a command
///    cannot forge the end of its output or its status; output bytes arrive exactly.
///  - Commands run one at a time: run() from several threads queues. A command can break its
///    own session (kill the agent's reader while it runs, fill its tmpfs); the next call then
///    reports it.
///  - Limits are the session's (SessionOptions::limits over the profile's). A command's
///    RunOptions::limits may lower its own cpu_seconds, memory_bytes, file_size_bytes and
///    open_files (it then runs in a subshell that sets them: one fork of the agent); raising
///    one, or changing processes or tmpfs_bytes, is an error naming it.
/// Needs `sh` where bwrap runs, and `head` and `cat` in the sandbox to pass input.
template <class T, class Admission = GlobAllowlist, class Output = HeadTailCapture>
class SandboxSession {
    static_assert(SessionTransport<T>,
                  "SandboxSession<T>: T must model shannot::SessionTransport "
                  "(channel_type and open_channel(const LaunchSpec&); see concepts/session_transport.hpp)");

public:
    using transport_type = T;
    using profile_type = SandboxProfile<T>;

    /// Starts the sandbox and waits until its agent is ready.
    [[nodiscard]] static Result<SandboxSession> open(profile_type profile, T transport,
                                                     Admission admission = Admission{}, SessionOptions options = {}) {
        SandboxSession session(std::move(profile), std::move(transport), std::move(admission), std::move(options));
        std::lock_guard lock(session.state_->mutex);
        if (auto started = session.start_locked(); !started) return propagate(started);
        return session;
    }

    SandboxSession(SandboxSession&&) noexcept = default;
    SandboxSession& operator=(SandboxSession&& other) noexcept {
        if (this != &other) {
            close();
            state_ = std::move(other.state_);
        }
        return *this;
    }
    ~SandboxSession() { close(); }

    [[nodiscard]] const profile_type& profile() const noexcept { return state_->profile; }

    /// Runs `command` in the session's sandbox; as SandboxManager::run().
    [[nodiscard]] Result<ProcessResult> run(std::vector<std::string> command, RunOptions options = {}) {
        return execute(std::move(command), options, [](const OutputChunk&) {});
    }

    /// As run(), delivering output chunks to `on_chunk(const OutputChunk&)` as they arrive.
    template <class F>
    [[nodiscard]] Result<ProcessResult> stream(std::vector<std::string> command, RunOptions options, F&& on_chunk) {
        return execute(std::move(command), options, std::forward<F>(on_chunk));
    }

    /// Whether the sandbox is up (not closed, not found dead).
    [[nodiscard]] bool alive() const {
        if (!state_) return false;
        std::lock_guard lock(state_->mutex);
        return state_->channel && !state_->lost && !detail::has_exited(state_->channel->exit_fd());
    }

    /// Ends the sandbox (if any) and starts a fresh one: tmpfs contents are lost.
    [[nodiscard]] Result<void> reopen() {
        if (!state_) return fail(errc::session_closed, "the session was moved from");
        std::lock_guard lock(state_->mutex);
        stop_locked();
        state_->closed = false;
        return start_locked();
    }

    /// Ends the sandbox and everything in it; later calls fail with errc::session_closed.
    /// Waits for a running command (cancel it first to end it sooner).
    void close() {
        if (!state_) return;
        std::lock_guard lock(state_->mutex);
        stop_locked();
        state_->closed = true;
    }

    /// How the sandbox was started here: bwrap (or ssh) and all its arguments.
    [[nodiscard]] std::vector<std::string> argv() const {
        if (!state_) return {};
        std::lock_guard lock(state_->mutex);
        return state_->argv;
    }

private:
    struct State {
        profile_type profile;
        T transport;
        Admission admission;
        SessionOptions options;
        std::mutex mutex{};
        std::optional<typename T::channel_type> channel{};
        detail::OneShotTimer timer{};
        std::vector<std::string> argv{};
        std::vector<std::string> warnings{};  ///< binds of the sandbox skipped for a missing source
        ResourceLimits limits{};
        std::string limits_mechanism{};
        bool input_ok = false;
        bool lost = false;  ///< the sandbox died or broke; the next call reports it
        std::string lost_why{};
        bool closed = false;
    };

    SandboxSession(profile_type profile, T transport, Admission admission, SessionOptions options)
        : state_(new State{std::move(profile), std::move(transport), std::move(admission), std::move(options)}) {}

    void stop_locked() {
        auto& s = *state_;
        if (s.channel) {
            s.channel->close_stdin();  // the agent reads EOF, kills what runs and exits
            pollfd p{s.channel->exit_fd(), POLLIN, 0};
            if (::poll(&p, 1, 200) <= 0) s.channel->kill();
            s.channel->wait();
            s.channel.reset();
        }
        s.lost = false;
        s.lost_why.clear();
    }

    void mark_lost_locked(std::string why) {
        auto& s = *state_;
        s.lost = true;
        s.lost_why = std::move(why);
        if (s.channel) {
            s.channel->kill();
            s.channel->wait();
            s.channel.reset();
        }
    }

    Result<void> start_locked() {
        auto& s = *state_;
        if (auto ok = s.profile.validate(); !ok) return propagate(ok);
        if (s.options.shell.empty() || detail::has_nul(s.options.shell))
            return fail(errc::invalid_argument, "SessionOptions::shell must name a shell");
        if (s.options.working_directory) {
            auto ok =
                detail::check_working_directory("SessionOptions::working_directory", *s.options.working_directory);
            if (!ok) return propagate(ok);
        }
        if (!s.timer) {
            auto timer = detail::OneShotTimer::create();
            if (!timer) return propagate(timer);
            s.timer = std::move(*timer);
        }
        auto limits = detail::run_limits(s.profile, s.options.limits);
        if (!limits) return propagate(limits);
        const auto hello = detail::random_marker();
        detail::LaunchPlan plan;
        plan.command = {std::string(detail::session_agent_shell), "-c", std::string(detail::session_agent_script),
                        "shannot", hello};
        plan.working_directory = s.options.working_directory;
        plan.extra_args = detail::session_mount_args(limits->tmpfs_bytes);
        plan.files = {{detail::session_shell_fd, s.options.shell}};
        plan.pipe_stdin = true;
        // The timeout bounds how long the transport may wait to open the channel (a free ssh
        // session); the sandbox itself has no deadline.
        plan.timeout = s.options.start_timeout;
        auto sources = detail::check_bind_sources(s.profile);
        plan.missing_sources = std::move(sources.missing);
        plan.limits = *limits;
        auto spec = detail::launch_spec(s.profile, s.transport, std::move(plan));
        if (!spec) return propagate(spec);
        auto channel = s.transport.open_channel(*spec);
        if (!channel) return propagate(channel);
        s.argv = channel->argv();
        s.limits = *limits;
        s.limits_mechanism = detail::limits_outcome(*channel, *limits, limits_mechanism::unknown).mechanism;

        // Wait for "ready" on both streams; whatever else arrives is diagnostics.
        detail::FrameFilter out_frames(hello), err_frames(hello);
        std::string diagnostics;
        const auto started =
            detail::await_first_frames(channel->stdout_fd(), channel->stderr_fd(), channel->exit_fd(), out_frames,
                                       err_frames, detail::Clock::now() + s.options.start_timeout, diagnostics);
        const bool ended = started == detail::FirstFrames::ended;
        if (started == detail::FirstFrames::ready) {
            s.input_ok = out_frames.payloads().front() == detail::protocol::agent::ready_input;
            s.warnings = std::move(sources.warnings);
            s.channel.emplace(std::move(*channel));
            s.lost = false;
            return {};
        }
        // Not ready: end it and say why, with what bwrap (or ssh) printed.
        detail::drain_into(channel->stderr_fd(), diagnostics,
                           std::chrono::milliseconds(0));  // what is left in the pipe
        if (!ended) channel->kill();
        const auto exit = channel->wait();
        std::string message;
        errc code = errc::sandbox_setup_failed;
        if (!ended) {
            code = errc::sandbox_setup_failed;
            message = "the session's sandbox did not report ready within " +
                      std::to_string(s.options.start_timeout.count()) + " ms";
        } else if (exit.kind == ExitInfo::Kind::setup_failed || exit.kind == ExitInfo::Kind::transport_failed) {
            code = exit.error == errc::ok ? errc::sandbox_setup_failed : exit.error;
            message = exit.detail.empty() ? "the session's sandbox failed to start" : exit.detail;
        } else {
            message = "the session's sandbox ended before it was ready (the shell '" + s.options.shell +
                      "' cannot run the agent in the sandbox?)";
        }
        if (auto tail = detail::stderr_tail(diagnostics); !tail.empty()) message += ": " + tail;
        return fail(code, std::move(message));
    }

    template <class F>
    Result<ProcessResult> execute(std::vector<std::string> command, const RunOptions& options, F&& on_chunk) {
        if (!state_) return fail(errc::session_closed, "the session was moved from");
        auto& s = *state_;
        std::lock_guard lock(s.mutex);
        if (s.closed) return fail(errc::session_closed, "the session was closed");
        if (s.lost || !s.channel || detail::has_exited(s.channel->exit_fd())) {
            std::string why = s.lost ? s.lost_why : std::string("its sandbox has exited");
            if (!s.lost) mark_lost_locked(why);
            return fail(errc::session_lost, "the session is lost (" + why + "): reopen() it");
        }
        auto limits = command_limits(options.limits);
        if (!limits) return propagate(limits);
        auto admitted = detail::admit_command(s.profile, s.transport, s.admission, std::move(command), options);
        if (!admitted) return propagate(admitted);
        const std::string_view input = options.input ? std::string_view(*options.input) : std::string_view{};
        if (!input.empty() && !s.input_ok)
            return fail(errc::invalid_argument,
                        "this session cannot pass input to commands: its sandbox has no `head` "
                        "or no `cat` on the agent's PATH (mount them, or use a fresh run)");

        const auto nonce = detail::random_marker();
        const std::string cwd = options.working_directory.value_or(std::string());
        const auto request = detail::session_request(nonce, cwd, input.size(), options.environment, *admitted,
                                                     detail::command_ulimits(s.limits, *limits));
        const auto hits_before = processes_limit_events(*s.channel);
        const int in = s.channel->stdin_fd();
        const auto send_deadline =
            detail::Clock::now() + options.timeout.value_or(std::chrono::hours(1)) + std::chrono::seconds(5);
        if (!detail::write_all(in, request, send_deadline) || !detail::write_all(in, input, send_deadline)) {
            mark_lost_locked("cannot send the command to the session agent");
            return fail(errc::session_lost, "the session is lost (cannot send the command to its agent): reopen() it");
        }

        // The input went ahead of the command: the handle has no stdin, so the loop writes none.
        detail::SessionCommand process(in, s.channel->stdout_fd(), s.channel->stderr_fd(), s.timer.ref(), nonce, cwd,
                                       s.argv);
        auto result = detail::run_prepared<
            Output>(T::name, process, std::move(*admitted), s.warnings, options, on_chunk, [&] {
            // The session's pids cgroup counts refused forks for the whole session: this command's are the new ones.
            return detail::LimitsOutcome{*limits, s.limits_mechanism, processes_limit_events(*s.channel) > hits_before};
        });
        if (!process.lost_reason().empty()) mark_lost_locked(process.lost_reason());
        return result;
    }

    /// One command's limits: the session's, lowered where `overrides` asks (see the class comment).
    Result<ResourceLimits> command_limits(const LimitOverrides& overrides) const {
        const auto& s = *state_;
        if (auto ok = check_limits(overrides, "limits", errc::invalid_argument); !ok) return propagate(ok);
        for (const auto& spec : limit_specs) {
            const auto& value = overrides.*spec.override_value;
            const auto session = s.limits.*spec.value;
            if (!value || *value == session) continue;
            const std::string field = "limits." + std::string(spec.name);
            if (spec.name == "processes" || spec.name == "tmpfs_bytes")
                return fail(errc::invalid_argument,
                            field + ": a session's " + std::string(spec.name) + " (" + std::to_string(session) +
                                ") holds for its whole sandbox; set it in SessionOptions::limits");
            if (*value > session)
                return fail(errc::invalid_argument,
                            field + ": " + std::to_string(*value) + " is more than the session's " +
                                std::to_string(session) +
                                "; a command can only lower its limits (raise them in SessionOptions::limits)");
        }
        return apply_overrides(s.limits, overrides);
    }

    /// How many forks the session's pids cgroup has refused so far (0 without one).
    template <class C>
    static std::uint64_t processes_limit_events(const C& channel) {
        if constexpr (requires {
                          { channel.processes_limit_events() } -> std::convertible_to<std::uint64_t>;
                      })
            return channel.processes_limit_events();
        else
            return 0;
    }

    std::unique_ptr<State> state_;
};

}  // namespace shannot
