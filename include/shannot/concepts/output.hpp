// SPDX-License-Identifier: MIT
// The output policy contract: how a run keeps what a command prints.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shannot {

/// The contract of an output policy: built with the per-stream cap, fed every byte in order,
/// asked once at the end for the kept bytes and how many were dropped.
template <class O>
concept OutputPolicy = std::constructible_from<O, std::size_t> && requires(O& o, const O& co, std::string_view bytes) {
    o.append(bytes);
    { o.take() } -> std::same_as<std::string>;
    { co.dropped() } -> std::convertible_to<std::uint64_t>;
};

/// The archetype: the smallest type that models OutputPolicy, with each member's contract.
/// A run makes one per stream (stdout, stderr) on the thread that runs it.
struct OutputArchetype {
    /// `cap` is RunOptions::max_output: the bytes the policy may keep of this stream.
    explicit OutputArchetype(std::size_t /*cap*/) {}
    /// Every byte the command printed on this stream, in order, as it arrives. Must not block
    /// or fail: the run keeps reading whatever the policy keeps, so the command never stalls.
    void append(std::string_view /*bytes*/) {}
    /// Once, after the run: the kept bytes (ProcessResult::stdout_data, stderr_data).
    std::string take() { return {}; }
    /// Bytes read but not kept (ProcessResult::stdout_dropped; more than 0 means truncated).
    std::uint64_t dropped() const { return 0; }
};
static_assert(OutputPolicy<OutputArchetype>);

}  // namespace shannot
