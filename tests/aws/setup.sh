#!/usr/bin/env bash
# The official AWS SDK clients that prove tests/fakes/fake_aws.mjs, from the committed lock file.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../npm_setup.sh" "$(dirname "${BASH_SOURCE[0]}")" @aws-sdk/client-secrets-manager
