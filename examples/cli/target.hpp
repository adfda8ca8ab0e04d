// SPDX-License-Identifier: MIT
// The shannot tool: where a command runs. This host, a named remote (--target), or --ssh.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <shannot/shannot.hpp>

#include "args.hpp"
#include "common.hpp"
#include "config.hpp"

namespace shannot_cli {

/// The options that choose a remote; shared by run and verify (TargetOptions::from reads them).
inline constexpr OptionSpec target_option_specs[] = {
    {.long_name = "--target", .metavar = "NAME", .help = "run on a remote from the config file (`shannot remote add`)"},
    {.long_name = "--ssh",
     .metavar = "[USER@]HOST[:PORT]",
     .help =
         "run on HOST over the system ssh (BatchMode; an unknown host key is accepted and remembered, a changed one "
         "refused)"},
    {.long_name = "--identity",
     .short_name = "-i",
     .metavar = "KEY",
     .help = "ssh private key (with --ssh or --target)"},
    {.long_name = "--known-hosts", .metavar = "FILE", .help = "ssh known_hosts file (with --ssh or --target)"},
};

/// `[user@]host[:port]`; an IPv6 address with a port is written `[addr]:port`.
struct HostSpec {
    std::string user;
    std::string host;
    std::optional<std::uint16_t> port;
};

[[nodiscard]] inline Expected<HostSpec> parse_host_spec(std::string_view text, std::string_view what) {
    const auto bad = [&](const std::string& why) {
        return usage_error(std::string(what) + ": '" + std::string(text) + "' " + why, "write [USER@]HOST[:PORT], e.g. admin@db1:2222");
    };
    HostSpec spec;
    if (const auto at = text.rfind('@'); at != std::string_view::npos) {
        spec.user = std::string(text.substr(0, at));
        text.remove_prefix(at + 1);
        if (spec.user.empty()) return bad("has an empty user name");
    }
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return bad("has '[' without ']'");
        spec.host = std::string(text.substr(1, close - 1));
        const auto rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return bad("has text after ']' that is not ':PORT'");
            port = rest.substr(1);
            if (port.empty()) return bad("has an empty port");
        }
    } else if (const auto colon = text.find(':'); colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
        spec.host = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
        if (port.empty()) return bad("has an empty port");
    } else {
        spec.host = std::string(text);  // a name, an IPv4 address, or a bare IPv6 address
    }
    if (spec.host.empty()) return bad("has an empty host");
    if (!port.empty()) {
        const auto n = parse_unsigned(port);
        if (!n || *n < 1 || *n > 65535) return bad("has a port that is not 1-65535");
        spec.port = static_cast<std::uint16_t>(*n);
    }
    return spec;
}

/// Where to run, as the target options say.
struct TargetOptions {
    std::optional<std::string> target, ssh, identity, known_hosts;

    [[nodiscard]] static TargetOptions from(const ParsedArgs& args) {
        return {args.get("--target"), args.get("--ssh"), args.get("--identity"), args.get("--known-hosts")};
    }
};

/// The chosen place: std::nullopt connection means this host.
struct Destination {
    std::optional<shannot::SshConnection> ssh;
    std::string profile;  ///< the remote's profile from the config file, if any
    std::string label;    ///< "this host", "root@db1:22", "remote 'db' (root@db1:22)"
};

[[nodiscard]] inline Expected<Destination> resolve_destination(const TargetOptions& o) {
    if (o.target && o.ssh) return usage_error("--target and --ssh both name a host", "give one of them");
    if (!o.target && !o.ssh) {
        if (o.identity || o.known_hosts)
            return usage_error(std::string(o.identity ? "-i/--identity" : "--known-hosts") + " applies to ssh only",
                               "add --ssh [USER@]HOST[:PORT] or --target NAME");
        return Destination{std::nullopt, {}, "this host"};
    }
    Destination d;
    Remote remote;
    int bad_status = status::usage;
    if (o.target) {
        auto file = config_path();
        if (!file) return tl::make_unexpected(std::move(file.error()));
        auto config = load_config(*file);
        if (!config) return tl::make_unexpected(std::move(config.error()));
        const auto it = config->remotes.find(*o.target);
        if (it == config->remotes.end()) {
            std::string names;
            for (const auto& [name, r] : config->remotes) names += (names.empty() ? "" : ", ") + name;
            return failure(status::bad_config, "no remote named '" + *o.target + "' in " + file->string(),
                           names.empty() ? "add one with `shannot remote add NAME HOST`"
                                         : "remotes there: " + names + " (`shannot remote list`)");
        }
        remote = it->second;
        d.profile = remote.profile;
        bad_status = status::bad_config;
    } else {
        auto spec = parse_host_spec(*o.ssh, "--ssh");
        if (!spec) return tl::make_unexpected(std::move(spec.error()));
        remote.host = spec->host;
        remote.user = spec->user;
        if (spec->port) remote.port = *spec->port;
    }
    if (o.identity) remote.key = *o.identity;
    if (o.known_hosts) remote.known_hosts = *o.known_hosts;
    if (!remote.key.empty()) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(remote.key, ec))
            return failure(o.identity ? status::usage : status::bad_config, "ssh key '" + remote.key + "' is not a file",
                           "pass the private key's path with -i KEY");
    }
    auto connection = remote.connection();
    if (auto ok = shannot::validate(connection); !ok) return failure(bad_status, ok.error().message, "fix the host, user or port");
    d.ssh = std::move(connection);
    d.label = o.target ? "remote '" + *o.target + "' (" + remote.address() + ")" : remote.address();
    return d;
}

}  // namespace shannot_cli
