#!/usr/bin/env bash
# AWS's reference SigV4 signer (@smithy/signature-v4), which check.mjs compares Warden's with.
exec bash "$(dirname "${BASH_SOURCE[0]}")/../npm_setup.sh" "$(dirname "${BASH_SOURCE[0]}")" @smithy/signature-v4
