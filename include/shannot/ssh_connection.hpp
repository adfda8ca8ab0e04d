// SPDX-License-Identifier: MIT
// SshConnection: where and how to reach a remote host, validated, and the ssh argv built from it.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/error.hpp>

namespace shannot {

/// What ssh does with a host key it does not know, or one that changed.
enum class HostKeyPolicy {
    accept_new,  ///< trust on first use; refuse a changed key (StrictHostKeyChecking=accept-new)
    yes,         ///< only keys already in known_hosts (StrictHostKeyChecking=yes)
    no,          ///< accept anything: only with SshConnection::allow_unknown_hosts
};

/// How a transport opens a connection to its host (see docs/fleet.md, "One-shot connections").
enum class ConnectStyle {
    /// A ControlMaster with no session of its own first, then a dispatcher session over it. Killing
    /// a dispatcher never takes the connection down; a first command costs one round trip more.
    master_first,
    /// The first dispatcher is itself the connection (and the ControlMaster for later ones): one
    /// ssh login and one local process for a host that gets one command, as a fleet or the CLI
    /// mostly does. A dispatcher dropped after an unanswered kill takes the connection with it.
    session_first,
};

/// A remote host reached through the system `ssh`. The remote needs only sshd, sh and bwrap.
struct SshConnection {
    std::string host{};
    std::string user{};  ///< empty: ssh's default
    std::uint16_t port = 22;
    std::string identity_file{};     ///< `-i`, with IdentitiesOnly=yes
    std::string known_hosts_file{};  ///< UserKnownHostsFile; empty: ssh's default
    HostKeyPolicy host_key_policy = HostKeyPolicy::accept_new;
    bool allow_unknown_hosts = false;  ///< required for HostKeyPolicy::no
    std::chrono::seconds connect_timeout{5};
    /// How long, after connecting, the login (the remote user's shell and its rc files) may take
    /// to start the dispatcher. Many logins at once to hosts with heavy rc files need more.
    std::chrono::seconds login_timeout{10};
    std::chrono::seconds server_alive_interval{15};
    std::string ssh_binary = "ssh";
    std::string remote_bwrap = "bwrap";
    std::optional<std::string> working_directory{};  ///< default --chdir inside the remote sandbox
    std::vector<std::string> extra_options{};        ///< "Name=value" or "Name value", allowlisted
    bool allow_unsafe_ssh_options = false;           ///< lets any extra option through: you vouch for it
    std::size_t max_connections = 4;                 ///< ssh master connections kept to this host
    std::size_t sessions_per_connection = 8;         ///< below sshd's default MaxSessions (10)
    ConnectStyle connect_style = ConnectStyle::master_first;
    /// Keep the connection and its warm dispatcher when the transport is gone, for this long
    /// unused (0: they end with the transport), so that the next transport with the same settings
    /// (in this process or another of the same user) costs a sandbox start, not a login. Kept in
    /// `persist_folder`; see persist.hpp and SECURITY.md.
    std::chrono::seconds persist{0};
    std::string persist_folder{};  ///< absolute; empty: default_persist_folder()
};

/// Extra options that cannot run commands, read files or redirect the connection.
inline constexpr std::array<std::string_view, 24> safe_ssh_options{"addressfamily",
                                                                   "batchmode",
                                                                   "canonicaldomains",
                                                                   "canonicalizehostname",
                                                                   "ciphers",
                                                                   "compression",
                                                                   "connectionattempts",
                                                                   "fingerprinthash",
                                                                   "hashknownhosts",
                                                                   "hostkeyalgorithms",
                                                                   "ipqos",
                                                                   "kbdinteractiveauthentication",
                                                                   "kexalgorithms",
                                                                   "loglevel",
                                                                   "macs",
                                                                   "passwordauthentication",
                                                                   "preferredauthentications",
                                                                   "pubkeyacceptedalgorithms",
                                                                   "pubkeyauthentication",
                                                                   "rekeylimit",
                                                                   "serveralivecountmax",
                                                                   "tcpkeepalive",
                                                                   "updatehostkeys",
                                                                   "visualhostkey"};

namespace detail {

[[nodiscard]] inline bool has_space_or_control(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
    });
}

/// The option's name: up to '=' or whitespace, lower-cased (ssh compares names case-insensitively).
[[nodiscard]] inline std::string ssh_option_name(std::string_view option) {
    const auto end = option.find_first_of("= \t");
    std::string name(option.substr(0, end));
    for (auto& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return name;
}

}  // namespace detail

