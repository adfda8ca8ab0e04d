// SPDX-License-Identifier: MIT
// SandboxManager end to end over both transports, against real bwrap and a real sshd.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <type_traits>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support/bwrap_env.hpp"
#include "support/transports.hpp"

using namespace std::chrono_literals;
using shannot::errc;

TEST_CASE_TEMPLATE("sandbox isolation", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto sandbox = shannot_test::make_runner<M>();

    SUBCASE("writes under read-only binds fail") {
        auto r = sandbox.run({"sh", "-c", "touch /usr/shannot-write-test"});
        REQUIRE(r);
        CHECK(r->exit_code != 0);
        CHECK(r->stderr_data.find("Read-only file system") != std::string::npos);
        // A small file the local transport gives as a copy (--file) is as read-only as a bind.
        auto copied = sandbox.run({"sh", "-c", "echo x >> /etc/passwd"});
        REQUIRE(copied);
        CHECK(copied->exit_code != 0);
        CHECK(copied->stderr_data.find("Read-only file system") != std::string::npos);
    }
    SUBCASE("tmpfs writes work; gone in the next fresh run, kept for the next command of a session") {
        auto first = sandbox.run({"sh", "-c", "echo hello > /tmp/f && cat /tmp/f"});
        REQUIRE(first);
        CHECK(first->stdout_data == "hello\n");
        auto second = sandbox.run({"sh", "-c", "cat /tmp/f"});
        REQUIRE(second);
        if constexpr (M::session) {
            CHECK(second->exit_code == 0);
            CHECK(second->stdout_data == "hello\n");
        } else {
            CHECK(second->exit_code != 0);
            CHECK(second->stdout_data.empty());
        }
    }
    SUBCASE("the caller's environment is invisible; the profile's and the run's variables are set") {
        ::setenv("SHANNOT_TEST_SECRET", "hunter2", 1);
        auto r = sandbox.run({"env"}, {.environment = {{"RUN_VAR", "from-run"}}});
        ::unsetenv("SHANNOT_TEST_SECRET");
        REQUIRE(r);
        CHECK(r->stdout_data.find("hunter2") == std::string::npos);
        CHECK(r->stdout_data.find("SHANNOT_PROFILE_VAR=from-profile\n") != std::string::npos);
        CHECK(r->stdout_data.find("RUN_VAR=from-run\n") != std::string::npos);
    }
    SUBCASE("no network: a listener on 127.0.0.1 cannot be reached") {
        const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        REQUIRE(listener >= 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener, 4) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
        const auto port = std::to_string(ntohs(addr.sin_port));
        // Sanity: the same command reaches the listener from the host, so a failure inside means isolation.
        auto r = sandbox.run({"bash", "-c", "echo hi > /dev/tcp/127.0.0.1/" + port + " && echo connected"});
        REQUIRE(r);
        CHECK(r->exit_code != 0);
        CHECK(r->stdout_data.find("connected") == std::string::npos);
        CHECK(::accept(listener, nullptr, nullptr) < 0);  // nothing arrived
        ::close(listener);
    }
    SUBCASE("only the sandbox's own processes are visible") {
        auto r = sandbox.run({"sh", "-c", "ls /proc | grep -c '^[0-9]'; ls -d /proc/[0-9]*"});
        REQUIRE(r);
        CHECK(r->exit_code == 0);
        CHECK(std::atoi(r->stdout_data.c_str()) <= 5);
        CHECK(r->stdout_data.find("/proc/" + std::to_string(::getpid()) + "\n") == std::string::npos);
    }
    SUBCASE("the caller's stdin is not readable") {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        REQUIRE(::write(fds[1], "caller-secret\n", 14) == 14);
        ::close(fds[1]);
        const int saved = ::dup(0);
        ::dup2(fds[0], 0);
        ::close(fds[0]);
        auto r = sandbox.run({"cat"});
        ::dup2(saved, 0);
        ::close(saved);
        REQUIRE(r);
        CHECK(r->exit_code == 0);
        CHECK(r->stdout_data.empty());
    }
    SUBCASE("only fds 0, 1 and 2 are open inside") {
        auto r = sandbox.run({"sh", "-c", "ls /proc/$$/fd"});
        REQUIRE(r);
        CHECK(r->stdout_data == "0\n1\n2\n");
    }
    SUBCASE("commands start with default signal dispositions and nothing blocked") {
        // SigIgn bits 31 and 32 are glibc's internal signals 32 and 33, which posix_spawn's
        // "all signals" set leaves alone. (Remotely this proves the dispatcher starts bwrap as a
        // foreground job: POSIX sh starts background jobs with SIGINT and SIGQUIT ignored.)
        auto r = sandbox.run({"grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"});
        REQUIRE(r);
        REQUIRE(r->exit_code == 0);
        unsigned long long ignored = ~0ull, blocked = ~0ull;
        REQUIRE(std::sscanf(r->stdout_data.c_str(), "SigBlk: %llx SigIgn: %llx", &blocked, &ignored) == 2);
        const unsigned long long allowed = 0x180000000ull;
        CHECK(blocked == 0);
        CHECK((ignored & ~allowed) == 0);
    }
    SUBCASE("the sandbox runs in its own session") {
        // --new-session: the session leader is the sandbox's own PID 1. Without it the session would
        // be the caller's, which lies outside the pid namespace and reads as 0.
        auto r = sandbox.run({"sh", "-c", "set -- $(cat /proc/$$/stat); echo $6"});
        REQUIRE(r);
        CHECK(r->stdout_data == "1\n");
    }
}

