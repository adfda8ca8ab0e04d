// SPDX-License-Identifier: MIT
// Quick start: run a command in a read-only sandbox on this host with the default profile.
#include <shannot/shannot.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
    std::vector<std::string> command(argv + 1, argv + argc);
    if (command.empty()) command = {"ls", "/"};

    auto profile = shannot::builtin_profile(shannot::default_profile_name);
    if (!profile) return std::fprintf(stderr, "%s\n", profile.error().describe().c_str()), 2;

    shannot::LocalSandbox sandbox(*profile);
    auto result = sandbox.run(command, {.timeout = std::chrono::seconds(10)});
    if (!result) return std::fprintf(stderr, "shannot: %s\n", result.error().describe().c_str()), 3;

    std::fwrite(result->stdout_data.data(), 1, result->stdout_data.size(), stdout);
    std::fwrite(result->stderr_data.data(), 1, result->stderr_data.size(), stderr);
    return result->exit_code >= 0 ? result->exit_code : 128 + result->signal;
}
