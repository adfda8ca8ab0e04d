// SPDX-License-Identifier: MIT
// Random markers (frame nonces, folder names) and a pidfd liveness check.
#pragma once

#include <poll.h>
#include <sys/random.h>

#include <string>

#include <shannot/detail/unique_fd.hpp>

namespace shannot::detail {

/// 128 random bits as hex, prefixed: frame markers and the remote folder's name.
[[nodiscard]] inline std::string random_marker() {
    unsigned char bytes[16] = {};
    std::size_t got = 0;
    while (got < sizeof bytes) {
        const auto n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n > 0) got += static_cast<std::size_t>(n);
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "shannot-";
    for (auto b : bytes) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

/// Whether an exit descriptor (a pidfd, or a process handle's exit_fd()) says its process has
/// exited; no descriptor counts as exited.
[[nodiscard]] inline bool has_exited(int exit_fd) {
    if (exit_fd < 0) return true;
    pollfd p{exit_fd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}
[[nodiscard]] inline bool has_exited(const UniqueFd& pidfd) { return has_exited(pidfd.get()); }

}  // namespace shannot::detail
