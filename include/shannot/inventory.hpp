// SPDX-License-Identifier: MIT
// Ansible inventories (INI and `ansible-inventory --list` JSON), host patterns, and the ssh settings they give.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <shannot/detail/glob.hpp>
#include <shannot/detail/inventory_ini.hpp>
#include <shannot/detail/json_reader.hpp>
#include <shannot/error.hpp>
#include <shannot/ssh_connection.hpp>

namespace shannot {

// InventoryHost (a host with its resolved variables and groups) is in detail/inventory_ini.hpp,
// beside the builder that makes it.

/// An Ansible inventory: hosts, groups (with children and variables), and Ansible's host
/// patterns over them. Load one with load_inventory() or the parse functions below.
/// A template only so that its code is compiled where an inventory is used (docs/architecture.md,
/// "Compile time"); users name it Inventory.
template <class Deferred = void>
class BasicInventory {
public:
    explicit BasicInventory(detail::InventoryData data) : data_(std::move(data)) {}

    /// Where it was read from (a file name), as messages name it.
    [[nodiscard]] const std::string& source() const noexcept { return data_.source; }
    /// Every host, in the order the inventory first names them.
    [[nodiscard]] const std::vector<InventoryHost>& hosts() const noexcept { return hosts_(); }
    [[nodiscard]] const InventoryHost* find(std::string_view name) const {
        for (const auto& h : hosts_())
            if (h.name == name) return &h;
        return nullptr;
    }
    [[nodiscard]] bool has_group(const std::string& name) const { return data_.groups.count(name) > 0; }

    /// The hosts Ansible's host pattern `pattern` selects, in inventory order: terms separated
    /// by ':' or ',', each a group name, a host name or a glob over both (`web*`, `db[0-9]`),
    /// `all` or `*` for every host; `&TERM` keeps only hosts also in TERM, `!TERM` removes TERM's
    /// hosts (unions first, then intersections, then exclusions, as Ansible does; a pattern made
    /// only of these starts from `all`). A term that matches nothing is an error (a
    /// typo in an exclusion must not run the command where it was meant not to).
    [[nodiscard]] Result<std::vector<const InventoryHost*>> select(std::string_view pattern) const {
        std::vector<std::string> terms;
        std::string term;
        int depth = 0;
        for (char c : pattern) {
            if (c == '[') ++depth;
            if (c == ']' && depth > 0) --depth;
            if ((c == ':' || c == ',') && depth == 0) {
                terms.push_back(std::move(term));
                term.clear();
            } else {
                term += c;
            }
        }
        terms.push_back(std::move(term));
        for (auto& t : terms) {
            while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.erase(0, 1);
            while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
            if (t.empty() || t == "!" || t == "&")
                return fail(errc::invalid_argument, "host pattern '" + std::string(pattern) + "' has an empty term");
            if (t.front() == '~')
                return fail(errc::invalid_argument,
                            "host pattern term '" + t + "': regular expressions are not supported");
        }
        if (std::all_of(terms.begin(), terms.end(),
                        [](const std::string& t) { return t.front() == '!' || t.front() == '&'; }))
            terms.insert(terms.begin(), "all");
        std::set<std::size_t> chosen;
        for (int pass = 0; pass < 3; ++pass) {
            for (const auto& t : terms) {
                const char kind = t.front() == '!' || t.front() == '&' ? t.front() : '+';
                if ((pass == 0) != (kind == '+') || (pass == 1 && kind != '&') || (pass == 2 && kind != '!')) continue;
                auto matched = match_term(kind == '+' ? std::string_view(t) : std::string_view(t).substr(1));
                if (!matched) return propagate(matched);
                if (kind == '+')
                    chosen.insert(matched->begin(), matched->end());
                else if (kind == '!')
                    for (auto i : *matched) chosen.erase(i);
                else
                    for (auto it = chosen.begin(); it != chosen.end();)
                        it = matched->count(*it) ? std::next(it) : chosen.erase(it);
            }
        }
        std::vector<const InventoryHost*> out;
        for (auto i : chosen) out.push_back(&hosts_()[i]);
        return out;
    }

