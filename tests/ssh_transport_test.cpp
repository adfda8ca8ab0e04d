// SPDX-License-Identifier: MIT
// OpenSshProcessTransport: the ssh argv and option allowlist, and the ssh-only behaviours against a
// real sshd (quoting of any bytes, host keys, auth, dead connections, close()).
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "support/bwrap_env.hpp"
#include "support/dispatcher_driver.hpp"
#include "support/transports.hpp"

using namespace std::chrono_literals;
using shannot::errc;
using shannot::SshConnection;

namespace {

/// Where `needle` stands in `haystack`, or -1.
long index_of(const std::vector<std::string>& haystack, const std::string& needle) {
    const auto it = std::find(haystack.begin(), haystack.end(), needle);
    return it == haystack.end() ? -1 : static_cast<long>(it - haystack.begin());
}

shannot::SshSandbox sandbox_for(const SshConnection& c) {
    return shannot::SshSandbox(shannot_test::test_profile<shannot::OpenSshProcessTransport>(),
                               shannot::OpenSshProcessTransport(c));
}

/// A random argv word of a hostile kind: any bytes 1-255, shell syntax, dashes, empty, long.
std::string hostile_word(std::mt19937& rng) {
    static const std::vector<std::string> specials = {"",   "-",  "--",    "-n",    "--help", "$(id)", "`id`",    "*",
                                                      "/*", "?",  "[a-z]", "'",     "\"",     "\\",    "'\\''",   "a b",
                                                      "\n", "\t", "~",     "~root", "a=b",    "$HOME", "${x:-y}", ";",
                                                      "&&", "|",  ">x",    "<x",    "#",      "!",     "%s%n"};
    std::uniform_int_distribution<int> kind(0, 9);
    switch (kind(rng)) {
    case 0:
    case 1: return specials[std::uniform_int_distribution<std::size_t>(0, specials.size() - 1)(rng)];
    case 2: {  // a long word
        std::string w(std::uniform_int_distribution<std::size_t>(1000, 40000)(rng), 'x');
        for (auto& c : w) c = static_cast<char>(std::uniform_int_distribution<int>(1, 255)(rng));
        return w;
    }
    default: {  // short, any bytes but NUL
        std::string w(std::uniform_int_distribution<std::size_t>(0, 24)(rng), 'x');
        for (auto& c : w) c = static_cast<char>(std::uniform_int_distribution<int>(1, 255)(rng));
        return w;
    }
    }
}

}  // namespace

TEST_CASE("SshConnection validation and the ssh argv") {
    SshConnection c;
    c.host = "example.org";
    c.user = "agent";
    c.port = 2222;
    c.identity_file = "/keys/id";
    c.known_hosts_file = "/keys/known_hosts";

    SUBCASE("our options come first, then the caller's, then --, the destination") {
        c.extra_options = {"Compression=yes"};
        REQUIRE(shannot::validate(c));
        const auto a = shannot::ssh_base_options(c);
        CHECK(index_of(a, "BatchMode=yes") == 1);
        CHECK(index_of(a, "StrictHostKeyChecking=accept-new") >= 0);
        CHECK(index_of(a, "UserKnownHostsFile=/keys/known_hosts") >= 0);
        CHECK(index_of(a, "IdentitiesOnly=yes") > index_of(a, "/keys/id"));
        CHECK(index_of(a, "2222") == index_of(a, "-p") + 1);
        CHECK(index_of(a, "-T") >= 0);
        CHECK(index_of(a, "Compression=yes") > index_of(a, "BatchMode=yes"));
        CHECK(index_of(a, "Compression=yes") == static_cast<long>(a.size()) - 1);
        CHECK(shannot::ssh_destination(c) == "agent@example.org");
    }
    SUBCASE("host key policies") {
        c.host_key_policy = shannot::HostKeyPolicy::yes;
        CHECK(index_of(shannot::ssh_base_options(c), "StrictHostKeyChecking=yes") >= 0);
        c.host_key_policy = shannot::HostKeyPolicy::no;
        auto refused = shannot::validate(c);
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message.find("allow_unknown_hosts") != std::string::npos);
        c.allow_unknown_hosts = true;
        CHECK(shannot::validate(c));
        CHECK(index_of(shannot::ssh_base_options(c), "StrictHostKeyChecking=no") >= 0);
    }
    SUBCASE("destinations and users that could be options or carry more are refused") {
        for (const char* host : {"-oProxyCommand=sh", "", "a b", "a\nb", "root@host", "h\x7f"}) {
            auto bad = c;
            bad.host = host;
            auto r = shannot::validate(bad);
            CHECK_MESSAGE(!r, host);
        }
        for (const char* user : {"-l", "a b", "a@b", "x\ty"}) {
            auto bad = c;
            bad.user = user;
            auto r = shannot::validate(bad);
            CHECK_MESSAGE(!r, user);
        }
    }
    SUBCASE("extra options pass an allowlist, case-insensitively, named in the error") {
        for (const char* ok : {"Compression=yes", "compression yes", "ServerAliveCountMax=3", "CIPHERS=aes128-ctr"}) {
            auto good = c;
            good.extra_options = {ok};
            CHECK_MESSAGE(shannot::validate(good), ok);
        }
        for (const char* unsafe :
             {"ProxyCommand=nc %h %p", "proxycommand nc", "LocalCommand=id", "PermitLocalCommand=yes", "Include=/tmp/x",
              "KnownHostsCommand=/bin/x", "ControlPath=/tmp/s", "ProxyJump=evil", "SendEnv=SECRET", "NoSuchOption=1",
              "=x", "Compression=yes\nProxyCommand=x"}) {
            auto bad = c;
            bad.extra_options = {unsafe};
            auto r = shannot::validate(bad);
            REQUIRE_MESSAGE(!r, unsafe);
            CHECK(r.error().code == errc::unsafe_ssh_option);
        }
        auto bad = c;
        bad.extra_options = {"ProxyCommand=nc %h %p"};
        CHECK(shannot::validate(bad).error().message.find("'ProxyCommand'") != std::string::npos);
        bad.extra_options = {"SendEnv=SECRET"};
        bad.allow_unsafe_ssh_options = true;
        CHECK(shannot::validate(bad));
    }
    SUBCASE("working_directory is every command's default --chdir; a relative one is refused before anything runs") {
        c.working_directory = "/srv";
        shannot::SshSandbox good(shannot::SshProfile{.name = "t"}, shannot::OpenSshProcessTransport(c));
        auto args = good.dry_run({"ls"});
        REQUIRE_MESSAGE(args, (args ? "" : args.error().message));
        CHECK(index_of(*args, "--chdir") + 1 == index_of(*args, "/srv"));
        auto own = good.dry_run({"ls"}, {.working_directory = "/tmp"});
        REQUIRE(own);
        CHECK(index_of(*own, "/srv") < 0);
        c.working_directory = "srv";
        shannot::SshSandbox bad(shannot::SshProfile{.name = "t"}, shannot::OpenSshProcessTransport(c));
        auto refused = bad.dry_run({"ls"});
        REQUIRE_FALSE(refused);
        CHECK(refused.error().code == errc::invalid_argument);
        CHECK(refused.error().message ==
              "the transport's working directory 'srv' must be an absolute path without NUL");
    }
}

