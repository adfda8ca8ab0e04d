// SPDX-License-Identifier: MIT
// Warm sessions (SandboxSession) over both transports: what commands of one session share and
// what they don't, framing that commands cannot forge, stopping commands, losing and reopening
// the sandbox. The promises a session shares with fresh runs are tested in local_sandbox_test
// (every behaviour test runs in the session modes too).
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "support/bwrap_env.hpp"
#include "support/transports.hpp"

using namespace std::chrono_literals;
using shannot::errc;

namespace {

template <class T>
shannot::Result<shannot::SandboxSession<T>> open_test_session(
    shannot::SessionOptions options = {}, shannot::SandboxProfile<T> profile = shannot_test::test_profile<T>()) {
    shannot::SandboxManager<T> manager(std::move(profile), shannot_test::TransportFixture<T>::transport());
    return manager.open_session(std::move(options));
}

}  // namespace

TEST_CASE_TEMPLATE("session state", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto session = open_test_session<T>({.working_directory = "/tmp"});
    REQUIRE_MESSAGE(session, (session ? "" : session.error().message));

    SUBCASE("commands share the tmpfs and the working directory, not variables or the shell's state") {
        auto first = session->run({"sh", "-c", "echo kept > note; export LEAK=1; cd /usr; echo $PWD"},
                                  {.environment = {{"ONLY_FIRST", "1"}}});
        REQUIRE(first);
        CHECK(first->stdout_data == "/usr\n");
        auto second =
            session->run({"sh", "-c", "cat /tmp/note; pwd; env | grep -E '^(LEAK|ONLY_FIRST|OLDPWD)=' || echo clean"});
        REQUIRE(second);
        CHECK(second->stdout_data == "kept\n/tmp\nclean\n");
    }
    SUBCASE("a command's own working directory and variables apply to it alone") {
        auto r = session->run({"sh", "-c", "pwd; printf '%s\\n' \"$A\""},
                              {.environment = {{"A", "x y\nz"}}, .working_directory = "/usr"});
        REQUIRE(r);
        CHECK(r->stdout_data == "/usr\nx y\nz\n");
        auto next = session->run({"sh", "-c", "pwd; echo ${A-unset}"});
        REQUIRE(next);
        CHECK(next->stdout_data == "/tmp\nunset\n");
    }
    SUBCASE("variables named like the agent's own reach the command and change nothing else") {
        // Every name the agent's script assigns (listed from it by tools/embed_scripts.py): a
        // command's variables must not disturb it.
        std::map<std::string, std::string> env;
        for (auto name : shannot::detail::session_agent_variables) env[std::string(name)] = "v-" + std::string(name);
        env["IFS"] = ":";
        REQUIRE(env.count("i") == 1);  // the one the request line itself reads
        auto r = session->run({"env"}, {.environment = env, .working_directory = "/usr"});
        REQUIRE(r);
        for (const auto& entry : env)  // not a structured binding: clang 14 cannot capture one in doctest's lambdas
            CHECK_MESSAGE(
                ("\n" + r->stdout_data).find("\n" + entry.first + "=" + entry.second + "\n") != std::string::npos,
                entry.first);
        auto next = session->run({"sh", "-c", "pwd; env"}, {.input = "in"});
        REQUIRE(next);
        CHECK(next->stdout_data.rfind("/tmp\n", 0) == 0);
        for (const auto& entry : env)
            CHECK_MESSAGE(next->stdout_data.find("\n" + entry.first + "=") == std::string::npos, entry.first);
    }
    SUBCASE("a command named like a shell builtin runs the program, under the name it was given") {
        // The agent runs commands from its own shell: `echo`, `kill` or `test` must still be
        // the programs a fresh run execs, and argv[0] the word the caller wrote.
        shannot::SandboxManager<T> fresh(shannot_test::test_profile<T>(),
                                         shannot_test::TransportFixture<T>::transport());
        for (const auto& command : {std::vector<std::string>{"echo", "--version"},
                                    {"true", "--version"},
                                    {"printf", "--version"},
                                    {"sh", "-c", "echo \"$0\"; ls /no-such-file"},
                                    {"/bin/sh", "-c", "echo \"$0\""}}) {
            CAPTURE(command.front());
            auto a = fresh.run(command);
            auto b = session->run(command);
            REQUIRE(a);
            REQUIRE(b);
            CHECK(b->stdout_data == a->stdout_data);
            CHECK(b->stderr_data == a->stderr_data);
            CHECK(b->exit_code == a->exit_code);
        }
        auto version = session->run({"echo", "--version"});
        REQUIRE(version);
        CHECK(version->stdout_data.find("GNU coreutils") != std::string::npos);
    }
    SUBCASE("the environment equals a fresh run's") {
        shannot::SandboxManager<T> fresh(shannot_test::test_profile<T>(),
                                         shannot_test::TransportFixture<T>::transport());
        auto a = fresh.run({"sh", "-c", "env | sort"}, {.environment = {{"X", "1"}}, .working_directory = "/tmp"});
        auto b = session->run({"sh", "-c", "env | sort"}, {.environment = {{"X", "1"}}});
        REQUIRE(a);
        REQUIRE(b);
        CHECK(a->stdout_data == b->stdout_data);
    }
    SUBCASE("a missing working directory or command is a setup error; the session goes on") {
        auto nocwd = session->run({"true"}, {.working_directory = "/nonexistent-dir"});
        REQUIRE_FALSE(nocwd);
        CHECK(nocwd.error().code == errc::sandbox_setup_failed);
        CHECK(nocwd.error().message.find("/nonexistent-dir") != std::string::npos);
        auto noexec = session->run({"/usr/bin/nonexistent-cmd"}, {});
        REQUIRE_FALSE(noexec);
        // A bare name is looked up in the command's own PATH, when it has one.
        auto not_on_path = session->run({"cat", "/etc/passwd"}, {.environment = {{"PATH", "/nonexistent"}}});
        REQUIRE_FALSE(not_on_path);
        CHECK(not_on_path.error().code == errc::sandbox_setup_failed);
        auto on_path = session->run({"cat", "/etc/hostname-none"}, {.environment = {{"PATH", "/usr/bin"}}});
        REQUIRE(on_path);
        CHECK(on_path->exit_code == 1);
        auto ok = session->run({"echo", "still here"});
        REQUIRE(ok);
        CHECK(ok->stdout_data == "still here\n");
    }
    SUBCASE("nothing a command started survives it") {
        auto r = session->run({"sh", "-c", "sleep 4331.5 & sleep 4331.6 & echo started"});
        REQUIRE(r);
        CHECK(r->stdout_data == "started\n");
        auto procs = session->run({"sh", "-c", "ls -d /proc/[0-9]* | wc -l"});
        REQUIRE(procs);
        // The agent's two processes (runner and reader), sh, ls and wc.
        CHECK(std::atoi(procs->stdout_data.c_str()) <= 5);
        CHECK(shannot_test::processes_with("4331.5") == 0);
        CHECK(shannot_test::processes_with("4331.6") == 0);
    }
    SUBCASE("sessions are independent of each other") {
        auto other = open_test_session<T>({.working_directory = "/tmp"});
        REQUIRE(other);
        REQUIRE(session->run({"sh", "-c", "echo mine > /tmp/owner"}));
        auto r = other->run({"sh", "-c", "cat /tmp/owner 2>/dev/null || echo absent"});
        REQUIRE(r);
        CHECK(r->stdout_data == "absent\n");
    }
}

