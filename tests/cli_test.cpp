// SPDX-License-Identifier: MIT
// The shannot command-line tool (examples/cli), run as a real process: exit statuses, output
// bytes, --json, --dry-run, the config file, verify, and a run over a real sshd.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/cli_runner.hpp"
#include "support/sshd_fixture.hpp"

// The tool is built from include/ only; the single-header suite would run the same processes
// again and prove nothing new.
#ifndef SHANNOT_SINGLE_INCLUDE_HPP

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace shannot_test::cli;

}  // namespace

TEST_CASE("cli: runs a command and exits with its status") {
    SHANNOT_REQUIRE_CLI();
    TempDir home;
    const auto tools = write_tool_profile(home).string();

    SUBCASE("`shannot ls /` runs with the default profile, `run --` too") {
        for (const auto& args : {std::vector<std::string>{"ls", "/"}, {"run", "--", "ls", "/"}, {"run", "ls", "/"}}) {
            const auto r = run_cli(home, args);
            CHECK(r.status == 0);
            CHECK(r.out.find("usr\n") != std::string::npos);
            CHECK(r.err.empty());
        }
    }
    SUBCASE("the command's status and signal come through") {
        CHECK(run_cli(home, {"--profile", tools, "sh", "-c", "exit 7"}).status == 7);
        CHECK(run_cli(home, {"--profile", tools, "sh", "-c", "kill -TERM $$"}).status == 128 + SIGTERM);
        CHECK(run_cli(home, {"ls", "/no-such-dir"}).status == 2);  // ls's own status
    }
    SUBCASE("stdout and stderr are written through as bytes, options after COMMAND belong to it") {
        const auto r =
            run_cli(home, {"--profile", tools, "sh", "-c", "printf 'a\\377b\\000c'; printf 'to-err' >&2", "--json"});
        CHECK(r.status == 0);
        CHECK(r.out == std::string("a\xff"
                                   "b\0c",
                                   5));
        CHECK(r.err == "to-err");
    }
    SUBCASE("--env sets variables; the caller's are invisible; --cwd sets the directory") {
        const auto r = run_cli(home,
                               {"--profile", tools, "--env", "FOO=bar baz", "--cwd", "/tmp", "sh", "-c",
                                "echo \"$FOO\"; pwd; echo \"${SHANNOT_CLI_SECRET-unset}\""},
                               {}, {{"SHANNOT_CLI_SECRET", "leaked"}});
        CHECK(r.status == 0);
        CHECK(r.out == "bar baz\n/tmp\nunset\n");
    }
    SUBCASE("stdin is not passed through unless --input says so") {
        CHECK(run_cli(home, {"cat"}, "secret").out.empty());
        CHECK(run_cli(home, {"--input", "-", "cat"}, "secret").out == "secret");
        write_file(home.path / "in.txt", "from a file");
        CHECK(run_cli(home, {"--input", (home.path / "in.txt").string(), "cat"}, "secret").out == "from a file");
        const auto missing = run_cli(home, {"--input", (home.path / "nope").string(), "cat"});
        CHECK(missing.status == 125);
        CHECK(missing.err.find("nope") != std::string::npos);
    }
    SUBCASE("--timeout stops the command with 124 and says so") {
        const auto start = std::chrono::steady_clock::now();
        const auto r = run_cli(home, {"--profile", tools, "--timeout", "0.5", "sleep", "30"});
        CHECK(r.status == 124);
        CHECK(r.err.find("timed out") != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(15));
        CHECK(run_cli(home, {"--profile", tools, "--timeout", "0", "sleep", "0.2"}).status == 0);
    }
    SUBCASE("SIGINT stops the sandboxed command and the tool exits 130") {
        const auto start = std::chrono::steady_clock::now();
        const auto r = run_cli(home, {"--profile", tools, "--timeout", "60", "sleep", "30"}, {}, {},
                               {SIGINT, std::chrono::milliseconds(700)});
        CHECK(r.status == 128 + SIGINT);
        CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(15));
    }
    SUBCASE("--max-output keeps the head and tail and reports what was dropped") {
        const std::vector<std::string> many = {"--profile",
                                               tools,
                                               "--max-output",
                                               "100",
                                               "sh",
                                               "-c",
                                               "i=0; while [ $i -lt 1000 ]; do echo line$i; i=$((i+1)); done"};
        const auto r = run_cli(home, many);
        CHECK(r.status == 0);
        CHECK(r.out.size() == 100);
        CHECK(r.out.rfind("line0\n", 0) == 0);
        CHECK(r.out.substr(r.out.size() - 8) == "line999\n");
        CHECK(r.err.find("dropped") != std::string::npos);
    }
}

