#!/usr/bin/env bash
# The newcomer's first command: install what is missing, build, pull debian:12 and run one command
# inside an isolated sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-host.sh
node dist/src/cli/main.js env pull debian:12
node dist/src/cli/main.js run debian:12 -- git --version
