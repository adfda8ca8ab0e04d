// SPDX-License-Identifier: MIT
// Must not compile: the output policy has no take().
#include "parts.hpp"

struct NoTake {
    explicit NoTake(std::size_t) {}
    void append(std::string_view) {}
    std::uint64_t dropped() const { return 0; }
};

CF_INSTANTIATE(cf::GoodTransport, shannot::GlobAllowlist, NoTake);
