// SPDX-License-Identifier: MIT
// Feeding a stream to a FrameFilter in chosen pieces: shared by the hostile-input test and the
// frame filter fuzzer, which both check that the chunking never changes the result.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/shannot.hpp>  // the single-header build has no detail/ headers

namespace shannot_test {

struct Filtered {
    std::string out;
    std::vector<std::string> payloads;
    bool operator==(const Filtered&) const = default;
};

/// Feeds `stream` to a FrameFilter for `marker` in pieces of the given sizes (the rest in one
/// piece), then finishes it.
inline Filtered filter(const std::string& marker, const std::string& stream, const std::vector<std::size_t>& sizes) {
    shannot::detail::FrameFilter f(marker);
    Filtered r;
    std::size_t at = 0;
    for (auto n : sizes) {
        if (at >= stream.size()) break;
        n = std::min(n, stream.size() - at);
        f.feed(std::string_view(stream).substr(at, n), r.out);
        at += n;
    }
    if (at < stream.size()) f.feed(std::string_view(stream).substr(at), r.out);
    f.finish(r.out);
    r.payloads = f.payloads();
    return r;
}

}  // namespace shannot_test
