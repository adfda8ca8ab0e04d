// SPDX-License-Identifier: MIT
// BubblewrapCommandBuilder: profile + command → bwrap argv. Pure: no I/O, deterministic order.
#pragma once

#include <algorithm>
#include <charconv>
#include <map>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <shannot/detail/paths.hpp>
#include <shannot/error.hpp>
#include <shannot/limits.hpp>
#include <shannot/profile.hpp>
#include <shannot/syscall_filter.hpp>

namespace shannot {

/// Per-run additions the builder folds into the argv (from RunOptions).
struct BuildExtras {
    std::map<std::string, std::string> environment{};  ///< overrides the profile's variables
    std::optional<std::string> working_directory{};    ///< `--chdir` inside the sandbox
    std::vector<std::string> extra_args{};             ///< after additional_args, before `--` (sessions)
    /// Bind sources that are symlinks where bwrap runs, each with the absolute path it resolves
    /// to there (the transport finds them: see `host_symlinks`). A bind that only repeats
    /// another one through a symlink becomes that symlink (see linked_bind()).
    std::map<std::string, std::string> host_symlinks{};
    /// Indices into the profile's binds whose sources do not exist where bwrap runs, when the
    /// transport could look (detail::check_bind_sources); nullopt when it could not (a remote).
    /// A bind that may be skipped (not SandboxBind::required, masking nothing) is then left out
    /// when listed here, else mounted with --ro-bind; unchecked, it is --ro-bind-try, so bwrap
    /// skips a missing source where it runs.
    std::optional<std::vector<std::size_t>> missing_sources{};
    /// The run's limits (the profile's with the run's overrides); unset: the profile's. The
    /// builder uses tmpfs_bytes (`--size` before every tmpfs); the transport applies the rest.
    std::optional<ResourceLimits> limits{};
    /// A bind given to bwrap as a copy: the descriptor the transport opens its source at, and the
    /// source's permission bits (`--perms MODE --file FD TARGET`).
    struct CopiedFile {
        int fd{};
        unsigned mode{};
    };
    /// Binds (by target) that bwrap gets as a copy of their source, a small regular file where
    /// bwrap runs, instead of a mount: bwrap writes it into the root it builds, which ends
    /// read-only. A bind mount costs bwrap a mount, a read-only remount and a scan of
    /// /proc/self/mountinfo (~0.07 ms each here, docs/performance.md); a copy costs a read and a
    /// write. The copy is taken when the sandbox starts: later changes to the host file are not
    /// seen inside (a bind would show them). Only binds copy_candidates() names are copied; the
    /// transport chooses among them (detail::copied_files).
    std::map<std::string, CopiedFile> copied_files{};
};

/// Turns a profile and a command into bwrap's arguments (without the bwrap executable).
/// The profile comes validated and the command and extras checked (SandboxProfile::validate,
/// detail::check_run_input at admission); the builder refuses only what bwrap's own argv cannot
/// hold: an argument over MAX_ARG_STRLEN, more arguments than bwrap takes, a seccomp filter the
/// transport cannot pass.
///
/// Order, fixed and tested against stored argv:
///  1. namespaces and hardening: --unshare-user (if user_namespace_isolation), --unshare-ipc,
///     --unshare-pid, --unshare-uts, --unshare-cgroup-try, --unshare-net (if network_isolation),
///     --die-with-parent, --new-session, --cap-drop ALL;
///  2. mounts on "/" itself, then --proc /proc and --dev /dev;
///  3. every other tmpfs and bind, sorted by target so a parent is mounted before its children
///     (a later mount on a parent would hide them); a bind that repeats another through a host
///     symlink (BuildExtras::host_symlinks) is `--symlink` instead, in the same place, and one
///     the transport gives as a copy (BuildExtras::copied_files) `--perms MODE --file FD`. A bind
///     that is never skipped (required, or masking part of another mount) is --ro-bind/--bind;
///     one whose source is known missing (BuildExtras::missing_sources) is left out; an optional
///     one, or any where sources were not checked, is --ro-bind-try/--bind-try. Every tmpfs is
///     `--size TMPFS_BYTES --tmpfs TARGET`, and /dev/shm is one (unless the profile mounts
///     something there);
///  4. --clearenv, then --setenv for the profile's and the caller's variables, sorted by name;
///  5. --chdir, the syscall filters (the transport decides the fds): `--seccomp FD` for one, the
///     built-in (Transport::syscall_filter_fd) or the profile's seccomp_profile (Transport::seccomp_fd),
///     `--add-seccomp-fd FD` for each of both; --json-status-fd FD (if the transport reads it),
///     --block-fd FD (if the transport applies limits through it), additional_args,
///     BuildExtras::extra_args, --remount-ro / (unless the profile mounts something on "/"),
///     --remount-ro /dev, --, the command.
/// bwrap's --dev, and the root it builds the sandbox in when the profile mounts nothing on "/",
/// are tmpfs mounts of half the host's RAM that `--size` cannot bound and the sandbox's user
/// owns: each is made read-only once every mount under it is done (a command could otherwise
/// fill the host's memory by writing to `/` or `/etc`), and /dev/shm gets a bounded tmpfs of
/// its own. A profile that mounts on "/" chose what is there (a tmpfs is bounded by `--size`).
template <class Transport>
class BubblewrapCommandBuilder {
public:
    /// bwrap 0.8 refuses more than this many arguments ("Exceeded maximum number of arguments").
    static constexpr std::size_t max_bwrap_arguments = 9000;
    /// Linux refuses to exec an argument (or environment string) this long or longer
    /// (MAX_ARG_STRLEN, 32 pages, counting the terminating NUL).
    static constexpr std::size_t max_argument_bytes = 131072;

