// SPDX-License-Identifier: MIT
// HeadTailCapture, the default output policy: keeps the head and the tail of what a command prints.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include <shannot/concepts/output.hpp>

namespace shannot {

/// Keeps the first cap/2 bytes and the last cap - cap/2 bytes; counts the rest. Memory never
/// exceeds the cap, however much the command prints, and reading never stops (so the command
/// never blocks on a full pipe).
class HeadTailCapture {
public:
    explicit HeadTailCapture(std::size_t cap) : head_cap_(cap / 2), tail_cap_(cap - cap / 2) {}

    void append(std::string_view bytes) {
        const auto to_head = std::min(bytes.size(), head_cap_ - head_.size());
        head_.append(bytes.data(), to_head);
        bytes.remove_prefix(to_head);
        if (bytes.empty()) return;
        tail_seen_ += bytes.size();
        if (tail_cap_ == 0) return;
        if (bytes.size() >= tail_cap_) bytes = bytes.substr(bytes.size() - tail_cap_);
        if (ring_.size() < tail_cap_) {
            // Still filling: plain appends until the ring is full, then wrap.
            const auto fill = std::min(bytes.size(), tail_cap_ - ring_.size());
            ring_.append(bytes.data(), fill);
            bytes.remove_prefix(fill);
            pos_ = ring_.size() % tail_cap_;
        }
        while (!bytes.empty()) {
            const auto n = std::min(bytes.size(), tail_cap_ - pos_);
            ring_.replace(pos_, n, bytes.data(), n);
            pos_ = (pos_ + n) % tail_cap_;
            bytes.remove_prefix(n);
        }
    }

    /// Head followed by tail, in the order the bytes arrived.
    [[nodiscard]] std::string take() {
        std::string out = std::move(head_);
        if (ring_.size() < tail_cap_) {
            out += ring_;
        } else {
            out.append(ring_, pos_, std::string::npos);
            out.append(ring_, 0, pos_);
        }
        ring_.clear();
        pos_ = 0;
        return out;
    }

    [[nodiscard]] std::uint64_t dropped() const noexcept { return tail_seen_ > tail_cap_ ? tail_seen_ - tail_cap_ : 0; }

private:
    std::size_t head_cap_;
    std::size_t tail_cap_;
    std::string head_;
    std::string ring_;
    std::size_t pos_ = 0;
    std::uint64_t tail_seen_ = 0;
};

static_assert(OutputPolicy<HeadTailCapture>);

}  // namespace shannot
