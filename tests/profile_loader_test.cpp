// SPDX-License-Identifier: MIT
// Profile loading: Shannot's format, strictness, and a table of malformed profiles with messages.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/fake_transport.hpp"

namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir() {
        char templ[] = "/tmp/shannot-profile-XXXXXX";
        path = ::mkdtemp(templ);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path write(const std::string& name, const std::string& text) const {
        fs::create_directories((path / name).parent_path());
        std::ofstream(path / name, std::ios::binary) << text;
        return path / name;
    }
};

// Profiles are validated for the ssh transport here: no local existence checks, pure structure.
using P = shannot::SandboxProfile<shannot_test::RemoteLikeTransport>;

shannot::Result<P> load(const std::string& text) {
    return shannot::load_profile_from_string<shannot_test::RemoteLikeTransport>(text);
}

}  // namespace

TEST_CASE("load_profile_from_path") {
    TempDir dir;

    SUBCASE("a profile written for Shannot loads unchanged and means the same") {
        // Shannot's keys only, relative paths resolved against the file's folder.
        dir.write("data/readme.txt", "x");
        const auto file = dir.write("profiles/shannot.json", R"({
            "name": "shannot-style",
            "allowed_commands": ["/usr/bin/ls", "cat"],
            "binds": [{"source": "/usr", "target": "/usr", "read_only": true, "create_target": true},
                      {"source": "../data", "target": "/data"}],
            "tmpfs_paths": ["/tmp", "scratch"],
            "environment": {"PATH": "/usr/bin"},
            "seccomp_profile": "filter.bpf",
            "network_isolation": true,
            "additional_args": ["--hostname", "sandbox"]
        })");
        dir.write("profiles/filter.bpf", "");
        auto p = shannot::load_profile_from_path(file);
        REQUIRE_MESSAGE(p, (p ? "" : p.error().message));
        CHECK(p->name == "shannot-style");
        CHECK(p->allowed_commands == std::vector<std::string>{"/usr/bin/ls", "cat"});
        REQUIRE(p->binds.size() == 2);
        CHECK(p->binds[1].source == (dir.path / "data").string());
        CHECK(p->binds[1].target == "/data");
        CHECK(p->binds[1].read_only);
        CHECK_FALSE(p->binds[1].optional);
        CHECK(p->tmpfs_paths == std::vector<std::string>{"/tmp", (dir.path / "profiles/scratch").string()});
        CHECK(p->seccomp_profile == (dir.path / "profiles/filter.bpf").string());
        CHECK(p->network_isolation);
        CHECK(p->user_namespace_isolation);
        CHECK(p->additional_args == std::vector<std::string>{"--hostname", "sandbox"});
    }
    SUBCASE("a missing file, a folder and a missing local bind source that may not be skipped are clear errors") {
        auto missing = shannot::load_profile_from_path(dir.path / "nope.json");
        REQUIRE_FALSE(missing);
        CHECK(missing.error().message ==
              (dir.path / "nope.json").string() + ": cannot open: No such file or directory");
        auto folder = shannot::load_profile_from_path(dir.path);
        REQUIRE_FALSE(folder);
        CHECK(folder.error().message.find("is a directory") != std::string::npos);
        const auto gone = (dir.path / "gone").string();
        const auto file =
            dir.write("p.json", R"({"name": "x", "binds": [{"source": "gone", "target": "/g", "required": true}]})");
        auto local = shannot::load_profile_from_path(file);  // the local transport checks sources exist
        REQUIRE_FALSE(local);
        CHECK(local.error().message ==
              file.string() + ": binds[0].source: " + gone + " does not exist, and the bind is \"required\"");
        auto remote = shannot::load_profile_from_path<shannot_test::RemoteLikeTransport>(file);  // lives on the remote
        CHECK(remote);
        // A bind inside another mount masks part of it: never skipped, whatever it says.
        for (const char* flags : {"", R"(, "optional": true)"}) {
            CAPTURE(flags);
            const auto masking = dir.write(
                "m.json", std::string(R"({"name": "x", "tmpfs_paths": ["/w"], "binds": [)") +
                              R"({"source": "/usr", "target": "/usr"}, {"source": "gone", "target": "/usr/share")" +
                              flags + "}]}");
            auto m = shannot::load_profile_from_path(masking);
            REQUIRE_FALSE(m);
            CHECK(m.error().message ==
                  masking.string() + ": binds[1].source: " + gone +
                      " does not exist, and the bind masks part of binds[0] (/usr): a masking bind is "
                      "never skipped, as that would show what it hides");
        }
        const auto in_tmpfs = dir.write(
            "t.json", R"({"name": "x", "tmpfs_paths": ["/w"], "binds": [{"source": "gone", "target": "/w/x"}]})");
        auto t = shannot::load_profile_from_path(in_tmpfs);
        REQUIRE_FALSE(t);
        CHECK(t.error().message.find("masks part of tmpfs_paths[0] (/w)") != std::string::npos);
        // Control: the same bind, on its own, is skipped at run time (local_sandbox_test), not refused here.
        const auto alone =
            dir.write("a.json", R"({"name": "x", "binds": [{"source": "gone", "target": "/usr/share"}]})");
        CHECK(shannot::load_profile_from_path(alone));
    }
}

