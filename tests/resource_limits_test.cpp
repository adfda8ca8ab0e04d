// SPDX-License-Identifier: MIT
// Resource limits (issue 19): each one stops what it bounds, in every mode (local and over ssh,
// fresh runs and warm sessions), and a generous value of the same limit lets the same command
// through, so that a test fails when the limit is missing, not when something else breaks.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/bwrap_env.hpp"
#include "support/transports.hpp"

using namespace std::chrono_literals;

namespace {

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds bound = 10s) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

/// The test profile, with python3 (the storm, the allocation and the descriptor counter) and the
/// limits `set` changes.
template <class T>
shannot::SandboxProfile<T> limited(const std::function<void(shannot::ResourceLimits&)>& set) {
    auto p = shannot_test::test_profile<T>();
    p.allowed_commands.emplace_back("python3");
    p.allowed_commands.emplace_back("stat");
    p.allowed_commands.emplace_back("df");
    set(p.limits);
    return p;
}

/// A distinct `sleep` argument per mode (every mode's sandbox runs on this host), so that the
/// storm's processes can be counted from here.
template <class M>
std::string storm_marker() {
    return std::string("30.") + (M::local ? "91" : "92") + (M::session ? "1" : "0") + "7";
}

/// Starts `sleep MARKER` `count` times as fast as it can (stopping at the first refused fork),
/// prints how many started, and holds them for `hold` seconds so that they can be counted.
std::vector<std::string> storm(const std::string& marker, int count, double hold) {
    const std::string code =
        "import subprocess, sys, time\n"
        "started = []\n"
        "for i in range(" +
        std::to_string(count) +
        "):\n"
        "    try:\n"
        "        started.append(subprocess.Popen(['sleep', sys.argv[1]]))\n"
        "    except OSError:\n"
        "        break\n"
        "print(len(started), flush=True)\n"
        "time.sleep(" +
        std::to_string(hold) + ")\n";
    return {"python3", "-c", code, marker};
}

int parse_int(const std::string& text) { return std::atoi(text.c_str()); }

}  // namespace

TEST_CASE_TEMPLATE("limits: a fork storm stops at the process limit, and nothing is left", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    const auto marker = storm_marker<M>();
    const auto sleeps = std::string("sleep") + '\0' + marker + '\0';
    REQUIRE(shannot_test::processes_running(sleeps) == 0);

    // Runs the storm while counting, from this host, the processes that carry the marker.
    auto storm_under = [&](std::uint64_t processes, int count) {
        auto runner = shannot_test::make_runner<M>(limited<T>([&](auto& l) { l.processes = processes; }));
        auto future = runner.run_async(storm(marker, count, 1.0), {.timeout = 30s});
        int most = 0;
        while (future.wait_for(10ms) != std::future_status::ready)
            most = std::max(most, shannot_test::processes_with(marker));
        auto r = future.get();
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(eventually([&] { return shannot_test::processes_with(marker) == 0; }));
        return std::make_pair(std::move(*r), most);
    };

    SUBCASE("under processes = 40, 300 sleeps: the storm is cut short, the host sees no more than 40") {
        const auto outcome = storm_under(40, 300);  // not a structured binding: clang 14 cannot capture one
        const auto& r = outcome.first;
        const int most = outcome.second;
        const int started = parse_int(r.stdout_data);
        CAPTURE(r.stderr_data);
        CHECK(r.exit_code == 0);
        CHECK(started > 10);  // the sandbox did run the storm
        CHECK(started < 40);  // python and the sandbox's own processes count too
        CHECK(most <= 40);    // python and the sleeps, as seen from this host
        CHECK(r.limits.processes == 40);
    }
    SUBCASE("control: under processes = 1024 the same storm starts all 300") {
        const auto outcome = storm_under(1024, 300);
        const auto& r = outcome.first;
        const int most = outcome.second;
        CAPTURE(r.stderr_data);
        CHECK(r.exit_code == 0);
        CHECK(parse_int(r.stdout_data) == 300);
        CHECK(most > 40);
    }
    CHECK(eventually([&] { return shannot_test::processes_running(sleeps) == 0; }));
}

