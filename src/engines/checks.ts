// Owns what `pyro doctor` asks of the engines: each engine lists the host programs and devices it
// needs (engine.doctorChecks) and what a sandbox of its own left behind when its owner died
// (engine.leftovers). The sandbox network both engines use is checked here, once (networkChecks).
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { join } from "node:path";
import { NFT } from "../egress/firewall.js";
import { isRootless } from "../rootless/mode.js";
import { findExecutable } from "../util/which.js";
import { listMounts } from "./mounts.js";
import { listPyroNetns, netnsName } from "./network.js";
import { DISK_DIR, type DoctorCheck } from "./types.js";

/** A host program: found on PATH (or at `path`), or the package that installs it. */
export async function hostToolCheck(name: string, pkg: string, purpose: string, path = name): Promise<DoctorCheck> {
  const found = await findExecutable(path);
  return {
    name,
    ok: found !== undefined,
    detail: found ? `${found} (${purpose})` : `missing (${purpose})`,
    ...(found ? {} : { fix: `apt-get install ${pkg}` }),
  };
}

/** What every sandbox network needs: its namespace, its egress, and the allowlist's firewall. */
export async function networkChecks(): Promise<DoctorCheck[]> {
  return [
    await hostToolCheck("slirp4netns", "slirp4netns", "sandbox egress"),
    await hostToolCheck("ip", "iproute2", "per-sandbox network namespaces"),
    await hostToolCheck("nft", "nftables", "the allowlist policy's log of what it refuses", NFT),
    await tunCheck(),
  ];
}

/** slirp4netns opens /dev/net/tun with the rights of the user pyro runs as (rootless: the user's
 * own, since the device belongs to the host's root). */
export async function tunCheck(path = "/dev/net/tun"): Promise<DoctorCheck> {
  const present = await stat(path).then(
    () => true,
    () => false,
  );
  if (!present) {
    return { name: "tun", ok: false, detail: `${path} is missing: --network cannot work`, fix: "modprobe tun" };
  }
  if (!isRootless()) return { name: "tun", ok: true, detail: `${path} exists (slirp4netns egress)` };
  const usable = await access(path, constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
  return usable
    ? { name: "tun", ok: true, detail: `${path} is usable by this user (slirp4netns egress)` }
    : {
        name: "tun",
        ok: false,
        detail: `${path} is not readable and writable by this user: sandboxes with a network cannot start`,
        fix: `an administrator runs: chmod 0666 ${path} (its usual mode; udev's default rule sets it)`,
      };
}

/** What a dead sandbox's owner left on the host: mounts under its directory and its network
 * namespace. `mounts` and `namespaces` are read once by the caller for many sandboxes. */
export function sandboxLeftovers(
  id: string,
  runDir: string,
  host: { mounts: string[]; namespaces: string[] },
): string[] {
  // The workspace's disk stays mounted while the workspace exists, running or not.
  const disk = join(runDir, DISK_DIR);
  const found = host.mounts
    .filter((mount) => mount.startsWith(`${runDir}/`) && mount !== disk)
    .map((mount) => `mount ${mount}`);
  if (host.namespaces.includes(netnsName(id))) found.push(`network namespace ${netnsName(id)}`);
  return found;
}

/** The host's mounts and pyro's named network namespaces, for sandboxLeftovers. */
export async function hostSandboxState(): Promise<{ mounts: string[]; namespaces: string[] }> {
  const [mounts, namespaces] = await Promise.all([listMounts(), listPyroNetns()]);
  return { mounts, namespaces };
}
