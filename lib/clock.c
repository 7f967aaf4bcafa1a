/* Wall-clock time and the canonical UTC timestamp spelling. See clock.h. */
#include "lib/clock.h"

#include <string.h>
#include <time.h>

uint64_t wd_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void wd_format_ts(int64_t us, char out[28])
{
    time_t secs = (time_t)(us / 1000000);
    int64_t frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    unsigned v[7] = {(unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
                     (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
                     (unsigned)frac};
    static const int width[7] = {4, 2, 2, 2, 2, 2, 6};
    static const char sep[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
    char *o = out;
    for (int i = 0; i < 7; i++) {
        for (int k = width[i] - 1; k >= 0; k--) {
            o[k] = (char)('0' + v[i] % 10);
            v[i] /= 10;
        }
        o += width[i];
        *o++ = sep[i];
    }
    *o = '\0';
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int wd_parse_ts(const char *s, size_t n, int64_t *us)
{
    /* exactly the canonical spelling: anything else would hash differently once written back */
    if (n != 27 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' ||
        s[26] != 'Z')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), se = digits(s + 17, 2), f = digits(s + 20, 6);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
        se > 59 || f < 0)
        return -1;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = se};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    *us = (int64_t)t * 1000000 + f;
    char back[28];
    wd_format_ts(*us, back);
    return memcmp(back, s, 27) == 0 ? 0 : -1; /* rejects 31 February and the like */
}

int64_t wd_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
