// The MCP face against a fake manager, through a real SDK Client over the in-memory transport:
// tools per profile, schemas and annotations, results, protocol errors for bad arguments and
// isError for failed operations.
import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { PyroError } from "../../src/contract/errors.js";
import type { RunRequest, RunResult } from "../../src/contract/schemas.js";
import { McpProfile, PROFILE_TOOLS } from "../../src/mcp/profiles.js";
import { createServer } from "../../src/mcp/server.js";
import { TOOLS } from "../../src/mcp/tools/index.js";
import type { ManagerApi } from "../../src/sdk/manager.js";

const RESULT: RunResult = {
  environment: "debian:12",
  stdout: "hi\n",
  stderr: "",
  exit_code: 3,
  duration_ms: 40,
  timed_out: false,
  stdout_truncated: false,
  stderr_truncated: false,
  execution_mode: "gvisor",
};

function unexpected(): never {
  throw new Error("not expected in this test");
}

function fakeManager(run: ManagerApi["run"] = async () => RESULT): ManagerApi & { runs: RunRequest[] } {
  const runs: RunRequest[] = [];
  return {
    runs,
    run: (params, opts) => {
      runs.push(params as RunRequest);
      return run(params, opts);
    },
    listEnvironments: async () => ({
      catalog_version: "1",
      count: 1,
      environments: [{ name: "debian:12", description: "Debian", installed: true, version: "1", packages: ["git"] }],
    }),
    pullEnvironment: async () => unexpected(),
    inspectEnvironment: async () => unexpected(),
    pruneEnvironments: async () => unexpected(),
    doctor: async () => unexpected(),
    close: async () => {},
    // The workspace tools have their own suite (workspace-faces.test.ts).
    workspaces: {} as ManagerApi["workspaces"],
    prepare: async () => {
      throw new Error("not expected in this test");
    },
    shells: {} as ManagerApi["shells"],
    services: {} as ManagerApi["services"],
  };
}

async function connect(profile: McpProfile | undefined, manager: ManagerApi = fakeManager()) {
  const log: string[] = [];
  const server = createServer({ profile, manager, log: (line) => log.push(line) });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "pyro-test", version: "1.0.0" });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  return { client, server, log };
}

describe("MCP profiles", () => {
  it("exposes vm_run alone in vm-run, and vm_list_environments only in workspace-full", async () => {
    // The full per-profile lists are asserted in workspace-faces.test.ts; here, where vm tools go.
    const expected: Record<McpProfile, string[]> = {
      "vm-run": ["vm_run"],
      "workspace-core": [...PROFILE_TOOLS["workspace-core"]].sort(),
      "workspace-full": [...PROFILE_TOOLS["workspace-full"]].sort(),
    };
    assert.ok(!expected["workspace-core"].includes("vm_list_environments"));
    assert.ok(expected["workspace-full"].includes("vm_list_environments"));
    for (const profile of McpProfile.options) {
      const { client } = await connect(profile);
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), expected[profile], profile);
      await client.close();
    }
  });

  it("defaults to workspace-core", async () => {
    const { client } = await connect(undefined);
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      [...PROFILE_TOOLS["workspace-core"]],
    );
    await client.close();
  });

  it("keeps each profile a superset of the one before, over implemented tools only", () => {
    const [vmRun, core, full] = McpProfile.options.map((p) => new Set(PROFILE_TOOLS[p]));
    for (const name of vmRun ?? []) assert.ok(core?.has(name), `${name} missing from workspace-core`);
    for (const name of core ?? []) assert.ok(full?.has(name), `${name} missing from workspace-full`);
    assert.deepEqual([...(full ?? [])].sort(), Object.keys(TOOLS).sort());
  });

  it("rejects an unknown profile", () => {
    assert.throws(() => createServer({ profile: "everything" as McpProfile, manager: fakeManager() }));
  });
});

