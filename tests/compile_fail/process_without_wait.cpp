// SPDX-License-Identifier: MIT
// Must not compile: the transport's process_type has no wait().
#include "parts.hpp"

CF_INSTANTIATE(cf::TransportOf<cf::ProcessWithoutWait>, shannot::GlobAllowlist, cf::GoodOutput);
