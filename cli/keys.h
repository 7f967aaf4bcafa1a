/* `warden keys`, `warden teams` and `warden budgets`: a client of the admin API (/admin/v1, docs/governance.md)
 * for the operators who hand out virtual keys and set budgets. The admin key comes from --key or
 * $WARDEN_ADMIN_KEY and goes only into the Authorization header: never to stdout, stderr or an error. */
#ifndef WARDEN_CLI_KEYS_H
#define WARDEN_CLI_KEYS_H

#include <stdio.h>

/* argv after the subcommand's name. Exit codes: 0 done, 1 failed (the server's or the transport's reason on
 * stderr), 2 a usage error. */
int wd_cli_keys(int argc, char **argv);
int wd_cli_teams(int argc, char **argv);
int wd_cli_budgets(int argc, char **argv);
/* The usage lines of the three, for `warden --help`. */
void wd_cli_keys_usage(FILE *f);

#endif
