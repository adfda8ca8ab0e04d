// SPDX-License-Identifier: MIT
// PosixSpawnTransport: runs bwrap on this host with posix_spawn, pipes and a pidfd.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/process.hpp>
#include <shannot/detail/posix/spawn_setup.hpp>
#include <shannot/detail/posix/unique_fd.hpp>
#include <shannot/error.hpp>
#include <shannot/fwd.hpp>
#include <shannot/platform.hpp>
#if SHANNOT_PLATFORM_LINUX
// Linux-only (pidfds of processes that are not our children, /proc). Last, and included nowhere
// else: the single header inlines them inside this block, their own includes before it.
#include <shannot/detail/local/limits.hpp>
#include <shannot/detail/local/posix_process.hpp>
#include <shannot/detail/local/spare_sandbox.hpp>
#include <shannot/detail/local/spawner_thread.hpp>
#include <shannot/detail/posix/data_fd.hpp>
#endif

namespace shannot {

struct PosixSpawnOptions {
    /// bwrap to run; when unset, the first `bwrap` on this process's PATH.
    std::optional<std::string> bwrap_path{};
    /// Keep a sandbox started ahead for the next run: after the first run, and after two runs in
    /// a row of the same shape (profile, options, limits; any command), the next sandbox of that
    /// shape is built in the background, its /bin/sh waiting for the command, and the run that comes then only hands
    /// it over (~1.3 against ~5 ms here, docs/performance.md B17). The sandbox is as fresh as
    /// one started on demand (never used before; its copies of small files are taken when it is
    /// built) and the command runs as its sandbox process, as it would have. Costs one idle
    /// sandbox (bwrap, its PID 1 and a shell) per transport, and a build per run. Off by default;
    /// `shannot mcp` turns it on. Needs /bin/sh in the sandbox: without it runs start fresh.
    bool spare_sandbox = false;
};

#if SHANNOT_PLATFORM_LINUX

/// The local transport: bwrap runs here as a child of this process.
/// Users name it PosixSpawnTransport. It is a template over an unused parameter, and so are the
/// classes it uses, only so that their code is compiled where the transport is used, not in
/// every file that includes shannot (docs/architecture.md, "Compile time").
template <class Deferred>
class BasicPosixSpawnTransport {
public:
    using process_type = detail::PosixProcess<Deferred>;
    /// A warm session's sandbox (see session.hpp): the same process handle, stdin piped.
    using channel_type = detail::PosixProcess<Deferred>;
    static constexpr std::string_view name = "local";
    static constexpr bool checks_local_paths = true;
    /// `--seccomp 3`: the profile's filter file is opened at fd 3 in bwrap.
    static constexpr int seccomp_fd = 3;
    /// The built-in syscall filter reaches bwrap at fd 7, from a sealed memfd (no file anywhere).
    static constexpr int syscall_filter_fd = 7;
    /// `--json-status-fd 4`: tells setup failures from command failures, and gives PID 1.
    static constexpr int json_status_fd = 4;
    /// `--block-fd 6`: bwrap's sandbox process waits there, its mounts done, until the run's
    /// limits are set on it (prlimit); then it execs.
    static constexpr int limits_block_fd = 6;
    /// Small read-only files of the profile (`/etc/passwd`, `/etc/ld.so.cache`, ...) reach bwrap
    /// opened read-only at fds 10-21, as `--file` copies instead of bind mounts (see
    /// BuildExtras::copied_files); a spare sandbox's shell has 5 and 9.
    static constexpr std::array<int, 12> copied_file_fds{10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21};

    explicit BasicPosixSpawnTransport(PosixSpawnOptions options = {}) : options_(std::move(options)) {
        if (options_.spare_sandbox)
            spare_ = std::make_shared<detail::SpareSandbox<process_type>>(
                [options = options_](const LaunchSpec& spec, int script_fd, int ready_fd) {
                    return start(options, spec, script_fd, ready_fd);
                });
    }

    /// The bwrap this transport runs, or why there is none.
    [[nodiscard]] Result<std::string> bwrap() const { return find_bwrap(options_); }

