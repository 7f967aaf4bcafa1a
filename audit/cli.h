/* The `warden db` and `warden audit` commands: schema migrations, signing keys, and the auditor's
 * tools (verify, query, export). They use one blocking libpq connection; verify, query and export need
 * only SELECT on the audit views, so an auditor runs them as a member of warden_auditor. */
#ifndef WARDEN_AUDIT_CLI_H
#define WARDEN_AUDIT_CLI_H

#include <stdio.h>

/* argv is what follows the command word ("db" / "audit"); the result is the process exit status:
 * 0 success, 1 failure (verify: tampering found), 2 usage or connection error. */
int wd_cli_db(int argc, char **argv);
int wd_cli_audit(int argc, char **argv);

/* The commands' lines for `warden --help`. */
void wd_cli_usage(FILE *f);

#endif
