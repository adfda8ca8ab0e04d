// SPDX-License-Identifier: MIT
// The shannot tool: `export`, `lint` and `profiles`: looking at profiles without running them.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <shannot/shannot.hpp>

#include "args.hpp"
#include "common.hpp"
#include "encoding.hpp"
#include "help.hpp"
#include "profiles.hpp"

namespace shannot_cli {

/// export and lint check a profile's structure only: its bind sources may live on a remote.
/// (The ssh transport type is the one whose validation does not look at this host's files.)
using StructuralTransport = shannot::OpenSshProcessTransport;

inline constexpr OptionSpec profile_only_specs[] = {{"--profile", "", true}};

/// Parses `[--profile P]` for `where`; nullopt after printing help.
[[nodiscard]] inline Expected<std::optional<std::string>> parse_profile_only(std::span<const std::string> args, std::string_view where,
                                                                             std::string_view topic) {
    auto parsed = parse_args(args, profile_only_specs, where, Positionals::interleaved);
    if (!parsed) return tl::make_unexpected(std::move(parsed.error()));
    if (parsed->help) {
        print_help(topic);
        return std::optional<std::string>{};
    }
    if (!parsed->positionals.empty())
        return usage_error(std::string(where.substr(8)) + ": unexpected argument '" + parsed->positionals.front() + "'",
                           "see `" + std::string(where) + " --help`");
    return std::optional<std::string>{parsed->get("--profile").value_or("")};
}

/// `shannot export [--profile P]`.
inline int export_command(std::span<const std::string> args) {
    auto spec = parse_profile_only(args, "shannot export", "export");
    if (!spec) return report(spec.error());
    if (!*spec) return status::ok;
    auto profile = resolve_profile<StructuralTransport>(**spec);
    if (!profile) return report(profile.error());
    write_all(1, dump_json(profile->to_json(), 2) + "\n");
    return status::ok;
}

[[nodiscard]] inline std::string_view severity_name(shannot::LintFinding::Severity s) {
    switch (s) {
    case shannot::LintFinding::Severity::info: return "info";
    case shannot::LintFinding::Severity::warning: return "warning";
    case shannot::LintFinding::Severity::danger: return "danger";
    }
    return "unknown";
}

/// `shannot lint [--profile P]`: exit 1 when any finding is a danger.
inline int lint_command(std::span<const std::string> args) {
    auto spec = parse_profile_only(args, "shannot lint", "lint");
    if (!spec) return report(spec.error());
    if (!*spec) return status::ok;
    auto profile = resolve_profile<StructuralTransport>(**spec);
    if (!profile) return report(profile.error());
    const auto findings = shannot::lint_profile(*profile);
    bool danger = false;
    std::string out;
    for (const auto& f : findings) {
        danger = danger || f.severity == shannot::LintFinding::Severity::danger;
        std::string severity(severity_name(f.severity));
        severity.resize(8, ' ');
        out += severity + f.code + "  " + one_line(f.message) + "\n";
    }
    out += "profile '" + profile->name + "': " + std::to_string(findings.size()) + " finding(s)" +
           (danger ? ", at least one danger" : "") + "\n";
    write_all(1, out);
    return danger ? status::check_failed : status::ok;
}

/// `shannot profiles`.
inline int profiles_command(std::span<const std::string> args) {
    auto parsed = parse_args(args, {}, "shannot profiles", Positionals::interleaved);
    if (!parsed) return report(parsed.error());
    if (parsed->help) return print_help("profiles");
    if (!parsed->positionals.empty())
        return report(Failure{status::usage, "profiles: unexpected argument '" + parsed->positionals.front() + "'",
                              "it takes no arguments"});
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
        const auto stem = file.stem().string();
        std::string how;
        if (is_builtin_name(stem)) how = "shadowed by the built-in '" + stem + "': pick it with --profile " + file.string();
        else if (valid_remote_name(stem) && stem.front() != '.') how = "--profile " + stem;
        else how = "--profile " + file.string();
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

}  // namespace shannot_cli