TEST_CASE("SandboxProfile round trip") {
    SUBCASE("to_json exports every field and loads back equal, for every built-in") {
        for (auto name : shannot::builtin_profile_names) {
            CAPTURE(name);
            auto p = shannot::builtin_profile<shannot_test::RemoteLikeTransport>(name);
            REQUIRE(p);
            auto again = load(p->to_json().dump());
            REQUIRE(again);
            CHECK(*again == *p);
        }
    }
    SUBCASE("a profile using every field survives the round trip") {
        P p{.name = "every-field",
            .allowed_commands = {"ls", "/usr/bin/*"},
            .binds =
                {{.source = "/srv", .target = "/data", .read_only = false, .create_target = false, .optional = true}},
            .tmpfs_paths = {"/tmp", "/run"},
            .environment = {{"A", "1"}, {"EMPTY", ""}},
            .seccomp_profile = "/etc/shannot/filter.bpf",
            .network_isolation = false,
            .user_namespace_isolation = false,
            .additional_args = {"--hostname", "h"},
            .syscall_filter = "default",
            .syscall_filter_allow = {"unix_sockets", "personality"}};
        const auto json = p.to_json();
        for (const char* key :
             {"name", "allowed_commands", "binds", "tmpfs_paths", "environment", "seccomp_profile", "network_isolation",
              "user_namespace_isolation", "additional_args", "version", "syscall_filter", "syscall_filter_allow"})
            CHECK_MESSAGE(json.contains(key), key);
        auto again = load(json.dump());
        REQUIRE(again);
        CHECK(*again == p);
        P off{.name = "off", .syscall_filter = "none"};
        CHECK(off.to_json()["syscall_filter"] == "none");
        CHECK(*load(off.to_json().dump()) == off);
    }
    SUBCASE("the built-in syscall filter is on unless the profile says \"none\"") {
        const auto plain = load(R"({"name": "x"})");
        REQUIRE(plain);
        CHECK(plain->syscall_filter == "default");
        CHECK(plain->syscall_filter_allow.empty());
        CHECK(plain->to_json()["syscall_filter"] == "default");
        CHECK(plain->to_json()["syscall_filter_allow"] == nlohmann::json::array());
        CHECK(*load(R"({"name": "x", "syscall_filter": "default"})") == *plain);
        const auto off = load(R"({"name": "x", "syscall_filter": "none"})");
        REQUIRE(off);
        CHECK(off->syscall_filter == "none");
        const auto relaxed = load(R"({"name": "x", "syscall_filter_allow": ["unix_sockets", "netlink_sockets"]})");
        REQUIRE(relaxed);
        CHECK(relaxed->syscall_filter_allow == std::vector<std::string>{"unix_sockets", "netlink_sockets"});
        for (auto name : shannot::builtin_profile_names)
            CHECK(shannot::builtin_profile(name)->syscall_filter == "default");
    }
    SUBCASE("the shipped JSON files equal the built-ins") {
        const char* root = std::getenv("SHANNOT_SOURCE_ROOT");
        REQUIRE_MESSAGE(root, "SHANNOT_SOURCE_ROOT is set by tests/meson.build");
        for (auto name : shannot::builtin_profile_names) {
            CAPTURE(name);
            auto file = shannot::load_profile_from_path<shannot_test::RemoteLikeTransport>(
                fs::path(root) / "examples" / "profiles" / (std::string(name) + ".json"));
            REQUIRE_MESSAGE(file, (file ? "" : file.error().message));
            CHECK_MESSAGE(*file == *shannot::builtin_profile<shannot_test::RemoteLikeTransport>(name),
                          "examples/profiles/", name, ".json differs from builtin_profile(\"", name, "\")");
        }
    }
}

