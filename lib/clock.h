/* Wall-clock time, and the canonical UTC timestamp spelling "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
#ifndef WARDEN_LIB_CLOCK_H
#define WARDEN_LIB_CLOCK_H

#include <stdint.h>
#include <stddef.h>

uint64_t wd_now_ns(void);                                  /* CLOCK_REALTIME, Unix epoch nanoseconds */
int64_t wd_now_us(void);                                   /* CLOCK_REALTIME, Unix epoch microseconds */
void wd_format_ts(int64_t us, char out[28]);               /* 27 chars + NUL */
int wd_parse_ts(const char *s, size_t n, int64_t *us);     /* exactly the canonical spelling, or -1 */

#endif
