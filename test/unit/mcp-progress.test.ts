// Progress from long MCP calls (an environment build behind vm_run or workspace_create), through a
// real SDK Client over the in-memory transport against a fake manager that reports phases and
// waits: progress notifications with a progress token, log messages without one, a heartbeat while
// a phase lasts, and a request that outlives a short client timeout because progress keeps coming.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import {
  ErrorCode,
  type LoggingMessageNotification,
  LoggingMessageNotificationSchema,
  McpError,
  type Progress,
} from "@modelcontextprotocol/sdk/types.js";
import type { RunResult } from "../../src/contract/schemas.js";
import type { WorkspaceExecResult, WorkspaceInfo } from "../../src/contract/workspace.js";
import { ENVIRONMENT_BUILD_TIMEOUT_MS } from "../../src/environments/catalog.js";
import { createServer, OUTPUT_PROGRESS_MS } from "../../src/mcp/server.js";
import type { ManagerApi, ProgressReporter } from "../../src/sdk/manager.js";

const RESULT: RunResult = {
  environment: "debian:12-base",
  stdout: "hi\n",
  stderr: "",
  exit_code: 0,
  duration_ms: 40,
  timed_out: false,
  stdout_truncated: false,
  stderr_truncated: false,
  execution_mode: "gvisor",
};

const INFO: WorkspaceInfo = {
  workspace_id: "ws-0123456789",
  name: null,
  labels: {},
  environment: "debian:12-build",
  engine: "gvisor",
  state: "running",
  stopped_reason: null,
  vcpu_count: 1,
  mem_mib: 1024,
  disk_mib: 8192,
  disk_used_mib: 1,
  process_limit: 512,
  ttl_seconds: 600,
  network_policy: "off",
  network_rules: null,
  trusted_ca: null,
  host_proxy: null,
  workspace_seed: { mode: "empty", seed_path: null },
  secrets: [],
  created_at: "2025-01-01T00:00:00.000Z",
  last_activity_at: "2025-01-01T00:00:05.000Z",
  expires_at: "2025-01-01T00:10:05.000Z",
  command_count: 0,
  reset_count: 0,
  service_count: 0,
  running_service_count: 0,
};

const EXEC: WorkspaceExecResult = {
  workspace_id: INFO.workspace_id,
  sequence: 1,
  cwd: "/workspace",
  stdout: "step 1\nstep 2\n",
  stderr: "warning: slow\n",
  exit_code: 0,
  duration_ms: 1300,
  timed_out: false,
  cancelled: false,
  running: false,
  stdout_truncated: false,
  stderr_truncated: false,
  execution_mode: "gvisor",
  next_stdout_offset: 14,
  next_stderr_offset: 14,
};

const HEARTBEAT_MS = 40;
/** Long enough for several heartbeats, and longer than the short client timeout used below. */
const BUILD_MS = 400;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the manager reports while it builds a missing environment, then the wait of the build. */
async function build(progress: ProgressReporter | undefined, environment: string): Promise<void> {
  progress?.phase("pull", `${environment} is not installed yet, so it is built now`);
  progress?.phase("pull", `building environment ${environment}: bootstrap: installing packages`);
  await sleep(BUILD_MS);
}

function unexpected(): never {
  throw new Error("not expected in this test");
}

function fakeManager(): ManagerApi {
  return {
    run: async (params, opts) => {
      await build(opts?.progress, (params as { environment?: string }).environment ?? "debian:12");
      opts?.progress?.phase("run", "gvisor sandbox run-0123456789");
      return RESULT;
    },
    listEnvironments: async () => unexpected(),
    pullEnvironment: async () => unexpected(),
    inspectEnvironment: async () => unexpected(),
    pruneEnvironments: async () => unexpected(),
    doctor: async () => unexpected(),
    prepare: async () => unexpected(),
    close: async () => {},
    workspaces: {
      create: async (params: { environment?: string }, opts?: { progress?: ProgressReporter }) => {
        await build(opts?.progress, params.environment ?? "debian:12");
        opts?.progress?.phase("boot", "gvisor sandbox ws-0123456789");
        return INFO;
      },
      // A command that prints a line, then works a while, then prints its last lines and ends.
      exec: async (_params: unknown, opts?: { onOutput?: (stream: "stdout" | "stderr", text: string) => void }) => {
        opts?.onOutput?.("stdout", "step 1\n");
        opts?.onOutput?.("stderr", "warning: slow\n");
        await sleep(OUTPUT_PROGRESS_MS + 300);
        opts?.onOutput?.("stdout", "step 2\n");
        return EXEC;
      },
    } as unknown as ManagerApi["workspaces"],
    shells: {} as ManagerApi["shells"],
    services: {} as ManagerApi["services"],
  };
}

async function connect(profile: "vm-run" | "workspace-core" = "vm-run") {
  const server = createServer({ profile, manager: fakeManager(), log: () => {}, progressHeartbeatMs: HEARTBEAT_MS });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "pyro-test", version: "1.0.0" });
  const logs: LoggingMessageNotification["params"][] = [];
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params));
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  return { client, logs };
}

