// SPDX-License-Identifier: MIT
// Shared by the fuzz targets: an invariant check that reports and aborts (libFuzzer saves the input).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, ...)                                                                   \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            std::fprintf(stderr, "invariant broken at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            std::fprintf(stderr, "  " __VA_ARGS__);                                             \
            std::fprintf(stderr, "\n");                                                         \
            std::abort();                                                                       \
        }                                                                                       \
    } while (0)

namespace fuzz {
/// A transport trait with nothing checked on this host (like ssh): validation stays pure, so
/// fuzzed paths never reach the filesystem.
struct RemoteLikeTransport {
    static constexpr bool checks_local_paths = false;
};
}  // namespace fuzz
