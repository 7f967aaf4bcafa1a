/* libFuzzer driver for the Anthropic request decoder and the Gemini request encoder: any body must give
 * a canonical request or a 400-class error, and every request that decodes must encode to valid JSON for
 * each Gemini model family (or to an error naming what Gemini cannot express). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "api/anthropic.h"
#include "providers/gemini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_encode(const struct wd_request *req, const char *model, bool count)
{
    struct wd_buf out = {0};
    struct wd_error err = {0};
    if (wd_gemini_encode_request(req, (struct wd_str){model, strlen(model)}, count, &out, &err) == 0) {
        struct wd_json j = {0};
        if (wd_json_parse(&j, out.p, out.n) != 0 || j.t[0].type != WD_J_OBJ)
            __builtin_trap();
        wd_json_free(&j);
    } else if (err.cls == WD_ERR_NONE || memchr(err.msg, '\0', sizeof err.msg) == NULL) {
        __builtin_trap();
    }
    wd_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wd_arena a = {0};
    struct wd_json j = {0};
    struct wd_request req;
    struct wd_error err = {0};
    bool count = size > 0 && (data[size - 1] & 1); /* count_tokens bodies need no max_tokens */

    if (wd_anthropic_decode_request((const char *)data, size, count, &a, &j, &req, &err) == 0) {
        check_encode(&req, "gemini-2.5-pro", count);
        check_encode(&req, "gemini-2.5-flash-lite", false);
        check_encode(&req, "gemini-3-flash-preview", false);
        check_encode(&req, "gemini-2.0-flash", false);
    } else {
        /* a decode error is always a client error (or out of memory, which the fuzzer does not hit) */
        if (err.cls != WD_ERR_INVALID_REQUEST && err.cls != WD_ERR_API)
            __builtin_trap();
        if (memchr(err.msg, '\0', sizeof err.msg) == NULL)
            __builtin_trap();
        /* the message quotes parts of the body: the error document must still be valid JSON */
        struct wd_buf eb = {0};
        struct wd_json ej = {0};
        wd_anthropic_write_error(&eb, err.cls, err.msg, strlen(err.msg));
        if (wd_json_parse(&ej, eb.p, eb.n) != 0)
            __builtin_trap();
        wd_json_free(&ej);
        wd_buf_free(&eb);
    }
    wd_json_free(&j);
    wd_arena_free(&a);
    return 0;
}