describe("MCP progress during a long call", () => {
  it("sends progress notifications with increasing progress and a heartbeat while a phase lasts", async () => {
    const { client, logs } = await connect();
    const seen: Progress[] = [];
    const result = await client.callTool(
      { name: "vm_run", arguments: { command: "true", environment: "debian:12-base" } },
      undefined,
      { onprogress: (p) => seen.push(p) },
    );
    assert.notEqual(result.isError, true);
    assert.equal(seen[0]?.message, "pull: debian:12-base is not installed yet, so it is built now");
    assert.equal(seen[1]?.message, "pull: building environment debian:12-base: bootstrap: installing packages");
    const heartbeats = seen.filter((p) => p.message?.startsWith("pull: building environment debian:12-base"));
    assert.ok(heartbeats.length >= 3, `a heartbeat every ${HEARTBEAT_MS} ms: ${JSON.stringify(seen)}`);
    assert.match(
      heartbeats.at(-1)?.message ?? "",
      /^pull: building environment debian:12-base: bootstrap: installing packages \(\d+ s so far\)$/,
    );
    assert.equal(seen.at(-1)?.message, "run: gvisor sandbox run-0123456789");
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]!.progress > seen[i - 1]!.progress, "progress increases");
    assert.deepEqual(logs, [], "a client with a progress token gets no log messages for it");

    // Nothing follows the result: the heartbeat ends with the call.
    const count = seen.length;
    await sleep(HEARTBEAT_MS * 3);
    assert.equal(seen.length, count);
    await client.close();
  });

  it("keeps a request alive past a short client timeout when the client resets it on progress", async () => {
    const { client } = await connect();
    const call = { name: "vm_run", arguments: { command: "true" } };
    const started = Date.now();
    const result = await client.callTool(call, undefined, {
      onprogress: () => {},
      timeout: BUILD_MS / 2,
      resetTimeoutOnProgress: true,
    });
    assert.notEqual(result.isError, true);
    assert.ok(Date.now() - started >= BUILD_MS, "the call outlived its timeout");

    // The same call without the reset times out: the progress is what kept it alive.
    await assert.rejects(
      client.callTool(call, undefined, { onprogress: () => {}, timeout: BUILD_MS / 2 }),
      (err: unknown) => err instanceof McpError && err.code === ErrorCode.RequestTimeout,
    );
    await client.close();
  });

  it("sends the same text as info log messages when the client sent no progress token", async () => {
    const { client, logs } = await connect("workspace-core");
    const result = await client.callTool({ name: "workspace_create", arguments: { environment: "debian:12-build" } });
    assert.notEqual(result.isError, true);
    assert.ok(logs.every((l) => l.level === "info" && l.logger === "pyro"));
    const texts = logs.map((l) => String(l.data));
    assert.equal(texts[0], "pull: debian:12-build is not installed yet, so it is built now");
    assert.equal(texts[1], "pull: building environment debian:12-build: bootstrap: installing packages");
    assert.ok(
      texts.filter((t) => /^pull: building environment debian:12-build: .* \(\d+ s so far\)$/.test(t)).length >= 3,
      `heartbeats as log messages: ${JSON.stringify(texts)}`,
    );
    assert.equal(texts.at(-1), "boot: gvisor sandbox ws-0123456789");

    // A client that asked for warnings and worse is spared them.
    logs.length = 0;
    await client.setLoggingLevel("warning");
    await client.callTool({ name: "workspace_create", arguments: {} });
    assert.deepEqual(logs, []);
    await client.close();
  });

  it("relays a running command's output as it comes, once per stream and interval, as progress or log messages", async () => {
    const { client, logs } = await connect("workspace-core");
    const seen: Array<Progress & { at: number }> = [];
    const started = Date.now();
    const result = await client.callTool(
      { name: "workspace_exec", arguments: { workspace: "w", command: "make" } },
      undefined,
      {
        onprogress: (p) => seen.push({ ...p, at: Date.now() - started }),
      },
    );
    const ended = Date.now() - started;
    assert.notEqual(result.isError, true);
    const first = seen.find((p) => p.message === "stdout: step 1");
    assert.ok(first, `the first line as progress: ${JSON.stringify(seen)}`);
    assert.ok(first.at < ended - 200, `it came at ${first.at} ms, before the result at ${ended} ms`);
    assert.ok(seen.some((p) => p.message === "stderr: warning: slow"));
    assert.ok(!seen.some((p) => p.message?.includes("step 2")), "output of the last moment is in the result only");
    assert.equal(logs.length, 0, "no log messages for a client with a progress token");

    await client.callTool({ name: "workspace_exec", arguments: { workspace: "w", command: "make" } });
    assert.ok(
      logs.some((l) => l.data === "stdout: step 1"),
      `as log messages: ${JSON.stringify(logs)}`,
    );
    await client.close();
  });

  it("states the bound on a build in the descriptions of the tools that can start one", async () => {
    const { client } = await connect("workspace-core");
    const { tools } = await client.listTools();
    for (const name of ["vm_run", "workspace_create"]) {
      const description = tools.find((t) => t.name === name)?.description ?? "";
      assert.match(description, new RegExp(`at most ${ENVIRONMENT_BUILD_TIMEOUT_MS / 60_000} min`), name);
      assert.match(description, /pyro env pull ENV/, name);
    }
    await client.close();
  });
});