    BubblewrapCommandBuilder(const SandboxProfile<Transport>& profile, std::vector<std::string> command,
                             BuildExtras extras = {})
        : profile_(profile), command_(std::move(command)), extras_(std::move(extras)) {}

    [[nodiscard]] Result<std::vector<std::string>> build() const {
        for (std::size_t i = 0; i < command_.size(); ++i) {
            if (command_[i].size() >= max_argument_bytes)
                return fail(errc::invalid_argument,
                            "command[" + std::to_string(i) + "] is too long: " + std::to_string(command_[i].size()) +
                                " bytes, Linux allows " + std::to_string(max_argument_bytes - 1) +
                                " in one argument (MAX_ARG_STRLEN); pass large data as input");
        }

        std::vector<std::string> a;
        a.reserve(64 + command_.size());
        if (profile_.user_namespace_isolation) a.emplace_back("--unshare-user");
        for (const char* flag : {"--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"})
            a.emplace_back(flag);
        if (profile_.network_isolation) a.emplace_back("--unshare-net");
        for (const char* flag : {"--die-with-parent", "--new-session", "--cap-drop", "ALL"}) a.emplace_back(flag);

        const auto tmpfs_bytes = std::to_string((extras_.limits ? *extras_.limits : profile_.limits).tmpfs_bytes);
        const auto mounts = sorted_mounts();
        auto emit = [&](const Mount& m) {
            if (m.bind == nullptr) {
                a.insert(a.end(), {"--size", tmpfs_bytes, "--tmpfs", m.target});
                return;
            }
            if (auto link = linked_bind(m, mounts)) {
                a.insert(a.end(), {"--symlink", std::move(*link), m.target});
                return;
            }
            if (const auto copy = extras_.copied_files.find(m.target);
                copy != extras_.copied_files.end() && copyable(m, mounts)) {
                a.insert(a.end(), {"--perms", octal(copy->second.mode & 0777u), "--file",
                                   std::to_string(copy->second.fd), m.target});
                return;
            }
            const bool try_flag = may_skip(*m.bind) && (m.bind->optional || !extras_.missing_sources);
            const char* flag =
                m.bind->read_only ? (try_flag ? "--ro-bind-try" : "--ro-bind") : (try_flag ? "--bind-try" : "--bind");
            a.insert(a.end(), {flag, m.bind->source, m.target});
        };
        for (const auto& m : mounts)
            if (m.target == "/") emit(m);
        a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev"});
        for (const auto& m : mounts)
            if (m.target != "/") emit(m);

        a.emplace_back("--clearenv");
        auto env = profile_.environment;
        for (const auto& [name, value] : extras_.environment) env[name] = value;
        for (const auto& [name, value] : env) {
            if (value.size() >= max_argument_bytes)
                return fail(errc::invalid_argument,
                            "environment variable " + name + " is too long: " + std::to_string(value.size()) +
                                " bytes, Linux allows " + std::to_string(max_argument_bytes - 1) +
                                " in one argument (MAX_ARG_STRLEN)");
            a.insert(a.end(), {"--setenv", name, value});
        }

        if (extras_.working_directory) a.insert(a.end(), {"--chdir", *extras_.working_directory});
        // The built-in filter, then the profile's own: bwrap applies both (the stricter answer wins).
        std::vector<int> filter_fds;
        if (profile_.syscall_filter != no_syscall_filter_name) {
            if constexpr (requires { Transport::syscall_filter_fd; }) {
                filter_fds.push_back(Transport::syscall_filter_fd);
            } else {
                return fail(errc::invalid_argument,
                            "profile '" + profile_.name +
                                "' has the built-in syscall filter on, but this transport cannot pass it "
                                "to bwrap (\"syscall_filter\": \"none\" runs without it)");
            }
        }
        if (profile_.seccomp_profile) {
            if constexpr (requires { Transport::seccomp_fd; }) {
                filter_fds.push_back(Transport::seccomp_fd);
            } else {
                return fail(errc::invalid_argument,
                            "profile '" + profile_.name +
                                "' has a seccomp_profile but this transport cannot pass one to bwrap");
            }
        }
        // bwrap refuses --seccomp beside --add-seccomp-fd: one filter is --seccomp (which bwrap
        // has had since 0.1), two are an --add-seccomp-fd each (bwrap 0.5).
        for (int fd : filter_fds)
            a.insert(a.end(), {filter_fds.size() == 1 ? "--seccomp" : "--add-seccomp-fd", std::to_string(fd)});
        if constexpr (requires { Transport::json_status_fd; })
            a.insert(a.end(), {"--json-status-fd", std::to_string(Transport::json_status_fd)});
        if constexpr (requires { Transport::limits_block_fd; })
            a.insert(a.end(), {"--block-fd", std::to_string(Transport::limits_block_fd)});
        a.insert(a.end(), profile_.additional_args.begin(), profile_.additional_args.end());
        a.insert(a.end(), extras_.extra_args.begin(), extras_.extra_args.end());
        if (std::none_of(mounts.begin(), mounts.end(), [](const Mount& m) { return m.target == "/"; }))
            a.insert(a.end(), {"--remount-ro", "/"});
        a.insert(a.end(), {"--remount-ro", "/dev"});
        a.emplace_back("--");
        if (a.size() + command_.size() > max_bwrap_arguments)
            return fail(errc::invalid_argument, "too many arguments: the command has " +
                                                    std::to_string(command_.size()) + " and bwrap would get " +
                                                    std::to_string(a.size() + command_.size()) + ", more than the " +
                                                    std::to_string(max_bwrap_arguments) +
                                                    " bwrap accepts; pass long lists as input (e.g. to xargs -0)");
        a.insert(a.end(), command_.begin(), command_.end());
        return a;
    }

