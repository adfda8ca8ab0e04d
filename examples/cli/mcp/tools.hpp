// SPDX-License-Identifier: MIT
// shannot mcp: the tools, in a fixed order: one run tool per profile and place, then the agent
// operations of operations.hpp, each with a `profile` argument.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/shannot.hpp>

#include "places.hpp"
#include "schemas.hpp"

namespace shannot_cli::mcp {

/// What the server was told on its command line.
struct Settings {
    std::size_t max_output = 256u << 10;  ///< per stream, per call (--max-output)
    std::chrono::milliseconds default_timeout{30000};
    std::chrono::milliseconds max_timeout{600000};
    bool warm = false;
    /// A response over this is trimmed (its streams' middles dropped) until it fits: far below
    /// the 10 MiB a TypeScript SDK client accepts in one message.
    std::size_t response_budget = 4u << 20;
};

enum class Operation { run, read_file, list_directory, search_files, grep_content, check_disk_usage, check_memory };

/// An operation tool: its name, the command it runs (which a profile must allow), and its words.
struct OperationInfo {
    Operation op;
    std::string_view name;
    std::string_view command;
    std::string_view title;
    std::string_view description;
};

inline constexpr std::array<OperationInfo, 6> operations{{
    {Operation::read_file, "read_file", "cat", "Read a file",
     "Returns a file's bytes (text, or base64 when not UTF-8), read with `cat` in the sandbox. A file larger than the "
     "output cap is an error: read parts of it with a run tool (head, tail) instead."},
    {Operation::list_directory, "list_directory", "ls", "List a directory",
     "Lists a directory with `ls` in the sandbox (`long`: -l, `all`: -a)."},
    {Operation::search_files, "search_files", "find", "Find files by name",
     "Finds files under a directory whose name matches a glob (`find DIR -name PATTERN`), one path per line."},
    {Operation::grep_content, "grep_content", "grep", "Search file contents",
     "Prints the lines of a file (or, with `recursive`, of every file under a directory) that match a regular "
     "expression "
     "(`grep -e PATTERN`). grep exits 1 when nothing matches."},
    {Operation::check_disk_usage, "check_disk_usage", "df", "Disk usage",
     "Space used and free on each file system (`df -h`)."},
    {Operation::check_memory, "check_memory", "free", "Memory usage", "Memory and swap in use and free (`free -h`)."},
}};

struct Tool {
    std::string name;
    Operation op = Operation::run;
    std::size_t place = 0;    ///< run tools: where
    std::size_t profile = 0;  ///< run tools: which profile
    json definition;          ///< as tools/list shows it
};

[[nodiscard]] inline std::string format_bytes(std::size_t bytes) {
    if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
    if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + " KiB";
    return std::to_string(bytes) + " bytes";
}

[[nodiscard]] inline std::string join(const std::vector<std::string>& words, std::string_view separator = ", ") {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : std::string(separator)) + w;
    return out;
}

/// Every profile at every place, their tools, and a runner for each pair. Fixed for the life of
/// the server: tools/list answers the same for every client and every request.
class Catalog {
public:
    Catalog(std::vector<ProfileEntry> profiles, std::vector<Place> places, Settings settings)
        : profiles_(std::move(profiles)), places_(std::move(places)), settings_(settings) {
        for (const auto& place : places_) {
            std::optional<shannot::OpenSshProcessTransport>
                ssh;  // one connection pool per host, shared by its profiles
            if (place.ssh) ssh.emplace(*place.ssh);
            for (const auto& entry : profiles_) {
                if (ssh)
                    runners_.push_back(std::make_unique<SandboxRunner<shannot::OpenSshProcessTransport>>(
                        entry, place, *ssh, settings_.warm));
#if SHANNOT_PLATFORM_LINUX
                else
                    // A server runs command after command: each profile used keeps a spare
                    // sandbox for its next call (PosixSpawnOptions::spare_sandbox).
                    runners_.push_back(std::make_unique<SandboxRunner<shannot::PosixSpawnTransport>>(
                        entry, place, shannot::PosixSpawnTransport({.spare_sandbox = !settings_.warm}),
                        settings_.warm));
#endif  // else resolve_places gave remotes only
            }
        }
        for (std::size_t pl = 0; pl < places_.size(); ++pl)
            for (std::size_t pr = 0; pr < profiles_.size(); ++pr) tools_.push_back(run_tool(pl, pr));
        for (const auto& info : operations) tools_.push_back(operation_tool(info));
        json list = json::array();
        for (const auto& t : tools_) list.push_back(t.definition);
        tools_json_ = std::move(list);
    }
    Catalog(const Catalog&) = delete;
    Catalog& operator=(const Catalog&) = delete;

