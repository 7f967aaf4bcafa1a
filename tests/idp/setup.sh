#!/usr/bin/env bash
# The OIDC test IdP's npm dependencies (oidc-provider), from the committed lock file.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../npm_setup.sh" "$(dirname "${BASH_SOURCE[0]}")" oidc-provider
