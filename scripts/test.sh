#!/usr/bin/env bash
# `npm test`: installs what the tests need (Debian packages, npm packages, the debian:12
# environment), builds, then runs every stage. Slow stages are separate but always run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/apt.sh
bash scripts/ensure-host.sh

# What only the tests need on the host: pytest, to run the agent-loop test's Python suite there too
# (test/integration/agent-loop.test.ts compares the counts with the workspace's).
/usr/bin/python3 -c "import pytest" >/dev/null 2>&1 || apt_install python3-pytest

stage() { echo; echo "=== $1 ==="; }
# Leftover checks count only what appeared after this moment, not what other work left in /tmp.
started=$(date +%s)

stage "lint and types"
npx biome check src test scripts bench
# The types carry promises the tests rely on (each manager operation takes its parsed request,
# the guest protocol's tables), so they are checked, tests included.
npx tsc -p . --noEmit

stage "environments debian:12 and debian:12-build"
node dist/src/cli/main.js env pull debian:12
node dist/src/cli/main.js env pull debian:12-build

stage "unit tests"
node --import tsx --test --test-concurrency=2 test/unit/*.test.ts

stage "integration tests (real gVisor sandboxes and qemu VMs, real MCP clients)"
node --import tsx --test --test-concurrency=1 test/integration/*.test.ts

# The engine conformance suite: the workspace contract's tests (one-shot run, workspaces, files,
# patch, diff, export, shells, services, secrets, network policy, snapshots, stop/start, crash
# recovery, MCP, the use-case recipes) again with PYRO_ENGINE=qemu, which makes `auto` mean qemu in every process they
# start; test/helpers/workspace-suite.ts asserts each workspace really runs on it.
conformance=(
  test/integration/allowlist.test.ts
  test/integration/cli.test.ts
  test/integration/hostile.test.ts
  test/integration/interactive.test.ts
  test/integration/mcp.test.ts
  test/integration/prepare.test.ts
  test/integration/snapshots.test.ts
  test/integration/workspace-acceptance.test.ts
  test/integration/workspace-concurrency.test.ts
  test/integration/workspaces.test.ts
  test/smoke/use-cases.test.ts
)
stage "engine conformance: the workspace contract on qemu (real VMs, TCG on this host)"
PYRO_ENGINE=qemu node --import tsx --test --test-concurrency=1 "${conformance[@]}"

stage "use-case recipes (docs/use-cases) through pyro mcp serve --mode"
node --import tsx --test --test-concurrency=1 test/smoke/use-cases.test.ts

stage "nothing left behind"
PYRO_TEST_STARTED="$started" node --import tsx --test test/leftovers.test.ts
