// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <set>
#include <string>
#include <string_view>
#include <system_error>

TEST_CASE("Error") {
    SUBCASE("errc converts to std::error_code in the shannot category") {
        std::error_code ec = shannot::errc::command_refused;
        CHECK(ec.category().name() == std::string("shannot"));
        CHECK(ec.message() == "command refused by the sandbox profile");
        CHECK(ec != std::error_code{});
    }
    SUBCASE("to_string names every errc, each differently, as the enumerator is spelled") {
        // The category's message switch names every enumerator too (-Wswitch): walk the values
        // it knows, so an errc added later is covered without editing this test.
        const std::string unknown_message = shannot::error_category().message(-1);
        std::set<std::string_view> names;
        int count = 0;
        for (; shannot::error_category().message(count) != unknown_message; ++count) {
            const auto name = shannot::to_string(static_cast<shannot::errc>(count));
            CHECK_MESSAGE(name != "unknown", "errc value " << count);
            CHECK_MESSAGE(names.insert(name).second, "errc value " << count << " repeats the name " << name);
        }
        CHECK(count > 15);
        CHECK(names.size() == static_cast<std::size_t>(count));
        // Control: a value outside the enum is "unknown", so the checks above can fail.
        CHECK(shannot::to_string(static_cast<shannot::errc>(count)) == "unknown");
        // The names --json consumers rely on (shannot's "error.code").
        CHECK(shannot::to_string(shannot::errc::ok) == "ok");
        CHECK(shannot::to_string(shannot::errc::command_refused) == "command_refused");
        CHECK(shannot::to_string(shannot::errc::session_lost) == "session_lost");
        static_assert(shannot::to_string(shannot::errc::invalid_profile) == "invalid_profile");
    }
    SUBCASE("fail() builds an unexpected carrying code and message") {
        shannot::Result<int> r =
            shannot::fail(shannot::errc::invalid_argument, "environment variable name 'A B' is not valid");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == shannot::errc::invalid_argument);
        CHECK(r.error().describe() == "invalid argument: environment variable name 'A B' is not valid");
        CHECK(r.error().result == nullptr);
    }
}
