// SPDX-License-Identifier: MIT
// A fleet on one machine: private sshds on loopback addresses 127.0.0.2 and up, 16 addresses each.
#pragma once

#include <shannot/shannot.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sshd_fixture.hpp"

#include <doctest/doctest.h>

namespace shannot_test {

/// A port free on 127.0.0.2 (every address of the fleet uses the same one).
inline int free_fleet_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(0x7f000002);
    ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(s);
    return ntohs(addr.sin_port);
}

inline bool address_accepts(const std::string& address, int port) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, address.c_str(), &addr.sin_addr);
    const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(s);
    return ok;
}

/// `hosts` hosts, 127.0.0.2 upwards on one port: one sshd per 16 addresses (OpenSSH's
/// MAX_LISTEN_SOCKS), with MaxStartups and MaxSessions raised for fan-out, one host key and one
/// client key for all, a known_hosts line per address, and LogLevel VERBOSE so the logs show each
/// connection ("Connection from ... on 127.0.0.N") and login ("Accepted publickey"). Every sshd
/// (and every session it serves) is killed on destruction.
///
/// Home::empty (tests): each address's logins get an empty HOME and a PATH whose first folder
/// holds a `bwrap` of that host's own, which runs the real one after printing a line when the
/// command holds the word `show-host` ("host-I", I the host's index) or `show-group`
/// ("group-I%3"). All hosts share this machine's files, so this is how a test tells the hosts'
/// outputs apart (and makes some alike) with the same command; the sandbox is the real one.
class FleetSshd {
public:
    using Home = SshdFixture::Home;
    explicit FleetSshd(std::size_t hosts, Home home = Home::empty) : hosts_(hosts), home_kind_(home) {
        char templ[] = "/tmp/shannot-fleet-XXXXXX";
        if (!::mkdtemp(templ)) {
            error_ = "mkdtemp failed";
            return;
        }
        dir_ = templ;
        ::mkdir("/run/sshd", 0755);
        const auto keygen = [&](const char* name) {
            return std::system(
                       ("ssh-keygen -q -t ed25519 -N '' -f '" + (dir_ / name).string() + "' </dev/null").c_str()) == 0;
        };
        if (!keygen("host_key") || !keygen("client_key")) {
            error_ = "ssh-keygen failed";
            return;
        }
        std::filesystem::copy_file(dir_ / "client_key.pub", dir_ / "authorized_keys");
        if (home_kind_ == Home::empty) {
            std::filesystem::create_directories(dir_ / "home");
            std::string real = "/usr/bin/bwrap";
            for (const char* d : {"/usr/local/bin/bwrap", "/usr/bin/bwrap", "/bin/bwrap"})
                if (::access(d, X_OK) == 0) {
                    real = d;
                    break;
                }
            for (std::size_t i = 0; i < hosts_; ++i) {
                const auto bin = dir_ / ("bin" + std::to_string(i));
                std::filesystem::create_directories(bin);
                std::ofstream(bin / "bwrap")
                    << "#!/bin/sh\ncase \" $* \" in\n*\" show-host \"*) echo host-" << i
                    << " ;;\n*\" show-group \"*) echo group-" << i % 3 << " ;;\nesac\nexec " << real << " \"$@\"\n";
                ::chmod((bin / "bwrap").c_str(), 0755);
            }
        }
        port_ = free_fleet_port();
        const auto key = read_text(dir_ / "host_key.pub");
        std::ofstream known(dir_ / "known_hosts");
        for (std::size_t i = 0; i < hosts_; ++i) known << "[" << address(i) << "]:" << port_ << " " << key;
        known.close();
        for (std::size_t first = 0; first < hosts_; first += 16)
            if (!start_one(first, std::min<std::size_t>(hosts_, first + 16))) return;
        for (std::size_t i = 0; i < hosts_; ++i) {
            bool up = false;
            for (int k = 0; k < 200 && !up; ++k) {
                up = address_accepts(address(i), port_);
                if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(25));
            }
            if (!up) {
                error_ = "sshd did not accept connections on " + address(i) +
                         " within 5 s: " + read_text(dir_ / "sshd0.log");
                stop();
                return;
            }
        }
    }
    FleetSshd(const FleetSshd&) = delete;
    FleetSshd& operator=(const FleetSshd&) = delete;
    ~FleetSshd() {
        stop();
        std::error_code ec;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    }

    [[nodiscard]] bool running() const { return !pids_.empty() && error_.empty(); }
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] std::size_t size() const { return hosts_; }
    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] std::filesystem::path dir() const { return dir_; }
    /// Host i's address: 127.0.0.(2+i).
    [[nodiscard]] static std::string address(std::size_t i) { return "127.0.0." + std::to_string(2 + i); }
    /// Host i as --ssh takes it: USER@127.0.0.N:PORT.
    [[nodiscard]] std::string destination(std::size_t i) const {
        return SshdFixture::user() + "@" + address(i) + ":" + std::to_string(port_);
    }
    [[nodiscard]] std::string key() const { return (dir_ / "client_key").string(); }
    [[nodiscard]] std::string known_hosts() const { return (dir_ / "known_hosts").string(); }

    [[nodiscard]] shannot::SshConnection connection(std::size_t i) const {
        shannot::SshConnection c;
        c.host = address(i);
        c.user = SshdFixture::user();
        c.port = static_cast<std::uint16_t>(port_);
        c.identity_file = key();
        c.known_hosts_file = known_hosts();
        c.connect_timeout = std::chrono::seconds(5);
        return c;
    }
    [[nodiscard]] std::vector<shannot::FleetHost> fleet_hosts() const {
        std::vector<shannot::FleetHost> out;
        for (std::size_t i = 0; i < hosts_; ++i) out.push_back({destination(i), connection(i)});
        return out;
    }

    /// Every sshd's log, concatenated.
    [[nodiscard]] std::string logs() const {
        std::string all;
        for (std::size_t k = 0; k < pids_.size(); ++k) all += read_text(dir_ / ("sshd" + std::to_string(k) + ".log"));
        return all;
    }
    /// How many logins host i accepted so far, from its sshd's log: connections to its address
    /// ("Connection from 127.0.0.1 port P on ADDRESS port N") whose client port P then logged in
    /// ("Accepted publickey for USER from 127.0.0.1 port P ").
    [[nodiscard]] std::size_t logins(std::size_t i) const {
        const auto text = read_text(dir_ / ("sshd" + std::to_string(i / 16) + ".log"));
        const std::string on = " on " + address(i) + " port " + std::to_string(port_) + " ";
        std::size_t count = 0;
        for (std::size_t at = text.find(on); at != std::string::npos; at = text.find(on, at + on.size())) {
            const auto line = text.rfind('\n', at) + 1;      // npos + 1 == 0: the first line
            const auto from = text.substr(line, at - line);  // "Connection from 127.0.0.1 port P"
            const auto port_at = from.rfind(" port ");
            if (from.rfind("Connection from ", 0) != 0 || port_at == std::string::npos) continue;
            const auto client = from.substr(16, port_at - 16) + " port " + from.substr(port_at + 6);
            const auto accepted = text.find("Accepted publickey for ", at);
            const auto next = text.find("Connection from " + client + " ", at + on.size());
            for (auto a = accepted; a != std::string::npos && (next == std::string::npos || a < next);
                 a = text.find("Accepted publickey for ", a + 1)) {
                const auto eol = text.find('\n', a);
                if (text.substr(a, eol - a).find(" from " + client + " ") != std::string::npos) {
                    ++count;
                    break;
                }
            }
        }
        return count;
    }

    /// A known_hosts file like known_hosts() but holding another key for host i, as if its
    /// host key had changed: ssh must refuse that host, and only it, with this file.
    [[nodiscard]] std::string known_hosts_changing(std::size_t i) const {
        const auto other = dir_ / "other_key";
        if (!std::filesystem::exists(other))
            REQUIRE(std::system(("ssh-keygen -q -t ed25519 -N '' -f '" + other.string() + "' </dev/null").c_str()) ==
                    0);
        const auto key = read_text(dir_ / "host_key.pub"), wrong = read_text(dir_ / "other_key.pub");
        const auto file = dir_ / ("known_hosts_changing_" + std::to_string(i));
        std::ofstream known(file);
        for (std::size_t k = 0; k < hosts_; ++k)
            known << "[" << address(k) << "]:" << port_ << " " << (k == i ? wrong : key);
        return file.string();
    }

    /// Stops every sshd and whatever its sessions still run.
    void stop() {
        for (const pid_t pid : pids_) {
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            int status = 0;
            ::waitpid(pid, &status, 0);
        }
        pids_.clear();
    }