TEST_CASE("cli: --json and --dry-run") {
    SHANNOT_REQUIRE_CLI();
    TempDir home;
    const auto tools = write_tool_profile(home).string();

    SUBCASE("--json prints the whole result; text stays text") {
        const auto r = run_cli(home, {"--json", "--profile", tools, "sh", "-c", "echo hello; echo oops >&2; exit 3"});
        CHECK(r.status == 3);
        const auto j = json::parse(r.out);
        CHECK(j["command"] == json::array({"sh", "-c", "echo hello; echo oops >&2; exit 3"}));
        CHECK(j["argv"].at(0).get<std::string>().find("bwrap") != std::string::npos);
        CHECK(j["exit_code"] == 3);
        CHECK(j["signal"] == 0);
        CHECK(j["timed_out"] == false);
        CHECK(j["cancelled"] == false);
        CHECK(j["stdout"] == "hello\n");
        CHECK(j["stdout_encoding"] == "utf-8");
        CHECK(j["stderr"] == "oops\n");
        CHECK(j["stdout_truncated"] == false);
        CHECK(j["stderr_dropped"] == 0);
        CHECK(j["duration_ms"].is_number());
        CHECK(j["status"] == 3);
        CHECK(j["schema_version"] == 1);
        CHECK(j["warnings"] == json::array());
        CHECK(count_lines(r.out) == 1);
    }
    SUBCASE("a bind whose source is missing is skipped and said: on stderr, in \"warnings\", by lint") {
        auto p = shannot_test::test_profile();
        const auto field = "binds[" + std::to_string(p.binds.size()) + "].source";
        p.binds.push_back({.source = "/nonexistent-shannot-cli", .target = "/data"});
        const auto file = home.path / "missing.json";
        write_file(file, p.to_json().dump());
        const std::vector<std::string> probe = {"sh", "-c", "[ -e /data ] && echo present || echo absent"};
        auto args = std::vector<std::string>{"--profile", file.string()};
        args.insert(args.end(), probe.begin(), probe.end());
        auto r = run_cli(home, args);
        CHECK(r.status == 0);
        CHECK(r.out == "absent\n");
        CHECK(r.err ==
              "shannot: warning: " + field +
                  ": /nonexistent-shannot-cli does not exist here: the bind to /data is skipped (\"required\": "
                  "true makes this an error)\n");
        args.insert(args.begin(), "--json");
        r = run_cli(home, args);
        const auto j = json::parse(r.out);
        REQUIRE(j["warnings"].size() == 1);
        CHECK(j["warnings"][0].get<std::string>().rfind(field + ": /nonexistent-shannot-cli does not exist here", 0) ==
              0);
        const auto lint = json::parse(run_cli(home, {"lint", "--json", "--profile", file.string()}).out);
        const auto& findings = lint["findings"];
        CHECK(std::count_if(findings.begin(), findings.end(),
                            [](const json& f) { return f["code"] == "skipped-bind"; }) == 1);
        // "required": the same bind is an error naming the field.
        p.binds.back().required = true;
        write_file(file, p.to_json().dump());
        r = run_cli(home, {"--profile", file.string(), "true"});
        CHECK(r.status == 121);
        CHECK(r.err.find(field + ": /nonexistent-shannot-cli does not exist, and the bind is \"required\"") !=
              std::string::npos);
    }
    SUBCASE("--json: bytes that are not UTF-8 are base64") {
        const auto r = run_cli(home, {"--json", "--profile", tools, "sh", "-c", "printf 'a\\377b'"});
        const auto j = json::parse(r.out);
        CHECK(j["stdout"] == "Yf9i");
        CHECK(j["stdout_encoding"] == "base64");
        CHECK(j["stderr_encoding"] == "utf-8");
    }
    SUBCASE("--json: what counts as UTF-8 (RFC 3629), and base64 tails") {
        const std::pair<const char*, std::optional<const char*>> cases[] = {
            {"\\303\\251", std::nullopt},            // é
            {"\\360\\237\\230\\200", std::nullopt},  // U+1F600
            {"\\355\\240\\200", "7aCA"},             // U+D800, a surrogate
            {"\\300\\257", "wK8="},                  // overlong '/'
            {"\\340\\200\\257", "4ICv"},             // overlong '/', three bytes
            {"\\364\\220\\200\\200", "9JCAgA=="},    // U+110000
            {"\\342\\202", "4oI="},                  // cut short
            {"a\\200", "YYA="},                      // a lone continuation byte
        };
        for (const auto& c : cases) {
            const char* octal = c.first;  // (not a structured binding: clang 14 cannot capture one)
            const auto base64 = c.second;
            const auto j = json::parse(
                run_cli(home, {"--json", "--profile", tools, "sh", "-c", std::string("printf '") + octal + "'"}).out);
            CHECK_MESSAGE(j["stdout_encoding"] == (base64 ? "base64" : "utf-8"), octal);
            if (base64) CHECK_MESSAGE(j["stdout"] == *base64, octal);
        }
        // An argv that is not UTF-8 does not break the JSON output.
        const auto r = run_cli(home, {"--json", "--profile", tools, "sh", "-c", "printf ok", "\xff"});
        CHECK(r.status == 0);
        CHECK(json::parse(r.out)["stdout"] == "ok");
    }
    SUBCASE("--json: timeout, truncation and errors") {
        auto j = json::parse(run_cli(home, {"--json", "--profile", tools, "--timeout", "0.3", "sleep", "10"}).out);
        CHECK(j["timed_out"] == true);
        CHECK(j["status"] == 124);
        j = json::parse(
            run_cli(home, {"--json", "--max-output", "10", "--profile", tools, "sh", "-c", "echo 0123456789abcdef"})
                .out);
        CHECK(j["stdout_truncated"] == true);
        CHECK(j["stdout_dropped"] == 7);
        const auto refused = run_cli(home, {"--json", "sh", "-c", "true"});
        CHECK(refused.status == 126);
        j = json::parse(refused.out);
        CHECK(j["error"]["code"] == "command_refused");
        CHECK(j["error"]["status"] == 126);
        CHECK(j["schema_version"] == 1);
    }
    SUBCASE("--dry-run prints the bwrap argv and runs nothing") {
        const auto marker = home.path / "must-not-exist";
        const auto r = run_cli(home, {"--dry-run", "ls", marker.string()});
        CHECK(r.status == 0);
        const auto argv = json::parse(r.out);
        REQUIRE(argv.is_array());
        CHECK(argv.at(0).get<std::string>().find("bwrap") != std::string::npos);
        const auto dashdash = std::find(argv.begin(), argv.end(), json("--"));
        REQUIRE(dashdash != argv.end());
        CHECK(*(dashdash + 1) == "ls");
        CHECK(std::find(argv.begin(), argv.end(), json("--clearenv")) != argv.end());
        const auto refused = run_cli(home, {"--dry-run", "sh", "-c", "touch " + marker.string()});
        CHECK(refused.status == 126);
        CHECK(refused.out.empty());
        CHECK(refused.err.find("'sh' is not allowed") != std::string::npos);
        CHECK_FALSE(fs::exists(marker));
    }
}

