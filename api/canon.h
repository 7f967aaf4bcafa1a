/* The canonical model: the one contract between inbound codecs (what clients speak) and outbound codecs
 * (what providers speak). N inbound + M outbound codecs meet here; no codec knows another.
 *
 * Text fields are JSON string content, still escaped (see json.h): every vendor API escapes strings the
 * same way, so they move between JSON documents as raw slices. Fields documented "decoded" hold UTF-8. */
#ifndef WARDEN_API_CANON_H
#define WARDEN_API_CANON_H

#include <string.h>

#include "lib/buf.h"

enum wd_role {
    WD_ROLE_USER = 1,
    WD_ROLE_ASSISTANT,
    WD_ROLE_SYSTEM,          /* a system message in mid-conversation */
};

enum wd_part_type {
    WD_PART_TEXT = 1,
    WD_PART_IMAGE,
    WD_PART_DOCUMENT,
    WD_PART_TOOL_CALL,
    WD_PART_TOOL_RESULT,
    WD_PART_THINKING,
    WD_PART_SIGNATURE,       /* an opaque provider signature that belongs to the preceding part */
};

struct wd_media {
    struct wd_str media_type;   /* e.g. image/png, application/pdf (escaped, normally plain ASCII) */
    struct wd_str data;         /* base64 (escaped form; base64 has nothing to escape but '/' may be "\/") */
    struct wd_str url;          /* http(s) URL, when not inline */
};

struct wd_part {
    enum wd_part_type type;
    struct wd_str text;         /* TEXT, THINKING: escaped */
    struct wd_str signature;    /* THINKING, TOOL_CALL, SIGNATURE: the provider's opaque signature (decoded) */
    struct wd_media media;      /* IMAGE, DOCUMENT */
    struct wd_str id;           /* TOOL_CALL, TOOL_RESULT: the client-visible call id (decoded) */
    struct wd_str name;         /* TOOL_CALL; TOOL_RESULT: the name of the call it answers (decoded) */
    struct wd_str args;         /* TOOL_CALL: the arguments as a raw JSON object */
    struct wd_part *content;    /* TOOL_RESULT: TEXT / IMAGE / DOCUMENT parts */
    size_t ncontent;
    bool is_error;              /* TOOL_RESULT */
};

struct wd_msg {
    enum wd_role role;
    struct wd_part *parts;
    size_t nparts;
};

struct wd_tool {
    struct wd_str name;         /* decoded */
    struct wd_str description;  /* escaped */
    struct wd_str schema;       /* raw JSON object (JSON Schema) */
};

enum wd_tool_choice {
    WD_TOOL_CHOICE_UNSET = 0,
    WD_TOOL_CHOICE_AUTO,
    WD_TOOL_CHOICE_ANY,
    WD_TOOL_CHOICE_TOOL,        /* exactly tool_choice_name */
    WD_TOOL_CHOICE_NONE,
};

enum wd_thinking {
    WD_THINKING_UNSET = 0,
    WD_THINKING_DISABLED,
    WD_THINKING_ENABLED,        /* with budget */
    WD_THINKING_ADAPTIVE,       /* the model decides; effort may guide it */
};

enum wd_effort {
    WD_EFFORT_UNSET = 0,
    WD_EFFORT_LOW,
    WD_EFFORT_MEDIUM,
    WD_EFFORT_HIGH,
    WD_EFFORT_MAX,
};

struct wd_request {
    struct wd_str model;        /* decoded: what the client asked for */
    struct wd_part *system;     /* TEXT parts */
    size_t nsystem;
    struct wd_msg *msgs;
    size_t nmsgs;
    struct wd_tool *tools;
    size_t ntools;
    enum wd_tool_choice tool_choice;
    struct wd_str tool_choice_name;
    int64_t max_tokens;         /* -1 when unset */
    double temperature;         /* NAN when unset */
    double top_p;
    int64_t top_k;              /* -1 when unset */
    struct wd_str *stop;        /* decoded stop sequences */
    size_t nstop;
    bool stream;
    enum wd_thinking thinking;
    int64_t thinking_budget;    /* -1 when unset */
    bool thinking_hidden;       /* the client asked for thinking to be omitted from the output */
    enum wd_effort effort;
};

/* ---- response events: what an outbound codec's response decoder emits, and an inbound encoder writes ---- */

enum wd_stop_reason {
    WD_STOP_NONE = 0,
    WD_STOP_END_TURN,
    WD_STOP_MAX_TOKENS,
    WD_STOP_STOP_SEQUENCE,
    WD_STOP_TOOL_USE,
    WD_STOP_REFUSAL,
};

