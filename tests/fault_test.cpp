// SPDX-License-Identifier: MIT
// Faults: a missing bwrap, a full $TMPDIR on the remote, a tiny descriptor limit, commands that
// misbehave, signals in the caller, ssh processes that die between commands, a noisy remote
// login. Each ends in a result or a clear error, never a hang or a crash, and leaves no
// descriptor and no process behind.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "support/bwrap_env.hpp"
#include "support/transports.hpp"

using namespace std::chrono_literals;
using shannot::errc;

namespace {

/// Waits (polling) until `done` holds or `bound` passes; returns whether it held.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds bound = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

/// What this process holds: open descriptors and child processes (zombies included).
struct Footprint {
    int fds = 0;
    std::size_t children = 0;
    bool operator==(const Footprint&) const = default;
};

Footprint footprint() { return {shannot_test::count_fds(), shannot_test::children_of(::getpid()).size()}; }

/// The footprint once it has held still for 150 ms: after a run, a spare sandbox
/// (PosixSpawnOptions::spare_sandbox) is being built, with descriptors it holds only until it waits.
Footprint settled_footprint() {
    auto last = footprint();
    for (int still = 0, i = 0; still < 3 && i < 200; ++i) {
        std::this_thread::sleep_for(50ms);
        const auto now = footprint();
        still = now == last ? still + 1 : 0;
        last = now;
    }
    return last;
}

std::string describe(const Footprint& f) {
    return std::to_string(f.fds) + " fds, " + std::to_string(f.children) + " children";
}

/// Checks that the footprint comes back to `before` (reaping may lag a little behind a run).
#define CHECK_NO_LEAKS(before)                                                                                \
    do {                                                                                                      \
        const bool shannot_same_ = eventually([&] { return footprint() == (before); }, 5s);                   \
        CHECK_MESSAGE(shannot_same_, "before: " << describe(before) << ", after: " << describe(footprint())); \
    } while (0)

/// Arguments of a process, split at NUL ("" when gone).
std::vector<std::string> cmdline_of(int pid) {
    std::string text;  // read(2): a stream throws when the process exits mid-read (ESRCH)
    const int fd = ::open(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC);
    char buffer[4096];
    ssize_t got = 0;
    while (fd >= 0 && (got = ::read(fd, buffer, sizeof buffer)) > 0) text.append(buffer, static_cast<std::size_t>(got));
    if (fd >= 0) ::close(fd);
    std::vector<std::string> args;
    std::size_t start = 0;
    while (start < text.size()) {
        const auto end = text.find('\0', start);
        args.push_back(text.substr(start, end - start));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return args;
}

/// Process state letter from /proc/PID/stat ('\0' when gone).
char state_of(int pid) {
    const auto stat = shannot_test::read_text("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    return close == std::string::npos || close + 2 >= stat.size() ? '\0' : stat[close + 2];
}
bool dead(int pid) {
    const char s = state_of(pid);
    return s == '\0' || s == 'Z' || s == 'X';
}

/// Whether every one of `pids` has exited (a zombie waiting to be reaped, or gone). Decided from
/// the state alone: a process's cmdline empties while it exits, before its exit is visible.
bool all_dead(const std::vector<int>& pids) { return std::all_of(pids.begin(), pids.end(), dead); }

/// As all_dead, for children of the library: once the library has noticed. A pidfd says so as
/// soon as the child is a zombie; the portable seam's reaper thread, a scheduling delay later,
/// when it has reaped it (it makes the exit descriptor readable first).
bool all_noticed_dead(const std::vector<int>& pids) {
    if (SHANNOT_PLATFORM_LINUX) return all_dead(pids);
    return std::all_of(pids.begin(), pids.end(), [](int pid) { return state_of(pid) == '\0'; });
}

/// This process's live ssh children that talk to `port`: the ControlMaster ("-M") or the sessions.
std::vector<int> ssh_children(int port, bool masters) {
    std::vector<int> found;
    for (int pid : shannot_test::children_of(::getpid())) {
        if (shannot_test::comm_of(pid) != "ssh" || dead(pid)) continue;
        const auto args = cmdline_of(pid);
        const bool ours = std::find(args.begin(), args.end(), std::to_string(port)) != args.end();
        const bool master = std::find(args.begin(), args.end(), "-M") != args.end();
        if (ours && master == masters) found.push_back(pid);
    }
    return found;
}

/// Every descendant of `root`.
std::vector<int> descendants(int root) {
    std::vector<int> all{root};
    for (std::size_t i = 0; i < all.size(); ++i)
        for (int child : shannot_test::children_of(all[i])) all.push_back(child);
    all.erase(all.begin());
    return all;
}

/// A tmpfs of 64 KiB, filled to the last byte, unmounted and removed at scope exit.
class FullTmpfs {
public:
    FullTmpfs() {
        if (dir_.path().empty()) return;
        path_ = dir_.path() + "/full";
        if (::mkdir(path_.c_str(), 0755) != 0) return;
        if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, "size=64k,mode=1777") != 0) {
            why_ = std::string("mount -t tmpfs failed: ") + std::strerror(errno);
            return;
        }
        mounted_ = true;
        fill_ = path_ + "/fill";
        const int fd = ::open(fill_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        const std::string block(4096, 'f');
        while (fd >= 0 && ::write(fd, block.data(), block.size()) > 0) {
        }
        if (fd >= 0) ::close(fd);
    }
    ~FullTmpfs() {
        if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
        if (!path_.empty()) ::rmdir(path_.c_str());
    }
    FullTmpfs(const FullTmpfs&) = delete;
    FullTmpfs& operator=(const FullTmpfs&) = delete;

    [[nodiscard]] bool mounted() const { return mounted_; }
    [[nodiscard]] const std::string& why() const { return why_; }
    [[nodiscard]] const std::string& path() const { return path_; }
    void make_room() { ::unlink(fill_.c_str()); }

private:
    shannot_test::TempDir dir_;
    std::string path_, fill_, why_;
    bool mounted_ = false;
};

/// Runs the rlimit helper with RLIMIT_NOFILE = limit; returns its exit status (-1: killed after
/// 60 s, or a signal) and what it printed.
[[maybe_unused]] std::pair<int, std::string> run_rlimit_probe(const std::string& probe, int limit) {  // local only
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return {-2, "pipe2 failed"};
    const std::string limit_text = std::to_string(limit);
    const pid_t pid = ::fork();
    if (pid == 0) {  // only async-signal-safe calls until exec
        ::dup2(out[1], 1);
        ::execl(probe.c_str(), probe.c_str(), limit_text.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(out[1]);
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    bool killed = false;
    char buffer[4096];
    while (true) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
        if (left <= 0) {
            ::kill(pid, SIGKILL);
            killed = true;
            break;
        }
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
        const ssize_t n = ::read(out[0], buffer, sizeof buffer);
        if (n > 0)
            text.append(buffer, static_cast<std::size_t>(n));
        else if (n == 0 || errno != EINTR)
            break;
    }
    ::close(out[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (killed || !WIFEXITED(status)) return {-1, text};
    return {WEXITSTATUS(status), text};
}

std::atomic<int> alarms{0}, usr1s{0};
extern "C" void count_alarm(int) { ++alarms; }
extern "C" void count_usr1(int) { ++usr1s; }

/// A distinct number per transport for `sleep` markers (both run on this host).
template <class T>
std::string marker(int n) {
    return std::to_string((std::is_same_v<T, shannot::PosixSpawnTransport> ? 4600 : 4700) + n);
}

}  // namespace

#if SHANNOT_PLATFORM_LINUX  // the local transport: not in the portable build (tests/portable/)
TEST_CASE("fault: bwrap missing or not executable") {
    SHANNOT_REQUIRE_BWRAP();
    shannot_test::TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    const std::string plain = dir.path() + "/bwrap-not-executable", script = dir.path() + "/bwrap-bad-interpreter";
    std::ofstream(plain) << "#!/bin/sh\n";
    std::ofstream(script) << "#!/nonexistent/interpreter\n";
    REQUIRE(::chmod(plain.c_str(), 0644) == 0);
    REQUIRE(::chmod(script.c_str(), 0755) == 0);
    const auto profile = shannot_test::test_profile();
    auto run_with = [&](const std::string& bwrap) {
        shannot::LocalSandbox sandbox(profile, shannot::PosixSpawnTransport({.bwrap_path = bwrap}));
        return sandbox.run({"echo", "never"});
    };
    const auto before = footprint();
    for (const std::string& missing : {std::string("/nonexistent/bwrap"), plain, dir.path()}) {
        CAPTURE(missing);
        auto r = run_with(missing);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::bwrap_not_found);
        CHECK(r.error().message.find(missing) != std::string::npos);
    }
    auto bad_interpreter = run_with(script);  // executable, but exec fails
    REQUIRE_FALSE(bad_interpreter);
    CHECK(bad_interpreter.error().code == errc::spawn_failed);
    CHECK(bad_interpreter.error().message.find(script) != std::string::npos);
    auto not_bwrap = run_with("/bin/false");  // runs, but never reports a started sandbox
    REQUIRE_FALSE(not_bwrap);
    CHECK(not_bwrap.error().code == errc::sandbox_setup_failed);
    CHECK_NO_LEAKS(before);
}
#endif

TEST_CASE("fault: a full $TMPDIR on the remote is a clear error, and the session stays usable") {
    using T = shannot::OpenSshProcessTransport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    FullTmpfs full;
    if (!full.mounted()) {
        if (shannot_test::in_ci()) FAIL("cannot mount a tmpfs (CI=true): " << full.why());
        MESSAGE("skipped: " << full.why());
        return;
    }
    shannot_test::SshdFixture sshd("SetEnv TMPDIR=" + full.path() + "\n");
    REQUIRE_MESSAGE(sshd.running(), sshd.error());
    T transport(sshd.connection());
    shannot::SandboxManager<T> sandbox(shannot_test::test_profile<T>(), transport);
    auto warm = sandbox.run({"echo", "warm"});
    REQUIRE_MESSAGE(warm, warm.error().describe());
    // The dispatcher's private folder is on the full tmpfs (else this test would prove nothing).
    bool on_full = false;
    for (const auto& e : std::filesystem::directory_iterator(full.path()))
        on_full = on_full || e.path().filename().string().rfind("shannot.", 0) == 0;
    REQUIRE(on_full);

    const auto before = footprint();
    auto r = sandbox.run({"cat"}, {.input = std::string(100000, 'i'), .timeout = 30s});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::io_error);
    CHECK(r.error().message.find("TMPDIR") != std::string::npos);
    auto after = sandbox.run({"echo", "still here"});
    REQUIRE_MESSAGE(after, after.error().describe());
    CHECK(after->stdout_data == "still here\n");
    full.make_room();
    auto roomy = sandbox.run({"cat"}, {.input = std::string("staged")});
    REQUIRE_MESSAGE(roomy, roomy.error().describe());
    CHECK(roomy->stdout_data == "staged");
    CHECK(transport.connections() == 1);
    CHECK_NO_LEAKS(before);
}

#if SHANNOT_PLATFORM_LINUX  // the local transport: not in the portable build (tests/portable/)
TEST_CASE("fault: RLIMIT_NOFILE of 32 (in a child process)") {
    SHANNOT_REQUIRE_BWRAP();
    const auto probe = shannot_test::helper_path("shannot_rlimit_probe");
    REQUIRE_MESSAGE(!probe.empty(), "tests/helpers/rlimit_probe.cpp was not built next to the test executable");
    const auto before = footprint();
    const auto enough = run_rlimit_probe(probe, 32);
    CHECK_MESSAGE(enough.first == 0, enough.second);
    CHECK(enough.second == "ok\n");
    // Too few descriptors for the pipes: a clear error, not a crash or a hang.
    const auto starved = run_rlimit_probe(probe, 6);
    CHECK_MESSAGE(starved.first == 1, starved.second);
    CHECK(starved.second.find("Too many open files") != std::string::npos);
    CHECK_NO_LEAKS(before);
}
#endif

TEST_CASE_TEMPLATE("fault: commands that misbehave", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    // 500 children need more than the default 256 processes (resource_limits_test stops a storm there).
    auto profile = shannot_test::test_profile<T>();
    profile.limits.processes = 1024;
    auto sandbox = shannot_test::make_runner<M>(profile);
    REQUIRE(sandbox.run(
        {"true"}));  // warm: the ssh pool's (or the session's, or the spare's) processes belong to the baseline
    const auto before = settled_footprint();
    const auto start = std::chrono::steady_clock::now();

    SUBCASE("closing stdout early") {
        auto r = sandbox.run({"sh", "-c", "exec >&-; sleep 0.2; echo done >&2"});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->exit_code == 0);
        CHECK(r->stdout_data.empty());
        CHECK(r->stderr_data == "done\n");
    }
    SUBCASE("never reading 8 MiB of stdin while it lives") {
        auto r = sandbox.run({"sh", "-c", "sleep 0.3; echo alive"}, {.input = std::string(8u << 20, 'i')});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->exit_code == 0);
        CHECK(r->stdout_data == "alive\n");
    }
    SUBCASE("ignoring SIGTERM past a timeout: killed after kill_grace") {
        const auto m = marker<T>(1 + (M::session ? 10 : 0)) + ".5";
        auto r = sandbox.run({"sh", "-c", "trap '' TERM; sleep " + m + "; sleep " + m},
                             {.timeout = 500ms, .kill_grace = 300ms});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->timed_out);
        CHECK(r->signal != 0);
        CHECK(eventually([&] { return shannot_test::processes_with(m) == 0; }));
    }
    SUBCASE("forking 500 children, then exiting: the children die with the sandbox") {
        const auto m = marker<T>(2 + (M::session ? 10 : 0)) + ".";
        auto r = sandbox.run(
            {"sh", "-c", "i=0; while [ $i -lt 500 ]; do sleep " + m + "$i & i=$((i+1)); done; echo started"},
            {.timeout = 60s});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->exit_code == 0);
        CHECK(r->stdout_data == "started\n");
        CHECK(eventually([&] { return shannot_test::processes_with(m) == 0; }));
    }
    SUBCASE("forking 500 children and waiting: timed out, and every one is gone") {
        const auto m = marker<T>(3 + (M::session ? 10 : 0)) + ".";
        auto r = sandbox.run(
            {"sh", "-c", "i=0; while [ $i -lt 500 ]; do sleep " + m + "$i & i=$((i+1)); done; echo started; wait"},
            {.timeout = 5s});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->timed_out);
        CHECK(eventually([&] { return shannot_test::processes_with(m) == 0; }));
    }
    CHECK(std::chrono::steady_clock::now() - start < 60s);
    REQUIRE(sandbox.run({"true"}));  // the transport still works, and settles back
    CHECK_NO_LEAKS(before);
}