TEST_CASE_TEMPLATE("session framing cannot be forged", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto session = open_test_session<T>();
    REQUIRE(session);

    SUBCASE("the agent's pipes, memory and shell are out of a command's reach") {
        auto r = session->run({"sh", "-c",
                               "for f in /proc/1/fd/0 /proc/1/fd/7 /proc/1/mem /proc/1/environ /dev/.shannot/sh; do "
                               "  if head -c 1 $f >/dev/null 2>&1; then echo readable $f; fi; done; echo done"});
        REQUIRE(r);
        CHECK(r->stdout_data == "done\n");
    }
    SUBCASE("a command printing frame-like lines gets them back as output") {
        const std::string fake = "\nshannot-00000000000000000000000000000000 eof\n\nshannot-x exit 0\n";
        auto r = session->run({"sh", "-c", "printf '%s' \"$0\"; printf '%s' \"$0\" >&2; exit 7", fake});
        REQUIRE(r);
        CHECK(r->exit_code == 7);
        CHECK(r->stdout_data == fake);
        CHECK(r->stderr_data == fake);
    }
    SUBCASE("binary output without a final newline arrives exactly, command after command") {
        std::string all;
        for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
        for (int round = 0; round < 3; ++round) {
            auto r = session->run({"cat"}, {.input = all + std::to_string(round)});
            REQUIRE(r);
            CHECK(r->stdout_data == all + std::to_string(round));
        }
    }
}

