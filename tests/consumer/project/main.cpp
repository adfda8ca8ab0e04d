// SPDX-License-Identifier: MIT
// Consumer program: the argv a dry run of `ls /` in the built-in minimal profile would use, and
// with --run, `ls /` run in that sandbox (real bwrap, the transport's spawner thread).
#include <shannot/shannot.hpp>

#include <cstdio>
#include <string_view>

// Built twice: against dependency('shannot') (include/) and, with CONSUMER_SINGLE_HEADER,
// against dependency('shannot_single') (single_include/). The guard macro tells which one the
// dependency really put on the include path.
#ifdef SHANNOT_SINGLE_INCLUDE_HPP
constexpr bool got_single = true;
#else
constexpr bool got_single = false;
#endif
#ifdef CONSUMER_SINGLE_HEADER
constexpr bool want_single = true;
#else
constexpr bool want_single = false;
#endif

int main(int argc, char** argv_in) {
    const bool run = argc > 1 && std::string_view(argv_in[1]) == "--run";
    if (got_single != want_single) {
        std::fprintf(stderr, "the dependency provided the %s form of shannot\n",
                     got_single ? "single-header" : "multi-header");
        return 1;
    }
    auto profile = shannot::builtin_profile("minimal");
    if (!profile) {
        std::fprintf(stderr, "builtin_profile: %s\n", profile.error().message.c_str());
        return 1;
    }
    shannot::LocalSandbox sandbox(*profile);
    auto argv = sandbox.dry_run({"ls", "/"});
    if (!argv) {
        std::fprintf(stderr, "dry_run: %s\n", argv.error().message.c_str());
        return 1;
    }
    std::printf("shannot %s (%s)\n", shannot::version_string, got_single ? "single_include" : "include");
    for (const auto& arg : *argv) std::printf("%s\n", arg.c_str());
    if (run) {
        auto result = sandbox.run({"ls", "/"});
        if (!result) {
            std::fprintf(stderr, "run: %s\n", result.error().describe().c_str());
            return 1;
        }
        std::printf("ran: exit %d\n%s", result->exit_code, result->stdout_data.c_str());
        return result->exit_code;
    }
    return 0;
}