    [[nodiscard]] const std::vector<ProfileEntry>& profiles() const { return profiles_; }
    [[nodiscard]] const std::vector<Place>& places() const { return places_; }
    [[nodiscard]] const Settings& settings() const { return settings_; }
    [[nodiscard]] const std::vector<Tool>& tools() const { return tools_; }
    [[nodiscard]] const json& tools_json() const { return tools_json_; }
    [[nodiscard]] Runner& runner(std::size_t place, std::size_t profile) {
        return *runners_[place * profiles_.size() + profile];
    }

    [[nodiscard]] const Tool* find(std::string_view name) const {
        for (const auto& t : tools_)
            if (t.name == name) return &t;
        return nullptr;
    }

    /// The names of the places as `target` arguments take them ("local" for this host).
    [[nodiscard]] std::vector<std::string> place_names() const {
        std::vector<std::string> names;
        for (const auto& p : places_) names.push_back(p.name.empty() ? std::string(local_place_name) : p.name);
        return names;
    }

    /// The first profile (in order) that allows `command`, else the first profile.
    [[nodiscard]] std::size_t default_profile_for(std::string_view command) const {
        for (std::size_t i = 0; i < profiles_.size(); ++i)
            if (allows(profiles_[i].profile, command)) return i;
        return 0;
    }

    [[nodiscard]] std::string run_tool_name(std::size_t place, std::size_t profile) const {
        const auto& p = places_[place];
        return "sandbox_" + (p.name.empty() ? std::string() : p.name + "_") + profiles_[profile].tool_part;
    }

private:
    [[nodiscard]] std::string run_description(const Place& place, const ProfileEntry& entry) const {
        const auto& p = entry.profile;
        std::string text = "Runs a command in a read-only sandbox (bubblewrap) ";
        text += place.ssh ? "on the remote host " + place.label + ", over ssh" : std::string("on this host");
        text += ", with the sandbox profile '" + p.name + "'. ";
        text += p.allowed_commands.empty() ? "The profile allows every command. "
                                           : "Allowed commands: " + join(p.allowed_commands) + ". ";
        text +=
            "`command` is the program and its arguments (no shell parses them: pipes, globs and redirections need an "
            "allowed shell). ";
        std::vector<std::string> writable = p.tmpfs_paths;
        for (const auto& b : p.binds)
            if (!b.read_only) writable.push_back(b.target);
        if (writable.empty())
            text += "Nothing is writable";
        else if (settings_.warm)
            text += "Only " + join(writable) +
                    " can be written; every call runs in the same warm sandbox, so files there and the working "
                    "directory are kept between calls";
        else
            text += "Only " + join(writable) +
                    " can be written, afresh for each call (tmpfs contents do not outlive a call)";
        text += p.network_isolation ? "; no network. " : "; the network is reachable. ";
        text += "Stops the command after timeout_seconds (default " +
                std::to_string(settings_.default_timeout.count() / 1000) + ", at most " +
                std::to_string(settings_.max_timeout.count() / 1000) + "); keeps the first and last " +
                format_bytes(settings_.max_output / 2) +
                " of each output stream. A non-zero exit status is a result, not an error.";
        return text;
    }

