// SPDX-License-Identifier: MIT
// The shannot tool: `export`, `lint` and `profiles`: looking at profiles without running them.
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <shannot/shannot.hpp>

#include "args.hpp"
#include "common.hpp"
#include "encoding.hpp"
#include "profiles.hpp"
#include "subcommand.hpp"

namespace shannot_cli {

/// export and lint check a profile's structure only: its bind sources may live on a remote.
/// (The ssh transport type is the one whose validation does not look at this host's files.)
using StructuralTransport = shannot::OpenSshProcessTransport;

/// Options of export.
inline constexpr OptionSpec profile_only_specs[] = {
    {.long_name = "--profile", .metavar = "P", .help = "as for `shannot run` (default: minimal)"},
};

/// Options of lint.
inline constexpr OptionSpec lint_option_specs[] = {
    {.long_name = "--profile", .metavar = "P", .help = "as for `shannot run` (default: minimal)"},
    {.long_name = "--json", .help = "print the findings as one JSON object (docs/cli.md)"},
};

/// Parses `self`'s options (no positionals); nullopt after printing help.
[[nodiscard]] inline Expected<std::optional<ParsedArgs>> parse_options_only(const Subcommand& self,
                                                                            std::span<const std::string> args) {
    const std::string where = "shannot " + std::string(self.name);
    auto parsed = parse_args(args, self.options, where, Positionals::interleaved);
    if (!parsed) return tl::make_unexpected(std::move(parsed.error()));
    if (parsed->help) {
        print_help(self);
        return std::optional<ParsedArgs>{};
    }
    if (!parsed->positionals.empty())
        return usage_error(std::string(self.name) + ": unexpected argument '" + parsed->positionals.front() + "'",
                           "see `" + where + " --help`");
    return std::optional<ParsedArgs>{std::move(*parsed)};
}

/// `shannot export [--profile P]`.
inline int export_command(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_options_only(self, args);
    if (!parsed) return report(parsed.error());
    if (!*parsed) return status::ok;
    auto profile = resolve_profile<StructuralTransport>((*parsed)->get("--profile").value_or(""));
    if (!profile) return report(profile.error());
    write_all(1, dump_json(profile->to_json(), 2) + "\n");
    return status::ok;
}

inline constexpr Subcommand export_subcommand{
    .name = "export",
    .summary = "print a profile as JSON, every field",
    .run = export_command,
    .options = profile_only_specs,
    .help = {.usage = "shannot export [--profile P]",
             .about = R"(Prints the profile as JSON with every field, defaults included; loading the output back gives
the same profile. Only the structure is checked: bind sources may be missing on this host.
)"},
};

[[nodiscard]] inline std::string_view severity_name(shannot::LintFinding::Severity s) {
    switch (s) {
    case shannot::LintFinding::Severity::info: return "info";
    case shannot::LintFinding::Severity::warning: return "warning";
    case shannot::LintFinding::Severity::danger: return "danger";
    }
    return "unknown";
}

/// `shannot lint [--profile P] [--json]`: exit 1 when any finding is a danger.
inline int lint_command(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_options_only(self, args);
    if (!parsed) return report(parsed.error());
    if (!*parsed) return status::ok;
    auto profile = resolve_profile<StructuralTransport>((*parsed)->get("--profile").value_or(""));
    if (!profile) return report(profile.error());
        // Loaded without looking at this host's files (a required source may be missing here); linted
        // as a local profile, so the findings say which bind sources this host lacks. Where there is
        // no local transport (SHANNOT_PORTABLE_POSIX=1, off Linux), as a remote one.
#if SHANNOT_PLATFORM_LINUX
    using LintTransport = shannot::PosixSpawnTransport;
#else
    using LintTransport = shannot::OpenSshProcessTransport;
#endif
    const auto findings = shannot::lint_profile(profile->for_transport<LintTransport>());
    bool danger = false;
    for (const auto& f : findings) danger = danger || f.severity == shannot::LintFinding::Severity::danger;
    if ((*parsed)->has("--json")) {
        nlohmann::json list = nlohmann::json::array();
        for (const auto& f : findings)
            list.push_back({{"severity", severity_name(f.severity)}, {"code", f.code}, {"message", f.message}});
        const nlohmann::json j = {{"schema_version", json_schema_version},
                                  {"profile", profile->name},
                                  {"findings", std::move(list)},
                                  {"danger", danger}};
        write_all(1, dump_json(j, 2) + "\n");
        return danger ? status::check_failed : status::ok;
    }
    std::string out;
    for (const auto& f : findings) {
        std::string severity(severity_name(f.severity));
        severity.resize(8, ' ');
        out += severity + f.code + "  " + one_line(f.message) + "\n";
    }
    out += "profile '" + profile->name + "': " + std::to_string(findings.size()) + " finding(s)" +
           (danger ? ", at least one danger" : "") + "\n";
    write_all(1, out);
    return danger ? status::check_failed : status::ok;
}

inline constexpr Subcommand lint_subcommand{
    .name = "lint",
    .summary = "list the risks a profile takes",
    .run = lint_command,
    .options = lint_option_specs,
    .help = {.usage = "shannot lint [--profile P] [--json]",
             .about = R"(Lists the risks the profile takes, one per line: SEVERITY CODE MESSAGE, where SEVERITY is
info, warning or danger (danger: the sandbox can be escaped from the allowlist or reach the
network, e.g. an allowed command that runs other commands, like `find -exec`). Bind sources
are looked for on this host: `skipped-bind` names one a run here would skip (its source is
missing), `missing-source` one whose absence fails the run (it is "required", or masks part
of another mount, and is never skipped).
Exit status 1 when there is a danger finding, else 0 (warnings alone do not fail).
)"},
};

/// The --profile value that picks `file` of a profile folder, and whether a built-in shadows it.
[[nodiscard]] inline std::pair<std::string, bool> profile_arg_for(const std::filesystem::path& file) {
    const auto stem = file.stem().string();
    if (is_builtin_name(stem)) return {file.string(), true};
    if (valid_remote_name(stem) && stem.front() != '.') return {stem, false};
    return {file.string(), false};
}

/// `shannot profiles --json`: the same listing as one object (docs/cli.md).
[[nodiscard]] inline nlohmann::json profiles_json() {
    nlohmann::json builtins = nlohmann::json::array();
    for (auto name : shannot::builtin_profile_names) {
        auto p = shannot::builtin_profile<StructuralTransport>(name);
        builtins.push_back({{"name", std::string(name)},
                            {"default", name == shannot::default_profile_name},
                            {"allowed_commands", p ? p->allowed_commands : std::vector<std::string>{}}});
    }
    nlohmann::json folders = nlohmann::json::array();
    for (const auto& dir : profile_dirs()) folders.push_back({{"label", dir.label}, {"path", dir.path.string()}});
    nlohmann::json files = nlohmann::json::array();
    for (const auto& [dir, file] : profile_files()) {
        const auto [arg, shadowed] = profile_arg_for(file);
        auto p = shannot::load_profile_from_path<StructuralTransport>(file);
        nlohmann::json entry = {{"folder", dir.label},
                                {"path", file.string()},
                                {"profile_arg", arg},
                                {"shadowed", shadowed},
                                {"valid", p.has_value()}};
        if (p)
            entry["name"] = p->name;
        else
            entry["error"] = p.error().message;
        files.push_back(std::move(entry));
    }
    return {{"schema_version", json_schema_version},
            {"default", std::string(shannot::default_profile_name)},
            {"builtin", std::move(builtins)},
            {"folders", std::move(folders)},
            {"files", std::move(files)}};
}

/// `shannot profiles [--json]`.
inline int profiles_command(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_args(args, self.options, "shannot profiles", Positionals::interleaved);
    if (!parsed) return report(parsed.error());
    if (parsed->help) return print_help(self);
    if (!parsed->positionals.empty())
        return report(Failure{status::usage, "profiles: unexpected argument '" + parsed->positionals.front() + "'",
                              "it takes no arguments"});
    if (parsed->has("--json")) {
        write_all(1, dump_json(profiles_json(), 2) + "\n");
        return status::ok;
    }
    std::string out = "built-in profiles (--profile NAME):\n";
    for (auto name : shannot::builtin_profile_names) {
        auto p = shannot::builtin_profile<StructuralTransport>(name);
        std::string line = "  " + std::string(name);
        line.resize(15, ' ');
        line += name == shannot::default_profile_name ? "(default) " : "          ";
        std::string allowed;
        if (p)
            for (const auto& c : p->allowed_commands) allowed += (allowed.empty() ? "" : ", ") + c;
        out += line + "allows: " + allowed + "\n";
    }
    out += "profile files:\n";
    std::size_t files = 0;
    for (const auto& [dir, file] : profile_files()) {
        ++files;
        const auto [arg, shadowed] = profile_arg_for(file);
        const std::string how =
            shadowed ? "shadowed by the built-in '" + file.stem().string() + "': pick it with --profile " + arg
                     : "--profile " + arg;
        auto p = shannot::load_profile_from_path<StructuralTransport>(file);
        const std::string state = p ? "name '" + p->name + "'" : "INVALID: " + one_line(p.error().message);
        out += "  " + dir.label + "  " + file.string() + "  " + how + "  (" + state + ")\n";
    }
    if (files == 0) {
        out += "  (none; looked in";
        for (const auto& dir : profile_dirs()) out += " " + dir.path.string();
        out += ")\n";
    }
    write_all(1, out);
    return status::ok;
}

/// Options of profiles.
inline constexpr OptionSpec profiles_option_specs[] = {
    {.long_name = "--json", .help = "print the listing as one JSON object (docs/cli.md)"},
};

inline constexpr Subcommand profiles_subcommand{
    .name = "profiles",
    .summary = "list the built-in profiles and the profile files found",
    .run = profiles_command,
    .options = profiles_option_specs,
    .help = {.usage = "shannot profiles [--json]",
             .about = R"(Lists the built-in profiles and the profile files found, with the --profile value that picks
each. Files are NAME.json in $XDG_CONFIG_HOME/shannot/profiles (else ~/.config/shannot/profiles)
and in the installed share/shannot/profiles. A built-in name always means the built-in.
)"},
};

}  // namespace shannot_cli
