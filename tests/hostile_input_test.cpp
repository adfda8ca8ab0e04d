// SPDX-License-Identifier: MIT
// Hostile input: glob patterns against glibc's fnmatch(3), frame streams in any chunking, argv and
// environment values of every byte, absurd argument counts and sizes, bad names and paths.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <fnmatch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "support/bwrap_env.hpp"
#include "support/frame_feed.hpp"
#include "support/transports.hpp"

using namespace std::chrono_literals;
using shannot::errc;
using shannot::glob_match;

namespace {

/// glibc's answer (C locale: the test binary never calls setlocale).
bool libc_match(const std::string& pattern, const std::string& text) {
    return ::fnmatch(pattern.c_str(), text.c_str(), FNM_PATHNAME) == 0;
}

/// Runs `count` random pattern/text pairs drawn from the given pieces; returns the first
/// disagreement with fnmatch ("" when none) and counts the matches (so the test sees it tried both).
std::string disagreement(std::mt19937& rng, const std::vector<std::string>& pattern_pieces,
                         const std::string& text_bytes, int count, int& matched, bool texts_from_patterns) {
    for (int i = 0; i < count; ++i) {
        std::string pattern, text;
        for (auto n = rng() % 10; n > 0; --n) pattern += pattern_pieces[rng() % pattern_pieces.size()];
        if (texts_from_patterns) {  // the pattern itself, a few bytes changed: near misses and hits
            text = pattern;
            for (auto n = rng() % 4; n > 0 && !text.empty(); --n) {
                const auto at = rng() % text.size();
                const char c = text_bytes[rng() % text_bytes.size()];
                switch (rng() % 3) {
                case 0: text.erase(at, 1); break;
                case 1: text[at] = c; break;
                default: text.insert(at, 1, c);
                }
            }
        } else {
            for (auto n = rng() % 8; n > 0; --n) text += text_bytes[rng() % text_bytes.size()];
        }
        const bool libc = libc_match(pattern, text);
        matched += libc ? 1 : 0;
        if (glob_match(pattern, text) != libc)
            return "pattern '" + pattern + "' text '" + text + "': fnmatch says " + (libc ? "match" : "no match");
    }
    return {};
}

using shannot_test::filter;
using shannot_test::Filtered;

/// The documented meaning, on the whole stream at once: "\n<marker> <payload>\n" with a payload of
/// at most max_payload bytes and no newline is a frame; scanning goes on after a frame's last
/// newline, or one byte after a "\n<marker> " that does not end in time.
Filtered reference_filter(const std::string& marker, const std::string& s) {
    const std::string prefix = "\n" + marker + " ";
    Filtered r;
    std::size_t emitted = 0, from = 0;
    while (true) {
        const auto at = s.find(prefix, from);
        if (at == std::string::npos) break;
        const auto body = at + prefix.size();
        const auto newline = s.find('\n', body);
        if (newline != std::string::npos && newline - body <= shannot::detail::FrameFilter::max_payload) {
            r.out += s.substr(emitted, at - emitted);
            r.payloads.push_back(s.substr(body, newline - body));
            emitted = from = newline + 1;
        } else {
            from = at + 1;
        }
    }
    r.out += s.substr(emitted);
    return r;
}

/// Every byte 1-255 once.
std::string all_bytes() {
    std::string s;
    for (int b = 1; b < 256; ++b) s += static_cast<char>(b);
    return s;
}

}  // namespace

