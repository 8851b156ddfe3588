// Unit tests of how a workspace reference resolves: only an id's shape is read from disk, and no
// name can shadow an id.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { PyroError } from "../../src/contract/errors.js";
import { WorkspaceCreateParams } from "../../src/contract/workspace.js";
import { RecordStore } from "../../src/manager/records.js";

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
