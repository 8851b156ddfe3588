// Owns the setup every workspace integration suite shares: a state dir and a host scratch dir of
// its own (named pyro-test-…), a Manager on them, `create` that remembers what it made, and the
// clean-up that deletes those workspaces and both dirs when the file's tests end.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { promisify } from "node:util";
import type { PyroError } from "../../src/contract/errors.js";
import { Manager } from "../../src/manager/manager.js";
import { ENGINE } from "./engine.js";
import { faces } from "./requests.js";
import { removeStateDir } from "./state-dir.js";

/** The built CLI, for tests that need a second process. */
export const PYRO_BIN = join(import.meta.dirname, "../../dist/bin/pyro.mjs");

/** An assert.rejects predicate: the error has this code. */
export const code = (c: string) => (e: PyroError) => e.code === c;

export function workspaceSuite(name: string) {
  const stateDir = mkdtempSync(join(tmpdir(), `pyro-test-${name}-`));
  const host = mkdtempSync(join(tmpdir(), `pyro-test-${name}host-`));
  const manager = new Manager({ stateDir });
  const { workspaces: ws, shells, services } = faces(manager);
  const created: string[] = [];

  async function create(extra: Record<string, unknown> = {}) {
    const info = await ws.create({ environment: "debian:12", ...extra });
    created.push(info.workspace_id);
    // The conformance stage must prove the engine it names, not fall back to another.
    if (!("engine" in extra)) assert.equal(info.engine, ENGINE, `the workspace runs on ${ENGINE}`);
    return info;
  }

  after(async () => {
    for (const id of created) await ws.delete({ workspace: id }).catch(() => {});
    await manager.close();
    removeStateDir(stateDir);
    rmSync(host, { recursive: true, force: true });
  });

  return { stateDir, host, manager, ws, shells, services, created, create };
}

export interface CliOutcome {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs the built CLI against `stateDir` and returns what a user would see, whatever the exit code. */
export async function runCli(stateDir: string, args: string[], timeoutMs = 300_000): Promise<CliOutcome> {
  try {
    const { stdout, stderr } = await promisify(execFile)("node", [PYRO_BIN, ...args], {
      env: { ...process.env, PYRO_STATE_DIR: stateDir },
      timeout: timeoutMs,
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}