TEST_CASE("glob_match agrees with fnmatch(3)") {
    SUBCASE("POSIX classes, escaped '/', a trailing '\\' and unterminated brackets, as glibc answers") {
        struct Case {
            const char* pattern;
            const char* text;
            bool match;
        };
        const Case cases[] = {
            {"[[:digit:]]", "5", true},   {"[[:digit:]]", "d]", false},
            {"[[:digit:]]", "x", false},  {"x[[:alpha:]_]", "x_", true},
            {"[![:space:]]", " ", false}, {"[![:space:]]", "a", true},
            {"[[:xdigit:]]", "F", true},  {"[[:upper:][:digit:]]", "Q", true},
            {"[[:punct:]]", "!", true},   {"[[:nosuch:]]", "n", false},
            {"[[:alpha:]]", "/", false},  {"python3.[[:digit:]]*", "python3.11", true},
            {"a\\/b", "a/b", true},       {"\\/", "/", true},
            {"*\\/x", "a/x", false},      {"a\\", "a\\", false},
            {"a\\", "a", false},          {"\\", "\\", false},
            {"[[", "[[", true},           {"[a", "[a", true},
            {"[a", "a", false},           {"*[]-", "x[]-", false},
            {"[]]", "]", true},           {"[!]]", "a", true},
            {"[=a=]", "a", true},         {"[[.-.]]", "-", true},
            {"[a-]", "-", true},
        };
        for (const auto& c : cases) {
            CAPTURE(c.pattern);
            CAPTURE(c.text);
            CHECK(libc_match(c.pattern, c.text) == c.match);  // the table says what glibc says
            CHECK(glob_match(c.pattern, c.text) == c.match);
        }
    }
    SUBCASE("600,000 generated patterns and texts: glob_match and fnmatch give the same answer") {
        std::mt19937 rng(20260407);
        const std::vector<std::string> rich = {"a",     "b",     "z",  "1",  ".",         "/",         "*",
                                               "?",     "[",     "]",  "!",  "^",         "-",         "\\",
                                               ":",     "=",     "[:", ":]", "[:alpha:]", "[:digit:]", "[:nosuch:]",
                                               "[=a=]", "[.a.]", "[.", "[=", " ",         "\xe9"};
        const std::vector<std::string> bytes = {"a", "b", "/",  "*", "?", "[", "]", "!",
                                                "^", "-", "\\", ":", "=", ".", "z", "1"};
        int matched = 0;
        const std::string random_texts = disagreement(rng, rich, "ab/[]!^-\\:=.z1 9A\t\xe9", 200000, matched, false);
        CHECK_MESSAGE(random_texts.empty(), random_texts);
        const std::string near_misses = disagreement(rng, bytes, "ab/*?[]!^-\\:=.z1", 200000, matched, true);
        CHECK_MESSAGE(near_misses.empty(), near_misses);
        const std::string rich_near_misses = disagreement(rng, rich, "ab/[]!^-\\:=.z1 9A\t\xe9", 200000, matched, true);
        CHECK_MESSAGE(rich_near_misses.empty(), rich_near_misses);
        CHECK(matched > 50000);  // the generators produce matches, not only misses
    }
    SUBCASE("every byte 1-255, as itself, escaped, in a bracket, in a range and against every class") {
        const std::string bytes = all_bytes();
        int checked = 0;
        for (char b : bytes) {
            const std::string one(1, b);
            for (const std::string& pattern : std::vector<std::string>{one, "\\" + one, "[" + one + "]",
                                                                       "[!" + one + "]", "[" + one + "-~]", "?", "*"}) {
                for (char t : {b, 'a', '/', '~'}) {
                    const std::string text(1, t);
                    CAPTURE(pattern);
                    CAPTURE(static_cast<int>(static_cast<unsigned char>(t)));
                    CHECK(glob_match(pattern, text) == libc_match(pattern, text));
                    ++checked;
                }
            }
            for (const char* cls : {"alpha", "digit", "alnum", "upper", "lower", "space", "punct", "xdigit", "print",
                                    "graph", "cntrl", "blank"}) {
                const std::string pattern = std::string("[[:") + cls + ":]]";
                CAPTURE(pattern);
                CAPTURE(static_cast<int>(static_cast<unsigned char>(b)));
                CHECK(glob_match(pattern, one) == libc_match(pattern, one));
                ++checked;
            }
        }
        CHECK(checked == 255 * (7 * 4 + 12));
    }
    SUBCASE("GlobAllowlist does not read an empty pattern, even unvalidated") {
        const std::vector<std::string> patterns = {"", "/usr/bin/ls"};
        auto r = shannot::GlobAllowlist{}.admit({"p", patterns, {"ls"}, "/usr/bin", {}});
        REQUIRE(r);
        CHECK(r->front() == "/usr/bin/ls");
        const std::vector<std::string> only_empty = {""};
        auto refused = shannot::GlobAllowlist{}.admit({"p", only_empty, {"ls"}, "/usr/bin", {}});
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == errc::command_refused);
    }
}

