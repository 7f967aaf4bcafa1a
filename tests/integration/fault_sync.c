/* A fault injector for the spool tests, loaded into Warden with LD_PRELOAD: it wraps libc's fdatasync.
 * WD_FAULT_SYNC_GATE=PATH: a call waits while PATH exists (at most 30 s), so a test can hold a spool
 * write "in flight" for as long as it needs. WD_FAULT_SYNC_FAIL=PATH: when PATH exists, the call removes
 * it and fails with EIO (once per creation of the file). Without either variable it changes nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>
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
