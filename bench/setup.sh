#!/usr/bin/env bash
# `npm run bench`'s own setup: what pyro needs (scripts/ensure-host.sh), then the peers it is measured
# beside (bench/peers.ts): podman, which runs runsc as its OCI runtime, and what Anthropic's
# sandbox-runtime (`srt`, a pinned devDependency) needs on Linux: bubblewrap, socat and ripgrep.
# Without root the missing peers are left out and the bench says so.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/apt.sh
bash scripts/ensure-host.sh

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have podman || need+=(podman)
have bwrap || need+=(bubblewrap)
have socat || need+=(socat)
have rg || need+=(ripgrep)
[ "${#need[@]}" -eq 0 ] || apt_install "${need[@]}" || echo "[setup] the bench leaves out the peers that need them" >&2