TEST_CASE("FrameFilter gives the same result for every chunking") {
    using shannot::detail::FrameFilter;
    SUBCASE("a begun frame longer than the bound is output, whether fed whole or byte by byte (issue 7)") {
        const std::string stream = "out\nM " + std::string(5000, 'x') + "\nrest";
        const auto whole = filter("M", stream, {stream.size()});
        const auto bytewise = filter("M", stream, std::vector<std::size_t>(stream.size(), 1));
        CHECK(whole == bytewise);
        CHECK(whole.out == stream);
        CHECK(whole.payloads.empty());
    }
    SUBCASE("a payload of exactly max_payload bytes is a frame; one byte more is not") {
        const std::string at_bound = "a\nM " + std::string(FrameFilter::max_payload, 'p') + "\nb";
        const std::string over = "a\nM " + std::string(FrameFilter::max_payload + 1, 'p') + "\nb";
        for (const auto& sizes : {std::vector<std::size_t>{1u << 20}, std::vector<std::size_t>(5000, 1)}) {
            const auto framed = filter("M", at_bound, sizes);
            CHECK(framed.out == "ab");
            REQUIRE(framed.payloads.size() == 1);
            CHECK(framed.payloads[0].size() == FrameFilter::max_payload);
            const auto plain = filter("M", over, sizes);
            CHECK(plain.out == over);
            CHECK(plain.payloads.empty());
        }
    }
    SUBCASE("600 random streams near the bound: whole, random pieces and byte by byte agree with the definition") {
        std::mt19937 rng(7);
        int frames = 0, different = 0;
        for (int i = 0; i < 600; ++i) {
            const std::string marker = std::string("m").append(std::to_string(rng() % 2));
            std::string stream;
            for (auto n = rng() % 10; n > 0; --n) {
                switch (rng() % 6) {
                case 0: stream += "\n" + marker + " "; break;
                case 1:
                    stream += std::string(rng() % 2 ? FrameFilter::max_payload - 3 + rng() % 7 : rng() % 12, 'x');
                    break;
                case 2: stream += "\n"; break;
                case 3: stream += marker; break;
                case 4: stream += "\nm0 exit 0\n"; break;
                default: stream += " ";
                }
            }
            std::vector<std::size_t> pieces;
            for (std::size_t total = 0; total < stream.size();)
                pieces.push_back(1 + rng() % (rng() % 2 ? 9 : 5000)), total += pieces.back();
            const auto expected = reference_filter(marker, stream);
            const auto whole = filter(marker, stream, {stream.size()});
            const auto chunked = filter(marker, stream, pieces);
            const auto bytewise = filter(marker, stream, std::vector<std::size_t>(stream.size(), 1));
            if (!(whole == expected && chunked == expected && bytewise == expected)) ++different;
            frames += static_cast<int>(expected.payloads.size());
        }
        CHECK(different == 0);
        CHECK(frames > 100);
    }
}

