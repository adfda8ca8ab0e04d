// SPDX-License-Identifier: MIT
// PosixSpawnTransport alone, against real bwrap: spawning, descriptors, status, stopping, reaping.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "support/bwrap_env.hpp"

using namespace std::chrono_literals;
using shannot::errc;
using shannot::ExitInfo;
using shannot::LaunchSpec;
using shannot::PosixSpawnTransport;

namespace {

/// Where the helper programs appear inside the sandbox.
constexpr const char* spawn_helpers_dir = "/opt/shannot-helpers";

/// The minimal profile, plus the helper programs' directory when `with_helpers`.
shannot::LocalProfile spawn_profile(bool with_helpers = false) {
    auto p = *shannot::builtin_profile("minimal");
    if (with_helpers) p.binds.push_back({shannot_test::exe_dir(), spawn_helpers_dir, true, true, false});
    return p;
}

/// A launch spec for `command` built by the real builder, so the transport sees real arguments.
LaunchSpec spawn_spec(const shannot::LocalProfile& profile, std::vector<std::string> command) {
    auto args = shannot::BubblewrapCommandBuilder<PosixSpawnTransport>(profile, std::move(command)).build();
    REQUIRE(args);
    LaunchSpec spec;
    spec.bwrap_args = std::move(*args);
    REQUIRE(
        shannot::detail::add_filter_files(profile, spec));  // the filters the argv names, as SandboxManager adds them
    return spec;
}

/// Launches and drives `spec` to its end.
shannot_test::Driven spawn_and_drive(PosixSpawnTransport& transport, const LaunchSpec& spec,
                                     std::string_view input = {}) {
    auto process = transport.launch(spec);
    REQUIRE_MESSAGE(process, (process ? "" : process.error().describe()));
    return shannot_test::drive(*process, input);
}

/// Waits up to `bound` until `count` live processes have a command line starting with `needle`.
bool running_within(const std::string& needle, int count, std::chrono::seconds bound) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (static_cast<int>(shannot_test::pids_starting_with(needle).size()) != count) {
        if (std::chrono::steady_clock::now() > until) {
            // Say what was there instead, so a failure in a long run can be understood.
            std::string seen;
            for (int pid : shannot_test::pids_starting_with(needle)) {
                auto cmdline = shannot_test::process_cmdline(pid);
                for (auto& c : cmdline) c = c == '\0' ? ' ' : c;
                seen += "\n  " + std::to_string(pid) + ": " + cmdline.substr(0, 200);
            }
            MESSAGE("wanted " << count
                              << " processes with the marker, found: " << (seen.empty() ? std::string("none") : seen));
            return false;
        }
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

/// Waits up to `bound` until no live process has `marker` in its command line (the sandbox's
/// PID 1 is killed by the kernel asynchronously after bwrap is reaped).
bool gone_within(const std::string& marker, std::chrono::seconds bound) {
    const auto until = std::chrono::steady_clock::now() + bound;
    while (!shannot_test::pids_starting_with(marker).empty()) {
        if (std::chrono::steady_clock::now() > until) {
            std::string seen;
            for (int pid : shannot_test::pids_starting_with(marker)) {
                auto stat = shannot_test::read_proc_file("/proc/" + std::to_string(pid) + "/stat");
                seen += "\n  " + stat.substr(0, 120);
            }
            MESSAGE("still running after " << bound.count() << " s:" << seen);
            return false;
        }
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

/// The raw command line of `sleep <marker>` (arguments are NUL-separated in /proc/PID/cmdline); as
/// a prefix it matches the sleeps themselves, not the bwrap or sh whose arguments mention them.
std::string sleeping(const std::string& marker) { return std::string("sleep") + '\0' + marker + '\0'; }

}  // namespace

TEST_CASE("PosixSpawnTransport") {
    static_assert(shannot::Transport<PosixSpawnTransport> && shannot::SessionTransport<PosixSpawnTransport>);
    using Process = PosixSpawnTransport::process_type;
    static_assert(!std::is_copy_constructible_v<Process> && !std::is_copy_assignable_v<Process>);
    static_assert(std::is_nothrow_move_constructible_v<Process> && std::is_nothrow_move_assignable_v<Process>);
    static_assert(PosixSpawnTransport::seccomp_fd == 3 && PosixSpawnTransport::json_status_fd == 4);

    SUBCASE("a bogus or non-executable bwrap_path is bwrap_not_found, naming the option") {
        for (const char* bogus : {"/nonexistent/bwrap", "/etc/passwd", "/usr/bin"}) {
            CAPTURE(bogus);
            PosixSpawnTransport transport({.bwrap_path = bogus});
            auto r = transport.launch({.bwrap_args = {"--", "/bin/true"}});
            REQUIRE_FALSE(r);
            CHECK(r.error().code == errc::bwrap_not_found);
            CHECK(r.error().message.find(bogus) != std::string::npos);
            CHECK(r.error().message.find("bwrap_path") != std::string::npos);
        }
    }
    SUBCASE("no bwrap on PATH says what to install") {
        const char* old = std::getenv("PATH");
        const std::string saved = old ? old : "";
        shannot_test::TempDir empty;
        ::setenv("PATH", empty.path().c_str(), 1);
        auto r = PosixSpawnTransport().bwrap();
        ::setenv("PATH", saved.c_str(), 1);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::bwrap_not_found);
        CHECK(r.error().message.find("apt-get install bubblewrap") != std::string::npos);
        CHECK(r.error().message.find("bwrap_path") != std::string::npos);
    }
    SUBCASE("executable_exists wants a regular file with an x bit") {
        PosixSpawnTransport transport;
        CHECK(transport.executable_exists("/bin/sh"));
        CHECK_FALSE(transport.executable_exists("/etc/passwd"));
        CHECK_FALSE(transport.executable_exists("/usr/bin"));
        CHECK_FALSE(transport.executable_exists("/nonexistent/ls"));
    }
}

TEST_CASE("PosixSpawnTransport with real bwrap") {
    SHANNOT_REQUIRE_SPAWN();
    PosixSpawnTransport transport;
    const auto profile = spawn_profile();

    SUBCASE("argv is the bwrap found on PATH followed by the spec's arguments") {
        const auto spec = spawn_spec(profile, {"true"});
        auto process = transport.launch(spec);
        REQUIRE(process);
        const auto& argv = process->argv();
        REQUIRE(argv.size() == spec.bwrap_args.size() + 1);
        CHECK(argv.front() == *transport.bwrap());
        CHECK(std::vector<std::string>(argv.begin() + 1, argv.end()) == spec.bwrap_args);
        CHECK(process->stdin_fd() == -1);
        for (int fd : {process->stdout_fd(), process->stderr_fd(), process->exit_fd()}) {
            REQUIRE(fd > 2);
            CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        }
        CHECK((::fcntl(process->stdout_fd(), F_GETFL) & O_NONBLOCK) != 0);
        CHECK((::fcntl(process->stderr_fd(), F_GETFL) & O_NONBLOCK) != 0);
        auto d = shannot_test::drive(*process);
        CHECK(d.exit.kind == ExitInfo::Kind::exited);
        CHECK(d.exit.exit_code == 0);
    }
    SUBCASE("an explicit bwrap_path is used as given") {
        const auto found = *transport.bwrap();
        PosixSpawnTransport explicit_transport({.bwrap_path = found});
        auto process = explicit_transport.launch(spawn_spec(profile, {"true"}));
        REQUIRE(process);
        CHECK(process->argv().front() == found);
        CHECK(shannot_test::drive(*process).exit.exit_code == 0);
    }
    SUBCASE("stdin is /dev/null unless a pipe was asked for") {
        auto d = spawn_and_drive(transport, spawn_spec(profile, {"ls", "-l", "/proc/self/fd/0"}));
        CHECK(d.exit.exit_code == 0);
        CHECK(d.out.find("-> /dev/null") != std::string::npos);
        auto piped_spec = spawn_spec(profile, {"cat"});
        piped_spec.pipe_stdin = true;
        auto piped = spawn_and_drive(transport, piped_spec, "fed through a pipe\n");
        CHECK(piped.exit.exit_code == 0);
        CHECK(piped.out == "fed through a pipe\n");
    }
    SUBCASE("the command's exit code and stderr come back; exit 1 is not a setup failure") {
        auto d = spawn_and_drive(transport, spawn_spec(profile, {"ls", "/nonexistent-shannot-dir"}));
        CHECK(d.exit.kind == ExitInfo::Kind::exited);
        CHECK(d.exit.exit_code == 2);
        CHECK(d.err.find("nonexistent-shannot-dir") != std::string::npos);
        auto one = spawn_and_drive(transport, spawn_spec(profile, {"grep", "x", "/dev/null"}));
        CHECK(one.exit.kind == ExitInfo::Kind::exited);
        CHECK(one.exit.exit_code == 1);
    }
    SUBCASE("a failed mount is setup_failed, decided from the status pipe, not stderr") {
        // Built by hand: profile validation would refuse a missing non-optional source.
        LaunchSpec spec = spawn_spec(profile, {"true"});
        spec.bwrap_args.insert(spec.bwrap_args.begin(), {"--ro-bind", "/nonexistent-shannot-source", "/x"});
        auto d = spawn_and_drive(transport, spec);
        CHECK(d.exit.kind == ExitInfo::Kind::setup_failed);
        CHECK(d.exit.error == errc::sandbox_setup_failed);
        CHECK_FALSE(d.exit.detail.empty());
        CHECK(d.exit.detail.find("nonexistent-shannot-source") == std::string::npos);  // not parsed from stderr
    }
    SUBCASE("a command missing inside the sandbox is setup_failed too (bwrap's execvp)") {
        auto d = spawn_and_drive(transport, spawn_spec(profile, {"/usr/bin/nonexistent-shannot-tool"}));
        CHECK(d.exit.kind == ExitInfo::Kind::setup_failed);
        CHECK(d.exit.error == errc::sandbox_setup_failed);
    }
    SUBCASE("a missing file to inherit is spawn_failed naming it, and nothing leaks") {
        const int fds_before = shannot_test::count_fds();
        auto spec = spawn_spec(profile, {"true"});
        spec.files.push_back({PosixSpawnTransport::seccomp_fd, "/nonexistent-shannot.bpf"});
        auto r = transport.launch(spec);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::spawn_failed);
        CHECK(r.error().message.find("/nonexistent-shannot.bpf") != std::string::npos);
        CHECK(shannot_test::count_fds() == fds_before);
        CHECK(shannot_test::zombie_children().empty());
    }
    SUBCASE("bwrap runs in its own process group, with signal dispositions reset") {
        // SIGINT ignored here would survive exec into bwrap and the command without SETSIGDEF.
        struct sigaction ignore {
        }, old{};
        ignore.sa_handler = SIG_IGN;
        ::sigaction(SIGINT, &ignore, &old);
        auto process = transport.launch(spawn_spec(profile, {"grep", "^Sig[IB]", "/proc/self/status"}));
        ::sigaction(SIGINT, &old, nullptr);
        REQUIRE(process);
        CHECK(::getpgid(process->pid()) == process->pid());
        auto d = shannot_test::drive(*process);
        REQUIRE(d.exit.exit_code == 0);
        CAPTURE(d.out);
        CHECK(d.out.find("SigBlk:\t0000000000000000\n") != std::string::npos);
        // glibc's posix_spawn sets its two internal signals (32, 33) to SIG_IGN in the child on
        // purpose and no flag can reset them; nothing else may stay ignored.
        const auto at = d.out.find("SigIgn:\t");
        REQUIRE(at != std::string::npos);
        const unsigned long long ignored = std::strtoull(d.out.c_str() + at + 8, nullptr, 16);
        CHECK((ignored & ~0x180000000ull) == 0);
    }
}

TEST_CASE("PosixSpawnTransport descriptors and seccomp") {
    SHANNOT_REQUIRE_SPAWN();
    const auto probe = shannot_test::helper_path("shannot_fd_probe");
    REQUIRE_MESSAGE(!probe.empty(), "tests/helpers/fd_probe.cpp was not built next to the test executable");
    const std::string probe_inside = std::string(spawn_helpers_dir) + "/shannot_fd_probe";
    const std::string seccomp_probe_inside = std::string(spawn_helpers_dir) + "/shannot_seccomp_probe";
    PosixSpawnTransport transport;
    const auto profile = spawn_profile(true);

    SUBCASE("only fds 0, 1 and 2 reach the command, even with stray inheritable fds here") {
        // Two descriptors without O_CLOEXEC: only closefrom in the file actions keeps them out.
        const int stray_low = ::open("/dev/null", O_RDONLY);
        const int stray_high = ::fcntl(stray_low, F_DUPFD, 50);
        REQUIRE(stray_low >= 0);
        REQUIRE(stray_high >= 50);
        auto d = spawn_and_drive(transport, spawn_spec(profile, {probe_inside}));
        ::close(stray_low);
        ::close(stray_high);
        CHECK(d.exit.exit_code == 0);
        CAPTURE(d.out);
        CAPTURE(d.err);
        CHECK(d.out.rfind("fds 0 1 2\n", 0) == 0);
        CHECK(d.out.find("\nsid 1\n") != std::string::npos);  // --new-session: its own session
    }
    SUBCASE("the profile's seccomp filter reaches bwrap at fd 3 and is enforced; no fd 3 remains inside") {
        if (shannot_test::test_audit_arch == 0) {
            MESSAGE("skipped: no test seccomp filter for this architecture");
            return;
        }
        shannot_test::TempDir dir;
        const std::string filter = dir.path() + "/deny-mkdir.bpf";
        REQUIRE(shannot_test::write_mkdir_denying_filter(filter));
        auto filtered = profile;
        filtered.seccomp_profile = filter;
        auto with_filter = [&](std::vector<std::string> command) {
            auto spec = spawn_spec(filtered, std::move(command));
            REQUIRE(spec.files.size() == 2);  // the profile's file at 3 and the built-in filter's bytes at 6
            CHECK(spec.files[0].fd == PosixSpawnTransport::seccomp_fd);
            CHECK(spec.files[0].path == filter);
            return spawn_and_drive(transport, spec);
        };
        auto denied = with_filter({"mkdir", "/tmp/x"});
        CHECK(denied.exit.kind == ExitInfo::Kind::exited);
        CHECK(denied.exit.exit_code != 0);
        CHECK(denied.err.find("Operation not permitted") != std::string::npos);
        auto listed = with_filter({"ls", "/"});
        CHECK(listed.exit.exit_code == 0);
        CHECK(listed.out.find("usr\n") != std::string::npos);
        auto fds = with_filter({probe_inside});
        CHECK(fds.out.rfind("fds 0 1 2\n", 0) == 0);
        // The control: without the filter the same mkdir succeeds on the tmpfs.
        auto unfiltered = spawn_and_drive(transport, spawn_spec(profile, {"mkdir", "/tmp/x"}));
        CHECK(unfiltered.exit.exit_code == 0);
        // Stacked: the built-in filter is enforced beside the profile's file.
        auto unix_socket = with_filter({seccomp_probe_inside, "socket_unix"});
        CHECK(unix_socket.out == "socket_unix EPERM\n");
    }
    SUBCASE(
        "the built-in filter reaches bwrap at its fd as bytes (a sealed memfd), is enforced, and no such fd remains "
        "inside") {
        auto spec = spawn_spec(profile, {probe_inside});
        REQUIRE(spec.files.size() == 1);
        CHECK(spec.files[0].fd == PosixSpawnTransport::syscall_filter_fd);
        CHECK(spec.files[0].path.empty());
        CHECK(spec.files[0].data == shannot::DefaultSyscallFilter::program().bytes());
        const int fds_before = shannot_test::count_fds();
        auto d = spawn_and_drive(transport, spec);
        CHECK(shannot_test::count_fds() == fds_before);  // the memfd is closed here after the spawn
        CAPTURE(d.err);
        CHECK(d.exit.exit_code == 0);
        CHECK(d.out.rfind("fds 0 1 2\n", 0) == 0);
        auto denied = spawn_and_drive(transport, spawn_spec(profile, {seccomp_probe_inside, "socket_unix"}));
        CHECK(denied.out == "socket_unix EPERM\n");
        // The control: the same probe with "syscall_filter": "none" opens the socket.
        auto off = profile;
        off.syscall_filter = "none";
        auto plain = spawn_and_drive(transport, spawn_spec(off, {seccomp_probe_inside, "socket_unix"}));
        CHECK(plain.out == "socket_unix ok\n");
        // A descriptor the caller holds at the filter's fd without O_CLOEXEC is not what bwrap reads there.
        // That number may hold a descriptor of the process's own (a kept connection's, from an
        // earlier test): it is moved aside for the check and put back after, never closed.
        constexpr int at = PosixSpawnTransport::syscall_filter_fd;
        const int saved = ::fcntl(at, F_GETFD) >= 0 ? ::fcntl(at, F_DUPFD_CLOEXEC, 10) : -1;
        const int stray = ::open("/dev/zero", O_RDONLY);
        REQUIRE(stray >= 0);
        REQUIRE(::dup2(stray, at) == at);
        auto again = spawn_and_drive(transport, spawn_spec(profile, {seccomp_probe_inside, "socket_unix"}));
        ::close(stray);
        if (saved >= 0) {
            REQUIRE(::dup3(saved, at, O_CLOEXEC) == at);
            ::close(saved);
        } else {
            ::close(at);
        }
        CHECK(again.out == "socket_unix EPERM\n");
    }
}

TEST_CASE("PosixSpawnTransport stopping and reaping") {
    SHANNOT_REQUIRE_SPAWN();
    PosixSpawnTransport transport;
    auto profile = spawn_profile();
    profile.allowed_commands.push_back("sh");
    const std::string tag = std::to_string(::getpid() % 100000);

    SUBCASE("terminate() ends bwrap with SIGTERM and the whole sandbox with it") {
        const std::string marker = "2345." + tag + "1";
        auto process = transport.launch(spawn_spec(profile, {"sh", "-c", "sleep " + marker + " & sleep " + marker}));
        REQUIRE(process);
        CHECK(running_within(sleeping(marker), 2, 20s));
        process->terminate();
        auto d = shannot_test::drive(*process, {}, 20s);
        CHECK_FALSE(d.hung);
        CHECK(d.exit.kind == ExitInfo::Kind::signaled);
        CHECK(d.exit.signal == SIGTERM);
        CHECK(gone_within(sleeping(marker), 5s));
    }
    SUBCASE("kill() ends it with SIGKILL") {
        const std::string marker = "2345." + tag + "2";
        auto process = transport.launch(spawn_spec(profile, {"sh", "-c", "trap '' TERM; sleep " + marker}));
        REQUIRE(process);
        CHECK(running_within(sleeping(marker), 1, 20s));
        process->kill();
        auto d = shannot_test::drive(*process, {}, 20s);
        CHECK(d.exit.kind == ExitInfo::Kind::signaled);
        CHECK(d.exit.signal == SIGKILL);
        CHECK(gone_within(sleeping(marker), 5s));
    }
    SUBCASE("a sandbox launched from a thread that then exits keeps running") {
        // --die-with-parent follows the spawning *thread*: launch must not spawn on the caller's.
        std::optional<shannot::Result<PosixSpawnTransport::process_type>> launched;
        std::thread([&] {
            launched.emplace(transport.launch(spawn_spec(profile, {"sh", "-c", "sleep 1; echo survived"})));
        }).join();
        REQUIRE(launched);
        REQUIRE(*launched);
        auto d = shannot_test::drive(**launched, {}, 30s);
        CHECK(d.exit.kind == ExitInfo::Kind::exited);
        CHECK(d.exit.exit_code == 0);
        CHECK(d.out == "survived\n");
    }
    SUBCASE("no zombies and no descriptor leaks, whether waited, dropped or moved") {
        const int fds_before = shannot_test::count_fds();
        for (int i = 0; i < 3; ++i) {
            auto waited = spawn_and_drive(transport, spawn_spec(profile, {"true"}));
            CHECK(waited.exit.exit_code == 0);
        }
        pid_t dropped_pid = -1;
        const std::string marker = "2345." + tag + "3";
        {
            // Through sh: bwrap's own argv must not end in "sleep\0<marker>\0", or the two bwrap
            // processes match sleeping(marker) too and the count is 3 (1 only in a race).
            auto process = transport.launch(spawn_spec(profile, {"sh", "-c", "exec sleep " + marker}));
            REQUIRE(process);
            dropped_pid = process->pid();
            auto moved = std::move(*process);  // the moved-from handle must not reap or close anything
            CHECK(moved.pid() == dropped_pid);
            CHECK(running_within(sleeping(marker), 1, 20s));
        }  // never waited: the destructor kills and reaps
        CHECK(::kill(dropped_pid, 0) == -1);
        CHECK(errno == ESRCH);
        CHECK(gone_within(sleeping(marker), 5s));
        {
            auto a = transport.launch(spawn_spec(profile, {"true"}));
            auto b = transport.launch(spawn_spec(profile, {"true"}));
            REQUIRE(a);
            REQUIRE(b);
            *a = std::move(*b);  // move-assignment reaps the process it replaces
        }
        CHECK(shannot_test::zombie_children().empty());
        CHECK(shannot_test::count_fds() == fds_before);
    }
}
