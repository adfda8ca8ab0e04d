// SPDX-License-Identifier: MIT
// The built-in syscall filter in real sandboxes, both transports, fresh runs and sessions: a probe
// calls each denied syscall with arguments the kernel would let succeed, under the default filter,
// with "syscall_filter": "none" (the control), and with a group relaxed.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/bwrap_env.hpp"
#include "support/transports.hpp"

namespace {

/// Where the helper programs appear inside the sandbox.
constexpr const char* helpers_dir = "/opt/shannot-helpers";

template <class T>
shannot::SandboxProfile<T> probe_profile(std::string filter, std::vector<std::string> allow = {}) {
    auto p = shannot_test::test_profile<T>();
    p.binds.push_back({shannot_test::exe_dir(), helpers_dir, true, true, false});
    p.allowed_commands.push_back(std::string(helpers_dir) + "/shannot_seccomp_probe");
    p.syscall_filter = std::move(filter);
    p.syscall_filter_allow = std::move(allow);
    return p;
}

/// The probe's verdict per call ("ok", "EPERM", "ENOSYS", "killed SIGSYS", ...), run in mode M.
template <class M>
std::map<std::string, std::string> probe(shannot::SandboxProfile<typename M::transport> profile) {
    auto runner = shannot_test::make_runner<M>(std::move(profile));
    auto r = runner.run({std::string(helpers_dir) + "/shannot_seccomp_probe"}, {.timeout = std::chrono::seconds(60)});
    REQUIRE_MESSAGE(r, r.error().describe());
    INFO("stdout: ", r->stdout_data, "\nstderr: ", r->stderr_data);
    REQUIRE(r->exit_code == 0);
    std::map<std::string, std::string> out;
    std::istringstream lines(r->stdout_data);
    std::string line;
    while (std::getline(lines, line)) {
        const auto space = line.find(' ');
        if (space != std::string::npos) out[line.substr(0, space)] = line.substr(space + 1);
    }
    REQUIRE(out.size() >= 45);
    return out;
}

/// The denied calls and what the default filter answers each.
const std::vector<std::pair<std::string, std::string>>& denied_calls() {
    static const std::vector<std::pair<std::string, std::string>> calls = {
        {"io_uring_setup", "EPERM"},
        {"io_uring_enter", "EPERM"},
        {"io_uring_register", "EPERM"},
        {"ptrace", "EPERM"},
        {"process_vm_readv", "EPERM"},
        {"process_vm_writev", "EPERM"},
        {"pidfd_getfd", "EPERM"},
        {"bpf", "EPERM"},
        {"perf_event_open", "EPERM"},
        {"userfaultfd", "EPERM"},
        {"keyctl", "EPERM"},
        {"add_key", "EPERM"},
        {"request_key", "EPERM"},
        {"mount", "EPERM"},
        {"umount2", "EPERM"},
        {"pivot_root", "EPERM"},
        {"move_mount", "EPERM"},
        {"open_tree", "EPERM"},
        {"open_tree_attr", "EPERM"},
        {"fsopen", "EPERM"},
        {"fsconfig", "EPERM"},
        {"fsmount", "EPERM"},
        {"fspick", "EPERM"},
        {"mount_setattr", "EPERM"},
        {"unshare", "EPERM"},
        {"setns", "EPERM"},
        {"clone_newuser", "EPERM"},
        {"clone3", "ENOSYS"},
        {"socket_unix", "EPERM"},
        {"socket_netlink", "EPERM"},
        {"socket_other", "EPERM"},
        {"socket_packet", "EPERM"},
        {"init_module", "EPERM"},
        {"finit_module", "EPERM"},
        {"delete_module", "EPERM"},
        {"kexec_load", "EPERM"},
        {"kexec_file_load", "EPERM"},
        {"personality", "EPERM"},
    };
    return calls;
}

/// Calls that reach privileged kernel code only from a nested user namespace: under the default
/// filter the kernel would refuse them with EPERM too (no namespace to nest in), so what proves the
/// filter denies them is the run with only the "namespaces" group relaxed.
bool needs_nesting(const std::string& call) {
    for (const char* c : {"mount", "umount2", "pivot_root", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick",
                          "mount_setattr", "socket_packet"})
        if (call == c) return true;
    return false;
}

}  // namespace