TEST_CASE_TEMPLATE("sandbox deadlines and cancellation", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto sandbox = shannot_test::make_runner<M>();

    SUBCASE("a 1 s timeout stops a grandchild that holds stdout, promptly, and nothing survives") {
        const auto start = std::chrono::steady_clock::now();
        auto r = sandbox.run({"sh", "-c", "sleep 4321.5 & exec sleep 4321.6"}, {.timeout = 1s});
        const auto took = std::chrono::steady_clock::now() - start;
        REQUIRE(r);
        CHECK(r->timed_out);
        CHECK_FALSE(r->succeeded());
        CHECK(took < 10s);
        std::this_thread::sleep_for(200ms);
        CHECK(shannot_test::processes_with("4321.5") == 0);
        CHECK(shannot_test::processes_with("4321.6") == 0);
    }
    SUBCASE("a command ignoring SIGTERM is killed after the grace") {
        auto r = sandbox.run({"sh", "-c", "trap '' TERM; sleep 4322.5; sleep 4322.5"},
                             {.timeout = 500ms, .kill_grace = 300ms});
        REQUIRE(r);
        CHECK(r->timed_out);
        CHECK(shannot_test::processes_with("4322.5") == 0);
    }
    SUBCASE("cancel from another thread stops the run") {
        shannot::CancelToken token;
        std::thread canceller([token]() mutable {
            std::this_thread::sleep_for(300ms);
            token.cancel();
        });
        auto r = sandbox.run({"sleep", "4323.5"}, {.cancel = token});
        canceller.join();
        REQUIRE(r);
        CHECK(r->cancelled);
        CHECK_FALSE(r->timed_out);
        CHECK(shannot_test::processes_with("4323.5") == 0);
    }
    SUBCASE("no timeout at all when asked") {
        auto r = sandbox.run({"true"}, {.timeout = std::nullopt});
        REQUIRE(r);
        CHECK(r->succeeded());
    }
}

