/* The observers the gateway provides (audit records, trace spans); the server adds its own (metrics, the
 * access log) through wd_gateway_add_observer. */
#ifndef WARDEN_GATEWAY_OBSERVE_H
#define WARDEN_GATEWAY_OBSERVE_H

#include "gateway/call.h"

extern const struct wd_call_observer wd_observe_audit;
extern const struct wd_call_observer wd_observe_trace;

/* An internal span of the call's trace around a piece of work (one at a time); no-ops when not traced. */
void wd_observe_span_begin(struct wd_call *c, const char *name);
void wd_observe_span_end(struct wd_call *c);
/* "ok", "http_error", "transport_error", "timeout", "cancelled". */
const char *wd_observe_outcome_name(enum wd_attempt_outcome o);

#endif
