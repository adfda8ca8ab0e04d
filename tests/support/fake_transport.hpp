// SPDX-License-Identifier: MIT
// Fake transports for pure tests: only the static traits the profile and the builder read.
#pragma once

namespace shannot_test {

/// Like a remote transport: bind sources live elsewhere, nothing is checked on this host;
/// declares the seccomp, syscall filter and status descriptors as the real transports do.
struct RemoteLikeTransport {
    static constexpr bool checks_local_paths = false;
    static constexpr int seccomp_fd = 3;
    static constexpr int syscall_filter_fd = 6;
    static constexpr int json_status_fd = 4;
};

/// A transport that cannot pass a seccomp filter (nor the built-in one) and does not read bwrap's status.
struct BareTransport {
    static constexpr bool checks_local_paths = false;
};

}  // namespace shannot_test
