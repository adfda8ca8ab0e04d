// SPDX-License-Identifier: MIT
// Streaming: print a sandboxed command's output as it arrives, and stop it at a deadline.
#include <shannot/shannot.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main() {
    using namespace std::chrono_literals;
    auto profile = shannot::builtin_profile(shannot::default_profile_name);
    if (!profile) return std::fprintf(stderr, "%s\n", profile.error().describe().c_str()), 2;
    profile->allowed_commands.emplace_back("sh");  // the demo command is a small shell loop

    shannot::LocalSandbox sandbox(*profile);
    const auto start = std::chrono::steady_clock::now();
    auto elapsed_ms = [&] {
        return static_cast<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count());
    };

    // Three ticks 300 ms apart, a warning on stderr, then a sleep far past the 2 s deadline.
    const std::string script = "for i in 1 2 3; do echo tick $i; sleep 0.3; done; echo 'still busy' >&2; sleep 30";
    auto result = sandbox.stream({"sh", "-c", script}, {.timeout = 2s, .kill_grace = 200ms},
                                 [&](const shannot::OutputChunk& chunk) {
                                     // Called on this thread as bytes arrive; `chunk.data` lives only during the call.
                                     std::printf("[%5lld ms] %s: %.*s", elapsed_ms(),
                                                 chunk.stream == shannot::StreamKind::out ? "stdout" : "stderr",
                                                 static_cast<int>(chunk.data.size()), chunk.data.data());
                                     if (!chunk.data.empty() && chunk.data.back() != '\n') std::printf("\n");
                                     std::fflush(stdout);
                                 });
    if (!result) return std::fprintf(stderr, "shannot: %s\n", result.error().describe().c_str()), 3;

    std::printf("[%5lld ms] done: timed_out: %s, exit_code: %d, signal: %d\n", elapsed_ms(),
                result->timed_out ? "true" : "false", result->exit_code, result->signal);
    // The result still holds what was streamed (capped by RunOptions::max_output).
    std::printf("kept %zu bytes of stdout\n", result->stdout_data.size());
    return result->timed_out ? 0 : 1;
}
