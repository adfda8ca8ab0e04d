// SPDX-License-Identifier: MIT
// The shannot tool: the config file ($XDG_CONFIG_HOME/shannot/config.json) holding named remotes.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <shannot/shannot.hpp>

#include "common.hpp"
#include "encoding.hpp"

namespace shannot_cli {

/// Format version of config.json this tool writes and reads.
inline constexpr std::int64_t config_version = 1;

/// `$XDG_CONFIG_HOME/shannot`, else `$HOME/.config/shannot` (a relative XDG_CONFIG_HOME is
/// ignored, as the XDG spec says).
[[nodiscard]] inline Expected<std::filesystem::path> config_home() {
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && xdg[0] == '/')
        return std::filesystem::path(xdg) / "shannot";
    if (const char* home = std::getenv("HOME"); home && home[0] == '/')
        return std::filesystem::path(home) / ".config" / "shannot";
    return failure(status::bad_config,
                   "cannot find the config folder: neither XDG_CONFIG_HOME nor HOME is an absolute path",
                   "set XDG_CONFIG_HOME or HOME");
}

[[nodiscard]] inline Expected<std::filesystem::path> config_path() {
    return config_home().map([](const std::filesystem::path& dir) { return dir / "config.json"; });
}

/// One named remote host.
struct Remote {
    std::string host;
    std::string user;  ///< empty: ssh's default
    std::uint16_t port = 22;
    std::string key;          ///< private key file; empty: ssh's default keys
    std::string known_hosts;  ///< known_hosts file; empty: ssh's default
    std::string profile;      ///< profile used on this remote unless --profile says otherwise

    [[nodiscard]] shannot::SshConnection connection() const {
        shannot::SshConnection c;
        c.host = host;
        c.user = user;
        c.port = port;
        c.identity_file = key;
        c.known_hosts_file = known_hosts;
        return c;
    }
    /// "user@host:port" as people write it.
    [[nodiscard]] std::string address() const {
        const bool v6 = host.find(':') != std::string::npos;
        return (user.empty() ? "" : user + "@") + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
    }
};

struct Config {
    std::map<std::string, Remote> remotes;
    /// Named groups: each member a remote's name or "@GROUP" (`shannot remote group NAME MEMBER...`).
    std::map<std::string, std::vector<std::string>> groups;
};

/// Remote names: [A-Za-z0-9._-]+, not starting with '-' (it would read as an option).
[[nodiscard]] inline bool valid_remote_name(std::string_view name) {
    if (name.empty() || name.size() > 128 || name.front() == '-') return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                        c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

namespace detail {

[[nodiscard]] inline tl::unexpected<Failure> config_problem(const std::filesystem::path& file,
                                                            const std::string& what) {
    return failure(status::bad_config, file.string() + ": " + what,
                   "fix the file, or remove it to start over (`shannot remote add` writes a new one)");
}

[[nodiscard]] inline Expected<Remote> remote_from_json(const std::filesystem::path& file, const std::string& name,
                                                       const nlohmann::json& v) {
    const std::string at = "remotes." + name;
    if (!valid_remote_name(name))
        return config_problem(file, at + ": not a valid remote name (want [A-Za-z0-9._-]+, not starting with '-')");
    if (!v.is_object()) return config_problem(file, at + ": must be an object with at least \"host\"");
    Remote r;
    for (const auto& [key, value] : v.items()) {
        const std::string field = at + "." + key;
        if (key == "port") {
            if (!value.is_number_integer() || value.get<std::int64_t>() < 1 || value.get<std::int64_t>() > 65535)
                return config_problem(file, field + ": must be an integer from 1 to 65535");
            r.port = static_cast<std::uint16_t>(value.get<std::int64_t>());
            continue;
        }
        std::string* target = key == "host"          ? &r.host
                              : key == "user"        ? &r.user
                              : key == "key"         ? &r.key
                              : key == "known_hosts" ? &r.known_hosts
                              : key == "profile"     ? &r.profile
                                                     : nullptr;
        if (!target)
            return config_problem(file, field + ": unknown key (expected host, user, port, key, known_hosts, profile)");
        if (!value.is_string() || value.get<std::string>().empty())
            return config_problem(file, field + ": must be a non-empty string");
        *target = value.get<std::string>();
    }
    if (r.host.empty()) return config_problem(file, at + ".host: is required");
    if (auto ok = shannot::validate(r.connection()); !ok) return config_problem(file, at + ": " + ok.error().message);
    return r;
}

}  // namespace detail

/// Reads the config file; a missing file is an empty config. Every problem names the file and
/// the field.
[[nodiscard]] inline Expected<Config> load_config(const std::filesystem::path& file) {
    Config config;
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return config;
        return failure(status::bad_config, file.string() + ": cannot open: " + std::strerror(errno),
                       "check the file's permissions");
    }
    std::string text;
    char buffer[65536];
    for (;;) {
        const auto n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int e = errno;
            ::close(fd);
            return failure(status::bad_config, file.string() + ": cannot read: " + std::strerror(e), "check the file");
        }
        if (n == 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > (1u << 20)) {
            ::close(fd);
            return detail::config_problem(file, "larger than 1 MiB");
        }
    }
    ::close(fd);
    auto parsed = shannot::detail::parse_json_strict(text);
    if (!parsed) return detail::config_problem(file, parsed.error().message);
    if (!parsed->is_object()) return detail::config_problem(file, "<root>: must be a JSON object");
    for (const auto& [key, value] : parsed->items()) {
        if (key == "version") {
            if (!value.is_number_integer() || value.get<std::int64_t>() < 1)
                return detail::config_problem(file, "version: must be a positive integer");
            if (value.get<std::int64_t>() > config_version)
                return detail::config_problem(file, "version: " + std::to_string(value.get<std::int64_t>()) +
                                                        " is newer than this tool reads (" +
                                                        std::to_string(config_version) + ")");
        } else if (key == "remotes") {
            if (!value.is_object())
                return detail::config_problem(file, "remotes: must be an object mapping names to remotes");
            for (const auto& [name, remote] : value.items()) {
                auto r = detail::remote_from_json(file, name, remote);
                if (!r) return tl::make_unexpected(std::move(r.error()));
                config.remotes.emplace(name, std::move(*r));
            }
        } else if (key == "groups") {
            if (!value.is_object())
                return detail::config_problem(file, "groups: must be an object mapping names to lists of members");
            for (const auto& [name, members] : value.items()) {
                const std::string at = "groups." + name;
                if (!valid_remote_name(name))
                    return detail::config_problem(
                        file, at + ": not a valid group name (want [A-Za-z0-9._-]+, not starting with '-')");
                if (!members.is_array() || members.empty())
                    return detail::config_problem(file, at + ": must be a non-empty list of remote names and @groups");
                std::vector<std::string> list;
                for (const auto& m : members) {
                    const auto text = m.is_string() ? m.get<std::string>() : std::string();
                    const auto bare = !text.empty() && text.front() == '@' ? text.substr(1) : text;
                    if (!valid_remote_name(bare))
                        return detail::config_problem(file, at + ": every member must be a remote name or @GROUP");
                    list.push_back(text);
                }
                config.groups.emplace(name, std::move(list));
            }
        } else {
            return detail::config_problem(file, key + ": unknown key (expected version, remotes, groups)");
        }
    }
    return config;
}

