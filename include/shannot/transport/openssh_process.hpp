// SPDX-License-Identifier: MIT
// OpenSshProcessTransport: runs bwrap on a remote host through the system ssh, over reused connections.
#pragma once

#include <sys/random.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/frame_filter.hpp>
#include <shannot/detail/shell_quote.hpp>
#include <shannot/detail/spawn.hpp>
#include <shannot/detail/ssh_pool.hpp>
#include <shannot/detail/ssh_wrapper.hpp>
#include <shannot/error.hpp>
#include <shannot/process_result.hpp>
#include <shannot/ssh_options.hpp>

namespace shannot {

namespace detail {

/// 128 random bits as hex: the per-run marker of the wrapper's frames.
[[nodiscard]] inline std::string random_marker() {
    unsigned char bytes[16] = {};
    std::size_t got = 0;
    while (got < sizeof bytes) {
        const auto n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n > 0) got += static_cast<std::size_t>(n);
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "shannot-";
    for (auto b : bytes) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

/// The local ssh client of one run. Strips the wrapper's frames from stderr and turns them,
/// or ssh's own failure, into ExitInfo. Returns its session slot to the pool when done.
class SshProcess {
public:
    SshProcess(Child child, std::vector<std::string> argv, std::string marker, std::shared_ptr<SshMasterPool> pool,
               std::size_t slot)
        : child_(std::move(child)), argv_(std::move(argv)), frames_(std::move(marker)), pool_(std::move(pool)), slot_(slot) {}
    SshProcess(SshProcess&& other) noexcept
        : child_(std::move(other.child_)), argv_(std::move(other.argv_)), frames_(std::move(other.frames_)),
          pool_(std::move(other.pool_)), slot_(other.slot_), ssh_errors_(std::move(other.ssh_errors_)) {
        other.child_.pid = -1;
    }
    SshProcess& operator=(SshProcess&& other) noexcept {
        if (this != &other) {
            finish();
            child_ = std::move(other.child_);
            other.child_.pid = -1;
            argv_ = std::move(other.argv_);
            frames_ = std::move(other.frames_);
            pool_ = std::move(other.pool_);
            slot_ = other.slot_;
            ssh_errors_ = std::move(other.ssh_errors_);
        }
        return *this;
    }
    ~SshProcess() { finish(); }

    [[nodiscard]] int stdin_fd() const { return child_.in.get(); }
    [[nodiscard]] int stdout_fd() const { return child_.out.get(); }
    [[nodiscard]] int stderr_fd() const { return child_.err.get(); }
    [[nodiscard]] int exit_fd() const { return child_.pidfd.get(); }
    [[nodiscard]] const std::vector<std::string>& argv() const { return argv_; }
    void close_stdin() { child_.in.reset(); }
    /// Ending the local client closes the channel; the remote wrapper's next heartbeat fails and
    /// it kills the sandbox there.
    void terminate() { signal(SIGTERM); }
    void kill() { signal(SIGKILL); }

    void filter_output(StreamKind kind, std::string_view in, std::string& out) {
        if (kind == StreamKind::out) {
            out.append(in);
            return;
        }
        const auto before = out.size();
        frames_.feed(in, out);
        keep_tail(std::string_view(out).substr(before));
    }
    void finish_output(StreamKind kind, std::string& out) {
        if (kind != StreamKind::err) return;
        const auto before = out.size();
        frames_.finish(out);
        keep_tail(std::string_view(out).substr(before));
    }

    ExitInfo wait() {
        int status = 0;
        while (child_.pid > 0 && ::waitpid(child_.pid, &status, 0) < 0 && errno == EINTR) {
        }
        child_.pid = -1;
        ExitInfo info;
        for (const auto& payload : frames_.payloads()) {
            if (payload == "nobwrap") {
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::remote_bwrap_missing;
                info.detail = "bwrap is not installed on the remote host (or not on its PATH): install bubblewrap there";
                return info;
            }
            if (payload == "noseccomp") {
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = errc::sandbox_setup_failed;
                info.detail = "the profile's seccomp_profile cannot be opened on the remote host";
                return info;
            }
            int code = -1, setup = 0;
            if (std::sscanf(payload.c_str(), "exit %d %d", &code, &setup) == 2) {
                if (setup == 1 || code == 0) {
                    info.exit_code = code;
                    return info;
                }
                info.kind = ExitInfo::Kind::setup_failed;
                info.exit_code = code;
                info.error = errc::sandbox_setup_failed;
                info.detail = "bwrap on the remote host exited with status " + std::to_string(code) +
                              " before running the command (a mount failed, or the command could not be executed)";
                return info;
            }
        }
        if (WIFSIGNALED(status)) {  // we stopped it (timeout or cancel)
            info.kind = ExitInfo::Kind::signaled;
            info.signal = WTERMSIG(status);
            return info;
        }
        // No report from the wrapper: ssh itself failed, or the connection dropped mid-run.
        info.kind = ExitInfo::Kind::transport_failed;
        info.error = classify_ssh_failure(ssh_errors_);
        const auto line = last_line(ssh_errors_);
        info.detail = "ssh exited with status " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                      (line.empty() ? std::string(" without a report from the remote host (connection lost?)") : ": " + line);
        ssh_errors_.clear();  // the message carries them; don't repeat as the stderr tail
        return info;
    }

private:
    /// Kills and reaps a client nobody waited for, and gives the session slot back.
    void finish() {
        if (child_.pid > 0) {
            kill();
            int status = 0;
            while (::waitpid(child_.pid, &status, 0) < 0 && errno == EINTR) {
            }
            child_.pid = -1;
        }
        if (pool_) pool_->release(slot_);
        pool_.reset();
    }
    void signal(int sig) {
        if (child_.pid > 0 && child_.pidfd) pidfd_send_signal(child_.pidfd.get(), sig);
    }
    void keep_tail(std::string_view text) {
        ssh_errors_.append(text);
        if (ssh_errors_.size() > 4096) ssh_errors_.erase(0, ssh_errors_.size() - 4096);
    }

    Child child_;
    std::vector<std::string> argv_;
    FrameFilter frames_;
    std::shared_ptr<SshMasterPool> pool_;
    std::size_t slot_;
    std::string ssh_errors_;
};

}  // namespace detail

/// The remote transport: bwrap runs on `SshConnection::host`, started by the system ssh over a
/// small pool of ControlMaster connections (one new connection costs ~0.2 s; a command on an
/// existing one, a few ms). Copies share the pool; the last copy's destruction closes it.
class OpenSshProcessTransport {
public:
    using process_type = detail::SshProcess;
    static constexpr std::string_view name = "ssh";
    static constexpr bool checks_local_paths = false;
    /// The remote wrapper opens the profile's seccomp file (a path on the remote) at fd 3.
    static constexpr int seccomp_fd = 3;
    /// Captured by the remote wrapper to tell setup failures from command failures.
    static constexpr int json_status_fd = 4;

