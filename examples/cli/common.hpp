// SPDX-License-Identifier: MIT
// The shannot tool: exit statuses, the failure value every step returns, and error reporting.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

#include <shannot/shannot.hpp>

namespace shannot_cli {

/// Exit statuses of the tool itself. A command's own status passes through unchanged, so these
/// are taken from the top of the range, where commands rarely land (`--json` tells them apart).
namespace status {
inline constexpr int ok = 0;
inline constexpr int check_failed = 1;        ///< verify: a check failed; lint: a danger finding
inline constexpr int internal = 70;           ///< a bug in the tool (an unexpected exception)
inline constexpr int sandbox_failed = 120;    ///< bwrap missing or failing, namespaces unavailable
inline constexpr int bad_profile = 121;       ///< invalid profile, or no profile by that name
inline constexpr int bad_config = 122;        ///< config file malformed/unwritable, unknown remote
inline constexpr int transport_failed = 123;  ///< ssh: connection, authentication, host key
inline constexpr int timed_out = 124;         ///< --timeout expired (as timeout(1))
inline constexpr int usage = 125;             ///< unknown option, missing or bad argument
inline constexpr int refused = 126;           ///< the profile's allowlist refused the command
}  // namespace status

/// Why the tool stops: the exit status, what went wrong, and how to fix it.
struct Failure {
    int status = status::usage;
    std::string message;
    std::string hint;
};

template <class T>
using Expected = tl::expected<T, Failure>;

[[nodiscard]] inline tl::unexpected<Failure> failure(int code, std::string message, std::string hint = {}) {
    return tl::make_unexpected(Failure{code, std::move(message), std::move(hint)});
}

[[nodiscard]] inline tl::unexpected<Failure> usage_error(std::string message, std::string hint = {}) {
    return failure(status::usage, std::move(message), std::move(hint));
}

/// The tool's exit status for a library error.
[[nodiscard]] inline int status_for(shannot::errc code) {
    using shannot::errc;
    switch (code) {
    case errc::invalid_profile: return status::bad_profile;
    case errc::invalid_argument:
    case errc::unsafe_ssh_option: return status::usage;
    case errc::command_refused: return status::refused;
    case errc::transport_error:
    case errc::connection_failed:
    case errc::authentication_failed:
    case errc::host_key_mismatch:
    case errc::session_closed:
    case errc::session_lost: return status::transport_failed;
    case errc::cancelled: return 128 + 2;
    default: return status::sandbox_failed;
    }
}

/// What to do about a library error, in one clause.
[[nodiscard]] inline std::string hint_for(shannot::errc code) {
    using shannot::errc;
    switch (code) {
    case errc::invalid_profile:
        return "fix the field named above (`shannot export` prints a valid profile to start from)";
    case errc::bwrap_not_found: return "install bubblewrap (Debian: apt-get install bubblewrap)";
    case errc::sandbox_unavailable:
        return "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or run as root";
    case errc::sandbox_setup_failed:
        return "check the profile's binds and bwrap's message above (`shannot lint`, `shannot verify`)";
    case errc::remote_bwrap_missing: return "install bubblewrap on the remote host";
    case errc::connection_failed: return "check the host name and port, and that sshd runs there";
    case errc::authentication_failed:
        return "pass the right private key with -i KEY (or `shannot remote add ... --key KEY`)";
    case errc::host_key_mismatch:
        return "the host key is unknown or changed: check it, then fix the known_hosts file (--known-hosts FILE)";
    case errc::transport_error:
    case errc::session_closed: return "check that `ssh` reaches the host with the same settings";
    default: return {};
    }
}

/// A library error as the tool reports it.
[[nodiscard]] inline Failure from_error(const shannot::Error& e) {
    return Failure{status_for(e.code), e.describe(), hint_for(e.code)};
}

/// Writes every byte (EINTR retried). False when the reader went away.
inline bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const auto n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

/// Flattens a message to one line: control characters become spaces, runs of them collapse.
[[nodiscard]] inline std::string one_line(std::string_view text) {
    std::string out;
    for (char c : text) {
        const bool control = static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        if (control) {
            if (!out.empty() && out.back() != ' ') out += ' ';
        } else {
            out += c;
        }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

/// Prints "shannot: MESSAGE; HINT" on stderr and returns the failure's status.
inline int report(const Failure& f) {
    std::string line = "shannot: " + one_line(f.message);
    if (!f.hint.empty()) line += "; " + one_line(f.hint);
    line += '\n';
    write_all(2, line);
    return f.status;
}

/// What a local run or verify says where the library has no local transport (off Linux, or
/// built with SHANNOT_PORTABLE_POSIX=1): the remote commands work there, the local ones cannot.
[[nodiscard]] inline Failure local_sandbox_unavailable() {
    return Failure{status::sandbox_failed,
                   "this shannot runs sandboxes on remote Linux hosts only: a sandbox on this machine needs bwrap, "
                   "which exists only on Linux",
                   "name the host: --ssh [USER@]HOST[:PORT], or --target NAME (see `shannot remote add`)"};
}

/// Prints a note for people on stderr (never on stdout, which carries the command's bytes).
inline void note(std::string_view text) { write_all(2, "shannot: " + one_line(text) + "\n"); }

}  // namespace shannot_cli
