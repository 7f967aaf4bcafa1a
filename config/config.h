/* Warden configuration: the YAML file (or the embedded default) parsed into one immutable
 * struct. A loaded config is never mutated; reload builds a new one and swaps the pointer. */
#ifndef WARDEN_CONFIG_CONFIG_H
#define WARDEN_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* The provider families (providers/provider.h maps each to its table of functions). */
enum wd_provider_type {
    WD_PROVIDER_GEMINI = 1,
    WD_PROVIDER_ANTHROPIC,
    WD_PROVIDER_OPENAI,          /* Chat Completions and every server compatible with it */
};

/* openai: which request field carries the output limit. */
enum wd_tokens_field {
    WD_TOKENS_FIELD_AUTO = 0,    /* max_completion_tokens for reasoning models (o*, gpt-5), else max_tokens */
    WD_TOKENS_FIELD_MAX_TOKENS,
    WD_TOKENS_FIELD_MAX_COMPLETION_TOKENS,
};

struct wd_provider_key {
    char *secret;          /* secret reference URI (env://NAME, file:///path); never the value */
    unsigned weight;       /* relative share for key load balancing, default 1 */
};

struct wd_provider {
    char *name;            /* the map key under providers:, e.g. "gemini" */
    enum wd_provider_type type;
    char *base_url;        /* no trailing slash; default per type */
    char *tls_ca;          /* PEM CA bundle path for this upstream, or NULL for the system store */
    struct wd_provider_key *keys;
    size_t nkeys;
    unsigned connect_timeout_ms;    /* default 10000 */
    unsigned first_byte_timeout_ms; /* default 120000: time to the first response byte */
    unsigned idle_timeout_ms;       /* default 120000: longest gap between response bytes */
    int64_t max_output_tokens;      /* 0: the family's built-in ceiling per model (if known); else max_tokens
                                       is clamped to this */
    char *anthropic_version;        /* anthropic: the anthropic-version header sent when the client sent none
                                       (default "2023-06-01") */
    enum wd_tokens_field tokens_field; /* openai: default auto */
};

/* An ordered list of targets ("provider/model"): the first is tried first, the next on a retryable failure. */
struct wd_chain {
    char **targets;
    size_t n;
};

struct wd_alias {
    char *name;            /* what the client asks for */
    char *target;          /* "provider/model": the first of chain */
    struct wd_chain chain; /* every target, in order (a scalar in the file is a chain of one) */
};

/* routing: retries and fallback (README "Fallback chains"). */
struct wd_routing_config {
    unsigned attempts_per_target;   /* default 1: a retryable failure moves to the next target; 2+ retries the
                                       same target first (Claude Code itself retries what reaches it) */
    unsigned backoff_ms;            /* default 200: first backoff; doubles per retry, with full jitter */
    unsigned max_backoff_ms;        /* default 5000 */
    unsigned max_retry_after_ms;    /* default 10000: a longer Retry-After moves to the next target at once */
    double retry_budget;            /* default 0.2: retries (and fallbacks) per worker at most this share of
                                       requests over the last 10 s ... */
    unsigned retry_budget_min;      /* ... plus this many per 10 s (default 10) */
};

/* models.prices: USD per million tokens of a provider model, for warden_cost_usd_total. */
struct wd_price {
    char *model;           /* the provider's model name, e.g. "gemini-2.5-pro" */
    double input, output;
    double cached;         /* < 0: charged at the input price */
};

struct wd_auth_key {
    char *name;
    char *secret;          /* secret reference URI */
};

enum wd_audit_mode { WD_AUDIT_FAIL_OPEN = 0, WD_AUDIT_FAIL_CLOSED };
enum wd_audit_content { WD_AUDIT_CONTENT_NONE = 0, WD_AUDIT_CONTENT_HASH, WD_AUDIT_CONTENT_FULL };