TEST_CASE_TEMPLATE("sandbox output", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto sandbox = shannot_test::make_runner<M>();

    SUBCASE("1 GiB (256 MiB over ssh) under a 1 MiB cap: head and tail kept, dropped count exact, memory bounded") {
        const unsigned long long total = std::is_same_v<T, shannot::PosixSpawnTransport> ? 1ull << 30 : 1ull << 28;
        const long before = shannot_test::peak_rss_kib();
        auto r = sandbox.run({"sh", "-c", "printf START; head -c " + std::to_string(total) + " /dev/zero; printf END"},
                             {.timeout = 120s, .max_output = 1u << 20});
        const long after = shannot_test::peak_rss_kib();
        REQUIRE(r);
        CHECK(r->exit_code == 0);
        CHECK(r->stdout_truncated);
        CHECK(r->stdout_data.size() == (1u << 20));
        CHECK(r->stdout_dropped == total + 8 - (1u << 20));
        CHECK(r->stdout_data.substr(0, 5) == "START");
        CHECK(r->stdout_data.substr(r->stdout_data.size() - 3) == "END");
        CHECK(after - before < 64 * 1024);
    }
    SUBCASE("binary output arrives byte-exact, through stdin and back") {
        std::string all;
        for (int round = 0; round < 64; ++round)
            for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
        auto r = sandbox.run({"cat"}, {.input = all});
        REQUIRE(r);
        CHECK(r->stdout_data == all);
        auto printed = sandbox.run({"printf", "\\000\\001\\377\\n"});
        REQUIRE(printed);
        CHECK(printed->stdout_data == std::string("\0\1\377\n", 4));
    }
    SUBCASE("stream() delivers tagged chunks as they come, and the result still holds them") {
        std::string out, err;
        auto r = sandbox.stream(
            {"sh", "-c", "echo one; echo two >&2; echo three"}, {},
            [&](const shannot::OutputChunk& c) { (c.stream == shannot::StreamKind::out ? out : err) += c.data; });
        REQUIRE(r);
        CHECK(out == "one\nthree\n");
        CHECK(err == "two\n");
        CHECK(r->stdout_data == out);
    }
    SUBCASE("a command that never reads its stdin does not hang the caller") {
        auto r = sandbox.run({"true"}, {.input = std::string(10u << 20, 'x'), .timeout = 20s});
        REQUIRE(r);
        CHECK(r->succeeded());
    }
}

