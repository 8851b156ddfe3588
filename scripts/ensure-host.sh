#!/usr/bin/env bash
# Installs what pyro needs on a Debian host, only when missing, so it is fast on a warm machine.
# Used by `npm run quickstart` and `npm test`.
set -euo pipefail
source "$(dirname "$0")/apt.sh"

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have runsc || need+=(runsc)
have mmdebstrap || need+=(mmdebstrap)
have slirp4netns || need+=(slirp4netns)
have tini-static || need+=(tini)
have mkfs.ext4 || need+=(e2fsprogs)
have nsenter || need+=(util-linux)
have ip || need+=(iproute2)
have git || need+=(git)
have gcc || need+=(gcc libc6-dev)  # builds the guest agent's posix_spawn addon
have qemu-system-x86_64 || need+=(qemu-system-x86)  # the qemu engine (with virtiofsd)
have qemu-img || need+=(qemu-utils)  # the qemu engine's copy-on-write disks
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)  # the qemu guest's initramfs
have newuidmap || need+=(uidmap)  # rootless pyro: maps a user's subordinate ids (docs/engines.md)
have openssl || need+=(openssl)  # the allowlist tests' fake internet signs its HTTPS certificate
have nft || [ -x /usr/sbin/nft ] || need+=(nftables)  # the allowlist policy: logs what its gateway refuses (docs/network.md)

[ "${#need[@]}" -eq 0 ] || apt_install "${need[@]}"

# Rootless pyro's egress: slirp4netns opens /dev/net/tun as the user. Debian's udev rule makes it
# 0666; some hosts (containers, minimal VMs) leave it 0600, so only root's sandboxes could have a network.
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then
  echo "[setup] chmod 0666 /dev/net/tun (for rootless users' sandbox networks)" >&2
  chmod 0666 /dev/net/tun
fi

# npm dependencies, exactly as the lock file pins them: `npm ci` when node_modules is missing or
# older than the lock file. The lock must name every platform package its optional dependencies
# list (biome's, esbuild's), or `npm ci` refuses; test/unit/lockfile.test.ts checks that.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] installing npm dependencies (npm ci)" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

# Build when any source is newer than the last build.
if [ ! -f dist/agent/pyro-spawn.node ] || [ -n "$(find src scripts/build.mjs package.json tsconfig.json -newer dist/agent/pyro-spawn.node -print -quit)" ]; then
  echo "[setup] building" >&2
  npm run --silent build >&2
fi
