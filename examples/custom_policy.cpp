// SPDX-License-Identifier: MIT
// Compile-time composition: a user-written admission policy and output policy in a SandboxManager.
#include <shannot/shannot.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

std::string join(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) out += (out.empty() ? "" : " ") + w;
    return out;
}

/// True when `arg` names something under /usr (no `..` to climb out of it).
bool under_usr(std::string_view arg) {
    if (arg != "/usr" && !arg.starts_with("/usr/")) return false;
    return arg.find("/../") == std::string_view::npos && !arg.ends_with("/..");
}

/// Admission: the profile's allowlist (GlobAllowlist) decides which programs run; on top of it,
/// no argument may name an absolute path outside /usr, also after `--opt=`. Every decision is
/// logged. A policy is any type with this one const member; SandboxManager checks it at compile time.
struct UsrOnlyArguments {
    shannot::GlobAllowlist allowlist{};

    [[nodiscard]] shannot::Result<std::vector<std::string>> admit(shannot::AdmissionRequest request) const {
        const std::string asked = join(request.command);
        for (std::size_t i = 1; i < request.command.size(); ++i) {
            std::string_view arg = request.command[i];
            if (const auto eq = arg.find('='); eq != std::string_view::npos && arg.starts_with("-"))
                arg.remove_prefix(eq + 1);
            if (arg.starts_with("/") && !under_usr(arg)) {
                std::printf("[admission] refused: %s\n", asked.c_str());
                return shannot::fail(shannot::errc::command_refused,
                                     "argument '" + std::string(arg) + "' is an absolute path outside /usr");
            }
        }
        auto admitted = allowlist.admit(std::move(request));
        if (admitted)
            std::printf("[admission] admitted: %s\n", join(*admitted).c_str());
        else
            std::printf("[admission] refused by the allowlist: %s\n", asked.c_str());
        return admitted;
    }
};

/// Output: keeps only the first `cap` bytes of each stream (like `head -c`) and counts the rest,
/// for callers that want the beginning of a long listing rather than its head and tail.
class HeadOnlyCapture {
public:
    explicit HeadOnlyCapture(std::size_t cap) : cap_(cap) {}
    void append(std::string_view bytes) {
        const auto keep = std::min(bytes.size(), cap_ - kept_.size());
        kept_.append(bytes.substr(0, keep));
        dropped_ += bytes.size() - keep;
    }
    [[nodiscard]] std::string take() { return std::move(kept_); }
    [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_; }

private:
    std::size_t cap_;
    std::string kept_;
    std::uint64_t dropped_ = 0;
};

using UsrSandbox = shannot::SandboxManager<shannot::PosixSpawnTransport, UsrOnlyArguments, HeadOnlyCapture>;

}  // namespace

int main() {
    auto profile = shannot::builtin_profile(shannot::default_profile_name);
    if (!profile) return std::fprintf(stderr, "%s\n", profile.error().describe().c_str()), 2;
    UsrSandbox sandbox(*profile);

    struct Case {
        std::vector<std::string> command;
        bool admitted;
    };
    int unexpected = 0;
    for (const auto& [command, admitted] :
         std::vector<Case>{{{"ls", "/usr"}, true},
                           {{"cat", "/etc/passwd"}, false},               // outside /usr
                           {{"ls", "/usr/../etc"}, false},                // climbs out of /usr
                           {{"grep", "--file=/etc/shadow", "x"}, false},  // the path hides after '='
                           {{"rm", "/usr/bin/ls"}, false}}) {             // not in the profile's allowlist
        auto result = sandbox.run(command, {.max_output = 24});
        if (!result) {
            std::printf("  -> %s\n", result.error().describe().c_str());
            unexpected += admitted;
            continue;
        }
        std::string head = result->stdout_data;
        for (auto& c : head) c = c == '\n' ? ' ' : c;
        std::printf("  -> exit %d, first %zu bytes (%llu more dropped): %s\n", result->exit_code, head.size(),
                    static_cast<unsigned long long>(result->stdout_dropped), head.c_str());
        unexpected += !admitted || result->exit_code != 0;
    }
    return unexpected == 0 ? 0 : 1;
}