TEST_CASE_TEMPLATE("sandbox admission and errors", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto sandbox = shannot_test::make_runner<M>();
    constexpr bool local = M::local;

    SUBCASE("refused commands never start") {
        for (const auto& cmd : std::vector<std::string>{"../bin/ls", "/usr/bin/../bin/rm", "/bin/*", "LS", "ls;id",
                                                        "rm", "./ls", "bin/ls", "/usr/bin//ls"}) {
            CAPTURE(cmd);
            auto r = sandbox.run({cmd, "/"});
            REQUIRE_FALSE(r);
            CHECK(r.error().code == errc::command_refused);
            CHECK(r.error().message.find("'test'") != std::string::npos);
            CHECK(r.error().result == nullptr);
        }
    }
    SUBCASE("allowed commands run, bare or absolute") {
        auto bare = sandbox.run({"ls", "/usr"});
        REQUIRE(bare);
        CHECK(bare->succeeded());
        auto absolute = sandbox.run({"/usr/bin/ls", "/usr"});
        REQUIRE(absolute);
        CHECK(absolute->stdout_data == bare->stdout_data);
    }
    SUBCASE("check turns a failure into command_failed carrying the result") {
        auto r = sandbox.run({"sh", "-c", "echo oops >&2; exit 3"}, {.check = true});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::command_failed);
        REQUIRE(r.error().result);
        CHECK(r.error().result->exit_code == 3);
        CHECK(r.error().message.find("status 3: oops") != std::string::npos);
    }
    SUBCASE("bad per-run input is refused before admission, naming the culprit, in every mode") {
        const std::vector<std::pair<std::vector<std::string>, shannot::RunOptions>> bad = {
            {{}, {}},
            {{""}, {}},
            {{"echo", std::string("a\0b", 3)}, {}},
            {{"true"}, {.environment = {{"A B", "x"}}}},
            {{"true"}, {.environment = {{"V", std::string("a\0b", 3)}}}},
            {{"true"}, {.working_directory = "tmp"}},
            {{"true"}, {.working_directory = std::string("/t\0mp", 4)}},
        };
        const std::vector<std::string> messages = {
            "empty command",
            "empty command",
            "command[1] contains a NUL byte",
            "environment variable name 'A B' is not valid (want [A-Za-z_][A-Za-z0-9_]*)",
            "environment variable V contains a NUL byte",
            "working directory 'tmp' must be an absolute path without NUL",
            "working directory '" + std::string("/t\0mp", 4) + "' must be an absolute path without NUL",
        };
        for (std::size_t i = 0; i < bad.size(); ++i) {
            CAPTURE(i);
            auto r = sandbox.run(bad[i].first, bad[i].second);
            REQUIRE_FALSE(r);
            CHECK(r.error().code == errc::invalid_argument);
            CHECK(r.error().message == messages[i]);
            CHECK(r.error().result == nullptr);
        }
        // The control: the same settings with good values run.
        auto good = sandbox.run({"sh", "-c", "echo \"$A_B\" \"$(pwd)\""},
                                {.environment = {{"A_B", "x"}}, .working_directory = "/tmp"});
        REQUIRE(good);
        CHECK(good->stdout_data == "x /tmp\n");
    }
    SUBCASE("a bad environment name is refused before anything starts") {
        for (const auto& name : std::vector<std::string>{"A B", "LD_PRELOAD=x", "", "1X"}) {
            CAPTURE(name);
            auto r = sandbox.run({"true"}, {.environment = {{name, "v"}}});
            REQUIRE_FALSE(r);
            CHECK(r.error().code == errc::invalid_argument);
        }
    }
    SUBCASE("a relative working directory is refused; an absolute one is used") {
        auto bad = sandbox.run({"true"}, {.working_directory = "tmp"});
        REQUIRE_FALSE(bad);
        CHECK(bad.error().code == errc::invalid_argument);
        auto good = sandbox.run({"sh", "-c", "pwd"}, {.working_directory = "/usr"});
        REQUIRE(good);
        CHECK(good->stdout_data == "/usr\n");
    }
    SUBCASE("a failing mount is a setup error, told apart without reading bwrap's stderr") {
        auto profile = shannot_test::test_profile<T>();
        profile.additional_args = {"--ro-bind", "/nonexistent-shannot-source", "/x"};
        auto broken = shannot_test::make_runner<M>(profile);
        auto r = broken.run({"true"});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::sandbox_setup_failed);
        CHECK(r.error().message.find("nonexistent-shannot-source") != std::string::npos);  // bwrap's words ride along
    }
    if constexpr (local) SUBCASE("a missing bwrap is a clear error") {
            shannot::LocalSandbox nowhere(shannot_test::test_profile(),
                                          shannot::PosixSpawnTransport({.bwrap_path = "/nonexistent/bwrap"}));
            auto r = nowhere.run({"true"});
            REQUIRE_FALSE(r);
            CHECK(r.error().code == errc::bwrap_not_found);
            CHECK(r.error().message.find("/nonexistent/bwrap") != std::string::npos);
        }
}