TEST_CASE_TEMPLATE("hostile argv and environment values", M, SHANNOT_MODES) {
    // Every mode: a warm session carries argv and variables through its own request framing.
    SHANNOT_REQUIRE_TRANSPORT(typename M::transport);
    auto sandbox = shannot_test::make_runner<M>();
    const std::string bytes = all_bytes();

    SUBCASE("one argument holding every byte 1-255 comes back exact") {
        auto r = sandbox.run({"printf", "%s", bytes});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->exit_code == 0);
        CHECK(r->stdout_data == bytes);
    }
    SUBCASE("each byte 1-255 as its own argument comes back exact") {
        std::vector<std::string> command = {"printf", "%s\\0"};
        std::string expected;
        for (char b : bytes) {
            command.emplace_back(1, b);
            expected += std::string(1, b) + '\0';
        }
        auto r = sandbox.run(command);
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data == expected);
    }
    SUBCASE("an environment value holding every byte 1-255 comes back exact") {
        auto r = sandbox.run({"sh", "-c", "printf %s \"$HOSTILE\""}, {.environment = {{"HOSTILE", bytes}}});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data == bytes);
    }
    SUBCASE("bad environment names are refused, named, before anything runs") {
        for (const char* name : {"LD_PRELOAD=x", "A B", "", "1A", "A\nB", "A-B", "\xe9"}) {
            CAPTURE(name);
            auto r = sandbox.run({"true"}, {.environment = {{name, "x"}}});
            REQUIRE_FALSE(r);
            CHECK(r.error().code == errc::invalid_argument);
            CHECK(r.error().message.find("'" + std::string(name) + "'") != std::string::npos);
            CHECK(r.error().result == nullptr);  // nothing ran
        }
    }
}

TEST_CASE_TEMPLATE("argument counts and sizes at bwrap's limits", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto sandbox = shannot_test::make_sandbox<T>();

    SUBCASE("100,000 arguments are refused naming bwrap's limit; at the limit the command runs") {
        std::vector<std::string> many(100000, "x");
        many.front() = "true";
        auto r = sandbox.run(many);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_argument);
        CHECK(r.error().message.find("9000") != std::string::npos);

        // Exactly as many as bwrap takes: it runs (so the limit is bwrap's, not tighter).
        auto base = sandbox.dry_run({"printf", "%.0s"});
        REQUIRE(base);
        using Builder = shannot::BubblewrapCommandBuilder<T>;
        std::vector<std::string> full = {"printf", "%.0s"};
        full.resize(Builder::max_bwrap_arguments - base->size() + 2, "y");
        auto at_limit = sandbox.run(full);
        REQUIRE_MESSAGE(at_limit, at_limit.error().describe());
        CHECK(at_limit->exit_code == 0);
        CHECK(sandbox.dry_run(full)->size() == Builder::max_bwrap_arguments);
        full.emplace_back("y");
        auto over = sandbox.run(full);
        REQUIRE_FALSE(over);
        CHECK(over.error().code == errc::invalid_argument);
    }
    SUBCASE("an argument or a variable over 128 KiB is refused as too long; just under it runs") {
        auto r = sandbox.run({"printf", "%s", std::string(100u << 20, 'a')});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_argument);
        CHECK(r.error().message.find("too long") != std::string::npos);
        CHECK(r.error().message.find("command[2]") != std::string::npos);
        auto env = sandbox.run({"true"}, {.environment = {{"BIG", std::string(200000, 'b')}}});
        REQUIRE_FALSE(env);
        CHECK(env.error().message.find("BIG is too long") != std::string::npos);
        auto under = sandbox.run({"sh", "-c", "printf %s \"$0\" | wc -c", std::string(131071, 'a')});
        REQUIRE_MESSAGE(under, under.error().describe());
        CHECK(under->stdout_data == "131071\n");
    }
}

#if SHANNOT_PLATFORM_LINUX  // the local transport: not in the portable build (tests/portable/)
TEST_CASE("PosixSpawnTransport given a 100 MiB argument") {
    SHANNOT_REQUIRE_BWRAP();
    const int fds = shannot_test::count_fds();
    shannot::PosixSpawnTransport transport;
    auto r = transport.launch({.bwrap_args = {"--", "/bin/true", std::string(100u << 20, 'a')}});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_argument);
    CHECK(r.error().message.find("too long") != std::string::npos);
    CHECK(shannot_test::count_fds() == fds);
}
#endif

