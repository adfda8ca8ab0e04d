// SPDX-License-Identifier: MIT
// The platform seam's primitives (detail/posix/, cancel.hpp): the same tests against the Linux
// implementation (shannot_tests) and the portable POSIX one (shannot_ssh_portable_tests).
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

bool readable(int fd, int wait_ms = 0) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, wait_ms) > 0;
}

bool cloexec(int fd) { return (::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

/// All of what `fd` carries until EOF (bounded at 10 s).
std::string read_all(int fd) {
    std::string text;
    char buffer[4096];
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!readable(fd, 100)) continue;
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0)
            text.append(buffer, static_cast<std::size_t>(n));
        else if (n == 0 || errno != EAGAIN)
            break;
    }
    return text;
}

/// A descriptor of the application's, open without FD_CLOEXEC at the lowest free number from
/// `at_least` up, closed at scope exit. Never dup2 onto a fixed number: that would close whatever
/// the process holds there (a kept connection's pidfd from an earlier test), and when the number
/// is the lowest free one, open() already returns it and dup2 onto itself then close() leaves it
/// closed.
struct InheritableFd {
    explicit InheritableFd(int at_least) {
        const int opened = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        fd = ::fcntl(opened, F_DUPFD, at_least);  // F_DUPFD leaves FD_CLOEXEC clear
        ::close(opened);
    }
    ~InheritableFd() {
        if (fd >= 0) ::close(fd);
    }
    InheritableFd(const InheritableFd&) = delete;
    InheritableFd& operator=(const InheritableFd&) = delete;
    int fd = -1;
};

/// The descriptor numbers open in a shell, one a line, as `ls` (its child: not the last command,
/// so the shell does not exec it) lists them.
const char* const list_fds[] = {"sh", "-c", "ls /proc/$$/fd; exit 0", nullptr};

volatile sig_atomic_t sigchld_seen = 0;
void count_sigchld(int) { sigchld_seen = sigchld_seen + 1; }

}  // namespace

TEST_CASE("platform: the implementation in use") {
#if defined(SHANNOT_PORTABLE_POSIX)
    CHECK(SHANNOT_PLATFORM_LINUX == 0);
    CHECK_FALSE(shannot::local_sandbox_supported);
#else
    CHECK(SHANNOT_PLATFORM_LINUX == 1);  // this suite is built on Linux
    CHECK(shannot::local_sandbox_supported);
#endif
}

TEST_CASE("platform: make_pipe gives close-on-exec ends, lifted above 4") {
    shannot::detail::UniqueFd r, w;
    REQUIRE(shannot::detail::make_pipe(r, w));
    CHECK(cloexec(r.get()));
    CHECK(cloexec(w.get()));
    CHECK(r.get() > 4);
    CHECK(w.get() > 4);
    CHECK(::write(w.get(), "x", 1) == 1);
    char c = 0;
    CHECK(::read(r.get(), &c, 1) == 1);
    // Control: a plain pipe(2) is not close-on-exec, so the check above can fail.
    int plain[2];
    REQUIRE(::pipe(plain) == 0);
    CHECK_FALSE(cloexec(plain[0]));
    ::close(plain[0]);
    ::close(plain[1]);
}

