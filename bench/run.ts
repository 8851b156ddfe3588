// `npm run bench [-- --json]`: medians and p90s of pyro's hot paths next to the floors measured in
// the same run, so the ratios mean something on a shared, noisy machine. A benchmark, not a test.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { DEFAULTS } from "../src/contract/defaults.js";
import { buildOciSpec } from "../src/engines/gvisor/oci.js";
import { EnvironmentStore } from "../src/environments/index.js";
import { RecordStore } from "../src/manager/records.js";
import { Pyro } from "../src/sdk/pyro.js";
import { resolvePaths } from "../src/util/paths.js";
import { PACKAGE_ROOT } from "../src/version.js";
import { createFakeInternet } from "../test/helpers/fake-internet.js";
import { AS_ROOT, rootlessUser } from "../test/helpers/rootless.js";
import { describeIdle, type IdleCost, idleCost } from "./idle.js";
import { millionRows } from "./million.js";
import { peerRows, VERSUS } from "./peers.js";

const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const JSON_OUT = process.argv.includes("--json");
/** `--quick` leaves out the million-file rows (about half an hour); BENCH_FILES sets their count. */
const QUICK = process.argv.includes("--quick");
const MILLION = Number(process.env.BENCH_FILES ?? 1_000_000);
const CLI = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");

