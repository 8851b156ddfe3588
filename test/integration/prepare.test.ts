// `pyro prepare` and the daily-loop verdict of `pyro doctor --environment`, through the real CLI.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { removeStateDir } from "../helpers/state-dir.js";

const run = promisify(execFile);
const PYRO = join(import.meta.dirname, "../../dist/bin/pyro.mjs");
const stateDir = mkdtempSync(join(tmpdir(), "pyro-test-prepare-"));
const env = { ...process.env, PYRO_STATE_DIR: stateDir };

after(() => removeStateDir(stateDir));

// biome-ignore lint/suspicious/noExplicitAny: the payloads are checked field by field below
async function pyroJson(args: string[]): Promise<Record<string, any>> {
  const { stdout } = await run("node", [PYRO, ...args, "--json"], { env, timeout: 300_000 }).catch(
    (e: { stdout: string }) => e,
  );
  return JSON.parse(stdout);
}

describe("pyro prepare", () => {
  it("takes the daily loop from cold to warm, and doctor sees it go stale", async () => {
    const cold = await pyroJson(["doctor", "--environment", "debian:12"]);
    assert.equal(cold.daily_loop.state, "cold");
    assert.match(cold.daily_loop.detail, /pyro prepare debian:12/);

    const prepared = await pyroJson(["prepare", "debian:12"]);
    assert.deepEqual(
      prepared.steps.map((s: { step: string }) => s.step),
      ["create", "exec", "reset", "delete"],
    );
    assert.equal(prepared.daily_loop.state, "warm");
    const warm = await pyroJson(["doctor", "--environment", "debian:12"]);
    assert.equal(warm.daily_loop.state, "warm");
    const list = await pyroJson(["workspace", "list"]);
    assert.equal(list.count, 0, "prepare leaves no workspace behind");

    const [record] = readdirSync(join(stateDir, "prepared"));
    const path = join(stateDir, "prepared", record!);
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, "utf8")), pyro_version: "0.0.1" }));
    const stale = await pyroJson(["doctor", "--environment", "debian:12"]);
    assert.equal(stale.daily_loop.state, "stale");
    assert.match(stale.daily_loop.detail, /was 0\.0\.1/);
  });
});
