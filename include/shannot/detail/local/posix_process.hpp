// SPDX-License-Identifier: MIT
// The handle of one local bwrap process: its pipes, its pidfd, and how it ended.
#pragma once

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/local/limits.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/process.hpp>
#include <shannot/detail/posix/unique_fd.hpp>

namespace shannot::detail {

/// Reads a small integer sysctl; -1 when absent or unreadable.
inline long read_sysctl(const char* path) {
    std::FILE* f = std::fopen(path, "re");
    if (!f) return -1;
    long value = -1;
    if (std::fscanf(f, "%ld", &value) != 1) value = -1;
    std::fclose(f);
    return value;
}

/// Why bwrap could not create its namespaces, from the kernel's settings (not bwrap's wording).
/// Empty when nothing known forbids them.
inline std::string diagnose_namespaces() {
    if (read_sysctl("/proc/sys/user/max_user_namespaces") == 0)
        return "user namespaces are disabled (user.max_user_namespaces = 0): run `sysctl -w "
               "user.max_user_namespaces=15000`";
    if (::geteuid() != 0) {
        if (read_sysctl("/proc/sys/kernel/unprivileged_userns_clone") == 0)
            return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0): run "
                   "`sysctl -w kernel.unprivileged_userns_clone=1`";
        if (read_sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1)
            return "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = "
                   "1): "
                   "install an AppArmor profile allowing `userns` for bwrap, or run "
                   "`sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`";
    }
    return {};
}

/// Finds `"key": N` in bwrap's --json-status-fd lines; -1 when absent.
inline long status_field(std::string_view text, std::string_view key) {
    std::string quoted(1, '"');  // appended: g++ 12 -O3 warns (-Wrestrict) on "\"" + std::string
    quoted.append(key).push_back('"');
    const auto at = text.find(quoted);
    if (at == std::string_view::npos) return -1;
    auto pos = text.find(':', at + quoted.size());
    if (pos == std::string_view::npos) return -1;
    ++pos;
    while (pos < text.size() && text[pos] == ' ') ++pos;
    long value = 0;
    bool digits = false;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        value = value * 10 + (text[pos++] - '0');
        digits = true;
    }
    return digits ? value : -1;
}

/// A bwrap process started by PosixSpawnTransport. Move-only; the destructor kills and reaps
/// a process nobody waited for, so no zombie and no descriptor outlives the handle.
/// A template only to defer its compilation to where it is used (see BasicPosixSpawnTransport).
template <class Deferred>
class PosixProcess {
public:
    PosixProcess(pid_t pid, UniqueFd pidfd, UniqueFd in, UniqueFd out, UniqueFd err, UniqueFd status,
                 std::vector<std::string> argv)
        : pid_(pid),
          pidfd_(std::move(pidfd)),
          in_(std::move(in)),
          out_(std::move(out)),
          err_(std::move(err)),
          status_(std::move(status)),
          argv_(std::move(argv)) {}
    PosixProcess(PosixProcess&& other) noexcept
        : pid_(std::exchange(other.pid_, -1)),
          pidfd_(std::move(other.pidfd_)),
          in_(std::move(other.in_)),
          out_(std::move(other.out_)),
          err_(std::move(other.err_)),
          status_(std::move(other.status_)),
          argv_(std::move(other.argv_)),
          status_text_(std::move(other.status_text_)),
          sandbox_pidfd_(std::move(other.sandbox_pidfd_)),
          setup_children_(std::move(other.setup_children_)),
          slot_(std::move(other.slot_)),
          cgroup_(std::move(other.cgroup_)),
          mechanism_(other.mechanism_),
          processes_hit_(other.processes_hit_) {}
    PosixProcess& operator=(PosixProcess&& other) noexcept {
        if (this != &other) {
            reap_if_running();
            pid_ = std::exchange(other.pid_, -1);
            pidfd_ = std::move(other.pidfd_);
            in_ = std::move(other.in_);
            out_ = std::move(other.out_);
            err_ = std::move(other.err_);
            status_ = std::move(other.status_);
            argv_ = std::move(other.argv_);
            status_text_ = std::move(other.status_text_);
            sandbox_pidfd_ = std::move(other.sandbox_pidfd_);
            setup_children_ = std::move(other.setup_children_);
            slot_ = std::move(other.slot_);
            cgroup_ = std::move(other.cgroup_);
            mechanism_ = other.mechanism_;
            processes_hit_ = other.processes_hit_;
        }
        return *this;
    }
    ~PosixProcess() { reap_if_running(); }

    [[nodiscard]] int stdin_fd() const { return in_.get(); }
    [[nodiscard]] int stdout_fd() const { return out_.get(); }
    [[nodiscard]] int stderr_fd() const { return err_.get(); }
    [[nodiscard]] int exit_fd() const { return pidfd_.get(); }
    [[nodiscard]] const std::vector<std::string>& argv() const { return argv_; }
    /// A spare sandbox's handle gets the argv of the run it serves (SpareSandbox).
    void set_argv(std::vector<std::string> argv) { argv_ = std::move(argv); }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    void close_stdin() { in_.reset(); }