TEST_CASE("cli: --limit replaces a limit for the run; a bad one is a usage error naming it") {
    SHANNOT_REQUIRE_CLI();
    TempDir home;
    const auto tools = write_tool_profile(home).string();
    const std::string marker = home.path.string() + "/ran";

    SUBCASE("an unknown name or a bad value: 125, named, and nothing runs") {
        for (const auto& c : std::vector<std::pair<std::string, std::string>>{
                 {"cpu=1", "'cpu' is not a limit"},
                 {"memory_bytes=lots", "'lots' is not a value for memory_bytes"},
                 {"processes=-1", "'-1' is not a value for processes"},
                 {"processes=0", "'0' is not a value for processes"},
                 {"processes=1K", "'1K' is not a value for processes"},  // suffixes are for bytes
                 {"open_files=99999999999", "--limit open_files: 99999999999 is more than the largest accepted"},
                 {"tmpfs_bytes", "'tmpfs_bytes' has no '='"}}) {
            const auto& [limit, named] = c;
            CAPTURE(c.first);  // not a structured binding: clang 14 cannot capture one
            const auto r = run_cli(home, {"--limit", limit, "--profile", tools, "sh", "-c", "echo ran"});
            CHECK(r.status == 125);
            CHECK(r.out.empty());
            CHECK(count_lines(r.err) == 1);
            CHECK(r.err.find(named) != std::string::npos);
        }
        const auto twice =
            run_cli(home, {"--limit", "processes=9", "--limit", "processes=10", "--profile", tools, "true"});
        CHECK(twice.status == 125);
        CHECK(twice.err.find("processes given twice") != std::string::npos);
    }
    SUBCASE("K, M, G are powers of 1024; --json echoes the limits in force") {
        const auto r = run_cli(home, {"--json", "--limit", "memory_bytes=512M", "--limit", "tmpfs_bytes=2m", "--limit",
                                      "open_files=77", "--profile", tools, "sh", "-c", "ulimit -n; ulimit -v"});
        CHECK(r.status == 0);
        const auto j = json::parse(r.out);
        CHECK(j["stdout"] == "77\n524288\n");
        CHECK(j["limits"]["memory_bytes"] == 512u << 20);
        CHECK(j["limits"]["tmpfs_bytes"] == 2u << 20);
        CHECK(j["limits"]["open_files"] == 77);
        CHECK(j["limits"]["processes"] == shannot::ResourceLimits{}.processes);
        CHECK(j["limit_exceeded"].is_null());
        CHECK(j["limits_mechanism"].get<std::string>().rfind("rlimits", 0) == 0);
        const auto g = run_cli(home, {"--dry-run", "--limit", "tmpfs_bytes=1G", "--profile", tools, "ls"});
        CHECK(g.status == 0);
        CHECK(g.out.find("\"--size\",\"1073741824\",\"--tmpfs\",\"/tmp\"") != std::string::npos);
        CHECK(g.err.find("shannot: limits: memory_bytes=") == 0);
    }
    SUBCASE("a run a limit ended: the limit is named in --json and on stderr") {
        const auto spun = run_cli(
            home, {"--json", "--limit", "cpu_seconds=1", "--profile", tools, "sh", "-c", "while :; do :; done"});
        CHECK(spun.status == 128 + SIGXCPU);
        const auto j = json::parse(spun.out);
        CHECK(j["limit_exceeded"] == "cpu_seconds");
        CHECK(j["limits"]["cpu_seconds"] == 1);
        const auto plain =
            run_cli(home, {"--limit", "cpu_seconds=1", "--profile", tools, "sh", "-c", "while :; do :; done"});
        CHECK(plain.status == 128 + SIGXCPU);
        CHECK(plain.err.find(
                  "shannot: the command exceeded its cpu_seconds limit (1); raise it with --limit cpu_seconds=VALUE") !=
              std::string::npos);
    }
}