private:
    bool start_one(std::size_t first, std::size_t end) {
        const auto k = std::to_string(pids_.size());
        const auto config = dir_ / ("sshd" + k + "_config");
        std::ofstream c(config);
        for (std::size_t i = first; i < end; ++i) c << "ListenAddress " << address(i) << "\n";
        c << "Port " << port_ << "\nHostKey " << (dir_ / "host_key").string() << "\nPidFile "
          << (dir_ / ("sshd" + k + ".pid")).string() << "\nAuthorizedKeysFile " << (dir_ / "authorized_keys").string()
          << "\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
             "PermitRootLogin prohibit-password\nMaxSessions 64\nMaxStartups 256:30:512\nLogLevel VERBOSE\n";
        if (home_kind_ == Home::empty)
            for (std::size_t i = first; i < end; ++i)
                c << "Match LocalAddress " << address(i) << "\n  SetEnv HOME=" << (dir_ / "home").string()
                  << " PATH=" << (dir_ / ("bin" + std::to_string(i))).string() << ":/usr/local/bin:/usr/bin:/bin\n";
        c.close();
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::setsid();
            const std::string conf = config.string(), log = (dir_ / ("sshd" + k + ".log")).string();
            ::execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-f", conf.c_str(), "-E", log.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        if (pid < 0) {
            error_ = "fork failed";
            return false;
        }
        pids_.push_back(pid);
        return true;
    }

    std::size_t hosts_;
    Home home_kind_;
    std::filesystem::path dir_;
    std::string error_;
    int port_ = 0;
    std::vector<pid_t> pids_;
};

