// SPDX-License-Identifier: MIT
// Test support: one way to get a working sandbox for each transport, so behaviour tests run
// once per transport (TEST_CASE_TEMPLATE) against real bwrap and a real sshd.
#pragma once

#include <shannot/shannot.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <type_traits>
#include <utility>
#include <vector>

#include "sandbox_env.hpp"
#include "sshd_fixture.hpp"

namespace shannot_test {

template <class T>
struct TransportFixture;

#if SHANNOT_PLATFORM_LINUX
template <>
struct TransportFixture<shannot::PosixSpawnTransport> {
    static const char* unavailable() { return bwrap_usable() ? nullptr : "bwrap is not usable on this machine"; }
    static shannot::PosixSpawnTransport transport() { return shannot::PosixSpawnTransport(); }
};
#endif

template <>
struct TransportFixture<shannot::OpenSshProcessTransport> {
    static const char* unavailable() {
        if (!bwrap_usable()) return "bwrap is not usable on this machine";
        return shared_sshd() ? nullptr : "sshd could not be started";
    }
    /// One transport (one pool of connections) shared by the tests, as an application would.
    static shannot::OpenSshProcessTransport transport() {
        static shannot::OpenSshProcessTransport shared(shared_sshd()->connection());
        return shared;
    }
};

template <class T>
shannot::SandboxManager<T> make_sandbox(shannot::SandboxProfile<T> profile = test_profile<T>()) {
    return shannot::SandboxManager<T>(std::move(profile), TransportFixture<T>::transport());
}

/// How a behaviour test runs its commands: a fresh sandbox per command (SandboxManager::run)
/// or one warm session for all of them (open_session), over either transport, and locally
/// also in a spare sandbox (PosixSpawnOptions::spare_sandbox). The behaviour tests run in every
/// mode: a session, and a spare, must keep every promise a fresh run makes.
template <class T, bool Session, bool Spare = false>
struct Mode {
    using transport = T;
    static constexpr bool session = Session;
    static constexpr bool spare = Spare;
    static constexpr bool local = std::is_same_v<T, shannot::PosixSpawnTransport>;
};
#if SHANNOT_PLATFORM_LINUX
using LocalRun = Mode<shannot::PosixSpawnTransport, false>;
using LocalSession = Mode<shannot::PosixSpawnTransport, true>;
using LocalSpare = Mode<shannot::PosixSpawnTransport, false, true>;

/// A LocalSandbox keeping a spare sandbox, whose every run() and stream() is served by a spare:
/// two runs of `true` (or, where the profile does not allow it, of the command itself) with the
/// same shape (environment, working directory, limits, stdin) go first, so that a spare of that
/// shape is built for the run that follows, which takes it. A run that started a sandbox without
/// a spare, while no other run of this runner overlapped it, fails the test.
class SpareRunner : public shannot::LocalSandbox {
public:
    explicit SpareRunner(shannot::SandboxProfile<shannot::PosixSpawnTransport> profile)
        : shannot::LocalSandbox(std::move(profile), shannot::PosixSpawnTransport({.spare_sandbox = true})) {}

    shannot::Result<shannot::ProcessResult> run(std::vector<std::string> command, shannot::RunOptions options = {}) {
        const auto start = prime(command, options);
        auto r = shannot::LocalSandbox::run(std::move(command), std::move(options));
        check_served(r, start);
        return r;
    }
    template <class F>
    shannot::Result<shannot::ProcessResult> stream(std::vector<std::string> command, shannot::RunOptions options,
                                                   F&& f) {
        const auto start = prime(command, options);
        auto r = shannot::LocalSandbox::stream(std::move(command), std::move(options), std::forward<F>(f));
        check_served(r, start);
        return r;
    }

private:
    struct Start {
        std::uint64_t used, generation;
        bool alone;  ///< no other run of this runner was under way when this one began
    };

