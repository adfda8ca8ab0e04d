// SPDX-License-Identifier: MIT
// Command admission: the glob matcher and GlobAllowlist, the default admission policy.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/detail/paths.hpp>
#include <shannot/error.hpp>

namespace shannot {

namespace detail {

/// Matches one bracket expression at pattern[pi] ('[' already seen at pi-1). Sets `end` past ']'.
/// Returns -1 when the bracket is unterminated (then '[' is a literal).
[[nodiscard]] constexpr int match_class(std::string_view pattern, std::size_t pi, char c, std::size_t& end) noexcept {
    bool negate = false;
    if (pi < pattern.size() && (pattern[pi] == '!' || pattern[pi] == '^')) {
        negate = true;
        ++pi;
    }
    bool matched = false;
    bool first = true;
    while (pi < pattern.size() && (first || pattern[pi] != ']')) {
        first = false;
        char lo = pattern[pi];
        if (lo == '\\' && pi + 1 < pattern.size()) lo = pattern[++pi];
        char hi = lo;
        if (pi + 2 < pattern.size() && pattern[pi + 1] == '-' && pattern[pi + 2] != ']') {
            hi = pattern[pi + 2];
            if (hi == '\\' && pi + 3 < pattern.size()) hi = pattern[++pi + 2];
            pi += 2;
        }
        if (static_cast<unsigned char>(lo) <= static_cast<unsigned char>(c) &&
            static_cast<unsigned char>(c) <= static_cast<unsigned char>(hi))
            matched = true;
        ++pi;
    }
    if (pi >= pattern.size()) return -1;
    end = pi + 1;
    return (matched != negate) ? 1 : 0;
}

}  // namespace detail

/// fnmatch(3) with FNM_PATHNAME semantics: `*`, `?` and `[...]` never match '/'; `\` escapes;
/// case-sensitive. Linear backtracking on the last `*`, so hostile patterns cannot blow up.
[[nodiscard]] constexpr bool glob_match(std::string_view pattern, std::string_view text) noexcept {
    std::size_t pi = 0, ti = 0;
    std::size_t star_p = std::string_view::npos, star_t = 0;
    while (ti < text.size()) {
        if (pi < pattern.size()) {
            const char p = pattern[pi];
            if (p == '*') {
                star_p = ++pi;
                star_t = ti;
                continue;
            }
            if (text[ti] != '/') {
                if (p == '?') {
                    ++pi, ++ti;
                    continue;
                }
                if (p == '[') {
                    std::size_t end = 0;
                    const int m = detail::match_class(pattern, pi + 1, text[ti], end);
                    if (m == 1) {
                        pi = end, ++ti;
                        continue;
                    }
                    if (m == -1 && text[ti] == '[') {
                        ++pi, ++ti;
                        continue;
                    }
                } else {
                    const char literal = (p == '\\' && pi + 1 < pattern.size()) ? pattern[pi + 1] : p;
                    if (literal == text[ti]) {
                        pi += (p == '\\' && pi + 1 < pattern.size()) ? 2 : 1;
                        ++ti;
                        continue;
                    }
                }
            } else if (p == '/') {
                ++pi, ++ti;
                star_p = std::string_view::npos;  // a '*' before this '/' may not stretch across it
                continue;
            }
        }
        // Mismatch: let the last '*' swallow one more character, unless that character is '/'.
        if (star_p == std::string_view::npos || text[star_t] == '/') return false;
        pi = star_p;
        ti = ++star_t;
    }
    while (pi < pattern.size() && pattern[pi] == '*') ++pi;
    return pi == pattern.size();
}

/// What an admission policy is asked. `exists` answers "is there an executable at this path
/// inside the sandbox?" where the transport can tell (locally); it is empty over ssh.
struct AdmissionRequest {
    std::string_view profile_name{};
    const std::vector<std::string>& allowed_commands;
    std::vector<std::string> command{};
    std::string_view path_env{};  ///< the PATH the command will see ("/bin:/usr/bin" when unset, as execvp)
    std::function<bool(std::string_view)> exists;
};

/// The default admission policy: Shannot's allowlist with its bypasses closed. A bare name is
/// matched as written and as resolved through PATH; when only an absolute pattern admits it,
/// the command is rewritten to that path so what runs is exactly what was admitted.
struct GlobAllowlist {
    [[nodiscard]] Result<std::vector<std::string>> admit(AdmissionRequest request) const {
        auto& command = request.command;
        if (command.empty() || command.front().empty()) return fail(errc::invalid_argument, "empty command");
        const std::string name = command.front();
        if (detail::has_nul(name)) return fail(errc::invalid_argument, "command name contains a NUL byte");
        const auto& patterns = request.allowed_commands;
        if (patterns.empty()) return std::move(command);  // Shannot: an empty allowlist admits anything

        auto refuse = [&](std::string why) {
            std::string allowed;
            for (const auto& p : patterns) allowed += (allowed.empty() ? "" : ", ") + p;
            return fail(errc::command_refused, "command '" + name + "' is not allowed by profile '" +
                                                   std::string(request.profile_name) + "'" + why + " (allowed: " + allowed + ")");
        };
        auto matches = [&](std::string_view candidate, bool absolute_patterns) {
            for (const auto& p : patterns)
                if ((p.front() == '/') == absolute_patterns && glob_match(p, candidate)) return true;
            return false;
        };
        const auto dirs = path_dirs(request.path_env);

        if (name.find('/') != std::string::npos) {
            if (!detail::is_absolute(name)) return refuse(": a relative path is never allowed");
            if (detail::has_dot_component(name) || detail::has_empty_component(name) || name.back() == '/')
                return refuse(": '.', '..' and empty path components are refused");
            if (matches(name, true)) return std::move(command);
            const auto slash = name.rfind('/');
            const std::string_view dir = slash == 0 ? std::string_view("/") : std::string_view(name).substr(0, slash);
            const std::string_view base = std::string_view(name).substr(slash + 1);
            for (const auto& d : dirs)
                if (d == dir && matches(base, false)) return std::move(command);
            return refuse("");
        }
        if (matches(name, false)) return std::move(command);
        for (const auto& d : dirs) {
            std::string candidate = d == "/" ? "/" + name : d + "/" + name;
            if (request.exists) {
                if (!request.exists(candidate)) continue;
                if (!matches(candidate, true)) return refuse(": PATH resolves it to " + candidate);
            } else if (!matches(candidate, true)) {
                continue;
            }
            command.front() = std::move(candidate);
            return std::move(command);
        }
        return refuse("");
    }

    /// Absolute PATH entries in order; relative ones (and empty = ".") are ignored.
    [[nodiscard]] static std::vector<std::string> path_dirs(std::string_view path_env) {
        std::vector<std::string> dirs;
        std::size_t start = 0;
        while (start <= path_env.size()) {
            auto colon = path_env.find(':', start);
            if (colon == std::string_view::npos) colon = path_env.size();
            auto entry = detail::strip_trailing_slash(path_env.substr(start, colon - start));
            if (detail::is_absolute(entry) && !detail::has_dot_component(entry)) dirs.emplace_back(entry);
            start = colon + 1;
        }
        return dirs;
    }
};

}  // namespace shannot