TEST_CASE_TEMPLATE("limits: a 512 MiB allocation fails under 256 MiB and succeeds under 1 GiB", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    const std::vector<std::string> allocate = {"python3", "-c", "b = bytearray(512 << 20); print(len(b) >> 20)"};
    SUBCASE("memory_bytes = 256 MiB: MemoryError") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto& l) { l.memory_bytes = 256u << 20; }));
        auto r = runner.run(allocate);
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->exit_code == 1);
        CHECK(r->stderr_data.find("MemoryError") != std::string::npos);
        CHECK(r->stdout_data.empty());
    }
    SUBCASE("control: memory_bytes = 1 GiB: allocated") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto& l) { l.memory_bytes = 1u << 30; }));
        auto r = runner.run(allocate);
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->exit_code == 0);
        CHECK(r->stdout_data == "512\n");
    }
}

TEST_CASE_TEMPLATE("limits: 100 MB into /tmp stops at tmpfs_bytes (ENOSPC)", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    // Into /tmp (the profile's tmpfs) and /dev/shm (bwrap's /dev is made read-only, its shm sized).
    const std::vector<std::string> fill = {
        "sh", "-c",
        "for f in /tmp/f /dev/shm/f; do head -c 100000000 /dev/zero > $f; echo $?; wc -c < $f; rm -f $f; done"};
    SUBCASE("tmpfs_bytes = 16 MiB: the write fails with ENOSPC at 16 MiB") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto& l) { l.tmpfs_bytes = 16u << 20; }));
        auto r = runner.run(fill);
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data == "1\n16777216\n1\n16777216\n");
        CHECK(r->stderr_data.find("No space left on device") != std::string::npos);
    }
    SUBCASE("control: tmpfs_bytes = 256 MiB: 100 MB fit") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto& l) { l.tmpfs_bytes = 256u << 20; }));
        auto r = runner.run(fill);
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data == "0\n100000000\n0\n100000000\n");
        CHECK(r->stderr_data.empty());
    }
    SUBCASE("the sandbox's root and /etc (bwrap's own tmpfs, unbounded) are read-only; /tmp is the writable place") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto&) {}));
        auto r = runner.run({"sh", "-c", "echo x > /filler; echo x > /etc/filler; echo x > /tmp/ok && echo tmp-ok"});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data == "tmp-ok\n");  // the control: the same write into /tmp succeeds
        const auto first = r->stderr_data.find("Read-only file system");
        REQUIRE(first != std::string::npos);
        CHECK(r->stderr_data.find("Read-only file system", first + 1) != std::string::npos);
    }
    SUBCASE("/dev itself is read-only: nothing is written there past the limit") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto&) {}));
        auto r = runner.run({"sh", "-c", "echo x > /dev/filler"});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->exit_code != 0);
        CHECK(r->stderr_data.find("Read-only file system") != std::string::npos);
    }
}

TEST_CASE_TEMPLATE("limits: a CPU spinner is stopped by cpu_seconds, and the result names the limit", M,
                   SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    const std::vector<std::string> spin = {"sh", "-c", "while :; do :; done"};
    SUBCASE("cpu_seconds = 1: SIGXCPU well before a 30 s timeout") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto& l) { l.cpu_seconds = 1; }));
        const auto start = std::chrono::steady_clock::now();
        auto r = runner.run(spin, {.timeout = 30s});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(std::chrono::steady_clock::now() - start < 15s);
        CHECK_FALSE(r->timed_out);
        CHECK(r->exit_code == 128 + SIGXCPU);
        CHECK(r->limit_exceeded == "cpu_seconds");
        CHECK_FALSE(r->succeeded());
    }
    SUBCASE("control: cpu_seconds = 300: the timeout stops it, no limit is named") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto& l) { l.cpu_seconds = 300; }));
        auto r = runner.run(spin, {.timeout = 2500ms, .kill_grace = 200ms});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->timed_out);
        CHECK_FALSE(r->limit_exceeded);
    }
}

