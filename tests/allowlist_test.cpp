// SPDX-License-Identifier: MIT
// glob_match and GlobAllowlist: Shannot's allowlist with its bypasses closed.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <chrono>
#include <set>
#include <string>
#include <vector>

using shannot::glob_match;

namespace {

shannot::Result<std::vector<std::string>> admit(std::vector<std::string> patterns, std::vector<std::string> command,
                                                std::string path = "/usr/bin:/bin",
                                                std::function<bool(std::string_view)> exists = {}) {
    static std::vector<std::string> keep;
    keep = std::move(patterns);
    return shannot::GlobAllowlist{}.admit({"p", keep, std::move(command), path, std::move(exists)});
}

}  // namespace

TEST_CASE("glob_match") {
    SUBCASE("wildcards match within one path component only") {
        CHECK(glob_match("/usr/bin/*", "/usr/bin/ls"));
        CHECK_FALSE(glob_match("/usr/bin/*", "/usr/bin/x/ls"));
        CHECK_FALSE(glob_match("/usr/*", "/usr/bin/ls"));
        CHECK_FALSE(glob_match("/usr/bin?ls", "/usr/bin/ls"));
        CHECK_FALSE(glob_match("/usr/bin[/]ls", "/usr/bin/ls"));
        CHECK(glob_match("/usr/*/ls", "/usr/bin/ls"));
        CHECK(glob_match("*", "ls"));
        CHECK_FALSE(glob_match("*", "bin/ls"));
    }
    SUBCASE("classes, negation, ranges and escapes") {
        CHECK(glob_match("l[a-z]", "ls"));
        CHECK_FALSE(glob_match("l[!s]", "ls"));
        CHECK(glob_match("l[^x]", "ls"));
        CHECK(glob_match("[]]", "]"));
        CHECK(glob_match("a\\*", "a*"));
        CHECK_FALSE(glob_match("a\\*", "ab"));
        CHECK(glob_match("a[", "a["));  // unterminated: literal
    }
    SUBCASE("case-sensitive and exact") {
        CHECK_FALSE(glob_match("ls", "LS"));
        CHECK_FALSE(glob_match("ls", "ls "));
        CHECK_FALSE(glob_match("ls", "ls;id"));
        CHECK(glob_match("", ""));
    }
    SUBCASE("hostile patterns finish quickly") {
        const std::string text(20000, 'a');
        const auto start = std::chrono::steady_clock::now();
        CHECK_FALSE(glob_match("*a*a*a*a*a*a*a*a*b", text));
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
    }
}

TEST_CASE("GlobAllowlist") {
    SUBCASE("an empty allowlist admits any command (Shannot's meaning)") {
        auto r = admit({}, {"rm", "-rf", "/"});
        REQUIRE(r);
        CHECK(r->front() == "rm");
    }
    SUBCASE("refusals name the command and the profile") {
        auto r = admit({"ls"}, {"rm"});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == shannot::errc::command_refused);
        CHECK(r.error().message == "command 'rm' is not allowed by profile 'p' (allowed: ls)");
    }
    SUBCASE("dot components, empty components and relative paths are refused") {
        for (const auto& cmd :
             {"/usr/bin/../bin/ls", "/usr/bin/./ls", "/usr//bin/ls", "./ls", "bin/ls", "../ls", "/usr/bin/"}) {
            CAPTURE(cmd);
            CHECK_FALSE(admit({"/usr/bin/*", "ls"}, {cmd}));
        }
    }
    SUBCASE("case tricks and shell metacharacters do not match") {
        for (const auto& cmd : {"LS", "Ls", "ls;id", "ls && id", "$(ls)", "ls\n", "ls "}) {
            CAPTURE(cmd);
            CHECK_FALSE(admit({"ls"}, {cmd}));
        }
    }
    SUBCASE("a bare name is matched as written") {
        auto r = admit({"ls"}, {"ls", "-l"});
        REQUIRE(r);
        CHECK(*r == std::vector<std::string>{"ls", "-l"});
    }
    SUBCASE("a bare name admitted only by an absolute pattern is rewritten to that path") {
        auto r = admit({"/bin/ls"}, {"ls", "/"});
        REQUIRE(r);
        CHECK(*r == std::vector<std::string>{"/bin/ls", "/"});
    }
    SUBCASE("with a probe, the PATH entry execvp would pick decides") {
        auto usr_first = [](std::string_view p) { return p == "/usr/bin/ls" || p == "/bin/ls"; };
        auto picked = admit({"/usr/bin/ls"}, {"ls"}, "/usr/bin:/bin", usr_first);
        REQUIRE(picked);
        CHECK(picked->front() == "/usr/bin/ls");
        // A writable directory earlier on PATH holding a planted `ls` is what would run: refused.
        auto planted = [](std::string_view p) { return p == "/tmp/ls" || p == "/usr/bin/ls"; };
        auto r = admit({"/usr/bin/ls"}, {"ls"}, "/tmp:/usr/bin", planted);
        REQUIRE_FALSE(r);
        CHECK(r.error().message.find("PATH resolves it to /tmp/ls") != std::string::npos);
    }
    SUBCASE("an absolute command is admitted by a bare pattern only from a PATH directory") {
        CHECK(admit({"ls"}, {"/usr/bin/ls"}));
        CHECK(admit({"ls"}, {"/bin/ls"}));
        CHECK_FALSE(admit({"ls"}, {"/tmp/ls"}));
        CHECK_FALSE(admit({"ls"}, {"/usr/bin/ls"}, "/bin"));
    }
    SUBCASE("globs admit within their component only") {
        CHECK(admit({"/usr/bin/*"}, {"/usr/bin/cat"}));
        CHECK_FALSE(admit({"/usr/bin/*"}, {"/usr/bin/sub/cat"}));
        CHECK_FALSE(admit({"/usr/*"}, {"/usr/bin/cat"}));
    }
    SUBCASE("relative and dotted PATH entries are ignored") {
        auto r = admit({"/usr/bin/ls"}, {"ls"}, ".:bin:/usr/./bin:/usr/bin");
        REQUIRE(r);
        CHECK(r->front() == "/usr/bin/ls");
        CHECK(shannot::GlobAllowlist::path_dirs(":/a/:b:/c") == std::vector<std::string>{"/a", "/c"});
    }
    SUBCASE("empty and NUL commands are invalid arguments") {
        auto empty = admit({"ls"}, {});
        REQUIRE_FALSE(empty);
        CHECK(empty.error().code == shannot::errc::invalid_argument);
        auto nul = admit({"ls"}, {std::string("ls\0x", 4)});
        REQUIRE_FALSE(nul);
        CHECK(nul.error().code == shannot::errc::invalid_argument);
    }
}