TEST_CASE("cli: failures have distinct statuses and one line that suggests the fix") {
    SHANNOT_REQUIRE_CLI();
    TempDir home;
    const auto one_line_with = [](const CliResult& r, const std::string& text) {
        CHECK(count_lines(r.err) == 1);
        CHECK_MESSAGE(r.err.find(text) != std::string::npos, r.err);
        CHECK(r.err.rfind("shannot: ", 0) == 0);
    };
    const auto refused = run_cli(home, {"sh", "-c", "id"});
    CHECK(refused.status == 126);
    one_line_with(refused, "--profile");
    CHECK(refused.out.empty());

    const auto named_like_subcommand = run_cli(home, {"--profile", "minimal", "verify"});
    CHECK(named_like_subcommand.status == 126);
    one_line_with(named_like_subcommand, "put it first");

    const auto no_profile = run_cli(home, {"--profile", "no-such-profile", "ls"});
    CHECK(no_profile.status == 121);
    one_line_with(no_profile, "no-such-profile");

    write_file(home.path / "bad.json", R"({"name": "bad", "allowed_commands": ["ls"], "bindz": []})");
    const auto bad_profile = run_cli(home, {"--profile", (home.path / "bad.json").string(), "ls"});
    CHECK(bad_profile.status == 121);
    one_line_with(bad_profile, "bindz");

    const auto unknown_option = run_cli(home, {"--frobnicate", "ls"});
    CHECK(unknown_option.status == 125);
    one_line_with(unknown_option, "'--frobnicate'");

    const auto bad_env = run_cli(home, {"--env", "9LIVES=x", "ls"});
    CHECK(bad_env.status == 125);
    one_line_with(bad_env, "'9LIVES'");

    CHECK(run_cli(home, {}).status == 125);
    CHECK(run_cli(home, {"--json"}).status == 125);
    CHECK(run_cli(home, {"--timeout", "soon", "ls"}).status == 125);
    CHECK(run_cli(home, {"--cwd", "relative", "ls"}).status == 125);
    CHECK(run_cli(home, {"-i", "/nonexistent-key", "ls"}).status == 125);
    CHECK(run_cli(home, {"--ssh", "-oProxyCommand=x", "ls"}).status == 125);
    CHECK(run_cli(home, {"--ssh", "host:99999", "ls"}).status == 125);
    CHECK(run_cli(home, {"verify", "--nope"}).status == 125);
    CHECK(run_cli(home, {"remote", "frob"}).status == 125);

    const auto no_remote = run_cli(home, {"--target", "nowhere", "ls"});
    CHECK(no_remote.status == 122);
    one_line_with(no_remote, "nowhere");
}

TEST_CASE("cli: --help for every subcommand") {
    SHANNOT_REQUIRE_CLI();
    TempDir home;
    const auto main_help = run_cli(home, {"--help"});
    CHECK(main_help.status == 0);
    for (const char* code : {"120", "121", "122", "123", "124", "125", "126"})
        CHECK(main_help.out.find(code) != std::string::npos);
    for (const auto& sub : {"run", "verify", "export", "lint", "profiles", "remote"}) {
        const auto r = run_cli(home, {sub, "--help"});
        CHECK(r.status == 0);
        CHECK_MESSAGE(
            r.out.find(std::string("shannot ") + (std::string(sub) == "run" ? "[run]" : sub)) != std::string::npos,
            sub);
        CHECK(run_cli(home, {"help", sub}).out == r.out);
    }
    CHECK(run_cli(home, {"remote", "add", "--help"}).out.find("remote add NAME HOST") != std::string::npos);
    CHECK(run_cli(home, {"run", "--help"}).out.find("--max-output") != std::string::npos);
}

/// The subcommand names `shannot --help` lists, in order.
std::vector<std::string> listed_subcommands(const std::string& main_help) {
    std::vector<std::string> names;
    const auto start = main_help.find("\nsubcommands:\n");
    if (start == std::string::npos) return names;
    std::size_t pos = start + 14;
    while (pos < main_help.size() && main_help.compare(pos, 2, "  ") == 0) {
        const auto end = main_help.find('\n', pos);
        const auto line = main_help.substr(pos, end - pos);
        const auto name_end = line.find(' ', 2);
        if (line[2] != ' ') names.push_back(line.substr(2, name_end - 2));  // not a wrapped summary line
        pos = end + 1;
    }
    return names;
}