TEST_CASE_TEMPLATE("limits: a file over file_size_bytes is cut there", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    const std::vector<std::string> write = {"sh", "-c", "head -c 3000000 /dev/zero > /tmp/f; wc -c < /tmp/f"};
    const std::vector<std::string> direct = {"sh", "-c", "exec head -c 3000000 /dev/zero > /tmp/g"};
    SUBCASE("file_size_bytes = 1 MiB: cut at 1048576 bytes, SIGXFSZ names the limit") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto& l) { l.file_size_bytes = 1u << 20; }));
        auto r = runner.run(write);
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data == "1048576\n");
        auto killed = runner.run(direct);
        REQUIRE_MESSAGE(killed, killed.error().describe());
        CHECK(killed->exit_code == 128 + SIGXFSZ);
        CHECK(killed->limit_exceeded == "file_size_bytes");
    }
    SUBCASE("control: file_size_bytes = 4 MiB: written whole") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto& l) { l.file_size_bytes = 4u << 20; }));
        auto r = runner.run(write);
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data == "3000000\n");
        auto whole = runner.run(direct);
        REQUIRE_MESSAGE(whole, whole.error().describe());
        CHECK(whole->exit_code == 0);
        CHECK_FALSE(whole->limit_exceeded);
    }
}

TEST_CASE_TEMPLATE("limits: opening more than open_files fails", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    // Opens /dev/null 1500 times (stopping at the first failure) and says how far it got.
    const std::vector<std::string> open_many = {
        "python3", "-c",
        "import os\nn = 0\ntry:\n    while n < 1500:\n        os.open('/dev/null', os.O_RDONLY)\n        n += 1\n"
        "except OSError as e:\n    print(os.strerror(e.errno))\nprint(n)\n"};
    SUBCASE("open_files = 64: EMFILE before 64") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto& l) { l.open_files = 64; }));
        auto r = runner.run(open_many);
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data.rfind("Too many open files\n", 0) == 0);
        const int opened = parse_int(r->stdout_data.substr(r->stdout_data.find('\n') + 1));
        CHECK(opened > 50);
        CHECK(opened < 64);
    }
    SUBCASE("control: open_files = 2048: all 1500 open") {
        auto runner = shannot_test::make_runner<M>(limited<T>([](auto& l) { l.open_files = 2048; }));
        auto r = runner.run(open_many);
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data == "1500\n");
    }
}

TEST_CASE_TEMPLATE("limits: a profile without limits runs with the documented defaults", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    // Loaded from JSON without "limits", as a user's profile file would be.
    auto json = shannot_test::test_profile<T>().to_json();
    json.erase("limits");
    auto profile = shannot::load_profile_from_mapping<T>(json);
    REQUIRE_MESSAGE(profile, profile.error().message);
    CHECK(profile->limits == shannot::ResourceLimits{});
    profile->allowed_commands.emplace_back("df");
    auto runner = shannot_test::make_runner<M>(*profile);
    auto r = runner.run({"sh", "-c", "cat /proc/self/limits; df -B1 --output=size /tmp /dev/shm"});
    REQUIRE_MESSAGE(r, r.error().describe());
    const auto& out = r->stdout_data;
    CAPTURE(out);
    const shannot::ResourceLimits d{};
    auto row = [&](const std::string& name, std::uint64_t soft, std::uint64_t hard) {
        const auto at = out.find(name);
        REQUIRE_MESSAGE(at != std::string::npos, name);
        std::istringstream line(out.substr(at + name.size(), out.find('\n', at) - at - name.size()));
        std::uint64_t s = 0, h = 0;
        line >> s >> h;
        CHECK_MESSAGE(s == soft, name);
        CHECK_MESSAGE(h == hard, name);
    };
    row("Max cpu time", d.cpu_seconds, d.cpu_seconds + 1);
    row("Max file size", d.file_size_bytes, d.file_size_bytes);
    row("Max open files", d.open_files, d.open_files);
    row("Max address space", d.memory_bytes, d.memory_bytes);
    row("Max core file size", 0, 0);
    CHECK(out.find(std::to_string(d.tmpfs_bytes) + "\n" + std::to_string(d.tmpfs_bytes) + "\n") != std::string::npos);
    CHECK(r->limits == d);
    CHECK_FALSE(r->limits_mechanism.empty());
}