TEST_CASE_TEMPLATE("fault: signals in the caller", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto sandbox = shannot_test::make_sandbox<T>();
    REQUIRE(sandbox.run({"true"}));
    const auto before = footprint();

    SUBCASE("SIGALRM and SIGUSR1 every millisecond, with handlers that do not restart system calls") {
        struct sigaction on_alarm {
        }, on_usr1{}, old_alarm{}, old_usr1{};
        on_alarm.sa_handler = count_alarm;
        on_usr1.sa_handler = count_usr1;
        sigemptyset(&on_alarm.sa_mask);
        sigemptyset(&on_usr1.sa_mask);
        on_alarm.sa_flags = on_usr1.sa_flags = 0;  // no SA_RESTART: blocking calls fail with EINTR
        REQUIRE(::sigaction(SIGALRM, &on_alarm, &old_alarm) == 0);
        REQUIRE(::sigaction(SIGUSR1, &on_usr1, &old_usr1) == 0);
        alarms = 0;
        usr1s = 0;
        const itimerval every_ms{{0, 1000}, {0, 1000}}, off{};
        REQUIRE(::setitimer(ITIMER_REAL, &every_ms, nullptr) == 0);
        std::atomic<bool> stop{false};
        const pthread_t runner = ::pthread_self();
        std::thread pest([&] {
            while (!stop) {
                ::pthread_kill(runner, SIGUSR1);
                std::this_thread::sleep_for(1ms);
            }
        });

        const std::string input(1u << 20, 'x');
        auto echoed = sandbox.run({"cat"}, {.input = input});
        auto slept = sandbox.run({"sh", "-c", "sleep 0.3; echo slept"});
        auto timed = sandbox.run({"sleep", "30"}, {.timeout = 500ms, .kill_grace = 200ms});

        stop = true;
        pest.join();
        ::setitimer(ITIMER_REAL, &off, nullptr);
        std::this_thread::sleep_for(50ms);  // a signal raised just before the stop is handled by ours
        ::sigaction(SIGALRM, &old_alarm, nullptr);
        ::sigaction(SIGUSR1, &old_usr1, nullptr);

        REQUIRE_MESSAGE(echoed, echoed.error().describe());
        CHECK(echoed->stdout_data == input);
        REQUIRE_MESSAGE(slept, slept.error().describe());
        CHECK(slept->stdout_data == "slept\n");
        REQUIRE_MESSAGE(timed, timed.error().describe());
        CHECK(timed->timed_out);
        CHECK(alarms > 10);  // the signals did arrive during the runs
        CHECK(usr1s > 10);
    }
    SUBCASE("SIGPIPE at its default disposition, and ignored: a command that stops reading kills nothing here") {
        for (auto disposition : {SIG_DFL, SIG_IGN}) {
            struct sigaction act {
            }, old{};
            act.sa_handler = disposition;
            sigemptyset(&act.sa_mask);
            REQUIRE(::sigaction(SIGPIPE, &act, &old) == 0);
            const std::string input(4u << 20, 'p');
            auto unread = sandbox.run({"true"}, {.input = input});
            auto head = sandbox.run({"head", "-c", "5"}, {.input = input});
            ::sigaction(SIGPIPE, &old, nullptr);
            REQUIRE_MESSAGE(unread, unread.error().describe());
            CHECK(unread->exit_code == 0);
            REQUIRE_MESSAGE(head, head.error().describe());
            CHECK(head->stdout_data == "ppppp");
        }
    }
    REQUIRE(sandbox.run({"true"}));
    CHECK_NO_LEAKS(before);
}

