#!/usr/bin/env bash
# The admin API checker's npm dependencies (ajv, ajv-formats), from the committed lock file.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../npm_setup.sh" "$(dirname "${BASH_SOURCE[0]}")" ajv ajv-formats
