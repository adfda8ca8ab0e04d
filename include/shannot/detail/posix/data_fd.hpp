// SPDX-License-Identifier: MIT
// A descriptor that reads back given bytes (a sealed memfd): how bytes reach a child without a file.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include <shannot/detail/posix/unique_fd.hpp>

namespace shannot::detail {

/// A sealed memfd holding `data` with its offset at 0, close-on-exec, numbered `lowest` or
/// higher (so that dup2-ing other descriptors onto the low numbers before it is dup2-ed cannot
/// close it). It has no name in any file system: nothing else can open it but through this
/// process's (or its child's) /proc/PID/fd, and the seals keep it as written. Invalid on
/// failure, with errno set.
[[nodiscard]] inline UniqueFd sealed_data_fd(std::string_view data, int lowest) {
    UniqueFd fd(::memfd_create("shannot-data", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) return fd;
    for (std::size_t done = 0; done < data.size();) {
        const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return UniqueFd();
        done += static_cast<std::size_t>(n);
    }
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0 ||
        ::lseek(fd.get(), 0, SEEK_SET) != 0)
        return UniqueFd();
    return UniqueFd(::fcntl(fd.get(), F_DUPFD_CLOEXEC, lowest));
}

}  // namespace shannot::detail
