/* libFuzzer driver for the config parser: arbitrary bytes through libyaml, the node tree, ${VAR}
 * interpolation and the schema mapping must give a config or an error, never a crash or a leak. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wd_config *cfg = NULL;
    struct wd_config_err err;

    if (wd_config_parse((const char *)data, size, "<fuzz>", &cfg, &err) == 0) {
        /* Touch the lookup too: names with odd lengths must not read past a provider name. */
        if (cfg->nproviders > 0)
            (void)wd_config_provider(cfg, cfg->providers[0].name, strlen(cfg->providers[0].name));
        (void)wd_config_provider(cfg, "gemini", 6);
        wd_config_free(cfg);
    } else {
        /* An error message is always terminated and fits its buffer. */
        if (memchr(err.msg, '\0', sizeof err.msg) == NULL)
            __builtin_trap();
    }
    return 0;
}
