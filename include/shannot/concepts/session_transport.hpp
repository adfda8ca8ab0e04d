// SPDX-License-Identifier: MIT
// The SessionTransport concept: a transport that can also hold one long-lived sandbox open.
#pragma once

#include <concepts>

#include <shannot/concepts/transport.hpp>
#include <shannot/error.hpp>

namespace shannot {

/// A transport that can also start one long-lived sandbox with its stdin, stdout and stderr
/// connected to us (the channel a session talks to its agent through).
///  - `typename T::channel_type`: a ProcessHandle whose stdin_fd() is the agent's stdin;
///    terminate()/kill() end the whole sandbox; exit_fd() becomes readable when it has ended.
///  - `Result<channel_type> open_channel(const LaunchSpec&)`: starts bwrap with the spec's
///    files at their descriptors (LaunchSpec::pipe_stdin is always true).
template <class T>
concept SessionTransport = Transport<T> && requires(T& t, const LaunchSpec& spec) {
    typename T::channel_type;
    requires ProcessHandle<typename T::channel_type>;
    { t.open_channel(spec) } -> std::same_as<Result<typename T::channel_type>>;
};

}  // namespace shannot
