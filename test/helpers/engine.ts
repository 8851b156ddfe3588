// Owns which engine the workspace-contract suites run against: gvisor unless PYRO_ENGINE names
// another (npm test's conformance stage runs them again with PYRO_ENGINE=qemu; `auto` then means
// that engine in every process the tests start), and how to find that engine's host processes.
import type { EngineName } from "../../src/contract/schemas.js";

export const ENGINE: EngineName = (process.env.PYRO_ENGINE as EngineName | undefined) || "gvisor";

/** A pgrep -f pattern for the host processes of sandbox `id` (runsc; QEMU and virtiofsd). */
export function sandboxProcessPattern(id: string): string {
  return ENGINE === "qemu" ? `(qemu-system|virtiofsd).*${id}/` : `runsc.*${id}`;
}
