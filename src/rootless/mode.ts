// Owns the answer to "with what privileges does this pyro process run?": as root on the host, as an
// ordinary user who is root inside pyro's user namespace (rootless), or as an ordinary user with no
// namespace (nothing can run, and the reason says how to fix it). Engines and doctor ask here.
import { inInitialUserNamespace, ROOTLESS_ERROR_ENV, readIdMap } from "./namespace.js";

export type Privilege =
  | { mode: "root" }
  | { mode: "rootless"; hostUid: number; subordinate: { start: number; count: number } | undefined }
  | { mode: "none"; reason: string };

/** The host ids the namespace's map sends inside ids to: "0 1001 1\n1 100000 65536" etc. */
export function parseIdMap(text: string): Array<{ inside: number; outside: number; count: number }> {
  return text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [inside, outside, count] = line.trim().split(/\s+/).map(Number);
      return { inside: inside!, outside: outside!, count: count! };
    });
}

export function privilegeFrom(uid: number, uidMap: string, rootlessError: string | undefined): Privilege {
  if (uid === 0 && inInitialUserNamespace(uidMap)) return { mode: "root" };
  if (uid === 0) {
    const ranges = parseIdMap(uidMap);
    const root = ranges.find((r) => r.inside === 0);
    const rest = ranges.find((r) => r.inside !== 0);
    return {
      mode: "rootless",
      hostUid: root?.outside ?? -1,
      subordinate: rest ? { start: rest.outside, count: rest.count } : undefined,
    };
  }
  return {
    mode: "none",
    reason:
      rootlessError ??
      "this pyro process is neither root nor inside pyro's user namespace; run pyro through its `pyro` program (dist/bin/pyro.mjs), which joins it",
  };
}

let cached: Privilege | undefined;

export function privilege(): Privilege {
  cached ??= privilegeFrom(process.getuid?.() ?? -1, readIdMap("self", "uid_map"), process.env[ROOTLESS_ERROR_ENV]);
  return cached;
}

export function isRootless(): boolean {
  return privilege().mode === "rootless";
}

/** The line doctor prints for privileges, and its verdict. */
export function privilegeCheck(p: Privilege = privilege()): { ok: boolean; detail: string; fix?: string } {
  switch (p.mode) {
    case "root":
      return { ok: true, detail: "running as root" };
    case "rootless": {
      const sub = p.subordinate
        ? `; guest ids map to the subordinate range ${p.subordinate.start}-${p.subordinate.start + p.subordinate.count - 1}`
        : "";
      return {
        ok: true,
        detail:
          `rootless: uid ${p.hostUid} is root only inside pyro's user namespace${sub}; ` +
          "sandboxes run without cgroup limits (memory, pids, CPU quota need root)",
      };
    }
    case "none": {
      const fixAt = p.reason.indexOf("; an administrator runs: ");
      return fixAt >= 0
        ? { ok: false, detail: p.reason.slice(0, fixAt), fix: p.reason.slice(fixAt + 2) }
        : { ok: false, detail: p.reason };
    }
  }
}

/** The engine probes' verdict when nothing privileged can run. */
export function privilegeUnavailable(): string | undefined {
  const p = privilege();
  return p.mode === "none" ? `sandboxes cannot start as this user: ${p.reason}` : undefined;
}

/** How `pyro mcp serve` opens its instructions when it can run nothing (so a model and its user see
 * it first, and `pyro host doctor` can tell such a server from a working one). */
const CANNOT_RUN = "pyro cannot run here: every tool fails until this is fixed: ";
const CANNOT_RUN_END = " [end of the problem]. ";

export function cannotRunInstructions(denied: string, rest: string): string {
  return `${CANNOT_RUN}${denied}${CANNOT_RUN_END}${rest}`;
}

/** The problem a server's instructions open with, or undefined for a server that can run. */
export function cannotRunReason(instructions: string | undefined): string | undefined {
  if (!instructions?.startsWith(CANNOT_RUN)) return undefined;
  const end = instructions.indexOf(CANNOT_RUN_END);
  return instructions.slice(CANNOT_RUN.length, end < 0 ? undefined : end);
}
