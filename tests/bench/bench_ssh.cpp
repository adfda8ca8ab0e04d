// SPDX-License-Identifier: MIT
// Remote benchmarks of issue 6, against a private sshd on 127.0.0.1 (tests/support/sshd_fixture.hpp) whose
// logins get an empty HOME (no rc file runs); B4 and B5 also print the figure with the user's own HOME.
// One per invocation: `bench_ssh b4|b5|b5a|b9|b19 [--reps N]`.
//   B4  SshSandbox::run (fresh sandbox per command, warm session) vs `ssh -S <ControlMaster>`
//       running the same bwrap argv
//   B5  the same SshSandbox::run vs a new ssh connection per command
//   B9  64 commands over 8 connections at once vs the same 64 one after another
//   B19 SshSandbox::run (fresh sandbox, warm connection) vs LocalSandbox::run, same profile
//   B5a (extra, no target) the remote dispatcher alone, run by this host's `sh` over pipes (no
//       ssh), vs a bare spawn of the same bwrap argv: what the dispatcher's shell costs a run
// Informational: prints figures and PASS/MISS, exits 0 unless a run failed (77: cannot run here).
#define DOCTEST_CONFIG_DISABLE  // the support headers use doctest macros; no test runner here
#include <shannot/shannot.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bench_util.hpp"
#include "support/sandbox_env.hpp"
#include "support/dispatcher_driver.hpp"
#include "support/sshd_fixture.hpp"

using namespace shannot_bench;
using shannot::OpenSshProcessTransport;

