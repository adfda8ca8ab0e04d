// SPDX-License-Identifier: MIT
// The shannot tool on several hosts (24 real sshds on loopback addresses): prefixed, gathered and
// JSON output, exit statuses, hosts that fail alone, --persist and disconnect, inventories, groups.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <signal.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/cli_runner.hpp"
#include "support/fleet_fixture.hpp"

#ifndef SHANNOT_SINGLE_INCLUDE_HPP  // the tool is built from include/ only (see cli_test.cpp)

namespace {

using json = nlohmann::json;
using namespace shannot_test::cli;

/// --ssh for hosts [first, last), the fleet's key and known_hosts.
std::vector<std::string> ssh_args(std::size_t first, std::size_t last, const std::string& known_hosts = {}) {
    const auto& f = *shannot_test::shared_fleet();
    std::vector<std::string> args;
    for (std::size_t i = first; i < last; ++i) args.insert(args.end(), {"--ssh", f.destination(i)});
    args.insert(args.end(), {"-i", f.key(), "--known-hosts", known_hosts.empty() ? f.known_hosts() : known_hosts});
    return args;
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

/// Each JSON line of `out`, by its "host".
std::map<std::string, json> by_host(const std::string& out) {
    std::map<std::string, json> hosts;
    for (const auto& line : lines_of(out)) {
        const auto j = json::parse(line);  // every line parses on its own
        REQUIRE(j.contains("host"));
        hosts[j["host"].get<std::string>()] = j;
    }
    return hosts;
}

/// The kept connections the tool lists for `home` (`shannot disconnect --list --json`).
json kept(const TempDir& home) {
    const auto r = run_cli(home, {"disconnect", "--list", "--json"});
    REQUIRE(r.status == 0);
    return json::parse(r.out);
}

}  // namespace

TEST_CASE("cli: one command on 24 hosts") {
    SHANNOT_REQUIRE_CLI();
    SHANNOT_REQUIRE_FLEET();
    const auto& fleet = *shannot_test::shared_fleet();
    TempDir home;
    const auto tools = write_tool_profile(home).string();
    const auto all = ssh_args(0, 24) + std::vector<std::string>{"--profile", tools};

    SUBCASE("plain output: every line prefixed with its host, each host's lines in order") {
        const auto r =
            run_cli(home, all + std::vector<std::string>{"sh", "-c", "echo one; echo two; echo oops >&2", "show-host"});
        CHECK(r.status == 0);
        const auto out = lines_of(r.out);
        CHECK(out.size() == 24 * 3);
        for (std::size_t i = 0; i < 24; ++i) {
            const auto p = fleet.destination(i) + ": ";
            const auto at = std::find(out.begin(), out.end(), p + "host-" + std::to_string(i));
            REQUIRE(at != out.end());
            REQUIRE(out.end() - at >= 3);
            CHECK(*(at + 1) == p + "one");  // a host's lines stay together
            CHECK(*(at + 2) == p + "two");
            CHECK(r.err.find(p + "oops\n") != std::string::npos);
        }
        // Control: with one host nothing is prefixed.
        const auto one = run_cli(home, ssh_args(0, 1) + std::vector<std::string>{"--profile", tools, "echo", "one"});
        CHECK(one.out == "one\n");
    }

    SUBCASE("--json: one object per host per line, with \"host\" and the run's fields") {
        const auto r = run_cli(home, all + std::vector<std::string>{"--json", "sh", "-c", "exit 3", "show-host"});
        CHECK(r.status == 3);
        const auto hosts = by_host(r.out);
        CHECK(lines_of(r.out).size() == 24);
        REQUIRE(hosts.size() == 24);
        for (std::size_t i = 0; i < 24; ++i) {
            const auto& j = hosts.at(fleet.destination(i));
            CHECK(j["exit_code"] == 3);
            CHECK(j["status"] == 3);
            CHECK(j["stdout"] == "host-" + std::to_string(i) + "\n");
            CHECK(j["transport"] == "ssh");
            CHECK(j["profile"] == "test");
        }
    }

    SUBCASE("--gather: hosts with identical output under one header") {
        const auto r = run_cli(home, all + std::vector<std::string>{"--gather", "echo", "same", "show-group"});
        CHECK(r.status == 0);
        const auto out = lines_of(r.out);
        std::map<std::string, std::string> groups;  // header -> output
        for (std::size_t k = 0; k + 3 < out.size();) {
            REQUIRE(out[k] == std::string(16, '-'));
            REQUIRE(out[k + 2] == std::string(16, '-'));
            groups[out[k + 1]] = out[k + 3];
            k += 5;  // rule, hosts, rule, "group-N", "same show-group"
        }
        REQUIRE(groups.size() == 3);
        for (int g = 0; g < 3; ++g) {
            std::string names;
            for (std::size_t i = static_cast<std::size_t>(g); i < 24; i += 3)
                names += (names.empty() ? "" : ",") + fleet.destination(i);
            CHECK(groups.at(names + " (8)") == "group-" + std::to_string(g));
        }
        CHECK(out.size() == 3 * 5);
        // Control: the same without --gather prints every host's two lines.
        CHECK(lines_of(run_cli(home, all + std::vector<std::string>{"echo", "same", "show-group"}).out).size() == 48);
    }
}

TEST_CASE("cli: a host that cannot run fails alone; the exit status is the largest") {
    SHANNOT_REQUIRE_CLI();
    SHANNOT_REQUIRE_FLEET();
    const auto& fleet = *shannot_test::shared_fleet();
    TempDir home;
    const auto tools = write_tool_profile(home).string();
    const std::string gone = "root@127.0.0.250:" + std::to_string(fleet.port());

    SUBCASE("an unreachable host: its error, status 123; the others ran") {
        const auto r = run_cli(home, ssh_args(0, 5) + std::vector<std::string>{"--ssh", gone, "--profile", tools,
                                                                               "--json", "echo", "ran"});
        CHECK(r.status == 123);
        const auto hosts = by_host(r.out);
        REQUIRE(hosts.size() == 6);
        CHECK(hosts.at(gone)["error"]["code"] == "connection_failed");
        CHECK(hosts.at(gone)["error"]["status"] == 123);
        for (std::size_t i = 0; i < 5; ++i) CHECK(hosts.at(fleet.destination(i))["stdout"] == "ran\n");
        const auto plain =
            run_cli(home, ssh_args(0, 2) + std::vector<std::string>{"--ssh", gone, "--profile", tools, "echo", "ran"});
        CHECK(plain.status == 123);
        CHECK(plain.err.find(gone + ": shannot: connection failed") != std::string::npos);
        CHECK(lines_of(plain.out).size() == 2);
        // The largest status wins: 123 over the command's 7, the command's 124 (a timeout) over 123.
        CHECK(run_cli(home, ssh_args(0, 2) +
                                std::vector<std::string>{"--ssh", gone, "--profile", tools, "sh", "-c", "exit 7"})
                  .status == 123);
        CHECK(
            run_cli(home, ssh_args(0, 2) + std::vector<std::string>{"--profile", tools, "sh", "-c", "exit 7"}).status ==
            7);
        CHECK(run_cli(home, ssh_args(0, 2) + std::vector<std::string>{"--ssh", gone, "--profile", tools, "--timeout",
                                                                      "0.5", "sleep", "5"})
                  .status == 124);
    }

    SUBCASE("a host whose key changed is refused, alone") {
        const auto r = run_cli(home, ssh_args(0, 4, fleet.known_hosts_changing(1)) +
                                         std::vector<std::string>{"--json", "--profile", tools, "echo", "ran"});
        CHECK(r.status == 123);
        const auto hosts = by_host(r.out);
        REQUIRE(hosts.size() == 4);
        CHECK(hosts.at(fleet.destination(1))["error"]["code"] == "host_key_mismatch");
        for (std::size_t i : {0, 2, 3}) CHECK(hosts.at(fleet.destination(i))["stdout"] == "ran\n");
    }

    SUBCASE("a refused command is said once, before any host runs") {
        const auto r = run_cli(home, ssh_args(0, 4) + std::vector<std::string>{"sh", "-c", "true"});
        CHECK(r.status == 126);
        CHECK(lines_of(r.err).size() == 1);
    }
}

TEST_CASE("cli: Ctrl-C stops every host, leaving nothing running on any") {
    SHANNOT_REQUIRE_CLI();
    SHANNOT_REQUIRE_FLEET();
    TempDir home;
    const auto tools = write_tool_profile(home).string();
    const std::vector<std::string> command = {"sleep", "987.625"};
    std::size_t seen = 0;
    std::thread watch([&] {
        for (int i = 0; i < 200 && seen < 6; ++i) {
            seen = std::max(seen, shannot_test::processes_running(command).size());
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
    });
    const auto r =
        run_cli(home, ssh_args(0, 6) + std::vector<std::string>{"--profile", tools, "--timeout", "100"} + command, {},
                {}, {SIGINT, std::chrono::milliseconds(6000)});
    watch.join();
    CHECK(seen == 6);  // control: all six ran, and the scan saw them
    CHECK(r.status == 128 + SIGINT);
    bool none = false;
    for (int i = 0; i < 50 && !none; ++i) {
        none = shannot_test::processes_running(command).empty();
        if (!none) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    CHECK(none);
}

TEST_CASE("cli: --persist keeps the connection for the next call; disconnect closes it") {
    SHANNOT_REQUIRE_CLI();
    SHANNOT_REQUIRE_FLEET();
    const auto& fleet = *shannot_test::shared_fleet();
    TempDir home;
    const std::size_t host = 21;
    const auto args = ssh_args(host, host + 1);
    const auto logins = fleet.logins(host);

    REQUIRE(run_cli(home, args + std::vector<std::string>{"--persist", "30", "ls", "/"}).status == 0);
    auto list = kept(home);
    REQUIRE(list.size() == 1);
    const int pid = list[0]["pid"];
    CHECK(list[0]["alive"] == true);
    CHECK(list[0]["host"] == fleet.address(host));

    SUBCASE("a second call reuses it: the same ssh process, one login in the sshd log") {
        REQUIRE(run_cli(home, args + std::vector<std::string>{"ls", "/"}).status == 0);  // the default keeps it too
        REQUIRE(run_cli(home, args + std::vector<std::string>{"--json", "ls", "/"}).status == 0);
        CHECK(kept(home)[0]["pid"] == pid);
        CHECK(kept(home)[0]["commands"] == 3);
        CHECK(fleet.logins(host) == logins + 1);
        // Control: --persist 0 neither uses it nor keeps one: a login each time.
        REQUIRE(run_cli(home, args + std::vector<std::string>{"--persist", "0", "ls", "/"}).status == 0);
        CHECK(fleet.logins(host) == logins + 2);
        CHECK(kept(home)[0]["pid"] == pid);
    }

    SUBCASE("disconnect HOST closes it; the next call logs in again") {
        const auto r = run_cli(home, {"disconnect", fleet.destination(host)});
        CHECK(r.status == 0);
        CHECK(r.out == "closed 1 connection\n");
        CHECK(kept(home).empty());
        bool gone = false;
        for (int i = 0; i < 100 && !gone; ++i) {
            gone = ::kill(pid, 0) != 0 || shannot::detail::process_start_time(pid).empty();
            if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        CHECK(gone);
        REQUIRE(run_cli(home, args + std::vector<std::string>{"ls", "/"}).status == 0);
        CHECK(fleet.logins(host) == logins + 2);
        CHECK(run_cli(home, {"disconnect", "--all"}).out == "closed 1 connection\n");
        CHECK(run_cli(home, {"disconnect", "--all"}).out == "closed 0 connections\n");
    }

    SUBCASE("a killed connection is noticed and replaced") {
        REQUIRE(::kill(pid, SIGKILL) == 0);
        for (int i = 0; i < 100 && !shannot::detail::process_start_time(pid).empty(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        const auto r = run_cli(home, args + std::vector<std::string>{"ls", "/"});
        CHECK(r.status == 0);
        CHECK(r.out.find("usr\n") != std::string::npos);
        list = kept(home);
        REQUIRE(list.size() == 1);
        CHECK(list[0]["pid"] != pid);
        CHECK(list[0]["alive"] == true);
        CHECK(fleet.logins(host) == logins + 2);
    }

    SUBCASE("bad uses are usage errors") {
        CHECK(run_cli(home, {"disconnect"}).status == 125);
        CHECK(run_cli(home, {"disconnect", "a", "--all"}).status == 125);
        CHECK(run_cli(home, args + std::vector<std::string>{"--persist", "soon", "ls"}).status == 125);
        CHECK(run_cli(home, {"--persist", "5", "ls", "/"}).status == 125);  // no remote host
    }
}

TEST_CASE("cli: hosts from an inventory (--inventory, --hosts) and from config groups (--target @GROUP)") {
    SHANNOT_REQUIRE_CLI();
    SHANNOT_REQUIRE_FLEET();
    const auto& fleet = *shannot_test::shared_fleet();
    TempDir home;
    const auto port = std::to_string(fleet.port());

    SUBCASE("an INI inventory with groups of groups and host variables, and a pattern") {
        write_file(home.path / "site.ini",
                   "[web]\nweb1 ansible_host=127.0.0.2\nweb2 ansible_host=127.0.0.3\nweb3 ansible_host=127.0.0.4\n"
                   "[db]\ndb1 ansible_host=127.0.0.5 ansible_port=" +
                       port +
                       "\n"
                       "[prod:children]\nweb\ndb\n[all:vars]\nansible_port=1\nansible_user=" +
                       shannot_test::SshdFixture::user() + "\nansible_ssh_private_key_file=" + fleet.key() +
                       "\n"
                       "[web:vars]\nansible_port=" +
                       port + "\n");
        const auto inventory = (home.path / "site.ini").string();
        const auto r = run_cli(home, {"--inventory", inventory, "--hosts", "prod:!web2", "--known-hosts",
                                      fleet.known_hosts(), "--json", "ls", "/"});
        CHECK(r.status == 0);
        const auto hosts = by_host(r.out);
        CHECK(hosts.size() == 3);
        for (const char* h : {"web1", "web3", "db1"}) CHECK(hosts.at(h)["exit_code"] == 0);
        // Control: all:vars' port 1 (nothing listens) is what db1 would get without its own.
        write_file(home.path / "nodb.ini", "[db]\ndb1 ansible_host=127.0.0.5\n[all:vars]\nansible_port=1\n");
        CHECK(run_cli(home,
                      {"--inventory", (home.path / "nodb.ini").string(), "--hosts", "db", "-i", fleet.key(), "ls", "/"})
                  .status == 123);

        const auto none = run_cli(home, {"--inventory", inventory, "--hosts", "web:!webb", "ls", "/"});
        CHECK(none.status == 125);
        CHECK(none.err.find("'webb'") != std::string::npos);
    }

    SUBCASE("the JSON form") {
        write_file(
            home.path / "inv.json",
            json{{"_meta",
                  {{"hostvars", {{"a", {{"ansible_host", "127.0.0.6"}}}, {"b", {{"ansible_host", "127.0.0.7"}}}}}}},
                 {"all", {{"children", {"ungrouped", "apps"}}}},
                 {"apps", {{"hosts", {"a", "b"}}, {"vars", {{"ansible_port", fleet.port()}}}}}}
                .dump(2));
        const auto r = run_cli(home, {"--inventory", (home.path / "inv.json").string(), "--hosts", "apps", "-i",
                                      fleet.key(), "--known-hosts", fleet.known_hosts(), "--json", "ls", "/"});
        CHECK(r.status == 0);
        CHECK(by_host(r.out).size() == 2);
    }

    SUBCASE("a bad inventory: status 122, the file and the line") {
        write_file(home.path / "bad.ini", "[web]\nweb1\n\n[web:childs]\n");
        const auto r = run_cli(home, {"--inventory", (home.path / "bad.ini").string(), "--hosts", "all", "ls"});
        CHECK(r.status == 122);
        CHECK(r.err.find((home.path / "bad.ini").string() + ":4: invalid section") != std::string::npos);
        CHECK(run_cli(home, {"--hosts", "all", "ls"}).status == 125);
        CHECK(run_cli(home, {"--inventory", (home.path / "bad.ini").string(), "ls"}).status == 125);
    }

    SUBCASE("--target with remote names and @groups") {
        for (std::size_t i = 8; i < 12; ++i)
            REQUIRE(run_cli(home, {"remote", "add", "r" + std::to_string(i), fleet.destination(i), "--key", fleet.key(),
                                   "--known-hosts", fleet.known_hosts()})
                        .status == 0);
        REQUIRE(run_cli(home, {"remote", "group", "pair", "r8", "r9"}).status == 0);
        REQUIRE(run_cli(home, {"remote", "group", "most", "@pair", "r10"}).status == 0);
        CHECK(run_cli(home, {"remote", "group", "bad", "r99"}).status == 125);
        CHECK(run_cli(home, {"remote", "group", "loop", "@loop"}).status == 125);
        const auto r = run_cli(home, {"--target", "@most,r11,r8", "--json", "ls", "/"});
        CHECK(r.status == 0);
        const auto hosts = by_host(r.out);
        CHECK(hosts.size() == 4);  // r8 once
        for (const char* h : {"r8", "r9", "r10", "r11"}) CHECK(hosts.count(h) == 1);
        CHECK(run_cli(home, {"--target", "@nope", "ls"}).status == 122);
        CHECK(run_cli(home, {"remote", "list"}).out.find("@most  @pair, r10\n") != std::string::npos);
        CHECK(run_cli(home, {"remote", "ungroup", "pair"}).status == 125);  // still in "most"
        CHECK(run_cli(home, {"remote", "ungroup", "most"}).status == 0);
    }
}

#endif  // SHANNOT_SINGLE_INCLUDE_HPP
