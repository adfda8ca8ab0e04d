// SPDX-License-Identifier: MIT
// SandboxManager: the host class. Admission, argv building and the run loop over a transport.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/allowlist.hpp>
#include <shannot/builder.hpp>
#include <shannot/concepts/admission.hpp>
#include <shannot/concepts/output.hpp>
#include <shannot/concepts/transport.hpp>
#include <shannot/detail/prepare.hpp>
#include <shannot/detail/run.hpp>
#include <shannot/error.hpp>
#include <shannot/limits.hpp>
#include <shannot/output.hpp>
#include <shannot/process_result.hpp>
#include <shannot/profile.hpp>
#include <shannot/session.hpp>

namespace shannot {

/// Runs commands in the sandbox a profile describes, through a transport chosen at compile time.
///  - Transport (see concepts/transport.hpp): PosixSpawnTransport here, OpenSshProcessTransport remote.
///  - Admission (see concepts/admission.hpp): decides which commands run; GlobAllowlist by default.
///  - Output (see concepts/output.hpp): keeps what commands print; HeadTailCapture bounds memory per stream.
/// Every run path goes through admission first: nothing is spawned for a refused command.
/// Thread-safe: any number of threads may run commands on one manager at once.
template <class T, class Admission = GlobAllowlist, class Output = HeadTailCapture>
class SandboxManager {
    static_assert(
        requires { typename T::process_type; },
        "SandboxManager<T>: T must declare `using process_type = ...;`, the handle of a running process "
        "(see shannot/concepts/transport.hpp, TransportArchetype)");
    static_assert(
        requires(T & t, const LaunchSpec& spec) { t.launch(spec); },
        "SandboxManager<T>: T must have `Result<process_type> launch(const LaunchSpec&)`");
    static_assert(
        requires {
            T::name;
            T::checks_local_paths;
        },
        "SandboxManager<T>: T must declare `static constexpr std::string_view name` and "
        "`static constexpr bool checks_local_paths`");
    static_assert(ProcessHandle<typename T::process_type>,
                  "SandboxManager<T>: T::process_type must provide stdin_fd(), stdout_fd(), stderr_fd(), exit_fd(), "
                  "close_stdin(), terminate(), kill(), wait() -> ExitInfo and argv() (see ProcessHandle)");
    static_assert(Transport<T>, "SandboxManager<T>: T does not model shannot::Transport (see concepts/transport.hpp)");
    static_assert(AdmissionPolicy<Admission>,
                  "SandboxManager<T, Admission>: Admission must have "
                  "`Result<std::vector<std::string>> admit(AdmissionRequest) const` (see concepts/admission.hpp)");
    static_assert(OutputPolicy<Output>,
                  "SandboxManager<T, A, Output>: Output must be constructible from the cap (std::size_t) and have "
                  "append(std::string_view), take() -> std::string and dropped() -> std::uint64_t "
                  "(see concepts/output.hpp)");

public:
    using transport_type = T;
    using profile_type = SandboxProfile<T>;

    /// The profile is validated later, on every run, so a bad one gives an error instead of a throw.
    explicit SandboxManager(profile_type profile, T transport = T{}, Admission admission = Admission{})
        : profile_(std::move(profile)), transport_(std::move(transport)), admission_(std::move(admission)) {}

    [[nodiscard]] const profile_type& profile() const noexcept { return profile_; }
    [[nodiscard]] T& transport() noexcept { return transport_; }

    /// Runs `command` and returns how it ended with what it printed (capped per stream).
    [[nodiscard]] Result<ProcessResult> run(std::vector<std::string> command, RunOptions options = {}) {
        return execute(std::move(command), options, [](const OutputChunk&) {});
    }

    /// As run(), delivering output chunks to `on_chunk(const OutputChunk&)` on this thread as they
    /// arrive; the result still holds the capped output.
    template <class F>
    [[nodiscard]] Result<ProcessResult> stream(std::vector<std::string> command, RunOptions options, F&& on_chunk) {
        return execute(std::move(command), options, std::forward<F>(on_chunk));
    }

    /// As run(), on another thread. The manager must outlive the future.
    [[nodiscard]] std::future<Result<ProcessResult>> run_async(std::vector<std::string> command,
                                                               RunOptions options = {}) {
        return std::async(std::launch::async,
                          [this, command = std::move(command), options = std::move(options)]() mutable {
                              return run(std::move(command), std::move(options));
                          });
    }

    /// Starts one sandbox that stays up and runs many commands (see SandboxSession for what they
    /// share and what they don't). The session has its own copy of the profile, transport and
    /// admission; remotely it holds one ssh session of the transport's pool until closed.
    [[nodiscard]] Result<SandboxSession<T, Admission, Output>> open_session(SessionOptions options = {}) requires
        SessionTransport<T> {
        return SandboxSession<T, Admission, Output>::open(profile_, transport_, admission_, std::move(options));
    }

    /// The limits a run with `options` would have (the profile's, with options.limits applied)
    /// and how they would be enforced where bwrap runs (shannot::limits_mechanism; "unknown"
    /// for a remote host not reached yet). Runs nothing.
    [[nodiscard]] Result<LimitsInForce> limits_in_force(const RunOptions& options = {}) const {
        if (auto ok = check_limits(profile_.limits, "limits", errc::invalid_profile); !ok) return propagate(ok);
        auto limits = detail::run_limits(profile_, options.limits);
        if (!limits) return propagate(limits);
        LimitsInForce in_force{*limits, std::string(limits_mechanism::unknown)};
        if constexpr (requires(const T& t) {
                          { t.limits_mechanism() } -> std::convertible_to<std::string_view>;
                      })
            in_force.mechanism = std::string(transport_.limits_mechanism());
        return in_force;
    }

    /// Admission and argv building without running anything: the bwrap arguments a run would use.
    [[nodiscard]] Result<std::vector<std::string>> dry_run(std::vector<std::string> command,
                                                           const RunOptions& options = {}) {
        auto prepared = detail::prepare_launch(profile_, transport_, admission_, std::move(command), options);
        if (!prepared) return propagate(prepared);
        return std::move(prepared->spec.bwrap_args);
    }

private:
    template <class F>
    Result<ProcessResult> execute(std::vector<std::string> command, const RunOptions& options, F&& on_chunk) {
        auto prepared = detail::prepare_launch(profile_, transport_, admission_, std::move(command), options);
        if (!prepared) return propagate(prepared);
        auto process = transport_.launch(prepared->spec);
        if (!process) return propagate(process);
        return detail::run_prepared<Output>(
            T::name, *process, std::move(prepared->command), std::move(prepared->warnings), options, on_chunk,
            [&] { return detail::limits_outcome(*process, prepared->limits, limits_mechanism::unknown); });
    }

    profile_type profile_;
    T transport_;
    Admission admission_;
};

/// The sandboxes users meet first.
using LocalSandbox = SandboxManager<PosixSpawnTransport>;
using SshSandbox = SandboxManager<OpenSshProcessTransport>;

}  // namespace shannot
