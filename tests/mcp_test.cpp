// SPDX-License-Identifier: MIT
// `shannot mcp`'s JSON-RPC layer (examples/cli/mcp/) as units: line splitting under a cap, ids
// read from requests too long to parse, message checks, protocol envelopes, cutting output on
// whole characters, the run outputSchema against result_to_json; and the subcommand's options
// and `mcp config`, run as a process. tests/mcp/*.mjs drive the server with the official clients.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../examples/cli/encoding.hpp"
#include "../examples/cli/mcp/fit.hpp"
#include "../examples/cli/mcp/jsonrpc.hpp"
#include "../examples/cli/mcp/protocol.hpp"
#include "../examples/cli/mcp/schemas.hpp"

using nlohmann::json;
namespace mcp = shannot_cli::mcp;

namespace {

struct Lines {
    std::vector<std::string> text;
    std::vector<mcp::Line> raw;
    std::vector<std::string> heads, tails;
};

/// Feeds `input` in chunks of `chunk` bytes and collects what comes out.
Lines split(const std::string& input, std::size_t max, std::size_t chunk) {
    mcp::LineSplitter splitter(max);
    Lines out;
    const auto on_line = [&](const mcp::Line& line) {
        out.raw.push_back(line);
        out.text.emplace_back(line.too_long ? "<too long>" : std::string(line.text));
        out.heads.emplace_back(line.head);
        out.tails.emplace_back(line.tail);
    };
    for (std::size_t i = 0; i < input.size(); i += chunk)
        splitter.feed(std::string_view(input).substr(i, chunk), on_line);
    splitter.finish(on_line);
    return out;
}

}  // namespace

TEST_CASE("mcp jsonrpc: lines are split under a cap; a longer one is reported, not kept") {
    SUBCASE("whatever the chunks, the same lines; \\r\\n and a last line without \\n") {
        const std::string input = "{\"a\":1}\r\n\n{\"b\":2}\n{\"c\":3}";
        for (std::size_t chunk : {1u, 2u, 5u, 100u}) {
            const auto lines = split(input, 64, chunk);
            CHECK(lines.text == std::vector<std::string>{"{\"a\":1}", "", "{\"b\":2}", "{\"c\":3}"});
        }
    }
    SUBCASE("a line at the cap passes; one byte more is too long, then the next line is read") {
        const std::string at_cap(100, 'x');
        CHECK(split(at_cap + "\nok\n", 100, 7).text == std::vector<std::string>{at_cap, "ok"});
        const auto over = split(at_cap + "y\nok\n", 100, 7);
        REQUIRE(over.text.size() == 2);
        CHECK(over.raw[0].too_long);
        CHECK(over.raw[0].size == 101);
        CHECK(over.text[1] == "ok");
    }
    SUBCASE("a 50 MB line: its size, its first 4 KiB and last 256 bytes") {
        std::string big = "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{\"s\":\"" + std::string(50'000'000, 'A') +
                          "\"},\"id\":77}";
        const auto lines = split(big + "\n{}\n", 4u << 20, 65536);
        REQUIRE(lines.raw.size() == 2);
        CHECK(lines.raw[0].too_long);
        CHECK(lines.raw[0].size == big.size());
        CHECK(lines.heads[0] == big.substr(0, 4096));
        CHECK(lines.tails[0] == big.substr(big.size() - 256));
        CHECK(mcp::recover_id(lines.heads[0], lines.tails[0]) == 77);
        CHECK(lines.text[1] == "{}");
    }
}

