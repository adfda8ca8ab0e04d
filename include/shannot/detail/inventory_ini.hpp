// SPDX-License-Identifier: MIT
// Building an inventory's hosts and groups, and reading Ansible's INI inventory format.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/error.hpp>

namespace shannot {

/// One host of an inventory, with the variables that apply to it: those of `all`, then of its
/// groups from the outermost to the innermost (by depth, then name), then its own.
struct InventoryHost {
    std::string name{};
    std::map<std::string, std::string> vars{};
    std::vector<std::string> groups{};  ///< every group it is in, directly or through children, "all" included
};

namespace detail {

/// A parsed inventory: its hosts with their variables resolved, and its group names.
struct InventoryData {
    std::string source;
    std::vector<InventoryHost> hosts;
    std::set<std::string> groups;
};

/// Collects groups, children, hosts and variables as a parser meets them, then resolves each
/// host's groups and variables (finish()).
template <class Deferred = void>
struct BasicInventoryBuilder {
    struct Group {
        std::vector<std::string> hosts, children;
        std::map<std::string, std::string> vars;
        std::size_t line = 0;  ///< where a [NAME:children] named it before it was defined (INI), else 0
        bool defined = false;
    };
    struct Host {
        std::map<std::string, std::string> vars;
    };

    explicit BasicInventoryBuilder(std::string src) : source(std::move(src)) { group("all").defined = true; }

    std::string source;
    std::map<std::string, Group> groups;
    std::vector<std::string> order;  ///< host names, first mention first
    std::map<std::string, Host> hosts_by_name;

    Group& group(const std::string& name) {
        auto [it, added] = groups.try_emplace(name);
        it->second.defined = true;
        (void)added;
        return it->second;
    }
    Host& host(const std::string& name) {
        auto [it, added] = hosts_by_name.try_emplace(name);
        if (added) order.push_back(name);
        return it->second;
    }
    Result<void> add_host(const std::string& group_name, const std::string& name) {
        host(name);
        auto& g = group(group_name);
        if (std::find(g.hosts.begin(), g.hosts.end(), name) == g.hosts.end()) g.hosts.push_back(name);
        return {};
    }
    /// `line`: where the child is named (INI), so that a child never defined is reported there.
    Result<void> add_child(const std::string& parent, const std::string& child, std::size_t line) {
        group(parent);
        auto [it, added] = groups.try_emplace(child);
        if (added) it->second.line = line;
        auto& c = groups[parent].children;
        if (std::find(c.begin(), c.end(), child) == c.end()) c.push_back(child);
        return {};
    }