TEST_CASE("platform: spawn_child hands the child no descriptor but 0, 1 and 2") {
    const InheritableFd low(9), high(900);
    REQUIRE(low.fd >= 9);
    REQUIRE(high.fd >= 900);
    REQUIRE_FALSE(cloexec(low.fd));
    REQUIRE_FALSE(cloexec(high.fd));
    auto child = shannot::detail::spawn_child({.argv = {list_fds[0], list_fds[1], list_fds[2]}});
    REQUIRE_MESSAGE(child, child.error().describe());
    const auto seen = read_all(child->out.get());
    CHECK(child->process.reap() == 0);
    CHECK(seen == "0\n1\n2\n");
    // Control: the same shell spawned without our file actions inherits both (the probe sees them).
    int out[2];
    REQUIRE(::pipe(out) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    pid_t pid = -1;
    REQUIRE(::posix_spawnp(&pid, "sh", &actions, nullptr, const_cast<char* const*>(list_fds), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    const auto leaked = read_all(out[0]);
    ::close(out[0]);
    int status = 0;
    CHECK(::waitpid(pid, &status, 0) == pid);
    // Appended, not "\n" + std::string: g++ 12 -O3 warns there (-Wrestrict, a false positive).
    auto line = [](int fd) { return std::string(1, '\n').append(std::to_string(fd)).append(1, '\n'); };
    CHECK(leaked.find(line(low.fd)) != std::string::npos);
    CHECK(leaked.find(line(high.fd)) != std::string::npos);
}

TEST_CASE("platform: ChildProcess tells an exit in a poll loop, signals, and reaps") {
    SUBCASE("a child that exits: its exit descriptor becomes readable and stays so; reap gives the status") {
        auto child = shannot::detail::spawn_child({.argv = {"sh", "-c", "exit 3"}});
        REQUIRE_MESSAGE(child, child.error().describe());
        CHECK(readable(child->process.exit_fd(), 10000));
        CHECK(child->process.exited());
        const auto status = child->process.reap();
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) == 3);
        CHECK(child->process.pid() == -1);
        CHECK(child->process.exited());      // still readable once reaped
        CHECK_FALSE(child->process.reap());  // nothing left to reap
        child->process.signal(SIGKILL);      // a no-op now, never a signal to a recycled pid
    }
    SUBCASE("a child that runs: not readable until a signal ends it") {
        auto child = shannot::detail::spawn_child({.argv = {"sleep", "30"}});
        REQUIRE_MESSAGE(child, child.error().describe());
        CHECK_FALSE(readable(child->process.exit_fd(), 200));  // control: it does not fire by itself
        CHECK_FALSE(child->process.exited());
        child->process.signal(SIGTERM);
        CHECK(readable(child->process.exit_fd(), 10000));
        const auto status = child->process.reap();
        REQUIRE(status);
        CHECK(WIFSIGNALED(*status));
        CHECK(WTERMSIG(*status) == SIGTERM);
    }
    SUBCASE("moved: the new owner waits and signals, the old one is empty") {
        auto child = shannot::detail::spawn_child({.argv = {"sleep", "30"}});
        REQUIRE_MESSAGE(child, child.error().describe());
        shannot::detail::ChildProcess moved = std::move(child->process);
        CHECK_FALSE(child->process);
        CHECK(child->process.pid() == -1);
        CHECK_FALSE(child->process.reap());
        moved.signal(SIGKILL);
        const auto status = moved.reap();
        REQUIRE(status);
        CHECK(WTERMSIG(*status) == SIGKILL);
    }
}

TEST_CASE("platform: ChildProcess watches a process that is not its child, and a second handle never reaps") {
    SUBCASE("adopt: a process another one started is watched and signalled, and reap() only forgets it") {
        // sh starts sleep in the background, prints its pid and exits: sleep is not our child.
        auto starter = shannot::detail::spawn_child({.argv = {"sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"}});
        REQUIRE_MESSAGE(starter, starter.error().describe());
        const auto printed = read_all(starter->out.get());
        starter->process.reap();
        const pid_t pid = static_cast<pid_t>(std::stoi(printed));
        REQUIRE(pid > 0);
        CHECK(::waitpid(pid, nullptr, WNOHANG) == -1);  // not ours to wait for
        auto adopted = shannot::detail::ChildProcess::adopt(pid);
        REQUIRE_MESSAGE(adopted, adopted.error().describe());
        CHECK(adopted->pid() == pid);
        CHECK_FALSE(readable(adopted->exit_fd(), 300));  // control: it runs, the descriptor waits
        adopted->signal(SIGTERM);
        CHECK(readable(adopted->exit_fd(), 10000));
        CHECK(adopted->exited());
        CHECK_FALSE(adopted->reap());  // no status to have: someone else's child
        CHECK(adopted->pid() == -1);
    }
    SUBCASE("observer: sees the exit and signals; the owner alone gets the status") {
        auto child = shannot::detail::spawn_child({.argv = {"sleep", "30"}});
        REQUIRE_MESSAGE(child, child.error().describe());
        auto observer = child->process.observer();
        REQUIRE(observer);
        CHECK(observer.exit_fd() != child->process.exit_fd());  // a descriptor of its own
        CHECK_FALSE(readable(observer.exit_fd(), 200));         // control
        observer.signal(SIGKILL);
        CHECK(readable(observer.exit_fd(), 10000));
        CHECK(readable(child->process.exit_fd(), 10000));
        CHECK_FALSE(observer.reap());  // returns at once, takes nothing
        const auto status = child->process.reap();
        REQUIRE(status);  // the owner still has the status: the observer did not take it
        CHECK(WTERMSIG(*status) == SIGKILL);
        observer.signal(SIGKILL);  // reaped: a no-op, never a signal to a recycled pid
    }
}

TEST_CASE("platform: the library reaps only its own children and leaves SIGCHLD to the application") {
    struct sigaction mine {
    }, old{}, now{};
    mine.sa_handler = count_sigchld;
    sigemptyset(&mine.sa_mask);
    mine.sa_flags = SA_RESTART;
    REQUIRE(::sigaction(SIGCHLD, &mine, &old) == 0);
    sigchld_seen = 0;

    // A child of the application's own, which ends while the library's children come and go.
    const char* const quick[] = {"sh", "-c", "exit 7", nullptr};
    pid_t theirs = -1;
    REQUIRE(::posix_spawnp(&theirs, "sh", nullptr, nullptr, const_cast<char* const*>(quick), environ) == 0);
    for (int i = 0; i < 5; ++i) {
        auto child = shannot::detail::spawn_child({.argv = {"sh", "-c", "exit 0"}});
        REQUIRE_MESSAGE(child, child.error().describe());
        CHECK(child->process.reap() == 0);
    }
    std::this_thread::sleep_for(100ms);  // the application's child has surely ended by now
    int status = 0;
    CHECK(::waitpid(theirs, &status, 0) == theirs);  // still there to be reaped: nobody took it
    CHECK(WEXITSTATUS(status) == 7);
    REQUIRE(::sigaction(SIGCHLD, nullptr, &now) == 0);
    const bool still_ours = now.sa_handler == count_sigchld;
    CHECK(still_ours);        // our handler was not replaced
    CHECK(sigchld_seen > 0);  // and it got the signals
    ::sigaction(SIGCHLD, &old, nullptr);
}

TEST_CASE("platform: OneShotTimer fires once when armed, and disarm clears it") {
    auto timer = shannot::detail::OneShotTimer::create();
    REQUIRE_MESSAGE(timer, timer.error().describe());
    const auto ref = timer->ref();
    CHECK(ref.fd() == timer->fd());
    CHECK(cloexec(timer->fd()));
    CHECK_FALSE(readable(timer->fd()));
    SUBCASE("at once, then cleared") {
        ref.arm(0);
        CHECK(readable(timer->fd()));
        CHECK(readable(timer->fd()));  // polling does not consume it
        ref.disarm();
        CHECK_FALSE(readable(timer->fd()));
    }
    SUBCASE("later: not before its time, then readable") {
        ref.arm(std::chrono::nanoseconds(300ms).count());
        CHECK_FALSE(readable(timer->fd(), 50));
        CHECK(readable(timer->fd(), 5000));
    }
    SUBCASE("a later arming is replaced by the next: arm(0) fires at once, a longer one postpones") {
        ref.arm(std::chrono::nanoseconds(10s).count());
        ref.arm(0);
        CHECK(readable(timer->fd()));
        ref.disarm();
        ref.arm(std::chrono::nanoseconds(50ms).count());
        ref.arm(std::chrono::nanoseconds(10s).count());
        CHECK_FALSE(readable(timer->fd(), 300));
    }
    SUBCASE("disarm cancels a pending arming") {
        ref.arm(std::chrono::nanoseconds(50ms).count());
        ref.disarm();
        CHECK_FALSE(readable(timer->fd(), 300));
    }
    SUBCASE("moved: the reference follows the timer, and a destroyed armed timer is no harm") {
        shannot::detail::OneShotTimer moved = std::move(*timer);
        ref.arm(0);
        CHECK(readable(moved.fd()));
        ref.disarm();
        ref.arm(std::chrono::nanoseconds(100ms).count());
        moved = shannot::detail::OneShotTimer();
        std::this_thread::sleep_for(200ms);
    }
}

TEST_CASE("platform: CancelToken's descriptor is readable once cancelled, from any copy") {
    shannot::CancelToken token;
    REQUIRE(token.fd() >= 0);
    CHECK(cloexec(token.fd()));
    CHECK_FALSE(readable(token.fd()));
    auto copy = token;
    std::thread([copy]() mutable { copy.cancel(); }).join();
    CHECK(token.cancelled());
    CHECK(readable(token.fd()));
    token.cancel();  // idempotent
    CHECK(readable(token.fd()));
}

TEST_CASE("platform: random_marker is 128 fresh bits of hex") {
    std::set<std::string> seen;
    for (int i = 0; i < 1000; ++i) {
        const auto m = shannot::detail::random_marker();
        REQUIRE(m.size() == 8 + 32);
        CHECK(m.rfind("shannot-", 0) == 0);
        CHECK(m.find_first_not_of("0123456789abcdef", 8) == std::string::npos);
        seen.insert(m);
    }
    CHECK(seen.size() == 1000);
}
