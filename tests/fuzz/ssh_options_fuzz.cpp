// SPDX-License-Identifier: MIT
// Fuzz target: the ssh option allowlist never crashes and lets through only safe-list names.
#include <shannot/ssh_connection.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"

namespace {

bool on_safe_list(const std::string& name) {
    return std::find(shannot::safe_ssh_options.begin(), shannot::safe_ssh_options.end(), name) !=
           shannot::safe_ssh_options.end();
}

/// The keyword as OpenSSH's `-o` parser reads it (readconf.c: leading whitespace skipped, a
/// quoted keyword unquoted, the keyword ends at whitespace or '='), lower-cased.
std::string ssh_keyword(std::string_view line) {
    const std::string_view ws = " \t\r\n";
    std::size_t i = line.find_first_not_of(ws);
    if (i == std::string_view::npos) return {};
    std::string word;
    if (line[i] == '"') {
        const auto close = line.find('"', i + 1);
        if (close == std::string_view::npos) return {};
        word = line.substr(i + 1, close - i - 1);
    } else {
        const auto end = line.find_first_of(" \t\r\n=", i);
        word = line.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    }
    for (auto& c : word) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return word;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    shannot::SshConnection c;
    c.host = in.ConsumeRandomLengthString(32);
    c.user = in.ConsumeRandomLengthString(16);
    c.port = in.ConsumeIntegral<std::uint16_t>();
    c.allow_unsafe_ssh_options = in.ConsumeBool();
    c.host_key_policy = static_cast<shannot::HostKeyPolicy>(in.ConsumeIntegralInRange<int>(0, 2));
    c.allow_unknown_hosts = in.ConsumeBool();
    for (auto n = in.ConsumeIntegralInRange<int>(0, 3); n > 0; --n)
        c.extra_options.push_back(in.ConsumeRandomLengthString(64));
    const std::string option = in.ConsumeRemainingBytesAsString();

    c.extra_options.push_back(option);

    for (const auto& o : c.extra_options) {
        const auto safe = shannot::check_ssh_option(o, false);
        const auto any = shannot::check_ssh_option(o, true);
        const auto name = shannot::detail::ssh_option_name(o);
        const bool well_formed =
            !name.empty() && o.find('\0') == std::string::npos && o.find('\n') == std::string::npos;
        FUZZ_CHECK(any.has_value() == well_formed, "allow_unsafe: accepted=%d for a %s option", any.has_value(),
                   well_formed ? "well-formed" : "malformed");
        if (safe) {
            FUZZ_CHECK(any.has_value(), "accepted as safe but not with allow_unsafe");
            FUZZ_CHECK(on_safe_list(name), "'%s' accepted without allow_unsafe", name.c_str());
            const auto keyword = ssh_keyword(o);
            FUZZ_CHECK(on_safe_list(keyword), "ssh would read option '%s', not on the safe list", keyword.c_str());
        } else {
            FUZZ_CHECK(safe.error().code == shannot::errc::unsafe_ssh_option, "code %d",
                       static_cast<int>(safe.error().code));
        }
    }

    if (auto ok = shannot::validate(c)) {
        FUZZ_CHECK(!c.host.empty() && c.host.front() != '-', "host '%s' accepted", c.host.c_str());
        FUZZ_CHECK(!shannot::detail::has_space_or_control(c.host) && c.host.find('@') == std::string::npos,
                   "host accepted");
        FUZZ_CHECK(c.user.empty() || c.user.front() != '-', "user accepted");
        FUZZ_CHECK(c.port != 0, "port 0 accepted");
        FUZZ_CHECK(c.host_key_policy != shannot::HostKeyPolicy::no || c.allow_unknown_hosts, "policy no accepted");
        for (const auto& o : c.extra_options)
            FUZZ_CHECK(c.allow_unsafe_ssh_options || on_safe_list(shannot::detail::ssh_option_name(o)),
                       "option accepted");
        // Our options come first: ssh keeps the first value it sees.
        const auto args = shannot::ssh_base_options(c);
        FUZZ_CHECK(args.size() >= 2 && args[0] == "-o" && args[1] == "BatchMode=yes", "BatchMode is not first");
        FUZZ_CHECK(shannot::ssh_destination(c).front() != '-', "the destination reads as an option");
    }
    return 0;
}
