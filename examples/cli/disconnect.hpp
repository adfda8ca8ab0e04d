// SPDX-License-Identifier: MIT
// The shannot tool: `shannot disconnect [HOST|--all]`: close the ssh connections --persist kept.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <shannot/shannot.hpp>

#include "args.hpp"
#include "common.hpp"
#include "config.hpp"
#include "encoding.hpp"
#include "subcommand.hpp"
#include "target.hpp"

namespace shannot_cli {

inline constexpr OptionSpec disconnect_option_specs[] = {
    {.long_name = "--all", .help = "close every kept connection"},
    {.long_name = "--list", .help = "print the kept connections (one per line; --json: as JSON) and close nothing"},
    {.long_name = "--json", .help = "with --list: print a JSON array"},
};

namespace detail {

/// Whether the kept connection `c` is the one HOST names: `[USER@]HOST[:PORT]` as --ssh takes
/// it (a part left out matches any), or a remote of the config file.
[[nodiscard]] inline Expected<bool> names_connection(const std::string& text, const shannot::PersistedConnection& c) {
    auto file = config_path();
    if (file) {
        if (auto config = load_config(*file); config && config->remotes.count(text)) {
            const auto& r = config->remotes.at(text);
            return c.host == r.host && c.port == r.port && (r.user.empty() || r.user == c.user);
        }
    }
    auto spec = parse_host_spec(text, "HOST");
    if (!spec) return tl::make_unexpected(std::move(spec.error()));
    return c.host == spec->host && (!spec->port || *spec->port == c.port) &&
           (spec->user.empty() || spec->user == c.user);
}

inline int disconnect_command(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_args(args, self.options, "shannot disconnect", Positionals::interleaved);
    if (!parsed) return report(parsed.error());
    if (parsed->help) return print_help(self);
    const bool all = parsed->has("--all"), list = parsed->has("--list");
    if (parsed->has("--json") && !list) return report(Failure{status::usage, "--json goes with --list", "add --list"});
    if (parsed->positionals.size() > 1) return report(Failure{status::usage, "disconnect: give one HOST", "or --all"});
    const bool host = parsed->positionals.size() == 1;
    if (!list && host == all)
        return report(Failure{status::usage,
                              host ? "disconnect: HOST and --all both given" : "disconnect: give HOST or --all",
                              "e.g. `shannot disconnect admin@db1`, `shannot disconnect --all`"});
    auto folder = shannot::default_persist_folder();
    if (!folder) return report(from_error(folder.error()));
    auto kept = shannot::list_persisted(*folder);
    if (!kept) return report(from_error(kept.error()));
    if (list) {
        if (parsed->has("--json")) {
            nlohmann::json out = nlohmann::json::array();
            for (const auto& c : *kept)
                out.push_back({{"host", c.host},
                               {"user", c.user},
                               {"port", c.port},
                               {"pid", c.ssh_pid},
                               {"alive", c.alive},
                               {"busy", c.busy},
                               {"commands", c.commands},
                               {"idle_left", c.idle_left},
                               {"folder", c.folder}});
            write_all(1, dump_json(out) + "\n");
            return status::ok;
        }
        std::string out;
        for (const auto& c : *kept)
            out += (c.user.empty() ? "" : c.user + "@") + c.host + ":" + std::to_string(c.port) + "  pid " +
                   std::to_string(c.ssh_pid) + (c.alive ? "" : " (gone)") + (c.busy ? "  in use" : "") + "  " +
                   std::to_string(c.commands) + " commands  closes in " + std::to_string(c.idle_left) + " s unused\n";
        write_all(1, out.empty() ? "no kept connections in " + *folder + "\n" : out);
        return status::ok;
    }
    std::string error;
    auto closed = shannot::close_persisted(*folder, [&](const shannot::PersistedConnection& c) {
        if (all) return true;
        auto match = names_connection(parsed->positionals[0], c);
        if (!match) error = match.error().message;
        return match && *match;
    });
    if (!error.empty()) return report(Failure{status::usage, error, "write [USER@]HOST[:PORT] or a remote's name"});
    if (!closed) return report(from_error(closed.error()));
    write_all(1, "closed " + std::to_string(*closed) + " connection" + (*closed == 1 ? "" : "s") + "\n");
    return status::ok;
}

}  // namespace detail

inline constexpr Subcommand disconnect_subcommand{
    .name = "disconnect",
    .summary = "close the ssh connections that runs kept open (--persist): one host's, or --all",
    .run = detail::disconnect_command,
    .options = disconnect_option_specs,
    .help = {.usage = "shannot disconnect HOST | --all | --list [--json]",
             .about = R"(Runs over ssh keep their connection, with a warm sandbox starter, for --persist seconds
unused (default 60), so that the next run to the same host costs a sandbox start, not a
login. This closes them now: those to HOST ([USER@]HOST[:PORT], or a remote's name; a part
left out matches any), or all of them. Whatever still runs on a closed connection is killed
on the remote. They live in $XDG_RUNTIME_DIR/shannot (else ~/.cache/shannot/ssh), private
to you (see SECURITY.md).
)"},
};

}  // namespace shannot_cli
