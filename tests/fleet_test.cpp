// SPDX-License-Identifier: MIT
// Fleet (fleet.hpp): one command on 24 real sshds on loopback addresses, and kept connections.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/fleet_fixture.hpp"
#include "support/bwrap_env.hpp"
#include "support/sandbox_env.hpp"

namespace {

using shannot::OpenSshProcessTransport;
using Clock = std::chrono::steady_clock;

shannot::SandboxProfile<OpenSshProcessTransport> fleet_profile() {
    return shannot_test::test_profile<OpenSshProcessTransport>();
}

/// The most hosts whose [started, finished) overlapped at one moment.
std::size_t most_in_flight(const std::vector<shannot::HostResult>& results) {
    std::vector<std::pair<Clock::time_point, int>> events;
    for (const auto& r : results) {
        events.emplace_back(r.started, +1);
        events.emplace_back(r.finished, -1);
    }
    std::sort(events.begin(), events.end());  // at one instant an end sorts before a start
    std::size_t now = 0, most = 0;
    for (const auto& [t, d] : events) {
        now = static_cast<std::size_t>(static_cast<long>(now) + d);
        most = std::max(most, now);
    }
    return most;
}

/// Watches /proc on a thread for processes running exactly `argv`; `seen()` is the most at once.
class ProcessWatch {
public:
    explicit ProcessWatch(std::vector<std::string> argv)
        : argv_(std::move(argv)), thread_([this] {
              while (!stop_) {
                  const auto n = shannot_test::processes_running(argv_).size();
                  if (n > seen_) seen_ = n;
                  std::this_thread::sleep_for(std::chrono::milliseconds(20));
              }
          }) {}
    ~ProcessWatch() { finish(); }
    void finish() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    [[nodiscard]] std::size_t seen() const { return seen_; }

private:
    std::vector<std::string> argv_;
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> seen_{0};
    std::thread thread_;
};

/// No process runs `argv` any more, within a short grace for the kernel to reap (polled).
bool none_left(const std::vector<std::string>& argv) {
    for (int i = 0; i < 50; ++i) {
        if (shannot_test::processes_running(argv).empty()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

}  // namespace

TEST_CASE("Fleet: one command on 24 hosts") {
    SHANNOT_REQUIRE_FLEET();
    auto& fleet_sshd = *shannot_test::shared_fleet();
    shannot::Fleet fleet(fleet_profile(), fleet_sshd.fleet_hosts());
    REQUIRE(fleet.size() == 24);

    SUBCASE("every host's result arrives, with its host, exit status and output, as each ends and at the end") {
        std::vector<std::string> delivered;
        const auto results = fleet.run({"sh", "-c", "echo out-$0; echo err-$0 >&2; exit 3", "show-host"}, {}, {},
                                       [&](const shannot::HostResult& r) { delivered.push_back(r.host); });
        REQUIRE(results.size() == 24);
        CHECK(delivered.size() == 24);
        CHECK(std::set<std::string>(delivered.begin(), delivered.end()).size() == 24);
        for (std::size_t i = 0; i < 24; ++i) {
            const auto& r = results[i];
            CAPTURE(r.host);
            CHECK(r.index == i);
            CHECK(r.host == fleet_sshd.destination(i));
            REQUIRE(r.result);
            CHECK(r.result->exit_code == 3);
            // "host-I" comes from host I's own bwrap (see FleetSshd): the output is that host's.
            CHECK(r.result->stdout_data == "host-" + std::to_string(i) + "\nout-show-host\n");
            CHECK(r.result->stderr_data == "err-show-host\n");
            CHECK(std::find(r.result->argv.begin(), r.result->argv.end(),
                            shannot_test::SshdFixture::user() + "@" + fleet_sshd.address(i)) != r.result->argv.end());
            CHECK(r.started <= r.finished);
        }
    }

    SUBCASE("a second run reuses every host's connection: no new login anywhere") {
        REQUIRE(fleet.run({"true"})[0].result);
        std::vector<std::size_t> before;
        for (std::size_t i = 0; i < 24; ++i) before.push_back(fleet_sshd.logins(i));
        const auto again = fleet.run({"true"});
        for (std::size_t i = 0; i < 24; ++i) {
            CHECK(again[i].result);
            CHECK(fleet_sshd.logins(i) == before[i]);
            CHECK(fleet.sandbox(i).transport().connections() == 1);
        }
        // Control: a new fleet logs in again, and the logs show it.
        shannot::Fleet other(fleet_profile(), fleet_sshd.fleet_hosts());
        REQUIRE(other.run({"true"})[5].result);
        CHECK(fleet_sshd.logins(5) == before[5] + 1);
    }

    SUBCASE("sessions: one per host, each command run in all of them") {
        auto sessions = fleet.open_sessions();
        REQUIRE(sessions.size() == 24);
        auto first = sessions.run({"sh", "-c", "echo kept > /tmp/note"});
        auto second = sessions.run({"cat", "/tmp/note"});
        for (std::size_t i = 0; i < 24; ++i) {
            REQUIRE(second[i].result);
            CHECK(second[i].host == fleet_sshd.destination(i));
            CHECK(second[i].result->stdout_data == "kept\n");  // the session's tmpfs: the same sandbox ran both
        }
        // Control: fresh sandboxes do not share their tmpfs.
        CHECK(fleet.run({"cat", "/tmp/note"})[0].result->exit_code != 0);
        sessions.close();
    }
}

TEST_CASE("Fleet: a host that fails fails alone") {
    SHANNOT_REQUIRE_FLEET();
    auto& fleet_sshd = *shannot_test::shared_fleet();

    SUBCASE("an unreachable host among reachable ones: its own error, naming it; the others ran") {
        auto hosts = fleet_sshd.fleet_hosts();
        hosts.resize(6);
        auto gone = hosts[0];
        gone.name = "gone-host";
        gone.connection.host = "127.0.0.250";  // nothing listens there
        hosts.insert(hosts.begin() + 3, gone);
        shannot::Fleet fleet(fleet_profile(), hosts);
        const auto results = fleet.run({"echo", "ran"});
        REQUIRE(results.size() == 7);
        for (const auto& r : results) {
            CAPTURE(r.host);
            if (r.host == "gone-host") {
                REQUIRE_FALSE(r.result);
                CHECK(r.result.error().code == shannot::errc::connection_failed);
                CHECK(r.result.error().message.find("gone-host") != std::string::npos);
            } else {
                REQUIRE(r.result);
                CHECK(r.result->stdout_data == "ran\n");
            }
        }
    }

    SUBCASE("a host whose key changed is refused, alone") {
        auto hosts = fleet_sshd.fleet_hosts();
        hosts.resize(5);
        const auto known = fleet_sshd.known_hosts_changing(2);
        for (auto& h : hosts) h.connection.known_hosts_file = known;
        shannot::Fleet fleet(fleet_profile(), hosts);
        const auto results = fleet.run({"echo", "ran"});
        for (std::size_t i = 0; i < 5; ++i) {
            CAPTURE(i);
            if (i == 2) {
                REQUIRE_FALSE(results[i].result);
                CHECK(results[i].result.error().code == shannot::errc::host_key_mismatch);
                CHECK(results[i].result.error().message.find(fleet_sshd.address(2)) != std::string::npos);
            } else {
                REQUIRE(results[i].result);
                CHECK(results[i].result->stdout_data == "ran\n");
            }
        }
        // Control: with the right known_hosts the same host runs.
        auto good = fleet_sshd.fleet_hosts();
        shannot::Fleet fine(fleet_profile(), {good[2]});
        CHECK(fine.run({"echo", "ran"})[0].result);
    }
}

TEST_CASE("Fleet: never more hosts in flight than the fan-out") {
    SHANNOT_REQUIRE_FLEET();
    auto& fleet_sshd = *shannot_test::shared_fleet();
    shannot::Fleet fleet(fleet_profile(), fleet_sshd.fleet_hosts());
    // Each host's turn lasts at least the command's 0.3 s, so hosts that may overlap do.
    const std::vector<std::string> command = {"sleep", "0.3"};
    const auto bounded = fleet.run(command, {}, {.fanout = 4});
    for (const auto& r : bounded) CHECK(r.result);
    CHECK(most_in_flight(bounded) <= 4);
    CHECK(most_in_flight(bounded) >= 2);
    // Control: without that bound the same hosts overlap far more, and the measure sees it.
    const auto wide = fleet.run(command, {}, {.fanout = 24});
    CHECK(most_in_flight(wide) > 4);
}

TEST_CASE("Fleet: the overall deadline and cancel stop every host, leaving nothing running") {
    SHANNOT_REQUIRE_FLEET();
    auto& fleet_sshd = *shannot_test::shared_fleet();
    auto hosts = fleet_sshd.fleet_hosts();
    hosts.resize(12);
    shannot::Fleet fleet(fleet_profile(), hosts);
    shannot::RunOptions long_run;
    long_run.timeout = std::chrono::seconds(120);

    SUBCASE("the overall deadline") {
        const std::vector<std::string> command = {"sleep", "987.125"};
        ProcessWatch watch(command);
        const auto results = fleet.run(command, long_run, {.fanout = 12, .timeout = std::chrono::seconds(4)});
        watch.finish();
        CHECK(watch.seen() >= 1);  // control: the scan sees these sleeps while they run
        for (const auto& r : results) {
            CAPTURE(r.host);
            if (r.result)
                CHECK(r.result->cancelled);
            else
                CHECK(r.result.error().code == shannot::errc::cancelled);
        }
        CHECK(none_left(command));
    }

    SUBCASE("cancel, from another thread, once the commands run") {
        const std::vector<std::string> command = {"sleep", "987.375"};
        shannot::CancelToken token;
        std::atomic<bool> done{false};
        std::size_t seen = 0;
        std::thread canceller([&] {
            for (int i = 0; i < 1000 && !done; ++i) {
                seen = shannot_test::processes_running(command).size();
                if (seen >= 12) break;
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            token.cancel();
        });
        const auto results = fleet.run(command, long_run, {.fanout = 12, .cancel = token});
        done = true;
        canceller.join();
        CHECK(seen == 12);  // control: all twelve were running, seen by the same scan
        for (const auto& r : results) {
            REQUIRE(r.result);
            CHECK(r.result->cancelled);
        }
        CHECK(none_left(command));
    }

    SUBCASE("a per-host deadline stops the slow host alone, while connecting or running") {
        // A "host" that accepts TCP connections and never says a word: ssh waits for its banner.
        const int silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(silent, 16) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len);
        auto slow_hosts = hosts;
        slow_hosts.resize(4);
        auto mute = slow_hosts[0];
        mute.name = "mute-host";
        mute.connection.host = "127.0.0.1";
        mute.connection.port = ntohs(addr.sin_port);
        mute.connection.connect_timeout = std::chrono::seconds(60);
        slow_hosts.push_back(mute);
        shannot::Fleet slow(fleet_profile(), slow_hosts);
        const auto t0 = Clock::now();
        const auto results = slow.run({"echo", "ran"}, long_run, {.host_timeout = std::chrono::seconds(8)});
        CHECK(Clock::now() - t0 < std::chrono::seconds(30));
        for (std::size_t i = 0; i < 4; ++i) CHECK((results[i].result && results[i].result->stdout_data == "ran\n"));
        REQUIRE_FALSE(results[4].result);
        CHECK(results[4].result.error().code == shannot::errc::connection_failed);
        CHECK(results[4].result.error().message.find("mute-host") != std::string::npos);
        CHECK(results[4].result.error().message.find("deadline") != std::string::npos);
        ::close(silent);

        // Past the deadline while running: the command is stopped and reported as timed out. (The
        // connections are made first: on a loaded machine twelve logins may take more than 2 s.)
        for (const auto& r : fleet.run({"true"})) REQUIRE(r.result);
        const auto running = fleet.run({"sleep", "60"}, long_run, {.host_timeout = std::chrono::seconds(2)});
        for (const auto& r : running) CHECK((r.result && r.result->timed_out && !r.result->cancelled));
    }
}

TEST_CASE("SshConnection::persist: a kept connection outlives its transport") {
    SHANNOT_REQUIRE_FLEET();
    auto& fleet_sshd = *shannot_test::shared_fleet();
    char templ[] = "/tmp/shannot-kept-XXXXXX";
    REQUIRE(::mkdtemp(templ));
    const std::string folder = std::string(templ) + "/kept";
    auto connection = fleet_sshd.connection(20);
    connection.persist = std::chrono::seconds(30);
    connection.persist_folder = folder;
    const auto profile = fleet_profile();
    const auto run_once = [&](const shannot::SshConnection& c) {
        shannot::SshSandbox sandbox(profile, OpenSshProcessTransport(c));
        auto r = sandbox.run({"echo", "hi"});
        REQUIRE(r);
        CHECK(r->stdout_data == "hi\n");
    };
    const auto kept_pid = [&] {
        auto list = shannot::list_persisted(folder);
        REQUIRE(list);
        return list->size() == 1 && (*list)[0].alive ? (*list)[0].ssh_pid : -1;
    };

    const auto logins = fleet_sshd.logins(20);
    run_once(connection);
    const int pid = kept_pid();
    REQUIRE(pid > 0);
    CHECK(::kill(pid, 0) == 0);  // the connection runs on after its transport is gone

    SUBCASE("the next transport with the same settings adopts it: same process, one login") {
        run_once(connection);
        run_once(connection);
        CHECK(kept_pid() == pid);
        CHECK(fleet_sshd.logins(20) == logins + 1);
        // Control: other settings (here no persistence) never share it, and log in again.
        auto plain = connection;
        plain.persist = std::chrono::seconds(0);
        run_once(plain);
        CHECK(fleet_sshd.logins(20) == logins + 2);
    }

    SUBCASE("connections with other settings never share one: each its own folder and process") {
        auto other = connection;
        other.connect_timeout = std::chrono::seconds(7);  // any setting that reaches ssh's command line
        run_once(other);
        auto list = shannot::list_persisted(folder);
        REQUIRE(list);
        REQUIRE(list->size() == 2);
        CHECK((*list)[0].ssh_pid != (*list)[1].ssh_pid);
        CHECK(fleet_sshd.logins(20) == logins + 2);
    }

    SUBCASE("a folder that is not private is refused, not used") {
        auto open_folder = connection;
        open_folder.persist_folder = std::string(templ) + "/open";
        REQUIRE(::mkdir(open_folder.persist_folder.c_str(), 0755) == 0);
        shannot::SshSandbox sandbox(profile, OpenSshProcessTransport(open_folder));
        auto r = sandbox.run({"echo", "hi"});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == shannot::errc::invalid_argument);
        CHECK(r.error().message.find("open to other users") != std::string::npos);
        auto linked = connection;
        linked.persist_folder = std::string(templ) + "/link";
        REQUIRE(::symlink(folder.c_str(), linked.persist_folder.c_str()) == 0);
        shannot::SshSandbox through_link(profile, OpenSshProcessTransport(linked));
        auto refused = through_link.run({"echo", "hi"});
        REQUIRE_FALSE(refused);
        CHECK(refused.error().message.find("symlink") != std::string::npos);
        // Control: made private, the same folder is used.
        REQUIRE(::chmod(open_folder.persist_folder.c_str(), 0700) == 0);
        shannot::SshSandbox fixed(profile, OpenSshProcessTransport(open_folder));
        CHECK(fixed.run({"echo", "hi"}));
        CHECK(shannot::close_persisted(open_folder.persist_folder).value_or(0) == 1);
    }

    SUBCASE("closing it ends the process") {
        auto closed = shannot::close_persisted(folder);
        REQUIRE(closed);
        CHECK(*closed == 1);
        bool gone = false;
        for (int i = 0; i < 100 && !gone; ++i) {
            gone = shannot::detail::process_start_time(pid).empty();
            if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        CHECK(gone);
        CHECK(shannot::list_persisted(folder)->empty());
    }

    SUBCASE("a killed one is replaced") {
        REQUIRE(::kill(pid, SIGKILL) == 0);
        for (int i = 0; i < 100 && !shannot::detail::process_start_time(pid).empty(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        run_once(connection);
        const int again = kept_pid();
        CHECK(again > 0);
        CHECK(again != pid);
        CHECK(fleet_sshd.logins(20) == logins + 2);
    }

    auto ignored = shannot::close_persisted(folder);
    (void)ignored;
    // The kept ssh processes this test process started and parked are its children: the library
    // reaps them by pidfd at its next use of a kept connection (detail::reap_parked). The test
    // reaps them itself, so that no later test finds a zombie of this one.
    // close_persisted only signals them: give them a moment to end.
    for (int i = 0; i < 250 && (i < 25 || !shannot_test::zombie_children().empty()); ++i) {
        shannot::detail::reap_parked();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(shannot_test::zombie_children().empty());
    std::error_code ec;
    std::filesystem::remove_all(templ, ec);
}
