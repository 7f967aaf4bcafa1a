/* `warden login` and `warden token`: the token helper of issue 16. login signs in at an OIDC issuer (device flow,
 * or authorization code + PKCE on a loopback redirect) and keeps the refresh token in the user's config directory;
 * token prints a fresh access token for Claude Code's apiKeyHelper, Codex CLI's token command and scripts. */
#ifndef WARDEN_CLI_LOGIN_H
#define WARDEN_CLI_LOGIN_H

#include <stdio.h>

/* argv after the subcommand's name. Exit codes: 0 done, 1 failed (the reason on stderr), 2 a usage error. */
int wd_cli_login(int argc, char **argv);
int wd_cli_token(int argc, char **argv);
/* The usage lines of both, for `warden --help`. */
void wd_cli_login_usage(FILE *f);

#endif
