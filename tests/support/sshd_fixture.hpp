// SPDX-License-Identifier: MIT
// A private sshd on 127.0.0.1 for the tests: own host key, own client key, a free port.
#pragma once

#include <doctest/doctest.h>
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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sandbox_env.hpp"

namespace shannot_test {

inline int free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(s);
    return ntohs(addr.sin_port);
}

inline bool port_accepts(int port) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(s);
    return ok;
}

inline std::string read_text(const std::filesystem::path& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

/// The command name of a process ("" when gone).
inline std::string comm_of(int pid) {
    auto text = read_text("/proc/" + std::to_string(pid) + "/comm");
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

/// Direct children of a process, from /proc/*/stat.
inline std::vector<int> children_of(int parent) {
    std::vector<int> found;
    for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
        const auto name = entry.path().filename().string();
        if (name.empty() || name[0] < '0' || name[0] > '9') continue;
        const auto stat = read_text(entry.path() / "stat");
        const auto close = stat.rfind(')');
        if (close == std::string::npos) continue;
        char state = 0;
        int ppid = 0;
        if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent)
            found.push_back(std::stoi(name));
    }
    return found;
}

/// One sshd process with everything it needs in a temporary folder, removed on destruction.
class SshdFixture {
public:
    /// Home::empty (tests) gives logins a HOME with no rc file, so they cost the same on every
    /// machine; Home::users (benchmarks) keeps the user's own, rc files and all,
    /// as a real remote login has them.
    enum class Home { empty, users };
    explicit SshdFixture(std::string extra_config = {}, Home home = Home::empty)
        : extra_config_(std::move(extra_config)), home_kind_(home) {
        char templ[] = "/tmp/shannot-sshd-XXXXXX";
        if (!::mkdtemp(templ)) return;
        dir_ = templ;
        ::mkdir("/run/sshd", 0755);
        const auto q = [](const std::filesystem::path& p) {  // appends: g++ 12 -O3 warns (-Wrestrict) on "'" + string
            std::string quoted(1, '\'');
            quoted.append(p.string()).push_back('\'');
            return quoted;
        };
        if (std::system(("ssh-keygen -q -t ed25519 -N '' -f " + q(dir_ / "host_key") + " </dev/null").c_str()) != 0 ||
            std::system(("ssh-keygen -q -t ed25519 -N '' -f " + q(dir_ / "client_key") + " </dev/null").c_str()) != 0) {
            error_ = "ssh-keygen failed";
            return;
        }
        std::filesystem::copy_file(dir_ / "client_key.pub", dir_ / "authorized_keys");
        start();
    }
    SshdFixture(const SshdFixture&) = delete;
    SshdFixture& operator=(const SshdFixture&) = delete;
    ~SshdFixture() {
        stop();
        std::error_code ec;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    }

    [[nodiscard]] bool running() const { return pid_ > 0; }
    [[nodiscard]] const std::string& error() const { return error_; }
    [[nodiscard]] int port() const { return port_; }
    [[nodiscard]] std::filesystem::path dir() const { return dir_; }

    /// Connection settings that reach this sshd as the current user with the test's key.
    [[nodiscard]] shannot::SshConnection connection() const {
        shannot::SshConnection c;
        c.host = "127.0.0.1";
        c.user = user();
        c.port = static_cast<std::uint16_t>(port_);
        c.identity_file = (dir_ / "client_key").string();
        c.known_hosts_file = (dir_ / "known_hosts").string();
        c.connect_timeout = std::chrono::seconds(5);
        return c;
    }

    static std::string user() {
        const char* u = std::getenv("USER");
        if (u && *u) return u;
        return ::geteuid() == 0 ? "root" : std::to_string(::geteuid());
    }

    /// The HOME of logins under Home::empty (empty until a test puts an rc file there).
    [[nodiscard]] std::filesystem::path home() const { return dir_ / "home"; }

    /// `config` with HOME=<our folder>/home set for logins: sshd takes only its first SetEnv
    /// line, so HOME joins the caller's, if any.
    [[nodiscard]] std::string with_home(const std::string& config) const {
        if (home_kind_ == Home::users) return config;
        const std::string home = "HOME=" + this->home().string();
        const auto at = config.rfind("SetEnv ", 0) == 0 ? 0 : config.find("\nSetEnv ");
        if (at == std::string::npos) return "SetEnv " + home + "\n" + config;
        const auto end = config.find('\n', at + 1);
        std::string result = config;
        result.insert(end == std::string::npos ? result.size() : end, " " + home);
        return result;
    }