/// The options an "options:" section of --help lists: {"--timeout", true} (takes a value).
std::vector<std::pair<std::string, bool>> listed_options(const std::string& help) {
    std::vector<std::pair<std::string, bool>> options;
    const auto start = help.find("\noptions:\n");
    if (start == std::string::npos) return options;
    std::size_t pos = start + 10;
    while (pos < help.size() && help[pos] == ' ') {
        const auto end = help.find('\n', pos);
        const auto line = help.substr(pos, end - pos);
        pos = end + 1;
        if (line.rfind("  -", 0) != 0) continue;                    // a wrapped help line
        const auto label = line.substr(2, line.find("  ", 2) - 2);  // "-i, --identity KEY"
        const auto long_start = label.find("--");
        const auto space = label.find(' ', long_start);
        options.emplace_back(label.substr(long_start, space - long_start), space != std::string::npos);
    }
    return options;
}

TEST_CASE("cli: one table drives dispatch, --help, the options each help lists and the hints") {
    SHANNOT_REQUIRE_CLI();
    TempDir home;
    const auto names = listed_subcommands(run_cli(home, {"--help"}).out);
    CHECK(names == std::vector<std::string>{"run", "verify", "export", "lint", "profiles", "remote", "disconnect",
                                            "mcp", "help"});

    SUBCASE("each listed subcommand dispatches, and its help is `help NAME`'s") {
        for (const auto& name : names) {
            const auto r = run_cli(home, {name, "--help"});
            CHECK_MESSAGE(r.status == 0, name);
            CHECK_MESSAGE(r.out.rfind("usage: shannot ", 0) == 0, name);
            CHECK_MESSAGE(run_cli(home, {"help", name}).out == r.out, name);
        }
        const auto unknown = run_cli(home, {"help", "nope"});
        CHECK(unknown.status == 125);
        for (const auto& name : names) CHECK_MESSAGE(unknown.err.find(name) != std::string::npos, name);
    }
    SUBCASE("verbs: each has its own help, `help remote VERB` too, and the parent lists them") {
        const auto remote = run_cli(home, {"remote", "--help"}).out;
        for (const char* verb : {"add", "list", "remove", "group", "ungroup", "test"}) {
            const auto r = run_cli(home, {"remote", verb, "--help"});
            CHECK(r.status == 0);
            CHECK_MESSAGE(r.out.rfind(std::string("usage: shannot remote ") + verb, 0) == 0, verb);
            CHECK_MESSAGE(remote.find(std::string("shannot remote ") + verb) != std::string::npos, verb);
            CHECK(run_cli(home, {"help", "remote", verb}).out == r.out);
        }
        CHECK(run_cli(home, {"help", "remote", "frob"}).status == 125);
        const auto unknown = run_cli(home, {"remote", "frob"});
        CHECK(unknown.err.find("use add, list, remove, group, ungroup or test") != std::string::npos);
    }
    SUBCASE("every option a help lists is accepted, and one it does not list is refused") {
        // (subcommand and verb, arguments that make it stop after parsing: a usage error that is
        // not about the option.)
        const std::vector<std::vector<std::string>> commands = {{"run"},
                                                                {"verify", "extra"},
                                                                {"export", "extra"},
                                                                {"lint", "extra"},
                                                                {"profiles", "extra"},
                                                                {"remote", "add"},
                                                                {"remote", "list", "extra"},
                                                                {"remote", "remove"},
                                                                {"remote", "test"},
                                                                {"mcp", "extra"}};
        std::size_t seen = 0;
        for (const auto& command : commands) {
            auto help_args =
                std::vector<std::string>(command.begin(), command.end() - (command.back() == "extra" ? 1 : 0));
            help_args.push_back("--help");
            const auto options = listed_options(run_cli(home, help_args).out);
            CHECK_MESSAGE(!options.empty(), command[0]);  // -h, --help at least
            for (const auto& option : options) {
                const std::string& name = option.first;  // (not a structured binding: clang 14 cannot capture one)
                if (name == "--help") continue;
                ++seen;
                auto args = command;
                args.push_back(option.second ? name + "=x" : name);
                const auto r = run_cli(home, args);
                CHECK_MESSAGE(r.status == 125, name);
                // The scanner's complaints all say "option '--name'"; the usage error is another one.
                CHECK_MESSAGE(r.err.find("option '") == std::string::npos, command[0] << " " << name << ": " << r.err);
            }
            // Control: an option no help lists is refused, by name.
            auto args = command;
            args.push_back("--frobnicate");
            const auto r = run_cli(home, args);
            CHECK(r.status == 125);
            CHECK_MESSAGE(r.err.find("unknown option '--frobnicate'") != std::string::npos, r.err);
        }
        CHECK(seen >= 20);
    }
    SUBCASE("a command named like any subcommand gets the put-it-first hint") {
        for (const auto& name : names) {
            const auto r = run_cli(home, {"--profile", "minimal", name});
            CHECK_MESSAGE(r.status == 126, name);
            CHECK_MESSAGE(r.err.find("put it first: `shannot " + name + " ...`") != std::string::npos, r.err);
        }
        // Control: another refused command gets the --profile hint.
        const auto other = run_cli(home, {"--profile", "minimal", "sh"});
        CHECK(other.status == 126);
        CHECK(other.err.find("put it first") == std::string::npos);
    }
}

