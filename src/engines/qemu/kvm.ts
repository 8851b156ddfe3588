// Owns whether the qemu engine uses KVM, for the three kinds of host pyro meets: no /dev/kvm; a
// /dev/kvm that cannot boot a stock guest kernel (a PVM nested hypervisor, a device this user cannot
// open); a working KVM. Only a bounded probe boot tells the last two apart, so its verdict is cached
// — keyed by the host's KVM state, so a verdict never outlives the device, kernel or modules it was
// taken on (a cache carried to a host without /dev/kvm is ignored, not shown).

import { constants } from "node:fs";
import { access, readdir, readFile, stat } from "node:fs/promises";
import { release } from "node:os";
import writeFileAtomic from "write-file-atomic";
import type { Accel } from "./machine.js";

export const KVM_DEVICE = "/dev/kvm";
/** How long a KVM probe boot may take before KVM is judged unable to run a stock kernel. */
export const KVM_PROBE_MS = 8_000;

/** The host's KVM as far as can be seen without booting anything. */
export type KvmState =
  | { device: "absent" }
  | { device: "unusable"; reason: string }
  /** `key` names what a probe's verdict depends on: device number, host kernel, kvm modules. */
  | { device: "present"; key: string };

export interface KvmVerdict {
  accel: Accel;
  probed_at: string;
  /** The KvmState key it was taken on; a verdict for another key does not count. */
  key: string;
}

/** What the engine and doctor say about KVM, for one state and (when present) its verdict. */
export interface KvmReport {
  accel: Accel;
  /** Whether `auto` should pick qemu: only when KVM boots stock kernels. */
  auto: boolean;
  /** Whether a probe boot is still owed (present device, no verdict for this state). */
  unprobed: boolean;
  /** The engine line's words after the QEMU version. */
  engine: string;
  /** doctor's `kvm` check. */
  doctor: string;
}

export async function readKvmState(device = KVM_DEVICE): Promise<KvmState> {
  let rdev: number;
  try {
    rdev = (await stat(device)).rdev;
  } catch {
    return { device: "absent" };
  }
  try {
    await access(device, constants.R_OK | constants.W_OK);
  } catch {
    return { device: "unusable", reason: "this user cannot open it (add the user to the kvm group)" };
  }
  const modules = await readdir("/sys/module").then(
    (names) => names.filter((n) => n === "kvm" || n.startsWith("kvm_")).sort(),
    () => [] as string[],
  );
  return { device: "present", key: `${rdev}/${release()}/${modules.join("+")}` };
}

export async function readVerdict(path: string): Promise<KvmVerdict | undefined> {
  try {
    const v = JSON.parse(await readFile(path, "utf8")) as Partial<KvmVerdict>;
    return (v.accel === "kvm" || v.accel === "tcg") && typeof v.key === "string" && typeof v.probed_at === "string"
      ? (v as KvmVerdict)
      : undefined;
  } catch {
    return undefined;
  }
}

export async function writeVerdict(path: string, verdict: KvmVerdict): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(verdict));
}

/** The verdict that holds for `state`: none for a device that is absent or unusable, and none
 * taken on another state. */
export function verdictFor(state: KvmState, cached: KvmVerdict | undefined): KvmVerdict | undefined {
  return state.device === "present" && cached?.key === state.key ? cached : undefined;
}

const TCG = "TCG (software emulation)";

export function describeKvm(state: KvmState, verdict: KvmVerdict | undefined): KvmReport {
  if (state.device === "absent") {
    return {
      accel: "tcg",
      auto: false,
      unprobed: false,
      engine: `under ${TCG}: ${KVM_DEVICE} is absent`,
      doctor: `${KVM_DEVICE} is absent: the qemu engine uses ${TCG}, and auto prefers gvisor`,
    };
  }
  if (state.device === "unusable") {
    return {
      accel: "tcg",
      auto: false,
      unprobed: false,
      engine: `under ${TCG}: ${KVM_DEVICE} exists but ${state.reason}`,
      doctor: `${KVM_DEVICE} exists but ${state.reason}: the qemu engine uses ${TCG}, and auto prefers gvisor`,
    };
  }
  const held = verdictFor(state, verdict);
  if (!held) {
    return {
      accel: "tcg",
      auto: false,
      unprobed: true,
      engine: `${KVM_DEVICE} exists; KVM not probed yet on this host (pyro doctor probes it)`,
      doctor: `${KVM_DEVICE} exists; a probe boot has not run yet`,
    };
  }
  if (held.accel === "kvm") {
    return {
      accel: "kvm",
      auto: true,
      unprobed: false,
      engine: `with KVM (probe boot ok ${held.probed_at})`,
      doctor: `${KVM_DEVICE} boots a stock guest kernel (probe ${held.probed_at}): the qemu engine uses KVM`,
    };
  }
  const seconds = KVM_PROBE_MS / 1000;
  return {
    accel: "tcg",
    auto: false,
    unprobed: false,
    engine: `under ${TCG}: a probe boot under KVM did not reach the guest in ${seconds} s (${held.probed_at})`,
    doctor: `${KVM_DEVICE} exists but a probe boot of a stock kernel did not reach the guest in ${seconds} s (${held.probed_at}; e.g. a PVM host): the qemu engine uses ${TCG}, and auto prefers gvisor`,
  };
}
