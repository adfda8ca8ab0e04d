// SPDX-License-Identifier: MIT
// Positive control: the same parts, unbroken, compile and drive every entry point of the host.
#include "parts.hpp"

CF_INSTANTIATE(cf::GoodTransport, shannot::GlobAllowlist, cf::GoodOutput);
static_assert(shannot::Transport<cf::GoodTransport>);
static_assert(shannot::OutputPolicy<cf::GoodOutput>);

[[maybe_unused]] static void use_everything() {
    shannot::SandboxProfile<cf::GoodTransport> profile;
    profile.name = "control";
    shannot::SandboxManager<cf::GoodTransport, shannot::GlobAllowlist, cf::GoodOutput> manager(profile);
    (void)manager.dry_run({"ls", "/"});
    (void)manager.run({"ls", "/"});
    (void)manager.stream({"ls", "/"}, {}, [](const shannot::OutputChunk&) {});
    (void)manager.run_async({"ls", "/"});
}