interface Row {
  name: string;
  median_ms: number;
  p90_ms: number;
  floor: string | null;
  ratio: number | null;
  /** Peak resident memory of the process that did it, where measured (MB). */
  max_rss_mb?: number;
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

type Timing = { median: number; p90: number };

async function measure(fn: () => unknown, runs = RUNS): Promise<Timing> {
  await fn(); // warm-up, not counted
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
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
const skipped: string[] = [];
/** Lines printed after the table: what a ratio alone does not say. */
const notes: string[] = [];
/** What an idle running workspace holds on the host, per engine. */
const idle: Record<string, IdleCost> = {};
const addRow = (name: string, median: number, p90: number, floor: string | null, maxRssMb?: number) => {
  const base = floor ? rows.find((r) => r.name === floor) : undefined;
  rows.push({
    name,
    median_ms: Number(median.toFixed(1)),
    p90_ms: Number(p90.toFixed(1)),
    floor,
    ratio: base ? Number((median / base.median_ms).toFixed(2)) : null,
    ...(maxRssMb === undefined ? {} : { max_rss_mb: maxRssMb }),
  });
};
for (const [name, fn, floor] of cases) {
  const { median, p90 } = await measure(fn);
  addRow(name, median, p90, floor);
}
await client.close();

// ---- root and rootless: the same warm MCP server paths, as root and as an ordinary user ----------
/** vm_run and workspace_exec (/bin/true) medians through one warm `pyro mcp serve` started by argv. */
async function warmMcpRows(argv: string[]): Promise<{ vmRun: Timing; exec: Timing }> {
  const mcp = new Client({ name: "pyro-bench", version: "1" });
  await mcp.connect(
    new StdioClientTransport({ command: argv[0]!, args: argv.slice(1), cwd: tmpdir(), env, stderr: "ignore" }),
  );
  const call = async (name: string, args: Record<string, unknown>) => {
    const r = await mcp.callTool({ name, arguments: args });
    if (r.isError) throw new Error(`${name}: ${JSON.stringify(r.content)}`);
    return r.structuredContent as Record<string, unknown>;
  };
  const expectZero = (r: Record<string, unknown>) => {
    if (r.exit_code !== 0) throw new Error(JSON.stringify(r));
  };
  try {
    const vmRunTiming = await measure(async () => expectZero(await call("vm_run", { command: ["true"] })));
    const workspace = (await call("workspace_create", { environment: "debian:12" })).workspace_id;
    const exec = await measure(async () =>
      expectZero(await call("workspace_exec", { workspace, command: ["/bin/true"] })),
    );
    await call("workspace_delete", { workspace });
    return { vmRun: vmRunTiming, exec };
  } finally {
    await mcp.close();
  }
}

if (AS_ROOT) {
  const asRoot = await warmMcpRows([process.execPath, join(PACKAGE_ROOT, "dist", "bin", "pyro.mjs"), "mcp", "serve"]);
  addRow("vm_run-mcp-warm-root", asRoot.vmRun.median, asRoot.vmRun.p90, "runsc-direct");
  addRow("workspace-exec-mcp-root", asRoot.exec.median, asRoot.exec.p90, null);
  const user = rootlessUser("pyro-bench-rootless");
  try {
    const pull = user.argv([process.execPath, user.pyro, "env", "pull", "debian:12"]);
    const pulled = spawnSync(pull[0]!, pull.slice(1), { cwd: user.home });
    if (pulled.status === 0) {
      const rootless = await warmMcpRows(user.argv([process.execPath, user.pyro, "mcp", "serve"]));
      addRow("vm_run-mcp-warm-rootless", rootless.vmRun.median, rootless.vmRun.p90, "vm_run-mcp-warm-root");
      addRow("workspace-exec-mcp-rootless", rootless.exec.median, rootless.exec.p90, "workspace-exec-mcp-root");
    } else {
      // The user's environment is built from Debian's archive; without it these rows are missing, not wrong.
      skipped.push(`rootless rows: the user's env pull failed: ${pulled.stderr.toString().split("\n")[0]}`);
    }
  } finally {
    user.remove();
  }
}

// ---- workspaces ----------------------------------------------------------------------------------
/** Spawns /bin/true 60 times from inside a sandbox and prints the median and p90 per spawn (ms). */
const SPAWN_LOOP =
  "import subprocess,time,statistics\nt=[]\nfor _ in range(60):\n s=time.perf_counter(); subprocess.run(['/bin/true']); t.append((time.perf_counter()-s)*1000)\nt.sort(); print(statistics.median(t), t[int(len(t)*0.9)])";
const pyro = new Pyro({ stateDir: join(stateDir, "state") });
const repo = join(stateDir, "repo");
makeTree(repo, 2000);
const ws = await pyro.createWorkspace({ environment: "debian:12" });
// sandbox-spawn: spawning /bin/true from a loop already inside the same sandbox (median per spawn).
const spawnLoop = await pyro.execWorkspace({
  workspace: ws.workspace_id,
  command: ["python3", "-c", SPAWN_LOOP],
});
const [spawnMedian, spawnP90] = spawnLoop.stdout.trim().split(" ").map(Number);
addRow("sandbox-spawn", spawnMedian!, spawnP90!, null);
const wsExec = await measure(() => pyro.execWorkspace({ workspace: ws.workspace_id, command: ["/bin/true"] }));
addRow("workspace-exec", wsExec.median, wsExec.p90, "sandbox-spawn");
// Idle cost: what the running workspace holds on the host while nothing happens in it.
const IDLE_SECONDS = 10;
const sandboxOf = (id: string) => new RecordStore(join(stateDir, "state")).paths(id).sandbox;
idle.gvisor = await idleCost(sandboxOf(ws.workspace_id), ws.workspace_id, IDLE_SECONDS);
notes.push(`${describeIdle("gvisor workspace", idle.gvisor)}; goal ≤ 64 MB and ~0 CPU`);
await pyro.deleteWorkspace({ workspace: ws.workspace_id });

// ---- peers: what a user could use instead, on the same root, in this run (bench/peers.ts) ----------
await peerRows({ stateDir, rootDir: environment.rootDir, measure, addRow, skipped });

// workspace-create-seeded (2,000 files) has no floor of its own; sandbox start is its context.
const created: string[] = [];
const createSeeded = await measure(async () => {
  created.push((await pyro.createWorkspace({ environment: "debian:12", seed_path: repo })).workspace_id);
});
addRow("workspace-create-seeded", createSeeded.median, createSeeded.p90, null);
for (const id of created.slice(1)) await pyro.deleteWorkspace({ workspace: id });
const seeded = created[0]!;

// workspace-diff: 2,000 files, 10 changed, against git diff --no-index of the same two trees.
const changedTree = join(stateDir, "repo-changed");
cpSync(repo, changedTree, { recursive: true });
for (let i = 0; i < 10; i++) {
  const rel = `dir${i}/file${i}.txt`;
  appendFileSync(join(changedTree, rel), "changed\n");
  await pyro.writeWorkspaceFile({
    workspace: seeded,
    path: rel,
    text: `${readFileSync(join(repo, rel), "utf8")}changed\n`,
  });
}
const gitDiff = await measure(() => spawnSync("git", ["diff", "--no-index", "--stat", repo, changedTree]));
addRow("git-diff-no-index", gitDiff.median, gitDiff.p90, null);
const wsDiff = await measure(() => pyro.diffWorkspace({ workspace: seeded }));
addRow("workspace-diff", wsDiff.median, wsDiff.p90, "git-diff-no-index");

// sync-push throughput (reported as ms for 64 MiB; MB/s in the notes) against tar | tar on the host,
// for large files and for the 2,000-file tree; the qemu section pushes the same two.
const blob = join(stateDir, "blob");
mkdirSync(blob);
for (let i = 0; i < 16; i++) writeFileSync(join(blob, `b${i}`), randomBytes(4 * 1024 * 1024));
const PUSHES: Array<[suffix: string, source: string]> = [
  ["64MiB", blob],
  ["2000-files", repo],
];
for (const [suffix, source] of PUSHES) {
  const tarTar = await measure(() => {
    const out = join(stateDir, `tt-${Date.now()}`);
    mkdirSync(out);
    ok(spawnSync("sh", ["-c", `tar -C ${source} -cf - . | tar -C ${out} -xf -`]), "tar | tar");
    rmSync(out, { recursive: true, force: true });
  });
  addRow(`tar-pipe-${suffix}`, tarTar.median, tarTar.p90, null);
}
/** Rows `${prefix}sync-push-…` for pushes of both sources into a new directory of a running
 * workspace, and `…-again` for the small files pushed over the same tree (every file replaced). */
let pushes = 0;
const pushRows = async (workspace: string, prefix: string) => {
  for (const [suffix, source] of PUSHES) {
    const push = await measure(() =>
      pyro.pushWorkspaceSync({ workspace, source_path: source, dest: `pushed-${suffix}-${pushes++}` }),
    );
    addRow(`${prefix}sync-push-${suffix}`, push.median, push.p90, `tar-pipe-${suffix}`);
  }
  const again = await measure(() => pyro.pushWorkspaceSync({ workspace, source_path: repo, dest: "pushed-again" }));
  addRow(`${prefix}sync-push-2000-files-again`, again.median, again.p90, "tar-pipe-2000-files");
};
await pushRows(seeded, "");
await pyro.deleteWorkspace({ workspace: seeded });

// snapshot-create, reset and stop-start on a workspace of 50,000 files / 500 MB, against cp -a of
// the same tree and a bare sandbox start (runsc-direct). Heavy: 3 runs each after the warm-up.
const HEAVY_RUNS = 3;
const big = join(stateDir, "big");
makeBigTree(big, 50_000, 10_000);
const bigWs = (await pyro.createWorkspace({ environment: "debian:12", seed_path: big })).workspace_id;
const cpA = await measure(() => {
  const out = join(stateDir, `cp-${Date.now()}`);
  ok(spawnSync("cp", ["-a", big, out]), "cp -a");
  rmSync(out, { recursive: true, force: true });
}, HEAVY_RUNS);
addRow("cp-a-50k-files-500MB", cpA.median, cpA.p90, null);
let snap = 0;
// Files unchanged since the baseline are hard-linked, so a snapshot costs a walk, not a copy.
const snapshotCreate = await measure(
  () => pyro.createSnapshot({ workspace: bigWs, snapshot_name: `s${snap++}` }),
  HEAVY_RUNS,
);
addRow("snapshot-create", snapshotCreate.median, snapshotCreate.p90, "cp-a-50k-files-500MB");
const reset = await measure(() => pyro.resetWorkspace({ workspace: bigWs, snapshot: "s0" }), HEAVY_RUNS);
addRow("reset", reset.median, reset.p90, "cp-a-50k-files-500MB");
const stopStart = await measure(async () => {
  await pyro.stopWorkspace({ workspace: bigWs });
  await pyro.startWorkspace({ workspace: bigWs });
}, HEAVY_RUNS);
addRow("stop-start", stopStart.median, stopStart.p90, "runsc-direct");
await pyro.deleteWorkspace({ workspace: bigWs });

// ---- a million files (bench/million.ts) ----------------------------------------------------------
if (!QUICK) await millionRows({ stateDir, env, cli: CLI, files: MILLION, addRow, notes });

// ---- network: one HTTPS request through the allowlist's gateway (its resolver answering the
// name) against the same request with egress (slirp4netns), to a server in a namespace of this
// run's own. The egress guest looks the name up as a guest would, at a DNS server one hop away (the
// fake internet's), and also, as a floor with no lookup cost, in /etc/hosts. curl in the guest
// times each request from name lookup to the last byte, on a new connection each time.
if (AS_ROOT) {
  const net = await createFakeInternet(["allowed.test"]);
  process.env.PYRO_EGRESS_HOSTS = net.hostsFile;
  const perRequest = async (params: Record<string, unknown>, setup: string): Promise<Timing> => {
    const { workspace_id } = await pyro.createWorkspace({ environment: "debian:12", ...params });
    try {
      const loop = `${setup}; for i in $(seq ${RUNS * 2 + 1}); do curl -sk -o /dev/null -w '%{time_total}\\n' https://allowed.test/; done`;
      const out = await pyro.execWorkspace({ workspace: workspace_id, command: loop });
      const times = out.stdout
        .trim()
        .split("\n")
        .slice(1)
        .map((s) => Number(s) * 1000);
      if (times.length < RUNS || times.some((t) => !(t > 0)))
        throw new Error(`curl loop failed: ${out.stdout} ${out.stderr}`);
      times.sort((a, b) => a - b);
      return { median: quantile(times, 0.5), p90: quantile(times, 0.9) };
    } finally {
      await pyro.deleteWorkspace({ workspace: workspace_id });
    }
  };
  try {
    const egress = await perRequest({ network_policy: "egress" }, `echo '${net.address} allowed.test' >> /etc/hosts`);
    addRow("https-request-egress-hosts", egress.median, egress.p90, null);
    const egressDns = await perRequest(
      { network_policy: "egress" },
      `echo 'nameserver ${net.address}' > /etc/resolv.conf`,
    );
    addRow("https-request-egress", egressDns.median, egressDns.p90, null);
    const allowlist = await perRequest({ network_policy: "allowlist", allow_hosts: ["allowed.test"] }, "true");
    addRow("https-request-allowlist", allowlist.median, allowlist.p90, "https-request-egress");
    notes.push(
      `allowlist adds ${(allowlist.median - egressDns.median).toFixed(1)} ms per request to egress with DNS ` +
        `(${(allowlist.median - egress.median).toFixed(1)} ms to egress with the name in /etc/hosts); goal ≤ 5 ms`,
    );
  } finally {
    delete process.env.PYRO_EGRESS_HOSTS;
    await net.teardown();
  }
}

// ---- qemu: a cold boot to a ready agent, a workspace restored from the saved VM, an exec ----------
// The saved VM is built by the warm-up create. Boot-cold is the start of a stopped workspace (its
// disk has moved on from the saved VM's, so it boots); stopping it again is not timed.
const QEMU_RUNS = Math.min(RUNS, 5);
const qemuIds: string[] = [];
const createRestored = await measure(async () => {
  qemuIds.push((await pyro.createWorkspace({ environment: "debian:12", engine: "qemu" })).workspace_id);
}, QEMU_RUNS);
const vm = qemuIds[0]!;
const bootTimes: number[] = [];
for (let i = 0; i <= QEMU_RUNS; i++) {
  await pyro.stopWorkspace({ workspace: vm });
  const t0 = performance.now();
  await pyro.startWorkspace({ workspace: vm });
  if (i > 0) bootTimes.push(performance.now() - t0); // the first is the warm-up
}
bootTimes.sort((a, b) => a - b);
addRow("qemu-boot-cold", quantile(bootTimes, 0.5), quantile(bootTimes, 0.9), null);
addRow("qemu-create-restored", createRestored.median, createRestored.p90, "qemu-boot-cold");
const vmSpawn = await pyro.execWorkspace({ workspace: vm, command: ["python3", "-c", SPAWN_LOOP] });
const [vmSpawnMedian, vmSpawnP90] = vmSpawn.stdout.trim().split(" ").map(Number);
addRow("vm-spawn", vmSpawnMedian!, vmSpawnP90!, null);
const qemuExec = await measure(() => pyro.execWorkspace({ workspace: vm, command: ["/bin/true"] }));
addRow("qemu-exec", qemuExec.median, qemuExec.p90, "vm-spawn");
await pushRows(vm, "qemu-");
idle.qemu = await idleCost(sandboxOf(vm), vm, IDLE_SECONDS);
notes.push(describeIdle(`qemu workspace (${DEFAULTS.memMib} MiB guest)`, idle.qemu));
for (const id of qemuIds) await pyro.deleteWorkspace({ workspace: id });
await pyro.close();
rmSync(stateDir, { recursive: true, force: true });

const pushRow = rows.find((r) => r.name === "sync-push-64MiB")!;
const tarRow = rows.find((r) => r.name === "tar-pipe-64MiB")!;
const mbps = (ms: number) => (64 / (ms / 1000)).toFixed(0);

console.log(
  `pyro bench: ${RUNS} runs per case after one warm-up; ${cpus().length} cores; ${new Date().toISOString()}\n`,
);
console.log("| case | median ms | p90 ms | floor | ratio | max RSS MB |");
console.log("|---|---:|---:|---|---:|---:|");
for (const r of rows) {
  console.log(
    `| ${r.name} | ${r.median_ms} | ${r.p90_ms} | ${r.floor ?? "—"} | ${r.ratio === null ? "" : `${r.ratio}×`} | ${r.max_rss_mb ?? ""} |`,
  );
}
const versus = VERSUS.flatMap(([mine, peer]) => {
  const a = rows.find((r) => r.name === mine);
  const b = rows.find((r) => r.name === peer);
  return a && b ? [{ pyro: mine, peer, ratio: Number((a.median_ms / b.median_ms).toFixed(2)) }] : [];
});
console.log("\n| pyro | peer | pyro ÷ peer |\n|---|---|---:|");
for (const v of versus) console.log(`| ${v.pyro} | ${v.peer} | ${v.ratio}× |`);
for (const line of skipped) console.log(`\nskipped: ${line}`);
for (const line of notes) console.log(`\n${line}`);
console.log(`\nsync-push: ${mbps(pushRow.median_ms)} MB/s; tar | tar on the host: ${mbps(tarRow.median_ms)} MB/s`);
if (JSON_OUT) console.log(JSON.stringify({ rows, versus, idle }));

/** A tree shaped like a small repository: nested directories of small text files. */
function makeTree(root: string, files: number): void {
  for (let i = 0; i < files; i++) {
    const dir = join(root, `dir${i % 50}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `file${i}.txt`), `file ${i}\n${"line of text\n".repeat(20)}`);
  }
}

/** `files` files of `bytes` each (distinct content, so nothing is deduplicated by accident). */
function makeBigTree(root: string, files: number, bytes: number): void {
  const block = randomBytes(bytes);
  for (let i = 0; i < files; i++) {
    const dir = join(root, `d${i % 100}`, `e${i % 7}`);
    if (i < 700) mkdirSync(dir, { recursive: true });
    block.writeUInt32LE(i, 0);
    writeFileSync(join(dir, `f${i}.bin`), block);
  }
}