/* audit: (docs/audit.md). enabled when the section names a database. */
struct wd_audit_config {
    bool enabled;
    char *database;              /* postgresql:// URL or a secret reference holding one; never logged */
    enum wd_audit_mode mode;     /* default fail_open */
    enum wd_audit_content content; /* default hash */
    char *spool;                 /* directory, default /var/lib/warden/audit-spool */
    bool migrate;                /* default true: apply pending migrations at start */
    unsigned queue_records;      /* per worker, default 65536 */
    unsigned batch_wait_ms;      /* a small batch waits this long for company, default 20 ms */
    bool durable_answers;        /* an answer's last bytes wait for its records, default true */
    unsigned durable_answers_timeout_ms; /* ... at most this long, default 2 s */
    unsigned every_records;      /* checkpoint every N records, default 1000 */
    unsigned every_ms;           /* ... or every T, default 10 s */
    char *signing_key;           /* secret reference to a PEM Ed25519 key; NULL: no checkpoints (warned) */
    char *export_path;           /* checkpoint export: a file path, or "stdout"; NULL: none */
};

/* telemetry: (README "Observability"). Unset values are filled from the OTEL_* environment at start. */
enum wd_otlp_protocol { WD_OTLP_UNSET = 0, WD_OTLP_PROTOBUF, WD_OTLP_JSON };
enum wd_otlp_compression { WD_OTLP_COMPRESSION_UNSET = 0, WD_OTLP_COMPRESSION_NONE, WD_OTLP_COMPRESSION_GZIP };

struct wd_otlp_header {
    char *name;            /* lowercase */
    char *value;           /* a secret reference (env://, file://, ...) or a plain value */
};

struct wd_telemetry_config {
    char *service_name;            /* NULL: OTEL_SERVICE_NAME, else "warden" */
    char *otlp_endpoint;           /* base URL; /v1/traces is appended. NULL: OTEL_EXPORTER_OTLP_* or no export */
    enum wd_otlp_protocol otlp_protocol;
    struct wd_otlp_header *otlp_headers;
    size_t notlp_headers;
    double sampling_ratio;         /* < 0: unset (OTEL_TRACES_SAMPLER_ARG, else 1.0) */
    unsigned otlp_timeout_ms;      /* 0: unset (OTEL_EXPORTER_OTLP_TIMEOUT, else 10 s) */
    enum wd_otlp_compression otlp_compression;
    char *metrics_listen_host;     /* default "127.0.0.1"; NULL: `listen: off`, no /metrics anywhere. Never
                                      served on the client listener */
    uint16_t metrics_listen_port;  /* default 9464 */
    bool metrics_listen_explicit;  /* set in the file: a port that cannot be bound stops the start; the
                                      default address only warns (two Wardens on one host) */
    bool access_log;               /* default true */
};

/* auth.oidc[]: an OpenID Connect issuer whose bearer JWTs Warden accepts. */
struct wd_oidc_issuer {
    char *name;            /* label in logs, audit records and metrics; unique */
    char *issuer;          /* the exact `iss`; discovery at {issuer}/.well-known/openid-configuration */
    char **audiences;      /* `aud` must hold one of these */
    size_t naudiences;
    char *jwks_uri;        /* NULL: the discovery document's */
    char *tls_ca;          /* PEM CA bundle for the IdP; NULL: the system trust store */
    char *claim_subject;   /* claim names: "sub", "email", "groups", "roles", "name" by default */
    char *claim_email;
    char *claim_groups;
    char *claim_roles;
    char *claim_name;
    char *claim_team;      /* NULL: none; else the claim naming the principal's team (budgets) */
    char *claim_org;       /* NULL: none; else the claim naming its organisation */
    unsigned clock_skew_ms;    /* exp, nbf and iat tolerance; default 60 s */
    unsigned refresh_ms;       /* the keys are fetched again this often; default 10 min */
    unsigned fetch_timeout_ms; /* one discovery or JWKS fetch, whole; default 5 s */
    unsigned wait_ms;          /* how long a request waits for keys being fetched (first use, unknown kid);
                                  default 3 s */
};

/* rbac.roles.<name>: what a role grants. */
struct wd_rbac_role {
    char *name;
    char **models;         /* patterns: "*", "tier:sonnet", "anthropic/claude-sonnet-4-5", an alias */
    size_t nmodels;
    char **permissions;    /* "keys:manage", "budgets:manage", "audit:read", "config:read" */
    size_t npermissions;
};

/* rbac.bindings[]: who gets a role. Exactly one of group, subject and key is set. */
struct wd_rbac_binding {
    char *group;           /* an IdP group (the issuer's groups claim) */
    char *subject;         /* a principal's subject or email */
    char *key;             /* a static or virtual key's name */
    char *role;            /* a name of rbac.roles */
};