    /// How many runs a spare sandbox served (PosixSpawnOptions::spare_sandbox); copies of a
    /// transport share their spare.
    [[nodiscard]] std::uint64_t spare_sandboxes_used() const noexcept { return spare_ ? spare_->used() : 0; }

private:
    [[nodiscard]] static Result<std::string> find_bwrap(const PosixSpawnOptions& options) {
        if (options.bwrap_path) {
            const auto& path = *options.bwrap_path;
            if (!is_executable(path))
                return fail(errc::bwrap_not_found, "bwrap_path '" + path + "' is not an executable file");
            return path;
        }
        const char* env = std::getenv("PATH");
        std::string_view path = env ? env : "/usr/local/bin:/usr/bin:/bin";
        while (!path.empty()) {
            const auto colon = path.find(':');
            const auto dir = path.substr(0, colon);
            if (!dir.empty()) {
                std::string candidate = std::string(dir) + "/bwrap";
                if (is_executable(candidate)) return candidate;
            }
            if (colon == std::string_view::npos) break;
            path.remove_prefix(colon + 1);
        }
        return fail(errc::bwrap_not_found,
                    "no bwrap on PATH: install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora: "
                    "`dnf install bubblewrap`) or set PosixSpawnOptions::bwrap_path");
    }

public:
    /// For admission: is there an executable at this host path (a bind source)?
    [[nodiscard]] bool executable_exists(std::string_view host_path) const {
        return is_executable(std::string(host_path));
    }

    /// Which of `paths` are symlinks on this host, each with the absolute path it resolves to
    /// (realpath: one that resolves to nothing is left out).
    [[nodiscard]] std::map<std::string, std::string> host_symlinks(const std::vector<std::string>& paths) const {
        std::map<std::string, std::string> links;
        for (const auto& path : paths) {
            struct stat st {};
            if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) continue;
            char* resolved = ::realpath(path.c_str(), nullptr);
            if (resolved == nullptr) continue;
            links.emplace(path, resolved);
            std::free(resolved);
        }
        return links;
    }

    /// Which of `paths` are regular files of at most `max_bytes` on this host (following
    /// symlinks, as a bind would), with their permission bits.
    [[nodiscard]] std::map<std::string, unsigned> host_small_files(const std::vector<std::string>& paths,
                                                                   std::uint64_t max_bytes) const {
        std::map<std::string, unsigned> files;
        for (const auto& path : paths) {
            struct stat st {};
            if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
                static_cast<std::uint64_t>(st.st_size) <= max_bytes)
                files.emplace(path, static_cast<unsigned>(st.st_mode & 07777));
        }
        return files;
    }

    /// Starts the long-lived sandbox of a warm session: launch() with stdin piped.
    [[nodiscard]] Result<channel_type> open_channel(const LaunchSpec& spec) {
        LaunchSpec piped = spec;
        piped.pipe_stdin = true;
        piped.timeout.reset();
        return start(options_, piped, -1, -1);  // never a spare: a session is one long sandbox
    }

    /// How a run's limits are enforced here (see shannot::limits_mechanism), without running one.
    [[nodiscard]] std::string_view limits_mechanism() const {
        if (const auto& parent = detail::cgroup_parent<Deferred>())
            return parent->version == 2 ? shannot::limits_mechanism::cgroup_v2 : shannot::limits_mechanism::cgroup_v1;
        return ::getuid() == 0 ? shannot::limits_mechanism::no_process_limit : shannot::limits_mechanism::rlimits;
    }

    /// Starts bwrap (or hands the command to a spare sandbox, PosixSpawnOptions::spare_sandbox).
    /// Thread-safe. Every descriptor is close-on-exec; bwrap gets 0-2, the status fd (4) and the
    /// spec's files at their descriptors (a file opened read-only, bytes from a sealed memfd),
    /// nothing else.
    [[nodiscard]] Result<process_type> launch(const LaunchSpec& spec) {
        if (spare_) return spare_->launch(spec);
        return start(options_, spec, -1, -1);
    }

