/* Helpers shared by the unit tests (include after cmocka.h). */
#ifndef WARDEN_TESTS_UNIT_H
#define WARDEN_TESTS_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"

#define GOLDEN "tests/unit/golden/"

/* Reads a whole file (tests run from the repository root); NUL-terminated, caller frees. */
static inline char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s (run from the repository root)", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    p[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* Replaces the random parts of message and tool ids with X so that output compares exactly. */
static inline void normalise_ids(struct wd_buf *b)
{
    static const struct {
        const char *prefix;
        size_t n;
    } ids[] = {{"msg_wd", 24}, {"toolu_wd", 20}};
    for (size_t k = 0; k < 2; k++) {
        size_t pl = strlen(ids[k].prefix);
        for (size_t i = 0; i + pl + ids[k].n <= b->n; i++)
            if (memcmp(b->p + i, ids[k].prefix, pl) == 0)
                memset(b->p + i + pl, 'X', ids[k].n);
    }
}

#endif