    /// Starts sshd (again), on the same port when restarting.
    bool start() {
        if (port_ == 0) port_ = free_port();
        std::ofstream(dir_ / "sshd_config")
            << "ListenAddress 127.0.0.1\nPort " << port_ << "\nHostKey " << (dir_ / "host_key").string() << "\nPidFile "
            << (dir_ / "sshd.pid").string() << "\nAuthorizedKeysFile " << (dir_ / "authorized_keys").string()
            << "\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
               "StrictModes no\nPermitRootLogin prohibit-password\nMaxSessions 64\n"
               "MaxStartups 64:30:128\nLogLevel ERROR\n"
            // Home::empty: this machine's root ~/.bashrc runs
            // `pyenv init`, whose rehash lock serialises 16
            // concurrent logins past the 15 s a session may take
            // to start. The rc-file case has its own test.
            << with_home(extra_config_);
        if (home_kind_ == Home::empty) std::filesystem::create_directories(home());
        // Known hosts: the key this server presents, as ssh looks it up for a non-22 port.
        std::ofstream(dir_ / "known_hosts") << "[127.0.0.1]:" << port_ << " " << read_text(dir_ / "host_key.pub");
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::setsid();
            const std::string config = (dir_ / "sshd_config").string(), log = (dir_ / "sshd.log").string();
            ::execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-f", config.c_str(), "-E", log.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        pid_ = pid;
        for (int i = 0; i < 200; ++i) {
            if (port_accepts(port_)) return true;
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                error_ = "sshd exited: " + read_text(dir_ / "sshd.log");
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        error_ = "sshd did not accept connections within 5 s";
        stop();
        return false;
    }

    /// Stops sshd and every session it serves (its process group).
    void stop() {
        if (pid_ <= 0) return;
        ::kill(-pid_, SIGKILL);
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    /// What `pkill sshd` would do to this server: the listener and every per-connection sshd
    /// process die at once (the sessions' own shells are left to notice their closed pipes).
    void crash() {
        if (pid_ <= 0) return;
        std::vector<int> doomed{pid_};
        for (std::size_t i = 0; i < doomed.size(); ++i)
            for (int child : children_of(doomed[i])) doomed.push_back(child);
        for (int p : doomed)
            if (comm_of(p) == "sshd") ::kill(p, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    /// A new host key: clients that knew the old one must refuse the server now.
    void rotate_host_key() {
        std::filesystem::remove(dir_ / "host_key");
        std::filesystem::remove(dir_ / "host_key.pub");
        const auto cmd = "ssh-keygen -q -t ed25519 -N '' -f '" + (dir_ / "host_key").string() + "' </dev/null";
        REQUIRE(std::system(cmd.c_str()) == 0);
        const auto known = read_text(dir_ / "known_hosts");
        stop();
        start();
        std::ofstream(dir_ / "known_hosts") << known;  // keep the old key as the one clients trust
    }

private:
    std::filesystem::path dir_;
    std::string extra_config_;
    Home home_kind_ = Home::empty;
    std::string error_;
    int port_ = 0;
    pid_t pid_ = -1;
};

/// The shared sshd of the test binary, started on first use; nullptr when it cannot start.
inline SshdFixture* shared_sshd() {
    static std::unique_ptr<SshdFixture> sshd = [] {
        auto s = std::make_unique<SshdFixture>();
        if (!s->running()) MESSAGE("sshd unavailable: " << s->error());
        return s;
    }();
    return sshd->running() ? sshd.get() : nullptr;
}

}  // namespace shannot_test

/// Skips the test when no sshd can run here, except under CI=true, where that is a failure.
#define SHANNOT_REQUIRE_SSHD()                                                      \
    do {                                                                            \
        if (!shannot_test::shared_sshd()) {                                         \
            if (shannot_test::in_ci()) FAIL("sshd could not be started (CI=true)"); \
            MESSAGE("skipped: sshd could not be started");                          \
            return;                                                                 \
        }                                                                           \
    } while (0)