private:
    /// launch() without a spare; a spare's stand-in also gets `script_fd` and `ready_fd` (ours)
    /// at detail::spare_script_fd and spare_ready_fd.
    [[nodiscard]] static Result<process_type> start(const PosixSpawnOptions& options, const LaunchSpec& spec,
                                                    int script_fd, int ready_fd) {
        auto bwrap_path = find_bwrap(options);
        if (!bwrap_path) return propagate(bwrap_path);

        struct Pipe {
            detail::UniqueFd read, write;
        };
        auto make_pipe = [](Pipe& p) { return detail::make_pipe(p.read, p.write); };
        Pipe in, out, err, status, block;
        if ((spec.pipe_stdin && !make_pipe(in)) || !make_pipe(out) || !make_pipe(err) || !make_pipe(status) ||
            (spec.limits && !make_pipe(block)))
            return fail(errc::spawn_failed, std::string("cannot create pipes: ") + std::strerror(errno));
        detail::enlarge_output_pipe(out.write.get());
        detail::enlarge_output_pipe(err.write.get());

        std::vector<std::string> argv;
        argv.reserve(spec.bwrap_args.size() + 1);
        argv.push_back(*bwrap_path);
        argv.insert(argv.end(), spec.bwrap_args.begin(), spec.bwrap_args.end());
        std::vector<char*> cargv;
        std::size_t argv_bytes = 0;
        for (auto& a : argv) {
            cargv.push_back(a.data());
            argv_bytes += a.size() + 1;
        }
        cargv.push_back(nullptr);
        char* envp[] = {nullptr};

        detail::SpawnSetup setup;
        if (spec.pipe_stdin)
            setup.dup_to(in.read.get(), 0);
        else
            setup.open_at(0, "/dev/null", O_RDONLY);
        setup.dup_to(out.write.get(), 1);
        setup.dup_to(err.write.get(), 2);
        // The status pipe first: a file opened at its descriptor below would close our end.
        setup.dup_to(status.write.get(), json_status_fd);
        if (spec.limits) setup.dup_to(block.read.get(), limits_block_fd);
        // Only 0-2, the status fd, the limits fd and the spec's files reach bwrap: a caller's
        // inheritable descriptor in between is closed, everything above the highest by closefrom.
        int highest = spec.limits ? limits_block_fd : json_status_fd;
        for (const auto& file : spec.files) highest = std::max(highest, file.fd);
        const bool stand_in = script_fd >= 0 && ready_fd >= 0;
        if (stand_in) highest = std::max({highest, detail::spare_script_fd, detail::spare_ready_fd});
        // What bwrap gets as one of our descriptors (a file given as bytes: a sealed memfd; a
        // spare's stand-in: its two pipes), each numbered above every target so that no dup2
        // below closes it before its own turn (closefrom then closes it in the child).
        std::vector<std::pair<int, detail::UniqueFd>> dups;  // (target, ours)
        for (const auto& file : spec.files) {
            if (!file.path.empty()) continue;
            dups.emplace_back(file.fd, detail::sealed_data_fd(file.data, highest + 1));
            if (!dups.back().second)
                return fail(errc::spawn_failed, "cannot pass " + std::to_string(file.data.size()) +
                                                    " bytes to bwrap at fd " + std::to_string(file.fd) +
                                                    " (memfd_create): " + std::strerror(errno));
        }
        if (stand_in)
            for (const auto& [target, fd] :
                 {std::pair{detail::spare_script_fd, script_fd}, {detail::spare_ready_fd, ready_fd}}) {
                dups.emplace_back(target, detail::UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, highest + 1)));
                if (!dups.back().second)
                    return fail(errc::spawn_failed,
                                std::string("cannot pass a spare's pipes: ") + std::strerror(errno));
            }
        for (int fd = 3; fd <= highest; ++fd) {
            if (fd == json_status_fd || (spec.limits && fd == limits_block_fd)) continue;
            const auto dup = std::find_if(dups.begin(), dups.end(), [fd](const auto& d) { return d.first == fd; });
            const auto named =
                std::find_if(spec.files.begin(), spec.files.end(), [fd](const InheritedFile& f) { return f.fd == fd; });
            if (dup != dups.end())
                setup.dup_to(dup->second.get(), fd);
            else if (named != spec.files.end())
                setup.open_at(fd, named->path.c_str(), O_RDONLY);
            else
                setup.close(fd);
        }
        setup.close_from(highest + 1);

        // With cgroup v1, bwrap is spawned by a thread that lives in a pids cgroup for the run
        // (see CgroupSlots), so it is born there; else by the one spawner thread.
        typename detail::CgroupSlots<Deferred>::Lease slot;
        if (spec.limits)
            if (const auto& parent = detail::cgroup_parent<Deferred>(); parent && parent->version == 1)
                slot = detail::CgroupSlots<Deferred>::instance().acquire(*parent, spec.limits->processes);
        auto& spawner = slot ? slot.spawner() : detail::SpawnerThread<Deferred>::instance();
        pid_t pid = -1;
        const int rc = spawner.run([&] {
            return ::posix_spawn(&pid, bwrap_path->c_str(), setup.actions(), setup.attributes(), cargv.data(), envp);
        });
        if (rc != 0) {
            if (rc == E2BIG)
                return fail(errc::invalid_argument,
                            "the command line is too long for the kernel (" + std::to_string(argv_bytes) +
                                " bytes in " + std::to_string(argv.size()) +
                                " arguments; one argument may not exceed 128 KiB): pass large data as input");
            std::string what = "cannot start " + *bwrap_path + ": " + std::strerror(rc);
            const auto named = std::find_if(spec.files.begin(), spec.files.end(),
                                            [](const InheritedFile& f) { return !f.path.empty(); });
            if (named != spec.files.end() && (rc == ENOENT || rc == EACCES))
                what += " (or a file bwrap must inherit is unreadable: " + named->path + ")";
            return fail(errc::spawn_failed, std::move(what));
        }
        in.read.reset();
        out.write.reset();
        err.write.reset();
        status.write.reset();
        block.read.reset();
        detail::UniqueFd pidfd(detail::pidfd_open(pid));
        if (!pidfd) {
            const int saved = errno;
            ::kill(pid, SIGKILL);
            detail::reap(pid);
            return fail(errc::spawn_failed,
                        std::string("pidfd_open failed (Linux 5.3 or newer is needed): ") + std::strerror(saved));
        }
        for (int fd : {in.write.get(), out.read.get(), err.read.get(), status.read.get()})
            if (fd >= 0) detail::set_nonblocking(fd);
        process_type process(pid, std::move(pidfd), std::move(in.write), std::move(out.read), std::move(err.read),
                             std::move(status.read), std::move(argv));
        if (spec.limits) {
            const bool own_namespace = in_own_user_namespace(spec);
            auto limited = process.apply_limits(*spec.limits, std::move(block.write), own_namespace, std::move(slot));
            if (!limited) {
                process.kill();
                return propagate(limited);
            }
        }
        return process;
    }

    /// Whether the sandbox gets a user namespace of its own: asked for, or bwrap's own choice
    /// for any caller but root (it needs one to mount without privileges).
    static bool in_own_user_namespace(const LaunchSpec& spec) {
        const auto& a = spec.bwrap_args;
        return ::getuid() != 0 || std::find(a.begin(), a.end(), "--unshare-user") != a.end();
    }

    static bool is_executable(const std::string& path) {
        struct stat st {};
        return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
    }

    PosixSpawnOptions options_;
    std::shared_ptr<detail::SpareSandbox<process_type>> spare_{};
};