TEST_CASE("load_profile_from_string refuses malformed profiles, naming the field") {
    struct Case {
        std::string text;
        std::string message;
    };
    const std::string big(shannot::max_profile_bytes + 1, ' ');
    std::string deep = R"({"name": "x", "additional_args": )" + std::string(10000, '[') + std::string(10000, ']') + "}";
    const std::vector<Case> cases = {
        {"", "empty document: expected a JSON object"},
        {"  \n\t ", "empty document: expected a JSON object"},
        {"[]", "<root>: must be a JSON object, not array"},
        {"\"profile\"", "<root>: must be a JSON object, not string"},
        {"42", "<root>: must be a JSON object, not number"},
        {"null", "<root>: must be a JSON object, not null"},
        {"{}", "name: is required"},
        {R"({"name": ""})", "name: must be a non-empty string"},
        {R"({"name": 7})", "name: must be a string"},
        {R"({"name": "a\u0000b"})", "name: contains a NUL byte"},
        {R"({"name": "x", "nmae": "y"})", "nmae: unknown key (a misspelt key would otherwise fall back to a default)"},
        {R"({"name": "x", "name": "y"})", "name: duplicate key"},
        {R"({"name": "x", "binds": [{"source": "/a", "target": "/a", "source": "/b"}]})",
         "binds[0].source: duplicate key"},
        {R"({"name": "x",)",
         "not valid JSON at byte 14: syntax error while parsing object key - unexpected end of input; expected string "
         "literal"},
        {R"({"name": "x"} trailing)",
         "not valid JSON at byte 17: syntax error while parsing value - invalid literal; last read: '\"x\"} tra'; "
         "expected end of input"},
        {"{\"name\": \"\xff\"}",
         "not valid JSON at byte 11: syntax error while parsing value - invalid string: ill-formed UTF-8 byte; last "
         "read: '\"\xff'"},
        {deep, "nesting deeper than 64 levels"},
        {big, "profile is too large (1048577 bytes; the limit is 1048576)"},
        {R"({"name": "x", "version": 2})", "version: profile format 2 is newer than this library reads (1)"},
        {R"({"name": "x", "version": "1"})", "version: must be a positive integer"},
        {R"({"name": "x", "allowed_commands": "ls"})", "allowed_commands: must be an array of strings"},
        {R"({"name": "x", "allowed_commands": ["ls", 3]})", "allowed_commands[1]: must be a string"},
        {R"({"name": "x", "allowed_commands": [""]})", "allowed_commands[0]: must be a non-empty string"},
        {R"({"name": "x", "allowed_commands": ["bin/ls"]})",
         "allowed_commands[0]: must be a bare command name or an absolute path"},
        {R"({"name": "x", "allowed_commands": ["/usr/../bin/sh"]})",
         "allowed_commands[0]: must not contain '.', '..' or empty components"},
        {R"({"name": "x", "binds": {}})", "binds: must be an array of bind objects"},
        {R"({"name": "x", "binds": ["/usr"]})", "binds[0]: must be an object with \"source\" and \"target\""},
        {R"({"name": "x", "binds": [{"target": "/a"}]})", "binds[0].source: is required"},
        {R"({"name": "x", "binds": [{"source": "/a"}]})", "binds[0].target: is required"},
        {R"({"name": "x", "binds": [{"source": "/a", "target": "/a", "readonly": true}]})",
         "binds[0].readonly: unknown key (expected source, target, read_only, create_target, optional, required)"},
        {R"({"name": "x", "binds": [{"source": "/a", "target": "/a", "required": 1}]})",
         "binds[0].required: must be true or false"},
        {R"({"name": "x", "binds": [{"source": "/a", "target": "/a"}, {"source": "/b", "target": "/b", "optional": true, "required": true}]})",
         "binds[1]: \"optional\" and \"required\" are both true; a missing source cannot be both skipped and an error: "
         "keep one"},
        {R"({"name": "x", "binds": [{"source": "/a", "target": "/a", "read_only": "yes"}]})",
         "binds[0].read_only: must be true or false"},
        {R"({"name": "x", "binds": [{"source": "/a", "target": "/a"}, {"source": "/b", "target": "/b"}, {"source": "rel", "target": "/c"}]})",
         "binds[2].source: must be an absolute path (no profile folder to resolve 'rel' against)"},
        {R"({"name": "x", "binds": [{"source": "/a", "target": "rel"}]})", "binds[0].target: must be an absolute path"},
        {R"({"name": "x", "binds": [{"source": "/a/../etc", "target": "/a"}]})",
         "binds[0].source: must not contain '.' or '..' components"},
        {R"({"name": "x", "binds": [{"source": "/proc", "target": "/p", "read_only": false}]})",
         "binds[0]: a writable bind of /proc would expose host /proc; make it read_only"},
        {R"({"name": "x", "binds": [{"source": "/sys/fs", "target": "/s", "read_only": false}]})",
         "binds[0]: a writable bind of /sys/fs would expose host /sys; make it read_only"},
        {R"({"name": "x", "binds": [{"source": "/", "target": "/host", "read_only": false}]})",
         "binds[0]: a writable bind of / would expose host /proc; make it read_only"},
        {R"({"name": "x", "binds": [{"source": "/srv", "target": "/dev/shm", "read_only": false}]})",
         "binds[0]: a writable bind onto /dev/shm is refused; make it read_only"},
        {R"({"name": "x", "binds": [{"source": "/srv", "target": "/proc/sys"}]})",
         "binds[0].target: paths below /proc are managed by the sandbox"},
        {R"({"name": "x", "binds": [{"source": "/a", "target": "/d"}], "tmpfs_paths": ["/d/"]})",
         "tmpfs_paths[0]: /d is already mounted by binds[0].target"},
        {R"({"name": "x", "tmpfs_paths": "/tmp"})", "tmpfs_paths: must be an array of strings"},
        {R"({"name": "x", "tmpfs_paths": ["/tmp\u0000x"]})", "tmpfs_paths[0]: contains a NUL byte"},
        {R"({"name": "x", "tmpfs_paths": ["/"]})", "tmpfs_paths[0]: a tmpfs on / would hide every other mount"},
        {R"({"name": "x", "tmpfs_paths": ["/proc"]})", "tmpfs_paths[0]: /proc is managed by the sandbox"},
        {R"({"name": "x", "environment": []})", "environment: must be an object mapping names to strings"},
        {R"({"name": "x", "environment": {"PATH": 1}})", "environment.PATH: must be a string"},
        {R"({"name": "x", "environment": {"A B": "1"}})",
         "environment.A B: not a valid variable name (want [A-Za-z_][A-Za-z0-9_]*)"},
        {R"({"name": "x", "environment": {"LD_PRELOAD=x": "1"}})",
         "environment.LD_PRELOAD=x: not a valid variable name (want [A-Za-z_][A-Za-z0-9_]*)"},
        {R"({"name": "x", "environment": {"V": "a\u0000b"}})", "environment.V: contains a NUL byte"},
        {R"({"name": "x", "seccomp_profile": 3})", "seccomp_profile: must be a string"},
        {R"({"name": "x", "seccomp_profile": "rel.bpf"})",
         "seccomp_profile: must be an absolute path (no profile folder to resolve 'rel.bpf' against)"},
        {R"({"name": "x", "syscall_filter": "strict"})",
         "syscall_filter: unknown value 'strict' (expected \"default\" or \"none\")"},
        {R"({"name": "x", "syscall_filter": "None"})",
         "syscall_filter: unknown value 'None' (expected \"default\" or \"none\")"},
        {R"({"name": "x", "syscall_filter": ""})", "syscall_filter: must be a non-empty string"},
        {R"({"name": "x", "syscall_filter": false})", "syscall_filter: must be a string"},
        {R"({"name": "x", "syscall_filter_allow": ["unix_sockets", "docker"]})",
         "syscall_filter_allow[1]: no syscall filter group named 'docker' (groups: io_uring, ptrace, bpf, perf_events, "
         "userfaultfd, "
         "keyring, mount, namespaces, unix_sockets, netlink_sockets, other_sockets, kernel_modules, personality)"},
        {R"({"name": "x", "syscall_filter_allow": "unix_sockets"})",
         "syscall_filter_allow: must be an array of strings"},
        {R"({"name": "x", "syscall_filter_allow": [1]})", "syscall_filter_allow[0]: must be a string"},
        {R"({"name": "x", "syscall_filter": "none", "syscall_filter_allow": ["ptrace"]})",
         "syscall_filter_allow: relaxes groups of the default filter, which \"syscall_filter\": \"none\" turns off; "
         "remove one of them"},
        {R"({"name": "x", "syscall_filtre": "none"})",
         "syscall_filtre: unknown key (a misspelt key would otherwise fall back to a default)"},
        {R"({"name": "x", "network_isolation": "false"})", "network_isolation: must be true or false"},
        {R"({"name": "x", "user_namespace_isolation": 0})", "user_namespace_isolation: must be true or false"},
        {R"({"name": "x", "additional_args": ["--"]})", "additional_args[0]: '--' would end bwrap's options early"},
        {R"({"name": "x", "additional_args": [""]})", "additional_args[0]: must be a non-empty string"},
        {R"({"name": "x", "additional_args": [["--x"]]})", "additional_args[0]: must be a string"},
    };
    CHECK(cases.size() >= 40);
    for (const auto& c : cases) {
        CAPTURE(c.text.substr(0, 120));
        auto p = load(c.text);
        REQUIRE_FALSE(p);
        CHECK(p.error().code == shannot::errc::invalid_profile);
        CHECK(p.error().message == c.message);
    }
}
