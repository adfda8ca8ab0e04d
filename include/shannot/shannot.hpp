// SPDX-License-Identifier: MIT
// shannot: read-only bubblewrap sandboxes, on this host or over the system OpenSSH client.
#pragma once

#include <shannot/version.hpp>
#include <shannot/fwd.hpp>
#include <shannot/error.hpp>
#include <shannot/cancel.hpp>
#include <shannot/profile.hpp>
#include <shannot/profile_loader.hpp>
#include <shannot/builtin_profiles.hpp>
#include <shannot/concepts/admission.hpp>
#include <shannot/allowlist.hpp>
#include <shannot/lint.hpp>
#include <shannot/syscalls.hpp>
#include <shannot/concepts/syscall_rule_set.hpp>
#include <shannot/syscall_rules.hpp>
#include <shannot/syscall_filter.hpp>
#include <shannot/builder.hpp>
#include <shannot/process_result.hpp>
#include <shannot/concepts/transport.hpp>
#include <shannot/concepts/session_transport.hpp>
#include <shannot/concepts/output.hpp>
#include <shannot/output.hpp>
#include <shannot/session.hpp>
#include <shannot/sandbox_manager.hpp>
#include <shannot/transport/posix_spawn.hpp>
#include <shannot/ssh_connection.hpp>
#include <shannot/transport/openssh_process.hpp>
#include <shannot/concepts/command_runner.hpp>
#include <shannot/operations.hpp>
#include <shannot/persist.hpp>
#include <shannot/fleet.hpp>
#include <shannot/inventory.hpp>
