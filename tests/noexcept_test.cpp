// SPDX-License-Identifier: MIT
// Built with -fno-exceptions: the library loads a profile, builds an argv and runs a sandbox.
#include <shannot/shannot.hpp>

#include <cstdio>

int main() {
    auto profile = shannot::load_profile_from_string(R"({"name": "noexcept", "allowed_commands": ["ls"],
        "binds": [{"source": "/usr", "target": "/usr"}, {"source": "/bin", "target": "/bin", "optional": true},
                  {"source": "/lib", "target": "/lib", "optional": true},
                  {"source": "/lib64", "target": "/lib64", "optional": true}]})");
    if (!profile) return std::fprintf(stderr, "load: %s\n", profile.error().describe().c_str()), 1;
    auto bad = shannot::load_profile_from_string("{\"name\": \"x\", \"name\": \"y\"}");
    if (bad || bad.error().message != "name: duplicate key")
        return std::fprintf(stderr, "duplicate key not refused\n"), 1;

    shannot::LocalSandbox sandbox(*profile);
    auto result = sandbox.run({"ls", "/usr"});
    if (!result) return std::fprintf(stderr, "run: %s\n", result.error().describe().c_str()), 1;
    if (result->exit_code != 0 || result->stdout_data.find("bin\n") == std::string::npos)
        return std::fprintf(stderr, "unexpected result: exit %d\n", result->exit_code), 1;
    auto refused = sandbox.run({"rm", "-rf", "/"});
    if (refused || refused.error().code != shannot::errc::command_refused)
        return std::fprintf(stderr, "rm admitted\n"), 1;
    std::puts("ok");
    return 0;
}