    /// The targets of the binds bwrap may get as a copy (BuildExtras::copied_files), if their
    /// sources are small regular files: read-only binds that show a host path at the same place,
    /// are mounted (not skipped, not made a symlink), and sit in the root bwrap builds with no
    /// mount above them (nothing on "/", which ends read-only, nor on a parent of theirs).
    [[nodiscard]] std::vector<std::string> copy_candidates() const {
        std::vector<std::string> targets;
        const auto mounts = sorted_mounts();
        for (const auto& m : mounts)
            if (copyable(m, mounts) && !linked_bind(m, mounts)) targets.push_back(m.target);
        return targets;
    }

private:
    struct Mount {
        std::string target;
        const SandboxBind* bind;  // nullptr for a tmpfs
    };

    /// See copy_candidates(); `m` is one of `mounts`.
    [[nodiscard]] static bool copyable(const Mount& m, const std::vector<Mount>& mounts) {
        if (m.bind == nullptr || !m.bind->read_only || !detail::is_identity_bind(*m.bind) ||
            detail::is_same_or_under(m.target, "/proc") || detail::is_same_or_under(m.target, "/dev"))
            return false;
        return std::none_of(mounts.begin(), mounts.end(), [&](const Mount& x) {
            return &x != &m && (x.target == "/" || detail::is_same_or_under(m.target, x.target) ||
                                detail::is_same_or_under(x.target, m.target));
        });
    }

    [[nodiscard]] static std::string octal(unsigned mode) {
        std::string digits;
        do {
            digits.insert(digits.begin(), static_cast<char>('0' + (mode & 7u)));
            mode >>= 3;
        } while (mode != 0);
        return std::string(4 - std::min<std::size_t>(4, digits.size()), '0') + digits;
    }

