// SPDX-License-Identifier: MIT
// The library version, for feature checks in code that builds against several releases.
#pragma once

#define SHANNOT_VERSION_MAJOR 0
#define SHANNOT_VERSION_MINOR 1
#define SHANNOT_VERSION_PATCH 0

namespace shannot {
inline constexpr const char* version_string = "0.1.0";
}  // namespace shannot
