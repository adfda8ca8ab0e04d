// SPDX-License-Identifier: MIT
// Fuzz target: the default syscall filter, with any relaxation, run through a BPF interpreter on
// any call (arch, number, arguments), gives what its rule sets say, and is a program the kernel takes.
#include <shannot/syscall_filter.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>

#include "../support/seccomp_model.hpp"
#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using Filter = shannot::DefaultSyscallFilter;
    FuzzedDataProvider in(data, size);
    const std::uint64_t relaxed =
        in.ConsumeIntegral<std::uint64_t>() & ((std::uint64_t{1} << Filter::groups.size()) - 1);
    shannot_test::SeccompCall call;
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {  // the two known arches most of the time
    case 0: call.arch = shannot::seccomp_arch_x86_64.audit_arch; break;
    case 1: call.arch = shannot::seccomp_arch_aarch64.audit_arch; break;
    default: call.arch = in.ConsumeIntegral<std::uint32_t>(); break;
    }
    call.nr = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::uint32_t>(0, 520) : in.ConsumeIntegral<std::uint32_t>();
    for (auto& arg : call.args) arg = in.ConsumeIntegral<std::uint64_t>();

    const auto program = Filter::program(relaxed);
    FUZZ_CHECK(program.size > 0 && program.size <= Filter::capacity, "program size %zu", program.size);
    const auto outcome = shannot_test::run_bpf(program.instructions(), call);
    FUZZ_CHECK(outcome.value.has_value(), "malformed program: %s", outcome.error.c_str());
    const auto expected = shannot_test::SeccompReference<Filter>::expect(call, relaxed);
    FUZZ_CHECK(*outcome.value == expected, "arch %#x nr %u arg0 %#llx relaxed %#llx: program %#x, rules %#x", call.arch,
               call.nr, static_cast<unsigned long long>(call.args[0]), static_cast<unsigned long long>(relaxed),
               *outcome.value, expected);
    // Relaxing groups never denies more: the same call with every group on is at least as strict.
    if (relaxed != 0 && *outcome.value != 0x7fff0000u) {
        const auto strict = shannot_test::run_bpf(Filter::program().instructions(), call);
        FUZZ_CHECK(strict.value && *strict.value != 0x7fff0000u, "denied only when relaxed: nr %u", call.nr);
    }
    return 0;
}
