// Owns freezing a running sandbox so the host can read its /workspace as it stands (snapshots,
// diffs, exports): a lock keeps two readers from resuming each other's freeze, and a mark left in
// the run dir lets the next process thaw a sandbox whose freezer died before resuming it.
import { existsSync } from "node:fs";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { acquireLock } from "../environments/lock.js";

/** Present in a run dir while its sandbox is paused by withFrozen. */
const FROZEN_MARK = "frozen";

export interface Freezer {
  pause(): Promise<void>;
  resume(): Promise<void>;
}

/**
 * Runs fn with the sandbox paused. `discard` is what fn makes in the guest's files that must not
 * outlive this process (a sync push's staging directory): the mark names it, and a thaw after this
 * process died removes it before resuming, while the guest still cannot touch it.
 */
export async function withFrozen<T>(
  runDir: string,
  freezer: Freezer,
  fn: () => Promise<T>,
  discard?: string,
): Promise<T> {
  const mark = join(runDir, FROZEN_MARK);
  const lock = await acquireLock(join(runDir, "freeze.lock"), { timeoutMs: 60_000, pollMs: 5 });
  try {
    // A mark left under a free lock means whoever froze the sandbox died before thawing it.
    if (existsSync(mark)) await discardAndResume(mark, freezer);
    await writeFile(mark, `${process.pid}\n${discard ?? ""}\n`);
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
    await discardAndResume(mark, freezer);
    await rm(mark, { force: true });
  } finally {
    await lock.release();
  }
}

/** An abandoned freeze: what its freezer named to discard goes first, then the sandbox resumes. */
async function discardAndResume(mark: string, freezer: Freezer): Promise<void> {
  const discard = (await readFile(mark, "utf8").catch(() => "")).split("\n")[1];
  if (discard) await rm(discard, { recursive: true, force: true, maxRetries: 5 }).catch(() => {});
  await freezer.resume().catch(() => {});
}
