// SPDX-License-Identifier: MIT
// Warm-session benchmarks of issue 6. One per invocation: `bench_warm_sessions b2|b3|b6 [--reps N]`.
//   B2  one command (`ls /`) on a warm local session vs a bare posix_spawn+drain of `ls /` here
//   B3  the same warm session vs a fresh sandbox per command (LocalSandbox::run, B1's subject),
//       with a bare fork+exec interleaved: the most B3 can be on the machine
//   B6  a warm remote session (sshd on 127.0.0.1) vs a warm local session
// Informational: prints figures and PASS/MISS, exits 0 unless a run failed (77: cannot run here).
#define DOCTEST_CONFIG_DISABLE  // the support headers use doctest macros; no test runner here
#include <shannot/shannot.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "support/sandbox_env.hpp"
#include "support/sshd_fixture.hpp"

using namespace shannot_bench;

namespace {

const std::vector<std::string> ls_root = {"ls", "/"};

template <class Runner>
std::string run_or_die(Runner& runner, const char* what) {
    auto r = runner.run(ls_root);
    if (!r) die(std::string(what) + ": " + r.error().message);
    if (r->exit_code != 0 || r->stdout_data.empty()) die(std::string(what) + ": ls / failed: " + r->stderr_data);
    return std::move(r->stdout_data);
}

shannot::SandboxSession<shannot::PosixSpawnTransport> open_local(const shannot::LocalSandbox& sandbox) {
    auto copy = sandbox;
    auto session = copy.open_session();
    if (!session) die("open_session: " + session.error().message);
    return std::move(*session);
}

int bench_b2(int reps) {
    auto profile = shannot::builtin_profile("minimal");
    if (!profile) die(profile.error().message);
    shannot::LocalSandbox sandbox(*profile);
    auto session = open_local(sandbox);
    const auto expected = run_or_die(session, "B2 session");
    auto warm = [&] {
        if (run_or_die(session, "B2 session").size() != expected.size()) die("B2: the session's ls / changed");
    };
    auto bare = [&] {
        const auto s = spawn_drain(ls_root, {.search_path = true});
        if (!s.ok() || s.out_bytes == 0) die("B2: bare ls / failed: " + s.describe());
    };
    const auto s = interleave(reps, 20, warm, bare);
    const double a = median(s.a), b = median(s.b);
    print_result("B2", "one command on a warm local session vs a bare fork+exec of it (ls /)",
                 fmt_time(a) + " vs " + fmt_time(b), a / b, fmt_ratio(a / b, 1.5), Goal::at_most, 1.5, "1.5x");
    print_spread("session", s.a, "bare", s.b);
    return 0;
}

int bench_b3(int reps) {
    auto profile = shannot::builtin_profile("minimal");
    if (!profile) die(profile.error().message);
    shannot::LocalSandbox sandbox(*profile);
    auto session = open_local(sandbox);
    auto warm = [&] { run_or_die(session, "B3 session"); };
    auto fresh = [&] { run_or_die(sandbox, "B3 fresh run"); };
    // A third, interleaved with them: a bare fork+exec of `ls /` here. A session cannot start a
    // command for less than that, so fresh / bare is the most B3 can be on this machine.
    auto bare = [&] {
        const auto r = spawn_drain(ls_root, {.search_path = true});
        if (!r.ok() || r.out_bytes == 0) die("B3: bare ls / failed: " + r.describe());
    };
    const auto s = interleave_all(reps, 10, {warm, fresh, bare});
    const double a = median(s[0]), b = median(s[1]), c = median(s[2]);
    print_result("B3", "a fresh sandbox per command vs a warm local session (ls /)", fmt_time(b) + " vs " + fmt_time(a),
                 b / a, fmt_ratio(b / a, 4), Goal::at_least, 4, "4x faster");
    print_spread("session", s[0], "fresh", s[1]);
    print_note("interleaved with them, a bare fork+exec of `ls /`: " + fmt_time(c) + ", so B3 can be at most " +
               fmt_ratio(b / c) + " here (a session that cost nothing); the session costs " + fmt_ratio(a / c) +
               " of it");
    return 0;
}

int bench_b6(int reps) {
    shannot_test::SshdFixture sshd;
    if (!sshd.running()) {
        std::printf("B6: SKIP (sshd could not be started: %s)\n", sshd.error().c_str());
        return exit_skip;
    }
    auto local_profile = shannot::builtin_profile("minimal");
    auto remote_profile = shannot::builtin_profile<shannot::OpenSshProcessTransport>("minimal");
    if (!local_profile || !remote_profile) die("the minimal profile");
    shannot::LocalSandbox local(*local_profile);
    auto local_session = open_local(local);
    shannot::SshSandbox remote(*remote_profile, shannot::OpenSshProcessTransport(sshd.connection()));
    auto remote_session = remote.open_session();
    if (!remote_session) die("open_session over ssh: " + remote_session.error().message);
    auto r = [&] { run_or_die(*remote_session, "B6 remote session"); };
    auto l = [&] { run_or_die(local_session, "B6 local session"); };
    const auto s = interleave(reps, 10, r, l);
    const double a = median(s.a), b = median(s.b);
    print_result("B6", "a warm remote session vs a warm local session (ls /)", fmt_time(a) + " vs " + fmt_time(b),
                 a / b, fmt_ratio(a / b, 1.5), Goal::at_most, 1.5, "1.5x");
    print_spread("remote", s.a, "local", s.b);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string which = argc >= 2 ? argv[1] : "";
    if (which != "b2" && which != "b3" && which != "b6") {
        std::fprintf(stderr, "usage: %s b2|b3|b6 [--reps N]\n", argv[0]);
        return 2;
    }
    if (!shannot_test::bwrap_usable()) {
        std::printf("%s: SKIP (bwrap is not usable on this machine)\n", which.c_str());
        return exit_skip;
    }
    return guarded([&] {
        if (which == "b2") return bench_b2(reps_from_args(argc, argv, 300));
        if (which == "b3") return bench_b3(reps_from_args(argc, argv, 100));
        return bench_b6(reps_from_args(argc, argv, 100));
    });
}