TEST_CASE("the files frame: ls's permission strings, and what the pool keeps of a frame (files and symlinks)") {
    using shannot::detail::regular_file_mode;
    CHECK(regular_file_mode("-rw-r--r--") == 0644u);
    CHECK(regular_file_mode("-rw-r-----.") == 0640u);  // SELinux context, ACL marks after the ten
    CHECK(regular_file_mode("-rwsr-sr-t") == 07755u);
    CHECK(regular_file_mode("-rwSr-Sr-T") == 07644u);
    CHECK(regular_file_mode("----------") == 0u);
    CHECK_FALSE(regular_file_mode("drwxr-xr-x"));  // a folder
    CHECK_FALSE(regular_file_mode("lrwxrwxrwx"));
    CHECK_FALSE(regular_file_mode("-rw-r--r"));    // short
    CHECK_FALSE(regular_file_mode("-rwxq-----"));  // not ls's

    shannot::detail::DispatcherPool<void> pool(shannot::SshConnection{.host = "h"});
    CHECK(pool.remote_files().empty());
    pool.keep_files(
        "files file=-rw-r--r--:13:/etc/group file=drwxr-xr-x:4096:/etc file=-rw-------:x:/a "
        "file=-rw-------:7:relative file=-rw-r-----:40000:/etc/ld.so.cache junk "
        "link=/etc/localtime:/usr/share/zoneinfo/Etc/UTC link=/etc/a:relative link=/etc/b link=x:/y");
    const auto files = pool.remote_files();
    REQUIRE(files.size() == 2);
    CHECK(files.at("/etc/group").mode == 0644u);
    CHECK(files.at("/etc/group").size == 13u);
    CHECK(files.at("/etc/ld.so.cache").mode == 0640u);
    // The links join the ready frame's (none here): absolute paths only.
    CHECK(pool.remote_symlinks() ==
          std::map<std::string, std::string>{{"/etc/localtime", "/usr/share/zoneinfo/Etc/UTC"}});
    pool.keep_files("files");  // a later frame replaces it
    CHECK(pool.remote_files().empty());
    CHECK(pool.remote_symlinks().empty());
}