TEST_CASE("profile paths with control bytes are refused, naming the field") {
    struct Case {
        std::string json, message;
    };
    const std::vector<Case> cases = {
        {R"({"name": "x", "binds": [{"source": "/usr\nx", "target": "/usr"}]})",
         "binds[0].source: contains a control character (a newline, a tab, ...)"},
        {R"({"name": "x", "binds": [{"source": "/usr", "target": "/a\tb"}]})",
         "binds[0].target: contains a control character (a newline, a tab, ...)"},
        {R"({"name": "x", "tmpfs_paths": ["/tmp", "/x\u001b[31m"]})",
         "tmpfs_paths[1]: contains a control character (a newline, a tab, ...)"},
        {R"({"name": "x", "seccomp_profile": "/etc/f\r"})",
         "seccomp_profile: contains a control character (a newline, a tab, ...)"},
        {R"({"name": "x", "binds": [{"source": "/usr/./lib", "target": "/usr"}]})",
         "binds[0].source: must not contain '.' or '..' components"},
        {R"({"name": "x", "binds": [{"source": "/usr", "target": "/a/../../etc"}]})",
         "binds[0].target: must not contain '.' or '..' components"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.json);
        auto p = shannot::load_profile_from_string<shannot::OpenSshProcessTransport>(c.json);
        REQUIRE_FALSE(p);
        CHECK(p.error().code == errc::invalid_profile);
        CHECK(p.error().message == c.message);
    }
}

#if SHANNOT_PLATFORM_LINUX  // host paths: the local transport only; not in the portable build
TEST_CASE("profile paths through symlinks: a writable bind is checked where its source really is") {
    SHANNOT_REQUIRE_BWRAP();
    namespace fs = std::filesystem;
    using Profile = shannot::SandboxProfile<shannot::PosixSpawnTransport>;
    shannot_test::TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    const fs::path root = dir.path();
    fs::create_directory(root / "data");
    fs::create_directory_symlink("/proc/sys", root / "to-proc-sys");
    fs::create_directory_symlink("/", root / "to-root");
    fs::create_directory_symlink("data", root / "to-data");
    fs::create_symlink("loop", root / "loop");

    auto with_bind = [](const fs::path& source, bool read_only) {
        Profile p = shannot_test::test_profile<shannot::PosixSpawnTransport>();
        p.binds.push_back({.source = source.native(), .target = "/work", .read_only = read_only});
        return p;
    };
    SUBCASE("writable binds of symlinks to /proc/sys or / are refused, naming the field and the real path") {
        for (const char* link : {"to-proc-sys", "to-root"}) {
            CAPTURE(link);
            auto sandbox = shannot::LocalSandbox(with_bind(root / link, false));
            auto r = sandbox.run({"true"});
            REQUIRE_FALSE(r);
            CHECK(r.error().code == errc::invalid_profile);
            const auto index = std::to_string(with_bind(root / link, false).binds.size() - 1);
            CHECK(r.error().message.rfind("binds[" + index + "].source: " + (root / link).native() + " resolves to ",
                                          0) == 0);
            CHECK(r.error().message.find("would expose host /proc") != std::string::npos);
        }
    }
    SUBCASE("a symlink loop is a clear profile error, not a hang") {
        auto r = shannot::LocalSandbox(with_bind(root / "loop", false)).run({"true"});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_profile);
        CHECK(r.error().message.find((root / "loop").native()) != std::string::npos);
    }
    SUBCASE("read-only, the same symlink is followed: the sandbox reads /proc/sys and cannot write it") {
        auto r =
            shannot::LocalSandbox(with_bind(root / "to-proc-sys", true))
                .run({"sh", "-c", "cat /work/kernel/ostype; echo x 2>/dev/null >/work/kernel/ostype || echo refused"});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data == "Linux\nrefused\n");
    }
    SUBCASE("a writable bind of a symlink to an ordinary folder works, and writes land in the folder") {
        auto r = shannot::LocalSandbox(with_bind(root / "to-data", false)).run({"sh", "-c", "echo hi >/work/f"});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->exit_code == 0);
        CHECK(shannot_test::read_text((root / "data" / "f").native()) == "hi\n");
    }
}
#endif

