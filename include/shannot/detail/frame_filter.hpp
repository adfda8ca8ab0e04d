// SPDX-License-Identifier: MIT
// Strips a transport's own frames ("\n<marker> <payload>\n") out of a byte stream.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace shannot::detail {

/// The remote wrapper writes its messages into the command's stderr as "\n<marker> <payload>\n"
/// with a random per-run marker the command cannot know. This filter removes exactly those
/// bytes and hands back the payloads, across any chunking: bytes that could still be the start
/// of a frame are held back until they are known not to be.
class FrameFilter {
public:
    explicit FrameFilter(std::string marker) : prefix_("\n" + std::move(marker) + " ") {}

    /// Appends the caller's bytes to `out`; complete frames go to payloads().
    void feed(std::string_view in, std::string& out) {
        held_.append(in);
        std::size_t start = 0;
        while (true) {
            const auto at = held_.find(prefix_, start);
            if (at == std::string::npos) break;
            const auto end = held_.find('\n', at + prefix_.size());
            if (end == std::string::npos) {
                // A frame has begun but not ended: keep it (bounded: frames are short).
                if (held_.size() - at > 4096) {
                    out.append(held_, start, held_.size() - start);
                    held_.clear();
                    return;
                }
                out.append(held_, start, at - start);
                held_.erase(0, at);
                return;
            }
            out.append(held_, start, at - start);
            payloads_.push_back(held_.substr(at + prefix_.size(), end - at - prefix_.size()));
            start = end + 1;
        }
        // No frame starts before the last prefix_.size()-1 bytes; those may begin one.
        const std::size_t keep = partial_prefix(std::string_view(held_).substr(start));
        out.append(held_, start, held_.size() - start - keep);
        held_.erase(0, held_.size() - keep);
    }

    /// At end of stream: whatever is held was never a frame.
    void finish(std::string& out) {
        out += held_;
        held_.clear();
    }

    [[nodiscard]] const std::vector<std::string>& payloads() const noexcept { return payloads_; }

private:
    /// Length of the longest suffix of `s` that is a proper prefix of prefix_.
    [[nodiscard]] std::size_t partial_prefix(std::string_view s) const {
        const std::size_t max = std::min(s.size(), prefix_.size() - 1);
        for (std::size_t n = max; n > 0; --n)
            if (s.substr(s.size() - n) == std::string_view(prefix_).substr(0, n)) return n;
        return 0;
    }

    std::string prefix_;
    std::string held_;
    std::vector<std::string> payloads_;
};

}  // namespace shannot::detail