    [[nodiscard]] Tool run_tool(std::size_t place, std::size_t profile) const {
        const auto& pl = places_[place];
        const auto& entry = profiles_[profile];
        bool writable = false;  // a writable bind changes the host; a tmpfs only the sandbox
        for (const auto& b : entry.profile.binds) writable = writable || !b.read_only;
        Tool t{run_tool_name(place, profile), Operation::run, place, profile, {}};
        t.definition = {
            {"name", t.name},
            {"title", "Run in sandbox '" + entry.profile.name + "'" + (pl.ssh ? " on " + pl.name : std::string())},
            {"description", run_description(pl, entry)},
            {"inputSchema", run_input_schema(static_cast<double>(settings_.default_timeout.count()) / 1000.0,
                                             static_cast<double>(settings_.max_timeout.count()) / 1000.0)},
            {"outputSchema", run_result_schema()},
            {"annotations",
             {{"readOnlyHint", !writable},
              {"destructiveHint", false},
              {"idempotentHint", false},
              {"openWorldHint", !entry.profile.network_isolation}}},
        };
        return t;
    }

    [[nodiscard]] Tool operation_tool(const OperationInfo& info) const {
        std::vector<std::string> names, allowing;
        for (const auto& e : profiles_) {
            names.push_back(e.profile.name);
            if (allows(e.profile, info.command)) allowing.push_back(e.profile.name);
        }
        json properties =
            where_properties(names, profiles_[default_profile_for(info.command)].profile.name, place_names());
        json required = json::array();
        const json path = {{"type", "string"}, {"description", "an absolute path inside the sandbox"}};
        switch (info.op) {
        case Operation::read_file:
            properties["path"] = path;
            required.push_back("path");
            break;
        case Operation::list_directory:
            properties["path"] = path;
            properties["long"] = {{"type", "boolean"},
                                  {"default", false},
                                  {"description", "one line per entry with its details (ls -l)"}};
            properties["all"] = {
                {"type", "boolean"}, {"default", false}, {"description", "include names starting with '.' (ls -a)"}};
            required.push_back("path");
            break;
        case Operation::search_files:
            properties["path"] = path;
            properties["pattern"] = {{"type", "string"},
                                     {"description", "a glob matched against each file name, e.g. *.log"}};
            required = {"path", "pattern"};
            break;
        case Operation::grep_content:
            properties["pattern"] = {{"type", "string"}, {"description", "a basic regular expression (grep -e)"}};
            properties["path"] = path;
            properties["recursive"] = {
                {"type", "boolean"}, {"default", false}, {"description", "search every file under path (grep -r)"}};
            required = {"pattern", "path"};
            break;
        default: break;
        }
        std::string description(info.description);
        description += allowing.empty()
                           ? " No profile here allows `" + std::string(info.command) + "`: every call is refused."
                           : " Profiles that allow `" + std::string(info.command) + "`: " + join(allowing) + ".";
        Tool t{std::string(info.name), info.op, 0, 0, {}};
        t.definition = {
            {"name", t.name},
            {"title", info.title},
            {"description", description},
            {"inputSchema",
             {{"type", "object"}, {"properties", properties}, {"required", required}, {"additionalProperties", false}}},
            {"outputSchema", info.op == Operation::read_file ? read_file_result_schema() : run_result_schema()},
            {"annotations",
             {{"readOnlyHint", true}, {"destructiveHint", false}, {"idempotentHint", true}, {"openWorldHint", false}}},
        };
        return t;
    }

    std::vector<ProfileEntry> profiles_;
    std::vector<Place> places_;
    Settings settings_;
    std::vector<std::unique_ptr<Runner>> runners_;
    std::vector<Tool> tools_;
    json tools_json_;
};

}  // namespace shannot_cli::mcp
