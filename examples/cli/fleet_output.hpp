// SPDX-License-Identifier: MIT
// The shannot tool: printing the results of one command on several hosts (prefixed, gathered, JSON lines).
#pragma once

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <shannot/shannot.hpp>

#include "common.hpp"
#include "encoding.hpp"

namespace shannot_cli {

/// Prints each host's result as it ends (plain: every line prefixed "HOST: "; --json: one object
/// per line) or, with --gather, all of them at the end, grouped by identical output. Keeps the
/// largest exit status.
class FleetPrinter {
public:
    FleetPrinter(bool json, bool gather, std::string profile, std::optional<std::chrono::milliseconds> timeout)
        : json_(json), gather_(gather), profile_(std::move(profile)), timeout_(timeout) {}

    /// One host ended with `status` (what shannot would exit with for it alone).
    void host_done(const shannot::HostResult& r, int status) {
        worst_ = std::max(worst_, status);
        if (json_) {
            nlohmann::json j;
            if (r.result) {
                j = result_to_json(*r.result, profile_, "ssh", status);
            } else {
                const Failure f = from_error(r.result.error());
                j = error_to_json(shannot::to_string(r.result.error().code), one_line(f.message), f.hint, f.status);
            }
            j["host"] = r.host;
            write_all(1, dump_json(j) + "\n");
            return;
        }
        if (!r.result) {
            const Failure f = from_error(r.result.error());
            write_all(2, r.host + ": shannot: " + one_line(f.message) +
                             (f.hint.empty() ? "" : "; " + one_line(f.hint)) + "\n");
            return;
        }
        if (gather_) return;  // printed together at the end
        write_all(1, prefixed(r.host, r.result->stdout_data));
        write_all(2, prefixed(r.host, r.result->stderr_data) + notes(r.host, *r.result));
    }

    /// After every host: the gathered groups, if asked for.
    void finish(const std::vector<shannot::HostResult>& results) {
        if (json_ || !gather_) return;
        // Hosts with the same stdout and status, in the order their first host comes.
        std::vector<std::pair<std::pair<std::string, int>, std::vector<std::string>>> groups;
        std::string errors;
        for (const auto& r : results) {
            if (!r.result) continue;
            const int status = status_of(*r.result);
            const auto key = std::make_pair(r.result->stdout_data, status);
            auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
            if (it == groups.end())
                groups.push_back({key, {r.host}});
            else
                it->second.push_back(r.host);
            errors += prefixed(r.host, r.result->stderr_data) + notes(r.host, *r.result);
        }
        std::string out;
        for (const auto& [key, hosts] : groups) {
            std::string names;
            for (const auto& h : hosts) names += (names.empty() ? "" : ",") + h;
            const std::string rule(16, '-');
            out += rule + "\n" + names + " (" + std::to_string(hosts.size()) + ")" +
                   (key.second ? " exit status " + std::to_string(key.second) : std::string()) + "\n" + rule + "\n";
            out += key.first;
            if (!key.first.empty() && key.first.back() != '\n') out += '\n';
        }
        write_all(1, out);
        write_all(2, errors);
    }

    [[nodiscard]] int worst() const noexcept { return worst_; }

private:
    /// Every line of `text` as "HOST: line\n" (a last line without its newline gets one).
    [[nodiscard]] static std::string prefixed(const std::string& host, std::string_view text) {
        std::string out;
        while (!text.empty()) {
            const auto nl = text.find('\n');
            out += host + ": ";
            out += text.substr(0, nl);
            out += '\n';
            text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        }
        return out;
    }

    [[nodiscard]] static int status_of(const shannot::ProcessResult& r) {
        if (r.timed_out) return status::timed_out;
        if (r.signal) return 128 + r.signal;
        return r.exit_code < 0 ? status::sandbox_failed : r.exit_code & 0xff;
    }

    [[nodiscard]] std::string notes(const std::string& host, const shannot::ProcessResult& r) const {
        std::string out;
        const auto add = [&](const std::string& text) { out += host + ": shannot: " + text + "\n"; };
        if (r.stdout_truncated)
            add("stdout: kept its first and last bytes, dropped " + std::to_string(r.stdout_dropped) +
                " in between (--max-output)");
        if (r.stderr_truncated)
            add("stderr: kept its first and last bytes, dropped " + std::to_string(r.stderr_dropped) +
                " in between (--max-output)");
        if (r.timed_out && timeout_)
            add("the command timed out after " + std::to_string(static_cast<double>(timeout_->count()) / 1000.0) +
                " s and was stopped");
        return out;
    }

    bool json_, gather_;
    std::string profile_;
    std::optional<std::chrono::milliseconds> timeout_;
    int worst_ = 0;
};

}  // namespace shannot_cli
