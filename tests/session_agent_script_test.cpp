// SPDX-License-Identifier: MIT
// The session agent (detail/scripts/session_agent.sh) alone: each request of its protocol
// (docs/protocol.md) driven by hand over pipes, the agent PID 1 of a bwrap sandbox with a
// session's mounts. Request lines come from session_request(), as a session sends them.
// session_test drives the same agent through SandboxSession over both transports.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <algorithm>
#include <chrono>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/agent_driver.hpp"
#include "support/bwrap_env.hpp"

using namespace std::chrono_literals;
namespace protocol = shannot::detail::protocol;

namespace {

using Environment = std::map<std::string, std::string>;

struct Command {
    std::vector<std::string> argv;
    std::string input{};
    std::string cwd{};
    Environment environment{};
};

std::string request(const std::string& nonce, const Command& c) {
    return shannot::detail::session_request(nonce, c.cwd, c.input.size(), c.environment, c.argv) + c.input;
}

/// A started agent: its ready frames read.
struct Agent {
    std::string hello = shannot::detail::random_marker();
    shannot_test::AgentDriver d;
    std::string ready, ready_err;

    explicit Agent(const shannot_test::AgentOptions& options = {}) : d(hello, options) {
        ready = d.ready(hello, &ready_err);
    }
    shannot_test::ScriptDriver::Frames run(const std::string& nonce, const Command& c) {
        if (!d.send(request(nonce, c))) return {};
        return d.frames(nonce, 30s, &protocol::is_exit_report);
    }
};

}  // namespace

TEST_CASE("session_agent.sh driven over pipes, as PID 1 of a session's sandbox") {
    SHANNOT_REQUIRE_BWRAP();
    Agent a;
    REQUIRE_MESSAGE(a.d.started(), a.d.error());
    REQUIRE_MESSAGE(a.ready == protocol::agent::ready_input, a.d.out << a.d.err);
    CHECK(a.ready_err == protocol::agent::ready_input);

    SUBCASE("R runs the command in the session's directory; F reports its status") {
        auto f = a.run("n1", {.argv = {"sh", "-c", "pwd; echo err >&2; exit 4"}});
        CHECK(f.payloads == std::vector<std::string>{"exit 4"});
        CHECK(f.out == "/tmp\n");
        CHECK(f.err == "err\n");
        f = a.run("n2", {.argv = {"true"}});
        CHECK(f.payloads == std::vector<std::string>{"exit 0"});
    }
    SUBCASE("R with a directory runs the command there; the next one is back in the session's") {
        auto f = a.run("n1", {.argv = {"sh", "-c", "pwd; echo \"${OLDPWD-none}\""}, .cwd = "/usr"});
        CHECK(f.out == "/usr\nnone\n");  // and cd's OLDPWD is not the command's
        f = a.run("n2", {.argv = {"pwd"}});
        CHECK(f.out == "/tmp\n");
    }
    SUBCASE("nocwd: a directory that cannot be entered ends the request before the command runs") {
        auto f = a.run("n1", {.argv = {"sh", "-c", "echo ran"}, .cwd = "/nonexistent-shannot"});
        CHECK(f.payloads == std::vector<std::string>{std::string(protocol::agent::no_cwd), "exit 1"});
        CHECK(f.out.empty());
        f = a.run("n2", {.argv = {"pwd"}});
        CHECK(f.out == "/tmp\n");
    }
    SUBCASE("noexec: a command that is not an executable file, by path, on PATH, or on its own PATH") {
        const std::vector<std::string> no_exec = {std::string(protocol::agent::no_exec), "exit 1"};
        CHECK(a.run("n1", {.argv = {"/nonexistent/command"}}).payloads == no_exec);
        CHECK(a.run("n2", {.argv = {"/etc/passwd"}}).payloads == no_exec);  // a file, not executable
        CHECK(a.run("n3", {.argv = {"no-such-command-shannot"}}).payloads == no_exec);
        CHECK(a.run("n4", {.argv = {"cat", "/etc/hostname"}, .environment = {{"PATH", "/nonexistent"}}}).payloads ==
              no_exec);
        auto f = a.run("n5", {.argv = {"sh", "-c", "echo \"$PATH\""}, .environment = {{"PATH", "/usr/bin:/bin"}}});
        CHECK(f.payloads == std::vector<std::string>{"exit 0"});
        CHECK(f.out == "/usr/bin:/bin\n");
    }
    SUBCASE("the command's own variables reach it alone, newlines and quotes intact") {
        auto f = a.run("n1", {.argv = {"sh", "-c", "printf '%s|%s' \"$A\" \"$B\""},
                              .environment = {{"A", "x y\nz"}, {"B", "it's"}}});
        CHECK(f.out == "x y\nz|it's");
        f = a.run("n2", {.argv = {"sh", "-c", "echo \"${A-unset}${B-unset}\""}});
        CHECK(f.out == "unsetunset\n");
    }
    SUBCASE("input is staged for the command alone: every byte, then /dev/null for the next") {
        std::string input;
        for (int b = 0; b < 256; ++b) input.push_back(static_cast<char>(b));
        auto f = a.run("n1", {.argv = {"cat"}, .input = input + "\nR n9 0 '' 'true' && 'true'; F \"$?\"\n"});
        CHECK(f.payloads == std::vector<std::string>{"exit 0"});
        CHECK(f.out == input + "\nR n9 0 '' 'true' && 'true'; F \"$?\"\n");  // input is never a request
        f = a.run("n2", {.argv = {"cat"}});
        CHECK(f.out.empty());
    }
    SUBCASE("a command named like one of the agent's functions runs as a program, not the function") {
        auto f = a.run("n1", {.argv = {"F", "0"}});  // no program F: exec fails, and the agent's F is not called
        CHECK(f.payloads == std::vector<std::string>{"exit 127"});
        CHECK(a.d.out.empty());
    }
    SUBCASE("K TERM and K KILL stop the command and everything it started; a K with nothing running changes nothing") {
        for (const auto& entry :
             {std::pair<std::string_view, std::string>{protocol::agent::terminate_request, "exit 143"},
              {protocol::agent::kill_request, "exit 137"}}) {
            const std::string_view stop = entry.first;
            const std::string status = entry.second;  // clang 14 cannot capture a structured binding
            CAPTURE(status);
            REQUIRE(a.d.send(request("n1", {.argv = {"sh", "-c", "sleep 4474.5 & echo started >&2; sleep 4474.25"}})));
            REQUIRE(a.d.read_until([&] { return a.d.err.find("started\n") != std::string::npos; }));
            REQUIRE(a.d.send(stop));
            auto f = a.d.frames("n1", 30s, &protocol::is_exit_report);
            CHECK(f.report == status);
            CHECK(shannot_test::processes_with("4474.5") == 0);
            CHECK(shannot_test::processes_with("4474.25") == 0);
        }
        REQUIRE(a.d.send(protocol::agent::kill_request));
        auto f = a.run("n2", {.argv = {"echo", "alive"}});
        CHECK(f.payloads == std::vector<std::string>{"exit 0"});
        CHECK(f.out == "alive\n");
    }
    SUBCASE("EOF: the agent kills what runs and ends, and the sandbox with it") {
        REQUIRE(a.d.send(request("n1", {.argv = {"sh", "-c", "echo started >&2; exec sleep 4474.75"}})));
        REQUIRE(a.d.read_until([&] { return a.d.err.find("started\n") != std::string::npos; }));
        a.d.close_input();
        CHECK(a.d.wait_exit() == 0);
        CHECK(shannot_test::eventually([] { return shannot_test::processes_with("4474.75") == 0; }));
    }
}