    /// When bind `m` shows what another bind of the profile already shows, through a symlink on
    /// the host: the path it resolves to there, for `--symlink` in its place (merged /usr:
    /// /bin -> usr/bin, /lib -> usr/lib, /etc/os-release -> ../usr/lib/os-release). A bind costs
    /// bwrap a mount, a read-only remount and a mountinfo scan; a symlink nearly nothing. Only
    /// when that changes nothing inside:
    ///  - both binds show the host path at the same place (source == target) and are both
    ///    read-only or both writable, and the other one is not itself a symlink to follow;
    ///  - nothing else is mounted on "/", under `m`, or between the other bind and the resolved
    ///    path (which would show something else there).
    [[nodiscard]] std::optional<std::string> linked_bind(const Mount& m, const std::vector<Mount>& mounts) const {
        const auto identity = [](const Mount& x) { return x.bind != nullptr && detail::is_identity_bind(*x.bind); };
        if (!identity(m)) return std::nullopt;
        const auto found = extras_.host_symlinks.find(m.target);
        if (found == extras_.host_symlinks.end()) return std::nullopt;
        const std::string& resolved = found->second;
        if (!detail::is_absolute(resolved) || detail::has_nul(resolved) || detail::is_same_or_under(resolved, m.target))
            return std::nullopt;
        const Mount* cover = nullptr;
        for (const auto& x : mounts) {
            if (&x == &m || !detail::is_same_or_under(resolved, x.target)) continue;
            if (cover == nullptr || x.target.size() >= cover->target.size()) cover = &x;  // the last one is on top
        }
        if (cover == nullptr || !identity(*cover) || cover->target == "/" ||
            cover->bind->read_only != m.bind->read_only || extras_.host_symlinks.count(cover->target) != 0)
            return std::nullopt;
        for (const auto& x : mounts)
            if (x.target == "/" || (&x != &m && detail::is_same_or_under(x.target, m.target))) return std::nullopt;
        return resolved;
    }

    /// False for a bind that must be mounted even if its source is missing (detail::never_skipped).
    [[nodiscard]] bool may_skip(const SandboxBind& b) const {
        return !detail::never_skipped(profile_, static_cast<std::size_t>(&b - profile_.binds.data()));
    }

    /// The binds and tmpfs mounts to emit, without the binds skipped for a missing source.
    [[nodiscard]] std::vector<Mount> sorted_mounts() const {
        std::vector<Mount> mounts;
        for (std::size_t i = 0; i < profile_.binds.size(); ++i) {
            const auto& b = profile_.binds[i];
            const auto& missing = extras_.missing_sources;
            if (missing && std::find(missing->begin(), missing->end(), i) != missing->end() && may_skip(b)) continue;
            mounts.push_back({std::string(detail::strip_trailing_slash(b.target)), &b});
        }
        for (const auto& t : profile_.tmpfs_paths)
            mounts.push_back({std::string(detail::strip_trailing_slash(t)), nullptr});
        // /dev/shm gets a sized tmpfs unless the profile mounts something there itself.
        if (std::none_of(mounts.begin(), mounts.end(), [](const Mount& m) { return m.target == "/dev/shm"; }))
            mounts.push_back({"/dev/shm", nullptr});
        // A parent path is a prefix of its children, so byte order puts parents first.
        std::stable_sort(mounts.begin(), mounts.end(),
                         [](const Mount& x, const Mount& y) { return x.target < y.target; });
        return mounts;
    }

    const SandboxProfile<Transport>& profile_;
    std::vector<std::string> command_{};
    BuildExtras extras_;
};

namespace detail {

/// The copies a bwrap argv asks for: each `--file FD TARGET` before "--" (the builder writes one
/// per BuildExtras::copied_files entry), as (FD, TARGET), in argv order.
[[nodiscard]] inline std::vector<std::pair<int, std::string>> file_copies(const std::vector<std::string>& args) {
    std::vector<std::pair<int, std::string>> copies;
    for (std::size_t i = 0; i + 2 < args.size() && args[i] != "--"; ++i) {
        if (args[i] != "--file") continue;
        int fd = -1;
        const auto& n = args[i + 1];
        if (const auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), fd);
            ec == std::errc{} && end == n.data() + n.size())
            copies.emplace_back(fd, args[i + 2]);
        i += 2;
    }
    return copies;
}

}  // namespace detail
}  // namespace shannot
