// SPDX-License-Identifier: MIT
// The command runner contract: what the agent operations (operations.hpp) run their commands on.
#pragma once

#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include <shannot/concepts/transport.hpp>
#include <shannot/error.hpp>
#include <shannot/process_result.hpp>
#include <shannot/profile.hpp>

namespace shannot {

/// What the operations run commands on: a SandboxManager (a fresh sandbox per operation) or a
/// SandboxSession (one warm sandbox; a file an operation writes to its tmpfs stays for the next).
template <class S>
concept CommandRunner = requires(S& s, std::vector<std::string> command, RunOptions options) {
    { s.run(std::move(command), std::move(options)) } -> std::same_as<Result<ProcessResult>>;
    s.profile().allowed_commands;
};

/// The archetype: the smallest type that models CommandRunner, with each member's contract.
struct CommandRunnerArchetype {
    /// Runs one command to its end, as SandboxManager::run(): admission, the sandbox, the result.
    Result<ProcessResult> run(std::vector<std::string> /*command*/, RunOptions /*options*/) {
        return fail(errc::spawn_failed, "archetype");
    }
    /// The profile the commands run under: write_file and remove_file read its mounts
    /// (writable_mount) to refuse a path no writable mount covers before anything runs.
    const SandboxProfile<TransportArchetype>& profile() const { return profile_; }
    SandboxProfile<TransportArchetype> profile_;
};
static_assert(CommandRunner<CommandRunnerArchetype>);

}  // namespace shannot
