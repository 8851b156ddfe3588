// The guest protocol's table (AGENT_OPS) as the host meets it: every reply an agent sends is checked
// against the op's result schema, and a malformed one is AGENT_PROTOCOL_ERROR naming the op and field.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { callAgent } from "../../src/channel/agent-ops.js";
import { Channel, type Handler } from "../../src/channel/channel.js";
import { memoryDuplexPair } from "../../src/channel/memory.js";
import { callOp, serveOps } from "../../src/channel/ops.js";
import {
  AGENT_OPS,
  AgentOp,
  type AgentOpName,
  FileOp,
  GuestOp,
  ServiceOp,
  ShellOp,
  TarOp,
} from "../../src/channel/protocol.js";
import { PyroError } from "../../src/contract/errors.js";
import { SUPERVISOR_OPS } from "../../src/supervisor/protocol.js";

const shell = {
  shell_id: "s1",
  pid: 12,
  state: "running",
  exit_code: null,
  cwd: "/workspace",
  cols: 80,
  rows: 24,
  started_at: "2026-12-06T00:00:00.000Z",
};
const service = {
  service_name: "web",
  state: "ready",
  pid: 40,
  argv: ["python3", "-m", "http.server"],
  cwd: "/workspace",
  started_at: "2026-12-06T00:00:00.000Z",
  ready_at: "2026-12-06T00:00:01.000Z",
  ended_at: null,
  exit_code: null,
  readiness: { type: "tcp", host: "127.0.0.1", port: 8000 },
  reason: null,
};

/** For each op: params a caller may send, and a reply a well-behaved agent gives. */
const SAMPLES: { [K in AgentOpName]: { params: unknown; reply: Record<string, unknown> } } = {
  [AgentOp.INFO]: { params: {}, reply: { agent_version: "0.1.0", kernel_release: "4.4.0", pid: 1, uptime_ms: 5 } },
  [AgentOp.EXEC]: {
    params: { argv: ["true"], cwd: "/workspace", timeout_ms: 1000, max_output_bytes: 100 },
    reply: {
      exit_code: 0,
      signal: null,
      timed_out: false,
      stdout_truncated: false,
      stderr_truncated: false,
      duration_ms: 3,
    },
  },
  [AgentOp.EXEC_CANCEL]: { params: { exec_id: "e1" }, reply: { found: true } },
  [AgentOp.TRUST]: { params: { pem: "-----BEGIN CERTIFICATE-----" }, reply: { certificates: 1, bundle: "/etc/x.crt" } },
  [GuestOp.SETUP]: {
    params: { entropy: "AAAA", time_ms: 1, hostname: "ws", machine_id: "0".repeat(32) },
    reply: { crng_reseeded: true, mounted: ["/workspace"], duration_ms: 4 },
  },
  [ShellOp.OPEN]: { params: { cwd: "/workspace", cols: 80, rows: 24 }, reply: shell },
  [ShellOp.READ]: {
    params: { shell_id: "s1", cursor: 0, max_bytes: 100 },
    reply: { ...shell, history_start: 0, cursor: 0, next_cursor: 5, truncated: false },
  },
  [ShellOp.WRITE]: { params: { shell_id: "s1", input: "ls\r" }, reply: { shell_id: "s1", bytes_written: 3 } },
  [ShellOp.SIGNAL]: { params: { shell_id: "s1", signal: "INT" }, reply: shell },
  [ShellOp.CLOSE]: { params: { shell_id: "s1" }, reply: { ...shell, state: "closed" } },
  [ShellOp.LIST]: { params: {}, reply: { shells: [shell] } },
  [ServiceOp.START]: {
    params: {
      name: "web",
      argv: ["python3", "-m", "http.server"],
      cwd: "/workspace",
      ready_timeout_ms: 1000,
      ready_interval_ms: 100,
    },
    reply: service,
  },
  [ServiceOp.LIST]: { params: {}, reply: { services: [service] } },
  [ServiceOp.STATUS]: { params: { name: "web" }, reply: service },
  [ServiceOp.LOGS]: { params: { name: "web" }, reply: { service_name: "web", truncated: false } },
  [ServiceOp.STOP]: { params: { name: "web" }, reply: { ...service, state: "stopped" } },
  [FileOp.LIST]: {
    params: { path: "/workspace" },
    reply: {
      path: "/workspace",
      recursive: false,
      entries: [{ path: "/workspace/a", artifact_type: "file", size_bytes: 2, mode: 0o644 }],
      truncated: false,
    },
  },
  [FileOp.READ]: {
    params: { path: "/workspace/a", max_bytes: 10 },
    reply: { path: "/workspace/a", size_bytes: 2, truncated: false },
  },
  [FileOp.WRITE]: { params: { path: "/workspace/a" }, reply: { path: "/workspace/a", bytes_written: 2 } },
  [FileOp.DELETE]: { params: { path: "/workspace/a" }, reply: { path: "/workspace/a", deleted: true } },
  [FileOp.MKDIR]: { params: { path: "/workspace/d" }, reply: { path: "/workspace/d" } },
  [FileOp.TREE]: {
    params: { path: "/workspace" },
    reply: { entries: [{ path: "a", type: "file", mode: 0o644, size: 2, sha256: "ab" }] },
  },
  [FileOp.MERGE]: {
    params: { staged: ".pyro-push-0a1b", dest: "/workspace/src" },
    reply: { path: "/workspace/src" },
  },
  [TarOp.EXPORT]: {
    params: { path: "/workspace" },
    reply: { artifact_type: "directory", entry_count: 3, bytes: 4096, skipped: [] },
  },
  [TarOp.IMPORT]: { params: { dest: "/workspace" }, reply: { entry_count: 3, bytes_written: 10 } },
};

