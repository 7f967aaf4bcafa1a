/* lib/secret_ref.h: the reference forms of the vault and cloud secret backends. */
#include "lib/secret_ref.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool in_set(char ch, const char *extra)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr(extra, ch) != NULL);
}

/* Copies [s, s+n) into out[cap] if it fits and every character is in the alphabet. */
static int take(const char *what, const char *s, size_t n, const char *extra, char *out, size_t cap, char *why,
                size_t whycap)
{
    if (n == 0) {
        snprintf(why, whycap, "the %s is empty", what);
        return -1;
    }
    if (n >= cap) {
        snprintf(why, whycap, "the %s is longer than %zu characters", what, cap - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (!in_set(s[i], extra)) {
            snprintf(why, whycap, "the %s has a character it may not have (at %zu)", what, i + 1);
            return -1;
        }
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* A field after '#': any printable character but control ones; may be absent. */
static int take_field(const char *hash, char *out, size_t cap, char *why, size_t whycap)
{
    out[0] = '\0';
    if (hash == NULL)
        return 0;
    size_t n = strlen(hash + 1);
    if (n == 0) {
        snprintf(why, whycap, "the field after '#' is empty");
        return -1;
    }
    if (n >= cap) {
        snprintf(why, whycap, "the field is longer than %zu characters", cap - 1);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)hash[1 + i] < 0x20 || hash[1 + i] == 0x7f) {
            snprintf(why, whycap, "the field has a control character");
            return -1;
        }
    memcpy(out, hash + 1, n + 1);
    return 0;
}

#define VAULT_CHARS "._~@+=,-"

static int vault_segments_ok(const char *what, const char *s, size_t n, char *why, size_t whycap)
{
    size_t seg = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            size_t len = i - seg;
            if (len == 0 || (len == 1 && s[seg] == '.') || (len == 2 && s[seg] == '.' && s[seg + 1] == '.')) {
                snprintf(why, whycap, "the %s has an empty, \".\" or \"..\" segment", what);
                return -1;
            }
            seg = i + 1;
        }
    }
    return 0;
}

int wd_ref_vault_parse(const char *ref, struct wd_ref_vault *o, char *why, size_t whycap)
{
    memset(o, 0, sizeof(*o));
    if (strncmp(ref, "vault://", 8) != 0) {
        snprintf(why, whycap, "not a vault:// reference");
        return -1;
    }
    const char *s = ref + 8, *hash = strchr(s, '#');
    size_t n = hash ? (size_t)(hash - s) : strlen(s);
    const char *slash = memchr(s, '/', n);
    if (slash == NULL) {
        snprintf(why, whycap, "vault:// needs a mount and a path (vault://mount/path#field)");
        return -1;
    }
    size_t mn = (size_t)(slash - s), pn = n - mn - 1;
    if (take("mount", s, mn, VAULT_CHARS, o->mount, sizeof(o->mount), why, whycap) ||
        vault_segments_ok("mount", s, mn, why, whycap) ||
        take("path", slash + 1, pn, VAULT_CHARS "/", o->path, sizeof(o->path), why, whycap) ||
        vault_segments_ok("path", slash + 1, pn, why, whycap))
        return -1;
    return take_field(hash, o->field, sizeof(o->field), why, whycap);
}