TEST_CASE_TEMPLATE("the built-in syscall filter denies what it says, in every mode", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    REQUIRE_MESSAGE(!shannot_test::helper_path("shannot_seccomp_probe").empty(),
                    "tests/helpers/seccomp_probe.cpp was not built next to the test executable");
    const auto filtered = probe<M>(probe_profile<T>("default"));
    const auto open = probe<M>(probe_profile<T>("none"));
    const auto ns_relaxed = probe<M>(probe_profile<T>("default", {"namespaces"}));

    SUBCASE("each denied call fails with EPERM (clone3 with ENOSYS); with \"none\" the kernel lets it through") {
        int proved = 0;
        for (const auto& entry : denied_calls()) {
            const auto& call = entry.first;
            const auto& expected = entry.second;
            CAPTURE(call);
            CHECK(filtered.at(call) == expected);
            // The control: without the filter the call succeeds, or the kernel answers with an
            // error of its own (bpf: EBADF; a kernel built without modules or kexec: ENOSYS).
            if (open.at(call) == "EPERM") {
                MESSAGE(call,
                        ": this kernel refuses it with EPERM itself; the BPF tests (seccomp_test.cpp) prove the filter "
                        "denies it");
                continue;
            }
            if (needs_nesting(call)) {
                REQUIRE(ns_relaxed.at("nested") == "ok");
                CHECK(ns_relaxed.at(call) ==
                      "EPERM");  // nested, where the kernel would allow it: the mount group refuses
            }
            ++proved;
        }
        // The calls unprivileged users can make on any recent kernel were told apart from the
        // kernel's own refusal (io_uring may be disabled by sysctl, perf by paranoia: not counted on).
        for (const char* call : {"socket_unix", "socket_netlink", "unshare", "clone_newuser", "clone3", "ptrace",
                                 "process_vm_readv", "process_vm_writev", "pidfd_getfd", "bpf", "personality", "keyctl",
                                 "add_key", "request_key", "open_tree", "setns", "mount"})
            CHECK_MESSAGE(open.at(call) != "EPERM", call);
        CHECK(proved >= 17);
    }
    SUBCASE(
        "what programs need still works under it: AF_INET sockets, socketpair, fork, threads, posix_spawn, personality "
        "queries") {
        for (const char* call : {"socket_inet", "socket_inet6", "socketpair", "unshare_files", "fork", "thread",
                                 "spawn", "personality_query"}) {
            CAPTURE(call);
            CHECK(filtered.at(call) == "ok");
            CHECK(open.at(call) == "ok");
        }
    }
    SUBCASE("a relaxed group is allowed and nothing else is") {
        for (const char* call : {"unshare", "setns", "clone_newuser", "clone3", "nested"})
            CHECK_MESSAGE(ns_relaxed.at(call) == "ok", call);
        for (const auto& entry : denied_calls()) {
            const auto& call = entry.first;
            if (call == "unshare" || call == "setns" || call == "clone_newuser" || call == "clone3") continue;
            CHECK_MESSAGE(ns_relaxed.at(call) == "EPERM", call);
        }
        const auto unix_relaxed = probe<M>(probe_profile<T>("default", {"unix_sockets"}));
        CHECK(unix_relaxed.at("socket_unix") == open.at("socket_unix"));
        CHECK(unix_relaxed.at("socket_netlink") == "EPERM");
        CHECK(unix_relaxed.at("socket_other") == "EPERM");
        CHECK(unix_relaxed.at("unshare") == "EPERM");
    }
#if defined(__x86_64__)
    SUBCASE("x32 and i386 calls kill the process; without the filter they do not") {
        CHECK(filtered.at("x32") == "killed SIGSYS");
        CHECK(filtered.at("i386") == "killed SIGSYS");
        CHECK(open.at("x32").rfind("killed", 0) != 0);
        CHECK(open.at("i386") != "killed SIGSYS");
    }
#endif
}

TEST_CASE_TEMPLATE("the built-in profiles' commands work under the default filter, in every mode", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    struct Case {
        const char* profile;
        std::vector<std::string> command;
        const char* expect;  ///< a piece of stdout
    };
    const std::vector<Case> cases = {
        {"minimal", {"ls", "-la", "/usr"}, "bin"},
        {"minimal", {"cat", "/etc/os-release"}, "ID="},
        {"minimal", {"grep", "-r", "-l", "lib", "/etc/ld.so.conf.d"}, "/etc/ld.so.conf.d/"},
        {"minimal", {"find", "/usr/bin", "-maxdepth", "1", "-name", "ls"}, "/usr/bin/ls"},
        {"readonly", {"head", "-n", "1", "/etc/passwd"}, "root"},
        {"readonly", {"tail", "-n", "1", "/etc/group"}, ":"},
        {"readonly", {"stat", "/etc/hostname"}, "File: /etc/hostname"},
        {"readonly", {"grep", "-r", "-h", "^root:", "/etc/passwd", "/etc/group"}, "root:"},
        {"diagnostics", {"ps", "aux"}, "PID"},
        {"diagnostics", {"df", "-h"}, "Filesystem"},
        {"diagnostics", {"free", "-h"}, "Mem:"},
        {"diagnostics", {"uptime"}, "load average"},
        {"diagnostics", {"wc", "-l", "/etc/passwd"}, "/etc/passwd"},
        {"systemd", {"journalctl", "--no-pager", "-n", "1", "--quiet"}, ""},
    };
    for (const auto& c : cases) {
        auto profile = *shannot::builtin_profile<T>(c.profile);
        REQUIRE(profile.syscall_filter == "default");
        auto runner = shannot_test::make_runner<M>(profile);
        auto r = runner.run(c.command);
        const std::string what = std::string(c.profile) + ": " + c.command.front();
        CAPTURE(what);
        REQUIRE_MESSAGE(r, r.error().describe());
        CAPTURE(r->stderr_data);
        if (c.command.front() == "journalctl") {  // "where installed": with no journal here it says so and fails
            CHECK((r->exit_code == 0 || r->stderr_data.find("No journal files") != std::string::npos));
            continue;
        }
        CHECK(r->exit_code == 0);
        CHECK(r->stdout_data.find(c.expect) != std::string::npos);
    }
}

