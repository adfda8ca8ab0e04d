// SPDX-License-Identifier: MIT
// The shannot tool: `shannot --help` and `shannot help [SUBCOMMAND [VERB]]`.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common.hpp"
#include "subcommand.hpp"

namespace shannot_cli {

/// "run, verify, export, ...": the names of the subcommand table, for hints.
[[nodiscard]] inline std::string subcommand_names() {
    return join_names(subcommands(), [](const Subcommand* s) { return s->name; });
}

/// `shannot --help`: the subcommands with their summaries, then the exit statuses.
[[nodiscard]] inline std::string main_help_text() {
    std::string out = R"(usage: shannot [run] [OPTIONS] [--] COMMAND [ARG...]
       shannot SUBCOMMAND [OPTIONS] [ARG...]

Runs COMMAND in a read-only bubblewrap sandbox, on this host or on a remote host over ssh.

subcommands:
)";
    std::size_t width = 0;
    for (const Subcommand* s : subcommands()) width = std::max(width, s->name.size());
    // A summary is one line: wrapped only past 100 columns.
    for (const Subcommand* s : subcommands()) append_help_row(out, s->name, s->summary, 2 + width + 3, 100);
    out += R"(
`shannot SUBCOMMAND --help` lists its options (`shannot run --help`: those of a run);
--version prints the version.

)";
    out += exit_status_help;
    return out;
}

inline int print_main_help() {
    write_all(1, main_help_text());
    return status::ok;
}

/// `shannot help [SUBCOMMAND [VERB]]`: the same text as `shannot SUBCOMMAND [VERB] --help`.
inline int help_command(const Subcommand& self, std::span<const std::string> args) {
    if (args.empty()) return print_main_help();
    if (args[0] == "-h" || args[0] == "--help") return print_help(self);
    const Subcommand* topic = find_subcommand(args[0]);
    if (!topic)
        return report(Failure{status::usage, "shannot help: no subcommand '" + args[0] + "'",
                              "subcommands: " + subcommand_names()});
    if (args.size() > 1 && !topic->verbs().empty()) {
        for (const auto& verb : topic->verbs())
            if (verb.name == args[1]) return print_help(verb);
        return report(Failure{
            status::usage, "shannot help: no subcommand '" + args[0] + " " + args[1] + "'",
            "verbs of " + args[0] + ": " + join_names(topic->verbs(), [](const Subcommand& v) { return v.name; })});
    }
    return print_help(*topic);
}

inline constexpr Subcommand help_subcommand{
    .name = "help",
    .summary = "`shannot help SUBCOMMAND` is `shannot SUBCOMMAND --help`",
    .run = help_command,
    .help = {.usage = "shannot help [SUBCOMMAND [VERB]]",
             .about =
                 "Prints the help of SUBCOMMAND (or of its VERB, as in `shannot help remote add`); without one, the\n"
                 "list of subcommands.\n"},
};

}  // namespace shannot_cli
