// `npm run bench [-- --json]`: medians and p90s of pyro's hot paths next to the floors measured in
// the same run, so the ratios mean something on a shared, noisy machine. A benchmark, not a test.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { buildOciSpec } from "../src/engines/gvisor/oci.js";
import { EnvironmentStore } from "../src/environments/index.js";
import { resolvePaths } from "../src/manager/paths.js";
import { PACKAGE_ROOT } from "../src/version.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const JSON_OUT = process.argv.includes("--json");
const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");

interface Row {
  name: string;
  median_ms: number;
  p90_ms: number;
  floor: string | null;
  ratio: number | null;
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

async function measure(fn: () => unknown): Promise<{ median: number; p90: number }> {
  await fn(); // warm-up, not counted
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { median: quantile(times, 0.5), p90: quantile(times, 0.9) };
}

function ok(result: ReturnType<typeof spawnSync>, what: string): void {
  if (result.status !== 0) throw new Error(`${what} failed (${result.status}): ${result.stderr?.toString()}`);
}

const stateDir = mkdtempSync(join(tmpdir(), "pyro-bench-"));
const environment = await new EnvironmentStore(resolvePaths().cacheDir).require("debian:12");

// runsc-direct: runsc itself running `true` on the same root, with the same spec and flags pyro uses.
const bundle = join(stateDir, "bundle");
mkdirSync(bundle);
const spec = buildOciSpec({ id: "bench", rootPath: environment.rootDir, vcpuCount: 1, memMib: 1024, args: ["true"] });
writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
let n = 0;
const runscDirect = () =>
  ok(
    spawnSync(
      "runsc",
      [
        "--root",
        join(stateDir, "runsc"),
        "--network=none",
        "--overlay2=root:memory",
        "run",
        "--bundle",
        bundle,
        `b${n++}`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    ),
    "runsc run",
  );

const env = { ...process.env, PYRO_STATE_DIR: join(stateDir, "state") };
const client = new Client({ name: "pyro-bench", version: "1" });
await client.connect(
  new StdioClientTransport({
    command: process.execPath,
    args: [CLI, "mcp", "serve", "--profile", "vm-run"],
    env,
    stderr: "ignore",
  }),
);
const vmRun = async () => {
  const r = await client.callTool({ name: "vm_run", arguments: { environment: "debian:12", command: ["true"] } });
  if (r.isError || (r.structuredContent as { exit_code: number }).exit_code !== 0) throw new Error(JSON.stringify(r));
};

const cases: Array<[string, () => unknown, string | null]> = [
  ["native-spawn", () => ok(spawnSync("true"), "true"), null],
  ["runsc-direct", runscDirect, null],
  ["vm_run-mcp-warm", vmRun, "runsc-direct"],
  [
    "run-cli",
    () => ok(spawnSync(process.execPath, [CLI, "run", "debian:12", "--", "true"], { env }), "pyro run"),
    "runsc-direct",
  ],
];
const rows: Row[] = [];
for (const [name, fn, floor] of cases) {
  const { median, p90 } = await measure(fn);
  const base = floor ? rows.find((r) => r.name === floor) : undefined;
  rows.push({
    name,
    median_ms: Number(median.toFixed(1)),
    p90_ms: Number(p90.toFixed(1)),
    floor,
    ratio: base ? Number((median / base.median_ms).toFixed(2)) : null,
  });
}
await client.close();
rmSync(stateDir, { recursive: true, force: true });

console.log(
  `pyro bench: ${RUNS} runs per case after one warm-up; ${cpus().length} cores; ${new Date().toISOString()}\n`,
);
console.log("| case | median ms | p90 ms | floor | ratio |");
console.log("|---|---:|---:|---|---:|");
for (const r of rows) {
  console.log(
    `| ${r.name} | ${r.median_ms} | ${r.p90_ms} | ${r.floor ?? "—"} | ${r.ratio === null ? "" : `${r.ratio}×`} |`,
  );
}
if (JSON_OUT) console.log(JSON.stringify({ rows }));
