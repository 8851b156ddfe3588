// `npm run bench`: medians of pyro's hot paths next to their floors measured in the same run, so
// the ratios mean something on a shared, noisy machine. Prints a Markdown table.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildOciSpec } from "../src/engines/gvisor/oci.js";
import { AGENT_ARGV } from "../src/environments/inject.js";
import { Pyro } from "../src/sdk/pyro.js";
import { PACKAGE_ROOT } from "../src/version.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);
const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function measure(fn: () => unknown | Promise<unknown>): Promise<number> {
  await fn(); // warm-up, not counted
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

function check(result: ReturnType<typeof spawnSync>, what: string): void {
  if (result.status !== 0) throw new Error(`${what} failed: ${result.stderr?.toString()}`);
}

const stateDir = mkdtempSync(join(tmpdir(), "pyro-bench-"));
const pyro = new Pyro({ stateDir });
const env = await pyro.inspectEnvironment({ environment: "debian:12" });
if (!env.installed || !env.path) throw new Error("debian:12 is not installed: run pyro env pull debian:12 first");
const rootfs = join(env.path, "rootfs");

// Floor: runsc running the same command directly on the environment, read-only, no agent.
const bundle = join(stateDir, "bundle");
mkdirSync(bundle);
const spec = buildOciSpec({ id: "bench", rootPath: rootfs, vcpuCount: 1, memMib: 1024 }) as {
  process: { args: string[] };
  root: { readonly: boolean };
  linux: { cgroupsPath?: string };
};
spec.process.args = ["/bin/true"];
spec.root.readonly = true;
spec.linux.cgroupsPath = undefined;
writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
let n = 0;
const runscRun = () =>
  check(
    spawnSync(
      "runsc",
      ["--root", join(stateDir, "runsc"), "--network=none", "run", "--bundle", bundle, `bench-${n++}`],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    ),
    "runsc run",
  );
// Floor for the agent: the same, but starting pyro's agent runtime (node) and exiting.
const agentSpec = structuredClone(spec);
agentSpec.process.args = [...AGENT_ARGV.slice(0, -1), "-e", "0"];
const agentBundle = join(stateDir, "agent-bundle");
mkdirSync(agentBundle);
writeFileSync(join(agentBundle, "config.json"), JSON.stringify(agentSpec));
const runscAgent = () =>
  check(
    spawnSync(
      "runsc",
      ["--root", join(stateDir, "runsc"), "--network=none", "run", "--bundle", agentBundle, `bench-${n++}`],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    ),
    "runsc run node",
  );

const rows: Array<{ name: string; ms: number; floor?: string }> = [];
const floors: Record<string, number> = {};
const add = async (name: string, fn: () => unknown, floor?: string) => {
  const ms = await measure(fn);
  rows.push({ name, ms, floor });
  floors[name] = ms;
};

await add("native-spawn (true)", () => check(spawnSync("true"), "true"));
await add("node-start (node -e 0)", () => check(spawnSync(process.execPath, ["-e", "0"]), "node"));
await add("runsc-run (true)", runscRun);
await add("runsc-run (agent runtime start)", runscAgent, "runsc-run (true)");
await add("sdk runInVm (true)", () => pyro.runInVm({ command: ["true"] }), "runsc-run (true)");
await add(
  "cli pyro run (true)",
  () =>
    check(
      spawnSync(process.execPath, [CLI, "run", "debian:12", "--", "true"], {
        env: { ...process.env, PYRO_STATE_DIR: stateDir },
      }),
      "pyro run",
    ),
  "runsc-run (true)",
);

await pyro.close();
rmSync(stateDir, { recursive: true, force: true });

const cpu = execFileSync("nproc", { encoding: "utf8" }).trim();
console.log(`pyro bench: median of ${RUNS} runs after one warm-up, ${cpu} cores, ${new Date().toISOString()}\n`);
console.log("| case | median ms | floor | ratio |");
console.log("|---|---:|---|---:|");
for (const r of rows) {
  const ratio = r.floor ? `${(r.ms / floors[r.floor]!).toFixed(2)}×` : "";
  console.log(`| ${r.name} | ${r.ms.toFixed(1)} | ${r.floor ?? "—"} | ${ratio} |`);
}
