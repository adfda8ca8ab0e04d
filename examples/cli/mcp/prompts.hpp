// SPDX-License-Identifier: MIT
// shannot mcp: Shannot's diagnostic prompts, each offered only where a profile allows its commands.
#pragma once

#include <array>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <tl/expected.hpp>

#include "jsonrpc.hpp"
#include "protocol.hpp"
#include "tools.hpp"

namespace shannot_cli::mcp {

struct PromptArgument {
    std::string_view name;
    std::string_view description;
    bool required = false;
};

/// A prompt: what it asks the model to do, with which commands (a profile must allow them all),
/// and its arguments.
struct PromptInfo {
    std::string_view name;
    std::string_view title;
    std::string_view description;
    std::array<std::string_view, 4> commands;  ///< empty entries unused
    std::array<PromptArgument, 2> arguments;   ///< entries with an empty name unused
};

inline constexpr std::array<PromptInfo, 5> prompt_infos{{
    {"system-health-check",
     "System health check",
     "Assess the system's health: disk space, memory, load and the busiest processes.",
     {"df", "free", "uptime", "ps"},
     {{{"focus", "what to pay most attention to (e.g. 'memory', 'a slow web server')", false}, {}}}},
    {"disk-usage-audit",
     "Disk usage audit",
     "Find the file systems that are filling up and what takes their space.",
     {"df", "ls", "find", {}},
     {{{"threshold", "percent used above which a file system is reported (default 80)", false}, {}}}},
    {"analyze-logs",
     "Analyze logs",
     "Search the system's logs for errors, warnings and anomalies.",
     {"tail", "grep", "ls", {}},
     {{{"log_path", "the log file or folder to look at (default /var/log)", false},
       {"timeframe", "the period of interest (e.g. 'the last hour')", false}}}},
    {"monitor-processes",
     "Monitor processes",
     "List the processes using the most CPU or memory and anything unusual among them.",
     {"ps", {}, {}, {}},
     {{{"sort_by", "cpu or memory (default cpu)", false}, {}}}},
    {"check-service-status",
     "Check a service",
     "Check a systemd service: its recent log and its processes.",
     {"journalctl", {}, {}, {}},
     {{{"service_name", "the systemd unit to check (e.g. 'nginx', 'ssh.service')", true}, {}}}},
}};

/// The run tools whose profile allows every command the prompt needs.
[[nodiscard]] inline std::vector<std::string> prompt_tools(const Catalog& catalog, const PromptInfo& info) {
    std::vector<std::string> tools;
    for (std::size_t place = 0; place < catalog.places().size(); ++place) {
        for (std::size_t profile = 0; profile < catalog.profiles().size(); ++profile) {
            bool all = true;
            for (auto command : info.commands)
                if (!command.empty() && !allows(catalog.profiles()[profile].profile, command)) all = false;
            if (all) tools.push_back(catalog.run_tool_name(place, profile));
        }
    }
    return tools;
}

/// prompts/list: the prompts some profile here can carry out, in a fixed order.
[[nodiscard]] inline json list_prompts(const Catalog& catalog) {
    json prompts = json::array();
    for (const auto& info : prompt_infos) {
        if (prompt_tools(catalog, info).empty()) continue;
        json arguments = json::array();
        for (const auto& a : info.arguments)
            if (!a.name.empty())
                arguments.push_back({{"name", a.name}, {"description", a.description}, {"required", a.required}});
        prompts.push_back(
            {{"name", info.name}, {"title", info.title}, {"description", info.description}, {"arguments", arguments}});
    }
    return prompts;
}

namespace detail {

[[nodiscard]] inline std::string prompt_text(const PromptInfo& info, const std::map<std::string, std::string>& args,
                                             const std::vector<std::string>& tools) {
    const auto arg = [&](const char* name, std::string fallback) {
        const auto it = args.find(name);
        return it == args.end() || it->second.empty() ? fallback : it->second;
    };
    std::string use = "Use the tool " + tools.front();
    if (tools.size() > 1)
        use = "Use the tools " + join(tools) + " (one per host or profile; run the steps on each host that matters)";
    use += ". Each takes the command as an array of words, e.g. [\"df\", \"-h\"]; no shell parses it.\n\n";
    const std::string name(info.name);
    std::string steps;
    if (name == "system-health-check") {
        steps =
            "Check the health of the system" +
            std::string(args.count("focus") ? ", paying most attention to " + arg("focus", "") : "") +
            ":\n"
            "1. Disk space: `df -h`; flag any file system over 80% used.\n"
            "2. Memory: `free -h`; note heavy swap use.\n"
            "3. Load: `uptime`; compare the load averages with the number of CPUs.\n"
            "4. Processes: `ps aux --sort=-%cpu` and `ps aux --sort=-%mem`; look at the first lines of each.\n"
            "Then summarize: overall status (healthy, warning or critical), what needs attention, and what to do next.";
    } else if (name == "disk-usage-audit") {
        steps = "Audit disk usage:\n1. `df -h`: list every file system over " + arg("threshold", "80") + "% used.\n";
        steps +=
            "2. For each, look for what takes the space: `ls -la` of its large folders, and\n"
            "   `find DIR -xdev -size +100M` for big files.\n"
            "Then report each full file system, its largest consumers, and what could be cleaned up (you cannot delete "
            "anything: the sandbox is read-only).";
    } else if (name == "analyze-logs") {
        steps =
            "Analyze the logs in " + arg("log_path", "/var/log") +
            (args.count("timeframe") ? " for " + arg("timeframe", "") : "") +
            ":\n"
            "1. `ls -la` the folder to see which logs exist and which changed last.\n"
            "2. `tail -n 200` the most relevant ones.\n"
            "3. `grep -i -e error -e fail -e warn` them for problems, and `grep -c` to count how often each occurs.\n"
            "Then report the errors and warnings found, how often and since when, and their likely causes.";
    } else if (name == "monitor-processes") {
        const bool memory = arg("sort_by", "cpu") == "memory";
        steps = std::string(
                    "Look at the running processes:\n"
                    "1. `ps aux --sort=") +
                (memory ? "-%mem" : "-%cpu") +
                "`: the busiest first.\n"
                "2. `ps -eo pid,ppid,user,stat,etime,cmd`: note zombies (state Z), processes stuck in D state, and "
                "anything unexpected.\n"
                "Then report the top consumers of " +
                (memory ? "memory" : "CPU") + " and anything unusual.";
    } else {
        const std::string unit = arg("service_name", "");
        steps = "Check the service " + unit +
                ":\n"
                "1. `journalctl -u " +
                unit +
                " -n 100 --no-pager`: its recent log.\n"
                "2. `journalctl -u " +
                unit +
                " -p warning -n 50 --no-pager`: its warnings and errors.\n"
                "Then report whether it is running well, the problems its log shows, and what to check next.";
    }
    return use + steps;
}

}  // namespace detail

/// prompts/get. Errors: an unknown (or here unusable) prompt, a missing required argument, an
/// argument that is not a string.
[[nodiscard]] inline tl::expected<json, RpcError> get_prompt(const Catalog& catalog, const json& params) {
    const auto name = params.find("name");
    if (name == params.end() || !name->is_string())
        return tl::make_unexpected(RpcError{rpc_error::invalid_params, "prompts/get: \"name\" (a string) is required"});
    const PromptInfo* info = nullptr;
    for (const auto& p : prompt_infos)
        if (p.name == name->get<std::string>()) info = &p;
    const auto tools = info ? prompt_tools(catalog, *info) : std::vector<std::string>{};
    if (tools.empty()) {
        std::vector<std::string> names;
        for (const auto& p : list_prompts(catalog)) names.push_back(p["name"]);
        return tl::make_unexpected(
            RpcError{rpc_error::invalid_params, "no prompt named '" + name->get<std::string>() + "' here (prompts: " +
                                                    (names.empty() ? std::string("none") : join(names)) + ")"});
    }
    std::map<std::string, std::string> args;
    if (const auto a = params.find("arguments"); a != params.end() && !a->is_null()) {
        if (!a->is_object())
            return tl::make_unexpected(
                RpcError{rpc_error::invalid_params, "prompts/get: \"arguments\" must be an object of strings"});
        for (const auto& [key, value] : a->items()) {
            bool known = false;
            for (const auto& pa : info->arguments) known = known || (!pa.name.empty() && pa.name == key);
            if (!known)
                return tl::make_unexpected(RpcError{rpc_error::invalid_params, "prompt '" + std::string(info->name) +
                                                                                   "' has no argument '" + key + "'"});
            if (!value.is_string())
                return tl::make_unexpected(
                    RpcError{rpc_error::invalid_params, "prompt argument '" + key + "' must be a string"});
            args[key] = value.get<std::string>();
        }
    }
    for (const auto& pa : info->arguments)
        if (pa.required && (!args.count(std::string(pa.name)) || args[std::string(pa.name)].empty()))
            return tl::make_unexpected(RpcError{rpc_error::invalid_params,
                                                "prompt '" + std::string(info->name) + "' needs the argument '" +
                                                    std::string(pa.name) + "' (" + std::string(pa.description) + ")"});
    return json{{"description", info->description},
                {"messages",
                 json::array({{{"role", "user"}, {"content", text_block(detail::prompt_text(*info, args, tools))}}})}};
}

}  // namespace shannot_cli::mcp
