import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { McpMode, MODES } from "../../src/mcp/modes.js";
import { PROFILE_TOOLS } from "../../src/mcp/profiles.js";
import { createServer } from "../../src/mcp/server.js";
import type { ManagerApi } from "../../src/sdk/manager.js";

async function listTools(opts: { mode?: McpMode; profile?: "vm-run" | "workspace-core" | "workspace-full" }) {
  const server = createServer({ ...opts, manager: { close: async () => {} } as unknown as ManagerApi, log: () => {} });
  const [a, b] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "t", version: "1" });
  await Promise.all([server.connect(b), client.connect(a)]);
  const { tools } = await client.listTools();
  const instructions = client.getInstructions() ?? "";
  await client.close();
  return { tools, instructions };
}

describe("MCP modes", () => {
  it("a tool outside the mode is refused naming the mode, not the profile behind it", async () => {
    const server = createServer({
      mode: "inspect",
      manager: { close: async () => {} } as unknown as ManagerApi,
      log: () => {},
    });
    const [a, b] = InMemoryTransport.createLinkedPair();
    const client = new Client({ name: "t", version: "1" });
    await Promise.all([server.connect(b), client.connect(a)]);
    await assert.rejects(
      client.callTool({ name: "workspace_file_write", arguments: {} }),
      /Unknown tool workspace_file_write: mode inspect \(pyro mcp serve --mode inspect\) offers /,
    );
    await client.close();
  });

  for (const mode of McpMode.options) {
    it(`${mode}: a non-empty subset of workspace-full, framed for the use case`, async () => {
      const { tools, instructions } = await listTools({ mode });
      const names = tools.map((t) => t.name);
      assert.ok(names.length > 0);
      for (const name of names) assert.ok(PROFILE_TOOLS["workspace-full"].includes(name as never), name);
      assert.deepEqual(names.sort(), [...MODES[mode].tools].sort());
      for (const tool of tools) assert.ok(tool.description?.startsWith(MODES[mode].framing), tool.name);
      assert.ok(instructions.includes(`Mode ${mode}`));
    });
  }

  it("inspect is offline and read-mostly: no network_policy or secrets, no file writes or patches", async () => {
    const { tools } = await listTools({ mode: "inspect" });
    const create = tools.find((t) => t.name === "workspace_create");
    assert.ok(create);
    for (const networkOrHost of [
      "network_policy",
      "allow_presets",
      "allow_hosts",
      "host_ca",
      "host_proxy",
      "ca_files",
      "secrets",
    ]) {
      assert.equal(networkOrHost in (create.inputSchema.properties ?? {}), false, networkOrHost);
    }
    const names = tools.map((t) => t.name);
    for (const writer of ["workspace_file_write", "workspace_patch_apply", "workspace_sync_push"]) {
      assert.equal(names.includes(writer), false, writer);
    }
  });

  it("a mode narrows an explicit profile further", async () => {
    const { tools } = await listTools({ mode: "cold-start", profile: "workspace-core" });
    const names = tools.map((t) => t.name);
    assert.ok(names.includes("workspace_exec"));
    assert.equal(names.includes("service_start"), false, "service tools are not in workspace-core");
  });

  it("refuses an unknown mode", () => {
    assert.throws(() => createServer({ mode: "everything" as McpMode }));
  });
});
