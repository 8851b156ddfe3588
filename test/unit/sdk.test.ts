// The SDK face against a fake manager: payload-shaped options in, contract payloads out, errors as
// PyroError naming the field, and ownership of the manager.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RunResult } from "../../src/contract/schemas.js";
import * as pkg from "../../src/index.js";
import { Pyro, PyroError, RunParams } from "../../src/index.js";
import type { ManagerApi } from "../../src/sdk/manager.js";

const RESULT: RunResult = {
  environment: "debian:12",
  stdout: "git version 2.39.5\n",
  stderr: "",
  exit_code: 0,
  duration_ms: 700,
  timed_out: false,
  stdout_truncated: false,
  stderr_truncated: false,
  execution_mode: "gvisor",
};

function fakeManager() {
  const calls: { method: string; args: unknown[] }[] = [];
  const manager: ManagerApi = {
    run: async (...args) => {
      calls.push({ method: "run", args });
      return RESULT;
    },
    listEnvironments: async () => ({ catalog_version: "1", count: 0, environments: [] }),
    pullEnvironment: async (...args) => {
      calls.push({ method: "pullEnvironment", args });
      throw new PyroError("PACKAGE_ARCHIVE_UNREACHABLE", "deb.debian.org is unreachable; check the host's apt sources");
    },
    inspectEnvironment: async (...args) => {
      calls.push({ method: "inspectEnvironment", args });
      throw new PyroError("ENVIRONMENT_UNKNOWN", "unknown environment");
    },
    pruneEnvironments: async () => ({ removed: [], freed_bytes: 0 }),
    doctor: async (...args) => {
      calls.push({ method: "doctor", args });
      throw new PyroError("INTERNAL", "not in this test");
    },
    close: async () => {
      calls.push({ method: "close", args: [] });
    },
    // The workspace methods have their own suite (workspace-faces.test.ts).
    workspaces: {} as ManagerApi["workspaces"],
    prepare: async () => {
      throw new Error("not expected in this test");
    },
    shells: {} as ManagerApi["shells"],
    services: {} as ManagerApi["services"],
  };
  return { manager, calls };
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PyroError, `expected a PyroError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

describe("Pyro", () => {
  it("runs with payload field names and returns the contract payload", async () => {
    const { manager, calls } = fakeManager();
    const pyro = new Pyro({ manager });
    const result = await pyro.runInVm({ command: ["git", "--version"], mem_mib: 512 });
    assert.deepEqual(result, RESULT);
    assert.deepEqual(calls[0]?.args[0], RunParams.parse({ command: ["git", "--version"], mem_mib: 512 }));
  });

  it("passes the abort signal and progress reporter through", async () => {
    const { manager, calls } = fakeManager();
    const controller = new AbortController();
    const progress = { phase() {} };
    await new Pyro({ manager }).runInVm({ command: "true" }, { signal: controller.signal, progress });
    assert.deepEqual(calls[0]?.args[1], { signal: controller.signal, progress });
  });

  it("rejects invalid options with INVALID_ARGUMENT naming the method and field", async () => {
    const pyro = new Pyro({ manager: fakeManager().manager });
    await rejectsWith(
      pyro.runInVm({ command: "true", mem_mib: 64 }),
      "INVALID_ARGUMENT",
      /^runInVm: mem_mib must be ≥ 128 \(got 64\)$/,
    );
    await rejectsWith(pyro.runInVm({ command: [] }), "INVALID_ARGUMENT", /command must have at least 1 item/);
    // A camelCase slip would otherwise be dropped silently and the default used.
    await rejectsWith(
      pyro.runInVm({ command: "true", memMib: 512 } as never),
      "INVALID_ARGUMENT",
      /unknown field memMib/,
    );
    await rejectsWith(pyro.pullEnvironment({ environment: "" }), "INVALID_ARGUMENT", /environment must not be empty/);
  });

  it("maps environment and doctor options onto the manager", async () => {
    const { manager, calls } = fakeManager();
    const pyro = new Pyro({ manager });
    await rejectsWith(pyro.pullEnvironment({ environment: "debian:12" }), "PACKAGE_ARCHIVE_UNREACHABLE", /unreachable/);
    assert.deepEqual(calls[0]?.args, ["debian:12", { force: false, progress: undefined }]);
    await rejectsWith(pyro.inspectEnvironment({ environment: "debian:13" }), "ENVIRONMENT_UNKNOWN", /unknown/);
    assert.deepEqual(calls[1]?.args, ["debian:13"]);
    await rejectsWith(pyro.doctor(), "INTERNAL", /not in this test/);
    assert.deepEqual(calls[2]?.args, [{ repair: false }]);
    assert.deepEqual(await pyro.listEnvironments(), { catalog_version: "1", count: 0, environments: [] });
    assert.deepEqual(await pyro.pruneEnvironments(), { removed: [], freed_bytes: 0 });
  });

  it("leaves a manager it was given open", async () => {
    const { manager, calls } = fakeManager();
    const pyro = new Pyro({ manager });
    await pyro.runInVm({ command: "true" });
    await pyro.close();
    assert.equal(
      calls.some((c) => c.method === "close"),
      false,
    );
  });

  it("rejects an unknown engine at construction", () => {
    assert.throws(
      () => new Pyro({ engine: "docker" as never }),
      (err: unknown) =>
        err instanceof PyroError && err.code === "INVALID_ARGUMENT" && /engine must be one of/.test(err.message),
    );
  });
});

describe("package entry", () => {
  it("exports the SDK, the MCP server factory, the errors and the contract schemas", () => {
    for (const name of ["Pyro", "PyroError", "createServer", "serveStdio", "RunParams", "RunResult", "DEFAULTS"]) {
      assert.ok(name in pkg, `${name} is not exported`);
    }
  });
});
