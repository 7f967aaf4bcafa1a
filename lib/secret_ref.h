/* The syntax of the vault and cloud secret references, read in one place: the config checks a reference when it
 * is loaded, the backends take it apart when they fetch it. Every part is copied into a fixed field of the
 * parsed struct, NUL-terminated; a part that does not fit, or a character outside the part's alphabet, is an
 * error whose reason names the part (references are not secrets: they may be logged). */
#ifndef WARDEN_LIB_SECRET_REF_H
#define WARDEN_LIB_SECRET_REF_H

#include <stddef.h>

/* vault://mount/path/to/secret#field: the first segment is the KV mount, the rest the secret's path. The field
 * is a key of the secret's data; without one, the secret must hold exactly one key. Mount and path take
 * [A-Za-z0-9._~@+=,-] and '/' between non-empty segments, never "." or ".." as a segment. */
struct wd_ref_vault {
    char mount[128];
    char path[512];
    char field[256]; /* "" when the reference names none */
};

/* aws-sm://name-or-arn#json-field: the secret's name ([A-Za-z0-9/_+=.@-], up to 512) or its full ARN
 * (arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME). The field is a key of the SecretString read as a
 * JSON object; without one, the whole SecretString. */
struct wd_ref_aws {
    char id[600];
    char field[256];
    char region[32]; /* from an ARN, else "" (the backend's configured region) */
};

/* gcp-sm://projects/P/secrets/S[/versions/V]: V is "latest" (the default), a version number or a version alias
 * ([a-z][a-z0-9_-]{0,62}). P is a project
 * id ([a-z][a-z0-9-]{0,29}, not ending in '-') or number; S [A-Za-z0-9_-]{1,255}. */
struct wd_ref_gcp {
    char project[64];
    char secret[256];
    char version[64];
};

/* azure-kv://vault-name/secret-name[/version]: the vault [A-Za-z0-9-]{3,24} (its URL is
 * https://vault-name.vault.azure.net unless the config says otherwise), the name [A-Za-z0-9-]{1,127}, the
 * version 32 hex digits; none: the latest. */
struct wd_ref_azure {
    char vault[32];
    char name[128];
    char version[40];
};

/* Each returns 0, or -1 with a reason in why (naming the part that is wrong). ref is the whole reference,
 * scheme included. */
int wd_ref_vault_parse(const char *ref, struct wd_ref_vault *out, char *why, size_t whycap);
int wd_ref_aws_parse(const char *ref, struct wd_ref_aws *out, char *why, size_t whycap);
int wd_ref_gcp_parse(const char *ref, struct wd_ref_gcp *out, char *why, size_t whycap);
int wd_ref_azure_parse(const char *ref, struct wd_ref_azure *out, char *why, size_t whycap);

/* Checks any reference of the four schemes above: 0 when well-formed, or when ref has another scheme (whose
 * check is not this function's); -1 with why. */
int wd_secret_ref_check(const char *ref, char *why, size_t whycap);

#endif
