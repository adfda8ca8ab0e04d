// SPDX-License-Identifier: MIT
// Prints what a sandboxed process inherited: its open descriptors and its session and group ids.
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

// Output, one line each: "fds 0 1 2", "sid N", "pgid N", "pid N". Numbers are as seen inside
// the sandbox's pid namespace (a session led from outside it reads as 0).
int main() {
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) {
        std::perror("opendir /proc/self/fd");
        return 2;
    }
    const int own = ::dirfd(dir);
    std::printf("fds");
    while (dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        const int fd = std::atoi(e->d_name);
        if (fd != own) std::printf(" %d", fd);
    }
    ::closedir(dir);
    std::printf("\nsid %d\npgid %d\npid %d\n", static_cast<int>(::getsid(0)), static_cast<int>(::getpgrp()),
                static_cast<int>(::getpid()));
    return 0;
}