// Issue 23: Shannot's profiles run unchanged on hosts that lack some bind source.
TEST_CASE_TEMPLATE("missing bind sources: skipped and said, unless required or masking", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    constexpr bool local = M::local;
    const std::string missing = "/nonexistent-shannot-bind-source";
    const auto with = [](shannot::SandboxBind bind) {
        auto p = shannot_test::test_profile<T>();
        p.binds.push_back(std::move(bind));
        return p;
    };
    const std::string field = "binds[" + std::to_string(shannot_test::test_profile<T>().binds.size()) + "].source";
    const std::vector<std::string> probe = {"sh", "-c", "if [ -e /data ]; then echo present; else echo absent; fi"};

    SUBCASE("a missing source is skipped and the command runs; here a warning names the field") {
        auto runner = shannot_test::make_runner<M>(with({.source = missing, .target = "/data"}));
        for (int i = 0; i < 2; ++i) {  // every run (every command of a session) carries it
            auto r = runner.run(probe);
            REQUIRE_MESSAGE(r, (r ? "" : r.error().describe()));
            CHECK(r->stdout_data == "absent\n");
            if constexpr (local) {
                REQUIRE(r->warnings.size() == 1);
                CHECK(r->warnings[0] ==
                      field + ": " + missing +
                          " does not exist here: the bind to /data is skipped (\"required\": true makes "
                          "this an error)");
            } else {
                CHECK(r->warnings.empty());  // the remote's bwrap skips it (--ro-bind-try); nothing is known here
            }
        }
        // Control: a source that exists is mounted, and nothing is said.
        auto present = shannot_test::make_runner<M>(with({.source = "/usr/share", .target = "/data"}));
        auto r = present.run(probe);
        REQUIRE(r);
        CHECK(r->stdout_data == "present\n");
        CHECK(r->warnings.empty());
    }
    SUBCASE("an optional one is skipped without a word") {
        auto runner = shannot_test::make_runner<M>(with({.source = missing, .target = "/data", .optional = true}));
        auto r = runner.run(probe);
        REQUIRE(r);
        CHECK(r->stdout_data == "absent\n");
        CHECK(r->warnings.empty());
    }
    SUBCASE("a required one is an error that names the field (over ssh: bwrap's, naming the source)") {
        auto runner = shannot_test::make_runner<M>(with({.source = missing, .target = "/data", .required = true}));
        auto r = runner.run(probe);
        REQUIRE_FALSE(r);
        if constexpr (local) {
            CHECK(r.error().code == errc::invalid_profile);
            CHECK(r.error().message == field + ": " + missing + " does not exist, and the bind is \"required\"");
        } else {
            CHECK(r.error().code == errc::sandbox_setup_failed);
            CHECK(r.error().message.find(missing) != std::string::npos);
        }
    }
    SUBCASE("a bind that masks part of another mount is never skipped, even when optional") {
        // test_profile binds /usr: a bind onto /usr/share/doc hides what the host has there.
        for (const bool optional : {false, true}) {
            CAPTURE(optional);
            auto runner = shannot_test::make_runner<M>(
                with({.source = missing, .target = "/usr/share/doc", .optional = optional}));
            auto r = runner.run({"ls", "/usr/share/doc"});
            REQUIRE_FALSE(r);  // skipping it would have listed the host's /usr/share/doc
            if constexpr (local) {
                CHECK(r.error().code == errc::invalid_profile);
                CHECK(r.error().message.find(field + ": " + missing +
                                             " does not exist, and the bind masks part of binds[0] (/usr)") == 0);
            } else {
                CHECK(r.error().code == errc::sandbox_setup_failed);
                CHECK(r.error().message.find(missing) != std::string::npos);
            }
        }
        // Control: with its source present, the mask shows that source instead of the host's files.
        shannot_test::TempDir empty;
        auto masked = shannot_test::make_runner<M>(with({.source = empty.path(), .target = "/usr/share/doc"}));
        auto r = masked.run({"ls", "-A", "/usr/share/doc"});
        REQUIRE_MESSAGE(r, (r ? "" : r.error().describe()));
        CHECK(r->exit_code == 0);
        CHECK(r->stdout_data.empty());
    }
}