#else

/// Where bwrap cannot run (off Linux, or with SHANNOT_PORTABLE_POSIX=1), the local transport is
/// declared, so that naming it reads as what it is, and refused where it is used. The portable
/// seam is not enough for it: it pins the sandbox's PID 1, a process that is not our child, with a
/// pidfd (by pid alone a signal could reach a recycled pid), and it finds bwrap's children during
/// setup in /proc; a weaker local transport would be a silent downgrade.
template <class Deferred>
class BasicPosixSpawnTransport {
#if defined(__linux__)
    static_assert(
        sizeof(Deferred*) == 0,
        "PosixSpawnTransport (LocalSandbox) is not available with SHANNOT_PORTABLE_POSIX=1: that build is what other "
        "systems build, where bwrap cannot run; the local transport needs Linux's pidfds and /proc. Build without "
        "SHANNOT_PORTABLE_POSIX to sandbox on this host, or use OpenSshProcessTransport (SshSandbox)");
#else
    static_assert(
        sizeof(Deferred*) == 0,
        "PosixSpawnTransport (LocalSandbox) runs bwrap on this machine, and bwrap exists only on Linux: on this "
        "system use OpenSshProcessTransport (SshSandbox), which runs the sandbox on a Linux host over ssh");
#endif

public:
    explicit BasicPosixSpawnTransport(PosixSpawnOptions = {}) {}
};

#endif

}  // namespace shannot
