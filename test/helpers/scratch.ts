// Scratch directories a test file makes and removes when it ends, and a full garbage collection
// for tests that measure what the heap holds (not what it has yet to collect).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

const made: string[] = [];
after(async () => {
  await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

/** A new directory under the system's temporary directory, removed after the file's tests. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pyro-test-"));
  made.push(dir);
  return dir;
}

setFlagsFromString("--expose-gc");
/** A full collection, so that heap figures count what is held. */
export const fullGc = runInNewContext("gc") as () => void;