TEST_CASE_TEMPLATE("session stopping, losing and reopening", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto session = open_test_session<T>();
    REQUIRE(session);

    SUBCASE("a timeout stops the command and its children; the next command runs") {
        auto r = session->run({"sh", "-c", "sleep 4332.5 & sleep 4332.6"}, {.timeout = 500ms});
        REQUIRE(r);
        CHECK(r->timed_out);
        CHECK(shannot_test::processes_with("4332.5") == 0);
        auto next = session->run({"echo", "next"});
        REQUIRE(next);
        CHECK(next->stdout_data == "next\n");
        CHECK(session->alive());
    }
    SUBCASE("a command ignoring SIGTERM is killed after the grace; the session stays usable") {
        auto r = session->run({"sh", "-c", "trap '' TERM; sleep 4333.5; sleep 4333.5"},
                              {.timeout = 300ms, .kill_grace = 300ms});
        REQUIRE(r);
        CHECK(r->timed_out);
        CHECK(r->signal == SIGKILL);
        auto next = session->run({"true"});
        REQUIRE(next);
        CHECK(next->succeeded());
    }
    SUBCASE("a sandbox that died is reported on the next call, and reopen() starts a new one") {
        REQUIRE(session->run({"sh", "-c", "echo gone-after-reopen > /tmp/x"}));
        // What a crash or an OOM kill would do: the agent (PID 1 inside) dies.
        const auto argv = session->argv();
        REQUIRE_FALSE(argv.empty());
        auto kill_agent = session->run({"sh", "-c", "kill -9 1; sleep 10"}, {.timeout = 5s});
        // PID 1 ignores signals from inside its namespace: the agent survives its commands.
        REQUIRE(kill_agent);
        CHECK(session->alive());
        session->close();
        auto closed = session->run({"true"});
        REQUIRE_FALSE(closed);
        CHECK(closed.error().code == errc::session_closed);
        REQUIRE(session->reopen());
        auto fresh = session->run({"sh", "-c", "cat /tmp/x 2>/dev/null || echo new"});
        REQUIRE(fresh);
        CHECK(fresh->stdout_data == "new\n");
    }
    SUBCASE("a command that kills the agent's reader and ends by itself leaves a session that can stop commands") {
        // The reader is the only other process of the agent's; a command may kill it (same uid).
        // When the command ends, the agent sees its reader gone and starts another.
        auto r = session->run({"sh", "-c", "echo same > /tmp/sandbox; kill -9 -1; echo survived"});
        REQUIRE(r);
        CHECK(r->stdout_data == "survived\n");
        auto stopped = session->run({"sh", "-c", "sleep 4335.5"}, {.timeout = 300ms});
        REQUIRE(stopped);
        CHECK(stopped->timed_out);
        CHECK(shannot_test::processes_with("4335.5") == 0);
        // The new reader answered the kill: the session was not ended from outside, it is the
        // same sandbox.
        auto next = session->run({"cat", "/tmp/sandbox"});
        REQUIRE(next);
        CHECK(next->stdout_data == "same\n");
    }
    SUBCASE("a command that kills the agent's reader and runs on breaks only its session, which says so") {
        // Killed reader, running command: nothing answers the host's kill.
        auto r = session->run({"sh", "-c", "kill -9 -1; sleep 4334.5"}, {.timeout = 300ms, .kill_grace = 100ms});
        REQUIRE(r);
        CHECK(r->timed_out);
        // The session is broken: it is ended from outside (locally, bwrap is killed; remotely,
        // another ssh session kills its dispatcher), which may take a round trip to land.
        for (int i = 0; i < 250 && shannot_test::processes_with("4334.5") != 0; ++i) std::this_thread::sleep_for(20ms);
        CHECK(shannot_test::processes_with("4334.5") == 0);
        auto next = session->run({"true"});
        if (!next) {
            CHECK(next.error().code == errc::session_lost);
            REQUIRE(session->reopen());
            next = session->run({"true"});
        }
        REQUIRE(next);
        CHECK(next->succeeded());
    }
}

