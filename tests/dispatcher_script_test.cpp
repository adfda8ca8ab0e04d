// SPDX-License-Identifier: MIT
// The ssh dispatcher (detail/scripts/dispatcher.sh) alone: each request of its protocol
// (docs/protocol.md) driven by hand over pipes, with this host's sh and bwrap, no ssh. The
// transport's own tests (ssh_transport_test) drive it over ssh, its backstop included.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/bwrap_env.hpp"
#include "support/dispatcher_driver.hpp"

using namespace std::chrono_literals;
namespace protocol = shannot::detail::protocol;

namespace {

/// bwrap's arguments before "--" that the tests keep in slot 0: this host, read-only.
std::string host_args() {
    auto text = shannot::detail::dispatcher_request({"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                                     "--unshare-pid", "--die-with-parent", "--json-status-fd", "4"});
    text.pop_back();
    return text;
}

struct RunRequest {
    std::vector<std::string> command;
    std::string input{};
    std::string slot = "0";
    std::string bwrap = "bwrap";
    std::string seccomp{};
    int timeout_s = 0;
    std::string limits{};      ///< the LIMITS word (remote_limits()); '' for none
    std::string filter = "0";  ///< FILTER: "1" gives bwrap the filter of the last B at fd 6
};

/// An R request line and its input.
std::string run_request(const std::string& nonce, const RunRequest& r) {
    std::vector<std::string> words = {"R",
                                      nonce,
                                      std::to_string(r.timeout_s),
                                      r.seccomp,
                                      std::to_string(r.input.size()),
                                      r.bwrap,
                                      r.slot,
                                      r.limits,
                                      r.filter,
                                      "--"};
    words.insert(words.end(), r.command.begin(), r.command.end());
    return shannot::detail::dispatcher_request(words) + r.input;
}

/// A dispatcher run here over pipes, its folder under a private $TMPDIR, started and ready,
/// with this host's read-only view kept in slot 0.
struct Dispatcher {
    shannot_test::TempDir tmp;
    std::string hello = shannot::detail::random_marker();
    shannot_test::DispatcherDriver d{shannot_test::DispatcherDriver::local(hello, tmp.path())};
    std::string ready;

    Dispatcher() {
        ready = d.ready(hello);
        if (!ready.empty()) (void)d.send(shannot::detail::dispatcher_request({"P", "0", host_args()}));
    }
    [[nodiscard]] std::string folder() const { return tmp.path() + "/shannot." + hello; }
    shannot_test::ScriptDriver::Frames run(const std::string& nonce, const RunRequest& r) {
        if (!d.send(run_request(nonce, r))) return {};
        return d.frames(nonce);
    }
};

std::string file_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("dispatcher.sh: the ready frame lists the top-level symlinks to folders, plain paths only") {
    SHANNOT_REQUIRE_BWRAP();
    // A root of our making: symlinks to folders (relative, absolute, through another link), and
    // ones it must leave out (a name that needs quoting, a dangling link, a link to a file).
    const auto hello = shannot::detail::random_marker();
    std::vector<std::string> argv = {"bwrap", "--ro-bind", "/usr",    "/usr", "--proc",        "/proc",
                                     "--dev", "/dev",      "--tmpfs", "/tmp", "--unshare-pid", "--die-with-parent"};
    const std::vector<std::pair<std::string, std::string>> links = {
        {"usr/bin", "/bin"},           {"/bin", "/bin2"},           {"usr/lib", "/lib"},
        {"/usr/sbin", "/sbin"},        {"/usr/share", "/odd name"}, {"/nonexistent", "/dangling"},
        {"/usr/bin/env", "/file-link"}};
    for (const auto& [target, link] : links) argv.insert(argv.end(), {"--symlink", target, link});
    std::string expected = "ready /bin=/usr/bin /bin2=/usr/bin /lib=/usr/lib";
    if (std::filesystem::is_directory("/usr/lib64")) {  // where amd64's ELF interpreter is found
        argv.insert(argv.end(), {"--symlink", "usr/lib64", "/lib64"});
        expected += " /lib64=/usr/lib64";
    }
    expected += " /sbin=/usr/sbin";
    // No cgroup file system is mounted in that root: no pids cgroup, no bound on processes.
    expected += " limits=rlimits-without-processes";
    argv.insert(argv.end(),
                {"--", "/bin/sh", "-c", std::string(shannot::detail::ssh_dispatcher_script), "shannot", hello});
    shannot_test::ScriptDriver d(argv);
    REQUIRE_MESSAGE(d.started(), d.error());
    std::string on_stderr;
    CHECK(d.ready(hello, &on_stderr) == expected);
    CHECK(on_stderr == "ready");  // on stderr the frame is "ready" alone
}

TEST_CASE(
    "dispatcher.sh: started with PATHS it reports the regular files and the symlinks among them once; a P's "
    "redirections give bwrap copies") {
    SHANNOT_REQUIRE_BWRAP();
    shannot_test::TempDir files;  // the files reported and copied (the dispatcher's folder is elsewhere)
    const std::string file = std::filesystem::canonical(files.path()).string() + "/small.txt";
    { std::ofstream(file) << "copied bytes\n"; }
    REQUIRE(::chmod(file.c_str(), 0640) == 0);
    // Symlinks: relative, through a folder and "..", a chain, and one that leads nowhere.
    const std::string folder = files.path() + "/sub", link = folder + "/link", chain = files.path() + "/chain",
                      dangling = files.path() + "/dangling";
    std::filesystem::create_directory(folder);
    std::filesystem::create_symlink("../sub/../small.txt", link);
    std::filesystem::create_symlink(link, chain);
    std::filesystem::create_symlink(files.path() + "/nowhere", dangling);
    for (const std::string& limits : {std::string(), shannot::detail::remote_limits(shannot::ResourceLimits{})}) {
        CAPTURE(limits);
        shannot_test::TempDir tmp;
        const auto hello = shannot::detail::random_marker();
        auto argv = shannot_test::DispatcherDriver::local(hello, tmp.path());
        // A regular file, a folder and a missing path: only the file is reported, and the links
        // (ls follows them: as files too) but the one that leads nowhere.
        argv.insert(argv.end(), {file, files.path(), files.path() + "/missing", link, chain, dangling});
        shannot_test::DispatcherDriver d(argv);
        REQUIRE_FALSE(d.ready(hello).empty());
        // Slot 0 copies the file to /mnt/copied from fd 5, which the run's own redirections close
        // first (the session's stdout); slot 1 names the fd without opening it: the control.
        auto args = shannot::detail::dispatcher_request(
            {"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent",
             "--json-status-fd", "4", "--tmpfs", "/mnt", "--perms", "0600", "--file", "5", "/mnt/copied"});
        args.pop_back();
        REQUIRE(
            d.send(shannot::detail::dispatcher_request({"P", "0", args + " 5<" + shannot::detail::shell_quote(file)})));
        REQUIRE(d.send(shannot::detail::dispatcher_request({"P", "1", args})));
        // The background ls has written its list (the first run after that reports it).
        const std::string list = tmp.path() + "/shannot." + hello + "/f";
        for (int i = 0; i < 500 && !std::filesystem::exists(list); ++i) std::this_thread::sleep_for(10ms);
        REQUIRE(std::filesystem::exists(list));

        auto run = [&](const std::string& nonce, const std::string& slot) {
            REQUIRE(
                d.send(shannot::detail::dispatcher_request({"R", nonce, "0", "", "0", "bwrap", slot, limits, "0", "--",
                                                            "sh", "-c", "cat /mnt/copied && stat -c %a /mnt/copied"})));
            return d.frames(nonce, 30s, &protocol::is_exit_report);
        };
        const auto first = run("n-first", "0");
        CHECK(first.report.rfind("exit 0 1 ", 0) == 0);  // the command exited 0, in a sandbox set up
        CHECK(first.out == "copied bytes\n600\n");
        REQUIRE(first.payloads.size() == 2);
        // ls sorts the files (chain, small.txt, sub/link); the links come in PATHS' order.
        const std::string as_file = "file=-rw-r-----:13:";
        CHECK(first.payloads[0] == "files " + as_file + chain + " " + as_file + file + " " + as_file + link +
                                       " link=" + link + ":" + file + " link=" + chain + ":" + file);
        // Once per dispatcher.
        const auto second = run("n-second", "0");
        CHECK(second.out == "copied bytes\n600\n");
        CHECK(second.payloads.size() == 1);
        // Without the redirection bwrap has nothing at fd 5 to copy: the sandbox does not start.
        const auto control = run("n-control", "1");
        CHECK(control.out.empty());
        CHECK(control.report.rfind("exit ", 0) == 0);
        CHECK(control.report.rfind("exit 0", 0) != 0);
    }
}

TEST_CASE("dispatcher.sh driven over pipes") {
    SHANNOT_REQUIRE_BWRAP();
    Dispatcher s;
    REQUIRE_MESSAGE(s.d.started(), s.d.error());
    REQUIRE_MESSAGE(s.ready.rfind("ready", 0) == 0, s.d.out << s.d.err);

    SUBCASE("its folder names it (pid, start time, \".\") and is gone when stdin ends") {
        std::istringstream m(file_text(s.folder() + "/m"));
        long pid = 0;
        std::string start, dot;
        m >> pid >> start >> dot;
        CHECK(pid == s.d.pid());
        CHECK_FALSE(start.empty());
        CHECK(dot == ".");
        s.d.close_input();
        CHECK(s.d.wait_exit() == 0);
        CHECK_FALSE(std::filesystem::exists(s.folder()));
    }
    SUBCASE("P keeps bwrap's arguments per slot; R runs the command with them, output and status passed through") {
        auto f = s.run("n1", {.command = {"sh", "-c", "echo out; echo err >&2; exit 3"}});
        CHECK(f.payloads == std::vector<std::string>{"exit 3 1 0 0"});  // SETUP 1: the command's own status
        CHECK(f.out == "out\n");
        CHECK(f.err == "err\n");
        auto other = shannot::detail::dispatcher_request(
            {"--ro-bind", "/", "/", "--dev", "/dev", "--setenv", "SLOT", "one", "--json-status-fd", "4"});
        other.pop_back();
        REQUIRE(s.d.send(shannot::detail::dispatcher_request({"P", "1", other})));
        f = s.run("n2", {.command = {"sh", "-c", "echo \"${SLOT-none}\""}, .slot = "1"});
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "one\n");
        f = s.run("n3", {.command = {"sh", "-c", "echo \"${SLOT-none}\""}});
        CHECK(f.out == "none\n");
    }
    SUBCASE("R with input: the bytes reach the command exactly, and the staged copy is emptied when the run ends") {
        std::string input;
        for (int b = 0; b < 256; ++b) input.push_back(static_cast<char>(b));
        input += "end";
        auto f = s.run("n1", {.command = {"cat"}, .input = input});
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == input);
        CHECK(std::filesystem::file_size(s.folder() + "/in") == 0);
        f = s.run("n2", {.command = {"cat"}});  // no input: /dev/null, not the last run's
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out.empty());
    }
    SUBCASE("nobwrap, noseccomp and noargs end the request; its input is read; the dispatcher goes on") {
        auto f = s.run("n1", {.command = {"cat"}, .input = "abc", .bwrap = "/nonexistent/bwrap"});
        CHECK(f.payloads == std::vector<std::string>{std::string(protocol::dispatcher::no_bwrap)});
        CHECK(f.out.empty());
        f = s.run("n2", {.command = {"cat"}, .input = "def", .seccomp = "/nonexistent/seccomp.bpf"});
        CHECK(f.payloads == std::vector<std::string>{std::string(protocol::dispatcher::no_seccomp)});
        f = s.run("n3", {.command = {"cat"}, .input = "ghi", .slot = "7"});  // no P for slot 7
        CHECK(f.payloads == std::vector<std::string>{std::string(protocol::dispatcher::no_args)});
        f = s.run("n4", {.command = {"cat"}, .input = "fine"});
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "fine");
    }
    SUBCASE("a bwrap found nowhere is looked for again at the next request (one found is kept)") {
        const std::string late = s.tmp.path() + "/late/bwrap";
        auto f = s.run("n1", {.command = {"echo", "late"}, .bwrap = late});
        CHECK(f.payloads == std::vector<std::string>{std::string(protocol::dispatcher::no_bwrap)});
        std::string real;  // the bwrap on PATH, as the runner resolves the bare name
        for (const char* p = std::getenv("PATH"); p && real.empty();) {
            const char* colon = std::strchr(p, ':');
            const std::string dir(p, colon ? static_cast<std::size_t>(colon - p) : std::strlen(p));
            if (!dir.empty() && ::access((dir + "/bwrap").c_str(), X_OK) == 0) real = dir + "/bwrap";
            p = colon ? colon + 1 : nullptr;
        }
        REQUIRE(!real.empty());
        std::filesystem::create_directories(s.tmp.path() + "/late");
        std::filesystem::create_symlink(real, late);
        f = s.run("n2", {.command = {"echo", "late"}, .bwrap = late});
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "late\n");
        f = s.run("n3", {.command = {"echo", "bare"}, .bwrap = "bwrap"});
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "bare\n");
    }
    SUBCASE("nostage: input that cannot be stored is read in full and dropped; the next request runs") {
        // A folder where the staged input goes: tee cannot write it, as on a full $TMPDIR.
        REQUIRE(std::filesystem::create_directory(s.folder() + "/in"));
        auto f = s.run("n1", {.command = {"cat"}, .input = std::string(5000, 'x')});
        CHECK(f.payloads == std::vector<std::string>{std::string(protocol::dispatcher::no_stage)});
        CHECK(f.out.empty());
        std::filesystem::remove(s.folder() + "/in");
        f = s.run("n2", {.command = {"cat"}, .input = "staged"});
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "staged");
    }
    SUBCASE("a bwrap that fails before the command reports its status with SETUP 0") {
        auto args =
            shannot::detail::dispatcher_request({"--ro-bind", "/nonexistent-shannot", "/x", "--json-status-fd", "4"});
        args.pop_back();
        REQUIRE(s.d.send(shannot::detail::dispatcher_request({"P", "2", args})));
        auto f = s.run("n1", {.command = {"true"}, .slot = "2"});
        CHECK(f.report == "exit 1 0 0 0");
        CHECK(f.err.find("nonexistent-shannot") != std::string::npos);  // bwrap's own complaint
    }
    SUBCASE("K while a command runs: TERM is reported as 143, KILL as 137, once nothing of the sandbox is left") {
        for (const auto& stop :
             {std::pair<std::string, std::string>{"TERM", "exit 143 0 0 0"}, {"KILL", "exit 137 0 0 0"}}) {
            // Not a structured binding: clang 14 cannot capture one in doctest's lambdas.
            const std::string signal = stop.first, status = stop.second;
            CAPTURE(signal);
            const auto marker = "4472." + std::string(signal == "TERM" ? "25" : "5");
            REQUIRE(s.d.send(
                run_request("n-" + signal, {.command = {"sh", "-c", "echo started >&2; exec sleep " + marker}})));
            REQUIRE(s.d.read_until([&] { return s.d.err.find("started\n") != std::string::npos; }));
            REQUIRE(s.d.send(shannot::detail::dispatcher_request({"K", signal})));
            const auto f = s.d.frames("n-" + signal);
            CHECK(f.report == status);
            CHECK(f.err == "started\n");  // the kill adds no word of the shell's
            CHECK(shannot_test::processes_with(marker) == 0);
        }
    }
    SUBCASE("K before bwrap started (in the same write as its R) stops that run; one with no run on is forgotten") {
        REQUIRE(s.d.send(run_request("n1", {.command = {"sh", "-c", "exec sleep 4472.75"}}) +
                         shannot::detail::dispatcher_request({"K", "KILL"})));
        auto f = s.d.frames("n1");
        CHECK(f.report == "exit 137 0 0 0");
        CHECK(shannot_test::processes_with("4472.75") == 0);
        REQUIRE(s.d.send(shannot::detail::dispatcher_request({"K", "KILL"})));  // nothing runs
        f = s.run("n2", {.command = {"echo", "alive"}});
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "alive\n");
    }
    SUBCASE("EOF while a command runs: it is killed, and the dispatcher exits 0 and removes its folder") {
        REQUIRE(s.d.send(run_request("n1", {.command = {"sh", "-c", "echo started >&2; exec sleep 4472.125"}})));
        REQUIRE(s.d.read_until([&] { return s.d.err.find("started\n") != std::string::npos; }));
        s.d.close_input();
        CHECK(s.d.wait_exit() == 0);
        CHECK(shannot_test::eventually([] { return shannot_test::processes_with("4472.125") == 0; }));
        CHECK_FALSE(std::filesystem::exists(s.folder()));
    }
    SUBCASE("input cut short by EOF ends the dispatcher without running the command") {
        const auto whole = run_request("n1", {.command = {"cat"}, .input = std::string(100, 'x')});
        REQUIRE(s.d.send(whole.substr(0, whole.size() - 90)));  // the line and 10 of its 100 bytes of input
        s.d.close_input();
        CHECK(s.d.wait_exit() == 0);
        s.d.read_to_end();
        CHECK(s.d.out.find("n1 eof") == std::string::npos);
        CHECK_FALSE(std::filesystem::exists(s.folder()));
    }
}

