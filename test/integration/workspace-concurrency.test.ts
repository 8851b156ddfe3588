// An MCP server and CLI processes working on the same workspace at the same time: every call
// succeeds, and the command history has one entry per exec with contiguous sequence numbers.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, it } from "node:test";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { PACKAGE_ROOT } from "../../src/version.js";
import { removeStateDir } from "../helpers/state-dir.js";

const run = promisify(execFile);
const CLI = join(PACKAGE_ROOT, "dist", "bin", "pyro.mjs");
const stateDir = mkdtempSync(join(tmpdir(), "pyro-test-conc-"));
const env = { ...process.env, PYRO_STATE_DIR: stateDir };
const client = new Client({ name: "pyro-test", version: "1" });

after(async () => {
  await run(process.execPath, [CLI, "workspace", "delete", "shared"], { env }).catch(() => {});
  await client.close();
  removeStateDir(stateDir);
});

it("an MCP server and CLI calls share one workspace at the same time", async () => {
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [CLI, "mcp", "serve"], env, stderr: "ignore" }),
  );
  const created = await client.callTool({
    name: "workspace_create",
    arguments: { environment: "debian:12", name: "shared" },
  });
  assert.equal(created.isError, undefined, JSON.stringify(created.content));

  const viaMcp = Array.from({ length: 5 }, (_, i) =>
    client.callTool({ name: "workspace_exec", arguments: { workspace: "shared", command: `echo mcp${i} >> log.txt` } }),
  );
  const viaCli = Array.from({ length: 5 }, (_, i) =>
    run(process.execPath, [CLI, "workspace", "exec", "shared", "--json", "--", "sh", "-c", `echo cli${i} >> log.txt`], {
      env,
    }),
  );
  const [mcpResults, cliResults] = await Promise.all([Promise.all(viaMcp), Promise.all(viaCli)]);
  for (const r of mcpResults) assert.equal((r.structuredContent as { exit_code: number }).exit_code, 0);
  for (const r of cliResults) assert.equal((JSON.parse(r.stdout) as { exit_code: number }).exit_code, 0);

  const { stdout } = await run(process.execPath, [CLI, "workspace", "logs", "shared", "--json"], { env });
  const logs = JSON.parse(stdout) as { commands: Array<{ sequence: number }> };
  assert.deepEqual(
    logs.commands.map((c) => c.sequence).sort((a, b) => a - b),
    Array.from({ length: 10 }, (_, i) => i + 1),
  );
  const content = await client.callTool({
    name: "workspace_file_read",
    arguments: { workspace: "shared", path: "log.txt" },
  });
  const lines = (content.structuredContent as { content: string }).content.trim().split("\n").sort();
  assert.deepEqual(lines, [
    ...Array.from({ length: 5 }, (_, i) => `cli${i}`),
    ...Array.from({ length: 5 }, (_, i) => `mcp${i}`),
  ]);
});
