// Owns the engine registry and the `auto` choice: the strongest isolation that actually works on
// this host (firecracker → qemu with KVM → gvisor → qemu with TCG), with the reason recorded.

import { PyroError } from "../contract/errors.js";
import type { EngineChoice, EngineName } from "../contract/schemas.js";
import { privilegeUnavailable } from "../rootless/mode.js";
import { GvisorEngine } from "./gvisor/engine.js";
import { QemuEngine } from "./qemu/engine.js";
import type { Engine, EngineProbe } from "./types.js";

const ENGINES: Partial<Record<EngineName, Engine>> = {
  gvisor: new GvisorEngine(),
  qemu: new QemuEngine(),
};

/** Engines named by the contract that this build does not ship yet, with the honest reason. */
const NOT_SHIPPED: Partial<Record<EngineName, string>> = {
  firecracker:
    "the firecracker engine is not part of this release yet (it also needs a KVM host that runs stock guest kernels)",
};

/** Preference order for `auto`, strongest isolation first. */
const AUTO_ORDER: EngineName[] = ["firecracker", "qemu", "gvisor"];

export function getEngine(name: EngineName): Engine {
  const engine = ENGINES[name];
  if (!engine)
    throw new PyroError("ENGINE_UNAVAILABLE", `${NOT_SHIPPED[name] ?? `unknown engine ${name}`}; use --engine gvisor`);
  return engine;
}

export async function probeEngines(): Promise<Array<{ name: EngineName } & EngineProbe>> {
  return Promise.all(
    AUTO_ORDER.map(async (name) => {
      const engine = ENGINES[name];
      if (!engine) return { name, available: false, detail: NOT_SHIPPED[name] ?? "unknown" };
      return { name, ...(await engine.probe()) };
    }),
  );
}

/** Every engine this build ships, strongest first, whether or not it can run here. */
export function shippedEngines(): Engine[] {
  return AUTO_ORDER.flatMap((name) => ENGINES[name] ?? []);
}

/** The engines that can run on this host, strongest first. */
export async function availableEngines(): Promise<Engine[]> {
  return (await probeEngines()).filter((p) => p.available).map((p) => getEngine(p.name));
}

let autoChoice: Promise<{ engine: Engine; reason: string }> | undefined;

/** `PYRO_ENGINE=<name>` makes `auto` mean that engine on this host (to pin one for every client, or
 * to run a test suite against each engine by name). */
function pinnedEngine(): EngineName | undefined {
  const pinned = process.env.PYRO_ENGINE;
  if (!pinned || pinned === "auto") return undefined;
  if (!(AUTO_ORDER as string[]).includes(pinned)) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `PYRO_ENGINE=${pinned} names no engine; use ${AUTO_ORDER.join(", ")} or auto`,
    );
  }
  return pinned as EngineName;
}

export async function selectEngine(requested: EngineChoice): Promise<{ engine: Engine; reason: string }> {
  const pinned = requested === "auto" ? pinnedEngine() : undefined;
  const choice = pinned ?? requested;
  // Not a property of any one engine: say it once, with its fix, rather than once per engine.
  const denied = privilegeUnavailable();
  if (denied) throw new PyroError("ENGINE_UNAVAILABLE", `no engine can run: ${denied}`);
  if (choice !== "auto") {
    const engine = getEngine(choice);
    const probe = await engine.probe();
    if (!probe.available)
      throw new PyroError("ENGINE_UNAVAILABLE", `engine ${choice} cannot run here: ${probe.detail}`);
    return { engine, reason: pinned ? `auto: ${choice} (pinned by PYRO_ENGINE)` : `requested with --engine ${choice}` };
  }
  autoChoice ??= (async () => {
    const probes = await probeEngines();
    const pick = probes.find((p) => p.available && p.auto !== false);
    if (!pick) {
      throw new PyroError(
        "ENGINE_UNAVAILABLE",
        `no sandbox engine can run on this host (${probes.map((p) => `${p.name}: ${p.detail}`).join("; ")}); run pyro doctor`,
      );
    }
    const skipped = probes.filter(
      (p) => p.name !== pick.name && AUTO_ORDER.indexOf(p.name) < AUTO_ORDER.indexOf(pick.name),
    );
    const reason = skipped.length
      ? `auto: ${pick.name} (${skipped.map((p) => `${p.name} ${p.available ? "not chosen" : "unavailable"}: ${p.detail}`).join("; ")})`
      : `auto: ${pick.name}`;
    return { engine: getEngine(pick.name), reason };
  })();
  autoChoice.catch(() => {
    autoChoice = undefined;
  });
  return autoChoice;
}