TEST_CASE("cli: export, lint and profiles") {
    SHANNOT_REQUIRE_CLI();
    TempDir home;
    SUBCASE("export prints every field; loading it back gives the built-in") {
        const auto r = run_cli(home, {"export", "--profile", "readonly"});
        CHECK(r.status == 0);
        const auto loaded = shannot::load_profile_from_string<shannot::OpenSshProcessTransport>(r.out);
        REQUIRE(loaded);
        CHECK(*loaded == *shannot::builtin_profile<shannot::OpenSshProcessTransport>("readonly"));
        const auto j = json::parse(r.out);
        for (const char* field :
             {"version", "name", "allowed_commands", "binds", "tmpfs_paths", "environment", "seccomp_profile",
              "network_isolation", "user_namespace_isolation", "additional_args", "limits"})
            CHECK_MESSAGE(j.contains(field), field);
        CHECK(j["limits"]["processes"] == shannot::ResourceLimits{}.processes);
    }
    SUBCASE("lint flags a limit raised far past its default") {
        auto p = *shannot::builtin_profile("minimal");
        p.allowed_commands = {"ls", "cat"};
        p.limits.processes = 100000;
        write_file(home.path / "greedy.json", p.to_json().dump());
        const auto r = run_cli(home, {"lint", "--profile", (home.path / "greedy.json").string()});
        CHECK(r.status == 0);  // a warning
        CHECK(r.out.find("warning high-limit  limits.processes is 100000") != std::string::npos);
    }
    SUBCASE("lint exits 1 on a danger finding, 0 without") {
        const auto dangerous = run_cli(home, {"lint"});  // minimal allows find, which runs commands (-exec)
        CHECK(dangerous.status == 1);
        CHECK(dangerous.out.find("danger  exec-capable") != std::string::npos);
        auto p = *shannot::builtin_profile("minimal");
        p.allowed_commands = {"ls", "cat"};
        write_file(home.path / "calm.json", p.to_json().dump());
        const auto calm = run_cli(home, {"lint", "--profile", (home.path / "calm.json").string()});
        CHECK(calm.status == 0);
        CHECK(calm.out.find("0 finding(s)") != std::string::npos);
    }
    SUBCASE("lint --json: the same findings as one object") {
        const auto dangerous = run_cli(home, {"lint", "--json"});
        CHECK(dangerous.status == 1);
        const auto j = json::parse(dangerous.out);
        CHECK(j["schema_version"] == 1);
        CHECK(j["profile"] == "minimal");
        CHECK(j["danger"] == true);
        REQUIRE(j["findings"].size() == 1);
        CHECK(j["findings"][0]["severity"] == "danger");
        CHECK(j["findings"][0]["code"] == "exec-capable");
        CHECK(j["findings"][0]["message"].get<std::string>().find("'find'") != std::string::npos);
        auto p = *shannot::builtin_profile("minimal");
        p.allowed_commands = {"ls", "cat"};
        write_file(home.path / "calm.json", p.to_json().dump());
        const auto calm = run_cli(home, {"lint", "--json", "--profile", (home.path / "calm.json").string()});
        CHECK(calm.status == 0);
        CHECK(json::parse(calm.out) ==
              json({{"schema_version", 1}, {"profile", "minimal"}, {"findings", json::array()}, {"danger", false}}));
    }
    SUBCASE("profiles lists built-ins and files in the user's folder, which --profile finds by name") {
        auto p = *shannot::builtin_profile("minimal");
        p.name = "mine";
        p.allowed_commands = {"ls"};
        write_file(home.path / "shannot" / "profiles" / "mine.json", p.to_json().dump());
        write_file(home.path / "shannot" / "profiles" / "broken.json", "{");
        const auto r = run_cli(home, {"profiles"});
        CHECK(r.status == 0);
        for (auto name : shannot::builtin_profile_names)
            CHECK(r.out.find("  " + std::string(name)) != std::string::npos);
        CHECK(r.out.find("mine.json  --profile mine") != std::string::npos);
        CHECK(r.out.find("broken.json") != std::string::npos);
        CHECK(r.out.find("INVALID") != std::string::npos);
        CHECK(run_cli(home, {"--profile", "mine", "ls", "/"}).status == 0);
        CHECK(run_cli(home, {"--profile", "mine", "cat", "/etc/os-release"}).status == 126);

        const auto listed = run_cli(home, {"profiles", "--json"});
        CHECK(listed.status == 0);
        const auto j = json::parse(listed.out);
        CHECK(j["schema_version"] == 1);
        CHECK(j["default"] == "minimal");
        std::vector<std::string> names;
        for (const auto& b : j["builtin"]) names.push_back(b["name"]);
        CHECK(names ==
              std::vector<std::string>(shannot::builtin_profile_names.begin(), shannot::builtin_profile_names.end()));
        CHECK(j["builtin"][0]["default"] == true);
        CHECK(j["builtin"][1]["default"] == false);
        CHECK(j["builtin"][0]["allowed_commands"] == json(shannot::builtin_profile("minimal")->allowed_commands));
        CHECK(j["folders"][0] == json({{"label", "user"}, {"path", (home.path / "shannot" / "profiles").string()}}));
        std::map<std::string, json> user_files;
        for (const auto& f : j["files"])
            if (f["folder"] == "user") user_files[fs::path(f["path"].get<std::string>()).filename().string()] = f;
        REQUIRE(user_files.size() == 2);
        CHECK(user_files["mine.json"]["valid"] == true);
        CHECK(user_files["mine.json"]["name"] == "mine");
        CHECK(user_files["mine.json"]["profile_arg"] == "mine");
        CHECK(user_files["mine.json"]["shadowed"] == false);
        CHECK(user_files["broken.json"]["valid"] == false);
        CHECK_FALSE(user_files["broken.json"]["error"].get<std::string>().empty());
    }
}

