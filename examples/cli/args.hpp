// SPDX-License-Identifier: MIT
// The shannot tool: a small option scanner with errors that name the option and the fix.
#pragma once

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common.hpp"

namespace shannot_cli {

/// One option a subcommand accepts, and its line in `--help`: the scanner and the help text read
/// the same entry. Write entries with designated initializers:
///   {.long_name = "--timeout", .metavar = "SECONDS", .help = "stop the command after this long"}
struct OptionSpec {
    std::string_view long_name;     ///< "--profile": how the option is written, looked up and reported
    std::string_view short_name{};  ///< "-i", or empty
    std::string_view metavar{};     ///< the value's name in help ("P", "NAME=VALUE"); empty: takes no value
    std::string_view help{};        ///< one sentence or a few; wrapped to the help's width
    bool repeatable = false;        ///< may be given more than once (ParsedArgs::all); else once

    [[nodiscard]] constexpr bool takes_value() const { return !metavar.empty(); }
};

/// `a` then `b`, as one array: a subcommand's own options followed by shared ones
/// (`join_options(run_own_option_specs, target_option_specs)`).
template <std::size_t N, std::size_t M>
[[nodiscard]] constexpr std::array<OptionSpec, N + M> join_options(const OptionSpec (&a)[N], const OptionSpec (&b)[M]) {
    std::array<OptionSpec, N + M> out{};
    for (std::size_t i = 0; i < N; ++i) out[i] = a[i];
    for (std::size_t i = 0; i < M; ++i) out[N + i] = b[i];
    return out;
}

/// What the table of a subcommand must hold (checked at compile time, see main.cpp): long names
/// "--x", short names "-x" or none, no name twice, -h/--help left to the scanner, help for each.
[[nodiscard]] constexpr bool options_are_valid(std::span<const OptionSpec> specs) {
    const auto is_help = [](std::string_view n) { return n == "-h" || n == "--help"; };
    for (std::size_t i = 0; i < specs.size(); ++i) {
        const auto& s = specs[i];
        if (s.long_name.size() < 3 || s.long_name.substr(0, 2) != "--" || s.long_name[2] == '-' || is_help(s.long_name))
            return false;
        if (!s.short_name.empty() &&
            (s.short_name.size() != 2 || s.short_name[0] != '-' || s.short_name[1] == '-' || is_help(s.short_name)))
            return false;
        if (s.help.empty()) return false;
        for (std::size_t j = 0; j < i; ++j)
            if (specs[j].long_name == s.long_name || (!s.short_name.empty() && specs[j].short_name == s.short_name))
                return false;
    }
    return true;
}

namespace detail {

/// Column where option help starts (git and CLI11 use 24-26; ours fits `--max-output BYTES`).
inline constexpr std::size_t help_column = 22;
/// Width help text is wrapped to.
inline constexpr std::size_t help_width = 92;

/// Appends `text` word-wrapped to `width`: the first line continues `out`'s current line (at
/// `column`), the next lines start `indent` spaces in.
inline void append_wrapped(std::string& out, std::string_view text, std::size_t column, std::size_t indent,
                           std::size_t width = help_width) {
    bool first = true;
    while (!text.empty()) {
        const auto start = text.find_first_not_of(' ');
        if (start == std::string_view::npos) break;
        text.remove_prefix(start);
        const auto end = std::min(text.find(' '), text.size());
        const auto word = text.substr(0, end);
        text.remove_prefix(end);
        if (!first && column + 1 + word.size() > width) {
            out += '\n';
            out.append(indent, ' ');
            column = indent;
        } else if (!first) {
            out += ' ';
            ++column;
        }
        out += word;
        column += word.size();
        first = false;
    }
    out += '\n';
}

}  // namespace detail

/// Two columns: "  LABEL   text", the text wrapped to `width` and aligned at `column` (on the next
/// line when LABEL is too long). Used for options, subcommands and verbs.
inline void append_help_row(std::string& out, std::string_view label, std::string_view text, std::size_t column,
                            std::size_t width = detail::help_width) {
    out += "  ";
    out += label;
    if (2 + label.size() + 2 <= column) {
        out.append(column - 2 - label.size(), ' ');
    } else {
        out += '\n';
        out.append(column, ' ');
    }
    detail::append_wrapped(out, text, column, column, width);
}

/// The "options:" section of a subcommand's --help, from the entries it parses with; -h/--help
/// last, as the scanner accepts it everywhere.
[[nodiscard]] inline std::string options_help(std::span<const OptionSpec> specs) {
    std::string out = "options:\n";
    for (const auto& s : specs) {
        std::string label = s.short_name.empty() ? std::string() : std::string(s.short_name) + ", ";
        label += s.long_name;
        if (s.takes_value()) label += " " + std::string(s.metavar);
        append_help_row(out, label, s.help, detail::help_column);
    }
    append_help_row(out, "-h, --help", "this text", detail::help_column);
    return out;
}

struct ParsedOption {
    std::string name;  ///< the long name
    std::string value;
};

struct ParsedArgs {
    std::vector<ParsedOption> options;
    std::vector<std::string> positionals;
    bool help = false;

