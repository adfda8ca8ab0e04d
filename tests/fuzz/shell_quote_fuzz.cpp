// SPDX-License-Identifier: MIT
// Fuzz target: shell_split(shell_join(words)) == words for any words without NUL.
#include <shannot/detail/shell_quote.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    using shannot::detail::shell_join;
    using shannot::detail::shell_quote;
    using shannot::detail::shell_split;

    // Words are the NUL-separated pieces of the input (so none holds a NUL; empty words count).
    std::vector<std::string> words;
    if (!bytes.empty()) {
        std::size_t start = 0;
        while (true) {
            const auto nul = bytes.find('\0', start);
            words.emplace_back(
                bytes.substr(start, nul == std::string_view::npos ? std::string_view::npos : nul - start));
            if (nul == std::string_view::npos) break;
            start = nul + 1;
        }
    }
    const std::string line = shell_join(words);
    auto back = shell_split(line);
    FUZZ_CHECK(back.has_value(), "the quoted line does not parse: %s", back.error().message.c_str());
    FUZZ_CHECK(*back == words, "the quoted line parses to other words");
    for (const auto& w : words) {
        auto one = shell_split(shell_quote(w));
        FUZZ_CHECK(one && one->size() == 1 && one->front() == w, "one quoted word is not one word");
    }

    // The re-parser on arbitrary text: never a crash, and what it accepts round-trips.
    if (auto parsed = shell_split(bytes)) {
        auto again = shell_split(shell_join(*parsed));
        FUZZ_CHECK(again && *again == *parsed, "a parsed line does not survive quoting");
    }
    return 0;
}
