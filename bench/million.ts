// The million-file rows: a gvisor workspace seeded with 1,000,000 small files in 1,000 directories,
// ten of them then changed by the guest. Seed, diff, snapshot create, reset to the baseline and
// export of the whole tree each run once through the CLI (they take minutes, so there is no median:
// the median and p90 columns hold the one run), with the CLI's peak resident memory (GNU time's %M)
// and, at the end, the supervisor's (VmHWM). Floors on the same tree in the same run: `cp -a` (a
// copy of every file) and `find -newer` (a walk that stats every file and reads none).
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { liveSupervisor } from "../src/supervisor/launch.js";

export interface MillionOptions {
  stateDir: string;
  env: NodeJS.ProcessEnv;
  cli: string;
  files: number;
  addRow: (name: string, median: number, p90: number, floor: string | null, maxRssMb?: number) => void;
  notes: string[];
}

interface Timed {
  ms: number;
  maxRssMb: number;
  stdout: string;
}

/** `argv` under GNU time: wall time and peak RSS of the process; a failure ends the bench. */
function timed(argv: string[], env: NodeJS.ProcessEnv, what: string): Timed {
  const t0 = performance.now();
  const r = spawnSync("/usr/bin/time", ["-f", "%M", ...argv], { env, maxBuffer: 64 * 1024 * 1024 });
  const ms = performance.now() - t0;
  const stderr = r.stderr.toString().trim().split("\n");
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${stderr.slice(-5).join("\n")}`);
  return { ms, maxRssMb: Math.round(Number(stderr.at(-1)) / 1024), stdout: r.stdout.toString() };
}

export async function millionRows(o: MillionOptions): Promise<void> {
  const tree = join(o.stateDir, "million");
  const perDir = 1000;
  for (let d = 0; d < o.files / perDir; d++) {
    const dir = join(tree, `d${String(d).padStart(4, "0")}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDir; f++) writeFileSync(join(dir, `f${f}.txt`), `file ${d}/${f}\n`);
  }
  const label = o.files >= 1_000_000 ? `${o.files / 1_000_000}M` : `${o.files / 1000}k`;
  const sh = (cmd: string) => timed(["sh", "-c", cmd], o.env, cmd);

  const copy = join(o.stateDir, "million-cp");
  const cpA = sh(`cp -a ${tree} ${copy}`);
  rmSync(copy, { recursive: true, force: true });
  o.addRow(`cp-a-${label}-files`, cpA.ms, cpA.ms, null);
  writeFileSync(join(o.stateDir, "stamp"), "");
  const walk = sh(`find ${tree} -newer ${join(o.stateDir, "stamp")} | wc -l`);
  o.addRow(`find-${label}-files`, walk.ms, walk.ms, null);

  const pyro = (args: string[], what: string) => timed([process.execPath, o.cli, ...args], o.env, what);
  const created = pyro(
    ["workspace", "create", "debian:12", "--seed-path", tree, "--disk-mib", "16384", "--json"],
    "seeded create",
  );
  const ws = (JSON.parse(created.stdout) as { workspace_id: string }).workspace_id;
  try {
    o.addRow(`seed-${label}-files`, created.ms, created.ms, `cp-a-${label}-files`, created.maxRssMb);
    const dirs = o.files / perDir;
    const change = Array.from(
      { length: 10 },
      (_, i) => `echo changed >> d${String(Math.floor((i * dirs) / 10)).padStart(4, "0")}/f${i}.txt`,
    );
    pyro(["workspace", "exec", ws, "--", "sh", "-c", change.join(" && ")], "changing ten files");
    const diff = pyro(["workspace", "diff", ws, "--json"], "diff");
    const changed = (JSON.parse(diff.stdout) as { files: unknown[] }).files.length;
    if (changed !== 10) throw new Error(`diff found ${changed} changed files, not 10`);
    o.addRow(`diff-${label}-files-10-changed`, diff.ms, diff.ms, `find-${label}-files`, diff.maxRssMb);
    // The first diff indexed the layer; a second one reads only what changed since.
    const again = pyro(["workspace", "diff", ws, "--json"], "second diff");
    o.addRow(`diff-again-${label}-files`, again.ms, again.ms, `find-${label}-files`, again.maxRssMb);
    const snapshot = pyro(["workspace", "snapshot", "create", ws, "s1", "--json"], "snapshot create");
    o.addRow(`snapshot-create-${label}-files`, snapshot.ms, snapshot.ms, `cp-a-${label}-files`, snapshot.maxRssMb);
    const exported = join(o.stateDir, "million-export");
    const exportRun = pyro(["workspace", "export", ws, ".", "--output", exported, "--json"], "export");
    rmSync(exported, { recursive: true, force: true });
    o.addRow(`export-${label}-files`, exportRun.ms, exportRun.ms, `cp-a-${label}-files`, exportRun.maxRssMb);
    // The supervisor's peak before reset, which starts a new one.
    const supervisor = await liveSupervisor(join(o.stateDir, "state", "workspaces", ws, "sandbox"));
    const hwm = supervisor ? /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${supervisor.pid}/status`, "utf8")) : null;
    const reset = pyro(["workspace", "reset", ws, "--json"], "reset");
    o.addRow(`reset-${label}-files`, reset.ms, reset.ms, `cp-a-${label}-files`, reset.maxRssMb);
    o.notes.push(
      `${label} files: each row is one run; peak RSS of the CLI for each is in its row` +
        (hwm ? `; the workspace's supervisor peaked at ${Math.round(Number(hwm[1]) / 1024)} MB` : "") +
        "; goal ≤ 256 MB per process",
    );
  } finally {
    pyro(["workspace", "delete", ws], "delete");
    rmSync(tree, { recursive: true, force: true });
  }
}
