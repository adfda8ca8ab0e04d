// SPDX-License-Identifier: MIT
// Runs one sandboxed `echo ok` under a descriptor limit (argv[1]) and says how it went, for the
// fault tests: the limit must not touch the test process itself.
#include <shannot/shannot.hpp>

#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>

// Prints "ok <stdout>" and exits 0, or "error <errc> <message>" and exits 1; anything else
// (a crash, a hang the caller kills) is a failure.
int main(int argc, char** argv) {
    if (argc != 2) return 2;
    const rlim_t limit = std::strtoul(argv[1], nullptr, 10);
    const rlimit r{limit, limit};
    if (::setrlimit(RLIMIT_NOFILE, &r) != 0) {
        std::perror("setrlimit");
        return 2;
    }
    auto profile = shannot::builtin_profile("minimal");
    if (!profile) return 2;
    profile->allowed_commands.emplace_back("echo");
    shannot::LocalSandbox sandbox(*profile);
    for (int i = 0; i < 3; ++i) {  // more than once: nothing may leak from one run to the next
        auto result = sandbox.run({"echo", "ok"});
        if (!result) {
            std::printf("error %d %s\n", static_cast<int>(result.error().code), result.error().message.c_str());
            return 1;
        }
        if (result->exit_code != 0 || result->stdout_data != "ok\n") {
            std::printf("wrong exit %d out '%s' err '%s'\n", result->exit_code, result->stdout_data.c_str(),
                        result->stderr_data.c_str());
            return 3;
        }
    }
    std::printf("ok\n");
    return 0;
}