/// The fleet of the test binary (24 hosts), started on first use; nullptr when it cannot start.
inline FleetSshd* shared_fleet() {
    static std::unique_ptr<FleetSshd> fleet = [] {
        auto f = std::make_unique<FleetSshd>(24);
        if (!f->running()) MESSAGE("fleet of sshds unavailable: " << f->error());
        return f;
    }();
    return fleet->running() ? fleet.get() : nullptr;
}

/// Processes whose command line is exactly `argv` (NULs between words), from /proc.
inline std::vector<int> processes_running(const std::vector<std::string>& argv) {
    std::string want;
    for (const auto& a : argv) want += a + '\0';
    std::vector<int> found;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (name.empty() || name[0] < '0' || name[0] > '9') continue;
        if (read_proc_file((entry.path() / "cmdline").string()) == want) found.push_back(std::stoi(name));
    }
    return found;
}

}  // namespace shannot_test

/// Skips when the fleet cannot run here, except under CI=true, where that is a failure.
#define SHANNOT_REQUIRE_FLEET()                                                                   \
    do {                                                                                          \
        SHANNOT_REQUIRE_BWRAP();                                                                  \
        if (!shannot_test::shared_fleet()) {                                                      \
            if (shannot_test::in_ci()) FAIL("the fleet of sshds could not be started (CI=true)"); \
            MESSAGE("skipped: the fleet of sshds could not be started");                          \
            return;                                                                               \
        }                                                                                         \
    } while (0)