TEST_CASE_TEMPLATE("execute_code runs sh and python3 under the default filter, in every mode", M, SHANNOT_MODES) {
    using T = typename M::transport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto profile = shannot_test::test_profile<T>();
    profile.allowed_commands.push_back("python3");
    REQUIRE(profile.syscall_filter == "default");
    auto sandbox = shannot_test::make_sandbox<T>(profile);
    std::optional<shannot::SandboxSession<T>> session;
    if constexpr (M::session) {
        auto opened = sandbox.open_session();
        REQUIRE_MESSAGE(opened, opened.error().describe());
        session.emplace(std::move(*opened));
    }
    auto execute = [&](std::string_view language, const std::string& code) {
        if constexpr (M::session)
            return shannot::execute_code(*session, language, code);
        else
            return shannot::execute_code(sandbox, language, code);
    };
    // Threads, a subprocess (posix_spawn: clone3, then clone), a socketpair and an AF_INET socket.
    const std::string python =
        "import socket, subprocess, threading\n"
        "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
        "print(subprocess.run(['sh', '-c', 'echo child'], capture_output=True, text=True).stdout.strip())\n"
        "a, b = socket.socketpair(); a.send(b'pair'); print(b.recv(4).decode())\n"
        "socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()\n"
        "try:\n    socket.socket(socket.AF_UNIX)\nexcept PermissionError as e:\n    print('unix', e.errno)\n";
    auto py = execute("python3", python);
    REQUIRE_MESSAGE(py, py.error().describe());
    CAPTURE(py->stderr_data);
    CHECK(py->exit_code == 0);
    CHECK(py->stdout_data == "child\npair\nunix 1\n");
    auto sh = execute(
        "sh", "mkfifo /tmp/f && echo fifo; cat <<EOF\nheredoc $((6 * 7))\nEOF\n( sleep 10 & kill $! ) && echo killed");
    REQUIRE_MESSAGE(sh, sh.error().describe());
    CHECK(sh->exit_code == 0);
    CHECK(sh->stdout_data == "fifo\nheredoc 42\nkilled\n");
}

TEST_CASE_TEMPLATE("bad syscall_filter values are errors naming them, before anything runs", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto bad_value = shannot_test::test_profile<T>();
    bad_value.syscall_filter = "strict";
    auto sandbox = shannot_test::make_sandbox<T>(bad_value);
    auto r = sandbox.run({"true"});
    REQUIRE_FALSE(r);
    CHECK(r.error().code == shannot::errc::invalid_profile);
    CHECK(r.error().message == "syscall_filter: unknown value 'strict' (expected \"default\" or \"none\")");
    auto session = sandbox.open_session();
    REQUIRE_FALSE(session);
    CHECK(session.error().message.find("'strict'") != std::string::npos);

    auto bad_group = shannot_test::test_profile<T>();
    bad_group.syscall_filter_allow = {"unix_sockets", "docker"};
    auto r2 = shannot_test::make_sandbox<T>(bad_group).run({"true"});
    REQUIRE_FALSE(r2);
    CHECK(r2.error().code == shannot::errc::invalid_profile);
    CHECK(r2.error().message.rfind("syscall_filter_allow[1]: no syscall filter group named 'docker'", 0) == 0);
    auto from_json = shannot::load_profile_from_string<T>(R"({"name": "x", "syscall_filter": "off"})");
    REQUIRE_FALSE(from_json);
    CHECK(from_json.error().message.find("'off'") != std::string::npos);
}

TEST_CASE(
    "over ssh, profiles with different filters take turns on the same dispatchers, each run with its own filter") {
    using T = shannot::OpenSshProcessTransport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    // One transport: its dispatchers hold one filter each and are sent another when a run needs it.
    auto transport = shannot_test::TransportFixture<T>::transport();
    shannot::SandboxManager<T> strict(probe_profile<T>("default"), transport);
    shannot::SandboxManager<T> relaxed(probe_profile<T>("default", {"unix_sockets"}), transport);
    shannot::SandboxManager<T> open(probe_profile<T>("none"), transport);
    const std::vector<std::string> probe = {std::string(helpers_dir) + "/shannot_seccomp_probe", "socket_unix",
                                            "socket_netlink"};
    for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        for (auto* sandbox : {&strict, &relaxed, &open, &strict}) {
            auto r = sandbox->run(probe);
            REQUIRE_MESSAGE(r, r.error().describe());
            const auto& p = sandbox->profile();
            const std::string unix_result =
                p.syscall_filter == "none" || !p.syscall_filter_allow.empty() ? "ok" : "EPERM";
            const std::string netlink_result = p.syscall_filter == "none" ? "ok" : "EPERM";
            CHECK(r->stdout_data == "socket_unix " + unix_result + "\nsocket_netlink " + netlink_result + "\n");
        }
    }
}
