// SPDX-License-Identifier: MIT
// shannot mcp: the resources: sandbox://profiles/{name}, each profile exported with its lint findings.
#pragma once

#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include <shannot/shannot.hpp>

#include "../info.hpp"
#include "jsonrpc.hpp"
#include "protocol.hpp"
#include "tools.hpp"

namespace shannot_cli::mcp {

inline constexpr std::string_view profile_uri_prefix = "sandbox://profiles/";

/// resources/list: one resource per profile, in the order of the tools.
[[nodiscard]] inline json list_resources(const Catalog& catalog) {
    json resources = json::array();
    for (const auto& entry : catalog.profiles())
        resources.push_back(
            {{"uri", std::string(profile_uri_prefix) + entry.profile.name},
             {"name", entry.profile.name},
             {"title", "Sandbox profile '" + entry.profile.name + "'"},
             {"description", "What the sandbox of profile '" + entry.profile.name + "' shows and allows (from " +
                                 entry.source + "), and the risks it takes"},
             {"mimeType", "application/json"}});
    return resources;
}

[[nodiscard]] inline json resource_templates() {
    return json::array(
        {{{"uriTemplate", std::string(profile_uri_prefix) + "{name}"},
          {"name", "profile"},
          {"title", "Sandbox profile"},
          {"description", "A sandbox profile as `shannot export` prints it, with `shannot lint`'s findings"},
          {"mimeType", "application/json"}}});
}

/// resources/read of sandbox://profiles/{name}: {"profile": <as `shannot export` prints it>,
/// "lint": [{severity, code, message}], "source": "built-in" or the file}.
[[nodiscard]] inline tl::expected<json, RpcError> read_resource(const Catalog& catalog, const json& params,
                                                                bool modern) {
    const auto uri = params.find("uri");
    if (uri == params.end() || !uri->is_string())
        return tl::make_unexpected(
            RpcError{rpc_error::invalid_params, "resources/read: \"uri\" (a string) is required"});
    const auto text = uri->get<std::string>();
    for (const auto& entry : catalog.profiles()) {
        if (text != std::string(profile_uri_prefix) + entry.profile.name) continue;
        json lint = json::array();
        for (const auto& f : shannot::lint_profile(entry.profile))
            lint.push_back({{"severity", severity_name(f.severity)}, {"code", f.code}, {"message", f.message}});
        const json body = {{"profile", entry.profile.to_json()}, {"lint", std::move(lint)}, {"source", entry.source}};
        return json{{"contents",
                     json::array({{{"uri", text}, {"mimeType", "application/json"}, {"text", dump_json(body, 2)}}})}};
    }
    std::string names;
    for (const auto& entry : catalog.profiles())
        names += (names.empty() ? "" : ", ") + std::string(profile_uri_prefix) + entry.profile.name;
    // -32002 is the legacy era's "resource not found"; 2026-07-28 answers invalid params.
    return tl::make_unexpected(RpcError{modern ? rpc_error::invalid_params : rpc_error::resource_not_found,
                                        "no resource '" + text + "' (resources: " + names + ")",
                                        {{"uri", text}}});
}

}  // namespace shannot_cli::mcp