    /// How this run's limits were enforced (a shannot::limits_mechanism value; empty: none set).
    [[nodiscard]] std::string_view limits_mechanism() const noexcept { return mechanism_; }
    /// Whether the run's pids cgroup refused a fork (known once wait() returned).
    [[nodiscard]] bool processes_limit_hit() const noexcept { return processes_hit_; }
    /// How many forks the pids cgroup has refused so far (a session's channel asks per command).
    [[nodiscard]] std::uint64_t processes_limit_events() const { return slot_.limit_events() + cgroup_.limit_events(); }

    /// Sets the run's limits on bwrap's sandbox process, which bwrap (--block-fd) holds, its
    /// mounts done, until `release` is written: waits for bwrap's first status line (the
    /// process exists then), sets its rlimits, and lets it go on. The process count: bwrap was
    /// born in `slot`'s pids cgroup (v1), or, with cgroup v2, bwrap and it are moved into one
    /// made for the run. A bwrap that fails before making it just exits (wait() reports how).
    /// Called once, by the transport, right after the spawn.
    [[nodiscard]] Result<void> apply_limits(const ResourceLimits& limits, UniqueFd release, bool in_own_user_namespace,
                                            typename CgroupSlots<Deferred>::Lease slot) {
        const auto deadline = Clock::now() + std::chrono::seconds(30);
        while (status_ && status_text_.find('\n') == std::string::npos) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
            if (left <= 0) return fail(errc::spawn_failed, "bwrap did not report its sandbox process within 30 s");
            pollfd p{status_.get(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left)) < 0 && errno != EINTR)
                return fail(errc::spawn_failed, std::string("poll: ") + std::strerror(errno));
            read_status();
        }
        mechanism_ = ::getuid() == 0 ? shannot::limits_mechanism::no_process_limit : shannot::limits_mechanism::rlimits;
        slot_ = std::move(slot);
        if (slot_) mechanism_ = shannot::limits_mechanism::cgroup_v1;
        const long child = status_field(status_text_, "child-pid");
        if (child > 0) {
            const auto sandbox = static_cast<pid_t>(child);
            UniqueFd fd(pidfd_open(sandbox));
            // Still bwrap's child, so the pid is the sandbox's (it waits for us, unless setup failed).
            if (fd && parent_of(sandbox) == pid_) {
                sandbox_pidfd_ = std::move(fd);
                if (const auto& parent = cgroup_parent<Deferred>(); parent && parent->version == 2) {
                    cgroup_ = RunCgroup::make(*parent, limits.processes);
                    if (cgroup_ && cgroup_.add(pid_) && cgroup_.add(sandbox))
                        mechanism_ = shannot::limits_mechanism::cgroup_v2;
                }
                if (auto ok = set_rlimits(sandbox, limits, in_own_user_namespace); !ok) return ok;
            }
        }
        [[maybe_unused]] const auto n = write_no_sigpipe(release.get(), "1", 1);  // fails only if bwrap is gone
        return {};
    }

    /// SIGTERM to bwrap: it dies (no handler), and --die-with-parent makes the kernel SIGKILL the
    /// sandbox's PID 1, which ends the whole pid namespace. PID 1 is signalled directly too.
    void terminate() { signal_all(SIGTERM); }
    void kill() { signal_all(SIGKILL); }

    /// Reaps bwrap and tells how the run ended, using bwrap's status lines, never its stderr.
    ExitInfo wait() {
        const int status = reap(pid_).value_or(0);
        read_status();
        // Killed runs: bwrap's death SIGKILLs the sandbox's PID 1 (--die-with-parent), an instant
        // later. Wait for it (bounded) so that nothing of the run is alive when the caller returns.
        // If it has not died with bwrap (it had not yet asked to), it is killed here: bwrap is gone.
        if (sandbox_pidfd_) setup_children_.push_back(std::move(sandbox_pidfd_));
        for (auto& child : setup_children_) {
            pidfd_send_signal(child.get(), SIGKILL);
            pollfd p{child.get(), POLLIN, 0};
            while (::poll(&p, 1, 3000) < 0 && errno == EINTR) {
            }
        }
        setup_children_.clear();
        processes_hit_ = processes_limit_events() > 0;
        slot_.release();
        cgroup_.remove();
        ExitInfo info;
        if (WIFSIGNALED(status)) {
            info.kind = ExitInfo::Kind::signaled;
            info.signal = WTERMSIG(status);
            return info;
        }
        const int code = WEXITSTATUS(status);
        const long reported = status_field(status_text_, "exit-code");
        if (reported >= 0 || code == 0) {
            info.exit_code = reported >= 0 ? static_cast<int>(reported) : code;
            return info;
        }
        // bwrap writes "exit-code" only once setup finished: without it, the command never ran.
        info.kind = ExitInfo::Kind::setup_failed;
        info.exit_code = code;
        if (status_field(status_text_, "child-pid") < 0) {
            if (auto why = diagnose_namespaces(); !why.empty()) {
                info.error = errc::sandbox_unavailable;
                info.detail = why;
                return info;
            }
        }
        info.error = errc::sandbox_setup_failed;
        info.detail = "bwrap exited with status " + std::to_string(code) +
                      " before running the command (a mount failed, or the command could not be executed)";
        return info;
    }

