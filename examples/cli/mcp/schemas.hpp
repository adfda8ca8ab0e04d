// SPDX-License-Identifier: MIT
// shannot mcp: the JSON Schemas of the tools' arguments and results.
#pragma once

#include <string>
#include <vector>

#include "jsonrpc.hpp"

namespace shannot_cli::mcp {

// The schemas use only keywords that draft-07 and 2020-12 read alike (type, properties, required,
// items, enum, minimum, ...) and no "$schema": clients validate with whichever dialect they have
// (the TypeScript SDK's Ajv is draft-07 by default; MCP's default dialect is 2020-12).

/// The object `shannot --json` prints for a run (result_to_json in encoding.hpp), which is what a
/// run tool's structuredContent is. Open (no additionalProperties: false) so fields added to that
/// object later still validate; `limits`, `limits_mechanism` and `limit_exceeded` (resource
/// limits) are listed as optional for the same reason.
[[nodiscard]] inline json run_result_schema() {
    const json strings = {{"type", "array"}, {"items", {{"type", "string"}}}};
    const json encoding = {{"type", "string"}, {"enum", {"utf-8", "base64"}}};
    const json count = {{"type", "integer"}, {"minimum", 0}};
    const auto described = [](json schema, const char* text) {
        schema["description"] = text;
        return schema;
    };
    json properties = {
        {"schema_version", {{"type", "integer"}, {"description", "the version of this object's fields (docs/cli.md)"}}},
        {"command", described(strings, "the command as admitted (a bare name may be resolved to its path)")},
        {"argv", described(strings, "what ran on the server: bwrap (or ssh) and all its arguments")},
        {"exit_code", {{"type", "integer"}, {"description", "the command's exit status; -1 when a signal ended it"}}},
        {"signal", {{"type", "integer"}, {"description", "the signal that ended it, 0 if it exited"}}},
        {"timed_out", {{"type", "boolean"}}},
        {"cancelled", {{"type", "boolean"}}},
        {"stdout", {{"type", "string"}, {"description", "text when valid UTF-8, else base64 (stdout_encoding)"}}},
        {"stdout_encoding", encoding},
        {"stderr", {{"type", "string"}, {"description", "text when valid UTF-8, else base64 (stderr_encoding)"}}},
        {"stderr_encoding", encoding},
        {"stdout_truncated",
         {{"type", "boolean"}, {"description", "the middle of stdout was dropped; its head and tail are kept"}}},
        {"stderr_truncated", {{"type", "boolean"}}},
        {"stdout_dropped", described(count, "bytes of stdout dropped from the middle")},
        {"stderr_dropped", count},
        {"duration_ms", {{"type", "number"}, {"minimum", 0}}},
        {"profile", {{"type", "string"}}},
        {"transport", {{"type", "string"}, {"description", "local, or ssh for a remote host"}}},
        {"status", {{"type", "integer"}, {"description", "what `shannot` would exit with (124: timed out)"}}},
        {"warnings",
         described(strings, "how the sandbox was set up: each bind skipped because its source is missing there")},
        {"limits", {{"type", {"object", "null"}}, {"description", "the resource limits the run had"}}},
        {"limits_mechanism",
         {{"type", {"string", "null"}},
          {"description",
           "how they were enforced: rlimits, rlimits+cgroup-v1, rlimits+cgroup-v2, or "
           "rlimits-without-processes (no bound on the process count there)"}}},
        {"limit_exceeded",
         {{"type", {"string", "null"}}, {"description", "the resource limit that stopped the command, if any"}}},
    };
    json required = json::array();
    for (const auto& [key, value] : properties.items())
        if (key != "limits" && key != "limits_mechanism" && key != "limit_exceeded") required.push_back(key);
    return {{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)}};
}

/// read_file's structuredContent.
[[nodiscard]] inline json read_file_result_schema() {
    return {
        {"type", "object"},
        {"properties",
         {{"path", {{"type", "string"}}},
          {"content", {{"type", "string"}, {"description", "the file's bytes: text when valid UTF-8, else base64"}}},
          {"encoding", {{"type", "string"}, {"enum", {"utf-8", "base64"}}}},
          {"bytes", {{"type", "integer"}, {"minimum", 0}}},
          {"profile", {{"type", "string"}}},
          {"transport", {{"type", "string"}}}}},
        {"required", {"path", "content", "encoding", "bytes", "profile", "transport"}}};
}

/// A run tool's arguments. `max_timeout_s` bounds timeout_seconds.
[[nodiscard]] inline json run_input_schema(double default_timeout_s, double max_timeout_s) {
    return {
        {"type", "object"},
        {"properties",
         {{"command",
           {{"type", "array"},
            {"items", {{"type", "string"}}},
            {"minItems", 1},
            {"description", "the program and its arguments, one string each (no shell parses them)"}}},
          {"cwd", {{"type", "string"}, {"description", "working directory inside the sandbox (absolute)"}}},
          {"stdin", {{"type", "string"}, {"description", "text for the command's standard input (default: empty)"}}},
          {"env",
           {{"type", "object"},
            {"additionalProperties", {{"type", "string"}}},
            {"description", "variables to set inside the sandbox (names [A-Za-z_][A-Za-z0-9_]*)"}}},
          {"timeout_seconds",
           {{"type", "number"},
            {"exclusiveMinimum", 0},
            {"maximum", max_timeout_s},
            {"default", default_timeout_s},
            {"description", "stop the command after this long"}}}}},
        {"required", {"command"}},
        {"additionalProperties", false}};
}

/// The `profile` (and, with remote targets, `target`) arguments every operation tool takes.
[[nodiscard]] inline json where_properties(const std::vector<std::string>& profiles, const std::string& default_profile,
                                           const std::vector<std::string>& targets) {
    json p = {{"profile",
               {{"type", "string"},
                {"enum", profiles},
                {"default", default_profile},
                {"description", "the sandbox profile to run in (see the sandbox://profiles/{name} resources)"}}}};
    if (targets.size() > 1)
        p["target"] = {{"type", "string"},
                       {"enum", targets},
                       {"default", targets.front()},
                       {"description", "where to run: \"local\" is this host, other names are remote hosts"}};
    return p;
}

}  // namespace shannot_cli::mcp