TEST_CASE_TEMPLATE("sandbox concurrency", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto sandbox = shannot_test::make_runner<M>();
    constexpr bool local = M::local;
    const int fds_before = shannot_test::count_fds();

    SUBCASE("32 runs from 8 threads at once return correct, separate results") {
        std::atomic<int> good{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&, t] {
                for (int i = 0; i < 4; ++i) {
                    const auto tag = std::to_string(t * 100 + i);
                    auto r = sandbox.run({"sh", "-c", "echo $0; echo err$0 >&2", tag});
                    if (r && r->stdout_data == tag + "\n" && r->stderr_data == "err" + tag + "\n") ++good;
                }
            });
        for (auto& th : threads) th.join();
        CHECK(good == 32);
    }
    SUBCASE("run_async returns the same result as run") {
        auto future = sandbox.run_async({"echo", "async"});
        auto r = future.get();
        REQUIRE(r);
        CHECK(r->stdout_data == "async\n");
    }
    if constexpr (local && !M::session)
        SUBCASE("a sandbox started on a thread that then ends keeps running (--die-with-parent follows threads)") {
            shannot::PosixSpawnTransport transport;
            auto args = sandbox.dry_run({"sh", "-c", "sleep 0.5; echo survived"});
            REQUIRE(args);
            std::optional<shannot::Result<shannot::PosixSpawnTransport::process_type>> process;
            shannot::LaunchSpec spec{.bwrap_args = *args};
            REQUIRE(shannot::detail::add_filter_files(sandbox.profile(), spec));
            for (const auto& [fd, path] : shannot::detail::file_copies(*args))  // the small files bwrap copies
                spec.files.push_back({.fd = fd, .path = path});
            std::thread([&] { process.emplace(transport.launch(spec)); }).join();
            REQUIRE(process->has_value());
            std::string out;
            const std::optional<std::string> no_input;
            auto outcome = shannot::detail::run_loop(**process, no_input, 10s, 500ms, -1,
                                                     [&](shannot::StreamKind k, std::string_view d) {
                                                         if (k == shannot::StreamKind::out) out += d;
                                                     });
            CHECK(outcome.exit.kind == shannot::ExitInfo::Kind::exited);
            CHECK(out == "survived\n");
        }
    // No descriptor and no zombie outlives a run (the ssh pool keeps warm sessions by design; the
    // test binary's sshd and ssh masters are live children, so look for zombies, not children).
    // A spare sandbox holds descriptors while it is built after a run (fault_test waits for it).
    if (local && !M::spare) CHECK(shannot_test::count_fds() == fds_before);
    CHECK(shannot_test::zombie_children().empty());
}

TEST_CASE("LocalSandbox built-in profiles") {
    SHANNOT_REQUIRE_BWRAP();
    for (auto name : shannot::builtin_profile_names) {
        CAPTURE(name);
        auto profile = shannot::builtin_profile(name);
        REQUIRE(profile);
        shannot::LocalSandbox sandbox(*profile);
        auto r = sandbox.run({"ls", "/"});
        REQUIRE(r);
        CHECK(r->succeeded());
        CHECK(r->stdout_data.find("usr\n") != std::string::npos);
    }
    SUBCASE("readonly hides /etc/shadow and ssh host keys") {
        shannot::LocalSandbox sandbox(*shannot::builtin_profile("readonly"));
        auto shadow = sandbox.run({"cat", "/etc/shadow"});
        REQUIRE(shadow);
        CHECK(shadow->stdout_data.find("root:") == std::string::npos);
        auto keys = sandbox.run({"ls", "-A", "/etc/ssh"});
        REQUIRE(keys);
        CHECK(keys->stdout_data.empty());
    }
    SUBCASE("diagnostics sees host processes through a read-only /proc") {
        shannot::LocalSandbox sandbox(*shannot::builtin_profile("diagnostics"));
        auto r = sandbox.run({"ps", "-e", "-o", "pid="});
        REQUIRE(r);
        CHECK(r->stdout_data.find(std::to_string(::getpid())) != std::string::npos);
        auto write = sandbox.run({"ls", "/proc/sys"});  // readable
        REQUIRE(write);
    }
}

TEST_CASE_TEMPLATE("seccomp, here and over ssh (the remote is this host)", T, shannot::PosixSpawnTransport,
                   shannot::OpenSshProcessTransport) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    if (shannot_test::test_audit_arch == 0) {
        MESSAGE("skipped: no test seccomp filter for this architecture");
        return;
    }
    shannot_test::TempDir dir;
    const std::string path = dir.path() + "/deny-mkdir.bpf";
    REQUIRE(shannot_test::write_mkdir_denying_filter(path));

    auto profile = shannot_test::test_profile<T>();
    SUBCASE("the profile's filter reaches bwrap as an fd and is enforced") {
        profile.seccomp_profile = path;
        auto sandbox = shannot_test::make_sandbox<T>(profile);
        auto denied = sandbox.run({"mkdir", "/tmp/x"});
        REQUIRE(denied);
        CHECK(denied->exit_code != 0);
        CHECK(denied->stderr_data.find("Operation not permitted") != std::string::npos);
        auto allowed = sandbox.run({"ls", "/"});
        REQUIRE(allowed);
        CHECK(allowed->succeeded());
        const auto args = sandbox.dry_run({"ls"});
        REQUIRE(args);
        CHECK(std::find(args->begin(), args->end(), path) == args->end());  // an fd number, never the path
    }
    SUBCASE("without the filter the same mkdir works (the test can fail)") {
        auto sandbox = shannot_test::make_sandbox<T>(profile);
        auto r = sandbox.run({"mkdir", "/tmp/x"});
        REQUIRE(r);
        CHECK(r->succeeded());
    }
}

