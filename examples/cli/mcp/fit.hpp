// SPDX-License-Identifier: MIT
// shannot mcp: a run's kept output on whole UTF-8 characters, and small enough for one message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <shannot/shannot.hpp>

namespace shannot_cli::mcp {

namespace detail {

/// Bytes a UTF-8 sequence starting with `lead` takes; 0 for a continuation or invalid byte.
[[nodiscard]] inline std::size_t utf8_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if (lead >= 0xC2 && lead <= 0xDF) return 2;
    if (lead >= 0xE0 && lead <= 0xEF) return 3;
    if (lead >= 0xF0 && lead <= 0xF4) return 4;
    return 0;
}

[[nodiscard]] inline bool is_continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0u) == 0x80u; }

}  // namespace detail

/// A stream cut into head and tail at byte counts (HeadTailCapture keeps the first `head` bytes
/// and the last ones) can split a character on either side of the cut, and text with a split
/// character is sent as base64. Drops the partial character at the end of the head and the
/// continuation bytes at the start of the tail (at most 3 each), counting them as dropped.
inline void align_cut(std::string& data, std::uint64_t& dropped, std::size_t head) {
    if (head == 0 || head >= data.size()) return;
    std::size_t lead = head;
    while (lead > 0 && head - lead < 3 && detail::is_continuation(data[lead - 1])) --lead;
    std::size_t cut_from = head;
    if (lead > 0) {
        const auto need = detail::utf8_length(static_cast<unsigned char>(data[lead - 1]));
        if (need > 1 && head - (lead - 1) < need) cut_from = lead - 1;  // an incomplete last character
    }
    std::size_t cut_to = head;
    while (cut_to < data.size() && cut_to - head < 3 && detail::is_continuation(data[cut_to])) ++cut_to;
    if (cut_from == head && cut_to == head) return;
    data.erase(cut_from, cut_to - cut_from);
    dropped += cut_to - cut_from;
}

/// Keeps at most `keep` bytes of a stream: its first keep/2 and its last keep - keep/2 bytes,
/// as the library's cap would have; the rest joins `dropped`.
inline void shrink_stream(std::string& data, bool& truncated, std::uint64_t& dropped, std::size_t keep) {
    if (data.size() <= keep) return;
    const std::size_t head = keep / 2, tail = keep - head;
    dropped += data.size() - keep;
    data = data.substr(0, head) + data.substr(data.size() - tail);
    truncated = true;
    align_cut(data, dropped, head);
}

/// Puts the cut of each truncated stream on whole characters. `cap` is the per-stream cap the
/// run had (the head kept is cap/2 bytes).
inline void align_cuts(shannot::ProcessResult& r, std::size_t cap) {
    if (r.stdout_truncated) align_cut(r.stdout_data, r.stdout_dropped, cap / 2);
    if (r.stderr_truncated) align_cut(r.stderr_data, r.stderr_dropped, cap / 2);
}

/// Halves the larger of the two streams (its head and tail kept): what a response over budget
/// gives up, one step at a time. False when there is nothing left to shrink.
inline bool halve_larger_stream(shannot::ProcessResult& r) {
    const bool out = r.stdout_data.size() >= r.stderr_data.size();
    auto& data = out ? r.stdout_data : r.stderr_data;
    if (data.size() < 64) return false;
    shrink_stream(data, out ? r.stdout_truncated : r.stderr_truncated, out ? r.stdout_dropped : r.stderr_dropped,
                  data.size() / 2);
    return true;
}

}  // namespace shannot_cli::mcp