#if SHANNOT_PLATFORM_LINUX  // the local transport: not in the portable build (tests/portable/)
TEST_CASE("session on a lost local sandbox") {
    SHANNOT_REQUIRE_BWRAP();
    auto session = open_test_session<shannot::PosixSpawnTransport>();
    REQUIRE(session);
    // Kill bwrap from outside, as the OOM killer or an operator would.
    const auto argv = session->argv();
    REQUIRE(session->run({"true"}));
    int killed = 0;
    for (int pid : shannot_test::pids_with(argv.back())) {  // bwrap and the agent: argv ends with the session's marker
        ::kill(pid, SIGKILL);
        ++killed;
    }
    REQUIRE(killed > 0);
    auto r = session->run({"true"});
    for (int i = 0; i < 50 && r; ++i) {  // the death may take a moment to be seen
        std::this_thread::sleep_for(20ms);
        r = session->run({"true"});
    }
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::session_lost);
    CHECK_FALSE(session->alive());
    REQUIRE(session->reopen());
    auto again = session->run({"echo", "back"});
    REQUIRE(again);
    CHECK(again->stdout_data == "back\n");
}
#endif

TEST_CASE("session on a lost ssh connection") {
    SHANNOT_REQUIRE_TRANSPORT(shannot::OpenSshProcessTransport);
    auto session = open_test_session<shannot::OpenSshProcessTransport>();
    REQUIRE(session);
    REQUIRE(session->run({"true"}));
    // Kill the session's ssh client, as a network failure would end it.
    const auto argv = session->argv();
    const auto& socket = argv.at(2);  // ssh -S SOCKET ...
    int killed = 0;
    for (int pid : shannot_test::pids_with(socket))
        if (shannot_test::process_cmdline(pid).find("ControlMaster=no") != std::string::npos) {
            ::kill(pid, SIGKILL);
            ++killed;
        }
    REQUIRE(killed > 0);
    auto r = session->run({"true"});
    for (int i = 0; i < 50 && r; ++i) {
        std::this_thread::sleep_for(20ms);
        r = session->run({"true"});
    }
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::session_lost);
    REQUIRE(session->reopen());
    auto again = session->run({"echo", "back"});
    REQUIRE(again);
    CHECK(again->stdout_data == "back\n");
}

TEST_CASE_TEMPLATE("session errors at open", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    SUBCASE("a failing mount") {
        auto profile = shannot_test::test_profile<T>();
        profile.additional_args = {"--ro-bind", "/nonexistent-shannot-source", "/x"};
        auto s = open_test_session<T>({}, profile);
        REQUIRE_FALSE(s);
        CHECK(s.error().code == errc::sandbox_setup_failed);
        CHECK(s.error().message.find("nonexistent-shannot-source") != std::string::npos);
    }
    SUBCASE("a relative working directory is refused, naming the option") {
        auto s = open_test_session<T>({.working_directory = "tmp"});
        REQUIRE_FALSE(s);
        CHECK(s.error().code == errc::invalid_argument);
        CHECK(s.error().message == "SessionOptions::working_directory 'tmp' must be an absolute path without NUL");
    }
    SUBCASE("a missing shell") {
        auto s = open_test_session<T>({.shell = "/nonexistent/sh"});
        REQUIRE_FALSE(s);
        CHECK(s.error().message.find("/nonexistent/sh") != std::string::npos);
    }
    SUBCASE("input needs head and cat in the sandbox; without them it is refused, not run") {
        auto profile = shannot_test::test_profile<T>();
        profile.environment["PATH"] = "/nonexistent";
        profile.allowed_commands.push_back("/usr/bin/cat");
        profile.allowed_commands.push_back("/usr/bin/echo");
        auto s = open_test_session<T>({}, profile);
        REQUIRE(s);
        auto r = s->run({"/usr/bin/cat"}, {.input = "x"});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_argument);
        auto no_input = s->run({"/usr/bin/echo", "fine"});
        REQUIRE(no_input);
        CHECK(no_input->stdout_data == "fine\n");
    }
}