    /// The ssh settings for `host`: `base` (key, known_hosts, options of the caller) with the
    /// host's ansible_host, ansible_port, ansible_user and ansible_ssh_private_key_file (and their
    /// older ansible_ssh_* names) applied. Other variables are ignored.
    [[nodiscard]] Result<SshConnection> connection(const InventoryHost& host, SshConnection base = {}) const {
        const auto var = [&](std::initializer_list<const char*> names) -> const std::string* {
            for (const char* n : names)
                if (auto it = host.vars.find(n); it != host.vars.end()) return &it->second;
            return nullptr;
        };
        const auto where = data_.source + ": host " + host.name + ": ";
        base.host = host.name;
        if (auto v = var({"ansible_host", "ansible_ssh_host"})) base.host = *v;
        if (auto v = var({"ansible_user", "ansible_ssh_user"})) base.user = *v;
        if (auto v = var({"ansible_port", "ansible_ssh_port"})) {
            char* end = nullptr;
            errno = 0;
            const long port = std::strtol(v->c_str(), &end, 10);
            if (v->empty() || *end != '\0' || errno != 0 || port < 1 || port > 65535)
                return fail(errc::invalid_argument, where + "ansible_port '" + *v + "' is not a port (1-65535)");
            base.port = static_cast<std::uint16_t>(port);
        }
        if (auto v = var({"ansible_ssh_private_key_file", "ansible_private_key_file"})) {
            base.identity_file = *v;
            if (v->rfind("~/", 0) == 0)
                if (const char* home = std::getenv("HOME"); home && *home)
                    base.identity_file = std::string(home) + v->substr(1);
        }
        if (auto ok = validate(base); !ok) return fail(ok.error().code, where + ok.error().message);
        return base;
    }

private:
    const std::vector<InventoryHost>& hosts_() const { return data_.hosts; }

    /// The indexes of the hosts one term names: a group, a host, or a glob over both.
    Result<std::set<std::size_t>> match_term(std::string_view term) const {
        std::set<std::size_t> out;
        const bool everything = term == "all" || term == "*";
        const bool glob = term.find_first_of("*?[") != std::string_view::npos;
        for (std::size_t i = 0; i < hosts_().size(); ++i) {
            const auto& h = hosts_()[i];
            bool hit = everything || h.name == term || (glob && detail::glob_match(term, h.name));
            for (const auto& g : h.groups)
                if (!hit) hit = g == term || (glob && detail::glob_match(term, g));
            if (hit) out.insert(i);
        }
        if (out.empty() && !everything)
            return fail(errc::invalid_argument,
                        "host pattern term '" + std::string(term) + "' matches no group or host in " + data_.source);
        return out;
    }