TEST_CASE("OpenSshProcessTransport against a real sshd") {
    using T = shannot::OpenSshProcessTransport;
    // The header no longer asserts this itself: that would compile the transport in every includer.
    static_assert(shannot::Transport<T> && shannot::SessionTransport<T>);
    static_assert(std::is_nothrow_move_constructible_v<T::process_type> &&
                  std::is_nothrow_move_assignable_v<T::process_type>);
    SHANNOT_REQUIRE_TRANSPORT(T);
    auto* sshd = shannot_test::shared_sshd();

    SUBCASE("1,000 hostile argv lists come back byte-identical from the remote") {
        auto sandbox = shannot_test::make_sandbox<T>();
        std::atomic<int> identical{0};
        std::vector<std::thread> threads;
        std::mutex first_mutex;
        std::string first_difference;
        for (int t = 0; t < 8; ++t)
            threads.emplace_back([&, t] {
                std::mt19937 rng(static_cast<unsigned>(1000 + t));
                for (int i = 0; i < 125; ++i) {
                    std::vector<std::string> words(std::uniform_int_distribution<std::size_t>(0, 6)(rng));
                    for (auto& w : words) w = hostile_word(rng);
                    std::vector<std::string> command = {"printf", "%s\\0"};
                    command.insert(command.end(), words.begin(), words.end());
                    std::string expected;
                    for (const auto& w : words) expected += w + '\0';
                    if (words.empty()) expected.push_back('\0');  // printf runs the format once
                    auto r = sandbox.run(command, {.timeout = 60s});
                    if (r && r->exit_code == 0 && r->stdout_data == expected) {
                        ++identical;
                    } else {
                        std::lock_guard lock(first_mutex);
                        if (first_difference.empty())
                            first_difference = r ? "exit " + std::to_string(r->exit_code) + " stderr " + r->stderr_data
                                                 : r.error().describe();
                    }
                }
            });
        for (auto& th : threads) th.join();
        CHECK_MESSAGE(identical == 1000, first_difference);
    }
    SUBCASE("bwrap's arguments are kept by the dispatcher: 12 lists in turn, over 8 slots, stay right") {
        // A run sends its arguments before "--" once per session and list (a P request), then
        // names them by slot; 12 environments cycle through the 8 slots twice.
        T transport(sshd->connection());
        shannot::SandboxManager<T> sandbox(shannot_test::test_profile<T>(), transport);
        int right = 0;
        for (int round = 0; round < 3; ++round)
            for (int i = 0; i < 12; ++i) {
                const auto value = "v" + std::to_string(i) + "'\n$x\"";
                auto r = sandbox.run({"sh", "-c", "printf '%s|' \"$V\" \"$0\"", std::to_string(round)},
                                     {.environment = {{"V", value}}});
                if (r && r->exit_code == 0 && r->stdout_data == value + "|" + std::to_string(round) + "|")
                    ++right;
                else
                    FAIL_CHECK("round " << round << " list " << i << ": "
                                        << (r ? r->stdout_data + r->stderr_data : r.error().describe()));
            }
        CHECK(right == 36);
        CHECK(transport.connections() == 1);
        CHECK(transport.idle_dispatchers() == 1);  // one session carried them all
    }
    SUBCASE("small read-only files reach the remote bwrap as copies once a dispatcher has reported them") {
        T transport(sshd->connection());
        auto profile = shannot::builtin_profile<T>("minimal");
        REQUIRE(profile);
        profile->allowed_commands.clear();  // any command: sh here
        shannot::SandboxManager<T> sandbox(*profile, transport);
        // /etc/group: the first of the profile's small files (the ssh transport has 5 fds for copies).
        const std::vector<std::string> command = {
            "sh", "-c", "cat /etc/group; stat -c %a /etc/group; grep -c ' /etc/group ' /proc/self/mountinfo || true"};
        std::ifstream host_file("/etc/group");
        const std::string host_files((std::istreambuf_iterator<char>(host_file)), std::istreambuf_iterator<char>());
        const std::vector<std::string> fd3 = {"--file", "3"};
        struct stat st {};
        REQUIRE(::stat("/etc/group", &st) == 0);
        char mode[8];
        std::snprintf(mode, sizeof mode, "%o", static_cast<unsigned>(st.st_mode & 07777));
        auto copied = [](const std::vector<std::string>& argv) {
            for (std::size_t i = 0; i + 2 < argv.size(); ++i)
                if (argv[i] == "--file" && argv[i + 2] == "/etc/group") return true;
            return false;
        };
        // The first run's dispatcher starts knowing nothing of the remote's files: a bind (the
        // control: a mount of /etc/group inside). It reports them with a run; then they are copies.
        auto first = sandbox.run(command);
        REQUIRE_MESSAGE(first, first.error().describe());
        CHECK_FALSE(copied(first->argv));
        CHECK(first->stderr_data.empty());  // the files frame (this run's or the next's) is not the command's
        CHECK(first->stdout_data == host_files + mode + "\n1\n");
        std::optional<shannot::ProcessResult> later;
        for (int i = 0; i < 50 && !later; ++i) {
            auto r = sandbox.run(command);
            REQUIRE_MESSAGE(r, r.error().describe());
            CHECK(r->stderr_data.empty());
            if (copied(r->argv)) later = std::move(*r);
        }
        REQUIRE(later);
        CHECK(later->exit_code == 0);
        // fd 3 carries one too: the profile has no seccomp file of its own.
        CHECK(std::search(later->argv.begin(), later->argv.end(), fd3.begin(), fd3.end()) != later->argv.end());
        CHECK(later->stdout_data == host_files + mode + "\n0\n");  // the same bytes and mode, no mount
        CHECK(transport.connections() == 1);
    }
    SUBCASE("a small file that is a symlink on the remote becomes a --symlink once a dispatcher has reported it") {
        shannot_test::TempDir tmp;
        const std::string root = std::filesystem::canonical(tmp.path()).string();
        const std::string folder = root + "/data", file = folder + "/file.txt", link = root + "/link";
        std::filesystem::create_directory(folder);
        { std::ofstream(file) << "through the link\n"; }
        std::filesystem::create_symlink("data/file.txt", link);
        T transport(sshd->connection());
        auto profile = shannot::builtin_profile<T>("minimal");
        REQUIRE(profile);
        profile->allowed_commands.clear();  // any command: sh here
        profile->binds.push_back({.source = folder, .target = folder});
        profile->binds.push_back({.source = link, .target = link});
        shannot::SandboxManager<T> sandbox(*profile, transport);
        const std::vector<std::string> command = {"sh", "-c", "cat " + link + "; readlink " + link + " || echo bind"};
        const std::vector<std::string> symlink = {"--symlink", file, link};
        auto linked = [&](const std::vector<std::string>& argv) {
            return std::search(argv.begin(), argv.end(), symlink.begin(), symlink.end()) != argv.end();
        };
        // The control: the first run's dispatcher has reported nothing yet, so the link is a bind
        // (a file inside, readlink fails).
        auto first = sandbox.run(command);
        REQUIRE_MESSAGE(first, first.error().describe());
        CHECK_FALSE(linked(first->argv));
        CHECK(first->stdout_data == "through the link\nbind\n");
        std::optional<shannot::ProcessResult> later;
        for (int i = 0; i < 50 && !later; ++i) {
            auto r = sandbox.run(command);
            REQUIRE_MESSAGE(r, r.error().describe());
            if (linked(r->argv)) later = std::move(*r);
        }
        REQUIRE(later);
        CHECK(later->stdout_data == "through the link\n" + file + "\n");
        CHECK(later->stderr_data.empty());
    }
    SUBCASE("16 concurrent commands on one SshSandbox return correct, separate results") {
        auto sandbox = shannot_test::make_sandbox<T>();
        std::atomic<int> good{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 16; ++t)
            threads.emplace_back([&, t] {
                const auto tag = std::to_string(t);
                auto r = sandbox.run({"sh", "-c", "sleep 0.2; echo $0; echo e$0 >&2; exit $0", tag});
                if (r && r->stdout_data == tag + "\n" && r->stderr_data == "e" + tag + "\n" && r->exit_code == t)
                    ++good;
            });
        for (auto& th : threads) th.join();
        CHECK(good == 16);
    }
    SUBCASE("a remote without bwrap is its own error") {
        auto c = sshd->connection();
        c.remote_bwrap = "/nonexistent/shannot-bwrap";
        auto sandbox = sandbox_for(c);
        auto r = sandbox.run({"true"});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::remote_bwrap_missing);
    }
    SUBCASE("a refused key is authentication_failed, a closed port connection_failed, both promptly") {
        shannot_test::TempDir dir;
        const auto key = dir.path() + "/other";
        REQUIRE(std::system(("ssh-keygen -q -t ed25519 -N '' -f " + key + " </dev/null").c_str()) == 0);
        auto c = sshd->connection();
        c.identity_file = key;
        auto start = std::chrono::steady_clock::now();
        auto r = sandbox_for(c).run({"true"});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::authentication_failed);
        CHECK(std::chrono::steady_clock::now() - start < 15s);

        auto closed = sshd->connection();
        closed.port = static_cast<std::uint16_t>(shannot_test::free_port());
        closed.connect_timeout = 2s;
        start = std::chrono::steady_clock::now();
        r = sandbox_for(closed).run({"true"});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::connection_failed);
        CHECK(r.error().message.find(std::to_string(closed.port)) != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - start < 10s);
    }
    SUBCASE("unsafe options are refused before ssh runs, and pass with the opt-in") {
        auto c = sshd->connection();
        c.extra_options = {"SendEnv=SHANNOT_NOTHING"};
        auto r = sandbox_for(c).run({"true"});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::unsafe_ssh_option);
        c.allow_unsafe_ssh_options = true;
        auto ok = sandbox_for(c).run({"echo", "opted-in"});
        REQUIRE(ok);
        CHECK(ok->stdout_data == "opted-in\n");
    }
    SUBCASE("sessions are reused, and close() ends every ssh process and removes every socket") {
        T transport(sshd->connection());
        shannot::SandboxManager<T> sandbox(shannot_test::test_profile<T>(), transport);
        for (int i = 0; i < 5; ++i) {
            auto r = sandbox.run({"echo", std::to_string(i)});
            REQUIRE(r);
            CHECK(r->stdout_data == std::to_string(i) + "\n");
        }
        CHECK(transport.connections() == 1);
        CHECK(transport.idle_dispatchers() == 1);  // five sequential runs, one warm session
        const auto socket_dir = std::filesystem::path(sandbox.run({"true"})->argv.at(2)).parent_path();
        CHECK(std::filesystem::exists(socket_dir));
        transport.close();
        CHECK(transport.connections() == 0);
        CHECK_FALSE(std::filesystem::exists(socket_dir));
        auto after = sandbox.run({"true"});
        REQUIRE_FALSE(after);
        CHECK(after.error().code == errc::session_closed);
    }
}