/** A channel pair whose agent answers every op with `reply(op)`. */
function agentAnswering(reply: (op: AgentOpName) => unknown) {
  const [a, b] = memoryDuplexPair();
  const seen: string[] = [];
  const handlers: Record<string, Handler> = Object.fromEntries(
    Object.keys(AGENT_OPS).map((op) => [
      op,
      async () => {
        seen.push(op);
        return reply(op as AgentOpName);
      },
    ]),
  );
  new Channel(b, { role: "server", hello: { name: "test-agent", version: "1", capabilities: [] }, handlers });
  const host = new Channel(a, { role: "client", hello: { name: "test-host", version: "1", capabilities: [] } });
  return { host, seen };
}

/** Every way one field of a good reply can be wrong: gone, or of another type. */
function spoilings(reply: Record<string, unknown>): Array<{ field: string; bad: Record<string, unknown> }> {
  const out: Array<{ field: string; bad: Record<string, unknown> }> = [];
  for (const field of Object.keys(reply)) {
    const value = reply[field];
    const { [field]: _gone, ...without } = reply;
    // null is a valid value for nullable fields and absence for optional ones: those get a wrong type only.
    if (value !== null && !isOptional(field)) out.push({ field, bad: without });
    const wrong = value === null ? { wrong: true } : typeof value === "number" ? "7" : 7;
    out.push({ field, bad: { ...reply, [field]: wrong } });
  }
  return out;
}

const OPTIONAL_FIELDS = new Set(["skipped", "skipped_more", "cancelled"]);
const isOptional = (field: string) => OPTIONAL_FIELDS.has(field);