TEST_CASE("lint_profile") {
    auto codes = [](const shannot::LocalProfile& p) {
        std::multiset<std::string> out;
        for (const auto& f : shannot::lint_profile(p)) out.insert(f.code);
        return out;
    };
    SUBCASE("the built-in minimal profile: find can run other commands") {
        CHECK(codes(*shannot::builtin_profile("minimal")) == std::multiset<std::string>{"exec-capable"});
    }
    SUBCASE("every risk is listed") {
        shannot::LocalProfile p{.name = "risky",
                                .allowed_commands = {"env", "/usr/bin/python3.11", "x*", "ls"},
                                .binds = {{.source = "/", .target = "/host", .read_only = false}},
                                .network_isolation = false,
                                .user_namespace_isolation = false,
                                .additional_args = {"--share-net"}};
        CHECK(codes(p) == std::multiset<std::string>{"exec-capable", "exec-capable", "exec-capable", "glob-pattern",
                                                     "writable-bind", "network", "user-namespace", "additional-args",
                                                     "root-bind"});
        p.syscall_filter = "none";
        CHECK(codes(p).count("syscall-filter-off") == 1);
    }
    SUBCASE("the syscall filter turned off, or groups of it relaxed, is flagged, naming each group") {
        shannot::LocalProfile p{
            .name = "relaxed", .allowed_commands = {"ls"}, .syscall_filter_allow = {"unix_sockets", "ptrace"}};
        const auto findings = shannot::lint_profile(p);
        REQUIRE(findings.size() == 2);
        CHECK(findings[0].code == "syscall-filter-relaxed");
        CHECK(findings[0].severity == shannot::LintFinding::Severity::warning);
        CHECK(findings[0].message.find("syscall_filter_allow[0]: 'unix_sockets' is allowed: socket(AF_UNIX)") == 0);
        CHECK(findings[1].message.find("syscall_filter_allow[1]: 'ptrace' is allowed: ptrace, process_vm_readv") == 0);
        shannot::LocalProfile off{.name = "off", .allowed_commands = {"ls"}, .syscall_filter = "none"};
        const auto off_findings = shannot::lint_profile(off);
        REQUIRE(off_findings.size() == 1);
        CHECK(off_findings[0].code == "syscall-filter-off");
        CHECK(off_findings[0].severity == shannot::LintFinding::Severity::danger);
        CHECK(off_findings[0].message.find("syscall_filter is \"none\"") == 0);
    }
    SUBCASE("an empty allowlist is flagged") {
        CHECK(codes(shannot::LocalProfile{.name = "open"}).count("empty-allowlist") == 1);
    }
    SUBCASE("a plain read-only profile is clean") {
        CHECK(codes(shannot::LocalProfile{.name = "ok", .allowed_commands = {"ls", "cat"}}).empty());
    }
    SUBCASE("bind sources missing on this host: skipped, or failing the run when never skipped") {
        const std::string gone = "/nonexistent-shannot-lint";
        shannot::LocalProfile p{.name = "binds",
                                .allowed_commands = {"ls"},
                                .binds = {{.source = "/usr", .target = "/usr", .required = true},
                                          {.source = gone, .target = "/data"},
                                          {.source = gone, .target = "/opt", .optional = true},
                                          {.source = gone, .target = "/srv", .required = true},
                                          {.source = gone, .target = "/usr/share/doc"},
                                          {.source = "/dev/null", .target = "/usr/share/secret", .optional = true}}};
        const auto findings = shannot::lint_profile(p);
        CHECK(codes(p) ==
              std::multiset<std::string>{"skipped-bind", "missing-source", "missing-source", "optional-ignored"});
        for (const auto& f : findings) {
            CAPTURE(f.message);
            CHECK(f.severity == shannot::LintFinding::Severity::warning);
            if (f.code == "skipped-bind")
                CHECK(f.message == "binds[1].source: " + gone +
                                       " does not exist on this host: a run here skips the bind to /data "
                                       "(\"required\": true makes it an error, \"optional\": true silences this)");
            if (f.code == "optional-ignored")
                CHECK(f.message ==
                      "binds[5]: \"optional\" is ignored: the bind masks part of binds[0] (/usr), and a masking bind "
                      "is never skipped");
        }
        // The same profile for a transport whose sources live elsewhere: only the structural finding.
        CHECK(shannot::lint_profile(p.for_transport<shannot::OpenSshProcessTransport>()).size() == 1);
        // Control: with every source present, nothing about sources is said.
        for (auto& b : p.binds)
            if (b.source == gone) b.source = "/etc";
        CHECK(codes(p) == std::multiset<std::string>{"optional-ignored"});
    }
}
