// SPDX-License-Identifier: MIT
// The shannot tool: what a subcommand is (name, summary, handler, options, help), and its --help.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "args.hpp"
#include "common.hpp"

namespace shannot_cli {

/// The parts of a subcommand's --help that are not its options, kept in the subcommand's file.
struct HelpText {
    std::string_view usage{};    ///< after "usage: "; lines after the first start with 7 spaces
    std::string_view about{};    ///< paragraphs between the usage and the options, ending in '\n'
    std::string_view notes{};    ///< paragraphs after the options, ending in '\n'
    bool exit_statuses = false;  ///< end with the table of exit statuses
};

/// One subcommand (`verify`) or verb of one (`remote add`): the entry that dispatch, --help, `shannot
/// help NAME` and the hints read. Each is defined in its own file, next to its handler, and listed
/// in `subcommand_table` (main.cpp).
struct Subcommand {
    std::string_view name;
    std::string_view summary;  ///< one line in the list of `shannot --help` (or of the parent's help)
    /// Runs it with the arguments after its name, returns the exit status. It parses with
    /// `self.options` and prints `self`'s help (print_help) on -h/--help.
    int (*run)(const Subcommand& self, std::span<const std::string> args);
    std::span<const OptionSpec> options{};
    HelpText help{};
    /// Verbs, for a subcommand whose first argument picks one (`remote add`); `run` is then
    /// run_verb. A pointer and a count, not a std::span, as Subcommand is incomplete here.
    const Subcommand* verbs_data = nullptr;
    std::size_t verbs_size = 0;

    [[nodiscard]] constexpr std::span<const Subcommand> verbs() const { return {verbs_data, verbs_size}; }
};

/// Every subcommand, in the order `shannot --help` lists them: `subcommand_table` in main.cpp,
/// which includes every subcommand's file (the tool is one translation unit).
[[nodiscard]] std::span<const Subcommand* const> subcommands();

/// The subcommand called `name`, or nullptr.
[[nodiscard]] inline const Subcommand* find_subcommand(std::string_view name) {
    for (const Subcommand* s : subcommands())
        if (s->name == name) return s;
    return nullptr;
}

/// "a, b, c" (or "a, b or c" with `last` = " or ").
template <class Range, class Name>
[[nodiscard]] std::string join_names(const Range& items, Name name, std::string_view last = ", ") {
    std::string out;
    std::size_t i = 0;
    const std::size_t n = std::size(items);
    for (const auto& item : items) {
        if (i > 0) out += i + 1 == n ? last : std::string_view(", ");
        out += name(item);
        ++i;
    }
    return out;
}

inline constexpr std::string_view exit_status_help = R"(exit status:
  0-255  the command's own status; 128+N when signal N killed it
  1      verify: a check failed; lint: a danger finding; remote test: `ls /` failed
  120    the sandbox could not start (bwrap missing or failing, no namespaces)
  121    bad profile: invalid, or no profile by that name
  122    config file or inventory malformed or unwritable, or no remote or group by that name
  123    ssh failed: connection, authentication or host key (several hosts: one could not be reached)
  124    the command timed out (--timeout)
  125    usage error: unknown option, missing or bad argument
  126    the profile refused the command (not in its allowed_commands)
  128+N  interrupted by signal N (SIGINT, SIGTERM, SIGHUP stop the command first)
  70     internal error (a bug: please report it)
A command can exit with 120-126 itself: --json tells them apart ("exit_code" is the command's).
Several hosts: 0 when the command ran and exited 0 on every host, else the largest status.
)";

/// `shannot NAME --help`: usage, about, the verbs (if any), the options, notes, exit statuses.
[[nodiscard]] inline std::string help_text(const Subcommand& s) {
    std::string out = "usage: ";
    if (!s.help.usage.empty()) {
        out += s.help.usage;
        out += '\n';
    } else {  // a subcommand of verbs: one line per verb
        for (const auto& verb : s.verbs()) {
            out += out.size() > 7 ? "       " : "";
            out += std::string(verb.help.usage) + "\n";
        }
    }
    if (!s.help.about.empty()) out += "\n" + std::string(s.help.about);
    if (!s.verbs().empty()) {
        std::size_t width = 0;
        for (const auto& verb : s.verbs()) width = std::max(width, verb.name.size());
        out += "\n";
        for (const auto& verb : s.verbs()) append_help_row(out, verb.name, verb.summary, 2 + width + 2);
        out += "\n`shannot " + std::string(s.name) + " VERB --help` lists the options of VERB.\n";
    }
    if (!s.options.empty() || s.verbs().empty()) out += "\n" + options_help(s.options);
    if (!s.help.notes.empty()) out += "\n" + std::string(s.help.notes);
    if (s.help.exit_statuses) out += "\n" + std::string(exit_status_help);
    return out;
}

/// Prints `s`'s help on stdout and returns 0.
inline int print_help(const Subcommand& s) {
    write_all(1, help_text(s));
    return status::ok;
}

/// The `run` of a subcommand made of verbs: `shannot remote add ...` runs the verb `add`.
inline int run_verb(const Subcommand& self, std::span<const std::string> args) {
    const std::string names = join_names(
        self.verbs(), [](const Subcommand& v) { return v.name; }, " or ");
    const std::string name(self.name);
    if (args.empty())
        return report(
            Failure{status::usage, name + ": missing subcommand (" + names + ")", "see `shannot " + name + " --help`"});
    if (args[0] == "-h" || args[0] == "--help") return print_help(self);
    for (const auto& verb : self.verbs())
        if (verb.name == args[0]) return verb.run(verb, args.subspan(1));
    return report(Failure{status::usage, name + ": unknown subcommand '" + args[0] + "'", "use " + names});
}

/// What main.cpp checks of its table at compile time: names distinct, each option table valid
/// (options_are_valid), verbs likewise.
[[nodiscard]] constexpr bool subcommands_are_valid(std::span<const Subcommand* const> table) {
    for (std::size_t i = 0; i < table.size(); ++i) {
        const Subcommand& s = *table[i];
        if (s.name.empty() || s.name.front() == '-' || s.summary.empty() || !s.run || !options_are_valid(s.options))
            return false;
        if ((s.help.usage.empty()) == s.verbs().empty()) return false;  // verbs make the usage lines
        for (std::size_t j = 0; j < i; ++j)
            if (table[j]->name == s.name) return false;
        for (std::size_t v = 0; v < s.verbs().size(); ++v) {
            const Subcommand& verb = s.verbs()[v];
            if (verb.name.empty() || verb.summary.empty() || !verb.run || verb.help.usage.empty() ||
                !options_are_valid(verb.options))
                return false;
            for (std::size_t w = 0; w < v; ++w)
                if (s.verbs()[w].name == verb.name) return false;
        }
    }
    return true;
}

}  // namespace shannot_cli
