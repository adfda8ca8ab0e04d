// SPDX-License-Identifier: MIT
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <system_error>

TEST_CASE("Error") {
    SUBCASE("errc converts to std::error_code in the shannot category") {
        std::error_code ec = shannot::errc::command_refused;
        CHECK(ec.category().name() == std::string("shannot"));
        CHECK(ec.message() == "command refused by the sandbox profile");
        CHECK(ec != std::error_code{});
    }
    SUBCASE("fail() builds an unexpected carrying code and message") {
        shannot::Result<int> r = shannot::fail(shannot::errc::invalid_argument, "environment variable name 'A B' is not valid");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == shannot::errc::invalid_argument);
        CHECK(r.error().describe() == "invalid argument: environment variable name 'A B' is not valid");
        CHECK(r.error().result == nullptr);
    }
}