TEST_CASE("cli: remote add, list, remove and the config file") {
    SHANNOT_REQUIRE_CLI();
    TempDir home;
    write_file(home.path / "key", "not really a key\n");
    const auto key = (home.path / "key").string();

    auto r = run_cli(home, {"remote", "add", "db-1", "db.example.org", "--user", "admin", "--port", "2222", "--key",
                            key, "--profile", "diagnostics"});
    CHECK(r.status == 0);
    CHECK(run_cli(home, {"remote", "add", "web.2", "ops@web:22"}).status == 0);

    struct stat st {};
    REQUIRE(::stat(home.config_file().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat(home.config_file().parent_path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    const auto stored = json::parse(shannot_test::read_text(home.config_file()));
    CHECK(
        stored["remotes"]["db-1"] ==
        json(
            {{"host", "db.example.org"}, {"user", "admin"}, {"port", 2222}, {"key", key}, {"profile", "diagnostics"}}));
    for (const auto& entry : fs::directory_iterator(home.config_file().parent_path()))
        CHECK_MESSAGE(entry.path().filename() == "config.json", "left behind: " << entry.path());

    r = run_cli(home, {"remote", "list"});
    CHECK(r.status == 0);
    CHECK(r.out.find("db-1  admin@db.example.org:2222") != std::string::npos);
    CHECK(r.out.find("web.2  ops@web:22") != std::string::npos);
    r = run_cli(home, {"remote", "list", "--json"});
    CHECK(r.status == 0);
    const auto listed = json::parse(r.out);
    CHECK(listed["schema_version"] == 1);
    CHECK(listed["config_file"] == home.config_file().string());
    CHECK(listed["remotes"] == stored["remotes"]);
    CHECK(listed["remotes"].size() == 2);

    const auto duplicate = run_cli(home, {"remote", "add", "db-1", "other"});
    CHECK(duplicate.status == 125);
    CHECK(duplicate.err.find("remote remove db-1") != std::string::npos);
    CHECK(run_cli(home, {"remote", "add", "bad/name", "h"}).status == 125);
    CHECK(run_cli(home, {"remote", "add", "--", "-x", "h"}).status == 125);
    CHECK(run_cli(home, {"remote", "add", "x", "h", "--key", (home.path / "missing").string()}).status == 125);
    CHECK(run_cli(home, {"remote", "add", "x", "h", "--profile", "no-such"}).status == 121);
    CHECK(run_cli(home, {"remote", "add", "x"}).status == 125);

    CHECK(run_cli(home, {"remote", "remove", "web.2"}).status == 0);
    CHECK(run_cli(home, {"remote", "list"}).out.find("web.2") == std::string::npos);
    CHECK(run_cli(home, {"remote", "remove", "web.2"}).status == 122);
    REQUIRE(::stat(home.config_file().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    SUBCASE("a malformed config file is an error naming the file and the problem") {
        write_file(home.config_file(), R"({"remotes": {"a": {"host": "h", "prot": 22}}})");
        for (const auto& args :
             {std::vector<std::string>{"remote", "list"}, {"--target", "a", "ls"}, {"remote", "add", "b", "h"}}) {
            const auto bad = run_cli(home, args);
            CHECK(bad.status == 122);
            CHECK(bad.err.find(home.config_file().string()) != std::string::npos);
            CHECK(bad.err.find("remotes.a.prot") != std::string::npos);
        }
        write_file(home.config_file(), R"({"remotes": )");
        const auto syntax = run_cli(home, {"remote", "list"});
        CHECK(syntax.status == 122);
        CHECK(syntax.err.find("not valid JSON") != std::string::npos);
        CHECK(run_cli(home, {"ls", "/"}).status == 0);  // a local run never reads the config
    }
}

TEST_CASE("cli: verify") {
    SHANNOT_REQUIRE_CLI();
    TempDir home;
    SUBCASE("passes on this host with the default profile") {
        const auto r = run_cli(home, {"verify"});
        CHECK_MESSAGE(r.status == 0, r.out << r.err);
        CHECK(count_lines(r.out) >= 7);
        for (const char* check : {"ok    an allowed command runs", "ok    a write to a read-only path fails",
                                  "ok    the network is unreachable", "ok    only the loopback interface exists",
                                  "ok    the caller's environment is invisible"})
            CHECK_MESSAGE(r.out.find(check) != std::string::npos, check);
        CHECK(r.out.find("whose allowlist adds them") != std::string::npos);
        CHECK(r.out.find("FAIL") == std::string::npos);
    }
    SUBCASE("--json: the same checks as one object") {
        const auto r = run_cli(home, {"verify", "--json"});
        CHECK_MESSAGE(r.status == 0, r.out << r.err);
        const auto j = json::parse(r.out);
        CHECK(j["schema_version"] == 1);
        CHECK(j["profile"] == "minimal");
        CHECK(j["where"] == "this host");
        CHECK(j["transport"] == "local");
        CHECK(j["ok"] == true);
        CHECK(j["run"] == 5);
        CHECK(j["passed"] == 5);
        CHECK(j["warnings"] == json::array());
        CHECK(j["probe_tools_added"] == json({"sh", "bash"}));  // minimal allows cat
        REQUIRE(j["checks"].size() == 5);
        CHECK(j["checks"][2]["title"] == "the network is unreachable");
        for (const auto& c : j["checks"]) CHECK_MESSAGE(c["ok"] == true, c.dump());
        // Control: a profile that shares the network fails those checks, and says so in the JSON.
        const auto bad = run_cli(home, {"verify", "--json", "--profile", write_tool_profile(home, false).string()});
        CHECK(bad.status == 1);
        const auto b = json::parse(bad.out);
        CHECK(b["ok"] == false);
        CHECK(b["checks"][2]["ok"] == false);
        CHECK(b["passed"] == 3);
    }
    SUBCASE("fails when the profile shares the host's network") {
        const auto r = run_cli(home, {"verify", "--profile", write_tool_profile(home, false).string()});
        CHECK(r.status == 1);
        CHECK(r.out.find("FAIL  the network is unreachable") != std::string::npos);
        CHECK(r.out.find("FAIL  only the loopback interface exists") != std::string::npos);
        CHECK(r.out.find("ok    the caller's environment is invisible") != std::string::npos);
    }
}

TEST_CASE("cli: runs over ssh") {
    SHANNOT_REQUIRE_CLI();
    SHANNOT_REQUIRE_SSHD();
    const auto* sshd = shannot_test::shared_sshd();
    TempDir home;
    const auto key = (sshd->dir() / "client_key").string();
    const auto known_hosts = (sshd->dir() / "known_hosts").string();
    const auto address = shannot_test::SshdFixture::user() + "@127.0.0.1:" + std::to_string(sshd->port());
    const std::vector<std::string> ssh = {"--ssh", address, "-i", key, "--known-hosts", known_hosts};

    auto args = ssh;
    args.insert(args.end(), {"ls", "/"});
    auto r = run_cli(home, args);
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(r.out.find("usr\n") != std::string::npos);

    args = ssh;
    args.insert(args.end(), {"--json", "cat", "/no-such-file"});
    r = run_cli(home, args);
    CHECK(r.status == 1);
    const auto j = json::parse(r.out);
    CHECK(j["transport"] == "ssh");
    CHECK(j["exit_code"] == 1);
    CHECK(j["stderr"].get<std::string>().find("no-such-file") != std::string::npos);
    CHECK(j["argv"].at(0) == "ssh");

    SUBCASE("a named remote: --target and remote test") {
        REQUIRE(
            run_cli(home, {"remote", "add", "fixture", address, "--key", key, "--known-hosts", known_hosts}).status ==
            0);
        r = run_cli(home, {"--target", "fixture", "ls", "/"});
        CHECK_MESSAGE(r.status == 0, r.err);
        CHECK(r.out.find("usr\n") != std::string::npos);
        r = run_cli(home, {"remote", "test", "fixture"});
        CHECK_MESSAGE(r.status == 0, r.err);
        CHECK(r.out.rfind("ok    remote 'fixture'", 0) == 0);
    }
    SUBCASE("verify on the remote") {
        args = ssh;
        args.insert(args.begin(), "verify");
        r = run_cli(home, args);
        CHECK_MESSAGE(r.status == 0, r.out << r.err);
        CHECK(r.out.find("ok    only the loopback interface exists") != std::string::npos);
        CHECK(r.out.find("network is unreachable") == std::string::npos);  // the listener check is local only
    }
    SUBCASE("a transport failure exits 123") {
        const auto closed = "127.0.0.1:" + std::to_string(shannot_test::free_port());
        r = run_cli(home, {"--ssh", closed, "-i", key, "--known-hosts", known_hosts, "ls", "/"});
        CHECK(r.status == 123);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find("sshd") != std::string::npos);  // the hint
    }
}

#endif  // SHANNOT_SINGLE_INCLUDE_HPP
