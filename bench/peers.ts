// The tools a user could pick instead of pyro, measured in the same run as pyro's own rows: podman
// with runsc as its OCI runtime (a one-shot `podman run`, and `podman exec` into a running
// container), `runsc exec` into a running sandbox, and Anthropic's sandbox-runtime (`srt`, which
// wraps a command in bubblewrap) for one-shot commands. podman and runsc run on the environment root
// pyro uses, with pyro's runsc flags (no network, a memory-backed overlay on the root); srt has no
// root of its own: it binds the host's read-only. bench/setup.sh installs them.
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildOciSpec } from "../src/engines/gvisor/oci.js";
import { PACKAGE_ROOT } from "../src/version.js";

export interface PeerOptions {
  stateDir: string;
  /** The environment's root directory (debian:12), which runsc and podman run on. */
  rootDir: string;
  measure: (fn: () => unknown) => Promise<{ median: number; p90: number }>;
  addRow: (name: string, median: number, p90: number, floor: string | null) => void;
  skipped: string[];
}

/** Each pyro row beside the peer a user would use for the same thing; printed as pyro ÷ peer. */
export const VERSUS: Array<[pyro: string, peer: string]> = [
  ["run-cli", "podman-run-runsc"],
  ["run-cli", "srt-run"],
  ["vm_run-mcp-warm", "podman-run-runsc"],
  ["vm_run-mcp-warm", "srt-run"],
  ["workspace-exec", "podman-exec-runsc"],
  ["workspace-exec", "runsc-exec"],
];

const RUNSC_FLAGS = ["--network=none", "--overlay2=root:memory"];

/** Runs argv to the end; a failure ends the bench with what the peer printed. A sandbox started
 * detached keeps the stdio it was given open, so its starter gets none (`quiet`). */
function ok(argv: string[], env: NodeJS.ProcessEnv = process.env, quiet = false): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { env, stdio: ["ignore", "ignore", quiet ? "ignore" : "pipe"] });
  if (r.status !== 0) throw new Error(`${argv.join(" ")} failed (${r.status}): ${r.stderr?.toString().trim()}`);
}

const installed = (program: string) => spawnSync("sh", ["-c", `command -v ${program}`]).status === 0;

export async function peerRows(o: PeerOptions): Promise<void> {
  if (installed("podman")) await podmanRows(o);
  else o.skipped.push("podman rows: podman is not installed (bench/setup.sh installs it as root)");
  await runscExecRow(o);
  if (["bwrap", "socat", "rg"].every(installed)) await srtRow(o);
  else o.skipped.push("srt-run: sandbox-runtime needs bubblewrap, socat and ripgrep (bench/setup.sh, as root)");
}

async function podmanRows(o: PeerOptions): Promise<void> {
  const dir = join(o.stateDir, "podman");
  const podman = [
    "podman",
    "--root",
    join(dir, "root"),
    "--runroot",
    join(dir, "run"),
    "--cgroup-manager=cgroupfs",
    "--events-backend=file",
    "--runtime",
    "runsc",
    ...RUNSC_FLAGS.map((f) => `--runtime-flag=${f.slice(2)}`),
  ];
  // `:O` lays an overlay over the root, so the container writes nowhere in it.
  const run = (...args: string[]) => [...podman, "run", "--network=none", ...args, "--rootfs", `${o.rootDir}:O`];
  const oneShot = await o.measure(() => ok([...run("--rm"), "true"]));
  o.addRow("podman-run-runsc", oneShot.median, oneShot.p90, "runsc-direct");
  ok([...run("--detach", "--name", "pyro-bench-exec"), "sleep", "infinity"]);
  try {
    const exec = await o.measure(() => ok([...podman, "exec", "pyro-bench-exec", "true"]));
    o.addRow("podman-exec-runsc", exec.median, exec.p90, null);
  } finally {
    ok([...podman, "rm", "--force", "--time", "0", "pyro-bench-exec"]);
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runscExecRow(o: PeerOptions): Promise<void> {
  const bundle = join(o.stateDir, "peer-bundle");
  mkdirSync(bundle);
  const spec = buildOciSpec({
    id: "peer",
    rootPath: o.rootDir,
    vcpuCount: 1,
    memMib: 1024,
    args: ["sleep", "infinity"],
  });
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
  const runsc = ["runsc", "--root", join(o.stateDir, "peer-runsc"), ...RUNSC_FLAGS];
  ok([...runsc, "run", "--detach", "--bundle", bundle, "peer-exec"], process.env, true);
  try {
    const exec = await o.measure(() => ok([...runsc, "exec", "peer-exec", "true"]));
    o.addRow("runsc-exec", exec.median, exec.p90, null);
  } finally {
    ok([...runsc, "delete", "--force", "peer-exec"]);
  }
}

async function srtRow(o: PeerOptions): Promise<void> {
  // A throwaway HOME: no ~/.srt-settings.json, so srt's defaults (no network, writes only where it
  // allows by default, reads unrestricted).
  const home = join(o.stateDir, "srt-home");
  mkdirSync(home);
  const srt = join(PACKAGE_ROOT, "node_modules", ".bin", "srt");
  const env = { ...process.env, HOME: home };
  const oneShot = await o.measure(() => ok([srt, "true"], env));
  o.addRow("srt-run", oneShot.median, oneShot.p90, null);
}