/// Checks one extra option against the allowlist; the error names the option.
[[nodiscard]] inline Result<void> check_ssh_option(std::string_view option, bool allow_unsafe) {
    const auto name = detail::ssh_option_name(option);
    if (name.empty() || option.find('\0') != std::string_view::npos || option.find('\n') != std::string_view::npos)
        return fail(errc::unsafe_ssh_option, "ssh option '" + std::string(option) + "' is malformed (want Name=value)");
    if (allow_unsafe) return {};
    if (std::find(safe_ssh_options.begin(), safe_ssh_options.end(), name) != safe_ssh_options.end()) return {};
    return fail(errc::unsafe_ssh_option,
                "ssh option '" + std::string(option.substr(0, option.find_first_of("= \t"))) +
                    "' is not on the safe list (options like ProxyCommand, LocalCommand, Include or "
                    "KnownHostsCommand can run commands or read files); set allow_unsafe_ssh_options to pass it");
}

/// Validates every field that reaches ssh's command line.
[[nodiscard]] inline Result<void> validate(const SshConnection& c) {
    if (c.host.empty()) return fail(errc::invalid_argument, "ssh host is empty");
    if (c.host.front() == '-')
        return fail(errc::invalid_argument,
                    "ssh host '" + c.host + "' starts with '-' (it would be read as an option)");
    if (detail::has_space_or_control(c.host) || c.host.find('@') != std::string::npos)
        return fail(errc::invalid_argument,
                    "ssh host '" + c.host + "' contains whitespace, control characters or '@' (set user separately)");
    if (!c.user.empty() &&
        (c.user.front() == '-' || detail::has_space_or_control(c.user) || c.user.find('@') != std::string::npos))
        return fail(errc::invalid_argument,
                    "ssh user '" + c.user + "' starts with '-' or contains whitespace, control characters or '@'");
    if (c.port == 0) return fail(errc::invalid_argument, "ssh port 0 is not a port");
    if (c.host_key_policy == HostKeyPolicy::no && !c.allow_unknown_hosts)
        return fail(errc::invalid_argument,
                    "host_key_policy 'no' accepts any host key: set allow_unknown_hosts to mean it");
    for (const auto* path : {&c.identity_file, &c.known_hosts_file, &c.ssh_binary})
        if (path->find('\0') != std::string::npos || path->find('\n') != std::string::npos)
            return fail(errc::invalid_argument, "ssh setting '" + *path + "' contains a NUL or newline");
    if (c.ssh_binary.empty() || c.remote_bwrap.empty())
        return fail(errc::invalid_argument, "ssh_binary and remote_bwrap must be set");
    if (c.max_connections == 0 || c.sessions_per_connection == 0)
        return fail(errc::invalid_argument, "max_connections and sessions_per_connection must be at least 1");
    for (const auto& option : c.extra_options)
        if (auto ok = check_ssh_option(option, c.allow_unsafe_ssh_options); !ok) return ok;
    if (c.login_timeout.count() < 1) return fail(errc::invalid_argument, "ssh login_timeout must be at least 1 s");
    if (c.persist.count() < 0 || c.persist > std::chrono::hours(24 * 366))
        return fail(errc::invalid_argument,
                    "ssh persist must be 0 to 366 days (it is " + std::to_string(c.persist.count()) + " s)");
    if (!c.persist_folder.empty() &&
        (c.persist_folder.front() != '/' || c.persist_folder.find('\0') != std::string::npos ||
         c.persist_folder.find('\n') != std::string::npos))
        return fail(errc::invalid_argument, "ssh persist_folder '" + c.persist_folder + "' is not an absolute path");
    return {};
}

/// `user@host` (or `host`).
[[nodiscard]] inline std::string ssh_destination(const SshConnection& c) {
    return c.user.empty() ? c.host : c.user + "@" + c.host;
}

/// ssh's options, ours first (ssh keeps the first value it sees for an option), then the
/// caller's extras. Without the ssh binary, destination and remote command.
[[nodiscard]] inline std::vector<std::string> ssh_base_options(const SshConnection& c) {
    const char* strict = c.host_key_policy == HostKeyPolicy::accept_new ? "accept-new"
                         : c.host_key_policy == HostKeyPolicy::yes      ? "yes"
                                                                        : "no";
    std::vector<std::string> a = {"-o", "BatchMode=yes",
                                  "-o", std::string("StrictHostKeyChecking=") + strict,
                                  "-o", "ConnectTimeout=" + std::to_string(c.connect_timeout.count()),
                                  "-o", "ServerAliveInterval=" + std::to_string(c.server_alive_interval.count()),
                                  "-o", "LogLevel=ERROR",
                                  "-p", std::to_string(c.port)};
    if (!c.known_hosts_file.empty()) a.insert(a.end(), {"-o", "UserKnownHostsFile=" + c.known_hosts_file});
    if (!c.identity_file.empty()) a.insert(a.end(), {"-i", c.identity_file, "-o", "IdentitiesOnly=yes"});
    a.emplace_back("-T");
    for (const auto& option : c.extra_options) a.insert(a.end(), {"-o", option});
    return a;
}

}  // namespace shannot
