// SPDX-License-Identifier: MIT
// The shannot tool: `remote add|list|remove|test`: named remote hosts in the config file.
#pragma once

#include <filesystem>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <shannot/shannot.hpp>

#include "args.hpp"
#include "common.hpp"
#include "config.hpp"
#include "encoding.hpp"
#include "profiles.hpp"
#include "subcommand.hpp"
#include "target.hpp"

namespace shannot_cli {

namespace detail {

/// Parses the arguments of the verb `self` (`remote add`) against its options; nullopt after
/// printing its help. `positionals`: how many it takes.
[[nodiscard]] inline Expected<std::optional<ParsedArgs>> parse_remote(const Subcommand& self,
                                                                      std::span<const std::string> args,
                                                                      std::size_t positionals) {
    const std::string where = "shannot remote " + std::string(self.name);
    auto parsed = parse_args(args, self.options, where, Positionals::interleaved);
    if (!parsed) return tl::make_unexpected(std::move(parsed.error()));
    if (parsed->help) {
        print_help(self);
        return std::optional<ParsedArgs>{};
    }
    if (parsed->positionals.size() != positionals)
        return usage_error(where.substr(8) + ": " +
                               (parsed->positionals.size() < positionals ? "missing arguments" : "too many arguments"),
                           "usage: " + std::string(self.help.usage));
    for (const auto& p : parsed->positionals)
        if (!is_valid_utf8(p))
            return usage_error(where.substr(8) + ": arguments must be UTF-8 text", "check the arguments");
    for (const auto& o : parsed->options)
        if (!is_valid_utf8(o.value))
            return usage_error(where.substr(8) + ": " + o.name + " must be UTF-8 text", "check the value");
    return std::optional<ParsedArgs>{std::move(*parsed)};
}

[[nodiscard]] inline Expected<void> check_name(const std::string& name) {
    if (valid_remote_name(name)) return {};
    return usage_error("remote name '" + name + "' is not valid",
                       "use letters, digits, '.', '_' and '-', not starting with '-'");
}

[[nodiscard]] inline std::string absolute(const std::string& path) {
    std::error_code ec;
    const auto a = std::filesystem::absolute(path, ec);
    return ec ? path : a.lexically_normal().string();
}

inline int remote_add(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_remote(self, args, 2);
    if (!parsed) return report(parsed.error());
    if (!*parsed) return status::ok;
    const auto& a = **parsed;
    const auto& name = a.positionals[0];
    if (auto ok = check_name(name); !ok) return report(ok.error());
    auto spec = parse_host_spec(a.positionals[1], "HOST");
    if (!spec) return report(spec.error());
    Remote r;
    r.host = spec->host;
    r.user = spec->user;
    if (auto user = a.get("--user")) {
        if (!r.user.empty())
            return report(Failure{status::usage, "the user is given twice (in HOST and --user)", "give it once"});
        r.user = *user;
    }
    if (spec->port) r.port = *spec->port;
    if (auto port = a.get("--port")) {
        if (spec->port)
            return report(Failure{status::usage, "the port is given twice (in HOST and --port)", "give it once"});
        const auto n = parse_unsigned(*port);
        if (!n || *n < 1 || *n > 65535)
            return report(Failure{status::usage, "--port: '" + *port + "' is not 1-65535", "e.g. --port 2222"});
        r.port = static_cast<std::uint16_t>(*n);
    }
    if (auto key = a.get("--key")) {
        std::error_code ec;
        if (!std::filesystem::is_regular_file(*key, ec))
            return report(Failure{status::usage, "--key: '" + *key + "' is not a file", "pass the private key's path"});
        r.key = absolute(*key);
    }
    if (auto known = a.get("--known-hosts")) r.known_hosts = absolute(*known);
    if (auto profile = a.get("--profile")) {
        auto loaded = resolve_profile<shannot::OpenSshProcessTransport>(*profile);
        if (!loaded) return report(loaded.error());
        r.profile = looks_like_path(*profile) ? absolute(*profile) : *profile;
    }
    if (auto ok = shannot::validate(r.connection()); !ok)
        return report(Failure{status::usage, ok.error().message, "fix the host or user"});
    auto file = config_path();
    if (!file) return report(file.error());
    auto config = load_config(*file);
    if (!config) return report(config.error());
    if (config->remotes.count(name))
        return report(Failure{status::usage, "a remote named '" + name + "' exists already in " + file->string(),
                              "remove it first (`shannot remote remove " + name + "`) or pick another name"});
    config->remotes.emplace(name, r);
    if (auto ok = save_config(*file, *config); !ok) return report(ok.error());
    write_all(1, "added remote '" + name + "' (" + r.address() + ") to " + file->string() + "\n");
    return status::ok;
}

inline int remote_list(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_remote(self, args, 0);
    if (!parsed) return report(parsed.error());
    if (!*parsed) return status::ok;
    auto file = config_path();
    if (!file) return report(file.error());
    auto config = load_config(*file);
    if (!config) return report(config.error());
    if ((*parsed)->has("--json")) {
        const auto all = config_to_json(*config);
        nlohmann::json j = {
            {"schema_version", json_schema_version}, {"config_file", file->string()}, {"remotes", all["remotes"]}};
        if (!config->groups.empty()) j["groups"] = all["groups"];
        write_all(1, dump_json(j, 2) + "\n");
        return status::ok;
    }
    if (config->remotes.empty() && config->groups.empty()) {
        write_all(1, "no remotes in " + file->string() + "; add one with `shannot remote add NAME HOST`\n");
        return status::ok;
    }
    std::string out;
    for (const auto& [name, r] : config->remotes) {
        out += name + "  " + r.address();
        if (!r.key.empty()) out += "  key=" + r.key;
        if (!r.known_hosts.empty()) out += "  known_hosts=" + r.known_hosts;
        if (!r.profile.empty()) out += "  profile=" + r.profile;
        out += "\n";
    }
    for (const auto& [name, members] : config->groups)
        out += "@" + name + "  " + join_names(members, [](const std::string& m) { return m; }) + "\n";
    write_all(1, out);
    return status::ok;
}

inline int remote_remove(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_remote(self, args, 1);
    if (!parsed) return report(parsed.error());
    if (!*parsed) return status::ok;
    const auto& name = (*parsed)->positionals[0];
    if (auto ok = check_name(name); !ok) return report(ok.error());
    auto file = config_path();
    if (!file) return report(file.error());
    auto config = load_config(*file);
    if (!config) return report(config.error());
    if (config->remotes.erase(name) == 0)
        return report(Failure{status::bad_config, "no remote named '" + name + "' in " + file->string(),
                              "`shannot remote list` shows the names"});
    if (auto ok = save_config(*file, *config); !ok) return report(ok.error());
    write_all(1, "removed remote '" + name + "' from " + file->string() + "\n");
    return status::ok;
}

/// `remote group NAME MEMBER...`: sets the group (members: remote names or @GROUPs, which must exist).
inline int remote_group(const Subcommand& self, std::span<const std::string> args) {
    const std::string where = "shannot remote group";
    auto parsed = parse_args(args, self.options, where, Positionals::interleaved);
    if (!parsed) return report(parsed.error());
    if (parsed->help) return print_help(self);
    if (parsed->positionals.size() < 2)
        return report(Failure{status::usage, "remote group: give a NAME and at least one member",
                              "usage: " + std::string(self.help.usage)});
    const auto& name = parsed->positionals[0];
    if (auto ok = check_name(name); !ok) return report(ok.error());
    auto file = config_path();
    if (!file) return report(file.error());
    auto config = load_config(*file);
    if (!config) return report(config.error());
    if (config->remotes.count(name))
        return report(
            Failure{status::usage, "'" + name + "' names a remote already", "groups and remotes need different names"});
    std::vector<std::string> members(parsed->positionals.begin() + 1, parsed->positionals.end());
    auto trial = *config;
    trial.groups[name] = members;
    std::string list;
    for (const auto& m : members) list += (list.empty() ? "" : ",") + m;
    auto expanded = expand_targets(trial, *file, list);  // unknown members and cycles are refused now, not at use
    if (!expanded) {
        auto f = expanded.error();
        f.status = status::usage;
        return report(f);
    }
    if (auto ok = save_config(*file, trial); !ok) return report(ok.error());
    write_all(1, "group '" + name + "': " + std::to_string(expanded->size()) + " remote" +
                     (expanded->size() == 1 ? "" : "s") + " (" +
                     join_names(*expanded, [](const std::string& n) { return n; }) + ") in " + file->string() + "\n");
    return status::ok;
}

inline int remote_ungroup(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_remote(self, args, 1);
    if (!parsed) return report(parsed.error());
    if (!*parsed) return status::ok;
    const auto& name = (*parsed)->positionals[0];
    auto file = config_path();
    if (!file) return report(file.error());
    auto config = load_config(*file);
    if (!config) return report(config.error());
    if (config->groups.erase(name) == 0)
        return report(Failure{status::bad_config, "no group named '" + name + "' in " + file->string(),
                              "`shannot remote list` shows them"});
    for (const auto& [other, members] : config->groups)
        for (const auto& m : members)
            if (m == "@" + name)
                return report(Failure{status::usage, "group '" + other + "' includes @" + name,
                                      "remove it from '" + other + "' first"});
    if (auto ok = save_config(*file, *config); !ok) return report(ok.error());
    write_all(1, "removed group '" + name + "' from " + file->string() + "\n");
    return status::ok;
}

inline int remote_test(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_remote(self, args, 1);
    if (!parsed) return report(parsed.error());
    if (!*parsed) return status::ok;
    const auto& name = (*parsed)->positionals[0];
    if (auto ok = check_name(name); !ok) return report(ok.error());
    TargetOptions target;
    target.target = name;
    auto destination = resolve_destination(target);
    if (!destination) return report(destination.error());
    auto profile = resolve_profile<shannot::OpenSshProcessTransport>(destination->profile);
    if (!profile) return report(profile.error());
    const std::vector<std::string> command = {"ls", "/"};
    shannot::SshSandbox probe(*profile, shannot::OpenSshProcessTransport(*destination->ssh));
    std::string note_text;
    if (auto admitted = probe.dry_run(command); !admitted && admitted.error().code == shannot::errc::command_refused) {
        profile->allowed_commands.push_back("ls");  // the test needs `ls`, the profile may not allow it
        note_text = " (with a copy of profile '" + profile->name + "' that allows ls)";
    }
    shannot::SshSandbox sandbox(std::move(*profile), probe.transport());
    shannot::RunOptions options;
    options.timeout = std::chrono::seconds(30);
    auto r = sandbox.run(command, options);
    if (!r) return report(from_error(r.error()));
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(r->duration).count();
    if (!r->succeeded()) {
        write_all(1, "FAIL  " + destination->label + ": `ls /` exited " + std::to_string(r->exit_code) + ": " +
                         one_line(r->stderr_data) + "\n");
        return status::check_failed;
    }
    std::size_t entries = 0;
    for (char ch : r->stdout_data) entries += ch == '\n' ? 1 : 0;
    write_all(1, "ok    " + destination->label + ": `ls /` ran in the sandbox there" + note_text + " (" +
                     std::to_string(entries) + " entries, " + std::to_string(ms) + " ms)\n");
    return status::ok;
}

}  // namespace detail

inline constexpr OptionSpec remote_add_option_specs[] = {
    {.long_name = "--user", .metavar = "U", .help = "the ssh user (default: ssh's, usually yours)"},
    {.long_name = "--port", .metavar = "N", .help = "the ssh port (default 22)"},
    {.long_name = "--key", .metavar = "FILE", .help = "the ssh private key; stored as an absolute path"},
    {.long_name = "--known-hosts", .metavar = "FILE", .help = "the ssh known_hosts file; stored as an absolute path"},
    {.long_name = "--profile",
     .metavar = "P",
     .help = "the profile used there unless a run's --profile says otherwise"},
};

inline constexpr OptionSpec remote_list_option_specs[] = {
    {.long_name = "--json",
     .help = "print one JSON object: schema_version, config_file, and remotes as the config file holds them"},
};

/// The verbs of `shannot remote`, in the order its help lists them.
inline constexpr Subcommand remote_verbs[] = {
    {.name = "add",
     .summary = "store a remote. NAME: letters, digits, '.', '_', '-', not starting with '-'. HOST may also be written "
                "[USER@]HOST[:PORT]",
     .run = detail::remote_add,
     .options = remote_add_option_specs,
     .help = {.usage =
                  "shannot remote add NAME HOST [--user U] [--port N] [--key FILE] [--known-hosts FILE] [--profile P]",
              .about = R"(Stores a remote named NAME in the config file. NAME: letters, digits, '.', '_', '-', not
starting with '-'. HOST may also be written [USER@]HOST[:PORT].
)"}},
    {.name = "list",
     .summary = "print the remotes (--json: as one JSON object)",
     .run = detail::remote_list,
     .options = remote_list_option_specs,
     .help = {.usage = "shannot remote list [--json]",
              .about = "Prints the remotes of the config file, one per line.\n"}},
    {.name = "remove",
     .summary = "forget a remote",
     .run = detail::remote_remove,
     .help = {.usage = "shannot remote remove NAME", .about = "Removes the remote NAME from the config file.\n"}},
    {.name = "group",
     .summary = "name a group of remotes: `--target @NAME` runs on all of them (members: remote names and @GROUPs)",
     .run = detail::remote_group,
     .help = {.usage = "shannot remote group NAME MEMBER...",
              .about = R"(Stores (or replaces) the group NAME in the config file: its MEMBERs are remote names and
@GROUPs, which must exist. `shannot --target @NAME COMMAND...` then runs COMMAND on every
remote of the group at once; --target also takes lists, e.g. `--target db1,@web`.
)"}},
    {.name = "ungroup",
     .summary = "forget a group (its remotes stay)",
     .run = detail::remote_ungroup,
     .help = {.usage = "shannot remote ungroup NAME",
              .about = "Removes the group NAME from the config file; its remotes stay.\n"}},
    {.name = "test",
     .summary = "run `ls /` in the remote's sandbox and report how it went (exit 0 when it ran)",
     .run = detail::remote_test,
     .help = {.usage = "shannot remote test NAME",
              .about = R"(Runs `ls /` in the sandbox on the remote NAME, with its profile (a copy that allows ls if it
does not), and reports how it went: exit 0 when it ran, 1 when `ls /` failed.
)"}},
};

inline constexpr Subcommand remote_subcommand{
    .name = "remote",
    .summary = "add, list, remove, group and test named remote hosts",
    .run = run_verb,
    .help = {.about = R"(Named remote hosts, kept in $XDG_CONFIG_HOME/shannot/config.json (else
~/.config/shannot/config.json; written atomically, mode 0600). Use one with
`shannot --target NAME COMMAND...`, and a group of them with `shannot --target @GROUP ...`.
)"},
    .verbs_data = remote_verbs,
    .verbs_size = std::size(remote_verbs),
};

}  // namespace shannot_cli
