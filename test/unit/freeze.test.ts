// A freeze abandoned by a process that died inside it (engines/freeze.ts): the next thaw removes
// what the dead freezer named to discard (a sync push's staging directory) while the sandbox is
// still paused, and only then resumes it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { pathToFileURL } from "node:url";
import { thawAbandoned, withFrozen } from "../../src/engines/freeze.js";

const base = mkdtempSync(join(tmpdir(), "pyro-test-freeze-"));
after(() => rmSync(base, { recursive: true, force: true }));

/** Runs withFrozen in a child that SIGKILLs itself inside fn, as a CLI killed mid-push does. */
function dieInsideFreeze(runDir: string, discard: string): void {
  const freeze = pathToFileURL(join(import.meta.dirname, "../../src/engines/freeze.ts")).href;
  const script = `import { withFrozen } from ${JSON.stringify(freeze)};
    const idle = { pause: async () => {}, resume: async () => {} };
    await withFrozen(${JSON.stringify(runDir)}, idle, async () => process.kill(process.pid, "SIGKILL"), ${JSON.stringify(discard)});`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script]);
  assert.equal(r.signal, "SIGKILL", r.stderr.toString());
}

test("the thaw after a freezer died removes what it named, then resumes; a live freeze's work is kept", async () => {
  const runDir = join(base, "run");
  const staged = join(base, "workspace", ".pyro-push-0a");
  mkdirSync(runDir);
  mkdirSync(join(staged, "d"), { recursive: true });
  writeFileSync(join(staged, "d", "half.txt"), "part of a push\n");
  dieInsideFreeze(runDir, staged);
  assert.ok(existsSync(staged), "nothing is removed until someone thaws");

  const seen: string[] = [];
  const freezer = {
    pause: async () => {
      seen.push("pause");
    },
    resume: async () => {
      seen.push(existsSync(staged) ? "resume with the staged tree" : "resume");
    },
  };
  await thawAbandoned(runDir, freezer);
  assert.deepEqual(seen, ["resume"]);
  assert.equal(existsSync(staged), false);
  await thawAbandoned(runDir, freezer);
  assert.deepEqual(seen, ["resume"], "a second thaw finds nothing abandoned");

  // A freeze that ends normally leaves what fn made: discarding is only for a dead freezer.
  mkdirSync(staged);
  assert.equal(await withFrozen(runDir, freezer, async () => "done", staged), "done");
  assert.ok(existsSync(staged));
  assert.deepEqual(seen, ["resume", "pause", "resume with the staged tree"]);
});
