// SPDX-License-Identifier: MIT
// Fuzz target: FrameFilter gives the same output and payloads for every chunking of a stream.
#include <shannot/detail/frame_filter.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../support/frame_feed.hpp"
#include "fuzz_check.hpp"

namespace {

using shannot_test::filter;

// Long enough to hold frames over FrameFilter::max_payload, which are not frames whatever the chunking.
constexpr std::size_t max_stream = 3 * shannot::detail::FrameFilter::max_payload;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    // Real markers are "shannot-" + 32 hex digits; short ones let the fuzzer write frames.
    std::string marker = "m";
    for (auto n = in.ConsumeIntegralInRange<int>(0, 3); n > 0; --n)
        marker += "0123456789abcdef"[in.ConsumeIntegral<std::uint8_t>() & 15];
    const std::string stream = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(0, max_stream));
    std::vector<std::size_t> cuts;
    while (in.remaining_bytes() > 0) cuts.push_back(in.ConsumeIntegralInRange<std::size_t>(0, 64));

    const auto whole = filter(marker, stream, {stream.size()});
    const auto chunked = filter(marker, stream, cuts);
    const auto bytewise = filter(marker, stream, std::vector<std::size_t>(stream.size(), 1));
    FUZZ_CHECK(chunked.out == whole.out && chunked.payloads == whole.payloads,
               "chunking changed the result (marker %s)", marker.c_str());
    FUZZ_CHECK(bytewise.out == whole.out && bytewise.payloads == whole.payloads,
               "byte-wise feeding changed the result");

    const std::string prefix = "\n" + marker + " ";
    if (stream.find(prefix) == std::string::npos) {
        FUZZ_CHECK(whole.out == stream && whole.payloads.empty(),
                   "bytes without a frame did not pass through unchanged");
    }
    // Only whole frames are removed: output plus frames account for every byte.
    std::size_t removed = 0;
    for (const auto& p : whole.payloads) {
        FUZZ_CHECK(p.find('\n') == std::string::npos, "a payload holds a newline");
        removed += prefix.size() + p.size() + 1;
    }
    FUZZ_CHECK(whole.out.size() + removed == stream.size(), "bytes lost or invented: %zu + %zu != %zu",
               whole.out.size(), removed, stream.size());
    return 0;
}
