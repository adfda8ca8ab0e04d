// SPDX-License-Identifier: MIT
// Lexical path helpers on byte strings: no filesystem access, no normalisation surprises.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shannot::detail {

[[nodiscard]] inline bool has_nul(std::string_view s) noexcept { return s.find('\0') != std::string_view::npos; }

[[nodiscard]] inline bool is_absolute(std::string_view p) noexcept { return !p.empty() && p.front() == '/'; }

/// Splits on '/', keeping empty components (so "a//b" yields "a", "", "b").
[[nodiscard]] inline std::vector<std::string_view> split_path(std::string_view p) {
    std::vector<std::string_view> parts;
    if (is_absolute(p)) p.remove_prefix(1);
    if (p.empty()) return parts;
    std::size_t start = 0;
    while (true) {
        const auto slash = p.find('/', start);
        parts.push_back(p.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    return parts;
}

/// True when a component is "." or ".." (a trailing slash is tolerated, a doubled one is not).
[[nodiscard]] inline bool has_dot_component(std::string_view p) {
    for (auto part : split_path(p))
        if (part == "." || part == "..") return true;
    return false;
}

/// True when the path has an empty component other than a single trailing slash ("a//b").
[[nodiscard]] inline bool has_empty_component(std::string_view p) {
    auto parts = split_path(p);
    for (std::size_t i = 0; i < parts.size(); ++i)
        if (parts[i].empty() && i + 1 != parts.size()) return true;
    return false;
}

/// Resolves "." and ".." and doubled slashes lexically; "/.." stays "/". Input must be absolute.
[[nodiscard]] inline std::string lexically_normal(std::string_view p) {
    std::vector<std::string_view> out;
    for (auto part : split_path(p)) {
        if (part.empty() || part == ".") continue;
        if (part == "..") {
            if (!out.empty()) out.pop_back();
            continue;
        }
        out.push_back(part);
    }
    std::string result;
    for (auto part : out) {
        result += '/';
        result += part;
    }
    return result.empty() ? std::string("/") : result;
}

/// Drops a trailing slash (but keeps "/").
[[nodiscard]] inline std::string_view strip_trailing_slash(std::string_view p) noexcept {
    while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
    return p;
}

/// True when `path` is `base` or lies below it, comparing whole components.
[[nodiscard]] inline bool is_same_or_under(std::string_view path, std::string_view base) noexcept {
    path = strip_trailing_slash(path);
    base = strip_trailing_slash(base);
    if (base == "/") return is_absolute(path);
    if (path.size() < base.size() || path.compare(0, base.size(), base) != 0) return false;
    return path.size() == base.size() || path[base.size()] == '/';
}

/// Joins a folder and a relative path, then normalises lexically.
[[nodiscard]] inline std::string join_normal(std::string_view base, std::string_view rel) {
    std::string joined(base);
    joined += '/';
    joined += rel;
    return lexically_normal(joined);
}

}  // namespace shannot::detail