TEST_CASE("fault: ssh processes that die between commands") {
    using T = shannot::OpenSshProcessTransport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    shannot_test::SshdFixture sshd;
    REQUIRE_MESSAGE(sshd.running(), sshd.error());
    T transport(sshd.connection());
    shannot::SandboxManager<T> sandbox(shannot_test::test_profile<T>(), transport);
    REQUIRE(sandbox.run({"true"}));
    const int port = sshd.port();
    REQUIRE(ssh_children(port, true).size() == 1);
    REQUIRE(ssh_children(port, false).size() == 1);
    const auto before = footprint();
    auto echo = [&](const std::string& word) {
        auto r = sandbox.run({"echo", word});
        if (!r) return r.error().describe();
        return r->stdout_data == word + "\n" ? std::string("ok") : "got '" + r->stdout_data + "'";
    };
    const auto master = ssh_children(port, true), session = ssh_children(port, false);

    SUBCASE("the ControlMaster is killed: the next command connects again") {
        for (int pid : master) ::kill(pid, SIGKILL);
        REQUIRE(eventually(
            [&] { return all_noticed_dead(master) && all_noticed_dead(session); }));  // its session ends with it
        CHECK(echo("after-master") == "ok");
    }
    SUBCASE("the session's ssh client is killed: the next command gets a new session") {
        for (int pid : session) ::kill(pid, SIGKILL);
        REQUIRE(eventually([&] { return all_noticed_dead(session); }));
        CHECK(echo("after-client") == "ok");
    }
    SUBCASE("the remote dispatcher is killed: the next command gets a new session") {
        int listener = -1;
        for (int pid : shannot_test::children_of(::getpid())) {
            std::string joined;
            for (const auto& a : cmdline_of(pid)) joined += a + ' ';  // sshd may retitle itself
            if (shannot_test::comm_of(pid) == "sshd" && joined.find(sshd.dir().string()) != std::string::npos)
                listener = pid;
        }
        REQUIRE(listener > 0);
        int killed = 0;
        for (int pid : descendants(listener)) {
            const auto args = cmdline_of(pid);
            if (args.size() > 2 && args[0] == "sh" && args[2].find("/shannot.$h") != std::string::npos)
                killed += ::kill(pid, SIGKILL) == 0;
        }
        REQUIRE(killed >= 1);  // the dispatcher (and maybe a subshell still writing its last frames)
        REQUIRE(eventually([&] { return all_noticed_dead(session); }));  // the channel closed, ssh exited
        CHECK(echo("after-dispatcher") == "ok");
    }
    SUBCASE("killed in the instant before a command: that one may fail, clearly; the next succeeds") {
        for (int pid : session) ::kill(pid, SIGKILL);
        const auto racing = echo("racing");
        CHECK_MESSAGE((racing == "ok" || racing.find("connection failed") == 0 || racing.find("transport error") == 0),
                      racing);
        CHECK(echo("next") == "ok");
    }
    CHECK(ssh_children(port, true).size() == 1);
    CHECK(ssh_children(port, false).size() == 1);
    CHECK_NO_LEAKS(before);
}

