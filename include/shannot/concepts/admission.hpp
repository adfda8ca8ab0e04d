// SPDX-License-Identifier: MIT
// The admission policy contract: which commands may run, decided before anything is spawned.
#pragma once

#include <concepts>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/error.hpp>

namespace shannot {

/// What an admission policy is asked. `exists` answers "is there an executable at this path
/// inside the sandbox?" where the transport can tell (locally); it is empty over ssh.
struct AdmissionRequest {
    std::string_view profile_name{};
    const std::vector<std::string>& allowed_commands;
    std::vector<std::string> command{};
    std::string_view path_env{};  ///< the PATH the command will see ("/bin:/usr/bin" when unset, as execvp)
    std::function<bool(std::string_view)> exists;
};

/// An admission policy: a value the host class owns and asks about every command, of a fresh
/// run or of a session, before anything is spawned.
template <class A>
concept AdmissionPolicy = requires(const A& a, AdmissionRequest request) {
    { a.admit(std::move(request)) } -> std::same_as<Result<std::vector<std::string>>>;
};

/// The archetype: the smallest type that models AdmissionPolicy, with its member's contract.
struct AdmissionArchetype {
    /// Called on the caller's thread, once per command, possibly from many threads at once
    /// (hence const). The host has already refused an empty command and NUL bytes. Returns the
    /// command to run, as asked or rewritten (GlobAllowlist makes a bare name the absolute path
    /// that admitted it), or errc::command_refused with a message naming the command and profile.
    Result<std::vector<std::string>> admit(AdmissionRequest request) const { return std::move(request.command); }
};
static_assert(AdmissionPolicy<AdmissionArchetype>);

}  // namespace shannot
