// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <cstdint>
#include <random>
#include <string>

namespace {

// The reference: what a head+tail capture of `all` must hold for `cap`.
std::string expected_kept(const std::string& all, std::size_t cap) {
    if (all.size() <= cap) return all;
    return all.substr(0, cap / 2) + all.substr(all.size() - (cap - cap / 2));
}

}  // namespace

TEST_CASE("HeadTailCapture") {
    SUBCASE("keeps everything below the cap") {
        shannot::HeadTailCapture c(64);
        c.append("hello ");
        c.append("world");
        CHECK(c.dropped() == 0);
        CHECK(c.take() == "hello world");
    }
    SUBCASE("keeps head and tail and counts the middle exactly, for any chunking") {
        std::mt19937 rng(42);
        for (std::size_t cap : {0u, 1u, 2u, 7u, 64u, 1000u}) {
            for (int trial = 0; trial < 40; ++trial) {
                std::string all;
                shannot::HeadTailCapture c(cap);
                const int pieces = static_cast<int>(rng() % 50);
                for (int i = 0; i < pieces; ++i) {
                    std::string piece(rng() % 300, '\0');
                    for (auto& ch : piece) ch = static_cast<char>(rng() % 256);
                    all += piece;
                    c.append(piece);
                }
                const auto dropped = c.dropped();
                const auto kept = c.take();
                CAPTURE(cap);
                CAPTURE(all.size());
                CHECK(kept == expected_kept(all, cap));
                CHECK(dropped == (all.size() > cap ? all.size() - cap : 0));
            }
        }
    }
    SUBCASE("memory stays at the cap while a gigabyte streams through") {
        shannot::HeadTailCapture c(1 << 20);
        const std::string chunk(1 << 16, 'x');
        for (int i = 0; i < (1 << 14); ++i) c.append(chunk);  // 1 GiB
        CHECK(c.dropped() == (std::uint64_t{1} << 30) - (1u << 20));
        const auto kept = c.take();
        CHECK(kept.size() == (1u << 20));
        CHECK(kept.capacity() < (3u << 20));
    }
}

TEST_CASE("CancelToken") {
    SUBCASE("copies share the cancellation and the fd becomes readable") {
        shannot::CancelToken token;
        auto copy = token;
        CHECK_FALSE(copy.cancelled());
        token.cancel();
        token.cancel();  // idempotent
        CHECK(copy.cancelled());
        CHECK(copy.fd() == token.fd());
        CHECK(copy.fd() >= 0);
    }
}