TEST_CASE("fault: a remote login that prints a banner and rc-file noise") {
    using T = shannot::OpenSshProcessTransport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    shannot_test::TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    const std::string banner = dir.path() + "/banner", noise = dir.path() + "/noise.sh",
                      ran = dir.path() + "/noise-ran";
    std::ofstream(banner) << "*** Authorized use only ***\n";
    std::ofstream(noise) << "echo 'rc noise on stdout'\necho 'rc noise on stderr' >&2\nprintf 'no newline'\n"
                            "printf 'no newline' >&2\n: > '"
                         << ran << "'\n";
    // Both ways a login shell may run an rc file for `ssh host command`: bash run by sshd reads
    // ~/.bashrc (Debian builds it so), a non-interactive bash or ksh reads $BASH_ENV / $ENV.
    shannot_test::SshdFixture sshd("Banner " + banner + "\nSetEnv BASH_ENV=" + noise + " ENV=" + noise + "\n");
    REQUIRE_MESSAGE(sshd.running(), sshd.error());
    std::filesystem::copy_file(noise, sshd.home() / ".bashrc");
    T transport(sshd.connection());
    shannot::SandboxManager<T> sandbox(shannot_test::test_profile<T>(), transport);
    for (int i = 0; i < 3; ++i) {
        auto out = sandbox.run({"echo", "clean " + std::to_string(i)});
        REQUIRE_MESSAGE(out, out.error().describe());
        CHECK(out->stdout_data == "clean " + std::to_string(i) + "\n");
        CHECK(out->stderr_data.empty());
        auto err = sandbox.run({"sh", "-c", "echo only-stderr >&2"});
        REQUIRE_MESSAGE(err, err.error().describe());
        CHECK(err->stdout_data.empty());
        CHECK(err->stderr_data == "only-stderr\n");
    }
    CHECK(std::filesystem::exists(ran));  // the noise was really printed
}