    detail::InventoryData data_;
};

using Inventory = BasicInventory<>;

/// Parses the INI form of an Ansible inventory. `source` names it in errors ("FILE:LINE: ...").
template <class Deferred = void>
[[nodiscard]] Result<BasicInventory<Deferred>> parse_inventory_ini(std::string_view text,
                                                                   std::string source = "<inventory>") {
    auto data = detail::parse_ini_inventory<Deferred>(text, std::move(source));
    if (!data) return propagate(data);
    return BasicInventory<Deferred>(std::move(*data));
}

/// Parses the JSON that `ansible-inventory --list` prints (or a dynamic inventory script's):
/// groups with "hosts", "children" and "vars", or a plain list of hosts; "_meta.hostvars".
template <class Deferred = void, class Json = nlohmann::json>
[[nodiscard]] Result<BasicInventory<Deferred>> parse_inventory_json(std::string_view text,
                                                                    std::string source = "<inventory>") {
    // The line of a key path ("web.hosts"): each key's first quoted occurrence after the previous one's.
    const auto line_of = [&](const std::string& path, bool second = false) {
        std::size_t at = 0;
        for (std::size_t from = 0; from <= path.size();) {
            const auto dot = std::min(path.find('.', from), path.size());
            // Appended, not "\"" + string: g++ 12 -O3 warns (-Wrestrict, a false positive) on that.
            std::string key(1, '"');
            key.append(path, from, dot - from).push_back('"');
            auto found = text.find(key, at);
            if (found != std::string_view::npos && second && dot == path.size()) found = text.find(key, found + 1);
            if (found == std::string_view::npos) break;
            at = found;
            from = dot + 1;
        }
        return std::to_string(1 + std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
    };
    auto parsed = detail::parse_json_strict<std::string_view, Json>(text);
    if (!parsed) {
        const auto& why = parsed.error().message;
        std::string line;
        if (const auto at = why.find("at byte "); at != std::string::npos) {
            const auto byte = std::min<std::size_t>(text.size(), std::strtoul(why.c_str() + at + 8, nullptr, 10));
            line = std::to_string(1 + std::count(text.begin(),
                                                 text.begin() + static_cast<std::ptrdiff_t>(byte > 0 ? byte - 1 : 0),
                                                 '\n'));
        } else {
            // "web.hosts: duplicate key": where that key comes the second time
            line = line_of(why.substr(0, why.find(": ")), why.find("duplicate key") != std::string::npos);
        }
        return fail(errc::invalid_argument, source + ":" + line + ": " + why);
    }
    if (!parsed->is_object())
        return fail(errc::invalid_argument, source + ": the inventory must be a JSON object of groups");
    detail::BasicInventoryBuilder<Deferred> b(std::move(source));
    const auto strings = [&](const Json& v, const std::string& at, auto&& each) -> Result<void> {
        if (!v.is_array())
            return fail(errc::invalid_argument, b.source + ":" + line_of(at) + ": " + at + ": must be a list of names");
        for (const auto& item : v) {
            if (!item.is_string() || item.template get<std::string>().empty())
                return fail(errc::invalid_argument,
                            b.source + ":" + line_of(at) + ": " + at + ": every entry must be a non-empty string");
            if (auto ok = each(item.template get<std::string>()); !ok) return ok;
        }
        return {};
    };
    const auto scalar = [](const Json& v) -> std::optional<std::string> {
        if (v.is_string()) return v.template get<std::string>();
        if (v.is_number_integer()) return std::to_string(v.template get<std::int64_t>());
        if (v.is_boolean()) return v.template get<bool>() ? "True" : "False";
        if (v.is_number()) return v.dump();
        return std::nullopt;  // lists and objects: no ssh setting takes one
    };
    const auto vars = [&](const Json& v, const std::string& at,
                          std::map<std::string, std::string>& into) -> Result<void> {
        if (!v.is_object())
            return fail(errc::invalid_argument,
                        b.source + ":" + line_of(at) + ": " + at + ": must be an object of variables");
        for (const auto& [k, value] : v.items())
            if (auto s = scalar(value)) into[k] = *s;
        return {};
    };
    for (const auto& item : parsed->items()) {
        const std::string name = item.key();  // not a structured binding: clang 14 cannot capture one
        const Json& group = item.value();
        if (name == "_meta") {
            if (!group.is_object())
                return fail(errc::invalid_argument, b.source + ":" + line_of("_meta") + ": _meta: must be an object");
            if (group.contains("hostvars")) {
                const auto& hv = group["hostvars"];
                if (!hv.is_object())
                    return fail(errc::invalid_argument,
                                b.source + ":" + line_of("_meta.hostvars") + ": _meta.hostvars: must be an object");
                for (const auto& [host, v] : hv.items())
                    if (auto ok = vars(v, "_meta.hostvars." + host, b.host(host).vars); !ok) return propagate(ok);
            }
            continue;
        }
        auto& g = b.group(name);
        if (group.is_array()) {  // the short form: a list of hosts
            if (auto ok = strings(group, name, [&](const std::string& h) { return b.add_host(name, h); }); !ok)
                return propagate(ok);
            continue;
        }
        if (!group.is_object())
            return fail(errc::invalid_argument,
                        b.source + ":" + line_of(name) + ": " + name + ": must be an object or a list of hosts");
        for (const auto& [key, value] : group.items()) {
            const std::string at = name + "." + key;
            Result<void> ok;
            if (key == "hosts")
                ok = strings(value, at, [&](const std::string& h) { return b.add_host(name, h); });
            else if (key == "children")
                ok = strings(value, at, [&](const std::string& c) { return b.add_child(name, c, 0); });
            else if (key == "vars")
                ok = vars(value, at, g.vars);
            else
                ok = fail(errc::invalid_argument,
                          b.source + ":" + line_of(at) + ": " + at + ": unknown key (expected hosts, children, vars)");
            if (!ok) return propagate(ok);
        }
    }
    auto data = b.finish();
    if (!data) return propagate(data);
    return BasicInventory<Deferred>(std::move(*data));
}

/// Reads an inventory file: JSON when its first non-blank byte is '{', else INI.
template <class Deferred = void>
[[nodiscard]] Result<BasicInventory<Deferred>> load_inventory(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(errc::io_error, "cannot open the inventory " + path + ": " + std::strerror(errno));
    std::string text;
    char buffer[65536];
    for (;;) {
        const auto n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            return fail(errc::io_error, "cannot read the inventory " + path + ": " + std::strerror(e));
        }
        if (n == 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > (64u << 20)) {
            ::close(fd);
            return fail(errc::invalid_argument, path + ": larger than 64 MiB");
        }
    }
    ::close(fd);
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == '{') return parse_inventory_json<Deferred>(text, path);
    return parse_inventory_ini<Deferred>(text, path);
}

}  // namespace shannot
