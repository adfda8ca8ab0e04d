// SPDX-License-Identifier: MIT
// The shannot command-line tool: run commands in a read-only bubblewrap sandbox, here or over ssh.
#include <exception>
#include <span>
#include <string>
#include <vector>

#include <shannot/shannot.hpp>

#include "common.hpp"
#include "completion.hpp"
#include "disconnect.hpp"
#include "help.hpp"
#include "info.hpp"
#include "man_page.hpp"
#include "mcp.hpp"
#include "remote.hpp"
#include "run.hpp"
#include "subcommand.hpp"
#include "verify.hpp"

namespace shannot_cli {

/// The subcommands, in the order `shannot --help` lists them. Dispatch, `shannot --help`, `shannot
/// help NAME` and the hints that name subcommands all read this table.
///   - A subcommand: a file `NAME.hpp` with its options (`OptionSpec`s, help next to each), its
///     handler `int NAME_command(const Subcommand& self, std::span<const std::string> args)` (parse
///     with `self.options`, `print_help(self)` on --help) and `inline constexpr Subcommand
///     NAME_subcommand{...}`; include the file above and add `&NAME_subcommand` here.
///   - An option: one `OptionSpec` entry in the subcommand's table (`run_own_option_specs` for run),
///     then read it in its parser (`parsed->get`, `has`, or `all` for a repeatable one).
inline constexpr const Subcommand* subcommand_table[] = {
    &run_subcommand,    &verify_subcommand,     &export_subcommand, &lint_subcommand, &profiles_subcommand,
    &remote_subcommand, &disconnect_subcommand, &mcp_subcommand,    &help_subcommand,
};
static_assert(subcommands_are_valid(subcommand_table),
              "a subcommand or verb repeats a name, lacks a summary, usage or handler, or has an invalid option table "
              "(options_are_valid: \"--name\", \"-x\", no name twice, no -h/--help, help for each)");

inline int dispatch(const std::vector<std::string>& all) {
    std::span<const std::string> args(all);
    if (args.empty())
        return report(
            Failure{status::usage, "no command given", "e.g. `shannot ls /`; `shannot --help` lists the subcommands"});
    const auto& first = args[0];
    if (first == "-h" || first == "--help") return print_main_help();
    // Not listed in --help: what the build installs, made from this table (examples/cli/meson.build).
    if (first == "--help-man") return write_all(1, man_page()) ? status::ok : status::internal;
    if (first == "--help-completion") return write_all(1, bash_completion()) ? status::ok : status::internal;
    if (first == "--version") {
        write_all(1, "shannot " + std::to_string(SHANNOT_VERSION_MAJOR) + "." + std::to_string(SHANNOT_VERSION_MINOR) +
                         "." + std::to_string(SHANNOT_VERSION_PATCH) + "\n");
        return status::ok;
    }
    if (const Subcommand* s = find_subcommand(first)) return s->run(*s, args.subspan(1));
    return run_implicit(args);  // `shannot ls /` is `shannot run ls /`
}

}  // namespace shannot_cli

std::span<const shannot_cli::Subcommand* const> shannot_cli::subcommands() { return subcommand_table; }

int main(int argc, char** argv) {
    try {
        return shannot_cli::dispatch(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const std::exception& e) {
        return shannot_cli::report(
            {shannot_cli::status::internal, std::string("internal error: ") + e.what(), "please report it"});
    } catch (...) {
        return shannot_cli::report({shannot_cli::status::internal, "internal error", "please report it"});
    }
}
