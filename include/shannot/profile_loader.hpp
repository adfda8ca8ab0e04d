// SPDX-License-Identifier: MIT
// Loading profiles from JSON (Shannot's format, unchanged) with errors that name the field path.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <shannot/detail/json_reader.hpp>
#include <shannot/detail/paths.hpp>
#include <shannot/error.hpp>
#include <shannot/profile.hpp>

namespace shannot {

/// Profile files larger than this are refused before parsing.
inline constexpr std::size_t max_profile_bytes = 1u << 20;

namespace detail {

using json = nlohmann::json;

[[nodiscard]] inline tl::unexpected<Error> bad(const std::string& field, std::string_view what) {
    return fail(errc::invalid_profile, field + ": " + std::string(what));
}

// The readers below are templates over the JSON type only so that their bodies are compiled
// where a profile is loaded, not in every file that includes shannot (docs/architecture.md).
template <class Json>
[[nodiscard]] Result<std::string> get_string(const Json& v, const std::string& field) {
    if (!v.is_string()) return bad(field, "must be a string");
    auto s = v.template get<std::string>();
    if (s.empty()) return bad(field, "must be a non-empty string");
    if (has_nul(s)) return bad(field, "contains a NUL byte");
    return s;
}

template <class Json>
[[nodiscard]] Result<bool> get_bool(const Json& v, const std::string& field) {
    if (!v.is_boolean()) return bad(field, "must be true or false");
    return v.template get<bool>();
}

/// A path field: relative paths are resolved against the profile file's folder, like Shannot.
template <class Json>
[[nodiscard]] Result<std::string> get_path(const Json& v, const std::string& field, const std::string& base) {
    auto s = get_string(v, field);
    if (!s) return s;
    if (is_absolute(*s)) return s;
    if (base.empty()) return bad(field, "must be an absolute path (no profile folder to resolve '" + *s + "' against)");
    return join_normal(base, *s);
}

template <class Json>
[[nodiscard]] Result<std::vector<std::string>> get_strings(const Json& v, const std::string& field,
                                                           const std::string* base) {
    if (!v.is_array()) return bad(field, "must be an array of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        const auto item_field = field + "[" + std::to_string(i) + "]";
        auto s = base ? get_path(v[i], item_field, *base) : get_string(v[i], item_field);
        if (!s) return propagate(s);
        out.push_back(std::move(*s));
    }
    return out;
}

template <class Json>
[[nodiscard]] Result<SandboxBind> get_bind(const Json& v, const std::string& field, const std::string& base) {
    if (!v.is_object()) return bad(field, "must be an object with \"source\" and \"target\"");
    SandboxBind bind;
    for (const auto& [key, value] : v.items()) {
        const auto f = field + "." + key;
        if (key == "source" || key == "target") {
            // Targets are inside the sandbox: never resolved against the profile folder.
            auto p = key == "source" ? get_path(value, f, base) : get_string(value, f);
            if (!p) return propagate(p);
            (key == "source" ? bind.source : bind.target) = std::move(*p);
        } else if (key == "read_only" || key == "create_target" || key == "optional" || key == "required") {
            auto b = get_bool(value, f);
            if (!b) return propagate(b);
            (key == "read_only"       ? bind.read_only
             : key == "create_target" ? bind.create_target
             : key == "optional"      ? bind.optional
                                      : bind.required) = *b;
        } else {
            return bad(f, "unknown key (expected source, target, read_only, create_target, optional, required)");
        }
    }
    if (!v.contains("source")) return bad(field + ".source", "is required");
    if (!v.contains("target")) return bad(field + ".target", "is required");
    return bind;
}

/// `"limits": {"memory_bytes": N, ...}`: every member optional, each a positive integer; the
/// members left out keep the library's defaults.
template <class Json>
[[nodiscard]] Result<ResourceLimits> get_limits(const Json& v) {
    if (!v.is_object()) return bad("limits", "must be an object (" + limit_names_list() + ")");
    ResourceLimits limits;
    for (const auto& [key, value] : v.items()) {
        const auto field = "limits." + key;
        const auto* spec = find_limit(key);
        if (!spec) return bad(field, "unknown key (expected " + limit_names_list() + ")");
        // A float, a string or a negative number is refused here; 0 by check_limit.
        if (!value.is_number_integer() || (!value.is_number_unsigned() && value.template get<std::int64_t>() < 0))
            return bad(field, "must be a positive integer");
        const auto n = value.template get<std::uint64_t>();
        if (auto ok = check_limit(*spec, n, field, errc::invalid_profile); !ok)
            return tl::make_unexpected(std::move(ok.error()));
        limits.*spec->value = n;
    }
    return limits;
}

}  // namespace detail

/// Builds a profile from parsed JSON. `base_path` is the folder relative paths resolve against.
template <class Transport = PosixSpawnTransport>
[[nodiscard]] Result<SandboxProfile<Transport>> load_profile_from_mapping(
    const typename detail::json_for<Transport>::type& data, const std::filesystem::path& base_path = {}) {
    using namespace detail;
    if (!data.is_object())
        return fail(errc::invalid_profile, "<root>: must be a JSON object, not " + std::string(data.type_name()));
    std::string base = base_path.empty() ? std::string() : base_path.string();
    if (!base.empty() && !is_absolute(base)) {
        std::error_code ec;
        base = std::filesystem::absolute(base_path, ec).string();
    }
    SandboxProfile<Transport> p;
    for (const auto& [key, value] : data.items()) {
        Result<void> step;
        if (key == "version") {
            if (!value.is_number_integer() || value.template get<std::int64_t>() < 1)
                return bad(key, "must be a positive integer");
            if (value.template get<std::int64_t>() > profile_format_version)
                return bad(key, "profile format " + std::to_string(value.template get<std::int64_t>()) +
                                    " is newer than this library reads (" + std::to_string(profile_format_version) +
                                    ")");
        } else if (key == "name") {
            auto s = get_string(value, key);
            if (!s) return propagate(s);
            p.name = std::move(*s);
        } else if (key == "allowed_commands" || key == "additional_args" || key == "tmpfs_paths") {
            auto list = get_strings(value, key, key == "tmpfs_paths" ? &base : nullptr);
            if (!list) return propagate(list);
            (key == "allowed_commands"  ? p.allowed_commands
             : key == "additional_args" ? p.additional_args
                                        : p.tmpfs_paths) = std::move(*list);
        } else if (key == "binds") {
            if (!value.is_array()) return bad(key, "must be an array of bind objects");
            for (std::size_t i = 0; i < value.size(); ++i) {
                auto bind = get_bind(value[i], "binds[" + std::to_string(i) + "]", base);
                if (!bind) return propagate(bind);
                p.binds.push_back(std::move(*bind));
            }
        } else if (key == "environment") {
            if (!value.is_object()) return bad(key, "must be an object mapping names to strings");
            for (const auto& [name, v] : value.items()) {
                if (!v.is_string()) return bad("environment." + name, "must be a string");
                p.environment[name] = v.template get<std::string>();
            }
        } else if (key == "seccomp_profile") {
            if (value.is_null()) continue;
            auto path = get_path(value, key, base);
            if (!path) return propagate(path);
            p.seccomp_profile = std::move(*path);
        } else if (key == "limits") {
            auto limits = get_limits(value);
            if (!limits) return tl::make_unexpected(std::move(limits.error()));
            p.limits = *limits;
        } else if (key == "syscall_filter") {
            auto choice = get_string(value, key);
            if (!choice) return propagate(choice);
            p.syscall_filter = std::move(*choice);
        } else if (key == "syscall_filter_allow") {
            auto groups = get_strings(value, key, nullptr);
            if (!groups) return propagate(groups);
            p.syscall_filter_allow = std::move(*groups);
        } else if (key == "network_isolation" || key == "user_namespace_isolation") {
            auto b = get_bool(value, key);
            if (!b) return propagate(b);
            (key == "network_isolation" ? p.network_isolation : p.user_namespace_isolation) = *b;
        } else {
            return bad(key, "unknown key (a misspelt key would otherwise fall back to a default)");
        }
    }
    if (!data.contains("name")) return bad("name", "is required");
    if (auto ok = p.validate(); !ok) return propagate(ok);
    return p;
}

/// Parses JSON text strictly (duplicate keys, bad UTF-8, deep nesting are errors) and loads it.
template <class Transport = PosixSpawnTransport>
[[nodiscard]] Result<SandboxProfile<Transport>> load_profile_from_string(std::string_view text,
                                                                         const std::filesystem::path& base_path = {}) {
    if (text.size() > max_profile_bytes)
        return fail(errc::invalid_profile, "profile is too large (" + std::to_string(text.size()) +
                                               " bytes; the limit is " + std::to_string(max_profile_bytes) + ")");
    auto parsed = detail::parse_json_strict<std::string_view, typename detail::json_for<Transport>::type>(text);
    if (!parsed) return propagate(parsed);
    return load_profile_from_mapping<Transport>(*parsed, base_path);
}

/// Reads a profile file; relative paths inside resolve against the file's folder.
template <class Transport = PosixSpawnTransport>
[[nodiscard]] Result<SandboxProfile<Transport>> load_profile_from_path(const std::filesystem::path& path) {
    std::error_code ec;
    const auto absolute = std::filesystem::absolute(path, ec);
    const std::string shown = path.string();
    if (std::filesystem::is_directory(absolute, ec))
        return fail(errc::invalid_profile, shown + ": is a directory, not a profile file");
    std::FILE* file = std::fopen(absolute.c_str(), "rb");
    if (!file) return fail(errc::invalid_profile, shown + ": cannot open: " + std::strerror(errno));
    std::string text;
    char buffer[65536];
    std::size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) {
        text.append(buffer, n);
        if (text.size() > max_profile_bytes) break;
    }
    const bool read_error = std::ferror(file) != 0;
    std::fclose(file);
    if (read_error) return fail(errc::invalid_profile, shown + ": read error");
    auto profile = load_profile_from_string<Transport>(text, absolute.parent_path());
    if (!profile) profile.error().message = shown + ": " + profile.error().message;
    return profile;
}

}  // namespace shannot