TEST_CASE("the ssh clients inherit no descriptor the application left open") {
    using T = shannot::OpenSshProcessTransport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    shannot_test::TempDir dir;
    REQUIRE_FALSE(dir.path().empty());
    // The application holds a descriptor without FD_CLOEXEC (as a careless library would).
    // The lowest free number from 300 up: a dup2 onto a fixed number would close what the process
    // holds there.
    const int opened = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(opened >= 0);
    const int leaky = ::fcntl(opened, F_DUPFD, 300);  // F_DUPFD leaves FD_CLOEXEC clear
    REQUIRE(leaky >= 300);
    ::close(opened);
    // An ssh that notes, per start, whether it holds that descriptor, then is the real ssh.
    const std::string log = dir.path() + "/log", wrapper = dir.path() + "/ssh";
    std::ofstream(wrapper) << "#!/bin/sh\nif [ -e /proc/$$/fd/" << leaky
                           << " ]; then echo leaked; else echo clean; fi >>" << log << "\nexec ssh \"$@\"\n";
    REQUIRE(::chmod(wrapper.c_str(), 0755) == 0);

    auto c = shannot_test::shared_sshd()->connection();
    c.ssh_binary = wrapper;
    {
        T transport(c);
        shannot::SandboxManager<T> sandbox(shannot_test::test_profile<T>(), transport);
        auto r = sandbox.run({"echo", "hi"});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK(r->stdout_data == "hi\n");
        auto session = sandbox.open_session();
        REQUIRE_MESSAGE(session, session.error().describe());
        CHECK(session->run({"true"}));
    }
    const auto starts = shannot_test::read_text(log);
    CHECK(starts.rfind("clean\nclean\n", 0) == 0);  // the master and a dispatcher, at least
    CHECK(starts.find("leaked") == std::string::npos);
    // Control: the wrapper started without our file actions does see it (so the probe can fail).
    const char* const argv[] = {wrapper.c_str(), "-V", nullptr};
    pid_t pid = -1;
    REQUIRE(::posix_spawn(&pid, wrapper.c_str(), nullptr, nullptr, const_cast<char* const*>(argv), environ) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(shannot_test::read_text(log) == starts + "leaked\n");
    ::close(leaky);
}

TEST_CASE("OpenSshProcessTransport on a private sshd that goes away or changes") {
    using T = shannot::OpenSshProcessTransport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    shannot_test::SshdFixture sshd;
    REQUIRE_MESSAGE(sshd.running(), sshd.error());

    SUBCASE("a changed host key is refused under accept-new") {
        auto sandbox = sandbox_for(sshd.connection());
        REQUIRE(sandbox.run({"true"}));
        sshd.rotate_host_key();
        auto fresh = sandbox_for(sshd.connection());  // a new pool: it must connect again
        auto r = fresh.run({"true"});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::host_key_mismatch);
    }
    SUBCASE("killing sshd mid-command is a transport error, promptly; a restarted one is used again") {
        auto sandbox = sandbox_for(sshd.connection());
        REQUIRE(sandbox.run({"true"}));
        const auto start = std::chrono::steady_clock::now();
        std::thread killer([&] {
            std::this_thread::sleep_for(500ms);
            sshd.crash();
        });
        auto r = sandbox.run({"sleep", "4330.5"}, {.timeout = 60s});
        killer.join();
        REQUIRE_FALSE(r);
        CHECK((r.error().code == errc::connection_failed || r.error().code == errc::transport_error));
        CHECK(std::chrono::steady_clock::now() - start < 15s);
        std::this_thread::sleep_for(300ms);
        CHECK(shannot_test::processes_with("4330.5") == 0);

        REQUIRE(sshd.start());
        auto again = sandbox.run({"echo", "back"});  // the dead connection is noticed and replaced
        REQUIRE_MESSAGE(again, again.error().describe());
        CHECK(again->stdout_data == "back\n");
    }
}