/* signin.policies[]: the managed settings Claude Code receives, from the first policy that matches the caller. */
struct wd_signin_policy {
    char **groups;         /* matches a caller holding one of these IdP groups ... */
    size_t ngroups;
    char *email_domain;    /* ... or whose e-mail is at this domain; neither set: matches everyone */
    char *settings;        /* the settings as JSON text (written as YAML in the file) */
};

/* signin: Claude Code's own gateway sign-in (docs/claude-gateway-protocol.md): Warden brokers the device flow against
 * one auth.oidc issuer and mints session tokens. */
struct wd_signin_config {
    bool enabled;          /* the section is present */
    char *public_url;      /* the gateway URL developers are given (the Anthropic API's base, .../anthropic) */
    char *issuer;          /* the name of the auth.oidc entry developers sign in at */
    char *client_id;       /* Warden's client at that IdP (confidential) */
    char *client_secret;   /* secret reference */
    char **scopes;         /* asked for; none written: openid profile email offline_access */
    size_t nscopes;
    char **session_secrets; /* secret references: the first signs session tokens, all verify (rotation) */
    size_t nsession_secrets;
    unsigned session_ttl_ms; /* a session token's lifetime, default 1 h */
    char *prompt;          /* the OIDC prompt parameter sent to the IdP (e.g. consent), or NULL */
    char *telemetry_forward; /* an OTLP/HTTP collector's base URL: Claude Code's telemetry is relayed there (and
                                managed settings point Claude Code's exporter at Warden), or NULL */
    struct wd_signin_policy *policies;
    size_t npolicies;
};

enum wd_gov_mode { WD_GOV_FAIL_CLOSED = 0, WD_GOV_FAIL_OPEN };

/* governance: virtual keys, teams, budgets and rate limits in PostgreSQL (docs/governance.md). */
struct wd_governance_config {
    bool enabled;                /* the section names a database */
    char *database;              /* postgresql:// URL or a secret reference holding one; never logged */
    enum wd_gov_mode mode;       /* database unreachable and a lease used up: refuse (default) or admit */
    bool migrate;                /* default true: apply pending migrations at start */
    unsigned sync_ms;            /* spend flush and reload interval, default 1 s */
    double lease;                /* share of a limit one lease takes, default 0.1 */
    unsigned wait_ms;            /* longest a call waits for a lease top-up, default 2 s */
    unsigned idle_return_ms;     /* an unused lease goes back after this, default 10 s */
};

/* secrets: the vault and cloud backends behind vault://, aws-sm://, gcp-sm://, azure-kv:// references
 * (README "Secret backends"). Every string is optional; an unset one falls back to the variable the
 * vendor's own tools read (VAULT_ADDR, AWS_REGION, GOOGLE_APPLICATION_CREDENTIALS, AZURE_CLIENT_ID, ...). The
 * backends' own credentials are env:// or file:// references only. */
enum wd_vault_auth { WD_VAULT_AUTH_TOKEN = 0, WD_VAULT_AUTH_APPROLE, WD_VAULT_AUTH_KUBERNETES };
struct wd_vault_config {
    char *address;          /* https://vault:8200; else VAULT_ADDR */
    char *vault_namespace;  /* X-Vault-Namespace; else VAULT_NAMESPACE */
    char *tls_ca;           /* PEM bundle; else VAULT_CACERT, else the system store */
    unsigned kv_version;    /* 2 (default) or 1 */
    unsigned ttl_ms;        /* a value's lifetime when Vault gives no lease (KV v2); default 5 min */
    unsigned timeout_ms;    /* one HTTP request, default 10 s */
    enum wd_vault_auth auth;   /* token (default), approle, kubernetes */
    char *auth_mount;       /* the auth method's mount: default "kubernetes" / "approle" */
    char *token;            /* auth token: a reference (env://VAULT_TOKEN when unset) */
    char *role;             /* auth kubernetes: the Vault role */
    char *jwt_file;         /* auth kubernetes: default /var/run/secrets/kubernetes.io/serviceaccount/token */
    char *role_id;          /* auth approle: a reference */
    char *secret_id;        /* auth approle: a reference */
};