namespace {

shannot::SshSandbox make_sandbox(const shannot::SshConnection& connection,
                                 shannot::SandboxProfile<OpenSshProcessTransport> profile) {
    return shannot::SshSandbox(std::move(profile), OpenSshProcessTransport(connection));
}

shannot::SandboxProfile<OpenSshProcessTransport> minimal_profile() {
    auto p = shannot::builtin_profile<OpenSshProcessTransport>("minimal");
    if (!p) die(p.error().message);
    return *p;
}

std::string run_or_die(shannot::SshSandbox& sandbox, const std::vector<std::string>& command) {
    auto r = sandbox.run(command);
    if (!r) die("ssh sandbox run of '" + command.front() + "' failed: " + r.error().message);
    if (r->exit_code != 0)
        die("ssh sandbox run of '" + command.front() + "' exited " + std::to_string(r->exit_code) + ": " +
            r->stderr_data);
    return std::move(r->stdout_data);
}

/// The built-in syscall filter in a file of this host (the remote is this host), for the
/// comparisons that start bwrap themselves: the dispatcher opens it at fd 6 from a descriptor.
const std::string& filter_file() {
    static const std::string path = [] {
        const auto bytes = shannot::syscall_filter_bytes("default", std::vector<std::string>{});
        if (!bytes) die(bytes.error().message);
        const std::string file = "/tmp/shannot-bench-filter-" + std::to_string(::getpid()) + ".bpf";
        std::FILE* f = std::fopen(file.c_str(), "wb");
        if (!f || std::fwrite(bytes->data(), 1, bytes->size(), f) != bytes->size() || std::fclose(f) != 0)
            die("cannot write " + file);
        std::atexit([] { std::remove(filter_file().c_str()); });
        return file;
    }();
    return path;
}

/// What the remote login shell gets to run the same bwrap argv the transport would: the words
/// quoted as the library quotes them, fd 4 (--json-status-fd) opened as the dispatcher does, the
/// built-in syscall filter at fd 6, and the small files bwrap copies (`--file FD PATH`) opened
/// at their fds, as the dispatcher opens them.
std::string remote_bwrap_command(shannot::SshSandbox& sandbox, const std::vector<std::string>& command) {
    auto args = sandbox.dry_run(command);
    if (!args) die("dry_run: " + args.error().message);
    std::vector<std::string> words{sandbox.transport().connection().remote_bwrap};
    words.insert(words.end(), args->begin(), args->end());
    std::string line = shannot::detail::shell_join(words) + " 4>/dev/null 6<" + filter_file();
    for (const auto& [fd, path] : shannot::detail::file_copies(*args)) {
        // Appended piece by piece: g++ 12 -O3 warns (-Wrestrict) on " " + std::string here.
        line += ' ';
        line += std::to_string(fd);
        line += '<';
        line += shannot::detail::shell_quote(path);
    }
    return line;
}

/// The ssh client argv with the fixture's key, known_hosts and port (the library's own options).
std::vector<std::string> ssh_argv(const shannot::SshConnection& c, std::vector<std::string> before_options,
                                  const std::string& remote_command) {
    std::vector<std::string> argv{c.ssh_binary};
    argv.insert(argv.end(), before_options.begin(), before_options.end());
    for (auto& o : shannot::ssh_base_options(c)) argv.push_back(std::move(o));
    argv.insert(argv.end(), {"--", shannot::ssh_destination(c), remote_command});
    return argv;
}

/// A ControlMaster of our own (`ssh -M -S sock -N -o ControlPersist=no ...`), ended on destruction.
class ControlMaster {
public:
    explicit ControlMaster(const shannot::SshConnection& c) {
        char templ[] = "/tmp/shannot-bench-XXXXXX";
        if (!::mkdtemp(templ)) die("mkdtemp failed");
        dir_ = templ;
        socket_ = dir_ + "/master";
        auto argv = ssh_argv(c, {"-M", "-S", socket_, "-N", "-o", "ControlPersist=no"}, "");
        argv.pop_back();  // -N: no remote command
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        const auto log = dir_ + "/log";
        posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int rc = ::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0) die("cannot start ssh: " + std::string(std::strerror(rc)));
        for (int i = 0; i < 1000; ++i) {
            struct stat st {};
            if (::stat(socket_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                const auto why = shannot_test::read_text(log);
                cleanup();
                die("the ControlMaster exited: " + why);
            }
            ::usleep(10'000);
        }
        cleanup();
        die("the ControlMaster did not listen within 10 s");
    }
    ControlMaster(const ControlMaster&) = delete;
    ControlMaster& operator=(const ControlMaster&) = delete;
    ~ControlMaster() { cleanup(); }
    [[nodiscard]] const std::string& socket() const { return socket_; }

private:
    void cleanup() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            pid_ = -1;
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    std::string dir_, socket_;
    pid_t pid_ = -1;
};

void check_ssh(const Spawned& s, const char* what, std::uint64_t expected_bytes) {
    if (!s.ok()) die(std::string(what) + " failed: " + s.describe());
    if (expected_bytes && s.out_bytes != expected_bytes)
        die(std::string(what) + " printed " + std::to_string(s.out_bytes) + " bytes, the sandbox " +
            std::to_string(expected_bytes));
}

struct B4Figures {
    double run, master, empty;
    std::vector<double> run_samples, master_samples, empty_samples;
};

B4Figures measure_b4(const shannot_test::SshdFixture& sshd, int reps) {
    const auto conn = sshd.connection();
    auto sandbox = make_sandbox(conn, minimal_profile());
    const std::vector<std::string> command = {"ls", "/"};
    const auto expected = run_or_die(sandbox, command).size();  // also warms the session
    ControlMaster master(conn);
    const auto client =
        ssh_argv(conn, {"-S", master.socket(), "-o", "ControlMaster=no"}, remote_bwrap_command(sandbox, command));
    const SpawnOptions via_path{.search_path = true};

    // A third, interleaved with the two: an ssh session through the same master running only
    // `true`, i.e. what every new session pays before its command (sshd starts the login shell,
    // which reads the user's rc files, if any).
    const auto true_client = ssh_argv(conn, {"-S", master.socket(), "-o", "ControlMaster=no"}, "true");
    auto s = interleave_all(
        reps, 2,
        {[&] {
             if (run_or_die(sandbox, command).size() != expected)
                 die("B4: the ssh sandbox printed an unexpected amount");
         },
         [&] { check_ssh(spawn_drain(client, via_path), "B4: ssh through the ControlMaster", expected); },
         [&] { check_ssh(spawn_drain(true_client, via_path), "B4: ssh -S ... true", 0); }});
    return {median(s[0]), median(s[1]), median(s[2]), std::move(s[0]), std::move(s[1]), std::move(s[2])};
}

/// The headline from logins with an empty HOME (no rc file runs: what a lean remote costs), then
/// the same with the machine's real login (root's own HOME and rc files, `pyenv init` here).
int bench_b4(const shannot_test::SshdFixture& clean, const shannot_test::SshdFixture& real, int reps) {
    const auto c = measure_b4(clean, reps);
    print_result(
        "B4", "remote fresh sandbox per command (warm session) vs ssh -S ControlMaster, same bwrap argv, clean login",
        fmt_time(c.run) + " vs " + fmt_time(c.master), c.master / c.run, fmt_ratio(c.master / c.run, 2.5) + " faster",
        Goal::at_least, 2.5, "2.5x");
    print_spread("run", c.run_samples, "ControlMaster", c.master_samples);
    print_note(
        "interleaved with them, an ssh session through the same master running only `true`: " + fmt_time(c.empty) +
        " (min " + fmt_time(quantile(c.empty_samples, 0)) + "): what every new session pays");
    const auto r = measure_b4(real, reps);
    print_note("with this machine's real login (the user's HOME and rc files): " + fmt_time(r.run) + " vs " +
               fmt_time(r.master) + " = " + fmt_ratio(r.master / r.run) + " faster; `true` through the master " +
               fmt_time(r.empty));
    return 0;
}

std::pair<Samples, double> measure_b5(const shannot_test::SshdFixture& sshd, int reps) {
    const auto conn = sshd.connection();
    auto sandbox = make_sandbox(conn, minimal_profile());
    const std::vector<std::string> command = {"ls", "/"};
    const auto expected = run_or_die(sandbox, command).size();
    const auto client =
        ssh_argv(conn, {"-o", "ControlMaster=no", "-o", "ControlPath=none"}, remote_bwrap_command(sandbox, command));
    const SpawnOptions via_path{.search_path = true};

    auto s = interleave(
        reps, 1,
        [&] {
            if (run_or_die(sandbox, command).size() != expected)
                die("B5: the ssh sandbox printed an unexpected amount");
        },
        [&] { check_ssh(spawn_drain(client, via_path), "B5: a new ssh connection", expected); });
    const double ratio = median(s.b) / median(s.a);
    return {std::move(s), ratio};
}

int bench_b5(const shannot_test::SshdFixture& clean, const shannot_test::SshdFixture& real, int reps) {
    const auto [s, ratio] = measure_b5(clean, reps);
    const double a = median(s.a), b = median(s.b);
    print_result(
        "B5", "remote fresh sandbox per command (warm session) vs a new ssh connection per command, clean login",
        fmt_time(a) + " vs " + fmt_time(b), ratio, fmt_ratio(ratio, 40) + " faster", Goal::at_least, 40, "40x");
    print_spread("run", s.a, "new connection", s.b);
    const auto [r, real_ratio] = measure_b5(real, reps);
    print_note("with this machine's real login (the user's HOME and rc files): " + fmt_time(median(r.a)) + " vs " +
               fmt_time(median(r.b)) + " = " + fmt_ratio(real_ratio) + " faster");
    return 0;
}

/// B19: a fresh remote sandbox on a warm connection (loopback sshd, clean login) vs a fresh local
/// sandbox, the same profile ("minimal") and command, interleaved: what going through ssh adds.
int bench_b19(const shannot_test::SshdFixture& sshd, int reps) {
    auto remote = make_sandbox(sshd.connection(), minimal_profile());
    auto local_profile = shannot::builtin_profile("minimal");
    if (!local_profile) die(local_profile.error().message);
    shannot::LocalSandbox local(*local_profile);
    const std::vector<std::string> command = {"ls", "/"};
    const auto expected = run_or_die(remote, command).size();  // opens the connection and its session
    auto s = interleave(
        reps, 5,
        [&] {
            if (run_or_die(remote, command).size() != expected)
                die("B19: the ssh sandbox printed an unexpected amount");
        },
        [&] {
            auto r = local.run(command);
            if (!r || r->exit_code != 0 || r->stdout_data.size() != expected)
                die("B19: the local run failed or printed another amount");
        });
    const double a = median(s.a), b = median(s.b);
    print_result("B19", "remote fresh sandbox on a warm connection vs a local fresh sandbox, same profile (ls /)",
                 fmt_time(a) + " vs " + fmt_time(b), a / b, fmt_ratio(a / b, 1.1), Goal::at_most, 1.1, "1.1x");
    print_spread("remote", s.a, "local", s.b);
    return 0;
}

int bench_b5a(int reps) {
    shannot::SshConnection unused;
    unused.host = "127.0.0.1";
    auto sandbox = make_sandbox(unused, minimal_profile());
    const std::vector<std::string> command = {"ls", "/"};
    const auto args = sandbox.dry_run(command);
    if (!args) die("dry_run: " + args.error().message);
    const auto split = std::find(args->begin(), args->end(), "--");
    std::vector<std::string> bare_argv{"bwrap"};
    bare_argv.insert(bare_argv.end(), args->begin(), args->end());

    const auto hello = shannot::detail::random_marker();
    shannot_test::DispatcherDriver dispatcher(shannot_test::DispatcherDriver::local(hello));
    if (!dispatcher.started()) die("B5a: cannot start the dispatcher: " + dispatcher.error());
    if (!dispatcher.read_until([&] { return dispatcher.err.find("\n" + hello + " ready\n") != std::string::npos; },
                               std::chrono::seconds(10)))
        die("B5a: the dispatcher did not start: " + dispatcher.out + dispatcher.err);
    auto before = shannot::detail::dispatcher_request({args->begin(), split});
    before.pop_back();
    if (!dispatcher.send(shannot::detail::dispatcher_request({"P", "0", before})))
        die("B5a: cannot write to the dispatcher");
    // The built-in syscall filter, sent once as the transport does (B), given to each run (FILTER 1).
    const auto filter = shannot::syscall_filter_bytes("default", std::vector<std::string>{});
    if (!filter) die(filter.error().message);
    if (!dispatcher.send(shannot::detail::dispatcher_request({"B", shannot::detail::printf_escape(*filter)})))
        die("B5a: cannot write to the dispatcher");
    // TIMEOUT 32: what the transport sends for the default 30 s timeout, so the backstop is armed
    // and disarmed as in a real run.
    // The default limits, as the transport sends them: the runner then starts bwrap from a
    // subshell that sets them, in its pids cgroup where it can make one.
    const std::optional<shannot::ResourceLimits> limits = shannot::ResourceLimits{};
    auto through_dispatcher = [&] {
        const auto nonce = shannot::detail::random_marker();
        std::vector<std::string> request{
            "R", nonce, "32", "", "0", "bwrap", "0", shannot::detail::remote_limits(limits), "1"};
        request.insert(request.end(), split, args->end());
        if (!dispatcher.send(shannot::detail::dispatcher_request(request))) die("B5a: cannot write to the dispatcher");
        // "exit 0 1 ...": the command exited 0, in a sandbox that was set up.
        const auto f = dispatcher.frames(nonce, std::chrono::seconds(10));
        if (f.report.rfind("exit 0 1 ", 0) != 0) die("B5a: the dispatcher reported '" + f.report + "': " + f.err);
    };
    auto bare = [&] {
        const auto s = spawn_drain(bare_argv, {.search_path = true, .fd4_devnull = true, .fd6_data = *filter});
        if (!s.ok() || s.out_bytes == 0) die("B5a: bare bwrap failed: " + s.describe());
    };
    const auto s = interleave(reps, 5, through_dispatcher, bare);
    const double a = median(s.a), b = median(s.b);
    std::printf(
        "B5a extra, not in the issue: a run through the ssh dispatcher alone (this host's sh, over pipes, no ssh) vs a "
        "bare "
        "spawn of the same bwrap argv (ls /): %s vs %s = +%s\n",
        fmt_time(a).c_str(), fmt_time(b).c_str(), fmt_time(a - b).c_str());
    print_spread("dispatcher", s.a, "bare", s.b);
    return 0;
}

/// Runs `total` commands on `threads` threads (1: one after another on this thread).
void run_batch(shannot::SshSandbox& sandbox, const std::vector<std::string>& command, int total, int threads) {
    std::atomic<int> next{0};
    std::mutex error_mutex;
    std::string error;
    auto worker = [&] {
        for (int i = next++; i < total; i = next++) {
            auto r = sandbox.run(command);
            std::string problem;
            if (!r)
                problem = r.error().message;
            else if (r->exit_code != 0 || r->stdout_data != "x\n")
                problem = "exit " + std::to_string(r->exit_code) + ", printed '" + r->stdout_data + "'";
            if (!problem.empty()) {
                std::lock_guard lock(error_mutex);
                if (error.empty()) error = problem;
            }
        }
    };
    if (threads == 1) {
        worker();
    } else {
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) pool.emplace_back(worker);
        for (auto& t : pool) t.join();
    }
    if (!error.empty()) die("B9: a command failed: " + error);
}

int bench_b9(const shannot_test::SshdFixture& sshd, int reps) {
    constexpr int commands = 64, threads = 8;
    auto conn = sshd.connection();
    conn.max_connections = threads;    // 8 ControlMasters ...
    conn.sessions_per_connection = 1;  // ... one dispatcher session each: 8 connections at once
    auto sandbox = make_sandbox(conn, shannot_test::test_profile<OpenSshProcessTransport>());

    struct Variant {
        const char* id;
        const char* label;
        std::vector<std::string> command;
    };
    const Variant variants[] = {
        {"B9",
         "64 commands (sh -c 'sleep 0.05; echo x') over 8 connections vs one after another",
         {"sh", "-c", "sleep 0.05; echo x"}},
        {"B9b",
         "extra, not in the issue: the same without the sleep (sh -c 'echo x', CPU-bound on 2 cores)",
         {"sh", "-c", "echo x"}},
    };
    run_batch(sandbox, {"sh", "-c", "echo x"}, threads, threads);  // opens the 8 connections and sessions
    const auto connections = sandbox.transport().connections();
    for (const auto& v : variants) {
        const auto s = interleave(
            reps, 1, [&] { run_batch(sandbox, v.command, commands, threads); },
            [&] { run_batch(sandbox, v.command, commands, 1); });
        const double a = median(s.a), b = median(s.b);
        print_result(v.id, v.label, fmt_time(a) + " vs " + fmt_time(b), b / a, fmt_ratio(b / a, 1.7) + " faster",
                     Goal::at_least, 1.7, "1.7x");
        print_spread("parallel", s.a, "sequential", s.b);
    }
    print_note(std::to_string(connections) + " ssh connections open, " +
               std::to_string(sandbox.transport().idle_dispatchers()) + " warm sessions; " +
               std::to_string(std::thread::hardware_concurrency()) + " cores");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string which = argc >= 2 ? argv[1] : "";
    if (which != "b4" && which != "b5" && which != "b5a" && which != "b9" && which != "b19") {
        std::fprintf(stderr, "usage: %s b4|b5|b5a|b9|b19 [--reps N]\n", argv[0]);
        return 2;
    }
    if (!shannot_test::bwrap_usable()) {
        std::printf("%s: SKIP (bwrap is not usable on this machine)\n", which.c_str());
        return exit_skip;
    }
    if (which == "b5a") return guarded([&] { return bench_b5a(reps_from_args(argc, argv, 100)); });
    return guarded([&] {
        // Logins get an empty HOME, as the tests' sshd gives them: no rc file runs, so the figures
        // are the library's and ssh's, the same on every machine. B4 and B5 also measure a second
        // sshd whose logins keep the user's own HOME and rc files (root's runs `pyenv init` here),
        // which a real remote's login may cost, and print it beside the headline.
        shannot_test::SshdFixture sshd({}, shannot_test::SshdFixture::Home::empty);
        if (!sshd.running()) {
            std::printf("%s: SKIP (sshd could not be started: %s)\n", which.c_str(), sshd.error().c_str());
            return exit_skip;
        }
        if (which == "b4" || which == "b5") {
            shannot_test::SshdFixture real({}, shannot_test::SshdFixture::Home::users);
            if (!real.running()) die("the second sshd (the user's own HOME) could not be started: " + real.error());
            if (which == "b4") return bench_b4(sshd, real, reps_from_args(argc, argv, 30));
            return bench_b5(sshd, real, reps_from_args(argc, argv, 30));
        }
        if (which == "b19") return bench_b19(sshd, reps_from_args(argc, argv, 200));
        return bench_b9(sshd, reps_from_args(argc, argv, 5));
    });
}