TEST_CASE_TEMPLATE("fault: runs stopped during sandbox setup leave nothing behind", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto sandbox = shannot_test::make_sandbox<T>();
    REQUIRE(sandbox.run({"true"}));
    const auto before = footprint();
    const auto m = marker<T>(4) + "." + std::to_string(::getpid() % 1000);
    // A timeout of 1 ms fires while bwrap is still building the sandbox (or just after).
    const auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 20; ++i) {
        auto r = sandbox.run({"sleep", m}, {.timeout = 1ms, .kill_grace = 0ms});
        if (r) {
            CHECK(r->timed_out);
            CHECK(r->stdout_data.empty());
            CHECK_MESSAGE(r->stderr_data.empty(), r->stderr_data);  // nothing of the transport's own leaks in
        } else {
            CHECK_MESSAGE(r.error().code == errc::sandbox_setup_failed, r.error().describe());
        }
    }
    // Each kill is answered at once: none waits for the 3 s fallback that drops an ssh session.
    CHECK(std::chrono::steady_clock::now() - started <
          20 * shannot::OpenSshProcessTransport::process_type::kill_fallback / 2);
#if SHANNOT_PLATFORM_LINUX
    if constexpr (std::is_same_v<T, shannot::PosixSpawnTransport>) {
        // Handles killed or dropped right after launch, at varying points of bwrap's setup.
        auto argv = sandbox.dry_run({"sleep", m});
        REQUIRE(argv);
        shannot::PosixSpawnTransport transport;
        for (int i = 0; i < 30; ++i) {
            auto process = transport.launch({.bwrap_args = *argv});
            REQUIRE(process);
            if (i % 3 == 1) std::this_thread::sleep_for(std::chrono::microseconds(200 * (i % 7)));
            if (i % 2 == 0) {
                process->kill();
                (void)process->wait();
            }
        }  // the others are dropped: the destructor kills and reaps
    }
#endif
    // Nothing of any run is left: no sleep, and no bwrap blocked in setup (its argv holds the marker).
    CHECK(eventually([&] { return shannot_test::processes_with(m) == 0; }));
    REQUIRE(sandbox.run({"true"}));
    CHECK_NO_LEAKS(before);
}
