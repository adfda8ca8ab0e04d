// SPDX-License-Identifier: MIT
// Must not compile: the transport has no process_type.
#include "parts.hpp"

struct NoProcessType {
    static constexpr std::string_view name = "compile-fail";
    static constexpr bool checks_local_paths = false;
    shannot::Result<cf::GoodProcess> launch(const shannot::LaunchSpec&) {
        return shannot::fail(shannot::errc::spawn_failed, "never launched");
    }
};

CF_INSTANTIATE(NoProcessType, shannot::GlobAllowlist, cf::GoodOutput);