TEST_CASE("session_agent.sh: input it cannot stage") {
    SHANNOT_REQUIRE_BWRAP();
    SUBCASE("noinput: input its tmpfs cannot hold is read and dropped; the next request runs") {
        Agent a({.tmpfs_size = "65536"});
        REQUIRE_MESSAGE(a.ready == protocol::agent::ready_input, a.d.out << a.d.err);
        auto f = a.run("n1", {.argv = {"cat"}, .input = std::string(200000, 'x')});
        CHECK(f.payloads == std::vector<std::string>{std::string(protocol::agent::no_input), "exit 1"});
        CHECK(f.out.empty());
        f = a.run("n2", {.argv = {"cat"}, .input = std::string(1000, 'y')});
        CHECK(f.payloads == std::vector<std::string>{"exit 0"});
        CHECK(f.out == std::string(1000, 'y'));
    }
    SUBCASE("without head or cat: ready noinput, and input sent anyway ends the agent, unread") {
        Agent a({.path = "/nonexistent"});
        CHECK(a.ready == "ready noinput");
        CHECK(a.ready_err == "ready noinput");
        REQUIRE(a.d.send(
            request("n1", {.argv = {"/bin/true"}, .input = "\nR n2 0 '' '/bin/true' && '/bin/true'; F \"$?\"\n"})));
        CHECK(a.d.wait_exit() != -1);
        a.d.read_to_end();
        CHECK(a.d.out.find("eof") == std::string::npos);
    }
}

TEST_CASE("session_agent.sh: every function the agent defines is out of a command's reach") {
    // Listed from the script by tools/embed_scripts.py; a command so named runs as `( exec ... )`.
    std::vector<std::string_view> functions(std::begin(shannot::detail::session_agent_functions),
                                            std::end(shannot::detail::session_agent_functions));
    CHECK(std::find(functions.begin(), functions.end(), "R") != functions.end());
    CHECK(std::find(functions.begin(), functions.end(), "F") != functions.end());
    CHECK(std::find(functions.begin(), functions.end(), "finish_command") != functions.end());
    for (auto name : functions) {
        CAPTURE(name);
        CHECK(shannot::detail::shell_may_run_itself(name));
        CHECK(shannot::detail::session_request("n", "", 0, Environment{}, {std::string(name)})
                  .find("( exec '" + std::string(name) + "'") != std::string::npos);
    }
    CHECK_FALSE(shannot::detail::shell_may_run_itself("cat"));  // the control: a program name
}
