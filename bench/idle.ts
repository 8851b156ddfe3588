// What a running, idle workspace costs the host: every process it owns (its supervisor and what the
// supervisor started: runsc's parts or QEMU, virtiofsd, slirp4netns, and anything else whose
// command line names the workspace), their resident memory, and their CPU time over a quiet spell.
import { readdirSync, readFileSync } from "node:fs";
import { liveSupervisor } from "../src/supervisor/launch.js";

export interface IdleCost {
  /** Each process: pid, program name, resident set (MB). */
  processes: Array<{ pid: number; name: string; rssMb: number }>;
  /** The sum of their resident sets: pages they share are counted in each. */
  rssMb: number;
  /** CPU time over the spell, as a percentage of one CPU. */
  cpuPercent: number;
}

interface Proc {
  pid: number;
  ppid: number;
  name: string;
  ticks: number;
  cmdline: string;
}

function processes(): Proc[] {
  const found: Proc[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      found.push({
        pid: Number(entry),
        ppid: Number(fields[1]),
        name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
        ticks: Number(fields[11]) + Number(fields[12]),
        cmdline: readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " "),
      });
    } catch {
      // Gone while reading.
    }
  }
  return found;
}

function rssMb(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return Number(kb ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** The workspace's processes: the supervisor's whole tree, and whatever names the workspace. */
function owned(supervisorPid: number, id: string): Proc[] {
  const all = processes();
  const mine = new Set<number>([supervisorPid]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (!mine.has(p.pid) && (mine.has(p.ppid) || p.cmdline.includes(id))) {
        mine.add(p.pid);
        grew = true;
      }
    }
  }
  return all.filter((p) => mine.has(p.pid));
}

/** Measures the idle workspace whose sandbox directory is `runDir` over `seconds` of quiet. */
export async function idleCost(runDir: string, id: string, seconds: number): Promise<IdleCost> {
  const live = await liveSupervisor(runDir);
  if (!live) throw new Error(`workspace ${id} has no live supervisor in ${runDir}`);
  const before = owned(live.pid, id);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const after = owned(live.pid, id);
  const ticksBefore = new Map(before.map((p) => [p.pid, p.ticks]));
  const ticks = after.reduce((sum, p) => sum + (p.ticks - (ticksBefore.get(p.pid) ?? p.ticks)), 0);
  const list = after.map((p) => ({ pid: p.pid, name: p.name, rssMb: Number(rssMb(p.pid).toFixed(1)) }));
  return {
    processes: list,
    rssMb: Number(list.reduce((sum, p) => sum + p.rssMb, 0).toFixed(1)),
    // Clock ticks are 1/100 s on Linux.
    cpuPercent: Number(((ticks / 100 / seconds) * 100).toFixed(2)),
  };
}

/** One line for the bench's notes. */
export function describeIdle(label: string, cost: IdleCost): string {
  const byName = new Map<string, number>();
  for (const p of cost.processes) byName.set(p.name, (byName.get(p.name) ?? 0) + p.rssMb);
  const parts = [...byName].map(([name, mb]) => `${name} ${mb.toFixed(0)}`).join(", ");
  return `idle ${label}: ${cost.processes.length} processes, ${cost.rssMb.toFixed(0)} MB resident (${parts}); ${cost.cpuPercent}% of one CPU while idle`;
}
