// SPDX-License-Identifier: MIT
// The shannot tool: a small option scanner with errors that name the option and the fix.
#pragma once

#include <algorithm>
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

/// One option a subcommand accepts. `long_name` is how it is reported ("--profile").
struct OptionSpec {
    std::string_view long_name;
    std::string_view short_name{};  ///< "-i", or empty
    bool takes_value = false;
    bool repeatable = false;
};

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
    interleaved,  ///< options and positionals mix; `--` ends options
    stop_at_first ///< the first positional starts a command: it and the rest are taken verbatim
};

/// Scans `args` against `specs`. `where` names the subcommand in messages ("shannot run").
/// `--name=value` and `--name value` both work; -h/--help sets `help` and stops.
[[nodiscard]] inline Expected<ParsedArgs> parse_args(std::span<const std::string> args, std::span<const OptionSpec> specs,
                                                     std::string_view where, Positionals mode) {
    ParsedArgs out;
    const std::string see = "see `" + std::string(where) + " --help`";
    // Messages are printed after "shannot: ": name the subcommand, not the tool again.
    const std::string label = where.rfind("shannot ", 0) == 0 ? std::string(where.substr(8)) + ": " : std::string();
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--") {
            out.positionals.insert(out.positionals.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
            break;
        }
        if (arg.size() < 2 || arg[0] != '-') {
            if (mode == Positionals::stop_at_first) {
                out.positionals.insert(out.positionals.end(), args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
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
        if (spec->takes_value) {
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

/// Seconds as a decimal number ("30", "0.5"); 0 means no limit. Returns milliseconds.
[[nodiscard]] inline Expected<std::optional<std::chrono::milliseconds>> parse_timeout(const std::string& text) {
    const auto bad = [&] {
        return usage_error("--timeout: '" + text + "' is not a number of seconds", "e.g. --timeout 10, or --timeout 0 for no limit");
    };
    if (text.empty() || text.find_first_not_of("0123456789.") != std::string::npos) return bad();
    errno = 0;
    char* end = nullptr;
    const double seconds = std::strtod(text.c_str(), &end);
    if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(seconds)) return bad();
    if (seconds > 31536000.0) return usage_error("--timeout: " + text + " s is more than a year", "pass 0 for no limit");
    if (seconds == 0) return std::optional<std::chrono::milliseconds>{};
    const auto ms = std::max<long long>(1, std::llround(seconds * 1000.0));
    return std::optional<std::chrono::milliseconds>{std::chrono::milliseconds(ms)};
}

}  // namespace shannot_cli
