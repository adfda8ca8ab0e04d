// SPDX-License-Identifier: MIT
// GlobAllowlist, the default admission policy: Shannot's allowlist of globs with its bypasses closed.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/concepts/admission.hpp>
#include <shannot/detail/glob.hpp>
#include <shannot/detail/paths.hpp>
#include <shannot/error.hpp>

namespace shannot {

/// fnmatch(3) with FNM_PATHNAME, as glibc answers it (see detail/glob.hpp).
using detail::glob_match;

/// The default admission policy: Shannot's allowlist with its bypasses closed. A bare name is
/// matched as written and as resolved through PATH; when only an absolute pattern admits it,
/// the command is rewritten to that path so what runs is exactly what was admitted.
struct GlobAllowlist {
    [[nodiscard]] Result<std::vector<std::string>> admit(AdmissionRequest request) const {
        auto& command = request.command;
        // The hosts refuse these before they ask; a policy called on its own must still not
        // read past an empty command.
        if (command.empty() || command.front().empty()) return fail(errc::invalid_argument, "empty command");
        const std::string name = command.front();
        if (detail::has_nul(name)) return fail(errc::invalid_argument, "command name contains a NUL byte");
        const auto& patterns = request.allowed_commands;
        if (patterns.empty()) return std::move(command);  // Shannot: an empty allowlist admits anything

        auto refuse = [&](std::string why) {
            std::string allowed;
            for (const auto& p : patterns) allowed += (allowed.empty() ? "" : ", ") + p;
            return fail(errc::command_refused, "command '" + name + "' is not allowed by profile '" +
                                                   std::string(request.profile_name) + "'" + why +
                                                   " (allowed: " + allowed + ")");
        };
        auto matches = [&](std::string_view candidate, bool absolute_patterns) {
            for (const auto& p : patterns)
                if ((!p.empty() && p.front() == '/') == absolute_patterns && glob_match(p, candidate)) return true;
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
