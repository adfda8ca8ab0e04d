// SPDX-License-Identifier: MIT
// Fuzz target: glob_match and GlobAllowlist admission never crash, and keep their invariants.
#include <shannot/allowlist.hpp>
#include <shannot/profile.hpp>

#include <fnmatch.h>
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fuzz_check.hpp"

namespace {

bool has_meta(std::string_view p) { return p.find_first_of("*?[\\") != std::string_view::npos; }

std::size_t slashes(std::string_view s) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), '/')); }

void check_glob(const std::string& pattern, const std::string& text) {
    const bool m = shannot::glob_match(pattern, text);
    // A pattern without metacharacters matches only itself.
    if (!has_meta(pattern))
        FUZZ_CHECK(m == (pattern == text), "literal '%s' vs '%s' gave %d", pattern.c_str(), text.c_str(), m);
    // No wildcard, class or escape ever matches '/': every '/' of the text needs a '/' of the pattern.
    if (m)
        FUZZ_CHECK(slashes(text) <= slashes(pattern), "'%s' matched '%s' across a '/'", pattern.c_str(), text.c_str());
    // '*' alone matches exactly the texts without '/'.
    FUZZ_CHECK(shannot::glob_match("*", text) == (text.find('/') == std::string::npos), "'*' vs '%s'", text.c_str());
    // Every string matches itself once its metacharacters are escaped.
    std::string escaped;
    for (char c : text) {
        if (c == '*' || c == '?' || c == '[' || c == '\\') escaped += '\\';
        escaped += c;
    }
    FUZZ_CHECK(shannot::glob_match(escaped, text), "escaped '%s' does not match '%s'", escaped.c_str(), text.c_str());
}

/// Differential check against glibc fnmatch(3) with FNM_PATHNAME (the fuzzer runs in the C
/// locale): glob_match must give the same answer for every pattern and text glibc can see (no
/// NUL byte). Checked on the raw bytes, and mapped onto the alphabet where the corners are
/// (brackets, classes, escapes, ranges, '/'), so the fuzzer reaches them quickly.
void check_against_fnmatch(std::string_view pattern_bytes, std::string_view text_bytes) {
    auto agree = [](const std::string& pattern, const std::string& text) {
        const bool ours = shannot::glob_match(pattern, text);
        const bool libc = ::fnmatch(pattern.c_str(), text.c_str(), FNM_PATHNAME) == 0;
        FUZZ_CHECK(ours == libc, "'%s' vs '%s': glob_match %d, fnmatch %d", pattern.c_str(), text.c_str(), ours, libc);
    };
    if (pattern_bytes.find('\0') == std::string_view::npos && text_bytes.find('\0') == std::string_view::npos)
        agree(std::string(pattern_bytes), std::string(text_bytes));
    static constexpr std::string_view pattern_alphabet = "ab/*?[]!^-\\:=.z";
    static constexpr std::string_view text_alphabet = "ab/[]!^-\\:=.z";
    std::string pattern, text;
    for (unsigned char c : pattern_bytes) pattern += pattern_alphabet[c % pattern_alphabet.size()];
    for (unsigned char c : text_bytes) text += text_alphabet[c % text_alphabet.size()];
    agree(pattern, text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    std::vector<std::string> patterns(in.ConsumeIntegralInRange<std::size_t>(0, 4));
    for (auto& p : patterns) p = in.ConsumeRandomLengthString(40);
    std::vector<std::string> command(in.ConsumeIntegralInRange<std::size_t>(1, 3));
    for (auto& w : command) w = in.ConsumeRandomLengthString(40);
    const std::string path_env = in.ConsumeRandomLengthString(80);
    const bool with_probe = in.ConsumeBool();
    const auto exists_mask = in.ConsumeIntegral<std::uint64_t>();
    const std::string text = in.ConsumeRemainingBytesAsString();

    for (const auto& p : patterns) {
        check_glob(p, text);
        check_glob(p, command.front());
        check_against_fnmatch(p, text);
    }

    // Admission sees only patterns a profile accepts (the host class validates first).
    shannot::SandboxProfile<fuzz::RemoteLikeTransport> profile;
    profile.name = "fuzz";
    profile.allowed_commands = patterns;
    if (!profile.validate()) return 0;

    auto exists = [&](std::string_view path) {
        return ((exists_mask >> (std::hash<std::string_view>{}(path) % 64)) & 1) != 0;
    };
    shannot::AdmissionRequest request{"fuzz", patterns, command, path_env, {}};
    if (with_probe) request.exists = exists;
    auto admitted = shannot::GlobAllowlist{}.admit(std::move(request));
    if (!admitted) {
        const auto code = admitted.error().code;
        FUZZ_CHECK(code == shannot::errc::command_refused || code == shannot::errc::invalid_argument, "code %d",
                   static_cast<int>(code));
        return 0;
    }
    if (patterns.empty()) {
        FUZZ_CHECK(*admitted == command, "an empty allowlist must admit the command unchanged");
        return 0;
    }
    const auto& got = *admitted;
    const std::string& name = command.front();
    FUZZ_CHECK(got.size() == command.size() && std::equal(got.begin() + 1, got.end(), command.begin() + 1),
               "admission changed the arguments");

    auto matched_by = [&](std::string_view candidate, bool absolute) {
        return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
            return (!p.empty() && p.front() == '/') == absolute && shannot::glob_match(p, candidate);
        });
    };
    const auto dirs = shannot::GlobAllowlist::path_dirs(path_env);
    const std::string& run = got.front();
    if (run.find('/') == std::string::npos) {
        // Run as written: a bare pattern admitted the bare name.
        FUZZ_CHECK(run == name && matched_by(run, false), "bare '%s' admitted without a bare pattern", run.c_str());
        return 0;
    }
    // What runs is an absolute path without '.' or '..' that a pattern admitted.
    FUZZ_CHECK(shannot::detail::is_absolute(run) && !shannot::detail::has_dot_component(run), "runs '%s'", run.c_str());
    const auto slash = run.rfind('/');
    const std::string dir = slash == 0 ? "/" : run.substr(0, slash);
    const std::string base = run.substr(slash + 1);
    const bool dir_in_path = std::find(dirs.begin(), dirs.end(), dir) != dirs.end();
    FUZZ_CHECK(matched_by(run, true) || (dir_in_path && matched_by(base, false)),
               "'%s' runs but no pattern admitted it", run.c_str());
    if (run != name) {
        // Rewritten from a bare name: to a PATH entry, and with a probe, the first one that has it.
        FUZZ_CHECK(name.find('/') == std::string::npos && base == name && dir_in_path, "'%s' rewritten to '%s'",
                   name.c_str(), run.c_str());
        if (with_probe) {
            FUZZ_CHECK(exists(run), "rewritten to '%s', which the probe says does not exist", run.c_str());
            for (const auto& d : dirs) {
                if (d == dir) break;
                const std::string earlier = d == "/" ? "/" + name : d + "/" + name;
                FUZZ_CHECK(!exists(earlier), "'%s' comes first in PATH but '%s' was chosen", earlier.c_str(),
                           run.c_str());
            }
        }
    }
    return 0;
}
