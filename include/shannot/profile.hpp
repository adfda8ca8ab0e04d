// SPDX-License-Identifier: MIT
// SandboxProfile: what the sandbox sees and may run. Plain data, validated, exported to JSON.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include <shannot/detail/paths.hpp>
#include <shannot/error.hpp>
#include <shannot/fwd.hpp>
#include <shannot/limits.hpp>
#include <shannot/syscall_filter.hpp>

namespace shannot {

/// Newest profile format this library reads; a profile may state `"version"` to demand more.
inline constexpr std::int64_t profile_format_version = 1;

/// One bind mount: Shannot's keys plus `optional` and `required`. What happens when the source
/// is missing where bwrap runs (docs/architecture.md, "Missing bind sources"):
///  - by default the bind is skipped and said (ProcessResult::warnings locally; over ssh the
///    remote's bwrap skips it, --ro-bind-try), so one profile serves hosts that lack some path,
///    as under Shannot;
///  - `optional`: skipped without a word (the author expects it to be missing on some hosts);
///  - `required`: an error naming the field (validate() locally, bwrap's setup error remotely);
///  - a bind whose target lies inside another of the profile's mounts (a bind or a tmpfs) is
///    never skipped, whatever it says: it masks something (/dev/null over /etc/shadow), and
///    skipping it would show what it hides. Its `optional` is ignored (lint says so).
/// `optional` and `required` together are an error.
struct SandboxBind {
    std::string source{};  ///< host path (on the machine where bwrap runs)
    std::string target{};  ///< path inside the sandbox
    bool read_only = true;
    bool create_target = true;  ///< Shannot compatibility; bwrap creates mount points itself
    bool optional = false;      ///< a missing source is skipped silently
    bool required = false;      ///< a missing source is an error, never skipped

    friend bool operator==(const SandboxBind&, const SandboxBind&) = default;
};

namespace detail {

[[nodiscard]] inline bool is_env_name(std::string_view name) noexcept {
    if (name.empty()) return false;
    auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
    if (!alpha(name.front())) return false;
    for (char c : name)
        if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
    return true;
}

/// Host paths a writable bind must never expose: the kernel's control surfaces.
inline constexpr std::array<std::string_view, 3> kernel_paths{"/proc", "/sys", "/dev"};

[[nodiscard]] inline Result<void> check_path(std::string_view field, std::string_view path) {
    if (path.empty()) return fail(errc::invalid_profile, std::string(field) + ": must be a non-empty path");
    if (has_nul(path)) return fail(errc::invalid_profile, std::string(field) + ": contains a NUL byte");
    for (char c : path)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return fail(errc::invalid_profile,
                        std::string(field) + ": contains a control character (a newline, a tab, ...)");
    if (!is_absolute(path)) return fail(errc::invalid_profile, std::string(field) + ": must be an absolute path");
    if (has_dot_component(path))
        return fail(errc::invalid_profile, std::string(field) + ": must not contain '.' or '..' components");
    return {};
}

/// True when the bind shows a host path at the same path inside (source == target).
[[nodiscard]] inline bool is_identity_bind(const SandboxBind& b) noexcept {
    return strip_trailing_slash(b.source) == strip_trailing_slash(b.target);
}

}  // namespace detail

/// A validated description of the sandbox. The data is the same for every transport; the
/// transport parameter decides what `validate()` can check (local paths exist, or not).
template <class Transport>
struct SandboxProfile {
    std::string name{};
    std::vector<std::string> allowed_commands{};  ///< globs or absolute paths; empty admits any command
    std::vector<SandboxBind> binds{};
    std::vector<std::string> tmpfs_paths{};
    std::map<std::string, std::string> environment{};
    std::optional<std::string> seccomp_profile{};  ///< compiled BPF program (path where bwrap runs)
    bool network_isolation = true;
    bool user_namespace_isolation = true;
    std::vector<std::string> additional_args{};
    /// What the sandbox may consume; a profile that does not say gets the library's defaults.
    ResourceLimits limits{};
    /// The built-in syscall filter (syscall_filter.hpp): "default" (DefaultSyscallFilter) or "none".
    /// It stacks with `seccomp_profile`: a call either of them refuses is refused.
    std::string syscall_filter{default_syscall_filter_name};
    /// Groups of the default filter left out, by name (DefaultSyscallFilter::groups), e.g.
    /// "unix_sockets" for a profile whose command must talk to a local daemon.
    std::vector<std::string> syscall_filter_allow{};

