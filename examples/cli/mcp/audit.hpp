// SPDX-License-Identifier: MIT
// shannot mcp: --audit FILE, one JSON line appended per tool call.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <mutex>
#include <string>

#include "../common.hpp"
#include "../encoding.hpp"
#include "jsonrpc.hpp"

namespace shannot_cli::mcp {

/// "2026-12-07T10:21:03.123Z".
[[nodiscard]] inline std::string utc_timestamp(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    ::gmtime_r(&seconds, &tm);
    char text[80];
    std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
    return text;
}

/// The audit log. Each record is one write(2) of one line to a file opened O_APPEND, so lines
/// from this server and any other writer never interleave; the file is created mode 0600.
class AuditLog {
public:
    AuditLog() = default;
    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;
    ~AuditLog() {
        if (fd_ >= 0) ::close(fd_);
    }

    [[nodiscard]] Expected<void> open(const std::string& path) {
        fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd_ < 0)
            return usage_error("--audit: cannot open '" + path + "': " + std::strerror(errno), "pass a writable file");
        return {};
    }

    [[nodiscard]] bool enabled() const { return fd_ >= 0; }

    /// Appends `record`; a failed write is reported on stderr once and does not stop the server.
    void write(const json& record) {
        if (fd_ < 0) return;
        const std::string line = dump_json(record) + "\n";
        std::lock_guard lock(mutex_);
        if (!write_all(fd_, line) && !warned_) {
            warned_ = true;
            note(std::string("mcp: --audit: cannot write the audit log: ") + std::strerror(errno));
        }
    }

private:
    int fd_ = -1;
    std::mutex mutex_;
    bool warned_ = false;
};

}  // namespace shannot_cli::mcp