private:
    void read_status() {
        char buffer[512];
        while (status_) {
            const ssize_t n = ::read(status_.get(), buffer, sizeof buffer);
            if (n > 0) {
                if (status_text_.size() < 65536) status_text_.append(buffer, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n == 0) status_.reset();
            break;
        }
    }

    void signal_all(int sig) {
        if (pid_ <= 0) return;
        read_status();
        if (const long child = status_field(status_text_, "child-pid"); child > 0) {
            // Pin the process with a pidfd and check it is still bwrap's child before signalling,
            // so a recycled pid can never be hit.
            if (!sandbox_pidfd_) {
                UniqueFd fd(pidfd_open(static_cast<pid_t>(child)));
                if (fd && parent_of(static_cast<pid_t>(child)) == pid_) sandbox_pidfd_ = std::move(fd);
            }
            // bwrap first: signalled second, it could see its child die, exit with 128+sig and
            // report an "exit-code" before the signal lands (seen under ASan on a loaded machine).
            pidfd_send_signal(pidfd_.get(), sig);
            if (sandbox_pidfd_) pidfd_send_signal(sandbox_pidfd_.get(), sig);
            return;
        }
        // bwrap has not reported its child: it may be creating it right now, and a child that has
        // not yet asked to die with its parent (PR_SET_PDEATHSIG) would outlive a killed bwrap,
        // blocked in setup forever. Stop bwrap so its children are final, kill them, then signal it.
        const bool stopped = pidfd_send_signal(pidfd_.get(), SIGSTOP) == 0 && wait_stopped();
        if (stopped) {
            for (const pid_t child : children_of(pid_)) {
                UniqueFd fd(pidfd_open(child));
                if (fd && parent_of(child) == pid_) {
                    pidfd_send_signal(fd.get(), SIGKILL);
                    setup_children_.push_back(std::move(fd));
                }
            }
        }
        pidfd_send_signal(pidfd_.get(), sig);
        if (stopped) pidfd_send_signal(pidfd_.get(), SIGCONT);
    }

    /// Waits (bounded at 1 s) until bwrap is stopped or has exited, without reaping it.
    [[nodiscard]] bool wait_stopped() const {
        for (int i = 0; i < 1000; ++i) {
            siginfo_t info{};
            if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WSTOPPED | WEXITED | WNOWAIT | WNOHANG) == 0 &&
                info.si_pid == pid_)
                return true;
            ::usleep(1000);
        }
        return false;
    }

    /// Direct children of `parent`, from /proc/*/stat.
    static std::vector<pid_t> children_of(pid_t parent) {
        std::vector<pid_t> found;
        DIR* proc = ::opendir("/proc");
        if (!proc) return found;
        while (const dirent* e = ::readdir(proc)) {
            if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
            const auto pid = static_cast<pid_t>(std::atol(e->d_name));
            if (parent_of(pid) == parent) found.push_back(pid);
        }
        ::closedir(proc);
        return found;
    }

    static pid_t parent_of(pid_t pid) {
        const std::string path = "/proc/" + std::to_string(pid) + "/stat";
        std::FILE* f = std::fopen(path.c_str(), "re");
        if (!f) return -1;
        char buffer[1024];
        const std::size_t n = std::fread(buffer, 1, sizeof buffer - 1, f);
        std::fclose(f);
        buffer[n] = '\0';
        const char* close_paren = std::strrchr(buffer, ')');  // comm may contain spaces and parens
        if (!close_paren) return -1;
        char state = 0;
        int ppid = -1;
        return std::sscanf(close_paren + 1, " %c %d", &state, &ppid) == 2 ? ppid : -1;
    }

    void reap_if_running() {
        if (pid_ <= 0) return;
        kill();
        reap(pid_);
    }

    pid_t pid_;
    UniqueFd pidfd_, in_, out_, err_, status_;
    std::vector<std::string> argv_;
    std::string status_text_;
    UniqueFd sandbox_pidfd_;                        ///< the sandbox's PID 1, pinned once we signalled it
    std::vector<UniqueFd> setup_children_;          ///< bwrap's children killed during setup, to wait for
    typename CgroupSlots<Deferred>::Lease slot_{};  ///< the v1 pids cgroup bwrap was born in, if any
    RunCgroup cgroup_{};                            ///< the run's v2 pids cgroup, if one was made
    std::string_view mechanism_{};
    bool processes_hit_ = false;
};

}  // namespace shannot::detail
