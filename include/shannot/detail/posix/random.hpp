// SPDX-License-Identifier: MIT
// Random markers: frame nonces and the names of remote folders.
#pragma once

#include <sys/random.h>

#include <string>

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

}  // namespace shannot::detail
