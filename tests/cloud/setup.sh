#!/usr/bin/env bash
# The official GCP and Azure clients that prove tests/fakes/fake_gcp.mjs and fake_azure.mjs.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../npm_setup.sh" "$(dirname "${BASH_SOURCE[0]}")" @google-cloud/secret-manager @azure/keyvault-secrets @azure/identity
