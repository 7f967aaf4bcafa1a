/* libFuzzer driver for every parser of an AWS answer in the aws-sm:// backend (secrets/aws.h). The first byte
 * modulo 7 picks what the rest is: (0) a GetSecretValue answer read whole, (1) the same read for a #field, (2) a
 * JSON 1.1 error, (3) an STS AssumeRoleWithWebIdentity answer and an STS error, (4) IMDS / container credentials
 * JSON, (5) a shared credentials file, (6) an XML document searched at a fixed path and an ISO 8601 time.
 * Each result is checked: lengths match the NUL-terminated output, and a refused answer leaves no credentials. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/aws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_why(const char *why, size_t cap)
{
    if (memchr(why, '\0', cap) == NULL)
        __builtin_trap();
}

static void check_creds(int r, const struct wd_aws_creds *c)
{
    if (r == 0) {
        if (c->access_key[0] == '\0' || c->secret_key[0] == '\0')
            __builtin_trap();
        for (const char *p = c->token; *p; p++)
            if (*p == '\r' || *p == '\n' || *p == ' ')
                __builtin_trap(); /* would break the header line it goes into */
    } else if (c->access_key[0] != '\0' || c->secret_key[0] != '\0' || c->token[0] != '\0') {
        __builtin_trap(); /* a refused answer leaves nothing behind */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 7;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    char why[256];
    why[0] = '\0';
    static struct wd_aws_creds c;
    switch (mode) {
    case 0:
    case 1: {
        char out[512];
        int r = wd_aws_sm_parse_value(p, n, mode == 1 ? "api_key" : NULL, out, sizeof(out), why, sizeof(why));
        if (r > 0 && (strlen(out) != (size_t)r || (size_t)r >= sizeof(out)))
            __builtin_trap();
        if (r == 0 || r < -1)
            __builtin_trap();
        if (r < 0)
            check_why(why, sizeof(why));
        break;
    }
    case 2: {
        char type[64], msg[128];
        int r = wd_aws_json_error(p, n, type, sizeof(type), msg, sizeof(msg));
        if (r == 0 && type[0] == '\0')
            __builtin_trap();
        (void)wd_aws_error_is_credential(type);
        break;
    }
    case 3: {
        int r = wd_aws_sts_parse_credentials(p, n, &c, why, sizeof(why));
        check_creds(r, &c);
        check_why(why, sizeof(why));
        char code[64], msg[128];
        if (wd_aws_sts_parse_error(p, n, code, sizeof(code), msg, sizeof(msg)) == 0 && code[0] == '\0')
            __builtin_trap();
        break;
    }
    case 4: {
        int r = wd_aws_parse_json_credentials(p, n, true, &c, why, sizeof(why));
        check_creds(r, &c);
        r = wd_aws_parse_json_credentials(p, n, false, &c, why, sizeof(why));
        check_creds(r, &c);
        break;
    }
    case 5: {
        int r = wd_aws_parse_shared_file(p, n, "warden", &c, why, sizeof(why));
        check_creds(r == 0 ? 0 : -1, &c);
        break;
    }
    default: {
        static const char *const path[] = {"a", "b"};
        char out[16];
        memset(out, 0x5a, sizeof(out));
        int r = wd_aws_xml_text(p, n, path, 2, out, 8);
        if (out[8] != 0x5a || out[15] != 0x5a)
            __builtin_trap(); /* nothing past cap */
        if (r >= 0 && (r >= 8 || out[r] != '\0'))
            __builtin_trap();
        char t[64];
        size_t m = n < sizeof(t) - 1 ? n : sizeof(t) - 1;
        memcpy(t, p, m);
        t[m] = '\0';
        int64_t ms;
        if (wd_aws_parse_time(t, &ms) == 0 && ms < 0)
            __builtin_trap();
        break;
    }
    }
    return 0;
}