TEST_CASE("mcp jsonrpc: the id of a request too long to parse") {
    // The TypeScript SDK writes the id last; others write it first.
    CHECK(mcp::recover_id("{\"method\":\"tools/call\",\"params\":{", "\"xyz\"}},\"jsonrpc\":\"2.0\",\"id\":12}") == 12);
    CHECK(mcp::recover_id("{\"jsonrpc\":\"2.0\",\"id\":\"req-1\",\"method\":\"tools/call\",\"params\":{\"a\"",
                          "AAAA\"}}") == "req-1");
    CHECK(mcp::recover_id("", "...\",\"id\" : \"a\\\"b\" }\n") == "a\"b");
    CHECK(mcp::recover_id("{ \"jsonrpc\" : \"2.0\" , \"id\" : -3 , \"params\": {", "AAA") == -3);
    // An "id" inside params is not the request's id.
    CHECK(mcp::recover_id("{\"params\":{\"id\":5,\"x\":\"", "AAA\"}}").is_null());
    CHECK(mcp::recover_id("{\"jsonrpc\":\"2.0\",\"params\":{\"id\":5", "AAA\",\"id\":9}}").is_null());
    CHECK(mcp::recover_id("{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1}", "AAA\"}").is_null());
    CHECK(mcp::recover_id("garbage", "garbage").is_null());
}