TEST_CASE("the remote dispatcher driven by hand: its backstop, K, and neither leaves a word on the command's stderr") {
    SHANNOT_REQUIRE_TRANSPORT(shannot::OpenSshProcessTransport);
    const auto hello = shannot::detail::random_marker();
    shannot_test::DispatcherDriver d(
        shannot_test::DispatcherDriver::over_ssh(shannot_test::shared_sshd()->connection(), hello));
    REQUIRE_MESSAGE(d.started(), d.error());
    REQUIRE(d.read_until([&] {
        const auto at = d.out.find("\n" + hello + " ready");
        return at != std::string::npos && d.out.find('\n', at + 1) != std::string::npos &&
               d.err.find("\n" + hello + " ready\n") != std::string::npos;
    }));
    d.out.clear();
    d.err.clear();
    auto args = shannot::detail::dispatcher_request({"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                                     "--unshare-pid", "--die-with-parent", "--json-status-fd", "4"});
    args.pop_back();
    REQUIRE(d.send(shannot::detail::dispatcher_request({"P", "0", args})));
    const auto request = [](const std::string& nonce, int timeout_s, const std::string& script) {
        return shannot::detail::dispatcher_request(
            {"R", nonce, std::to_string(timeout_s), "", "0", "bwrap", "0", "", "0", "--", "sh", "-c", script});
    };

    SUBCASE("a run the local side stops watching is killed by the remote backstop, TIMEOUT s on") {
        const auto start = std::chrono::steady_clock::now();
        REQUIRE(d.send(request("n1", 1, "echo started >&2; exec sleep 4471.25")));
        const auto f = d.frames("n1", 20s);
        const auto took = std::chrono::steady_clock::now() - start;
        CHECK(f.report == "exit 137 0 0 0");  // reported as bwrap killed by SIGKILL
        CHECK(f.err == "started\n");
        CHECK(took >= 1s);
        CHECK(took < 10s);
        CHECK(shannot_test::processes_with("4471.25") == 0);  // the frames come once the sandbox is gone
    }
    SUBCASE("K TERM while the command runs: reported as TERM") {
        REQUIRE(d.send(request("n2", 60, "echo started >&2; exec sleep 4471.5")));
        REQUIRE(d.read_until([&] { return d.err.find("started\n") != std::string::npos; }));
        REQUIRE(d.send("\nK TERM\n"));
        const auto f = d.frames("n2");
        CHECK(f.report == "exit 143 0 0 0");
        CHECK(f.err == "started\n");
        CHECK(shannot_test::processes_with("4471.5") == 0);
    }
    SUBCASE("K KILL in the same write as its request") {
        REQUIRE(d.send(request("n3", 60, "exec sleep 4471.75") + "\nK KILL\n"));
        const auto f = d.frames("n3");
        CHECK(f.report == "exit 137 0 0 0");
        CHECK(f.err.empty());
        CHECK(shannot_test::processes_with("4471.75") == 0);
    }
    SUBCASE("a timed run that ends in time, then an untimed one that outlives its timeout") {
        REQUIRE(d.send(request("n4", 0, "echo out; echo err >&2")));
        auto f = d.frames("n4");
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "out\n");
        CHECK(f.err == "err\n");
        REQUIRE(d.send(request("n5", 1, "echo fast")));
        f = d.frames("n5");
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "fast\n");
        REQUIRE(d.send(request("n6", 0, "sleep 3; echo slow")));  // the backstop must have dropped n5's timeout
        f = d.frames("n6");
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "slow\n");
    }
    SUBCASE(
        "FILTER 1: refused (nofilter) until a B gives the filter, then enforced from a pipe at fd 6, run after run") {
        auto filtered = shannot::detail::dispatcher_request({"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                                             "--unshare-pid", "--die-with-parent", "--json-status-fd",
                                                             "4", "--seccomp", "6"});
        filtered.pop_back();
        REQUIRE(d.send(shannot::detail::dispatcher_request({"P", "1", filtered})));
        const auto probe = shannot_test::helper_path("shannot_seccomp_probe");
        REQUIRE(!probe.empty());
        auto run = [&](const std::string& nonce, const std::string& slot, const std::string& filter) {
            return shannot::detail::dispatcher_request(
                {"R", nonce, "0", "", "0", "bwrap", slot, "", filter, "--", probe, "socket_unix"});
        };
        REQUIRE(d.send(run("f1", "1", "1")));
        CHECK(d.frames("f1").report == "nofilter");
        const auto bytes = shannot::syscall_filter_bytes("default", std::vector<std::string>{});
        REQUIRE(bytes);
        REQUIRE(d.send(shannot::detail::dispatcher_request({"B", shannot::detail::printf_escape(*bytes)})));
        for (const char* nonce : {"f2", "f3"}) {  // a new pipe each run: the second gets the whole filter too
            REQUIRE(d.send(run(nonce, "1", "1")));
            const auto f = d.frames(nonce);
            CHECK(f.report == "exit 0 1 0 0");
            CHECK_MESSAGE(f.out == "socket_unix EPERM\n", f.err);
        }
        REQUIRE(d.send(run("f4", "0", "0")));  // the control: no filter asked for, none applied
        const auto f = d.frames("f4");
        CHECK(f.report == "exit 0 1 0 0");
        CHECK(f.out == "socket_unix ok\n");
    }
    // EOF: the dispatcher, its reader, runner and backstop all end.
    d.close_input();
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (shannot_test::processes_with(hello) > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    CHECK(shannot_test::processes_with(hello) == 0);
}