TEST_CASE_TEMPLATE("session with the host's /proc in the sandbox", T, SHANNOT_TRANSPORTS) {
    // The diagnostics profile binds the host's /proc over the sandbox's, for `ps`: there the
    // sandbox's pids mean nothing, and an agent that swept by /proc never found itself alone
    // (each command waited out the sweep's 5 s). The agent keeps a procfs of its own.
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto profile = *shannot::builtin_profile<T>("diagnostics");
    profile.allowed_commands.insert(profile.allowed_commands.end(), {"sh", "sleep"});
    auto session = open_test_session<T>({}, profile);
    REQUIRE_MESSAGE(session, (session ? "" : session.error().message));
    auto left = session->run({"sh", "-c", "sleep 4338.5 & echo started"}, {.timeout = 20s});
    REQUIRE(left);
    CHECK_FALSE(left->timed_out);
    CHECK(left->stdout_data == "started\n");
    CHECK(shannot_test::processes_with("4338.5") == 0);
    for (int i = 0; i < 3; ++i) {
        auto r = session->run({"ls", "/"}, {.timeout = 5s});
        REQUIRE(r);
        CHECK_FALSE(r->timed_out);
        CHECK(r->exit_code == 0);
    }
    auto host = session->run({"cat", "/proc/1/cmdline"});  // the host's PID 1, not the agent
    REQUIRE(host);
    CHECK_FALSE(host->stdout_data.empty());
    CHECK(host->stdout_data.find(".shannot") == std::string::npos);
    auto stopped = session->run({"sh", "-c", "sleep 4338.6"}, {.timeout = 300ms});
    REQUIRE(stopped);
    CHECK(stopped->timed_out);
    CHECK(shannot_test::processes_with("4338.6") == 0);
}

TEST_CASE_TEMPLATE("session with bash as the agent's shell", T, SHANNOT_TRANSPORTS) {
    // Debian's sh is dash; elsewhere it is often bash, which runs the agent in POSIX mode, makes
    // no vfork and treats assignments before functions differently.
    SHANNOT_REQUIRE_TRANSPORT(T);
    if (::access("/bin/bash", X_OK) != 0) {
        MESSAGE("skipped: no /bin/bash");
        return;
    }
    auto session = open_test_session<T>({.working_directory = "/tmp", .shell = "/bin/bash"});
    REQUIRE_MESSAGE(session, (session ? "" : session.error().message));
    shannot::SandboxManager<T> fresh(shannot_test::test_profile<T>(), shannot_test::TransportFixture<T>::transport());
    // bash exports SHLVL and hands every program it runs `_`: the one difference from dash.
    for (const auto& command :
         {std::vector<std::string>{"sh", "-c", "env | grep -Ev '^(SHLVL|_)=' | sort; echo \"$0\""},
          {"echo", "--version"}}) {
        CAPTURE(command.front());
        auto a =
            fresh.run(command, {.environment = {{"PATH", "/usr/bin:/bin"}, {"n", "1"}}, .working_directory = "/tmp"});
        auto b = session->run(command, {.environment = {{"PATH", "/usr/bin:/bin"}, {"n", "1"}}});
        REQUIRE(a);
        REQUIRE(b);
        CHECK(b->stdout_data == a->stdout_data);
    }
    auto input = session->run({"cat"}, {.input = std::string("a\0b", 3)});
    REQUIRE(input);
    CHECK(input->stdout_data == std::string("a\0b", 3));
    auto left = session->run({"sh", "-c", "sleep 4336.5 & echo started"});
    REQUIRE(left);
    CHECK(shannot_test::processes_with("4336.5") == 0);
    auto stopped = session->run({"sh", "-c", "sleep 4336.6"}, {.timeout = 300ms});
    REQUIRE(stopped);
    CHECK(stopped->timed_out);
    auto after = session->run({"sh", "-c", "pwd; echo ${n-unset}; echo $PATH"});
    REQUIRE(after);
    CHECK(after->stdout_data == "/tmp\nunset\n" + shannot_test::test_profile<T>().environment.at("PATH") + "\n");
}

#if SHANNOT_PLATFORM_LINUX  // the local transport: not in the portable build (tests/portable/)
TEST_CASE("session many arguments and large input") {
    SHANNOT_REQUIRE_BWRAP();
    auto session = open_test_session<shannot::PosixSpawnTransport>();
    REQUIRE(session);
    std::vector<std::string> command = {"sh", "-c", "echo $#", "x"};
    for (int i = 0; i < 100000; ++i) command.push_back(std::string("a").append(std::to_string(i)));
    auto many = session->run(command, {.timeout = 60s});
    REQUIRE(many);
    CHECK(many->stdout_data == "100000\n");
    const std::string big(8u << 20, 'z');
    auto r = session->run({"wc", "-c"}, {.input = big, .timeout = 60s});
    REQUIRE(r);
    CHECK(r->stdout_data == std::to_string(big.size()) + "\n");
}
#endif
