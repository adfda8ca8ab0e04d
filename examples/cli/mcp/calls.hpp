// SPDX-License-Identifier: MIT
// shannot mcp: a tools/call from its arguments to its result: checks that name the argument,
// the run, and a CallToolResult whose structuredContent is what `shannot --json` prints.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <tl/expected.hpp>

#include <shannot/shannot.hpp>

#include "../encoding.hpp"
#include "../run.hpp"
#include "fit.hpp"
#include "protocol.hpp"
#include "tools.hpp"

namespace shannot_cli::mcp {

/// A call whose arguments passed: what to run, where, with which options.
struct CallPlan {
    Operation op = Operation::run;
    Runner* runner = nullptr;
    std::vector<std::string> command;  ///< run: the argv; operations: what they run (for the audit log)
    shannot::RunOptions options;
    std::string path, pattern;
    shannot::ListOptions list;  ///< list_directory: `long`, `all`
    shannot::GrepOptions grep;  ///< grep_content: `recursive`
};

namespace detail {

using Plan = tl::expected<CallPlan, std::string>;

[[nodiscard]] inline tl::unexpected<std::string> bad(std::string why) { return tl::make_unexpected(std::move(why)); }

/// Refuses arguments the tool does not take, naming them and the ones it does.
[[nodiscard]] inline std::optional<std::string> unknown_argument(const json& arguments, const json& definition) {
    const auto& properties = definition["inputSchema"]["properties"];
    for (const auto& [key, value] : arguments.items()) {
        if (properties.contains(key)) continue;
        std::vector<std::string> known;
        for (const auto& [k, v] : properties.items()) known.push_back(k);
        return "unknown argument '" + key + "' (" + definition["name"].get<std::string>() + " takes: " + join(known) +
               ")";
    }
    return std::nullopt;
}

[[nodiscard]] inline tl::expected<std::optional<std::string>, std::string> string_arg(const json& arguments,
                                                                                      const char* name) {
    const auto it = arguments.find(name);
    if (it == arguments.end()) return std::optional<std::string>{};
    if (!it->is_string()) return bad(std::string(name) + ": must be a string, not " + it->type_name());
    return std::optional<std::string>{it->get<std::string>()};
}

[[nodiscard]] inline tl::expected<bool, std::string> bool_arg(const json& arguments, const char* name) {
    const auto it = arguments.find(name);
    if (it == arguments.end()) return false;
    if (!it->is_boolean()) return bad(std::string(name) + ": must be true or false, not " + it->type_name());
    return it->get<bool>();
}

[[nodiscard]] inline Plan plan_run(const json& a, const Settings& settings, CallPlan plan) {
    const auto command = a.find("command");
    if (command == a.end())
        return bad(
            "command: required: the program and its arguments as an array of strings, e.g. [\"ls\", \"-l\", \"/\"]");
    if (!command->is_array() || command->empty())
        return bad("command: must be a non-empty array of strings, e.g. [\"ls\", \"-l\", \"/\"] (not " +
                   std::string(command->is_array() ? "an empty array" : command->type_name()) + ")");
    for (std::size_t i = 0; i < command->size(); ++i) {
        if (!(*command)[i].is_string())
            return bad("command[" + std::to_string(i) + "]: must be a string, not " + (*command)[i].type_name());
        plan.command.push_back((*command)[i].get<std::string>());
    }
    if (plan.command.front().empty()) return bad("command[0]: the program name is empty");
    auto cwd = string_arg(a, "cwd");
    if (!cwd) return bad(cwd.error());
    if (*cwd) {
        if ((*cwd)->empty() || (*cwd)->front() != '/') return bad("cwd: '" + **cwd + "' is not an absolute path");
        plan.options.working_directory = **cwd;
    }
    auto input = string_arg(a, "stdin");
    if (!input) return bad(input.error());
    if (*input) plan.options.input = std::move(**input);
    if (const auto env = a.find("env"); env != a.end()) {
        if (!env->is_object()) return bad(std::string("env: must be an object of strings, not ") + env->type_name());
        for (const auto& [name, value] : env->items()) {
            if (!shannot::detail::is_env_name(name))
                return bad("env: '" + name + "' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)");
            if (!value.is_string()) return bad("env." + name + ": must be a string, not " + value.type_name());
            plan.options.environment[name] = value.get<std::string>();
        }
    }
    const double max_s = static_cast<double>(settings.max_timeout.count()) / 1000.0;
    if (const auto t = a.find("timeout_seconds"); t != a.end()) {
        if (!t->is_number() || !(t->get<double>() > 0) || t->get<double>() > max_s)
            return bad("timeout_seconds: must be a number above 0 and at most " +
                       std::to_string(static_cast<long long>(max_s)) + ", not " + t->dump());
        plan.options.timeout =
            std::chrono::milliseconds(std::max<long long>(1, static_cast<long long>(t->get<double>() * 1000.0)));
    }
    return plan;
}

}  // namespace detail

/// Checks a call's arguments against the tool. The error names the argument and what it must be.
[[nodiscard]] inline tl::expected<CallPlan, std::string> plan_call(Catalog& catalog, const Tool& tool,
                                                                   const json& arguments) {
    using detail::bad;
    if (auto unknown = detail::unknown_argument(arguments, tool.definition)) return bad(*unknown);
    const auto& settings = catalog.settings();
    CallPlan plan;
    plan.op = tool.op;
    plan.options.timeout = settings.default_timeout;
    plan.options.max_output = settings.max_output;
    if (tool.op == Operation::run) {
        plan.runner = &catalog.runner(tool.place, tool.profile);
        return detail::plan_run(arguments, settings, std::move(plan));
    }
    const OperationInfo* info = nullptr;
    for (const auto& o : operations)
        if (o.op == tool.op) info = &o;
    auto profile_name = detail::string_arg(arguments, "profile");
    if (!profile_name) return bad(profile_name.error());
    std::size_t profile = catalog.default_profile_for(info->command);
    if (*profile_name) {
        profile = catalog.profiles().size();
        for (std::size_t i = 0; i < catalog.profiles().size(); ++i)
            if (catalog.profiles()[i].profile.name == **profile_name) profile = i;
        if (profile == catalog.profiles().size())
            return bad(
                "profile: no profile named '" + **profile_name + "' here (profiles: " +
                join(tool.definition["inputSchema"]["properties"]["profile"]["enum"].get<std::vector<std::string>>()) +
                ")");
    }
    auto target = detail::string_arg(arguments, "target");
    if (!target) return bad(target.error());
    std::size_t place = 0;
    if (*target) {
        const auto names = catalog.place_names();
        place = names.size();
        for (std::size_t i = 0; i < names.size(); ++i)
            if (names[i] == **target) place = i;
        if (place == names.size())
            return bad("target: no target named '" + **target + "' here (targets: " + join(names) + ")");
    }
    plan.runner = &catalog.runner(place, profile);
    for (const char* name : {"path", "pattern"}) {
        auto value = detail::string_arg(arguments, name);
        if (!value) return bad(value.error());
        const auto& listed = tool.definition["inputSchema"]["required"];
        const bool required = std::find(listed.begin(), listed.end(), name) != listed.end();
        if (!*value && required)
            return bad(std::string(name) + ": required (" +
                       tool.definition["inputSchema"]["properties"][name]["description"].get<std::string>() + ")");
        if (*value) (name == std::string_view("path") ? plan.path : plan.pattern) = std::move(**value);
    }
    for (auto [name, flag] :
         {std::pair{"long", &plan.list.long_format}, {"all", &plan.list.hidden}, {"recursive", &plan.grep.recursive}}) {
        auto value = detail::bool_arg(arguments, name);
        if (!value) return bad(value.error());
        *flag = *value;
    }
    switch (tool.op) {
    case Operation::read_file: plan.command = {"cat", "--", plan.path}; break;
    case Operation::list_directory:
        plan.command = {"ls"};
        if (plan.list.long_format) plan.command.emplace_back("-l");
        if (plan.list.hidden) plan.command.emplace_back("-a");
        plan.command.insert(plan.command.end(), {"--", plan.path});
        break;
    case Operation::search_files: plan.command = {"find", "-H", plan.path, "-name", plan.pattern}; break;
    case Operation::grep_content:
        plan.command = {"grep"};
        if (plan.grep.recursive) plan.command.emplace_back("-r");
        plan.command.insert(plan.command.end(), {"-e", plan.pattern, "--", plan.path});
        break;
    case Operation::check_disk_usage: plan.command = {"df", "-h"}; break;
    case Operation::check_memory: plan.command = {"free", "-h"}; break;
    case Operation::run: break;
    }
    return plan;
}

/// How a call ended, for the response and the audit log.
struct CallOutcome {
    json result;  ///< the CallToolResult
    std::optional<shannot::ProcessResult> run;
    std::string error;           ///< empty when the call succeeded
    std::string limit_exceeded;  ///< the resource limit that stopped the command, if one did
};

/// An isError result with a message the model can act on.
[[nodiscard]] inline CallOutcome error_outcome(std::string message) {
    CallOutcome o;
    o.result = {{"content", json::array({text_block(message)})}, {"isError", true}};
    o.error = std::move(message);
    return o;
}

namespace detail {

/// "on remote 'db1' (root@db1:22): " for remote runs, so a failure names the host.
[[nodiscard]] inline std::string where(const Runner& runner) {
    return runner.place().ssh ? "on " + runner.place().label + ": " : std::string();
}

/// What went wrong, in one message that names the cause, and what to do about it.
[[nodiscard]] inline std::string explain(const shannot::Error& e, const Runner& runner) {
    std::string text = where(runner) + e.describe();
    std::string hint = hint_for(e.code);
    if (e.code == shannot::errc::command_refused)
        hint =
            "use a command the profile allows, or the tool of a profile that allows it (see the tools' descriptions)";
    if (!hint.empty()) text += " (" + hint + ")";
    return text;
}

/// The run as structuredContent and as text, trimmed until the response fits the budget.
[[nodiscard]] inline CallOutcome run_outcome(shannot::ProcessResult r, const Runner& runner, const Settings& settings,
                                             std::string error) {
    align_cuts(r, settings.max_output);
    json structured;
    std::string text;
    while (true) {
        structured =
            result_to_json(r, runner.profile().name, runner.transport(), shannot_cli::detail::exit_status_of(r));
        text = dump_json(structured);
        // The response holds the object, and the same as a JSON string (its quotes escaped again).
        if (text.size() + dump_json(json(text)).size() + error.size() + 512 <= settings.response_budget ||
            !halve_larger_stream(r))
            break;
    }
    CallOutcome o;
    // A resource limit that stopped the command (`limit_exceeded` in the run object, where runs
    // have limits) is a failure of the call, like a timeout; the profile sets limits, not callers.
    if (const auto limit = structured.find("limit_exceeded"); limit != structured.end() && limit->is_string()) {
        o.limit_exceeded = limit->get<std::string>();
        if (error.empty())
            error = where(runner) + "the command exceeded its " + o.limit_exceeded +
                    " limit and was stopped (limits are the profile's; a call cannot change them)";
    }
    json content = json::array();
    if (!error.empty()) content.push_back(text_block(error));
    content.push_back(text_block(std::move(text)));
    o.result = {
        {"content", std::move(content)}, {"structuredContent", std::move(structured)}, {"isError", !error.empty()}};
    o.error = std::move(error);
    o.run = std::move(r);
    return o;
}

/// A run's own outcome: a non-zero exit is a result; a timeout is an error that still carries the run.
[[nodiscard]] inline CallOutcome process_outcome(shannot::Result<shannot::ProcessResult> r, const CallPlan& plan,
                                                 const Settings& settings) {
    const Runner& runner = *plan.runner;
    if (!r) {
        if (r.error().result) return run_outcome(*r.error().result, runner, settings, explain(r.error(), runner));
        return error_outcome(explain(r.error(), runner));
    }
    std::string error;
    if (r->timed_out) {
        const auto seconds =
            std::chrono::duration<double>(plan.options.timeout.value_or(settings.default_timeout)).count();
        char text[160];
        std::snprintf(text, sizeof text,
                      "the command timed out after %g s and was stopped (timeout_seconds: at most %lld)", seconds,
                      static_cast<long long>(settings.max_timeout.count() / 1000));
        error = where(runner) + text;
    }
    return run_outcome(std::move(*r), runner, settings, std::move(error));
}

}  // namespace detail

/// Runs a planned call. `token` stops it; `on_bytes` counts its output as it arrives.
[[nodiscard]] inline CallOutcome execute(CallPlan plan, const shannot::CancelToken& token, const OnBytes& on_bytes,
                                         const Settings& settings) {
    plan.options.cancel = token;
    Runner& runner = *plan.runner;
    if (plan.op == Operation::run)
        return detail::process_outcome(runner.run(plan.command, plan.options, on_bytes), plan, settings);
    OperationRunner sandbox{runner, on_bytes};
    shannot::OperationOptions options;
    options.timeout = plan.options.timeout;
    options.cancel = token;
    options.max_output = plan.options.max_output;
    switch (plan.op) {
    case Operation::read_file: {
        auto content = shannot::read_file(sandbox, plan.path, options);
        if (!content) return error_outcome(detail::explain(content.error(), runner));
        const bool text = is_valid_utf8(*content);
        const auto bytes = content->size();
        json structured = {{"path", plan.path},
                           {"content", text ? std::move(*content) : base64_encode(*content)},
                           {"encoding", text ? "utf-8" : "base64"},
                           {"bytes", bytes},
                           {"profile", runner.profile().name},
                           {"transport", std::string(runner.transport())}};
        CallOutcome o;
        o.result = {{"content", json::array({text_block(dump_json(structured))})},
                    {"structuredContent", std::move(structured)},
                    {"isError", false}};
        return o;
    }
    case Operation::list_directory:
        return detail::process_outcome(shannot::list_directory(sandbox, plan.path, plan.list, options), plan, settings);
    case Operation::search_files:
        return detail::process_outcome(shannot::search_files(sandbox, plan.path, plan.pattern, options), plan,
                                       settings);
    case Operation::grep_content:
        return detail::process_outcome(shannot::grep_content(sandbox, plan.pattern, plan.path, plan.grep, options),
                                       plan, settings);
    case Operation::check_disk_usage:
        return detail::process_outcome(shannot::check_disk_usage(sandbox, options), plan, settings);
    case Operation::check_memory:
        return detail::process_outcome(shannot::check_memory(sandbox, options), plan, settings);
    case Operation::run: break;
    }
    return error_outcome("internal error: unknown operation");
}

}  // namespace shannot_cli::mcp