    explicit OpenSshProcessTransport(SshConnection connection)
        : pool_(std::make_shared<detail::SshMasterPool>(std::move(connection))) {}

    [[nodiscard]] const SshConnection& connection() const noexcept { return pool_->connection(); }
    [[nodiscard]] std::optional<std::string> default_working_directory() const { return connection().working_directory; }
    /// Master connections alive now.
    [[nodiscard]] std::size_t connections() const { return pool_->connections(); }
    /// Ends every ssh process and removes every socket; later runs fail with errc::session_closed.
    void close() { pool_->close(); }

    [[nodiscard]] Result<process_type> launch(const LaunchSpec& spec) {
        const auto& conn = connection();
        if (auto ok = validate(conn); !ok) return tl::make_unexpected(std::move(ok.error()));
        auto slot = pool_->acquire();
        if (!slot) return tl::make_unexpected(std::move(slot.error()));
        const auto [index, socket] = *slot;

        const auto marker = detail::random_marker();
        long long timeout_s = 0;
        if (spec.timeout) timeout_s = (spec.timeout->count() + 999) / 1000 + 2;  // a backstop behind the local deadline
        std::vector<std::string> remote = {"sh", "-c", std::string(detail::ssh_wrapper_script), "shannot", marker,
                                           std::to_string(timeout_s), conn.remote_bwrap,
                                           spec.files.empty() ? std::string() : spec.files.front().path};
        remote.insert(remote.end(), spec.bwrap_args.begin(), spec.bwrap_args.end());

        detail::ChildSpec child_spec;
        child_spec.pipe_stdin = spec.pipe_stdin;
        child_spec.argv = {conn.ssh_binary, "-S", socket, "-o", "ControlMaster=no"};
        for (auto& a : ssh_base_options(conn)) child_spec.argv.push_back(std::move(a));
        child_spec.argv.insert(child_spec.argv.end(), {"--", ssh_destination(conn), detail::shell_join(remote)});
        auto child = detail::spawn_child(child_spec);
        if (!child) {
            pool_->release(index);
            return tl::make_unexpected(std::move(child.error()));
        }
        return process_type(std::move(*child), std::move(child_spec.argv), marker, pool_, index);
    }

private:
    std::shared_ptr<detail::SshMasterPool> pool_;
};

static_assert(Transport<OpenSshProcessTransport>);

}  // namespace shannot