    friend bool operator==(const SandboxProfile&, const SandboxProfile&) = default;

    /// The same data for another transport (e.g. a profile loaded locally, run over ssh).
    template <class Other>
    [[nodiscard]] SandboxProfile<Other> for_transport() const {
        return {name,
                allowed_commands,
                binds,
                tmpfs_paths,
                environment,
                seccomp_profile,
                network_isolation,
                user_namespace_isolation,
                additional_args,
                limits,
                syscall_filter,
                syscall_filter_allow};
    }

    /// Structural checks for every transport, plus existence checks where bwrap runs locally.
    [[nodiscard]] Result<void> validate() const;

    /// Every field, defaults included; loading it back yields an equal profile.
    [[nodiscard]] nlohmann::json to_json() const;
};

namespace detail {

/// A mount of a profile, named by the field that declares it ("binds[7]", "tmpfs_paths[1]").
struct MountRef {
    std::string field;
    std::string target;
};

/// The deepest of the profile's other mounts (binds and tmpfs) that bind `index`'s target lies
/// strictly inside, or nullopt. Such a bind masks what that mount shows there (/dev/null over
/// /etc/shadow under a bind of /etc), so it is never skipped: skipping it would show what it hides.
template <class T>
[[nodiscard]] std::optional<MountRef> enclosing_mount(const SandboxProfile<T>& p, std::size_t index) {
    const std::string_view target = strip_trailing_slash(p.binds[index].target);
    std::string_view best{};
    std::string_view kind{};
    std::size_t best_index = 0;
    const auto consider = [&](std::string_view other, std::string_view what, std::size_t i) {
        other = strip_trailing_slash(other);
        if (other == target || !is_same_or_under(target, other) || (!best.empty() && other.size() <= best.size()))
            return;
        best = other;
        kind = what;
        best_index = i;
    };
    for (std::size_t i = 0; i < p.binds.size(); ++i)
        if (i != index) consider(p.binds[i].target, "binds", i);
    for (std::size_t i = 0; i < p.tmpfs_paths.size(); ++i) consider(p.tmpfs_paths[i], "tmpfs_paths", i);
    if (best.empty()) return std::nullopt;
    return MountRef{std::string(kind) + "[" + std::to_string(best_index) + "]", std::string(best)};
}

/// True when bind `index` must be mounted even if its source is missing: it is `required`, or
/// it masks part of another mount (enclosing_mount). Such a missing source is an error.
template <class T>
[[nodiscard]] bool never_skipped(const SandboxProfile<T>& p, std::size_t index) {
    return p.binds[index].required || enclosing_mount(p, index).has_value();
}

/// allowed_commands: each a bare name (a glob) or an absolute path without '.', '..' or empty components.
template <class T>
[[nodiscard]] Result<void> check_allowed_commands(const SandboxProfile<T>& p) {
    for (std::size_t i = 0; i < p.allowed_commands.size(); ++i) {
        const auto field = "allowed_commands[" + std::to_string(i) + "]";
        const auto& pattern = p.allowed_commands[i];
        if (pattern.empty()) return fail(errc::invalid_profile, field + ": must be a non-empty string");
        if (has_nul(pattern)) return fail(errc::invalid_profile, field + ": contains a NUL byte");
        if (pattern.find('/') != std::string::npos) {
            if (!is_absolute(pattern))
                return fail(errc::invalid_profile, field + ": must be a bare command name or an absolute path");
            if (has_dot_component(pattern) || has_empty_component(pattern))
                return fail(errc::invalid_profile, field + ": must not contain '.', '..' or empty components");
        }
    }
    return {};
}

/// binds and tmpfs_paths: well-formed paths, nothing writable onto the kernel's control surfaces,
/// nothing below /proc, and never two mounts on one target (which one wins would be order luck).
template <class T>
[[nodiscard]] Result<void> check_mounts(const SandboxProfile<T>& p) {
    std::map<std::string, std::string> targets{};  // each mount target, with the field that claimed it
    auto claim = [&](const std::string& target, const std::string& field) -> Result<void> {
        auto key = std::string(strip_trailing_slash(target));
        auto [it, inserted] = targets.emplace(key, field);
        if (!inserted) return fail(errc::invalid_profile, field + ": " + key + " is already mounted by " + it->second);
        return {};
    };
    for (std::size_t i = 0; i < p.binds.size(); ++i) {
        const auto field = "binds[" + std::to_string(i) + "]";
        const auto& bind = p.binds[i];
        if (bind.optional && bind.required)
            return fail(errc::invalid_profile, field +
                                                   ": \"optional\" and \"required\" are both true; a missing source "
                                                   "cannot be both skipped and an error: keep one");
        if (auto r = check_path(field + ".source", bind.source); !r) return r;
        if (auto r = check_path(field + ".target", bind.target); !r) return r;
        if (is_same_or_under(bind.target, "/proc") && std::string_view(strip_trailing_slash(bind.target)) != "/proc")
            return fail(errc::invalid_profile, field + ".target: paths below /proc are managed by the sandbox");
        if (!bind.read_only) {
            for (auto kernel : kernel_paths) {
                if (is_same_or_under(bind.source, kernel) || is_same_or_under(kernel, bind.source))
                    return fail(errc::invalid_profile, field + ": a writable bind of " + bind.source +
                                                           " would expose host " + std::string(kernel) +
                                                           "; make it read_only");
                if (is_same_or_under(bind.target, kernel))
                    return fail(errc::invalid_profile,
                                field + ": a writable bind onto " + bind.target + " is refused; make it read_only");
            }
        }
        if (auto r = claim(bind.target, field + ".target"); !r) return r;
    }
    for (std::size_t i = 0; i < p.tmpfs_paths.size(); ++i) {
        const auto field = "tmpfs_paths[" + std::to_string(i) + "]";
        if (auto r = check_path(field, p.tmpfs_paths[i]); !r) return r;
        if (strip_trailing_slash(p.tmpfs_paths[i]) == "/")
            return fail(errc::invalid_profile, field + ": a tmpfs on / would hide every other mount");
        if (is_same_or_under(p.tmpfs_paths[i], "/proc"))
            return fail(errc::invalid_profile, field + ": /proc is managed by the sandbox");
        if (auto r = claim(p.tmpfs_paths[i], field); !r) return r;
    }
    return {};
}

/// environment, seccomp_profile and additional_args: what reaches bwrap's argv besides mounts.
template <class T>
[[nodiscard]] Result<void> check_settings(const SandboxProfile<T>& p) {
    for (const auto& [key, value] : p.environment) {
        if (!is_env_name(key))
            return fail(errc::invalid_profile,
                        "environment." + key + ": not a valid variable name (want [A-Za-z_][A-Za-z0-9_]*)");
        if (has_nul(value)) return fail(errc::invalid_profile, "environment." + key + ": contains a NUL byte");
    }
    if (p.seccomp_profile)
        if (auto r = check_path("seccomp_profile", *p.seccomp_profile); !r) return r;
    for (std::size_t i = 0; i < p.additional_args.size(); ++i) {
        const auto field = "additional_args[" + std::to_string(i) + "]";
        if (p.additional_args[i].empty()) return fail(errc::invalid_profile, field + ": must be a non-empty string");
        if (has_nul(p.additional_args[i])) return fail(errc::invalid_profile, field + ": contains a NUL byte");
        if (p.additional_args[i] == "--")
            return fail(errc::invalid_profile, field + ": '--' would end bwrap's options early");
    }
    return {};
}

/// Where bwrap runs on this host: each bind source that is never skipped (never_skipped) exists,
/// a writable one does not resolve into the kernel's control surfaces, the seccomp filter is a
/// file. A missing source of any other bind is left to the launch, which skips it and says so.
template <class T>
[[nodiscard]] Result<void> check_local_paths(const SandboxProfile<T>& p) {
    std::error_code ec;
    for (std::size_t i = 0; i < p.binds.size(); ++i) {
        const auto field = "binds[" + std::to_string(i) + "].source";
        const auto& bind = p.binds[i];
        const bool exists = std::filesystem::exists(bind.source, ec);
        // Only a source that is not there may be skipped (bwrap's --ro-bind-try skips ENOENT
        // alone): one that cannot be looked up (a symlink loop, no permission) is an error.
        if (ec)
            return fail(errc::invalid_profile, field + ": " + bind.source + " cannot be looked up: " + ec.message());
        if (!exists) {
            if (bind.required)
                return fail(errc::invalid_profile,
                            field + ": " + bind.source + " does not exist, and the bind is \"required\"");
            if (auto outer = enclosing_mount(p, i))
                return fail(errc::invalid_profile,
                            field + ": " + bind.source + " does not exist, and the bind masks part of " + outer->field +
                                " (" + outer->target +
                                "): a masking bind is never skipped, as that would show what it hides");
            continue;  // skipped at launch, with a warning unless optional
        }
        if (bind.read_only) continue;
        // bwrap follows symlinks: the lexical check must hold for where the source really is, or
        // a writable bind of /tmp/x -> /proc/sys opens the host's kernel knobs.
        const auto real = std::filesystem::canonical(bind.source, ec);
        if (ec) return fail(errc::invalid_profile, field + ": " + bind.source + " cannot be resolved: " + ec.message());
        for (auto kernel : kernel_paths) {
            if (is_same_or_under(real.native(), kernel) || is_same_or_under(kernel, real.native()))
                return fail(errc::invalid_profile, field + ": " + bind.source + " resolves to " + real.native() +
                                                       "; a writable bind of it would expose host " +
                                                       std::string(kernel) + "; make it read_only");
        }
    }
    if (p.seccomp_profile && !std::filesystem::is_regular_file(*p.seccomp_profile, ec))
        return fail(errc::invalid_profile, "seccomp_profile: " + *p.seccomp_profile + " is not a readable file");
    return {};
}

}  // namespace detail

template <class Transport>
Result<void> SandboxProfile<Transport>::validate() const {
    if (name.empty()) return fail(errc::invalid_profile, "name: must be a non-empty string");
    if (detail::has_nul(name)) return fail(errc::invalid_profile, "name: contains a NUL byte");
    if (auto r = detail::check_allowed_commands(*this); !r) return r;
    if (auto r = detail::check_mounts(*this); !r) return r;
    if (auto r = detail::check_settings(*this); !r) return r;
    if (auto r = check_limits(limits, "limits", errc::invalid_profile); !r) return r;
    if (auto r = validate_syscall_filter(syscall_filter, syscall_filter_allow); !r) return r;
    static_assert(
        requires { Transport::checks_local_paths; },
        "SandboxProfile<Transport>::validate(): Transport must be complete and declare "
        "`static constexpr bool checks_local_paths`; include its header, e.g. <shannot/transport/posix_spawn.hpp>");
    if constexpr (Transport::checks_local_paths) return detail::check_local_paths(*this);
    return {};
}

namespace detail {
/// nlohmann::json, spelled so that it depends on T: a function template that uses it is checked
/// only when instantiated, not in every file that includes shannot (docs/architecture.md,
/// "Compile time").
template <class T>
struct json_for {
    using type = nlohmann::json;
};
}  // namespace detail

template <class Transport>
nlohmann::json SandboxProfile<Transport>::to_json() const {
    using Json = typename detail::json_for<Transport>::type;
    Json binds_json = Json::array();
    for (const auto& b : binds)
        binds_json.push_back({{"source", b.source},
                              {"target", b.target},
                              {"read_only", b.read_only},
                              {"create_target", b.create_target},
                              {"optional", b.optional},
                              {"required", b.required}});
    Json out = {
        {"version", profile_format_version},
        {"name", name},
        {"allowed_commands", allowed_commands},
        {"binds", std::move(binds_json)},
        {"tmpfs_paths", tmpfs_paths},
        {"environment", environment},
        {"network_isolation", network_isolation},
        {"user_namespace_isolation", user_namespace_isolation},
        {"additional_args", additional_args},
        {"syscall_filter", syscall_filter},
        {"syscall_filter_allow", syscall_filter_allow},
    };
    out["seccomp_profile"] = seccomp_profile ? Json(*seccomp_profile) : Json(nullptr);
    Json limits_json = Json::object();
    for (const auto& spec : limit_specs) limits_json[std::string(spec.name)] = limits.*spec.value;
    out["limits"] = std::move(limits_json);
    return out;
}

/// The profile types users meet first.
using LocalProfile = SandboxProfile<PosixSpawnTransport>;
using SshProfile = SandboxProfile<OpenSshProcessTransport>;

}  // namespace shannot