TEST_CASE_TEMPLATE("limits: bad limits are refused, naming them, and nothing runs", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    const auto marker = std::string("30.9317");
    SUBCASE("in a profile: an unknown member, a negative, a string, zero") {
        for (const auto& c : std::vector<std::tuple<std::string, std::string, std::string>>{
                 {R"({"memory": 1})", "limits.memory", "unknown key"},
                 {R"({"processes": -1})", "limits.processes", "must be a positive integer"},
                 {R"({"processes": "many"})", "limits.processes", "must be a positive integer"},
                 {R"({"processes": 1.5})", "limits.processes", "must be a positive integer"},
                 {R"({"cpu_seconds": 0})", "limits.cpu_seconds", "must be a positive integer"},
                 {R"({"open_files": 99999999999})", "limits.open_files", "more than the largest accepted"},
                 {R"([1])", "limits", "must be an object"}}) {
            const auto& [limits, field, why] = c;
            CAPTURE(std::get<0>(c));  // not a structured binding: clang 14 cannot capture one
            auto p = shannot::load_profile_from_string<T>(R"({"name": "x", "allowed_commands": ["sleep"], "limits": )" +
                                                          limits + "}");
            REQUIRE_FALSE(p);
            CHECK(p.error().code == shannot::errc::invalid_profile);
            CHECK(p.error().message.rfind(field + ": ", 0) == 0);
            CHECK(p.error().message.find(why) != std::string::npos);
        }
    }
    SUBCASE("in a profile built in C++: validate() names it; a run starts nothing") {
        auto p = shannot_test::test_profile<T>();
        p.limits.processes = 0;
        auto sandbox = shannot_test::make_sandbox<T>(p);
        auto r = sandbox.run({"sleep", marker});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == shannot::errc::invalid_profile);
        CHECK(r.error().message.rfind("limits.processes: ", 0) == 0);
        auto s = sandbox.open_session();
        REQUIRE_FALSE(s);
        CHECK(s.error().message.rfind("limits.processes: ", 0) == 0);
    }
    SUBCASE("in RunOptions and SessionOptions: zero and absurd values name the limit") {
        auto sandbox = shannot_test::make_sandbox<T>();
        auto r = sandbox.run({"sleep", marker}, {.limits = {.memory_bytes = 0}});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == shannot::errc::invalid_argument);
        CHECK(r.error().message.rfind("limits.memory_bytes: ", 0) == 0);
        auto big = sandbox.run({"sleep", marker}, {.limits = {.processes = 1ull << 40}});
        REQUIRE_FALSE(big);
        CHECK(big.error().message.rfind("limits.processes: ", 0) == 0);
        auto s = sandbox.open_session({.limits = {.tmpfs_bytes = 0}});
        REQUIRE_FALSE(s);
        CHECK(s.error().message.rfind("limits.tmpfs_bytes: ", 0) == 0);
    }
    CHECK(shannot_test::processes_with(marker) == 0);
}

TEST_CASE_TEMPLATE("limits: a run's limits replace the profile's, higher or lower", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto sandbox = shannot_test::make_sandbox<T>(limited<T>([](auto& l) { l.cpu_seconds = 100; }));
    const std::vector<std::string> cpu = {"sh", "-c", "ulimit -t"};
    auto profile_only = sandbox.run(cpu);
    auto lower = sandbox.run(cpu, {.limits = {.cpu_seconds = 7}});
    auto higher = sandbox.run(cpu, {.limits = {.cpu_seconds = 400}});
    REQUIRE(profile_only);
    REQUIRE(lower);
    REQUIRE(higher);
    CHECK(profile_only->stdout_data == "100\n");
    CHECK(lower->stdout_data == "7\n");
    CHECK(higher->stdout_data == "400\n");
    CHECK(lower->limits.cpu_seconds == 7);
    CHECK(lower->limits.memory_bytes == shannot::ResourceLimits{}.memory_bytes);
    auto in_force = sandbox.limits_in_force({.limits = {.open_files = 99}});
    REQUIRE(in_force);
    CHECK(in_force->limits.open_files == 99);
    CHECK(in_force->limits.cpu_seconds == 100);
}

