// SPDX-License-Identifier: MIT
// PosixSpawnOptions::spare_sandbox: a sandbox built before its command is known serves the next
// run as a fresh one would (the behaviour tests also run in this mode: LocalSpare), and only
// when it can. Real bwrap.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support/bwrap_env.hpp"
#include "support/transports.hpp"

namespace {

using shannot::LocalSandbox;
using shannot::PosixSpawnTransport;

LocalSandbox spare_sandbox(shannot::SandboxProfile<PosixSpawnTransport> profile = shannot_test::test_profile()) {
    return LocalSandbox(std::move(profile), PosixSpawnTransport({.spare_sandbox = true}));
}

/// This process's children named bwrap, zombies included (a spare's bwrap is one until it is
/// handed over or killed and reaped).
int bwrap_children() {
    int n = 0;
    for (const int child : shannot_test::children_of(::getpid())) n += shannot_test::comm_of(child) == "bwrap";
    return n;
}

}  // namespace

TEST_CASE("spare sandbox: the next run takes it and sees what a fresh sandbox shows") {
    SHANNOT_REQUIRE_TRANSPORT(PosixSpawnTransport);
    auto spare = spare_sandbox();
    LocalSandbox fresh(shannot_test::test_profile());
    const std::vector<std::vector<std::string>> commands = {
        {"sh", "-c", "env | sort"},  // a shell passes the environment on in its own order
        {"sh", "-c", "ls -l /proc/self/fd | sed -n '2,$p' | cut -c1-10,40- | sed 's/pipe:.*/pipe/'"},
        {"sh", "-c", "echo $$ $PPID; pwd; ulimit -a; ls -la /etc | tail -n +2 | cut -c1-10,40-"},
        {"sh", "-c",
         "grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status"},
        {"sh", "-c", "cat /proc/self/cgroup | wc -l; ls /tmp /dev/shm; cat /etc/passwd | head -1"},
        {"printf", "%s|", "it's", "two\nlines", "", "$HOME", "*"},
        {"sh", "-c", "echo to stderr >&2; exit 7"},
    };
    for (const auto& command : commands) {
        CAPTURE(command.back());
        const shannot::RunOptions options{.environment = {{"RUN_VAR", "run value"}}};
        (void)spare.run({"true"}, options);  // this shape's spare is built now, for the run below
        const auto used = spare.transport().spare_sandboxes_used();
        auto a = spare.run(command, options);
        auto b = fresh.run(command, options);
        REQUIRE(a);
        REQUIRE(b);
        CHECK(spare.transport().spare_sandboxes_used() == used + 1);
        CHECK(a->stdout_data == b->stdout_data);
        CHECK(a->stderr_data == b->stderr_data);
        CHECK(a->exit_code == b->exit_code);
        CHECK(a->argv == b->argv);  // the argv the run reports is the run's, not the stand-in's
        CHECK(a->limits_mechanism == b->limits_mechanism);
    }
    // The control: a sandbox without a spare never reports one used, and the runs above would
    // have shown the stand-in's shell otherwise (its pid, its descriptors 5 and 9).
    CHECK(fresh.transport().spare_sandboxes_used() == 0);
}

TEST_CASE("spare sandbox: input, and a run of another shape starts fresh") {
    SHANNOT_REQUIRE_TRANSPORT(PosixSpawnTransport);
    auto sandbox = spare_sandbox();
    REQUIRE(sandbox.run({"true"}, {.input = ""}));
    auto piped = sandbox.run({"cat"}, {.input = "line 1\nline 2\n"});
    REQUIRE(piped);
    CHECK(piped->stdout_data == "line 1\nline 2\n");
    CHECK(sandbox.transport().spare_sandboxes_used() == 1);

    // Another environment is another shape: the spare built for the run above does not serve it.
    auto other = sandbox.run({"env"}, {.environment = {{"OTHER", "yes"}}});
    REQUIRE(other);
    CHECK(other->stdout_data.find("OTHER=yes\n") != std::string::npos);
    CHECK(sandbox.transport().spare_sandboxes_used() == 1);
    // Two runs of a shape in a row: the third takes the spare the second asked for.
    REQUIRE(sandbox.run({"env"}, {.environment = {{"OTHER", "yes"}}}));
    auto third = sandbox.run({"env"}, {.environment = {{"OTHER", "yes"}}});
    REQUIRE(third);
    CHECK(third->stdout_data.find("OTHER=yes\n") != std::string::npos);
    CHECK(sandbox.transport().spare_sandboxes_used() == 2);
}