describe("MCP tool definitions", () => {
  it("declares an output schema, a description and every annotation honestly", async () => {
    const { client } = await connect("workspace-full");
    const { tools } = await client.listTools();
    for (const tool of tools) {
      assert.equal(tool.outputSchema?.type, "object", `${tool.name} outputSchema`);
      assert.ok((tool.description ?? "").length > 100, `${tool.name} description`);
      for (const hint of ["readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"] as const) {
        assert.equal(typeof tool.annotations?.[hint], "boolean", `${tool.name} ${hint}`);
      }
    }
    const vmRun = tools.find((t) => t.name === "vm_run");
    assert.deepEqual(
      { ...vmRun?.annotations, title: undefined },
      { title: undefined, readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    );
    assert.deepEqual(vmRun?.inputSchema.required, ["command"]);
    assert.deepEqual(Object.keys(vmRun?.outputSchema?.properties ?? {}).sort(), Object.keys(RESULT).sort());
    const list = tools.find((t) => t.name === "vm_list_environments");
    assert.equal(list?.annotations?.readOnlyHint, true);
    assert.equal(list?.annotations?.idempotentHint, true);
    assert.equal(list?.annotations?.openWorldHint, false);
    await client.close();
  });
});

describe("MCP tool calls", () => {
  it("returns structuredContent and the same JSON as text; a failing command is a normal result", async () => {
    const manager = fakeManager();
    const { client } = await connect("vm-run", manager);
    const result = await client.callTool({ name: "vm_run", arguments: { command: "exit 3" } });
    assert.notEqual(result.isError, true);
    assert.deepEqual(result.structuredContent, RESULT);
    const [content] = result.content as { type: string; text: string }[];
    assert.equal(content?.type, "text");
    assert.deepEqual(JSON.parse(content?.text ?? ""), RESULT);
    assert.deepEqual(manager.runs[0], {
      environment: "debian:12",
      command: "exit 3",
      vcpu_count: 1,
      mem_mib: 1024,
      timeout_seconds: 30,
      network: false,
      engine: "auto",
    });
    await client.close();
  });

  it("lists environments", async () => {
    const { client } = await connect("workspace-full");
    const result = await client.callTool({ name: "vm_list_environments", arguments: {} });
    assert.equal((result.structuredContent as { count: number }).count, 1);
    await client.close();
  });

  it("answers invalid arguments with a protocol error naming the field, without running anything", async () => {
    const manager = fakeManager();
    const { client } = await connect("vm-run", manager);
    for (const [args, pattern] of [
      [{ command: "true", mem_mib: 64 }, /mem_mib must be ≥ 128 \(got 64\)/],
      [{}, /command is required/],
      [{ command: 42 }, /command must be a string or a list/],
      [{ command: "true", engine: "docker" }, /engine must be one of/],
    ] as const) {
      await assert.rejects(
        client.callTool({ name: "vm_run", arguments: args }),
        (err: unknown) => err instanceof McpError && err.code === ErrorCode.InvalidParams && pattern.test(err.message),
      );
    }
    assert.equal(manager.runs.length, 0);
    await client.close();
  });

  it("refuses arguments the tool does not take here, naming the profile that takes them, rather than drop them", async () => {
    const manager = fakeManager();
    const { client } = await connect("workspace-core", manager);
    for (const [name, args, pattern] of [
      [
        "workspace_create",
        { environment: "debian:12", secrets: [{ name: "TOKEN", value: "x" }] },
        /^MCP error -32602: Invalid arguments for workspace_create: secrets is not an argument of workspace_create here; profile workspace-full offers them \(pyro mcp serve --profile workspace-full\); this server runs workspace-core$/,
      ],
      [
        "vm_run",
        { command: "true", timeout: 5, cwd: "/" },
        /^MCP error -32602: Invalid arguments for vm_run: timeout, cwd are not arguments of vm_run here; it takes environment, command, .*timeout_seconds/,
      ],
    ] as const) {
      await assert.rejects(
        client.callTool({ name, arguments: args }),
        (err: unknown) => err instanceof McpError && err.code === ErrorCode.InvalidParams && pattern.test(err.message),
      );
    }
    assert.equal(manager.runs.length, 0);
    await client.close();
  });

  it("answers a tool outside the profile with a protocol error", async () => {
    const { client } = await connect("vm-run");
    await assert.rejects(
      client.callTool({ name: "vm_list_environments", arguments: {} }),
      (err: unknown) => err instanceof McpError && err.code === ErrorCode.InvalidParams,
    );
    await client.close();
  });

  it("reports a failed operation as isError with the code and what to do", async () => {
    const manager = fakeManager(async () => {
      throw new PyroError(
        "ENVIRONMENT_NOT_INSTALLED",
        "environment debian:12 is not installed; run: pyro env pull debian:12",
      );
    });
    const { client, log } = await connect("vm-run", manager);
    const result = await client.callTool({ name: "vm_run", arguments: { command: "true" } });
    assert.equal(result.isError, true);
    assert.deepEqual(result.content, [
      {
        type: "text",
        text: "ENVIRONMENT_NOT_INSTALLED: environment debian:12 is not installed; run: pyro env pull debian:12",
      },
    ]);
    assert.match(log[0] ?? "", /vm_run failed: ENVIRONMENT_NOT_INSTALLED/);
    await client.close();
  });

  it("reports an unexpected failure as an INTERNAL isError", async () => {
    const manager = fakeManager(async () => {
      throw new Error("boom");
    });
    const { client } = await connect("vm-run", manager);
    const result = await client.callTool({ name: "vm_run", arguments: { command: "true" } });
    assert.equal(result.isError, true);
    assert.match((result.content as { text: string }[])[0]?.text ?? "", /^INTERNAL: boom \(this is a bug in pyro/);
    await client.close();
  });

  it("forwards phases as progress notifications when the client asks for them", async () => {
    const manager = fakeManager(async (_params, opts) => {
      opts?.progress?.phase("boot", "gvisor sandbox");
      opts?.progress?.phase("exec");
      return RESULT;
    });
    const { client } = await connect("vm-run", manager);
    const messages: string[] = [];
    await client.callTool({ name: "vm_run", arguments: { command: "true" } }, undefined, {
      onprogress: (p) => messages.push(p.message ?? ""),
    });
    assert.deepEqual(messages, ["boot: gvisor sandbox", "exec"]);
    await client.close();
  });

  it("aborts the run when the client cancels the call", { timeout: 10_000 }, async () => {
    let signal: AbortSignal | undefined;
    const manager = fakeManager(
      (_params, opts) =>
        new Promise((_, reject) => {
          signal = opts?.signal;
          signal?.addEventListener("abort", () => reject(new PyroError("CHANNEL_CLOSED", "cancelled")));
        }),
    );
    const { client } = await connect("vm-run", manager);
    const controller = new AbortController();
    const call = client.callTool({ name: "vm_run", arguments: { command: "sleep 30" } }, undefined, {
      signal: controller.signal,
    });
    while (!signal) await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    await assert.rejects(call);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(signal.aborted, true);
    await client.close();
  });
});

describe("TTL reaping inside a running MCP server", () => {
  it("asks the runtime to stop expired workspaces every 30 s, and stops asking once closed", async () => {
    mock.timers.enable({ apis: ["setInterval"] });
    try {
      let reaped = 0;
      const manager = {
        ...fakeManager(),
        reapExpired: async () => {
          reaped++;
          return ["ws-expired"];
        },
      };
      const { client, log } = await connect("workspace-core", manager);
      mock.timers.tick(29_000);
      assert.equal(reaped, 0);
      mock.timers.tick(1_000);
      await new Promise((r) => setImmediate(r));
      assert.equal(reaped, 1);
      await new Promise((r) => setImmediate(r));
      assert.ok(
        log.some((l) => l.includes("stopped expired workspaces: ws-expired")),
        log.join("\n"),
      );
      await client.close();
      mock.timers.tick(60_000);
      assert.equal(reaped, 1);
    } finally {
      mock.timers.reset();
    }
  });
});