    Start prime(const std::vector<std::string>& command, const shannot::RunOptions& options) {
        const auto generation = ++generation_;
        const bool alone = ++active_ == 1;
        shannot::RunOptions same;
        same.environment = options.environment;
        same.working_directory = options.working_directory;
        same.limits = options.limits;
        if (options.input) same.input = std::string();
        const auto& allowed = profile().allowed_commands;
        const bool has_true = std::find(allowed.begin(), allowed.end(), "true") != allowed.end();
        // Twice: a shape gets its spare once two runs in a row had it (SpareSandbox).
        for (int i = 0; i < 2; ++i)
            (void)shannot::LocalSandbox::run(has_true ? std::vector<std::string>{"true"} : command, same);
        return {transport().spare_sandboxes_used(), generation, alone};
    }
    void check_served(const shannot::Result<shannot::ProcessResult>& r, Start start) {
        // Alone from start to end: no run began before it ended or was under way when it began.
        const bool alone = active_-- == 1 && start.alone && generation_ == start.generation;
        // A run refused before it started (admission, a bad option) starts no sandbox at all.
        if (alone && (r || r.error().code == shannot::errc::cancelled))
            CHECK_MESSAGE(transport().spare_sandboxes_used() == start.used + 1,
                          "the run did not take the spare sandbox");
    }

    std::atomic<int> active_{0};
    std::atomic<std::uint64_t> generation_{0};
};
#endif
using SshRun = Mode<shannot::OpenSshProcessTransport, false>;
using SshSession = Mode<shannot::OpenSshProcessTransport, true>;

/// A session behind the SandboxManager calls the tests use. A session that failed to open
/// answers every call with that error (so "a failing mount is a setup error" reads the same).
template <class T>
class SessionRunner {
public:
    explicit SessionRunner(shannot::SandboxProfile<T> profile)
        : session_(shannot::SandboxManager<T>(std::move(profile), TransportFixture<T>::transport()).open_session()) {}

    shannot::Result<shannot::ProcessResult> run(std::vector<std::string> command, shannot::RunOptions options = {}) {
        if (!session_) return tl::make_unexpected(session_.error());
        return session_->run(std::move(command), std::move(options));
    }
    template <class F>
    shannot::Result<shannot::ProcessResult> stream(std::vector<std::string> command, shannot::RunOptions options,
                                                   F&& f) {
        if (!session_) return tl::make_unexpected(session_.error());
        return session_->stream(std::move(command), std::move(options), std::forward<F>(f));
    }
    std::future<shannot::Result<shannot::ProcessResult>> run_async(std::vector<std::string> command,
                                                                   shannot::RunOptions options = {}) {
        return std::async(std::launch::async,
                          [this, command = std::move(command), options = std::move(options)]() mutable {
                              return run(std::move(command), std::move(options));
                          });
    }
    shannot::Result<shannot::SandboxSession<T>>& session() { return session_; }

private:
    shannot::Result<shannot::SandboxSession<T>> session_;
};

/// The runner of mode M: a SandboxManager, or a SessionRunner.
template <class M>
auto make_runner(shannot::SandboxProfile<typename M::transport> profile = test_profile<typename M::transport>()) {
    if constexpr (M::session) return SessionRunner<typename M::transport>(std::move(profile));
#if SHANNOT_PLATFORM_LINUX
    else if constexpr (M::spare)
        return SpareRunner(std::move(profile));
#endif
    else
        return make_sandbox<typename M::transport>(std::move(profile));
}

}  // namespace shannot_test

/// Skips when the transport cannot run here, except under CI=true, where that is a failure.
#define SHANNOT_REQUIRE_TRANSPORT(T)                                              \
    do {                                                                          \
        if (const char* why = shannot_test::TransportFixture<T>::unavailable()) { \
            if (shannot_test::in_ci()) FAIL(std::string(why) << " (CI=true)");    \
            MESSAGE("skipped: " << std::string(why));                             \
            return;                                                               \
        }                                                                         \
    } while (0)

#if SHANNOT_PLATFORM_LINUX
#define SHANNOT_TRANSPORTS shannot::PosixSpawnTransport, shannot::OpenSshProcessTransport
#define SHANNOT_MODES                                                                                   \
    shannot_test::LocalRun, shannot_test::LocalSession, shannot_test::LocalSpare, shannot_test::SshRun, \
        shannot_test::SshSession
#else
// The portable build (SHANNOT_PORTABLE_POSIX=1, tests/portable/): the ssh half only; the local
// transport does not exist there (see transport/posix_spawn.hpp).
#define SHANNOT_TRANSPORTS shannot::OpenSshProcessTransport
#define SHANNOT_MODES shannot_test::SshRun, shannot_test::SshSession
#endif