    Result<InventoryData> finish() {
        for (auto& [name, g] : groups) {
            if (!g.defined && g.line == 0)
                g.defined = true;  // JSON: `ansible-inventory --list` names "ungrouped" without defining it
            if (!g.defined)
                return fail(errc::invalid_argument, source + (g.line ? ":" + std::to_string(g.line) : std::string()) +
                                                        ": the group '" + name +
                                                        "' is named as a child but never defined");
        }
        // Depth of each group below `all`, and the groups every group is inside of (cycles refused).
        std::map<std::string, std::set<std::string>> parents;
        for (const auto& [name, g] : groups)
            for (const auto& c : g.children) {
                if (c == "all")
                    return fail(errc::invalid_argument,
                                source + ": the group 'all' cannot be a child of '" + name + "'");
                parents[c].insert(name);
            }
        std::map<std::string, std::size_t> depth;
        std::map<std::string, std::set<std::string>> ancestors;
        std::function<Result<void>(const std::string&, std::vector<std::string>&)> walk =
            [&](const std::string& name, std::vector<std::string>& path) -> Result<void> {
            if (ancestors.count(name)) return {};
            if (std::find(path.begin(), path.end(), name) != path.end())
                return fail(errc::invalid_argument,
                            source + ": the groups of '" + name + "' contain themselves (a cycle of children)");
            path.push_back(name);
            std::set<std::string> mine;
            std::size_t d = 0;
            for (const auto& p : parents[name]) {
                if (auto ok = walk(p, path); !ok) return ok;
                mine.insert(p);
                mine.insert(ancestors[p].begin(), ancestors[p].end());
                d = std::max(d, depth[p] + 1);
            }
            if (name != "all") {
                mine.insert("all");
                d = std::max<std::size_t>(d, 1);
            }
            path.pop_back();
            ancestors[name] = std::move(mine);
            depth[name] = d;
            return {};
        };
        for (const auto& [name, g] : groups) {
            std::vector<std::string> path;
            if (auto ok = walk(name, path); !ok) return propagate(ok);
        }
        InventoryData data{source, {}, {}};
        for (const auto& [name, g] : groups) data.groups.insert(name);
        for (const auto& name : order) {
            std::set<std::string> in{"all"};
            for (const auto& [gname, g] : groups)
                if (std::find(g.hosts.begin(), g.hosts.end(), name) != g.hosts.end()) {
                    in.insert(gname);
                    in.insert(ancestors[gname].begin(), ancestors[gname].end());
                }
            std::vector<std::string> sorted(in.begin(), in.end());
            std::stable_sort(sorted.begin(), sorted.end(),
                             [&](const auto& a, const auto& b) { return depth[a] < depth[b]; });
            InventoryHost h{name, {}, {}};
            for (const auto& g : sorted)
                for (const auto& [k, v] : groups[g].vars) h.vars[k] = v;
            for (const auto& [k, v] : hosts_by_name[name].vars) h.vars[k] = v;
            h.groups = std::move(sorted);
            data.hosts.push_back(std::move(h));
        }
        return data;
    }
};

/// Words of a host line as Python's shlex splits them (Ansible's INI parser uses it): blanks
/// separate, quotes group, `#` outside quotes starts a comment. nullopt on an open quote.
[[nodiscard]] inline std::optional<std::vector<std::string>> ini_words(std::string_view line) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    char quote = 0;
    for (char c : line) {
        if (quote) {
            if (c == quote)
                quote = 0;
            else
                word += c;
            continue;
        }
        if (c == '\'' || c == '"') {
            quote = c;
            in_word = true;
        } else if (c == '#' && !in_word) {
            break;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            if (in_word) words.push_back(std::move(word));
            word.clear();
            in_word = false;
        } else {
            word += c;
            in_word = true;
        }
    }
    if (quote) return std::nullopt;
    if (in_word) words.push_back(std::move(word));
    return words;
}

/// A value as Ansible's INI reader keeps it: surrounding quotes removed.
[[nodiscard]] inline std::string ini_value(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
        v = v.substr(1, v.size() - 2);
    return std::string(v);
}

/// Expands Ansible's host ranges: `web[01:03]` is web01, web02, web03; `db-[a:c]` is db-a, db-b,
/// db-c; `[1:9:2]` steps by 2. Leading zeros set the width.
[[nodiscard]] inline Result<std::vector<std::string>> expand_host_range(const std::string& name) {
    const auto open = name.find('[');
    if (open == std::string::npos) return std::vector<std::string>{name};
    const auto close = name.find(']', open);
    if (close == std::string::npos) return fail(errc::invalid_argument, "the host range in '" + name + "' has no ']'");
    const std::string inner = name.substr(open + 1, close - open - 1), head = name.substr(0, open);
    auto rest = expand_host_range(name.substr(close + 1));
    if (!rest) return rest;
    std::vector<std::string> parts;
    for (std::size_t from = 0;;) {
        const auto colon = inner.find(':', from);
        parts.push_back(inner.substr(from, colon == std::string::npos ? std::string::npos : colon - from));
        if (colon == std::string::npos) break;
        from = colon + 1;
    }
    const auto bad = [&] {
        return fail(errc::invalid_argument,
                    "the host range '[" + inner + "]' in '" + name + "' is not [START:END] or [START:END:STEP]");
    };
    if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) return bad();
    long step = 1;
    if (parts.size() == 3) {
        char* end = nullptr;
        step = std::strtol(parts[2].c_str(), &end, 10);
        if (*end || step < 1) return bad();
    }
    std::vector<std::string> items;
    const bool digits = parts[0].find_first_not_of("0123456789") == std::string::npos &&
                        parts[1].find_first_not_of("0123456789") == std::string::npos;
    if (digits) {
        const long a = std::strtol(parts[0].c_str(), nullptr, 10), b = std::strtol(parts[1].c_str(), nullptr, 10);
        if (a > b || b - a > 100000) return bad();
        const auto width = parts[0].size() > 1 && parts[0][0] == '0' ? parts[0].size() : 0;
        for (long i = a; i <= b; i += step) {
            std::string n = std::to_string(i);
            if (n.size() < width) n.insert(0, width - n.size(), '0');
            items.push_back(std::move(n));
        }
    } else if (parts[0].size() == 1 && parts[1].size() == 1 && parts[0][0] <= parts[1][0]) {
        for (int c = parts[0][0]; c <= parts[1][0]; c += static_cast<int>(step))
            items.emplace_back(1, static_cast<char>(c));
    } else {
        return bad();
    }
    std::vector<std::string> out;
    for (const auto& item : items)
        for (const auto& tail : *rest) out.push_back(head + item + tail);
    return out;
}

