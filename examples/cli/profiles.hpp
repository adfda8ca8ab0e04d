// SPDX-License-Identifier: MIT
// The shannot tool: finding a profile by built-in name, file name or path, and listing them.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/shannot.hpp>

#include "cli_config.h"
#include "common.hpp"
#include "config.hpp"

namespace shannot_cli {

/// A folder searched for `NAME.json` profiles, and what to call it in listings.
struct ProfileDir {
    std::string label;
    std::filesystem::path path;
};

/// The user's folder first, then the installed one (as configured, and relative to this
/// executable so a moved install still finds its profiles).
[[nodiscard]] inline std::vector<ProfileDir> profile_dirs() {
    std::vector<ProfileDir> dirs;
    if (auto home = config_home()) dirs.push_back({"user", *home / "profiles"});
    dirs.push_back({"installed", std::filesystem::path(SHANNOT_CLI_PROFILE_DIR)});
    char exe[4096];
    if (const auto n = ::readlink("/proc/self/exe", exe, sizeof exe - 1); n > 0) {
        exe[n] = '\0';
        dirs.push_back(
            {"installed", std::filesystem::path(exe).parent_path().parent_path() / "share" / "shannot" / "profiles"});
    }
    // The same folder reached twice is listed once.
    std::vector<ProfileDir> unique;
    for (auto& d : dirs) {
        std::error_code ec;
        const auto canonical = std::filesystem::weakly_canonical(d.path, ec);
        const auto key = ec ? d.path : canonical;
        if (std::none_of(unique.begin(), unique.end(), [&](const ProfileDir& u) {
                std::error_code ec2;
                const auto other = std::filesystem::weakly_canonical(u.path, ec2);
                return (ec2 ? u.path : other) == key;
            }))
            unique.push_back(std::move(d));
    }
    return unique;
}

/// `--profile` takes a path when it has a '/' or ends in ".json"; otherwise a name.
[[nodiscard]] inline bool looks_like_path(std::string_view spec) {
    return spec.find('/') != std::string_view::npos || (spec.size() > 5 && spec.substr(spec.size() - 5) == ".json");
}

[[nodiscard]] inline bool is_builtin_name(std::string_view name) {
    return std::find(shannot::builtin_profile_names.begin(), shannot::builtin_profile_names.end(), name) !=
           shannot::builtin_profile_names.end();
}

[[nodiscard]] inline std::string builtin_names_text() {
    std::string names;
    for (auto n : shannot::builtin_profile_names) names += (names.empty() ? "" : ", ") + std::string(n);
    return names;
}

/// Profile files found in the profile folders, sorted by folder then name.
[[nodiscard]] inline std::vector<std::pair<ProfileDir, std::filesystem::path>> profile_files() {
    std::vector<std::pair<ProfileDir, std::filesystem::path>> out;
    for (const auto& dir : profile_dirs()) {
        std::error_code ec;
        std::vector<std::filesystem::path> files;
        for (std::filesystem::directory_iterator it(dir.path, ec), end; !ec && it != end; it.increment(ec)) {
            std::error_code fec;
            if (it->path().extension() == ".json" && it->is_regular_file(fec)) files.push_back(it->path());
        }
        std::sort(files.begin(), files.end());
        for (auto& f : files) out.emplace_back(dir, std::move(f));
    }
    return out;
}

/// Resolves `--profile`: empty means the default built-in; a built-in name always means the
/// built-in (a file cannot shadow it); another name is looked up as NAME.json in the profile
/// folders; anything path-like is loaded from that path. `T` decides what validation checks:
/// bind sources exist here for the local transport, not for ssh (they live on the remote).
template <class T>
[[nodiscard]] Expected<shannot::SandboxProfile<T>> resolve_profile(std::string_view spec) {
    const auto bad = [](const shannot::Error& e) {
        return failure(status::bad_profile, e.describe(), hint_for(shannot::errc::invalid_profile));
    };
    if (spec.empty()) spec = shannot::default_profile_name;
    if (looks_like_path(spec)) {
        auto p = shannot::load_profile_from_path<T>(std::filesystem::path(spec));
        if (!p) return bad(p.error());
        return std::move(*p);
    }
    if (is_builtin_name(spec)) {
        auto p = shannot::builtin_profile<T>(spec);
        if (!p) return bad(p.error());
        return std::move(*p);
    }
    if (valid_remote_name(spec) && spec.front() != '.') {
        for (const auto& dir : profile_dirs()) {
            const auto file = dir.path / (std::string(spec) + ".json");
            std::error_code ec;
            if (!std::filesystem::is_regular_file(file, ec)) continue;
            auto p = shannot::load_profile_from_path<T>(file);
            if (!p) return bad(p.error());
            return std::move(*p);
        }
    }
    std::string where;
    for (const auto& dir : profile_dirs()) where += (where.empty() ? "" : ", ") + dir.path.string();
    return failure(status::bad_profile, "no profile named '" + std::string(spec) + "'",
                   "built-ins: " + builtin_names_text() + "; files NAME.json are looked for in " + where +
                       "; or pass a path to a JSON file (`shannot profiles` lists them)");
}

}  // namespace shannot_cli
