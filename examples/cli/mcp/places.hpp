// SPDX-License-Identifier: MIT
// shannot mcp: the profiles served, where they run (this host, remote targets), and a runner for
// each pair: a fresh sandbox per call, or one warm sandbox kept for every call (--warm).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/shannot.hpp>

#include "../args.hpp"
#include "../common.hpp"
#include "../profiles.hpp"
#include "../target.hpp"

namespace shannot_cli::mcp {

/// Profiles are loaded for their structure only (the type whose validation does not look at this
/// host's files): a profile served on a remote host has its bind sources there. Each run checks
/// the rest where it runs.
using StructuralProfile = shannot::SandboxProfile<shannot::OpenSshProcessTransport>;

/// A profile the server offers.
struct ProfileEntry {
    StructuralProfile profile;
    std::string tool_part;  ///< its name as tool names carry it ([A-Za-z0-9_.-])
    std::string source;     ///< "built-in" or the file it came from
};

/// Where commands run: this host, or a remote host named by --target or --ssh.
struct Place {
    std::string name;   ///< "" for this host, else the target's name as tool names carry it
    std::string label;  ///< "this host", "remote 'db1' (root@db1:22)"
    std::optional<shannot::SshConnection> ssh;
};

/// Tool names are at most 128 characters: "sandbox_" + place (up to 39) + "_" + profile (up to 80).
inline constexpr std::size_t max_profile_name = 80;
inline constexpr std::size_t max_place_name = 39;

/// The name tool names and `target` arguments use for this host.
inline constexpr std::string_view local_place_name = "local";

/// `name` with every character a tool name may not hold ([A-Za-z0-9_.-]) replaced by '_'.
[[nodiscard]] inline std::string tool_name_part(std::string_view name) {
    std::string out(name);
    for (auto& c : out) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '.' || c == '-';
        if (!ok) c = '_';
    }
    return out;
}

/// Without specs: the built-ins, then the profile files `shannot profiles` finds (a file that
/// cannot be loaded, or repeats a name, is skipped with a note on stderr). With specs: exactly
/// those, each as `--profile` reads it; any problem stops the server before it starts.
[[nodiscard]] inline Expected<std::vector<ProfileEntry>> load_profiles(const std::vector<std::string>& specs) {
    std::vector<ProfileEntry> out;
    const auto add = [&](StructuralProfile profile, std::string source, bool strict) -> Expected<void> {
        ProfileEntry entry{std::move(profile), {}, std::move(source)};
        entry.tool_part = tool_name_part(entry.profile.name);
        if (entry.tool_part.size() > max_profile_name) {
            const std::string why = "the name of profile '" + entry.profile.name + "' (" + entry.source +
                                    ") is longer than " + std::to_string(max_profile_name) +
                                    " characters, too long for tool names";
            if (strict) return usage_error("mcp: " + why, "give it a shorter name");
            note("mcp: skipping " + why);
            return {};
        }
        for (const auto& other : out) {
            if (other.tool_part != entry.tool_part) continue;
            const std::string why = "profile '" + entry.profile.name + "' (" + entry.source +
                                    ") has the name of profile '" + other.profile.name + "' (" + other.source +
                                    ") in tool names";
            if (strict) return usage_error("mcp: " + why, "give each profile its own name");
            note("mcp: skipping " + why);
            return {};
        }
        out.push_back(std::move(entry));
        return {};
    };
    if (specs.empty()) {
        for (auto name : shannot::builtin_profile_names) {
            auto p = shannot::builtin_profile<shannot::OpenSshProcessTransport>(name);
            if (p) (void)add(std::move(*p), "built-in", false);
        }
        for (const auto& [dir, file] : profile_files()) {
            if (is_builtin_name(file.stem().string())) continue;  // shadowed: a built-in name means the built-in
            auto p = shannot::load_profile_from_path<shannot::OpenSshProcessTransport>(file);
            if (!p) {
                note("mcp: skipping the profile file " + file.string() + ": " + p.error().message);
                continue;
            }
            (void)add(std::move(*p), file.string(), false);
        }
        return out;
    }
    for (const auto& spec : specs) {
        auto p = resolve_profile<shannot::OpenSshProcessTransport>(spec);
        if (!p) return tl::make_unexpected(std::move(p.error()));
        if (auto ok = add(std::move(*p),
                          looks_like_path(spec)   ? spec
                          : is_builtin_name(spec) ? "built-in"
                                                  : spec,
                          true);
            !ok)
            return tl::make_unexpected(std::move(ok.error()));
    }
    return out;
}

