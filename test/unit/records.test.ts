// Unit tests of how a workspace reference resolves: only an id's shape is read from disk, and no
// name can shadow an id.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { after, describe, it } from "node:test";
import type { PyroError } from "../../src/contract/errors.js";
import { WorkspaceCreateParams } from "../../src/contract/workspace.js";
import { RecordStore, type WorkspaceRecord } from "../../src/manager/records.js";
import { resolvePaths } from "../../src/util/paths.js";

const stateDir = mkdtempSync(join(tmpdir(), "pyro-test-records-"));
after(() => rmSync(stateDir, { recursive: true, force: true }));

describe("workspace references", () => {
  const store = new RecordStore(stateDir);

  it("never reads `..`, `.` or another path as an id", async () => {
    // A record-shaped file one level up and in a non-id directory: neither may answer.
    const fake = JSON.stringify({ workspace_id: "ws-0000000000", name: "decoy" });
    mkdirSync(join(stateDir, "workspaces", "not-an-id"), { recursive: true });
    writeFileSync(join(stateDir, "workspace.json"), fake);
    writeFileSync(join(stateDir, "workspaces", "workspace.json"), fake);
    writeFileSync(join(stateDir, "workspaces", "not-an-id", "workspace.json"), fake);
    for (const ref of ["..", ".", "not-an-id"]) {
      await assert.rejects(store.resolve(ref), (e: PyroError) => e.code === "WORKSPACE_NOT_FOUND", ref);
    }
  });

  it("refuses a name shaped like an id, and takes one that only looks close", () => {
    const named = (name: string) => WorkspaceCreateParams.safeParse({ name });
    const refused = named("ws-0123456789");
    assert.equal(refused.success, false);
    assert.match(refused.error?.issues[0]?.message ?? "", /may not look like a workspace id/);
    for (const name of ["ws-012345678", "ws-0123456789a", "WS-0123456789", "repro-fix"]) {
      assert.equal(named(name).success, true, name);
    }
  });
});

describe("damaged records", () => {
  const store = new RecordStore(mkdtempSync(join(stateDir, "damaged-")));
  const record = (id: string, name: string, count: number) =>
    ({ workspace_id: id, name, command_count: count }) as unknown as WorkspaceRecord;

  it("a truncated record is read from the copy the write before kept: listed, named, resolvable", async () => {
    const id = "ws-00000000aa";
    await store.write(record(id, "keep-me", 1));
    await store.write(record(id, "keep-me", 2));
    const path = store.paths(id).record;
    writeFileSync(path, readFileSync(path, "utf8").slice(0, 20)); // what a crash or a full disk can leave
    const read = await store.read(id);
    assert.equal(read?.name, "keep-me");
    assert.equal((read as unknown as { command_count: number }).command_count, 1, "the previous record");
    assert.equal((await store.resolve("keep-me")).workspace_id, id);
    assert.deepEqual(await store.damaged(), []);
    await assert.rejects(store.assertNameFree("keep-me"), (e: PyroError) => e.code === "WORKSPACE_NAME_TAKEN");
    await store.write(record(id, "keep-me", 3));
    assert.equal(((await store.read(id)) as unknown as { command_count: number }).command_count, 3);
  });

  it("with both copies unreadable the workspace is reported as damaged, not hidden", async () => {
    const id = "ws-00000000bb";
    await store.write(record(id, "lost", 1));
    await store.write(record(id, "lost", 2));
    writeFileSync(store.paths(id).record, "{");
    writeFileSync(store.paths(id).previous, "");
    assert.equal(await store.read(id), undefined);
    assert.ok(!(await store.all()).some((r) => r.workspace_id === id));
    const damaged = await store.damaged();
    assert.equal(damaged.length, 1);
    assert.equal(damaged[0]!.workspace_id, id);
    assert.match(damaged[0]!.problem, new RegExp(`${store.paths(id).record} is unreadable \\(`));
  });
});

describe("where pyro keeps things", () => {
  it("treats an empty PYRO_STATE_DIR or PYRO_CACHE_DIR as unset, never the working directory", () => {
    const saved = { state: process.env.PYRO_STATE_DIR, cache: process.env.PYRO_CACHE_DIR };
    process.env.PYRO_STATE_DIR = "";
    process.env.PYRO_CACHE_DIR = "";
    try {
      const paths = resolvePaths();
      assert.match(paths.stateDir, /\/pyro$/);
      assert.match(paths.cacheDir, /\/pyro$/);
      assert.ok(isAbsolute(paths.stateDir) && isAbsolute(paths.cacheDir), JSON.stringify(paths));
    } finally {
      for (const [key, value] of [
        ["PYRO_STATE_DIR", saved.state],
        ["PYRO_CACHE_DIR", saved.cache],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });
});