enum wd_aws_source { WD_AWS_SRC_CHAIN = 0, WD_AWS_SRC_ENV, WD_AWS_SRC_FILE, WD_AWS_SRC_WEB_IDENTITY,
                     WD_AWS_SRC_CONTAINER, WD_AWS_SRC_IMDS };
struct wd_aws_config {
    char *region;           /* else AWS_REGION, AWS_DEFAULT_REGION */
    enum wd_aws_source credentials; /* chain (default): env, web identity, shared file, container, IMDS */
    char *profile;          /* shared credentials file profile; else AWS_PROFILE, else "default" */
    char *credentials_file; /* else AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials */
    char *role_arn;         /* web identity: else AWS_ROLE_ARN */
    char *web_identity_token_file; /* else AWS_WEB_IDENTITY_TOKEN_FILE */
    char *session_name;     /* else AWS_ROLE_SESSION_NAME, else "warden" */
    char *endpoint;         /* Secrets Manager, default https://secretsmanager.REGION.amazonaws.com */
    char *sts_endpoint;     /* default https://sts.REGION.amazonaws.com */
    char *imds_endpoint;    /* default http://169.254.169.254; AWS_EC2_METADATA_SERVICE_ENDPOINT */
    char *tls_ca;           /* else AWS_CA_BUNDLE */
    unsigned ttl_ms;
    unsigned timeout_ms;
};

enum wd_gcp_source { WD_GCP_SRC_AUTO = 0, WD_GCP_SRC_KEY, WD_GCP_SRC_METADATA };
struct wd_gcp_config {
    enum wd_gcp_source credentials; /* auto: a key file when one is named, else the metadata server */
    char *credentials_file; /* service-account key JSON; else GOOGLE_APPLICATION_CREDENTIALS */
    char *endpoint;         /* default https://secretmanager.googleapis.com */
    char *token_endpoint;   /* where the assertion is posted; default the key file's token_uri */
    char *metadata_host;    /* default metadata.google.internal; GCE_METADATA_HOST */
    char *tls_ca;
    unsigned ttl_ms;
    unsigned timeout_ms;
};

enum wd_azure_source { WD_AZ_SRC_AUTO = 0, WD_AZ_SRC_CLIENT_SECRET, WD_AZ_SRC_WORKLOAD_IDENTITY,
                       WD_AZ_SRC_MANAGED_IDENTITY };
struct wd_azure_config {
    enum wd_azure_source credentials; /* auto: workload identity, client secret, managed identity, in that order */
    char *tenant_id;        /* else AZURE_TENANT_ID */
    char *client_id;        /* else AZURE_CLIENT_ID (also the user-assigned managed identity's) */
    char *client_secret;    /* a reference; else env://AZURE_CLIENT_SECRET */
    char *federated_token_file; /* else AZURE_FEDERATED_TOKEN_FILE */
    char *authority_host;   /* default https://login.microsoftonline.com; AZURE_AUTHORITY_HOST */
    char *imds_endpoint;    /* default http://169.254.169.254 */
    char *vault_url;        /* a vault's URL, "{vault}" replaced by its name; default https://{vault}.vault.azure.net */
    char *tls_ca;
    unsigned ttl_ms;
    unsigned timeout_ms;
};

struct wd_secrets_config {
    bool prefetch;          /* resolve every provider key at start and on reload (default false: on first use) */
    unsigned stale_max_ms;  /* a value whose refresh fails is served this long past its expiry, default 10 min */
    struct wd_vault_config vault;
    struct wd_aws_config aws;
    struct wd_gcp_config gcp;
    struct wd_azure_config azure;
};

struct wd_config {
    char *listen_host;     /* "0.0.0.0" */
    uint16_t listen_port;  /* 8080 */
    char *tls_cert;        /* PEM files; both set => TLS with ALPN h2, http/1.1 */
    char *tls_key;
    unsigned workers;      /* 0 => number of cores */
    size_t max_body_bytes;       /* default 32 MiB, also the cap on a decoded gzip body */
    size_t max_header_bytes;     /* default 64 KiB */
    size_t max_response_bytes;   /* default 16 MiB: a provider answer read whole, or one event of a
                                  * stream; the transfer stops when it is passed. 1 KiB..1 GiB */
    unsigned idle_timeout_ms;    /* client connection idle, default 60000 */
    unsigned request_timeout_ms; /* whole request incl. stream, default 600000 */
    unsigned drain_timeout_ms;   /* SIGTERM grace, default 30000 */
    size_t max_connections;      /* client connections; 0 => derived from the descriptor limit (server/front.h) */
    size_t max_pending_body_bytes; /* request bytes buffered before their handler, whole process; default 256 MiB */
    unsigned http2_max_resets;   /* client stream resets per connection per 10 s before GOAWAY; default 200 */