TEST_CASE_TEMPLATE("limits: in a session, the session's limits hold and a command may lower its own", T,
                   SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto sandbox = shannot_test::make_sandbox<T>(limited<T>([](auto& l) { l.cpu_seconds = 100; }));
    auto session = sandbox.open_session({.limits = {.cpu_seconds = 60, .open_files = 500}});
    REQUIRE_MESSAGE(session, session.error().describe());
    const std::vector<std::string> show = {"sh", "-c", "ulimit -t; ulimit -n"};
    auto plain = session->run(show);
    REQUIRE(plain);
    CHECK(plain->stdout_data == "60\n500\n");
    CHECK(plain->limits.cpu_seconds == 60);

    SUBCASE("a command's lower CPU limit is its own: it is stopped, the next command is not") {
        auto lowered = session->run(show, {.limits = {.cpu_seconds = 5, .open_files = 100}});
        REQUIRE(lowered);
        CHECK(lowered->stdout_data == "5\n100\n");
        auto spun = session->run({"sh", "-c", "while :; do :; done"}, {.timeout = 30s, .limits = {.cpu_seconds = 1}});
        REQUIRE_MESSAGE(spun, spun.error().describe());
        CHECK(spun->limit_exceeded == "cpu_seconds");
        CHECK_FALSE(spun->timed_out);
        auto after = session->run(show);
        REQUIRE(after);
        CHECK(after->stdout_data == "60\n500\n");
    }
    SUBCASE("raising a limit, or changing the sandbox-wide ones, is refused, naming it") {
        auto higher = session->run(show, {.limits = {.cpu_seconds = 61}});
        REQUIRE_FALSE(higher);
        CHECK(higher.error().code == shannot::errc::invalid_argument);
        CHECK(higher.error().message.rfind("limits.cpu_seconds: ", 0) == 0);
        auto processes = session->run(show, {.limits = {.processes = 10}});
        REQUIRE_FALSE(processes);
        CHECK(processes.error().message.rfind("limits.processes: ", 0) == 0);
        auto tmpfs = session->run(show, {.limits = {.tmpfs_bytes = 1 << 20}});
        REQUIRE_FALSE(tmpfs);
        CHECK(tmpfs.error().message.rfind("limits.tmpfs_bytes: ", 0) == 0);
        auto same = session->run(show, {.limits = {.cpu_seconds = 60}});
        REQUIRE(same);
        CHECK(same->stdout_data == "60\n500\n");
    }
}

namespace {

/// The pids cgroups of process `pid` under the library's cgroup parent (shannot-PID-...).
std::vector<std::string> cgroups_of(const std::string& parent, pid_t pid) {
    std::vector<std::string> found;
    const std::string prefix = "shannot-" + std::to_string(pid) + "-";
    if (DIR* d = ::opendir(parent.c_str())) {
        while (auto* e = ::readdir(d))
            if (std::string(e->d_name).rfind(prefix, 0) == 0) found.emplace_back(e->d_name);
        ::closedir(d);
    }
    return found;
}

}  // namespace

TEST_CASE_TEMPLATE("limits: 40 fresh runs in a row under processes = 4 all run, and the limit still bites after them",
                   T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    // bwrap's monitor exits without reaping its sandbox's PID 1, which init reaps when it gets
    // to it. The pids cgroup a process (locally) or a kept dispatcher (over ssh) reuses for its
    // runs is charged for that PID 1 until then, and a lazy init (this CI's container) left them
    // charged: with pids.max = processes + 1, the second run here failed ("Can't fork for
    // pid 1"). Where init reaps at once this passes either way; the control below cannot.
    auto profile = shannot_test::test_profile<T>();
    profile.limits.processes = 4;
    auto sandbox = shannot_test::make_sandbox<T>(profile);
    for (int i = 0; i < 40; ++i) {
        CAPTURE(i);
        auto r = sandbox.run({"true"});
        REQUIRE_MESSAGE(r, r.error().describe());
        REQUIRE(r->exit_code == 0);
        REQUIRE_FALSE(r->limit_exceeded);
    }
    // The control: in the same cgroup, four sleepers and their shell are more than 4 processes.
    auto r = sandbox.run({"sh", "-c", "sleep 1 & sleep 1 & sleep 1 & sleep 1 & wait"});
    REQUIRE_MESSAGE(r, r.error().describe());
    CHECK(r->limit_exceeded == "processes");
}