describe("guest protocol table", () => {
  it("lists every operation the constants name, and the samples cover the table", () => {
    const named = [AgentOp, GuestOp, ShellOp, ServiceOp, FileOp, TarOp].flatMap((group) => Object.values(group));
    assert.deepEqual(Object.keys(AGENT_OPS).sort(), [...named].sort());
    assert.deepEqual(Object.keys(SAMPLES).sort(), Object.keys(AGENT_OPS).sort());
  });

  it("passes a well-formed reply for every op", async () => {
    const { host } = agentAnswering((op) => SAMPLES[op].reply);
    for (const op of Object.keys(AGENT_OPS) as AgentOpName[]) {
      const result = await callAgent(host, op, SAMPLES[op].params as never);
      assert.equal(typeof result, "object", op);
    }
    host.close();
  });

  it("turns every malformed reply of every op into AGENT_PROTOCOL_ERROR naming the op and the field", async () => {
    let bad: Record<string, unknown> = {};
    const { host } = agentAnswering(() => bad);
    let cases = 0;
    for (const op of Object.keys(AGENT_OPS) as AgentOpName[]) {
      for (const spoiled of [
        { field: "(reply)", bad: null },
        { field: "(reply)", bad: "ok" },
        ...spoilings(SAMPLES[op].reply),
      ]) {
        bad = spoiled.bad as Record<string, unknown>;
        await assert.rejects(
          callAgent(host, op, SAMPLES[op].params as never),
          (err: unknown) => {
            assert.ok(err instanceof PyroError, `${op}: ${String(err)}`);
            assert.equal(err.code, "AGENT_PROTOCOL_ERROR", `${op} ${spoiled.field}: ${err.message}`);
            assert.match(err.message, new RegExp(`reply to ${op.replace(".", "\\.")} is malformed`));
            if (spoiled.field !== "(reply)") assert.ok(err.message.includes(spoiled.field), err.message);
            return true;
          },
          `${op} accepted a reply with ${spoiled.field} spoiled: ${JSON.stringify(spoiled.bad)}`,
        );
        cases++;
      }
    }
    assert.ok(cases > 100, `only ${cases} malformed replies tried`);
    host.close();
  });

  it("refuses bad params before sending them, naming the field", async () => {
    const { host, seen } = agentAnswering((op) => SAMPLES[op].reply);
    await assert.rejects(callAgent(host, FileOp.READ, { path: "/workspace/a", max_bytes: -1 }), (err: unknown) => {
      assert.ok(err instanceof PyroError);
      assert.equal(err.code, "INVALID_ARGUMENT");
      assert.match(err.message, /file\.read.*max_bytes/);
      return true;
    });
    assert.deepEqual(seen, []);
    host.close();
  });

  it("checks the supervisor's own operations the same way, on both sides", async () => {
    const [a, b] = memoryDuplexPair();
    let reply: unknown = {};
    const handlers = Object.fromEntries(Object.keys(SUPERVISOR_OPS).map((name) => [name, async () => reply]));
    new Channel(b, {
      role: "server",
      hello: { name: "test-supervisor", version: "1", capabilities: [] },
      handlers: serveOps(SUPERVISOR_OPS, handlers),
    });
    const host = new Channel(a, { role: "client", hello: { name: "test-host", version: "1", capabilities: [] } });
    const peer = { name: "the sandbox supervisor", fix: "restart it" };
    for (const name of Object.keys(SUPERVISOR_OPS) as Array<keyof typeof SUPERVISOR_OPS>) {
      const params = name === "supervisor.publish" ? { owner: "web", ports: [{ host_port: 0, guest_port: 80 }] } : {};
      const fixed = name === "supervisor.unpublish" ? { owner: "web" } : params;
      await assert.rejects(callOp(SUPERVISOR_OPS, peer, host, name, fixed as never), (err: unknown) => {
        assert.ok(err instanceof PyroError);
        assert.equal(err.code, "AGENT_PROTOCOL_ERROR", `${name}: ${err.message}`);
        assert.match(
          err.message,
          new RegExp(`^the sandbox supervisor's reply to ${name.replace(".", "\\.")} is malformed`),
        );
        return true;
      });
    }
    reply = { ports: [{ owner: "web", host: "127.0.0.1", host_port: 40000, guest_port: 80 }] };
    assert.equal((await callOp(SUPERVISOR_OPS, peer, host, "supervisor.ports", {})).ports[0]?.host_port, 40000);
    // The server refuses bad params before its handler runs: a port that is not a port.
    await assert.rejects(
      host.request("supervisor.publish", { owner: "web", ports: [{ host_port: 0, guest_port: 0 }] }),
      (err: unknown) => err instanceof PyroError && err.code === "INVALID_ARGUMENT" && /guest_port/.test(err.message),
    );
    host.close();
  });
});