namespace {

/// Where the host's /bin is a symlink to a folder (merged /usr): the folder it resolves to.
std::string host_bin_link() {
    struct stat st {};
    if (::lstat("/bin", &st) != 0 || !S_ISLNK(st.st_mode)) return {};
    char* resolved = ::realpath("/bin", nullptr);
    if (resolved == nullptr) return {};
    std::string out = resolved;
    std::free(resolved);
    return out;
}

bool has_words(const std::vector<std::string>& argv, const std::vector<std::string>& words) {
    return std::search(argv.begin(), argv.end(), words.begin(), words.end()) != argv.end();
}

}  // namespace

TEST_CASE_TEMPLATE("the host's merged-/usr symlinks are symlinks in the sandbox, not binds", T,
                   shannot::PosixSpawnTransport, shannot::OpenSshProcessTransport) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    const auto bin = host_bin_link();
    if (bin.empty()) {
        if (shannot_test::in_ci()) FAIL("/bin is not a symlink here (CI=true expects Debian 12, merged /usr)");
        MESSAGE("skipped: /bin is not a symlink on this host");
        return;
    }
    // A transport of its own: the ssh one learns the remote's symlinks from its first session.
    auto transport = shannot_test::TransportFixture<T>::transport();
    if constexpr (!std::is_same_v<T, shannot::PosixSpawnTransport>) transport = T(transport.connection());
    shannot::SandboxManager<T> sandbox(shannot_test::test_profile<T>(), transport);
    const std::vector<std::string> linked = {"--symlink", bin, "/bin"};
    if constexpr (!std::is_same_v<T, shannot::PosixSpawnTransport>) {
        auto before = sandbox.dry_run({"true"});
        REQUIRE(before);
        CHECK_FALSE(has_words(*before, linked));  // nothing known of the remote yet: the bind
        CHECK(has_words(*before, {"--ro-bind-try", "/bin", "/bin"}));
        REQUIRE(sandbox.run({"true"}));
    }
    auto args = sandbox.dry_run({"true"});
    REQUIRE(args);
    CHECK(has_words(*args, linked));
    CHECK_FALSE(has_words(*args, {"--ro-bind-try", "/bin", "/bin"}));

    auto r = sandbox.run({"sh", "-c", "cd -P /bin && pwd && test -x /bin/sh && echo runs"});
    REQUIRE(r);
    CHECK(r->exit_code == 0);
    CHECK(r->stdout_data == bin + "\nruns\n");
    if constexpr (shannot::SessionTransport<T>) {
        auto session = sandbox.open_session();
        REQUIRE(session);
        auto s = session->run({"sh", "-c", "cd -P /bin && pwd"});
        REQUIRE(s);
        CHECK(s->stdout_data == bin + "\n");
    }

    // Without /usr in the profile the symlink would lead nowhere: /bin stays a bind, and works.
    auto no_usr = shannot_test::test_profile<T>();
    std::erase_if(no_usr.binds, [](const shannot::SandboxBind& b) { return b.target == "/usr"; });
    shannot::SandboxManager<T> bare(no_usr, transport);
    auto bare_args = bare.dry_run({"true"});
    REQUIRE(bare_args);
    CHECK(has_words(*bare_args, {"--ro-bind-try", "/bin", "/bin"}));
    auto listed = bare.run({"sh", "-c", "test -d /usr || echo no-usr; test -x /bin/sh && echo runs"});
    REQUIRE(listed);
    CHECK(listed->stdout_data == "no-usr\nruns\n");
}