TEST_CASE("spare sandbox: a timeout and a kill end the run, and the next run still works") {
    SHANNOT_REQUIRE_TRANSPORT(PosixSpawnTransport);
    auto sandbox = spare_sandbox();
    REQUIRE(sandbox.run({"true"}));
    const auto start = std::chrono::steady_clock::now();
    auto slow = sandbox.run({"sleep", "30"}, {.timeout = std::chrono::milliseconds(300)});
    REQUIRE(slow);
    CHECK(slow->timed_out);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
    CHECK(sandbox.transport().spare_sandboxes_used() == 1);
    auto after = sandbox.run({"sh", "-c", "echo ok"});
    REQUIRE(after);
    CHECK(after->stdout_data == "ok\n");
}

TEST_CASE("spare sandbox: without /bin/sh in the sandbox, runs start fresh") {
    SHANNOT_REQUIRE_TRANSPORT(PosixSpawnTransport);
    // /dev/null over the shell: the spare's stand-in cannot start, so no spare is ever taken;
    // the control is the same profile without the mask, whose spare serves.
    auto profile = shannot_test::test_profile();
    char real[4096] = {};
    REQUIRE(::realpath("/bin/sh", real) != nullptr);
    auto masked = profile;
    masked.binds.push_back({.source = "/dev/null", .target = real, .read_only = true});
    for (auto* p : {&masked, &profile}) {
        auto sandbox = spare_sandbox(*p);
        for (int i = 0; i < 4; ++i) {
            auto r = sandbox.run({"ls", "/"});
            REQUIRE(r);
            CHECK(r->exit_code == 0);
        }
        CHECK(sandbox.transport().spare_sandboxes_used() == (p == &masked ? 0u : 3u));
    }
}

TEST_CASE("spare sandbox: it goes with its sandbox, and is shared by copies of the transport") {
    SHANNOT_REQUIRE_TRANSPORT(PosixSpawnTransport);
    const int before = bwrap_children();
    {
        auto sandbox = spare_sandbox();
        REQUIRE(sandbox.run({"true"}));
        // The spare is being built or waits: one bwrap more than before, until the sandbox goes.
        bool seen = false;
        for (int i = 0; i < 500 && !seen; ++i) {
            seen = bwrap_children() == before + 1;
            if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        CHECK(seen);
        PosixSpawnTransport copy = sandbox.transport();
        REQUIRE(sandbox.run({"true"}));
        CHECK(copy.spare_sandboxes_used() == 1);
    }
    CHECK(bwrap_children() == before);
}

TEST_CASE("spare sandbox: a session on the same transport is its own sandbox, and runs go on taking spares") {
    SHANNOT_REQUIRE_TRANSPORT(PosixSpawnTransport);
    auto sandbox = spare_sandbox();
    REQUIRE(sandbox.run({"true"}));
    auto session = sandbox.open_session();
    REQUIRE_MESSAGE(session, session.error().describe());
    REQUIRE(session->run({"sh", "-c", "echo kept > /tmp/f"}));
    auto kept = session->run({"cat", "/tmp/f"});
    REQUIRE(kept);
    CHECK(kept->stdout_data == "kept\n");
    CHECK(sandbox.transport().spare_sandboxes_used() == 0);  // a session never takes the spare
    auto fresh = sandbox.run({"sh", "-c", "cat /tmp/f 2>/dev/null || echo empty"});
    REQUIRE(fresh);
    CHECK(fresh->stdout_data == "empty\n");
    CHECK(sandbox.transport().spare_sandboxes_used() == 1);
}