TEST_CASE("an ssh destination that ssh would read as an option never reaches ssh") {
    shannot_test::TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    const std::string planted = dir.path() + "/proxy-ran";
    shannot::SshConnection c;
    c.host = "-oProxyCommand=touch " + planted;
    shannot::SshSandbox sandbox(shannot_test::test_profile<shannot::OpenSshProcessTransport>(),
                                shannot::OpenSshProcessTransport(c));
    auto r = sandbox.run({"true"});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_argument);
    CHECK(r.error().message.find("host") != std::string::npos);
    c.host = "127.0.0.1";
    c.user = "-oProxyCommand=touch " + planted;
    shannot::SshSandbox by_user(shannot_test::test_profile<shannot::OpenSshProcessTransport>(),
                                shannot::OpenSshProcessTransport(c));
    CHECK_FALSE(by_user.run({"true"}));
    CHECK_FALSE(std::filesystem::exists(planted));
}

TEST_CASE_TEMPLATE("the sandboxed command holds no descriptor but stdin, stdout and stderr", M, SHANNOT_MODES) {
    // A descriptor of the transport's own in the command (a dispatcher's request pipe, which its
    // runner sources as shell, bwrap's status pipe, a session agent's pipes) would let it forge
    // requests or results, or run code outside the sandbox.
    SHANNOT_REQUIRE_TRANSPORT(typename M::transport);
    auto sandbox = shannot_test::make_runner<M>();
    // `[ -h ]` looks at the link without opening anything, so the scan adds no descriptor.
    const std::string scan = "n=0; while [ $n -lt 256 ]; do [ -h /proc/$$/fd/$n ] && printf '%s ' $n; n=$((n+1)); done";
    auto plain = sandbox.run({"sh", "-c", scan});
    REQUIRE_MESSAGE(plain, plain.error().describe());
    CHECK(plain->stdout_data == "0 1 2 ");
    auto with_input = sandbox.run({"sh", "-c", scan}, {.input = std::string("staged input")});
    REQUIRE_MESSAGE(with_input, with_input.error().describe());
    CHECK(with_input->stdout_data == "0 1 2 ");
}

TEST_CASE_TEMPLATE("the sandboxed command holds no capabilities, even when the caller is root", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    // The capability sets of a process, from /proc/PID/status (name -> hex mask).
    auto capability_sets = [](const std::string& status) {
        std::map<std::string, std::string> sets;
        std::size_t start = 0;
        while (start < status.size()) {
            auto end = status.find('\n', start);
            if (end == std::string::npos) end = status.size();
            const auto line = status.substr(start, end - start);
            if (line.rfind("Cap", 0) == 0 && line.find(':') != std::string::npos) {
                auto value = line.substr(line.find(':') + 1);
                value.erase(0, value.find_first_not_of(" \t"));
                sets[line.substr(0, line.find(':'))] = value;
            }
            start = end + 1;
        }
        return sets;
    };
    auto profile = *shannot::builtin_profile<T>("minimal");  // the default profile, as shipped
    auto sandbox = shannot_test::make_sandbox<T>(profile);
    auto r = sandbox.run({"cat", "/proc/self/status"});
    REQUIRE_MESSAGE(r, r.error().describe());
    REQUIRE(r->exit_code == 0);
    const auto inside = capability_sets(r->stdout_data);
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
        CAPTURE(set);
        REQUIRE(inside.count(set) == 1);
        CHECK(inside.at(set) == "0000000000000000");
    }
    // The same reading of this process: as root it holds capabilities, so the check above can fail.
    if (::geteuid() == 0) {
        const auto here = capability_sets(shannot_test::read_text("/proc/self/status"));
        REQUIRE(here.count("CapEff") == 1);
        CHECK(here.at("CapEff") != "0000000000000000");
    }
}