TEST_CASE("mcp jsonrpc: message checks") {
    using Kind = mcp::Incoming::Kind;
    auto c = mcp::classify(json::parse(R"({"jsonrpc":"2.0","id":1,"method":"ping"})"));
    CHECK(c.kind == Kind::request);
    CHECK(c.params == json::object());
    c = mcp::classify(json::parse(R"({"jsonrpc":"2.0","method":"notifications/initialized","params":{}})"));
    CHECK(c.kind == Kind::notification);
    CHECK(mcp::classify(json::parse(R"({"jsonrpc":"2.0","id":"a","result":{}})")).kind == Kind::response);
    const auto invalid = [](const char* text, int code, json id = nullptr) {
        const auto r = mcp::classify(json::parse(text));
        CHECK_MESSAGE(r.kind == Kind::invalid, text);
        CHECK_MESSAGE(r.error.code == code, text);
        CHECK_MESSAGE(r.id == id, text);
    };
    invalid(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", mcp::rpc_error::invalid_request);
    invalid(R"(5)", mcp::rpc_error::invalid_request);
    invalid(R"({"id":1,"method":"ping"})", mcp::rpc_error::invalid_request, 1);
    invalid(R"({"jsonrpc":"2.0","id":1,"method":7})", mcp::rpc_error::invalid_request, 1);
    invalid(R"({"jsonrpc":"2.0","id":true,"method":"ping"})", mcp::rpc_error::invalid_request);
    invalid(R"({"jsonrpc":"2.0","id":null,"method":"ping"})", mcp::rpc_error::invalid_request);
    invalid(R"({"jsonrpc":"2.0","id":2,"method":"ping","params":[1]})", mcp::rpc_error::invalid_params, 2);
    invalid(R"({"jsonrpc":"2.0","id":3})", mcp::rpc_error::invalid_request, 3);
    // What goes out is one line, whatever the strings hold.
    mcp::RpcError e{mcp::rpc_error::invalid_params, "bad\nthing", {{"x", "\xff"}}};
    const auto line = shannot_cli::dump_json(mcp::make_error(json(4), e));
    CHECK(line.find('\n') == std::string::npos);
    CHECK(json::parse(line)["error"]["message"] == "bad\nthing");
}

TEST_CASE("mcp protocol: which revision a request speaks") {
    CHECK_FALSE(mcp::read_envelope(json::object())->modern);
    CHECK_FALSE(mcp::read_envelope({{"_meta", {{"progressToken", 1}}}})->modern);
    const json caps = {{"io.modelcontextprotocol/protocolVersion", "2026-07-28"},
                       {"io.modelcontextprotocol/clientCapabilities", json::object()},
                       {"io.modelcontextprotocol/clientInfo", {{"name", "c"}, {"version", "1"}}}};
    const auto modern = mcp::read_envelope({{"_meta", caps}});
    REQUIRE(modern);
    CHECK(modern->modern);
    CHECK(modern->client_name == "c");
    auto old = caps;
    old["io.modelcontextprotocol/protocolVersion"] = "2025-06-18";
    const auto unsupported = mcp::read_envelope({{"_meta", old}});
    REQUIRE_FALSE(unsupported);
    CHECK(unsupported.error().code == -32022);
    CHECK(unsupported.error().data["requested"] == "2025-06-18");
    auto no_caps = caps;
    no_caps.erase("io.modelcontextprotocol/clientCapabilities");
    CHECK(mcp::read_envelope({{"_meta", no_caps}}).error().code == -32602);
    CHECK(mcp::read_envelope({{"_meta", 5}}).error().code == -32602);

    CHECK(mcp::negotiate_legacy("2025-06-18") == "2025-06-18");
    CHECK(mcp::negotiate_legacy("2025-11-25") == "2025-11-25");
    CHECK(mcp::negotiate_legacy("2024-11-05") == "2025-11-25");
    const auto legacy = mcp::finish_result({{"tools", json::array()}}, mcp::Envelope{}, true);
    CHECK_FALSE(legacy.contains("resultType"));
    const auto stamped = mcp::finish_result({{"tools", json::array()}}, *modern, true);
    CHECK(stamped["resultType"] == "complete");
    CHECK(stamped["cacheScope"] == "private");
    CHECK(mcp::finish_result(json::object(), *modern, false).contains("ttlMs") == false);
}

TEST_CASE("mcp fit: a stream cut at byte counts is put back on whole characters") {
    const std::string e_acute = "\xc3\xa9";
    SUBCASE("the partial character at the end of the head and the continuation at the start of the tail go") {
        std::string data = "ab\xc3" + std::string("\xa9") + "cd";  // head "ab\xc3" (3 bytes), tail "\xa9cd"
        std::uint64_t dropped = 10;
        CHECK_FALSE(shannot_cli::is_valid_utf8(data.substr(0, 3) + data.substr(4)));  // control: a split character
        mcp::align_cut(data, dropped, 3);
        CHECK(data == "abcd");
        CHECK(dropped == 12);
    }
    SUBCASE("a cut between characters changes nothing") {
        std::string data = e_acute + e_acute;
        std::uint64_t dropped = 0;
        mcp::align_cut(data, dropped, 2);
        CHECK(data == e_acute + e_acute);
        CHECK(dropped == 0);
    }
    SUBCASE("shrinking keeps head and tail, counts the rest, and stays text") {
        std::string data;
        for (int i = 0; i < 1000; ++i) data += e_acute + "t";
        bool truncated = false;
        std::uint64_t dropped = 0;
        const auto size = data.size();
        mcp::shrink_stream(data, truncated, dropped, 101);
        CHECK(truncated);
        CHECK(data.size() + dropped == size);
        CHECK(data.size() <= 101);
        CHECK(shannot_cli::is_valid_utf8(data));
    }
    SUBCASE("halving the larger stream until nothing is left to halve") {
        shannot::ProcessResult r;
        r.stdout_data = std::string(1000, 'o');
        r.stderr_data = std::string(10, 'e');
        CHECK(mcp::halve_larger_stream(r));
        CHECK(r.stdout_data.size() == 500);
        CHECK(r.stdout_dropped == 500);
        CHECK(r.stdout_truncated);
        while (mcp::halve_larger_stream(r)) {
        }
        CHECK(r.stdout_data.size() < 64);
        CHECK(r.stderr_data.size() == 10);
    }
}

TEST_CASE("mcp schemas: the run outputSchema describes result_to_json's object, field by field") {
    shannot::ProcessResult r;
    r.command = {"ls", "/"};
    r.argv = {"bwrap", "--", "ls", "/"};
    r.exit_code = 0;
    r.stdout_data = "bin\n";
    r.stderr_data = "\xff";
    r.duration = std::chrono::milliseconds(3);
    const auto object = shannot_cli::result_to_json(r, "minimal", "local", 0);
    const auto schema = mcp::run_result_schema();
    const auto& properties = schema["properties"];
    for (auto it = object.begin(); it != object.end(); ++it) {
        const std::string key = it.key();  // (not a structured binding: clang 14 cannot capture one)
        const auto& value = it.value();
        INFO(key);
        REQUIRE(properties.contains(key));
        const auto type = properties[key]["type"];
        const auto is = [&](const char* t) {
            return type == t || (type.is_array() && std::find(type.begin(), type.end(), t) != type.end());
        };
        if (value.is_string())
            CHECK(is("string"));
        else if (value.is_boolean())
            CHECK(is("boolean"));
        else if (value.is_number_integer())
            CHECK((is("integer") || is("number")));
        else if (value.is_number())
            CHECK(is("number"));
        else if (value.is_array())
            CHECK(is("array"));
        if (properties[key].contains("enum"))
            CHECK(std::find(properties[key]["enum"].begin(), properties[key]["enum"].end(), value) !=
                  properties[key]["enum"].end());
    }
    for (const auto& key : schema["required"]) CHECK_MESSAGE(object.contains(key.get<std::string>()), key);
    // The resource-limit fields are optional, and nullable, so runs with and without them fit.
    CHECK(properties["limits"]["type"] == json::array({"object", "null"}));
    CHECK(properties["limit_exceeded"]["type"] == json::array({"string", "null"}));
    CHECK_FALSE(schema.contains("additionalProperties"));
    CHECK(std::find(schema["required"].begin(), schema["required"].end(), "limits") == schema["required"].end());
}

// The subcommand as a process: built from include/ only.
#ifndef SHANNOT_SINGLE_INCLUDE_HPP

extern char** environ;

namespace {

struct Run {
    int status = -1;
    std::string out, err;
};

std::string shannot_path() {
    const char* root = std::getenv("SHANNOT_BUILD_ROOT");
    if (!root) return {};
    const auto path = std::filesystem::path(root) / "examples" / "cli" / "shannot";
    return ::access(path.c_str(), X_OK) == 0 ? path.string() : std::string();
}

/// Runs shannot with `args` in the folder `home`, which is also its HOME and XDG_CONFIG_HOME;
/// stdin /dev/null.
Run run_shannot(const std::vector<std::string>& args, const std::string& home) {
    Run r;
    std::vector<std::string> words = {shannot_path()};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_words = {
        "HOME=" + home, "XDG_CONFIG_HOME=" + home,
        "PATH=" + std::string(std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin")};
    std::vector<char*> envp;
    for (auto& e : env_words) envp.push_back(e.data());
    envp.push_back(nullptr);
    int out[2], err[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawn_file_actions_addchdir_np(&actions, home.c_str());
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, words[0].c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    REQUIRE(rc == 0);
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    for (int open = 2; open > 0;) {
        if (::poll(fds, 2, 30000) <= 0) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            char buffer[65536];
            const auto n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0) {
                (i == 0 ? r.out : r.err).append(buffer, static_cast<std::size_t>(n));
            } else {
                ::close(fds[i].fd);
                fds[i].fd = -1;
                --open;
            }
        }
    }
    for (auto& f : fds)
        if (f.fd >= 0) ::close(f.fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

struct Home {
    std::string path;
    Home() {
        char templ[] = "/tmp/shannot-mcp-cli-XXXXXX";
        REQUIRE(::mkdtemp(templ) != nullptr);
        path = templ;
    }
    Home(const Home&) = delete;
    Home& operator=(const Home&) = delete;
    ~Home() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

}  // namespace

TEST_CASE("cli: shannot mcp options, help and mcp config") {
    if (shannot_path().empty()) {
        if (std::getenv("CI") && std::string(std::getenv("CI")) == "true")
            FAIL("the shannot tool is not built (CI=true)");
        MESSAGE("skipped: the shannot tool is not built ($SHANNOT_BUILD_ROOT/examples/cli/shannot)");
        return;
    }
    Home home;
    SUBCASE("help, and bad options before anything starts") {
        for (const auto& args : {std::vector<std::string>{"mcp", "--help"}, {"help", "mcp"}}) {
            const auto r = run_shannot(args, home.path);
            CHECK(r.status == 0);
            CHECK(r.out.find("usage: shannot mcp") != std::string::npos);
        }
        CHECK(run_shannot({"--help"}, home.path).out.find("  mcp ") != std::string::npos);
        const auto bad = run_shannot({"mcp", "--bogus"}, home.path);
        CHECK(bad.status == 125);
        CHECK(bad.err.find("unknown option '--bogus'") != std::string::npos);
        CHECK(bad.out.empty());
        CHECK(run_shannot({"mcp", "--profile", "nope"}, home.path).status == 121);
        CHECK(run_shannot({"mcp", "--target", "nope"}, home.path).status == 122);
        CHECK(run_shannot({"mcp", "--max-output", "0"}, home.path).status == 125);
        CHECK(run_shannot({"mcp", "--timeout", "0"}, home.path).status == 125);
        CHECK(run_shannot({"mcp", "--timeout", "601"}, home.path).status == 125);
        CHECK(run_shannot({"mcp", "--no-local"}, home.path).status == 125);
        CHECK(run_shannot({"mcp", "extra"}, home.path).status == 125);
        // Tool names are at most 128 characters: a host name that would make one longer is refused.
        CHECK(run_shannot({"mcp", "--ssh", std::string(40, 'h')}, home.path).status == 125);
        CHECK(run_shannot({"mcp", "--ssh", std::string(39, 'h')}, home.path).status == 0);
    }
    SUBCASE("stdin closed at once: the server exits 0 and prints nothing on stdout") {
        const auto r = run_shannot({"mcp"}, home.path);
        CHECK(r.status == 0);
        CHECK(r.out.empty());
    }
    SUBCASE("mcp config prints, for each client, what registers this server, with absolute paths") {
        const std::vector<std::string> server = {"--profile", "minimal", "--profile", "./p.json",
                                                 "--warm",    "--audit", "audit.log"};
        const auto args_of = [&](const json& j) { return j.get<std::vector<std::string>>(); };
        const std::string cwd = home.path;  // where the tool runs
        const std::vector<std::string> expected = {"mcp",           "--profile", "minimal", "--profile",
                                                   cwd + "/p.json", "--warm",    "--audit", cwd + "/audit.log"};
        auto p = *shannot::builtin_profile("minimal");
        p.name = "p";
        std::ofstream(cwd + "/p.json") << p.to_json().dump();
        for (const char* client : {"claude-desktop", "cursor"}) {
            std::vector<std::string> args = {"mcp", "config", "--client", client};
            args.insert(args.end(), server.begin(), server.end());
            const auto r = run_shannot(args, home.path);
            CHECK(r.status == 0);
            const auto j = json::parse(r.out);
            CHECK(j["mcpServers"]["shannot"]["command"] == shannot_path());
            CHECK(args_of(j["mcpServers"]["shannot"]["args"]) == expected);
            CHECK(j["mcpServers"]["shannot"]["env"]["XDG_CONFIG_HOME"] == home.path);
        }
        std::vector<std::string> args = {"mcp", "config", "--client", "claude-code"};
        args.insert(args.end(), server.begin(), server.end());
        auto r = run_shannot(args, home.path);
        CHECK(r.status == 0);
        CHECK(r.out.rfind("claude mcp add --transport stdio --scope user --env XDG_CONFIG_HOME=" + home.path +
                              " shannot -- " + shannot_path() + " mcp ",
                          0) == 0);
        args[3] = "codex";
        r = run_shannot(args, home.path);
        CHECK(r.status == 0);
        CHECK(r.out.rfind(
                  "[mcp_servers.shannot]\ncommand = \"" + shannot_path() + "\"\nargs = [\"mcp\", \"--profile\", ", 0) ==
              0);
        const auto unknown = run_shannot({"mcp", "config", "--client", "vim"}, home.path);
        CHECK(unknown.status == 125);
        CHECK(unknown.err.find("one of claude-desktop, claude-code, codex, cursor") != std::string::npos);
        CHECK(run_shannot({"mcp", "config"}, home.path).status == 125);
        CHECK(run_shannot({"mcp", "config", "--client", "codex", "--profile", "nope"}, home.path).status == 121);
        CHECK(run_shannot({"mcp", "--client", "codex"}, home.path).status == 125);
    }
}

#endif  // SHANNOT_SINGLE_INCLUDE_HPP
