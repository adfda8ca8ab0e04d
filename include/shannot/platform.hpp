// SPDX-License-Identifier: MIT
// Which implementation of the platform seam this build uses: Linux's, or the portable POSIX one.
#pragma once

/// SHANNOT_PLATFORM_LINUX is 1 when the Linux implementation of the platform primitives is used
/// (pidfd, pipe2, getrandom, timerfd, eventfd, posix_spawn_file_actions_addclosefrom_np), 0 when
/// the portable POSIX one is (a reaper thread per child, pipe + fcntl, getentropy, a timer thread,
/// posix_spawn with explicit closes): see docs/portability.md. The portable one is chosen on every
/// system but Linux, and on Linux when SHANNOT_PORTABLE_POSIX is defined to 1 (or to nothing), so
/// that a Linux machine can build and test what a Mac or a BSD builds. Define it the same way in
/// every translation unit of a program (a compiler flag): the two implementations lay out some
/// types differently.
#if defined(SHANNOT_PORTABLE_POSIX) && ((SHANNOT_PORTABLE_POSIX + 0) != 0 || (0 - SHANNOT_PORTABLE_POSIX - 1) == 1)
#define SHANNOT_PLATFORM_LINUX 0
#elif defined(__linux__)
#define SHANNOT_PLATFORM_LINUX 1
#else
#define SHANNOT_PLATFORM_LINUX 0
#endif

namespace shannot {

/// Whether PosixSpawnTransport (LocalSandbox) can be used in this build: bwrap exists only on
/// Linux, and the local transport relies on Linux's pidfds and /proc (see transport/posix_spawn.hpp).
/// OpenSshProcessTransport (SshSandbox), sessions over ssh and the operations work either way.
inline constexpr bool local_sandbox_supported = SHANNOT_PLATFORM_LINUX == 1;

}  // namespace shannot