    struct wd_provider *providers;
    size_t nproviders;

    char *tier_opus;       /* "provider/model" or NULL: the first target of tier_chains[0] */
    char *tier_sonnet;
    char *tier_haiku;
    struct wd_chain tier_chains[3]; /* opus, sonnet, haiku: every target in order (n 0 when unset) */
    const char *tiers_defaulted; /* models.tiers absent: the provider whose family's tier map filled them in
                                    (points into providers[]), else NULL */
    struct wd_alias *aliases;
    size_t naliases;
    struct wd_price *prices;
    size_t nprices;

    struct wd_routing_config routing;

    struct wd_auth_key *auth_keys;
    size_t nauth_keys;
    char *auth_keys_env;   /* name of an env var holding comma-separated keys (default config: WARDEN_API_KEYS) */
    struct wd_oidc_issuer *oidc;
    size_t noidc;

    bool rbac;             /* an rbac section was written: default deny */
    struct wd_rbac_role *roles;
    size_t nroles;
    struct wd_rbac_binding *bindings;
    size_t nbindings;

    struct wd_audit_config audit;
    struct wd_governance_config governance;
    struct wd_signin_config signin;
    struct wd_telemetry_config telemetry;
    struct wd_secrets_config secrets;

    char *source;          /* file path, or "<embedded>" */
    char sha256[65];       /* hex SHA-256 of the configuration text (what config records carry) */
};

/* Error with the config key path and line, e.g. "providers.gemini.base_url (line 5): must start with http:// or https://". */
struct wd_config_err {
    char msg[512];
    int line;              /* 1-based, 0 when not tied to a line */
};

/* Parse YAML text. ${VAR} in scalar values is replaced from the environment (unset => error naming VAR).
 * Unknown keys are errors. Returns 0, or -1 with err filled. */
int wd_config_parse(const char *yaml, size_t len, const char *source, struct wd_config **out, struct wd_config_err *err);
int wd_config_load_file(const char *path, struct wd_config **out, struct wd_config_err *err);
/* The embedded default: listen 0.0.0.0:8080, provider gemini keyed by env://GEMINI_API_KEY, the tier map,
 * auth keys from WARDEN_API_KEYS. */
int wd_config_load_default(struct wd_config **out, struct wd_config_err *err);
const char *wd_config_default_yaml(void);
/* When models.tiers was filled in by default (cfg->tiers_defaulted), one line saying so, for the start-up log
 * and `config check`; returns its length (as snprintf), or 0 when the tiers came from the file. */
int wd_config_tiers_note(const struct wd_config *cfg, char *out, size_t cap);
const struct wd_provider *wd_config_provider(const struct wd_config *cfg, const char *name, size_t name_len);
void wd_config_free(struct wd_config *cfg);
/* A copy of cfg->secrets that lives on its own (the secret cache keeps it across reloads); free with
 * wd_config_secrets_free. NULL on OOM. */
struct wd_secrets_config *wd_config_secrets_dup(const struct wd_config *cfg);
void wd_config_secrets_free(struct wd_secrets_config *s);

/* One key of the schema as the README's "Configuration reference" documents it (wd_config_schema_walk). */
struct wd_config_key_doc {
    const char *path;      /* full key path, e.g. "providers.<name>.keys[].secret" */
    const char *type;      /* the Type column, e.g. "integer 0-4096", "`gemini` \| `anthropic`" */
    const char *def;       /* the Default column, e.g. "`32MiB`", "none", "*required*" */
    bool reloadable;       /* a SIGHUP reload applies it; false: it takes effect on restart */
    const char *doc;       /* one line: how the Meaning column starts */
};

/* Calls cb once per key of the schema tables, parents before their keys, in table order. The strings live
 * until cb returns. */
void wd_config_schema_walk(void (*cb)(void *ctx, const struct wd_config_key_doc *key), void *ctx);

#endif
