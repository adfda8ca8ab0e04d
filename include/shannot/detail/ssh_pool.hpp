// SPDX-License-Identifier: MIT
// SshMasterPool: a bounded set of ssh ControlMaster connections to one host, in a private 0700 folder.
#pragma once

#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <shannot/detail/spawn.hpp>
#include <shannot/error.hpp>
#include <shannot/ssh_options.hpp>

namespace shannot::detail {

/// Maps ssh's own diagnostics (not the command's output) to an error code.
[[nodiscard]] inline errc classify_ssh_failure(std::string_view text) {
    auto has = [&](std::string_view s) { return text.find(s) != std::string_view::npos; };
    if (has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("No ED25519 host key is known") ||
        has("host key for") )
        return errc::host_key_mismatch;
    if (has("Permission denied") || has("Too many authentication failures")) return errc::authentication_failed;
    if (has("Connection refused") || has("Connection timed out") || has("No route to host") ||
        has("Could not resolve hostname") || has("Network is unreachable") || has("Connection closed by") ||
        has("kex_exchange_identification"))
        return errc::connection_failed;
    return errc::transport_error;
}

[[nodiscard]] inline std::string last_line(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    const auto nl = text.rfind('\n');
    return nl == std::string::npos ? text : text.substr(nl + 1);
}

class SshMasterPool {
public:
    explicit SshMasterPool(SshConnection connection) : conn_(std::move(connection)) {}
    SshMasterPool(const SshMasterPool&) = delete;
    SshMasterPool& operator=(const SshMasterPool&) = delete;
    ~SshMasterPool() { close(); }

    [[nodiscard]] const SshConnection& connection() const noexcept { return conn_; }

    /// A master with a free session slot: its ControlPath and index. Starts or replaces masters
    /// as needed (a dead one is noticed through its pidfd); waits while all slots are busy.
    [[nodiscard]] Result<std::pair<std::size_t, std::string>> acquire() {
        std::unique_lock lock(mutex_);
        if (closed_) return fail(errc::session_closed, "the ssh transport was closed");
        if (dir_.empty()) {
            char templ[] = "/tmp/shannot-ssh-XXXXXX";  // mkdtemp makes it 0700
            if (!::mkdtemp(templ)) return fail(errc::io_error, std::string("cannot create a private ssh folder: ") + std::strerror(errno));
            dir_ = templ;
        }
        while (true) {
            std::size_t best = masters_.size();
            for (std::size_t i = 0; i < masters_.size(); ++i) {
                auto& m = masters_[i];
                if (!m.child.pidfd || !m.ready) continue;
                if (exited(m)) {
                    if (m.active == 0) stop(m);
                    continue;
                }
                if (m.active < conn_.sessions_per_connection && (best == masters_.size() || m.active < masters_[best].active))
                    best = i;
            }
            if (best < masters_.size() && (masters_[best].active == 0 || live_count() >= conn_.max_connections)) {
                ++masters_[best].active;
                return std::pair{best, masters_[best].socket};
            }
            if (live_count() < conn_.max_connections) {
                std::size_t slot = masters_.size();
                for (std::size_t i = 0; i < masters_.size(); ++i)
                    if (!masters_[i].child.pidfd && masters_[i].active == 0) slot = i;
                if (slot == masters_.size()) masters_.emplace_back();
                auto started = start(slot, lock);
                if (!started) return tl::make_unexpected(std::move(started.error()));
                continue;
            }
            if (best < masters_.size()) {
                ++masters_[best].active;
                return std::pair{best, masters_[best].socket};
            }
            cv_.wait(lock);
            if (closed_) return fail(errc::session_closed, "the ssh transport was closed");
        }
    }

    void release(std::size_t index) {
        std::lock_guard lock(mutex_);
        if (index < masters_.size() && masters_[index].active > 0) --masters_[index].active;
        cv_.notify_all();
    }

    /// Ends every master and removes every socket, log and the folder.
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        for (auto& m : masters_) stop(m);
        masters_.clear();
        if (!dir_.empty()) ::rmdir(dir_.c_str());
        dir_.clear();
        cv_.notify_all();
    }

    /// Number of master ssh processes alive now (for tests and monitoring).
    [[nodiscard]] std::size_t connections() {
        std::lock_guard lock(mutex_);
        return live_count();
    }

private:
    struct Master {
        Child child;
        std::string socket, log;
        std::size_t active = 0;
        bool ready = false;  ///< listening on its socket (a master being started is not)
    };

    std::size_t live_count() const {
        std::size_t n = 0;
        for (const auto& m : masters_) n += m.child.pidfd ? 1 : 0;
        return n;
    }

    static bool exited(const Master& m) {
        pollfd p{m.child.pidfd.get(), POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;
    }

    void stop(Master& m) {
        if (m.child.pidfd) {
            pidfd_send_signal(m.child.pidfd.get(), SIGTERM);
            int status = 0;
            while (::waitpid(m.child.pid, &status, 0) < 0 && errno == EINTR) {
            }
            m.child = Child{};
        }
        m.ready = false;
        if (!m.socket.empty()) ::unlink(m.socket.c_str());
        if (!m.log.empty()) ::unlink(m.log.c_str());
    }

    Result<void> start(std::size_t slot, std::unique_lock<std::mutex>& lock) {
        auto& m = masters_[slot];
        stop(m);
        m.socket = dir_ + "/m" + std::to_string(slot);
        m.log = dir_ + "/m" + std::to_string(slot) + ".log";
        ::unlink(m.log.c_str());
        ChildSpec spec;
        spec.argv = {conn_.ssh_binary, "-M", "-S", m.socket, "-N", "-o", "ControlPersist=no"};
        for (auto& a : ssh_base_options(conn_)) spec.argv.push_back(std::move(a));
        spec.argv.insert(spec.argv.end(), {"--", ssh_destination(conn_)});
        spec.log_file = m.log;
        auto child = spawn_child(spec);
        if (!child) return tl::make_unexpected(std::move(child.error()));
        m.child = std::move(*child);
        // Wait, unlocked, until the master listens on its socket or gives up.
        const auto socket = m.socket;
        const int pidfd = m.child.pidfd.get();
        const auto deadline = std::chrono::steady_clock::now() + conn_.connect_timeout + std::chrono::seconds(5);
        lock.unlock();
        bool ready = false, died = false;
        while (std::chrono::steady_clock::now() < deadline) {
            struct stat st {};
            if (::stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
                ready = true;
                break;
            }
            pollfd p{pidfd, POLLIN, 0};
            if (::poll(&p, 1, 10) > 0) {
                died = true;
                break;
            }
        }
        lock.lock();
        auto& again = masters_[slot];
        if (ready) {
            again.ready = true;
            return {};
        }
        std::ifstream log_file(again.log);
        std::stringstream text;
        text << log_file.rdbuf();
        const std::string diagnostics = text.str();
        stop(again);
        const std::string where = ssh_destination(conn_) + ":" + std::to_string(conn_.port);
        if (!died) return fail(errc::connection_failed, "ssh to " + where + " did not connect within " +
                                                            std::to_string(conn_.connect_timeout.count()) + " s");
        return fail(classify_ssh_failure(diagnostics), "ssh to " + where + " failed: " + last_line(diagnostics));
    }

    SshConnection conn_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<Master> masters_;
    std::string dir_;
    bool closed_ = false;
};

}  // namespace shannot::detail
