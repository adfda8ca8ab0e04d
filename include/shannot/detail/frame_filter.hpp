// SPDX-License-Identifier: MIT
// Strips a transport's own frames ("\n<marker> <payload>\n") out of a byte stream.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace shannot::detail {

/// A remote dispatcher or a session agent writes its messages into a command's stdout and stderr
/// as "\n<marker> <payload>\n", with a random per-command marker the command cannot know. This filter removes exactly those
/// bytes and hands back the payloads, across any chunking: bytes that could still be the start
/// of a frame are held back until they are known not to be.
///
/// A frame's payload is at most max_payload bytes without a newline. A begun frame whose newline
/// has not come within that bound is not a frame: its leading "\n" is output and the search goes
/// on right after it. The decision depends on the bytes only, so the output and the payloads
/// are the same however the stream is split into reads, and at most about max_payload bytes are
/// ever held.
class FrameFilter {
public:
    static constexpr std::size_t max_payload = 4096;

    // Built by appending: g++ 12 -O3 warns (-Wrestrict, a false positive) on "\n" + std::string.
    explicit FrameFilter(std::string marker) : prefix_(1, '\n') { prefix_.append(marker).push_back(' '); }

    /// Appends the caller's bytes to `out`; complete frames go to payloads().
    void feed(std::string_view in, std::string& out) {
        held_.append(in);
        std::size_t start = 0;  // held_[0, start) is dealt with
        std::size_t from = 0;   // where the next frame may begin
        while (true) {
            const auto at = held_.find(prefix_, from);
            if (at == std::string::npos) break;
            const std::size_t body = at + prefix_.size();
            const std::size_t window_end = std::min(held_.size(), body + max_payload + 1);  // the '\n' must be in here
            std::size_t search = body;
            if (at == 0 && searched_ > body) search = std::min(searched_, window_end);  // known newline-free already
            const auto newline = std::string_view(held_).substr(0, window_end).find('\n', search);
            if (newline != std::string_view::npos) {
                out.append(held_, start, at - start);
                payloads_.push_back(held_.substr(body, newline - body));
                start = from = newline + 1;
                continue;
            }
            if (window_end < body + max_payload + 1) {
                // Begun, undecided: keep it (and remember how far it is known to have no newline).
                out.append(held_, start, at - start);
                held_.erase(0, at);
                searched_ = held_.size();
                return;
            }
            from = at + 1;  // too long to be a frame: its "\n" is output, look again after it
        }
        searched_ = 0;
        // No frame starts before the last prefix_.size()-1 bytes; those may begin one.
        const std::size_t keep = partial_prefix(std::string_view(held_).substr(start));
        out.append(held_, start, held_.size() - start - keep);
        held_.erase(0, held_.size() - keep);
    }

    /// At end of stream: whatever is held was never a frame.
    void finish(std::string& out) {
        out += held_;
        held_.clear();
        searched_ = 0;
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
    std::size_t searched_ = 0;  ///< held_ begins with a begun frame known to have no newline before this
    std::vector<std::string> payloads_;
};

}  // namespace shannot::detail
