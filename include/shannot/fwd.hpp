// SPDX-License-Identifier: MIT
// Forward declarations of shannot's public types, for headers that only name them.
#pragma once

namespace shannot {

enum class errc;
struct Error;
struct ProcessResult;
struct SandboxBind;
struct RunOptions;
struct LaunchSpec;
struct ExitInfo;

template <class Deferred = void>
class BasicPosixSpawnTransport;
/// The local transport (transport/posix_spawn.hpp).
using PosixSpawnTransport = BasicPosixSpawnTransport<>;

template <class Deferred = void>
class BasicOpenSshProcessTransport;
/// The remote transport (transport/openssh_process.hpp).
using OpenSshProcessTransport = BasicOpenSshProcessTransport<>;

template <class Transport>
struct SandboxProfile;

template <class Transport>
class BubblewrapCommandBuilder;

struct GlobAllowlist;
class HeadTailCapture;
class CancelToken;
struct SshConnection;

template <class Transport, class Admission, class Output>
class SandboxManager;

template <class Transport, class Admission, class Output>
class SandboxSession;

}  // namespace shannot
