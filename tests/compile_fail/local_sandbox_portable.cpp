// SPDX-License-Identifier: MIT
// LocalSandbox where there is no local transport (SHANNOT_PORTABLE_POSIX=1, or not Linux): the
// static_assert says why and names SshSandbox. Built without the macro on Linux, it compiles.
#include <shannot/shannot.hpp>

int main() {
    auto profile = shannot::builtin_profile("minimal");
    shannot::LocalSandbox sandbox(*profile);
    return sandbox.run({"ls", "/"}) ? 0 : 1;
}
