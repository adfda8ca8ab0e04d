// SPDX-License-Identifier: MIT
// Must not compile: the transport has no launch().
#include "parts.hpp"

struct NoLaunch {
    using process_type = cf::GoodProcess;
    static constexpr std::string_view name = "compile-fail";
    static constexpr bool checks_local_paths = false;
};

CF_INSTANTIATE(NoLaunch, shannot::GlobAllowlist, cf::GoodOutput);
