/* A fault injector for the spool tests, loaded into Warden with LD_PRELOAD: it wraps libc's fdatasync
 * and write. WD_FAULT_SYNC_GATE=PATH: a call waits while PATH exists (at most 30 s), so a test can hold a
 * spool write "in flight" for as long as it needs. WD_FAULT_SYNC_FAIL=PATH: when PATH exists, the call
 * removes it and fails with EIO (once per creation of the file). WD_FAULT_SPOOL_FULL=PATH: while PATH
 * exists, a write to a *.spool file behaves as on a full filesystem: it writes only the first half of
 * its bytes (a short write), or, when PATH's content starts with "enospc", nothing (ENOSPC). Removing
 * PATH is the space coming back. WD_FAULT_SOCKET_EMFILE=PATH: while PATH exists, socket() for TCP fails with
 * EMFILE (out of descriptors: a provider connection cannot be opened). Without any of these variables it
 * changes nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

int fdatasync(int fd)
{
    static int (*real)(int);
    if (real == NULL)
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    const char *gate = getenv("WD_FAULT_SYNC_GATE");
    if (gate != NULL) {
        struct timespec ten_ms = {0, 10 * 1000 * 1000};
        for (int i = 0; i < 3000 && access(gate, F_OK) == 0; i++)
            nanosleep(&ten_ms, NULL);
    }
    const char *fail = getenv("WD_FAULT_SYNC_FAIL");
    if (fail != NULL && unlink(fail) == 0) {
        errno = EIO;
        return -1;
    }
    return real(fd);
}

/* Whether fd is open on a spool file (its name ends in ".spool"). */
static int is_spool(int fd)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n < 6)
        return 0;
    path[n] = '\0';
    return strcmp(path + n - 6, ".spool") == 0;
}

ssize_t write(int fd, const void *buf, size_t len)
{
    static ssize_t (*real)(int, const void *, size_t);
    if (real == NULL)
        real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    const char *full = getenv("WD_FAULT_SPOOL_FULL");
    if (full == NULL || len == 0 || access(full, F_OK) != 0 || !is_spool(fd))
        return real(fd, buf, len);
    char mode[8] = "";
    int m = open(full, O_RDONLY | O_CLOEXEC);
    if (m >= 0) {
        ssize_t k = read(m, mode, sizeof(mode) - 1);
        mode[k > 0 ? k : 0] = '\0';
        close(m);
    }
    if (strncmp(mode, "enospc", 6) == 0 || len < 2) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, len / 2);
}

int socket(int domain, int type, int protocol)
{
    static int (*real)(int, int, int);
    if (real == NULL)
        real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
    const char *f = getenv("WD_FAULT_SOCKET_EMFILE");
    if (f != NULL && (domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM && access(f, F_OK) == 0) {
        errno = EMFILE;
        return -1;
    }
    return real(domain, type, protocol);
}