[[nodiscard]] inline nlohmann::json remote_to_json(const Remote& r) {
    nlohmann::json j = {{"host", r.host}, {"port", r.port}};
    if (!r.user.empty()) j["user"] = r.user;
    if (!r.key.empty()) j["key"] = r.key;
    if (!r.known_hosts.empty()) j["known_hosts"] = r.known_hosts;
    if (!r.profile.empty()) j["profile"] = r.profile;
    return j;
}

[[nodiscard]] inline nlohmann::json config_to_json(const Config& c) {
    nlohmann::json remotes = nlohmann::json::object();
    for (const auto& [name, r] : c.remotes) remotes[name] = remote_to_json(r);
    nlohmann::json j = {{"version", config_version}, {"remotes", std::move(remotes)}};
    if (!c.groups.empty()) j["groups"] = c.groups;
    return j;
}

/// Replaces `file` with `content` so a reader sees the old file or the new one, never half:
/// a temporary file in the same folder, fsync, rename, fsync of the folder. Mode 0600.
[[nodiscard]] inline Expected<void> write_file_atomic(const std::filesystem::path& file, std::string_view content) {
    const auto dir = file.parent_path();
    const auto fail_with = [&](const std::string& what, int e) {
        return failure(status::bad_config, file.string() + ": " + what + ": " + std::strerror(e),
                       "check the folder's permissions");
    };
    std::error_code ec;
    const bool existed = std::filesystem::exists(dir, ec);
    std::filesystem::create_directories(dir, ec);
    if (ec) return fail_with("cannot create " + dir.string(), ec.value());
    if (!existed) ::chmod(dir.c_str(), 0700);  // our own folder: private, like ~/.ssh

    std::string temp = (dir / ("." + file.filename().string() + ".XXXXXX")).string();
    const int fd = ::mkostemp(temp.data(), O_CLOEXEC);
    if (fd < 0) return fail_with("cannot create a temporary file in " + dir.string(), errno);
    const auto abandon = [&](const std::string& what) {
        const int e = errno;
        ::close(fd);
        ::unlink(temp.c_str());
        return fail_with(what, e);
    };
    if (::fchmod(fd, 0600) != 0) return abandon("cannot set mode 0600");
    if (!write_all(fd, content)) return abandon("cannot write");
    if (::fsync(fd) != 0) return abandon("cannot sync");
    if (::close(fd) != 0) {
        const int e = errno;
        ::unlink(temp.c_str());
        return fail_with("cannot close", e);
    }
    if (::rename(temp.c_str(), file.c_str()) != 0) {
        const int e = errno;
        ::unlink(temp.c_str());
        return fail_with("cannot rename the temporary file into place", e);
    }
    if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
        ::fsync(dfd);  // the rename itself reaches the disk
        ::close(dfd);
    }
    return {};
}

[[nodiscard]] inline Expected<void> save_config(const std::filesystem::path& file, const Config& c) {
    return write_file_atomic(file, dump_json(config_to_json(c), 2) + "\n");
}

}  // namespace shannot_cli
