/* The `warden` command: serve, version, config check, the audit commands (audit/cli.c), login/token and the admin
 * API clients keys/teams/budgets (cli/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/cli.h"
#include "cli/keys.h"
#include "cli/login.h"
#include "config/config.h"
#include "lib/log.h"
#include "providers/provider.h"
#include "server/server.h"

static void usage(FILE *f)
{
    fprintf(f,
            "warden %s - an AI gateway: Claude Code, Codex CLI and Gemini CLI on any model provider\n"
            "\n"
            "usage:\n"
            "  warden serve [--config FILE] [--listen HOST:PORT]\n"
            "                                 serve (without --config: the embedded default config);\n"
            "                                 --listen overrides the config's listen address\n"
            "  warden config check FILE       validate a config file; names the bad key and its line\n"
            "  warden config default          print the embedded default config\n",
            WARDEN_VERSION);
    wd_cli_usage(f);
    wd_cli_login_usage(f);
    wd_cli_keys_usage(f);
    fprintf(f, "  warden version                 print the version\n"
               "  warden --help                  this text\n"
               "\n"
               "signals: SIGTERM drains (in-flight requests finish) then exits 0; SIGHUP reloads the config file.\n");
}

/* host:port or [v6]:port -> cfg->listen_host / listen_port */
static int override_listen(struct wd_config *cfg, const char *addr)
{
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr || colon[1] == '\0')
        return -1;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        return -1;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']')
        h++, hl -= 2;
    char *host = strndup(h, hl);
    if (host == NULL)
        return -1;
    free(cfg->listen_host);
    cfg->listen_host = host;
    cfg->listen_port = (uint16_t)port;
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    const char *path = NULL, *listen = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc)
            path = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
        else {
            fprintf(stderr, "warden serve: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    struct wd_config *cfg;
    struct wd_config_err err;
    int r = path ? wd_config_load_file(path, &cfg, &err) : wd_config_load_default(&cfg, &err);
    if (r != 0) {
        fprintf(stderr, "warden: %s: %s\n", path ? path : "<embedded>", err.msg);
        return 1;
    }
    if (listen != NULL && override_listen(cfg, listen) != 0) {
        fprintf(stderr, "warden serve: --listen: expected host:port\n");
        wd_config_free(cfg);
        return 2;
    }
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (wd_provider_ops_for(cfg->providers[i].type) == NULL) {
            fprintf(stderr, "warden: providers.%s.type: not built into this version\n", cfg->providers[i].name);
            wd_config_free(cfg);
            return 1;
        }
    return wd_server_run(cfg, path);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("warden %s\n", WARDEN_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(argv[1], "db") == 0)
        return wd_cli_db(argc - 2, argv + 2);
    if (strcmp(argv[1], "audit") == 0)
        return wd_cli_audit(argc - 2, argv + 2);
    if (strcmp(argv[1], "login") == 0)
        return wd_cli_login(argc - 2, argv + 2);
    if (strcmp(argv[1], "token") == 0)
        return wd_cli_token(argc - 2, argv + 2);
    if (strcmp(argv[1], "keys") == 0)
        return wd_cli_keys(argc - 2, argv + 2);
    if (strcmp(argv[1], "teams") == 0)
        return wd_cli_teams(argc - 2, argv + 2);
    if (strcmp(argv[1], "budgets") == 0)
        return wd_cli_budgets(argc - 2, argv + 2);
    if (strcmp(argv[1], "config") == 0 && argc >= 3 && strcmp(argv[2], "default") == 0) {
        fputs(wd_config_default_yaml(), stdout);
        return 0;
    }
    if (strcmp(argv[1], "config") == 0 && argc == 4 && strcmp(argv[2], "check") == 0) {
        struct wd_config *cfg;
        struct wd_config_err err;
        if (wd_config_load_file(argv[3], &cfg, &err) != 0) {
            fprintf(stderr, "%s: %s\n", argv[3], err.msg);
            return 1;
        }
        printf("%s: ok (%zu providers, %zu aliases, %zu auth keys)\n", argv[3], cfg->nproviders, cfg->naliases,
               cfg->nauth_keys);
        char note[400];
        if (wd_config_tiers_note(cfg, note, sizeof(note)) > 0)
            printf("%s: %s\n", argv[3], note);
        wd_config_free(cfg);
        return 0;
    }
    fprintf(stderr, "warden: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