/// This host (unless `no_local`), then each --target, then each --ssh host (named after the
/// host). -i and --known-hosts apply to every remote, as they do for `shannot --target`. Where
/// the library has no local transport (SHANNOT_PORTABLE_POSIX=1, off Linux), remotes only.
[[nodiscard]] inline Expected<std::vector<Place>> resolve_places(const ParsedArgs& args, bool no_local) {
    std::vector<Place> places;
    if (!shannot::local_sandbox_supported) no_local = true;
    if (!no_local) places.push_back({"", "this host", std::nullopt});
    const auto identity = args.get("--identity");
    const auto known_hosts = args.get("--known-hosts");
    const auto add_remote = [&](std::optional<std::string> target, std::optional<std::string> ssh) -> Expected<void> {
        TargetOptions options{.target = target, .identity = identity, .known_hosts = known_hosts};
        if (ssh) options.ssh = {*ssh};
        auto destination = resolve_destination(options);
        if (!destination) return tl::make_unexpected(std::move(destination.error()));
        Place place{tool_name_part(target ? *target : destination->ssh->host), destination->label, destination->ssh};
        if (place.name.size() > max_place_name)
            return usage_error("mcp: the remote name '" + place.name + "' is longer than " +
                                   std::to_string(max_place_name) + " characters, too long for tool names",
                               "use a shorter name (`shannot remote add NAME HOST`, then --target NAME)");
        if (place.name == local_place_name)
            return usage_error("mcp: a remote named 'local' would be taken for this host",
                               "rename it (`shannot remote add`)");
        for (const auto& other : places)
            if (other.name == place.name)
                return usage_error("mcp: two remotes are named '" + place.name + "' in tool names",
                                   "give each remote once");
        places.push_back(std::move(place));
        return {};
    };
    for (const auto& target : args.all("--target"))
        if (auto ok = add_remote(target, std::nullopt); !ok) return tl::make_unexpected(std::move(ok.error()));
    for (const auto& ssh : args.all("--ssh"))
        if (auto ok = add_remote(std::nullopt, ssh); !ok) return tl::make_unexpected(std::move(ok.error()));
    if (places.empty() && !shannot::local_sandbox_supported)
        return usage_error("mcp: this shannot runs sandboxes on remote Linux hosts only (bwrap exists only on Linux)",
                           "add --target NAME or --ssh HOST");
    if (places.empty())
        return usage_error("mcp: --no-local leaves no place to run commands", "add --target NAME or --ssh HOST");
    if ((identity || known_hosts) && places.size() == 1 && !places.front().ssh)
        return usage_error("mcp: -i/--identity and --known-hosts apply to ssh only",
                           "add --target NAME or --ssh [USER@]HOST[:PORT]");
    return places;
}

/// Counts output bytes as a run prints them (for progress notifications and the audit log).
using OnBytes = std::function<void(std::size_t)>;

/// One profile at one place.
class Runner {
public:
    Runner(const ProfileEntry& entry, const Place& place) : entry_(entry), place_(place) {}
    virtual ~Runner() = default;
    Runner(const Runner&) = delete;
    Runner& operator=(const Runner&) = delete;

    /// Runs `command` (admission, sandbox, deadline, cap: the library's run).
    [[nodiscard]] virtual shannot::Result<shannot::ProcessResult> run(std::vector<std::string> command,
                                                                      shannot::RunOptions options,
                                                                      const OnBytes& on_bytes) = 0;
    /// "local" or "ssh", as `shannot --json` names the transport.
    [[nodiscard]] virtual std::string_view transport() const = 0;

    [[nodiscard]] const StructuralProfile& profile() const { return entry_.profile; }
    [[nodiscard]] const Place& place() const { return place_; }

private:
    const ProfileEntry& entry_;
    const Place& place_;
};

/// A Runner over SandboxManager<T>. With `warm`, commands run in one SandboxSession opened on
/// the first call and kept until the server exits; a session found lost is reopened once.
template <class T>
class SandboxRunner final : public Runner {
public:
    SandboxRunner(const ProfileEntry& entry, const Place& place, T transport, bool warm)
        : Runner(entry, place),
          sandbox_(entry.profile.template for_transport<T>(), std::move(transport)),
          warm_(warm) {}

    shannot::Result<shannot::ProcessResult> run(std::vector<std::string> command, shannot::RunOptions options,
                                                const OnBytes& on_bytes) override {
        const auto count = [&on_bytes](const shannot::OutputChunk& chunk) { on_bytes(chunk.data.size()); };
        if (!warm_) return sandbox_.stream(std::move(command), std::move(options), count);
        for (int attempt = 0;; ++attempt) {
            auto session = warm_session();
            if (!session) return tl::make_unexpected(std::move(session.error()));
            auto r = (*session)->stream(command, options, count);
            // A lost session ran nothing (it says so before sending the command): reopen once.
            if (r || r.error().code != shannot::errc::session_lost || attempt > 0) return r;
            forget(*session);
        }
    }

    std::string_view transport() const override { return T::name; }  // "local" or "ssh"

private:
    using Session = shannot::SandboxSession<T>;

    shannot::Result<std::shared_ptr<Session>> warm_session() {
        std::lock_guard lock(mutex_);
        if (session_) return session_;
        auto opened = sandbox_.open_session();
        if (!opened) return tl::make_unexpected(std::move(opened.error()));
        session_ = std::make_shared<Session>(std::move(*opened));
        return session_;
    }

    void forget(const std::shared_ptr<Session>& lost) {
        std::lock_guard lock(mutex_);
        if (session_ == lost) session_.reset();
    }

    shannot::SandboxManager<T> sandbox_;
    bool warm_;
    std::mutex mutex_;
    std::shared_ptr<Session> session_;
};

/// A Runner as the operations of operations.hpp take it (shannot::CommandRunner).
struct OperationRunner {
    Runner& runner;
    const OnBytes& on_bytes;

    [[nodiscard]] shannot::Result<shannot::ProcessResult> run(std::vector<std::string> command,
                                                              shannot::RunOptions options) {
        return runner.run(std::move(command), std::move(options), on_bytes);
    }
    [[nodiscard]] const StructuralProfile& profile() const { return runner.profile(); }
};

static_assert(shannot::CommandRunner<OperationRunner>);

/// Whether `profile` admits `command` by name (as a run would, without looking at any host).
[[nodiscard]] inline bool allows(const StructuralProfile& profile, std::string_view command) {
    const auto path = profile.environment.count("PATH") ? profile.environment.at("PATH") : std::string("/bin:/usr/bin");
    shannot::AdmissionRequest request{profile.name, profile.allowed_commands, {std::string(command)}, path, {}};
    return shannot::GlobAllowlist{}.admit(std::move(request)).has_value();
}

}  // namespace shannot_cli::mcp
