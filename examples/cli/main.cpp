// SPDX-License-Identifier: MIT
// The shannot command-line tool: run commands in a read-only bubblewrap sandbox, here or over ssh.
#include <exception>
#include <span>
#include <string>
#include <vector>

#include <shannot/shannot.hpp>

#include "common.hpp"
#include "help.hpp"
#include "info.hpp"
#include "remote.hpp"
#include "run.hpp"
#include "verify.hpp"

namespace shannot_cli {

inline int dispatch(const std::vector<std::string>& all) {
    std::span<const std::string> args(all);
    if (args.empty())
        return report(Failure{status::usage, "no command given", "e.g. `shannot ls /`; `shannot --help` lists the subcommands"});
    const auto& first = args[0];
    const auto rest = args.subspan(1);
    if (first == "-h" || first == "--help") return print_help("");
    if (first == "--version") {
        write_all(1, "shannot " + std::to_string(SHANNOT_VERSION_MAJOR) + "." + std::to_string(SHANNOT_VERSION_MINOR) + "." +
                         std::to_string(SHANNOT_VERSION_PATCH) + "\n");
        return status::ok;
    }
    if (first == "help") {
        if (rest.empty()) return print_help("");
        if (!is_help_topic(rest[0]))
            return report(Failure{status::usage, "shannot help: no subcommand '" + rest[0] + "'",
                                  "subcommands: run, verify, export, lint, profiles, remote"});
        return print_help(rest[0]);
    }
    if (first == "run") return run_command(rest, false);
    if (first == "verify") return verify_command(rest);
    if (first == "export") return export_command(rest);
    if (first == "lint") return lint_command(rest);
    if (first == "profiles") return profiles_command(rest);
    if (first == "remote") return remote_command(rest);
    return run_command(args, true);  // `shannot ls /` is `shannot run ls /`
}

}  // namespace shannot_cli

int main(int argc, char** argv) {
    try {
        return shannot_cli::dispatch(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const std::exception& e) {
        return shannot_cli::report({shannot_cli::status::internal, std::string("internal error: ") + e.what(), "please report it"});
    } catch (...) {
        return shannot_cli::report({shannot_cli::status::internal, "internal error", "please report it"});
    }
}