TEST_CASE(
    "a sandbox that sees the remote dispatcher's folder finds nothing there it can write to, nor a past run's input") {
    using T = shannot::OpenSshProcessTransport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    // The profile binds the remote's $TMPDIR, where dispatchers keep their folders, read-only. A
    // read-only bind stops writes to files, not to fifos or sockets: a fifo there that the
    // dispatcher reads requests or bwrap's status from would let a command write shell code that
    // runs outside the sandbox, in its own session's dispatcher or in another's.
    shannot_test::TempDir tmp;
    REQUIRE_FALSE(tmp.path().empty());
    const auto secret = "staged-" + shannot::detail::random_marker();
    std::string seen;
    {
        shannot_test::SshdFixture sshd("SetEnv TMPDIR=" + tmp.path() + "\n");
        REQUIRE_MESSAGE(sshd.running(), sshd.error());
        auto profile = shannot_test::test_profile<T>();
        profile.binds.push_back({tmp.path(), tmp.path(), true, true, false});
        T transport(sshd.connection());
        shannot::SandboxManager<T> sandbox(profile, transport);
        auto staged = sandbox.run({"cat"}, {.input = secret});
        REQUIRE_MESSAGE(staged, staged.error().describe());
        CHECK(staged->stdout_data == secret);
        // Every entry of every dispatcher folder it can see, classified: a fifo, a socket, or
        // anything it may write to is a finding, and so is a file that still holds the input.
        const std::string look = R"(n=0
for d in "$1"/shannot.*; do
  [ -d "$d" ] || continue
  n=$((n+1))
  for f in "$d"/*; do
    [ -e "$f" ] || continue
    if [ -p "$f" ]; then echo "fifo $f"
    elif [ -S "$f" ]; then echo "socket $f"
    elif [ -w "$f" ]; then echo "writable $f"
    elif [ -f "$f" ]; then case $(cat "$f") in *"$2"*) echo "input $f" ;; esac
    fi
  done
done
echo "folders $n")";
        auto r = sandbox.run({"sh", "-c", look, "sh", tmp.path(), secret});
        REQUIRE_MESSAGE(r, r.error().describe());
        CHECK_MESSAGE(r->exit_code == 0, r->stderr_data);
        seen = r->stdout_data;
        transport.close();
    }
    CHECK(seen.find("folders 1\n") != std::string::npos);  // its own dispatcher's folder: else this proves nothing
    CHECK_MESSAGE(seen.find("fifo") == std::string::npos, seen);
    CHECK_MESSAGE(seen.find("socket") == std::string::npos, seen);
    CHECK_MESSAGE(seen.find("writable") == std::string::npos, seen);
    CHECK_MESSAGE(seen.find("input") == std::string::npos, seen);
    // The dispatchers are gone with the sshd; their folders go with their EXIT traps.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    auto folders = [&] {
        int n = 0;
        for (const auto& e : std::filesystem::directory_iterator(tmp.path())) n += e.is_directory();
        return n;
    };
    while (folders() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
    CHECK(folders() == 0);
}

TEST_CASE("the syscall filter as the dispatcher's requests carry it: printf_escape, read back by dash and bash") {
    std::string all;
    for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
    all += all;  // a NUL or an escape after a digit, and every pair that follows
    const auto escaped = shannot::detail::printf_escape(all);
    CHECK(escaped.find('\n') == std::string::npos);
    CHECK(escaped.find('\'') == std::string::npos);
    CHECK(escaped.find('%') == std::string::npos);
    for (const char* shell : {"dash", "bash"}) {
        CAPTURE(shell);
        if (::access((std::string("/bin/") + shell).c_str(), X_OK) != 0) {
            if (shannot_test::in_ci()) FAIL("no /bin/" << shell << " (CI=true)");
            continue;
        }
        const auto command = shannot::detail::shell_join({shell, "-c", "printf \"$1\"", "sh", escaped});
        std::FILE* pipe = ::popen(command.c_str(), "r");
        REQUIRE(pipe != nullptr);
        std::string out;
        char buffer[4096];
        for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
        CHECK(::pclose(pipe) == 0);
        CHECK(out == all);
    }
}

TEST_CASE("the remote dispatcher where sh is bash (as on Fedora, RHEL and Arch)") {
    using T = shannot::OpenSshProcessTransport;
    SHANNOT_REQUIRE_TRANSPORT(T);
    if (::access("/bin/bash", X_OK) != 0) {
        if (shannot_test::in_ci()) FAIL("no /bin/bash (CI=true)");
        MESSAGE("skipped: no /bin/bash");
        return;
    }
    // bash run as sh is in POSIX mode but sets BASH_VERSION: the dispatcher's runner then reads
    // its requests and bwrap's status a line at a time instead of sourcing them.
    shannot_test::TempDir bin;
    REQUIRE_FALSE(bin.path().empty());
    std::filesystem::create_symlink("/bin/bash", bin.path() + "/sh");
    shannot_test::SshdFixture sshd("SetEnv PATH=" + bin.path() + ":/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\n");
    REQUIRE_MESSAGE(sshd.running(), sshd.error());
    T transport(sshd.connection());
    shannot::SandboxManager<T> sandbox(shannot_test::test_profile<T>(), transport);

    auto hello = sandbox.run({"echo", "hello"});
    REQUIRE_MESSAGE(hello, hello.error().describe());
    CHECK(hello->stdout_data == "hello\n");
    CHECK(hello->exit_code == 0);
    // bash makes the syscall filter's pipe too (a here-document), for fresh runs and sessions;
    // the control is the same probe without the filter.
    {
        auto probed = shannot_test::test_profile<T>();
        probed.binds.push_back({shannot_test::exe_dir(), "/opt/shannot-helpers", true, true, false});
        probed.allowed_commands.push_back("/opt/shannot-helpers/shannot_seccomp_probe");
        const std::vector<std::string> probe = {"/opt/shannot-helpers/shannot_seccomp_probe", "socket_unix", "clone3"};
        auto filtered = shannot::SandboxManager<T>(probed, transport).run(probe);
        REQUIRE_MESSAGE(filtered, filtered.error().describe());
        CHECK(filtered->stdout_data == "socket_unix EPERM\nclone3 ENOSYS\n");
        auto session = shannot::SandboxManager<T>(probed, transport).open_session();
        REQUIRE_MESSAGE(session, session.error().describe());
        auto in_session = session->run(probe);
        REQUIRE_MESSAGE(in_session, in_session.error().describe());
        CHECK(in_session->stdout_data == "socket_unix EPERM\nclone3 ENOSYS\n");
        probed.syscall_filter = "none";
        auto open = shannot::SandboxManager<T>(probed, transport).run(probe);
        REQUIRE_MESSAGE(open, open.error().describe());
        CHECK(open->stdout_data == "socket_unix ok\nclone3 ok\n");
    }
    // The dispatcher really is bash (its script starts every dispatcher's command line).
    int bash = 0;
    for (int pid : shannot_test::pids_with(std::string(shannot::detail::ssh_dispatcher_script.substr(0, 80)))) {
        std::error_code ec;
        const auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).string();
        bash += exe.size() >= 5 && exe.compare(exe.size() - 5, 5, "/bash") == 0;
    }
    REQUIRE(bash > 0);

    const std::string input = std::string(100000, 'i') + "end";
    auto cat = sandbox.run({"cat"}, {.input = input});
    REQUIRE_MESSAGE(cat, cat.error().describe());
    CHECK(cat->stdout_data == input);
    auto status = sandbox.run({"sh", "-c", "echo out; echo err >&2; exit 3"});
    REQUIRE_MESSAGE(status, status.error().describe());
    CHECK(status->exit_code == 3);
    CHECK(status->stdout_data == "out\n");
    CHECK(status->stderr_data == "err\n");
    // bwrap failing before the command starts is told apart from the command failing.
    auto profile = shannot_test::test_profile<T>();
    profile.binds.push_back({.source = "/nonexistent-shannot", .target = "/data", .required = true});
    shannot::SandboxManager<T> broken(profile, transport);
    auto setup = broken.run({"echo", "never"});
    REQUIRE_FALSE(setup);
    CHECK(setup.error().code == errc::sandbox_setup_failed);
    // A timeout stops the command and the session goes on.
    auto slow = sandbox.run({"sleep", "30"}, {.timeout = 1s});
    REQUIRE_MESSAGE(slow, slow.error().describe());
    CHECK(slow->timed_out);
    auto after = sandbox.run({"echo", "after"});
    REQUIRE_MESSAGE(after, after.error().describe());
    CHECK(after->stdout_data == "after\n");
    CHECK(transport.connections() == 1);
}

TEST_CASE("a remote dispatcher removes the folders of dispatchers that died without removing them") {
    SHANNOT_REQUIRE_TRANSPORT(shannot::OpenSshProcessTransport);
    // The test sshd's logins have no TMPDIR: dispatchers keep their folders under /tmp.
    const auto tag = shannot::detail::random_marker();
    const std::filesystem::path stale = "/tmp/shannot." + tag + "-stale", live = "/tmp/shannot." + tag + "-live",
                                unnamed = "/tmp/shannot." + tag + "-unnamed", torn = "/tmp/shannot." + tag + "-torn";
    for (const auto& dir : {stale, live, unnamed, torn}) REQUIRE(std::filesystem::create_directory(dir));
    // Dead: a pid no process has. Alive: this process, with its real start time. Without an m
    // file, or with one cut short (no "."): not known to be dead, so kept.
    std::ofstream(stale / "m") << "999999999 1 .\n";
    std::ofstream(stale / "pid") << "\n";
    std::string self_stat = shannot_test::read_proc_file("/proc/self/stat");
    self_stat = self_stat.substr(self_stat.rfind(')') + 2);
    std::istringstream fields(self_stat);
    std::string field, start_time;
    for (int i = 3; i <= 22 && fields >> field; ++i)
        if (i == 22) start_time = field;
    REQUIRE_FALSE(start_time.empty());
    std::ofstream(live / "m") << ::getpid() << ' ' << start_time << " .\n";
    std::ofstream(torn / "m") << "999999999 1";

    {
        const auto hello = shannot::detail::random_marker();
        shannot_test::DispatcherDriver d(
            shannot_test::DispatcherDriver::over_ssh(shannot_test::shared_sshd()->connection(), hello));
        REQUIRE_MESSAGE(d.started(), d.error());
        REQUIRE(d.read_until([&] { return d.err.find("\n" + hello + " ready\n") != std::string::npos; }));
        const auto deadline = std::chrono::steady_clock::now() + 10s;
        while (std::filesystem::exists(stale) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(20ms);
        CHECK_FALSE(std::filesystem::exists(stale));
        CHECK(std::filesystem::exists(live));
        CHECK(std::filesystem::exists(unnamed));
        CHECK(std::filesystem::exists(torn));
        CHECK(std::filesystem::exists("/tmp/shannot." + hello + "/m"));  // its own, naming it
    }
    for (const auto& dir : {live, unnamed, torn}) std::filesystem::remove_all(dir);
}
