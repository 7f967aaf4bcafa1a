/* Azure Key Vault's backend (azure-kv://) split in two: the pure readers of what Key Vault, Entra ID and IMDS
 * answer, and the builders of what is sent to them, declared here for the unit tests and the fuzzer; the I/O,
 * the token cache and the credential choice stay in secrets/azure.c. No function here does I/O. */
#ifndef WARDEN_SECRETS_AZURE_H
#define WARDEN_SECRETS_AZURE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/secret_ref.h"

/* Key Vault's api-version Warden pins: the answer's shape is the one this file reads. */
#define WD_AZURE_API_VERSION "7.4"
/* IMDS's api-version for managed-identity tokens (its numbers come as strings). */
#define WD_AZURE_IMDS_API_VERSION "2018-02-01"

/* Key Vault's bearer challenge, from the WWW-Authenticate header of a 401. */
struct wd_azure_challenge {
    char tenant[80];     /* the tenant named by the authorization URL's first path segment */
    char resource[128];  /* the resource a token must be for, without a trailing '/' (scope's "/.default" cut) */
};

/* Reads the first Bearer challenge in hdrs (header lines "name: value\r\n", as net/fetch.h captures them):
 * authorization (or authorization_uri) and resource (or scope). 0, or -1 with why (no challenge, a missing
 * or malformed parameter). */
int wd_azure_parse_challenge(const char *hdrs, size_t n, struct wd_azure_challenge *out, char *why, size_t whycap);

/* Whether a challenge's resource may get a token sent to the vault at vault_base (a URL): it must be one of the
 * Azure clouds' Key Vault resources (https://vault.azure.net, .azure.cn, .usgovcloudapi.net,
 * .microsoftazure.de), and the very one of the vault's cloud when the vault's host is under a cloud's Key Vault
 * domain. A vault elsewhere (a private endpoint, a test) takes any of them. 0, or -1 with why. */
int wd_azure_check_resource(const char *resource, const char *vault_base, char *why, size_t whycap);

/* A Key Vault GET secret answer (body of n bytes, HTTP status): for a 200, its "value" string decoded into out
 * (NUL-terminated, cap bytes with the NUL) and its length returned (> 0); -1 with why otherwise: the status with
 * the error's code, inner code and message, a missing or non-string value, an empty or too long one. why never
 * holds value bytes. *inner (when not NULL) gets a static name of what a non-200 was: "SecretDisabled", "auth"
 * (a 401, or a 403 that is not SecretDisabled: worth one fresh token) or "" for anything else. */
int wd_azure_parse_secret(const char *body, size_t n, long status, char *out, size_t cap, const char **inner,
                          char *why, size_t whycap);

/* An access token answer of Entra's token endpoint (expires_in a number) or IMDS (every number a string): for a
 * 200, access_token (token_type, when present, must be Bearer) into tok (NUL-terminated, cap with the NUL) and
 * its lifetime in seconds into *expires_in (expires_in, else expires_on minus now_s; 1 s to 7 days, else an
 * error). Returns the token's length, or -1 with why: the status with error and the first sentence of
 * error_description (AADSTS code included, trace ids left out), or the missing field. */
int wd_azure_parse_token(const char *body, size_t n, long status, int64_t now_s, char *tok, size_t cap,
                         int64_t *expires_in, char *why, size_t whycap);

/* The vault's base URL for r (vault_url with every "{vault}" replaced by r->vault, default
 * https://{vault}.vault.azure.net, no trailing '/') into out; -1 when it does not fit or is not http(s). */
int wd_azure_vault_base(const char *vault_url, const struct wd_ref_azure *r, char *out, size_t cap);
/* GET URL of r's secret: {base}/secrets/{name}[/{version}]?api-version=7.4. -1 when it does not fit. */
int wd_azure_secret_url(const char *base, const struct wd_ref_azure *r, char *out, size_t cap);
/* Entra's token endpoint: {authority_host without trailing '/'}/{tenant}/oauth2/v2.0/token. -1: no room. */
int wd_azure_token_url(const char *authority_host, const char *tenant, char *out, size_t cap);
/* IMDS's token URL for resource (percent-encoded), with &client_id= when client_id is set (a user-assigned
 * identity). -1: no room. */
int wd_azure_imds_url(const char *imds_endpoint, const char *resource, const char *client_id, char *out,
                      size_t cap);

/* The client-credentials form for a token for {resource}/.default: with client_secret when assertion is NULL,
 * else with the federated assertion (client_assertion_type jwt-bearer). Appended to out (which then holds a
 * credential: wipe it); -1 on OOM or a missing part. */
int wd_azure_token_form(const char *client_id, const char *resource, const char *client_secret,
                        const char *assertion, struct wd_buf *out);

#endif
