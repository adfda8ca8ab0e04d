// SPDX-License-Identifier: MIT
// Prints what a sandboxed process inherited: its open descriptors and its session and group ids.
#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

// Output, one line each: "fds 0 1 2", "sid N", "pgid N", "pid N", then "fd N -> target" per fd. Numbers are as seen inside
// the sandbox's pid namespace (a session led from outside it reads as 0).
int main() {
    DIR* dir = ::opendir("/proc/self/fd");
    if (!dir) {
        std::perror("opendir /proc/self/fd");
        return 2;
    }
    const int own = ::dirfd(dir);
    int fds[256];
    int count = 0;
    while (dirent* e = ::readdir(dir)) {
        if (e->d_name[0] == '.') continue;
        const int fd = std::atoi(e->d_name);
        if (fd != own && count < 256) fds[count++] = fd;
    }
    ::closedir(dir);
    std::printf("fds");
    for (int i = 0; i < count; ++i) std::printf(" %d", fds[i]);
    std::printf("\nsid %d\npgid %d\npid %d\n", static_cast<int>(::getsid(0)), static_cast<int>(::getpgrp()),
                static_cast<int>(::getpid()));
    for (int i = 0; i < count; ++i) {
        char link[64], target[4096];
        std::snprintf(link, sizeof link, "/proc/self/fd/%d", fds[i]);
        const ssize_t n = ::readlink(link, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        std::printf("fd %d -> %s\n", fds[i], target);
    }
    return 0;
}