/// Parses Ansible's INI inventory: hosts before any section are in `ungrouped`; `[NAME]` lists
/// hosts (`NAME[01:20]` ranges, `HOST:PORT`, then KEY=VALUE variables), `[NAME:vars]` KEY=VALUE
/// lines, `[NAME:children]` group names. Comments start with `#` or `;`. Errors name the line.
template <class Deferred = void>
[[nodiscard]] Result<InventoryData> parse_ini_inventory(std::string_view text, std::string source) {
    BasicInventoryBuilder<Deferred> b(std::move(source));
    enum class Section { hosts, vars, children } kind = Section::hosts;
    std::string current = "ungrouped";
    std::map<std::string, std::size_t> vars_lines;  // [NAME:vars] for a group that may be defined later
    std::size_t number = 0;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        ++number;
        const auto at = [&](const std::string& what) {
            return fail(errc::invalid_argument, b.source + ":" + std::to_string(number) + ": " + what);
        };
        while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
        while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r'))
            line.remove_suffix(1);
        if (line.empty() || line.front() == '#' || line.front() == ';') continue;
        if (line.front() == '[') {
            if (line.back() != ']') return at("a section header must end with ']'");
            std::string name(line.substr(1, line.size() - 2));
            kind = Section::hosts;
            if (const auto colon = name.find(':'); colon != std::string::npos) {
                const auto suffix = name.substr(colon + 1);
                name.resize(colon);
                if (suffix == "vars")
                    kind = Section::vars;
                else if (suffix == "children")
                    kind = Section::children;
                else
                    return at("invalid section [" + std::string(line.substr(1, line.size() - 2)) +
                              "]: after ':' comes vars or children");
            }
            if (name.empty() || name.find_first_of(" \t[]:") != std::string::npos)
                return at("'" + name + "' is not a group name");
            current = name;
            if (kind == Section::vars)
                vars_lines.emplace(name, number);
            else
                b.group(name);
            continue;
        }
        if (kind == Section::vars) {
            const auto eq = line.find('=');
            if (eq == std::string_view::npos) return at("expected KEY=VALUE in [" + current + ":vars]");
            const auto key = ini_value(line.substr(0, eq));
            if (key.empty()) return at("a variable needs a name before '='");
            b.groups[current].vars[key] = ini_value(line.substr(eq + 1));
            continue;
        }
        auto words = ini_words(line);
        if (!words) return at("a quote is not closed");
        if (words->empty()) continue;
        if (kind == Section::children) {
            if (words->size() != 1) return at("[" + current + ":children] lists one group name per line");
            if (words->front() == current) return at("the group '" + current + "' cannot be its own child");
            (void)b.add_child(current, words->front(), number);
            continue;
        }
        std::string name = words->front();
        std::optional<std::string> port;
        if (const auto colon = name.rfind(':');
            colon != std::string::npos && name.find(':') == colon && name.find(']', colon) == std::string::npos) {
            port = name.substr(colon + 1);
            name.resize(colon);
            if (port->empty() || port->find_first_not_of("0123456789") != std::string::npos)
                return at("'" + *port + "' is not a port");
        }
        auto names = expand_host_range(name);
        if (!names) return at(names.error().message);
        std::map<std::string, std::string> vars;
        for (std::size_t i = 1; i < words->size(); ++i) {
            const auto& w = (*words)[i];
            const auto eq = w.find('=');
            if (eq == std::string::npos || eq == 0) return at("'" + w + "' after the host name is not KEY=VALUE");
            vars[w.substr(0, eq)] = w.substr(eq + 1);
        }
        if (port) vars["ansible_port"] = *port;
        for (const auto& h : *names) {
            (void)b.add_host(current, h);
            for (const auto& [k, v] : vars) b.host(h).vars[k] = v;
        }
    }
    for (const auto& [name, line] : vars_lines)
        if (!b.groups.count(name) || !b.groups[name].defined)
            return fail(errc::invalid_argument, b.source + ":" + std::to_string(line) + ": [" + name +
                                                    ":vars] is for a group that is never defined");
    return b.finish();
}

}  // namespace detail
}  // namespace shannot