TEST_CASE("limits: the pids cgroups the library makes hold the count, and go with the process") {
    SHANNOT_REQUIRE_BWRAP();
    const auto& parent = shannot::detail::cgroup_parent<void>();
    if (!parent) {
        // Root on a host with a pids controller (CI: this machine, cgroup v1) always has one.
        if (shannot_test::in_ci() && ::getuid() == 0) FAIL("no pids cgroup parent for root (CI=true)");
        MESSAGE("skipped: no pids cgroup this process may create children in");
        return;
    }
    CAPTURE(parent->dir);
    SUBCASE("the mechanism in force names the cgroup, and a run reports it") {
        shannot::LocalSandbox sandbox(shannot_test::test_profile());
        auto in_force = sandbox.limits_in_force();
        REQUIRE(in_force);
        const auto expected =
            parent->version == 2 ? shannot::limits_mechanism::cgroup_v2 : shannot::limits_mechanism::cgroup_v1;
        CHECK(in_force->mechanism == expected);
        auto r = sandbox.run({"true"});
        REQUIRE(r);
        CHECK(r->limits_mechanism == expected);
    }
    SUBCASE("a run's cgroup (moved into, as with cgroup v2) bounds forks, counts the refusals, and is removed") {
        auto cg = shannot::detail::RunCgroup::make(*parent, 4);
        REQUIRE(cg);
        const auto made = cgroups_of(parent->dir, ::getpid());
        CHECK(made.size() >= 1);
        int ready[2];
        REQUIRE(::pipe(ready) == 0);
        const pid_t child = ::fork();
        if (child == 0) {  // waits to be moved, then forks 10 sleepers and says how many it got
            char b;
            if (::read(ready[0], &b, 1) != 1) ::_exit(100);
            int got = 0;
            for (int i = 0; i < 10; ++i) {
                const pid_t p = ::fork();
                if (p == 0) {
                    ::pause();
                    ::_exit(0);
                }
                if (p > 0) ++got;
            }
            ::kill(0, SIGKILL);  // this process group: itself and the sleepers
            ::_exit(got);
        }
        REQUIRE(child > 0);
        ::setpgid(child, child);
        CHECK(cg.add(child));
        REQUIRE(::write(ready[1], "x", 1) == 1);
        int status = 0;
        ::waitpid(child, &status, 0);
        ::close(ready[0]);
        ::close(ready[1]);
        CHECK(cg.limit_events() > 0);
        cg.remove();
        CHECK(cgroups_of(parent->dir, ::getpid()).size() == made.size() - 1);
    }
    SUBCASE("a process that ran sandboxes leaves no cgroup behind when it exits") {
        const auto probe = shannot_test::helper_path("shannot_rlimit_probe");
        REQUIRE_MESSAGE(!probe.empty(), "tests/helpers/rlimit_probe.cpp was not built next to the test executable");
        const std::string arg = "64";
        char* argv[] = {const_cast<char*>(probe.c_str()), const_cast<char*>(arg.c_str()), nullptr};
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        pid_t pid = -1;
        REQUIRE(::posix_spawn(&pid, probe.c_str(), &actions, nullptr, argv, environ) == 0);
        posix_spawn_file_actions_destroy(&actions);
        // While it runs (three sandboxes), its slot cgroup exists; once it exited, it is gone.
        bool seen = false;
        int status = 0;
        while (::waitpid(pid, &status, WNOHANG) == 0) {
            seen = seen || !cgroups_of(parent->dir, pid).empty();
            std::this_thread::sleep_for(1ms);
        }
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        if (parent->version == 1) CHECK(seen);
        CHECK(cgroups_of(parent->dir, pid).empty());
    }
}
