// SPDX-License-Identifier: MIT
// The shannot tool: where a command runs. This host, a named remote (--target), or --ssh.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <algorithm>
#include <functional>
#include <vector>

#include <shannot/shannot.hpp>

#include "args.hpp"
#include "common.hpp"
#include "config.hpp"

namespace shannot_cli {

/// The options that choose a remote; shared by run and verify (TargetOptions::from reads them).
inline constexpr OptionSpec target_option_specs[] = {
    {.long_name = "--target",
     .metavar = "NAMES",
     .help = "run on remotes from the config file: a comma-separated list of remote names (`shannot remote add`) and "
             "@GROUPs (`shannot remote group`)"},
    {.long_name = "--ssh",
     .metavar = "[USER@]HOST[:PORT]",
     .help =
         "run on HOST over the system ssh (BatchMode; an unknown host key is accepted and remembered, a changed one "
         "refused). Repeat it for several hosts",
     .repeatable = true},
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
        return usage_error(std::string(what) + ": '" + std::string(text) + "' " + why,
                           "write [USER@]HOST[:PORT], e.g. admin@db1:2222");
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
    } else if (const auto colon = text.find(':');
               colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
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

/// Where to run, as the target options say (and, for run, --inventory and --hosts).
struct TargetOptions {
    std::optional<std::string> target{};
    std::vector<std::string> ssh{};
    std::optional<std::string> identity{}, known_hosts{}, inventory{}, hosts{};

    [[nodiscard]] static TargetOptions from(const ParsedArgs& args) {
        return {args.get("--target"),      args.all("--ssh"),       args.get("--identity"),
                args.get("--known-hosts"), args.get("--inventory"), args.get("--hosts")};
    }
};

/// The chosen place: std::nullopt connection means this host.
struct Destination {
    std::optional<shannot::SshConnection> ssh;
    std::string profile;  ///< the remote's profile from the config file, if any
    std::string label;    ///< "this host", "root@db1:22", "remote 'db' (root@db1:22)"
    std::string name{};   ///< how output names it: the --ssh text as given, a remote's or an inventory host's name
};

/// For subcommands that work on one host (verify, remote test): --target NAME or one --ssh.
[[nodiscard]] inline Expected<Destination> resolve_destination(const TargetOptions& o) {
    if (o.ssh.size() > 1 || (o.target && o.target->find_first_of(",@") != std::string::npos))
        return usage_error("this subcommand works on one host", "give one --ssh or one remote name with --target");
    if (o.target && !o.ssh.empty()) return usage_error("--target and --ssh both name a host", "give one of them");
    if (!o.target && o.ssh.empty()) {
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
        auto spec = parse_host_spec(o.ssh.front(), "--ssh");
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
            return failure(o.identity ? status::usage : status::bad_config,
                           "ssh key '" + remote.key + "' is not a file", "pass the private key's path with -i KEY");
    }
    auto connection = remote.connection();
    if (auto ok = shannot::validate(connection); !ok)
        return failure(bad_status, ok.error().message, "fix the host, user or port");
    d.ssh = std::move(connection);
    d.label = o.target ? "remote '" + *o.target + "' (" + remote.address() + ")" : remote.address();
    d.name = o.target ? *o.target : o.ssh.front();
    return d;
}

namespace detail {

/// The remotes a --target list names, groups expanded (depth first, each remote once, in order).
[[nodiscard]] inline Expected<std::vector<std::string>> expand_targets(const Config& config,
                                                                       const std::filesystem::path& file,
                                                                       const std::string& list) {
    std::vector<std::string> out, path;
    std::function<Expected<void>(const std::string&)> add = [&](const std::string& item) -> Expected<void> {
        if (item.empty()) return usage_error("--target: '" + list + "' has an empty name", "write NAME,NAME,@GROUP");
        if (item.front() == '@') {
            const auto group = item.substr(1);
            const auto it = config.groups.find(group);
            if (it == config.groups.end())
                return failure(status::bad_config, "no group named '" + group + "' in " + file.string(),
                               "add one with `shannot remote group " + group + " REMOTE...`");
            if (std::find(path.begin(), path.end(), group) != path.end())
                return failure(status::bad_config, file.string() + ": groups." + group + " contains itself",
                               "fix the group");
            path.push_back(group);
            for (const auto& member : it->second)
                if (auto ok = add(member); !ok) return ok;
            path.pop_back();
            return {};
        }
        if (!config.remotes.count(item)) {
            std::string names;
            for (const auto& [name, r] : config.remotes) names += (names.empty() ? "" : ", ") + name;
            return failure(status::bad_config,
                           "no remote named '" + item + "' in " + file.string() +
                               (path.empty() ? "" : " (in group '" + path.back() + "')"),
                           names.empty() ? "add one with `shannot remote add NAME HOST`"
                                         : "remotes there: " + names + " (`shannot remote list`)");
        }
        if (std::find(out.begin(), out.end(), item) == out.end()) out.push_back(item);
        return {};
    };
    for (std::size_t from = 0;;) {
        const auto comma = list.find(',', from);
        if (auto ok = add(list.substr(from, comma == std::string::npos ? std::string::npos : comma - from)); !ok)
            return tl::make_unexpected(std::move(ok.error()));
        if (comma == std::string::npos) break;
        from = comma + 1;
    }
    return out;
}

[[nodiscard]] inline Expected<void> check_key_file(const std::string& key, bool from_option) {
    std::error_code ec;
    if (key.empty() || std::filesystem::is_regular_file(key, ec)) return {};
    return failure(from_option ? status::usage : status::bad_config, "ssh key '" + key + "' is not a file",
                   "pass the private key's path with -i KEY");
}

}  // namespace detail

/// For run: every host the options name, in order (--target's remotes and groups, then each
/// --ssh, then the inventory's hosts that --hosts selects), each once; empty for this host.
[[nodiscard]] inline Expected<std::vector<Destination>> resolve_destinations(const TargetOptions& o) {
    std::vector<Destination> out;
    if (o.hosts && !o.inventory) return usage_error("--hosts selects from an inventory", "add --inventory FILE");
    if (o.inventory && !o.hosts)
        return usage_error("--inventory needs --hosts PATTERN", "e.g. --hosts all, --hosts web:!web3");
    if (!o.target && o.ssh.empty() && !o.inventory) {
        if (o.identity || o.known_hosts)
            return usage_error(std::string(o.identity ? "-i/--identity" : "--known-hosts") + " applies to ssh only",
                               "add --ssh [USER@]HOST[:PORT], --target NAME or --inventory FILE --hosts PATTERN");
        return out;
    }
    const auto finish = [&](Destination d, Remote remote, int bad_status, bool key_from_option) -> Expected<void> {
        if (o.identity) remote.key = *o.identity;
        if (o.known_hosts) remote.known_hosts = *o.known_hosts;
        if (auto ok = detail::check_key_file(remote.key, key_from_option || o.identity.has_value()); !ok) return ok;
        auto connection = remote.connection();
        if (auto ok = shannot::validate(connection); !ok)
            return failure(bad_status, d.name + ": " + ok.error().message, "fix the host, user or port");
        d.ssh = std::move(connection);
        for (const auto& seen : out)
            if (seen.name == d.name) return {};
        out.push_back(std::move(d));
        return {};
    };
    if (o.target) {
        auto file = config_path();
        if (!file) return tl::make_unexpected(std::move(file.error()));
        auto config = load_config(*file);
        if (!config) return tl::make_unexpected(std::move(config.error()));
        auto names = detail::expand_targets(*config, *file, *o.target);
        if (!names) return tl::make_unexpected(std::move(names.error()));
        for (const auto& name : *names) {
            const auto& remote = config->remotes.at(name);
            Destination d{std::nullopt, remote.profile, "remote '" + name + "' (" + remote.address() + ")", name};
            if (auto ok = finish(std::move(d), remote, status::bad_config, false); !ok)
                return tl::make_unexpected(std::move(ok.error()));
        }
    }
    for (const auto& text : o.ssh) {
        auto spec = parse_host_spec(text, "--ssh");
        if (!spec) return tl::make_unexpected(std::move(spec.error()));
        Remote remote;
        remote.host = spec->host;
        remote.user = spec->user;
        if (spec->port) remote.port = *spec->port;
        Destination d{std::nullopt, {}, remote.address(), text};
        if (auto ok = finish(std::move(d), remote, status::usage, true); !ok)
            return tl::make_unexpected(std::move(ok.error()));
    }
    if (o.inventory) {
        auto inventory = shannot::load_inventory(*o.inventory);
        if (!inventory)
            return failure(status::bad_config, inventory.error().message,
                           "fix the inventory (Ansible's INI or JSON form)");
        auto selected = inventory->select(*o.hosts);
        if (!selected)
            return failure(status::usage, "--hosts: " + selected.error().message,
                           "name groups or hosts of the inventory");
        for (const auto* host : *selected) {
            shannot::SshConnection base;
            if (o.identity) base.identity_file = *o.identity;
            if (o.known_hosts) base.known_hosts_file = *o.known_hosts;
            auto connection = inventory->connection(*host, base);
            if (!connection)
                return failure(status::bad_config, connection.error().message,
                               "fix the host's variables in the inventory");
            if (auto ok = detail::check_key_file(connection->identity_file, false); !ok)
                return failure(status::bad_config, *o.inventory + ": host " + host->name + ": " + ok.error().message,
                               "fix ansible_ssh_private_key_file");
            bool seen = false;
            for (const auto& d : out) seen = seen || d.name == host->name;
            if (!seen)
                out.push_back(Destination{std::move(*connection), {}, "inventory host " + host->name, host->name});
        }
    }
    return out;
}

}  // namespace shannot_cli