    [[nodiscard]] bool has(std::string_view name) const {
        for (const auto& o : options)
            if (o.name == name) return true;
        return false;
    }
    /// The value of a single-valued option.
    [[nodiscard]] std::optional<std::string> get(std::string_view name) const {
        for (const auto& o : options)
            if (o.name == name) return o.value;
        return std::nullopt;
    }
    [[nodiscard]] std::vector<std::string> all(std::string_view name) const {
        std::vector<std::string> out;
        for (const auto& o : options)
            if (o.name == name) out.push_back(o.value);
        return out;
    }
};

/// How positional arguments end option parsing.
enum class Positionals {
    interleaved,   ///< options and positionals mix; `--` ends options
    stop_at_first  ///< the first positional starts a command: it and the rest are taken verbatim
};

/// Scans `args` against `specs`. `where` names the subcommand in messages ("shannot run").
/// `--name=value` and `--name value` both work; -h/--help sets `help` and stops.
[[nodiscard]] inline Expected<ParsedArgs> parse_args(std::span<const std::string> args,
                                                     std::span<const OptionSpec> specs, std::string_view where,
                                                     Positionals mode) {
    ParsedArgs out;
    const std::string see = "see `" + std::string(where) + " --help`";
    // Messages are printed after "shannot: ": name the subcommand, not the tool again.
    const std::string label = where.rfind("shannot ", 0) == 0 ? std::string(where.substr(8)) + ": " : std::string();
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--") {
            out.positionals.insert(out.positionals.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                   args.end());
            break;
        }
        if (arg.size() < 2 || arg[0] != '-') {
            if (mode == Positionals::stop_at_first) {
                out.positionals.insert(out.positionals.end(), args.begin() + static_cast<std::ptrdiff_t>(i),
                                       args.end());
                break;
            }
            out.positionals.push_back(arg);
            continue;
        }
        if (arg == "-h" || arg == "--help") {
            out.help = true;
            return out;
        }
        const auto eq = arg.rfind("--", 0) == 0 ? arg.find('=') : std::string::npos;
        const std::string name = arg.substr(0, eq);
        const OptionSpec* spec = nullptr;
        for (const auto& s : specs)
            if (s.long_name == name || (!s.short_name.empty() && s.short_name == name)) spec = &s;
        if (!spec) return usage_error(label + "unknown option '" + name + "'", see);
        ParsedOption option{std::string(spec->long_name), {}};
        if (spec->takes_value()) {
            if (eq != std::string::npos) {
                option.value = arg.substr(eq + 1);
            } else if (i + 1 < args.size()) {
                option.value = args[++i];
            } else {
                return usage_error(label + "option '" + name + "' needs a value", see);
            }
        } else if (eq != std::string::npos) {
            return usage_error(label + "option '" + name + "' takes no value", see);
        }
        if (!spec->repeatable && out.has(option.name))
            return usage_error(label + "option '" + option.name + "' given twice", "give it once");
        out.options.push_back(std::move(option));
    }
    return out;
}

/// A decimal unsigned integer, whole string, no sign, no overflow.
[[nodiscard]] inline std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
    if (text.empty() || text.size() > 20) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

/// `--limit NAME=VALUE` into `limits`: NAME one of shannot::limit_specs, VALUE a positive
/// integer; byte limits also take a K, M or G suffix (powers of 1024).
[[nodiscard]] inline Expected<void> parse_limit(const std::string& text, shannot::LimitOverrides& limits) {
    const auto eq = text.find('=');
    if (eq == std::string::npos)
        return usage_error("--limit: '" + text + "' has no '='",
                           "write --limit NAME=VALUE, NAME one of " + shannot::limit_names_list());
    const auto name = text.substr(0, eq);
    const auto* spec = shannot::find_limit(name);
    if (!spec)
        return usage_error("--limit: '" + name + "' is not a limit", "NAME is one of " + shannot::limit_names_list());
    std::string_view value(text);
    value.remove_prefix(eq + 1);
    std::uint64_t scale = 1;
    if (spec->bytes && !value.empty()) {
        switch (value.back()) {
        case 'K':
        case 'k': scale = 1ull << 10; break;
        case 'M':
        case 'm': scale = 1ull << 20; break;
        case 'G':
        case 'g': scale = 1ull << 30; break;
        default: break;
        }
        if (scale != 1) value.remove_suffix(1);
    }
    const auto n = parse_unsigned(value);
    const std::string how =
        spec->bytes ? "a positive number of bytes, e.g. 512M (K, M, G: powers of 1024)" : "a positive integer";
    if (!n || *n == 0 || *n > UINT64_MAX / scale)
        return usage_error("--limit: '" + text.substr(eq + 1) + "' is not a value for " + name, name + " takes " + how);
    if (auto ok = shannot::check_limit(*spec, *n * scale, "--limit " + name, shannot::errc::invalid_argument); !ok)
        return usage_error(ok.error().message, name + " takes " + how);
    if (limits.*spec->override_value) return usage_error("--limit: " + name + " given twice", "give each limit once");
    limits.*spec->override_value = *n * scale;
    return {};
}

/// Seconds as a decimal number ("30", "0.5"); 0 means no limit. Returns milliseconds.
[[nodiscard]] inline Expected<std::optional<std::chrono::milliseconds>> parse_timeout(const std::string& text) {
    const auto bad = [&] {
        return usage_error("--timeout: '" + text + "' is not a number of seconds",
                           "e.g. --timeout 10, or --timeout 0 for no limit");
    };
    if (text.empty() || text.find_first_not_of("0123456789.") != std::string::npos) return bad();
    errno = 0;
    char* end = nullptr;
    const double seconds = std::strtod(text.c_str(), &end);
    if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(seconds)) return bad();
    if (seconds > 31536000.0)
        return usage_error("--timeout: " + text + " s is more than a year", "pass 0 for no limit");
    if (seconds == 0) return std::optional<std::chrono::milliseconds>{};
    const auto ms = std::max<long long>(1, std::llround(seconds * 1000.0));
    return std::optional<std::chrono::milliseconds>{std::chrono::milliseconds(ms)};
}

}  // namespace shannot_cli
