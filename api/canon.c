/* Shared helpers of the canonical model. */
#include "api/canon.h"

#include <stdarg.h>
#include <stdio.h>

void wd_error_set(struct wd_error *e, enum wd_error_class cls, const char *fmt, ...)
{
    va_list ap;
    e->cls = cls;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
}
