import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { serveHttp } from "../../src/mcp/http.js";
import type { ManagerApi } from "../../src/sdk/manager.js";

const TOKEN = "t".repeat(32);
const manager = {
  run: async () => ({
    environment: "debian:12",
    stdout: "hi\n",
    stderr: "",
    exit_code: 0,
    duration_ms: 1,
    timed_out: false,
    stdout_truncated: false,
    stderr_truncated: false,
    execution_mode: "gvisor",
  }),
  close: async () => {},
} as unknown as ManagerApi;

let url = "";
let port = 0;
const stop = new AbortController();
let served: Promise<void>;

before(async () => {
  await new Promise<void>((resolve) => {
    served = serveHttp({
      profile: "vm-run",
      manager,
      token: TOKEN,
      signal: stop.signal,
      onListening: (info) => {
        url = info.url;
        port = info.port;
        resolve();
      },
    });
  });
});

after(async () => {
  stop.abort();
  await served;
});

const initialize = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
};

function post(headers: Record<string, string>, body: unknown = initialize) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: JSON.stringify(body),
  });
}

describe("MCP over Streamable HTTP", () => {
  it("listens on 127.0.0.1 only, at /mcp", () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  });

  it("refuses a request without the token, or with a wrong one", async () => {
    const none = await post({});
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.equal((await post({ authorization: `Bearer ${"x".repeat(32)}` })).status, 401);
  });

  it("refuses a Host or Origin that is not this server (DNS rebinding)", async () => {
    // fetch will not send a forged Host header; node:http will, as a rebinding attacker's browser would.
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: "/mcp",
          method: "POST",
          headers: {
            host: `evil.example:${port}`,
            authorization: `Bearer ${TOKEN}`,
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify(initialize));
    });
    assert.equal(rebound, 403);
    assert.equal((await post({ authorization: `Bearer ${TOKEN}`, origin: "http://evil.example" })).status, 403);
  });

  it("with the token, a real MCP client lists and calls the tools", async () => {
    const client = new Client({ name: "pyro-http-test", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { authorization: `Bearer ${TOKEN}` } },
      }),
    );
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      ["vm_run"],
    );
    const result = await client.callTool({ name: "vm_run", arguments: { command: "echo hi" } });
    assert.equal((result.structuredContent as { stdout: string }).stdout, "hi\n");
    await client.close();
  });
});