int wd_ref_aws_parse(const char *ref, struct wd_ref_aws *o, char *why, size_t whycap)
{
    memset(o, 0, sizeof(*o));
    if (strncmp(ref, "aws-sm://", 9) != 0) {
        snprintf(why, whycap, "not an aws-sm:// reference");
        return -1;
    }
    const char *s = ref + 9, *hash = strchr(s, '#');
    size_t n = hash ? (size_t)(hash - s) : strlen(s);
    if (n > 4 && strncmp(s, "arn:", 4) == 0) {
        /* arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME */
        const char *f[7];
        size_t fl[7], k = 0;
        const char *p = s + 4, *end = s + n;
        while (k < 6 && p <= end) {
            const char *c = memchr(p, ':', (size_t)(end - p));
            if (c == NULL)
                break;
            f[k] = p;
            fl[k] = (size_t)(c - p);
            k++;
            p = c + 1;
        }
        if (k != 5 || p >= end) {
            snprintf(why, whycap, "the ARN is not arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME");
            return -1;
        }
        f[5] = p;
        fl[5] = (size_t)(end - p);
        char region[32], acct[16], part[16], name[520];
        if (take("ARN's partition", f[0], fl[0], "-", part, sizeof(part), why, whycap))
            return -1;
        if (fl[1] != 14 || memcmp(f[1], "secretsmanager", 14) != 0 || fl[4] != 6 || memcmp(f[4], "secret", 6) != 0) {
            snprintf(why, whycap, "the ARN is not a Secrets Manager secret's (arn:...:secretsmanager:...:secret:NAME)");
            return -1;
        }
        if (take("ARN's region", f[2], fl[2], "-", region, sizeof(region), why, whycap) ||
            take("ARN's account", f[3], fl[3], "", acct, sizeof(acct), why, whycap) ||
            take("ARN's secret name", f[5], fl[5], "/_+=.@-", name, sizeof(name), why, whycap))
            return -1;
        memcpy(o->id, s, n);
        o->id[n] = '\0';
        memcpy(o->region, region, sizeof(region));
    } else if (take("secret name", s, n, "/_+=.@-", o->id, 513, why, whycap)) {
        return -1;
    }
    return take_field(hash, o->field, sizeof(o->field), why, whycap);
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

int wd_ref_gcp_parse(const char *ref, struct wd_ref_gcp *o, char *why, size_t whycap)
{
    memset(o, 0, sizeof(*o));
    if (strncmp(ref, "gcp-sm://", 9) != 0) {
        snprintf(why, whycap, "not a gcp-sm:// reference");
        return -1;
    }
    const char *s = ref + 9;
    if (strncmp(s, "projects/", 9) != 0) {
        snprintf(why, whycap, "gcp-sm:// needs projects/P/secrets/S[/versions/V]");
        return -1;
    }
    s += 9;
    const char *e = strchr(s, '/');
    if (e == NULL || strncmp(e, "/secrets/", 9) != 0) {
        snprintf(why, whycap, "gcp-sm:// needs projects/P/secrets/S[/versions/V]");
        return -1;
    }
    size_t pn = (size_t)(e - s);
    if (take("project", s, pn, "-", o->project, sizeof(o->project), why, whycap))
        return -1;
    if (!all_digits(s, pn)) {
        bool ok = pn <= 30 && s[0] >= 'a' && s[0] <= 'z' && s[pn - 1] != '-';
        for (size_t i = 0; ok && i < pn; i++)
            ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-';
        if (!ok) {
            snprintf(why, whycap, "the project is neither a project id nor a project number");
            return -1;
        }
    }
    s = e + 9;
    e = strchr(s, '/');
    size_t sn = e ? (size_t)(e - s) : strlen(s);
    if (take("secret", s, sn, "_-", o->secret, sizeof(o->secret), why, whycap))
        return -1;
    if (e == NULL) {
        strcpy(o->version, "latest");
        return 0;
    }
    if (strncmp(e, "/versions/", 10) != 0) {
        snprintf(why, whycap, "after the secret comes /versions/V or nothing");
        return -1;
    }
    s = e + 10;
    size_t vn = strlen(s);
    /* "latest", a version number, or a version alias (a lowercase letter, then [a-z0-9_-], 63 at most) */
    bool alias = vn >= 1 && vn <= 63 && s[0] >= 'a' && s[0] <= 'z';
    for (size_t i = 1; alias && i < vn; i++)
        alias = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-';
    if (!alias && !(all_digits(s, vn) && vn < 19 && s[0] != '0')) {
        snprintf(why, whycap, "the version is neither \"latest\", a version number nor a version alias");
        return -1;
    }
    memcpy(o->version, s, vn + 1);
    return 0;
}

int wd_ref_azure_parse(const char *ref, struct wd_ref_azure *o, char *why, size_t whycap)
{
    memset(o, 0, sizeof(*o));
    if (strncmp(ref, "azure-kv://", 11) != 0) {
        snprintf(why, whycap, "not an azure-kv:// reference");
        return -1;
    }
    const char *s = ref + 11, *e = strchr(s, '/');
    if (e == NULL) {
        snprintf(why, whycap, "azure-kv:// needs a vault and a secret name (azure-kv://vault/name[/version])");
        return -1;
    }
    size_t vn = (size_t)(e - s);
    if (take("vault name", s, vn, "-", o->vault, 25, why, whycap))
        return -1;
    if (vn < 3) {
        snprintf(why, whycap, "the vault name is shorter than 3 characters");
        return -1;
    }
    s = e + 1;
    e = strchr(s, '/');
    size_t nn = e ? (size_t)(e - s) : strlen(s);
    if (take("secret name", s, nn, "-", o->name, sizeof(o->name), why, whycap))
        return -1;
    if (e == NULL)
        return 0;
    s = e + 1;
    size_t n = strlen(s);
    bool hex = n == 32;
    for (size_t i = 0; hex && i < n; i++)
        hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F');
    if (!hex) {
        snprintf(why, whycap, "the version is not 32 hex digits");
        return -1;
    }
    memcpy(o->version, s, n + 1);
    return 0;
}

int wd_secret_ref_check(const char *ref, char *why, size_t whycap)
{
    union {
        struct wd_ref_vault v;
        struct wd_ref_aws a;
        struct wd_ref_gcp g;
        struct wd_ref_azure z;
    } u;
    if (strncmp(ref, "vault://", 8) == 0)
        return wd_ref_vault_parse(ref, &u.v, why, whycap);
    if (strncmp(ref, "aws-sm://", 9) == 0)
        return wd_ref_aws_parse(ref, &u.a, why, whycap);
    if (strncmp(ref, "gcp-sm://", 9) == 0)
        return wd_ref_gcp_parse(ref, &u.g, why, whycap);
    if (strncmp(ref, "azure-kv://", 11) == 0)
        return wd_ref_azure_parse(ref, &u.z, why, whycap);
    return 0;
}
