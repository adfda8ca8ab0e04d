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
#include <string>
#include <thread>
#include <vector>

#include "sshd_fixture.hpp"

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
            return std::system(("ssh-keygen -q -t ed25519 -N '' -f '" + (dir_ / name).string() + "' </dev/null").c_str()) == 0;
        };
        if (!keygen("host_key") || !keygen("client_key")) {
            error_ = "ssh-keygen failed";
            return;
        }
        std::filesystem::copy_file(dir_ / "client_key.pub", dir_ / "authorized_keys");
        if (home_kind_ == Home::empty) std::filesystem::create_directories(dir_ / "home");
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
                error_ = "sshd did not accept connections on " + address(i) + " within 5 s: " + read_text(dir_ / "sshd0.log");
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
    /// How many logins host i accepted so far (from its sshd's log).
    [[nodiscard]] std::size_t logins(std::size_t i) const {
        const auto text = read_text(dir_ / ("sshd" + std::to_string(i / 16) + ".log"));
        // sshd logs "Connection from A port P on ADDRESS port N" and then, for that connection's
        // process, "Accepted publickey"; count connections to this address that logged in.
        const std::string on = " on " + address(i) + " port " + std::to_string(port_);
        std::size_t count = 0;
        std::size_t at = 0;
        while ((at = text.find(on, at)) != std::string::npos) {
            const auto line_start = text.rfind('\n', at);
            const auto pid_end = text.find(']', line_start == std::string::npos ? 0 : line_start);
            const auto pid_start = text.rfind('[', pid_end);
            const auto pid = text.substr(pid_start + 1, pid_end - pid_start - 1);
            if (text.find("sshd[" + pid + "]: Accepted publickey", at) != std::string::npos) ++count;
            at += on.size();
        }
        return count;
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
        c << "Port " << port_ << "\nHostKey " << (dir_ / "host_key").string() << "\nPidFile " << (dir_ / ("sshd" + k + ".pid")).string()
          << "\nAuthorizedKeysFile " << (dir_ / "authorized_keys").string()
          << "\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
             "PermitRootLogin prohibit-password\nMaxSessions 64\nMaxStartups 256:30:512\nLogLevel VERBOSE\n";
        if (home_kind_ == Home::empty) c << "SetEnv HOME=" << (dir_ / "home").string() << "\n";
        c.close();
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::setsid();
            const std::string conf = config.string(), log = (dir_ / ("sshd" + k + ".log")).string();
            ::execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-f", conf.c_str(), "-E", log.c_str(), static_cast<char*>(nullptr));
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

}  // namespace shannot_test
