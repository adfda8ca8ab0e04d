// SPDX-License-Identifier: MIT
// Fuzz target: profile JSON text -> profile or error, never a crash; a loaded profile round-trips.
#include <shannot/profile_loader.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_check.hpp"

using Profile = shannot::SandboxProfile<fuzz::RemoteLikeTransport>;

static void check(std::string_view text, const char* base) {
    auto loaded = shannot::load_profile_from_string<fuzz::RemoteLikeTransport>(text, base);
    if (!loaded) {
        FUZZ_CHECK(loaded.error().code == shannot::errc::invalid_profile, "code %d",
                   static_cast<int>(loaded.error().code));
        FUZZ_CHECK(!loaded.error().message.empty(), "an error without a message");
        return;
    }
    FUZZ_CHECK(loaded->validate().has_value(), "loaded but invalid: %s", loaded->validate().error().message.c_str());
    // Every path a loaded profile holds is absolute (relative ones were resolved against base).
    for (const auto& b : loaded->binds)
        FUZZ_CHECK(!b.source.empty() && b.source.front() == '/', "source %s", b.source.c_str());

    // to_json -> text -> load again gives an equal profile (paths are absolute now: no base needed).
    const std::string dumped = loaded->to_json().dump();
    auto again = shannot::load_profile_from_string<fuzz::RemoteLikeTransport>(dumped);
    FUZZ_CHECK(again.has_value(), "the export does not load back: %s\n  export: %s", again.error().message.c_str(),
               dumped.c_str());
    FUZZ_CHECK(*again == *loaded, "the export loads back different\n  export: %s", dumped.c_str());
    FUZZ_CHECK(again->to_json().dump() == dumped, "the second export differs from the first");
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check(text, "");                // as from a string: relative paths are errors
    check(text, "/fuzz/profiles");  // as from a file: relative paths resolve against its folder
    return 0;
}