enum wd_event_type {
    WD_EV_MESSAGE_START = 1,    /* usage may hold input tokens */
    WD_EV_PART_START,           /* part_type, index; TOOL_CALL: id, name; SIGNATURE: signature */
    WD_EV_DELTA,                /* index; text (escaped) for TEXT/THINKING; args (raw JSON) for TOOL_CALL;
                                   signature for THINKING */
    WD_EV_PART_STOP,            /* index */
    WD_EV_MESSAGE_STOP,         /* stop_reason, stop_sequence, usage */
    WD_EV_ERROR,                /* error_type, message */
};

struct wd_usage {
    int64_t input_tokens;       /* not counting cache reads */
    int64_t output_tokens;      /* including thinking */
    int64_t cache_read_tokens;
};

/* Error classes shared by every inbound API; each API maps them to its own status and type names. */
enum wd_error_class {
    WD_ERR_NONE = 0,
    WD_ERR_INVALID_REQUEST,     /* 400 */
    WD_ERR_AUTHENTICATION,      /* 401 */
    WD_ERR_PERMISSION,          /* 403 */
    WD_ERR_NOT_FOUND,           /* 404 */
    WD_ERR_TOO_LARGE,           /* 413 */
    WD_ERR_UNSUPPORTED_MEDIA,   /* 415 */
    WD_ERR_RATE_LIMIT,          /* 429 */
    WD_ERR_API,                 /* 500 */
    WD_ERR_BAD_GATEWAY,         /* 502: upstream unreachable or its answer unusable */
    WD_ERR_UNAVAILABLE,         /* 503: Warden cannot serve (missing credential, draining) */
    WD_ERR_TIMEOUT,             /* 504 */
    WD_ERR_OVERLOADED,          /* 529: upstream overloaded */
};

struct wd_event {
    enum wd_event_type type;
    int index;
    enum wd_part_type part_type;
    struct wd_str text;
    struct wd_str args;
    struct wd_str id;
    struct wd_str name;
    struct wd_str signature;
    enum wd_stop_reason stop_reason;
    struct wd_str stop_sequence;
    struct wd_usage usage;      /* MESSAGE_START, MESSAGE_STOP; decoders put the running totals on every event */
    enum wd_error_class error_class;
    struct wd_str message;      /* decoded error message */
    bool retryable;             /* ERROR: the request may be retried unchanged (nothing was emitted yet) */
};

/* Where decoders send events. */
struct wd_sink {
    void (*emit)(struct wd_sink *sink, const struct wd_event *ev);
};

/* What a provider's stream decoder emits through: the client side's sink, the usage known so far (every event
 * carries it, so a filter that ends the message early, such as stop sequences, can report it), and the two events
 * that happen once. */
struct wd_emitter {
    struct wd_sink *sink;
    struct wd_usage usage;
    bool started;               /* MESSAGE_START emitted */
    bool failed;                /* an ERROR was emitted: the rest of the answer is ignored */
};

static inline void wd_emit(struct wd_emitter *e, struct wd_event *ev)
{
    ev->usage = e->usage;
    e->sink->emit(e->sink, ev);
}

static inline void wd_emit_start(struct wd_emitter *e)
{
    if (e->started)
        return;
    e->started = true;
    struct wd_event ev = {.type = WD_EV_MESSAGE_START};
    wd_emit(e, &ev);
}

/* The answer's one ERROR event (later ones are dropped). */
static inline void wd_emit_error(struct wd_emitter *e, enum wd_error_class cls, bool retryable, const char *msg)
{
    if (e->failed)
        return;
    struct wd_event ev = {.type = WD_EV_ERROR, .error_class = cls, .retryable = retryable};
    ev.message = (struct wd_str){msg, strlen(msg)};
    e->failed = true;
    wd_emit(e, &ev);
}

/* A codec error: class plus a message safe to show to the client (never a secret, never content). */
struct wd_error {
    enum wd_error_class cls;
    char msg[256];
    bool credential_refused; /* the provider refused Warden's own key (not the client's request): it is
                                fetched again from its secret backend */
};
void wd_error_set(struct wd_error *e, enum wd_error_class cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* No error, without writing the whole message (what `= {0}` would cost on every request). */
static inline void wd_error_clear(struct wd_error *e)
{
    e->cls = WD_ERR_NONE;
    e->msg[0] = '\0';
    e->credential_refused = false;
}

#endif
