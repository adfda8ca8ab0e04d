// SPDX-License-Identifier: MIT
// Random markers: frame nonces and the names of remote folders.
#pragma once

#include <shannot/platform.hpp>

#if SHANNOT_PLATFORM_LINUX
#include <sys/random.h>
#else
#include <fcntl.h>
#include <unistd.h>
#if defined(__APPLE__)
#include <sys/random.h>  // getentropy
#endif

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#endif

#include <cstddef>
#include <string>

namespace shannot::detail {

#if SHANNOT_PLATFORM_LINUX

/// Fills `out` with `size` bytes from the kernel's generator (getrandom never fails once the
/// pool is initialised; EINTR is retried).
inline void random_bytes(unsigned char* out, std::size_t size) noexcept {
    std::size_t got = 0;
    while (got < size) {
        const auto n = ::getrandom(out + got, size - got, 0);
        if (n > 0) got += static_cast<std::size_t>(n);
    }
}

#else

/// Fills `out` with `size` bytes from getentropy(3) (macOS 10.12, FreeBSD 12, OpenBSD, glibc
/// 2.25: 256 bytes a call), else from /dev/urandom. With neither there is no unguessable frame
/// marker, and without one a command could forge the end of its output: that is no state to go
/// on in, so it aborts with a message (no system this builds on lacks both).
inline void random_bytes(unsigned char* out, std::size_t size) noexcept {
    std::size_t got = 0;
    while (got < size) {
        const std::size_t chunk = size - got < 256 ? size - got : 256;
        if (::getentropy(out + got, chunk) != 0) break;
        got += chunk;
    }
    if (got == size) return;
    const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    while (fd >= 0 && got < size) {
        const ssize_t n = ::read(fd, out + got, size - got);
        if (n > 0)
            got += static_cast<std::size_t>(n);
        else if (n == 0 || errno != EINTR)
            break;
    }
    if (fd >= 0) ::close(fd);
    if (got == size) return;
    std::fputs("shannot: no source of random bytes (getentropy and /dev/urandom both failed)\n", stderr);
    std::abort();
}

#endif

/// 128 random bits as hex, prefixed: frame markers and the remote folder's name.
[[nodiscard]] inline std::string random_marker() {
    unsigned char bytes[16] = {};
    random_bytes(bytes, sizeof bytes);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "shannot-";
    for (auto b : bytes) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

}  // namespace shannot::detail
