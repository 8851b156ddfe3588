// Owns freezing a running sandbox so the host can read its /workspace as it stands (snapshots,
// diffs, exports): a lock keeps two readers from resuming each other's freeze, and a mark left in
// the run dir lets the next process thaw a sandbox whose freezer died before resuming it.
import { existsSync } from "node:fs";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { acquireLock } from "../environments/lock.js";

/** Present in a run dir while its sandbox is paused by withFrozen. */
const FROZEN_MARK = "frozen";

export interface Freezer {
  pause(): Promise<void>;
  resume(): Promise<void>;
}

export async function withFrozen<T>(runDir: string, freezer: Freezer, fn: () => Promise<T>): Promise<T> {
  const mark = join(runDir, FROZEN_MARK);
  const lock = await acquireLock(join(runDir, "freeze.lock"), { timeoutMs: 60_000, pollMs: 5 });
  try {
    // A mark left under a free lock means whoever froze the sandbox died before thawing it.
    if (existsSync(mark)) await freezer.resume().catch(() => {});
    await writeFile(mark, `${process.pid}\n`);
    await freezer.pause();
    try {
      return await fn();
    } finally {
      await freezer.resume();
      await rm(mark, { force: true });
    }
  } finally {
    await lock.release();
  }
}

/** Resumes a sandbox left frozen by a process that died inside withFrozen. Costs one stat when
 * nothing was abandoned. */
export async function thawAbandoned(runDir: string, freezer: Freezer): Promise<void> {
  const mark = join(runDir, FROZEN_MARK);
  if (!existsSync(mark)) return;
  const lock = await acquireLock(join(runDir, "freeze.lock"), { timeoutMs: 60_000, pollMs: 5 });
  try {
    if (!existsSync(mark)) return;
    await freezer.resume().catch(() => {});
    await rm(mark, { force: true });
  } finally {
    await lock.release();
  }
}