TEST_CASE("dispatcher.sh: S hands the session to one sandbox; its refusals are exit statuses 94-96") {
    SHANNOT_REQUIRE_BWRAP();
    const std::vector<std::string> sandbox = {
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--die-with-parent"};
    auto session_request = [&](const std::string& seccomp, const std::string& shell, const std::string& bwrap,
                               const std::vector<std::string>& command) {
        std::vector<std::string> words = {"S", seccomp, shell, bwrap, "", "", ""};
        words.insert(words.end(), sandbox.begin(), sandbox.end());
        words.insert(words.end(), command.begin(), command.end());
        return shannot::detail::dispatcher_request(words);
    };

    SUBCASE("refusals") {
        for (const auto& refusal :
             {std::tuple<std::string, std::string, std::string, int>{"", "/nonexistent/shell", "bwrap",
                                                                     protocol::dispatcher::exit_session_no_shell},
              {"/nonexistent/seccomp.bpf", "/bin/sh", "bwrap", protocol::dispatcher::exit_session_no_seccomp},
              {"", "/bin/sh", "/nonexistent/bwrap", protocol::dispatcher::exit_session_no_bwrap}}) {
            const auto& [seccomp, shell, bwrap, expected] = refusal;
            const int status = expected;  // clang 14 cannot capture a structured binding
            CAPTURE(status);
            Dispatcher s;
            REQUIRE_FALSE(s.ready.empty());
            REQUIRE(s.d.send(session_request(seccomp, shell, bwrap, {"--", "true"})));
            CHECK(s.d.wait_exit() == status);
            CHECK_FALSE(std::filesystem::exists(s.folder()));
        }
    }
    SUBCASE("bwrap runs with the session's stdin and stdout, the shell at fd 5; the dispatcher exits with its status") {
        Dispatcher s;
        REQUIRE_FALSE(s.ready.empty());
        // The sandbox copies fd 5 in (as a session does for its agent's shell) and compares it.
        std::vector<std::string> command = {"--ro-bind-data",
                                            "5",
                                            "/tmp/shell-copy",
                                            "--",
                                            "sh",
                                            "-c",
                                            "head -c 5; cmp -s /tmp/shell-copy /bin/sh && echo same; exit 7"};
        command.insert(command.begin(), {"--tmpfs", "/tmp"});
        REQUIRE(s.d.send(session_request("", "/bin/sh", "bwrap", command)));
        // The reader records its pid and start time for a Z, while the sandbox runs.
        REQUIRE(shannot_test::eventually([&] { return std::filesystem::exists(s.folder() + "/s"); }));
        std::istringstream record(file_text(s.folder() + "/s"));
        long reader = 0;
        record >> reader;
        CHECK(reader > 0);
        CHECK((reader > 0 && ::kill(static_cast<pid_t>(reader), 0) == 0));
        REQUIRE(s.d.send("hello"));
        s.d.close_input();
        CHECK(s.d.wait_exit() == 7);
        s.d.read_to_end();
        CHECK(s.d.out == "hellosame\n");
        CHECK_FALSE(std::filesystem::exists(s.folder()));
    }
}

TEST_CASE("dispatcher.sh: Z kills the dispatcher that runs a session's sandbox, checking it is still that process") {
    SHANNOT_REQUIRE_BWRAP();
    shannot_test::TempDir tmp;  // both dispatchers' folders, as for one remote user
    const auto hello_a = shannot::detail::random_marker(), hello_b = shannot::detail::random_marker();
    shannot_test::DispatcherDriver a(shannot_test::DispatcherDriver::local(hello_a, tmp.path()));
    shannot_test::DispatcherDriver b(shannot_test::DispatcherDriver::local(hello_b, tmp.path()));
    REQUIRE_FALSE(a.ready(hello_a).empty());
    REQUIRE_FALSE(b.ready(hello_b).empty());
    REQUIRE(b.send(shannot::detail::dispatcher_request({"P", "0", host_args()})));
    const auto folder_a = tmp.path() + "/shannot." + hello_a;

    SUBCASE("Z HELLO of a session: its sandbox and its dispatcher end, its folder goes") {
        REQUIRE(a.send(shannot::detail::dispatcher_request({"S", "", "/bin/sh", "bwrap", "", "", "", "--ro-bind", "/",
                                                            "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                                                            "--die-with-parent", "--", "sleep", "4473.5"})));
        // Once the sandbox is set up (the sleep runs): a bwrap killed mid-setup may leave a sandbox
        // that does not die with it yet, which a session's Z never meets (it follows a ready agent).
        const auto sleep_argv = std::string("sleep") + '\0' + "4473.5";
        REQUIRE(shannot_test::eventually([&] {
            return std::filesystem::exists(folder_a + "/s") && shannot_test::processes_running(sleep_argv) > 0;
        }));
        REQUIRE(b.send(shannot::detail::dispatcher_request({"Z", hello_a})));
        CHECK(shannot_test::eventually([] { return shannot_test::processes_with("4473.5") == 0; }));
        CHECK(a.wait_exit() != -1);
        CHECK_FALSE(std::filesystem::exists(folder_a));
        REQUIRE(b.send(run_request("n1", {.command = {"echo", "b goes on"}})));
        auto f = b.frames("n1");
        CHECK(f.out == "b goes on\n");
    }
    SUBCASE("Z for a marker without a folder, or whose recorded process is gone, says nothing") {
        // The dispatcher's stderr is the next command's: a word of its own there would be that
        // command's output.
        const auto gone = tmp.path() + "/shannot.gone-" + hello_a;
        REQUIRE(std::filesystem::create_directory(gone));
        std::ofstream(gone + "/s") << "999999999 1\n";  // no such process
        REQUIRE(b.send(shannot::detail::dispatcher_request({"Z", "none-" + hello_a}) +
                       shannot::detail::dispatcher_request({"Z", "gone-" + hello_a}) +
                       run_request("n1", {.command = {"echo", "quiet"}})));
        auto f = b.frames("n1");
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "quiet\n");
        CHECK(f.err.empty());
        CHECK_FALSE(std::filesystem::exists(gone));
    }
    SUBCASE("a recorded process that is not the one recorded (another start time) is left alive") {
        // A folder whose s file names a live process of ours, with a start time it does not have.
        shannot_test::ScriptDriver bystander({"sleep", "4473.75"});
        REQUIRE(bystander.started());
        const auto fake = tmp.path() + "/shannot.fake-" + hello_a;
        REQUIRE(std::filesystem::create_directory(fake));
        std::ofstream(fake + "/s") << bystander.pid() << " 1\n";
        REQUIRE(b.send(shannot::detail::dispatcher_request({"Z", "fake-" + hello_a})));
        REQUIRE(b.send(run_request("n1", {.command = {"true"}})));
        auto f = b.frames("n1");
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(bystander.wait_exit(100ms) == -1);  // still running (a zombie would answer kill(pid, 0) too)
        CHECK_FALSE(std::filesystem::exists(fake));
        bystander.signal(SIGKILL);
    }
}

TEST_CASE("dispatcher.sh: LIMITS are set on the sandbox; the process count in a pids cgroup of the runner's") {
    SHANNOT_REQUIRE_BWRAP();
    // The same rule as the library's own (detail/local/limits.hpp), found here by the script.
    const auto parent = shannot::detail::find_cgroup_parent();
    const std::string mechanism =
        parent ? "rlimits+cgroup-v" + std::to_string(parent->version) : "rlimits-without-processes";
    const std::string in_cgroup = parent ? "1" : "0";
    if (!parent && shannot_test::in_ci() && ::getuid() == 0) FAIL("no pids cgroup parent for root (CI=true)");
    Dispatcher s;
    REQUIRE_MESSAGE(s.d.started(), s.d.error());
    CHECK(s.ready.substr(s.ready.rfind(' ') + 1) == "limits=" + mechanism);
    const pid_t dispatcher = s.d.pid();
    auto own_cgroups = [&] {
        std::vector<std::string> found;
        if (!parent) return found;
        for (const auto& e : std::filesystem::directory_iterator(parent->dir))
            if (e.path().filename().string().rfind("shannot-ssh-" + std::to_string(dispatcher) + "-", 0) == 0)
                found.push_back(e.path().filename().string());
        return found;
    };

    SUBCASE(
        "R: the rlimits inside are the word's (KiB, s, 512-byte blocks, files), the CPU hard limit a second later") {
        const shannot::ResourceLimits limits{.memory_bytes = 512u << 20,
                                             .processes = 50,
                                             .cpu_seconds = 7,
                                             .file_size_bytes = 1u << 20,
                                             .open_files = 99};
        auto f =
            s.run("n1", {.command = {"sh", "-c", "ulimit -v; ulimit -t; ulimit -H -t; ulimit -f; ulimit -n; ulimit -c"},
                         .limits = shannot::detail::remote_limits(limits)});
        CHECK(f.out == "524288\n7\n8\n2048\n99\n0\n");
        CHECK(f.report == "exit 0 1 " + in_cgroup + " 0");
        if (parent) CHECK(own_cgroups().size() == 1);  // the runner's, made at its first run with LIMITS
        // Without LIMITS: nothing is set (the dispatcher's own), and the run is not in a cgroup.
        f = s.run("n2", {.command = {"sh", "-c", "ulimit -t"}});
        CHECK(f.out == "unlimited\n");
        CHECK(f.report == "exit 0 1 0 0");
    }
    SUBCASE("R: a storm of 100 sleeps under PROCESSES = 20 is cut short, and the report says the cgroup refused it") {
        if (!parent) return;
        const std::string limits = shannot::detail::remote_limits(shannot::ResourceLimits{.processes = 20});
        auto f = s.run(
            "n1", {.command = {"sh", "-c", "i=0; while [ $i -lt 100 ]; do sleep 4474.5 & i=$((i+1)); done; echo all"},
                   .limits = limits});
        CHECK(f.out.empty());
        CHECK(f.err.find("Cannot fork") != std::string::npos);
        CHECK(f.report == "exit 2 1 1 1");
        CHECK(shannot_test::eventually([] { return shannot_test::processes_with("4474.5") == 0; }));
        // A run without LIMITS is born in the runner's cgroup too, but without the last run's
        // bound: all 100 start (before 2026-12-07 this run was cut at 20).
        f = s.run("n-unlimited",
                  {.command = {"sh", "-c", "i=0; while [ $i -lt 100 ]; do sleep 4474.5 & i=$((i+1)); done; echo all"}});
        CHECK(f.out == "all\n");
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(shannot_test::eventually([] { return shannot_test::processes_with("4474.5") == 0; }));
        // The next run's count starts afresh: the same storm under 200 starts all 100.
        f = s.run("n2",
                  {.command = {"sh", "-c", "i=0; while [ $i -lt 100 ]; do sleep 4474.5 & i=$((i+1)); done; echo all"},
                   .limits = shannot::detail::remote_limits(shannot::ResourceLimits{.processes = 200})});
        CHECK(f.out == "all\n");
        CHECK(f.report == "exit 0 1 1 0");
    }
    SUBCASE("R: LIMITS that are not numbers are refused (nolimits); the dispatcher goes on") {
        auto f = s.run("n1", {.command = {"true"}, .limits = "1 2 3 4 x;y"});
        CHECK(f.payloads == std::vector<std::string>{std::string(protocol::dispatcher::no_limits)});
        f = s.run("n2", {.command = {"echo", "fine"}});
        CHECK(f.out == "fine\n");
    }
    SUBCASE("its cgroups go with it when stdin ends; a dead dispatcher's are removed by the next one") {
        (void)s.run("n1", {.command = {"true"}, .limits = shannot::detail::remote_limits(shannot::ResourceLimits{})});
        CHECK(own_cgroups().size() == (parent ? 1u : 0u));
        s.d.close_input();
        CHECK(s.d.wait_exit() == 0);
        CHECK(own_cgroups().empty());
        if (!parent) return;
        // One named as a dispatcher that is gone (pid 999999999) would have named it.
        const auto stale = parent->dir + "/shannot-ssh-999999999-1-r";
        REQUIRE(std::filesystem::create_directory(stale));
        Dispatcher next;
        REQUIRE_FALSE(next.ready.empty());
        CHECK(shannot_test::eventually([&] { return !std::filesystem::exists(stale); }));
    }
}

TEST_CASE("dispatcher.sh: a limited runner serves the runs with its limits; the reader ends it before others") {
    SHANNOT_REQUIRE_BWRAP();
    Dispatcher s;
    REQUIRE_MESSAGE(s.d.started(), s.d.error());
    // Each run prints the pid its runner wrote (the dispatcher's folder is inside: / is bound
    // read-only), its memory and descriptor limits.
    const std::string report = "read -r p < " + s.folder() + "/pid; echo $p $(ulimit -v) $(ulimit -n)";
    auto run = [&](const std::string& nonce, const std::string& limits, const std::string& slot = "0",
                   const std::string& filter = "0") {
        const auto f =
            s.run(nonce, {.command = {"sh", "-c", report}, .slot = slot, .limits = limits, .filter = filter});
        const std::string said = f.report + f.err;
        CHECK_MESSAGE(f.report.rfind("exit 0 1 ", 0) == 0, said);
        std::istringstream words(f.out);
        std::string pid, memory, files;
        words >> pid >> memory >> files;
        return std::tuple{pid, memory, files};
    };
    const auto limits = [](std::uint64_t memory_mib, std::uint64_t files) {
        return shannot::detail::remote_limits(
            shannot::ResourceLimits{.memory_bytes = memory_mib << 20, .open_files = files});
    };
    const auto half = limits(512, 99), one = limits(1024, 99);

    const auto [a, a_memory, a_files] = run("n1", half);
    CHECK(a_memory == "524288");
    CHECK(a_files == "99");
    // The same limits: the same limited runner, no fork.
    CHECK(std::get<0>(run("n2", half)) == a);
    // No limits: the reader ends the limited runner (X) and the runner runs it, with none (not
    // the last run's).
    const auto [runner, none_memory, none_files] = run("n3", "");
    CHECK(runner != a);
    CHECK(none_memory == "unlimited");
    CHECK(std::get<0>(run("n4", "")) == runner);
    // Other limits: another limited runner, each time they change.
    const auto [b, b_memory, b_files] = run("n5", one);
    CHECK(b_memory == "1048576");
    CHECK((b != a && b != runner));
    const auto [c, c_memory, c_files] = run("n6", half);
    CHECK(c_memory == "524288");
    CHECK((c != b && c != runner));
    CHECK_FALSE(std::filesystem::exists("/proc/" + b));  // each limited runner ends before the next

    SUBCASE("SIGXCPU (its own CPU time reached the limit) retires it: its run ends well, the next gets a fresh one") {
        // Sent while it waits for a run's bwrap (without the trap, it would die of it there, and
        // the run would never report).
        REQUIRE(s.d.send(run_request("n7", {.command = {"sh", "-c", "sleep 0.5; echo slept"}, .limits = half})));
        std::this_thread::sleep_for(200ms);
        REQUIRE(::kill(std::stoi(c), SIGXCPU) == 0);
        const auto slept = s.d.frames("n7");
        CHECK(slept.out == "slept\n");
        CHECK(slept.report.rfind("exit 0 1 ", 0) == 0);
        const auto [d, d_memory, d_files] = run("n8", half);
        CHECK(d_memory == "524288");
        CHECK((d != c && d != runner));
        const std::string retired = "/proc/" + c;  // clang 14 cannot capture a structured binding
        CHECK(shannot_test::eventually([&] { return !std::filesystem::exists(retired); }));
    }
    SUBCASE("P and B that a limited runner took reach the runner too (the reader sends them again)") {
        auto filtered = shannot::detail::dispatcher_request({"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                                             "--unshare-pid", "--die-with-parent", "--json-status-fd",
                                                             "4", "--seccomp", "6"});
        filtered.pop_back();
        const auto bytes = shannot::syscall_filter_bytes("default", std::vector<std::string>{});
        REQUIRE(bytes);
        REQUIRE(s.d.send(shannot::detail::dispatcher_request({"P", "1", filtered}) +
                         shannot::detail::dispatcher_request({"B", shannot::detail::printf_escape(*bytes)})));
        CHECK(std::get<1>(run("n7", half, "1", "1")) == "524288");  // taken by c itself
        // Without the replay the runner would have no slot 1 (noargs) and no filter (nofilter).
        const auto [r, r_memory, r_files] = run("n8", "", "1", "1");
        CHECK(r == runner);
        CHECK(r_memory == "unlimited");
    }
    SUBCASE("limits a shell may hit itself (under 64 descriptors) keep a fork per run, in the runner") {
        const auto [f, f_memory, f_files] = run("n7", limits(512, 20));
        CHECK(f == runner);  // its subshell writes the runner's pid
        CHECK(f_files == "20");
        CHECK(std::get<2>(run("n8", limits(512, 20))) == "20");
        CHECK(std::get<0>(run("n9", "")) == runner);
    }
}

TEST_CASE("dispatcher.sh: the filter's pipe is filled between runs, for the next run that asks for it alone") {
    SHANNOT_REQUIRE_BWRAP();
    Dispatcher s;
    REQUIRE_MESSAGE(s.d.started(), s.d.error());
    auto filtered =
        shannot::detail::dispatcher_request({"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                                             "--die-with-parent", "--json-status-fd", "4", "--seccomp", "6"});
    filtered.pop_back();
    const auto bytes = shannot::syscall_filter_bytes("default", std::vector<std::string>{});
    REQUIRE(bytes);
    const auto filter_line = shannot::detail::dispatcher_request({"B", shannot::detail::printf_escape(*bytes)});
    REQUIRE(s.d.send(shannot::detail::dispatcher_request({"P", "1", filtered}) + filter_line));
    // Each run says whether a seccomp filter is on (the kernel's "Seccomp:" line, 2: a filter)
    // and which descriptors the command got.
    const std::string report = "grep '^Seccomp:' /proc/self/status; ls /proc/self/fd | tr '\\n' ' '";
    auto run = [&](const std::string& nonce, const std::string& slot, const std::string& filter,
                   const std::string& limits = "") {
        return s.run(nonce, {.command = {"sh", "-c", report}, .slot = slot, .limits = limits, .filter = filter});
    };
    const std::string on = "Seccomp:\t2\n", off = "Seccomp:\t0\n";
    auto first = run("n1", "1", "1");
    CHECK(first.report.rfind("exit 0 1 ", 0) == 0);
    CHECK(first.out.rfind(on, 0) == 0);
    // A run without the filter: the pipe filled for the next one is not among its descriptors
    // (0, 1, 2 and the one ls reads the folder with).
    auto without = run("n2", "0", "0");
    CHECK(without.report.rfind("exit 0 1 ", 0) == 0);
    CHECK(without.out == off + "0 1 2 3 ");
    // It stays filled for the next run that asks for it.
    CHECK(run("n3", "1", "1").out.rfind(on, 0) == 0);
    // A limited runner reads the pipe the runner filled (it is shared); the runner fills another
    // when it ends, so a run of its own after that still gets the filter.
    const auto limits = shannot::detail::remote_limits(shannot::ResourceLimits{});
    auto limited = run("n4", "1", "1", limits);
    CHECK(limited.report.rfind("exit 0 1 ", 0) == 0);
    CHECK(limited.out.rfind(on, 0) == 0);
    auto after = run("n5", "1", "1");
    const std::string after_said = after.report + after.err;
    CHECK_MESSAGE(after.report.rfind("exit 0 1 ", 0) == 0, after_said);
    CHECK(after.out.rfind(on, 0) == 0);
    // A B replaces the filled filter: 7 bytes are no program, so bwrap refuses to start (not a
    // run under the filter filled before); the next B puts a real one back.
    REQUIRE(s.d.send(shannot::detail::dispatcher_request({"B", shannot::detail::printf_escape("1234567")})));
    auto broken = run("n6", "1", "1");
    CHECK(broken.out.empty());
    CHECK(broken.report.rfind("exit 0", 0) != 0);
    REQUIRE(s.d.send(filter_line));
    CHECK(run("n7", "1", "1").out.rfind(on, 0) == 0);
}

TEST_CASE("dispatcher.sh: a run's exit report comes once nothing it started runs, however many it left behind") {
    SHANNOT_REQUIRE_BWRAP();
    Dispatcher s;
    REQUIRE_MESSAGE(s.d.started(), s.d.error());
    // The command leaves 100 sleeps behind and exits: bwrap exits with it, and its PID 1 kills
    // them as it dies. The report must wait for that (PID 1 with children left is waited for
    // until it is a zombie), not only for bwrap.
    for (int round = 0; round < 3; ++round) {
        CAPTURE(round);
        const auto marker = "4472.6" + std::to_string(round);
        const auto f = s.run("n" + std::to_string(round), {.command = {"sh", "-c",
                                                                       "i=0; while [ $i -lt 100 ]; do sleep " + marker +
                                                                           "$i & i=$((i+1)); done; echo started"}});
        CHECK(f.report.rfind("exit 0 1 ", 0) == 0);
        CHECK(f.out == "started\n");
        CHECK(shannot_test::processes_with(marker) == 0);  // at once, not eventually
    }
    // A command that leaves nothing: reported as well (PID 1 without children is not waited for).
    const auto plain = s.run("n-plain", {.command = {"echo", "done"}});
    CHECK(plain.report == "exit 0 1 0 0");
    CHECK(plain.out == "done\n");
}

TEST_CASE("dispatcher.sh: S with LIMITS starts the session's sandbox under them; malformed ones are refused (93)") {
    SHANNOT_REQUIRE_BWRAP();
    const auto parent = shannot::detail::find_cgroup_parent();
    Dispatcher s;
    REQUIRE_FALSE(s.ready.empty());
    SUBCASE("the sandbox's limits, and its processes in the session's cgroup") {
        const shannot::ResourceLimits limits{.processes = 30, .cpu_seconds = 9, .open_files = 77};
        REQUIRE(s.d.send(shannot::detail::dispatcher_request({"S",
                                                              "",
                                                              "/bin/sh",
                                                              "bwrap",
                                                              shannot::detail::remote_limits(limits),
                                                              "",
                                                              "",
                                                              "--ro-bind",
                                                              "/",
                                                              "/",
                                                              "--dev",
                                                              "/dev",
                                                              "--proc",
                                                              "/proc",
                                                              "--unshare-pid",
                                                              "--die-with-parent",
                                                              "--",
                                                              "sh",
                                                              "-c",
                                                              "ulimit -t; ulimit -n; cat /proc/self/cgroup"})));
        s.d.close_input();
        CHECK(s.d.wait_exit() == 0);
        s.d.read_to_end();
        CHECK(s.d.out.rfind("9\n77\n", 0) == 0);
        if (parent && parent->version == 1) {
            const auto pids_line = s.d.out.find(":pids:");
            REQUIRE(pids_line != std::string::npos);
            const auto line = s.d.out.substr(pids_line, s.d.out.find('\n', pids_line) - pids_line);
            CHECK(line.find("/shannot-ssh-") != std::string::npos);
            CHECK(line.substr(line.size() - 2) == "-s");  // the session's cgroup, not the runner's
        }
    }
    SUBCASE("malformed LIMITS: exit 93") {
        REQUIRE(s.d.send(
            shannot::detail::dispatcher_request({"S", "", "/bin/sh", "bwrap", "1 2 x", "", "", "--", "true"})));
        CHECK(s.d.wait_exit() == protocol::dispatcher::exit_session_no_limits);
    }
}
