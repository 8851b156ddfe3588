import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import type { ProgressReporter } from "../../src/manager/manager.js";
import { REPLAY_LIMITS, SessionEventStore } from "../../src/mcp/event-store.js";
import { serveHttp } from "../../src/mcp/http.js";
import type { ManagerApi } from "../../src/sdk/manager.js";

const TOKEN = "t".repeat(32);
const AUTH = { authorization: `Bearer ${TOKEN}` };

function deferred() {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** `vm_run` of the command "slow" reports a phase, then waits for the test to release it. */
let slow = deferred();
const manager = {
  run: async (args: { command: unknown }, options: { progress?: ProgressReporter } = {}) => {
    if (args.command === "slow") {
      options.progress?.phase("booting", "debian:12");
      await slow.promise;
    }
    return {
      environment: "debian:12",
      stdout: "hi\n",
      stderr: "",
      exit_code: 0,
      duration_ms: 1,
      timed_out: false,
      stdout_truncated: false,
      stderr_truncated: false,
      execution_mode: "gvisor",
    };
  },
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

function post(headers: Record<string, string>, body: unknown = initialize, signal?: AbortSignal) {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

function get(headers: Record<string, string>) {
  return fetch(url, { headers: { accept: "text/event-stream", ...headers } });
}

/** Initializes a session as a client of `protocolVersion` would; returns the headers that name it. */
async function openSession(protocolVersion = "2025-11-25"): Promise<Record<string, string>> {
  const init = await post(AUTH, { ...initialize, params: { ...initialize.params, protocolVersion } });
  assert.equal(init.status, 200);
  await init.text();
  const headers = {
    ...AUTH,
    "mcp-session-id": init.headers.get("mcp-session-id") ?? "",
    "mcp-protocol-version": protocolVersion,
  };
  const initialized = await post(headers, { jsonrpc: "2.0", method: "notifications/initialized" });
  assert.equal(initialized.status, 202, "a notification is accepted with 202");
  assert.equal(await initialized.text(), "");
  return headers;
}

function callSlow(id: number) {
  return {
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name: "vm_run", arguments: { command: "slow" }, _meta: { progressToken: id } },
  };
}

/** Reads an SSE body until `enough` holds for the text read so far (or the body ends). */
async function readUntil(body: ReadableStream<Uint8Array> | null, enough: (text: string) => boolean) {
  assert.ok(body);
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!enough(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text;
}

/** The `id:` of the SSE event whose data contains `marker`. */
function idOfEventWith(text: string, marker: string): string | undefined {
  const event = text.split("\n\n").find((block) => block.includes(marker));
  return event === undefined ? undefined : /^id: (.+)$/m.exec(event)?.[1];
}

/**
 * A fetch for the SDK client that drops the first tools/call response stream right after the event
 * carrying `notifications/progress`, as a lost connection would, and logs every request it makes.
 */
function droppingFetch(log: { method: string; lastEventId: string | null }[], onDrop: () => void) {
  let dropped = false;
  return async (input: string | URL, init?: RequestInit): Promise<Response> => {
    const method = init?.method ?? "GET";
    log.push({ method, lastEventId: new Headers(init?.headers).get("last-event-id") });
    const response = await fetch(input, init);
    if (dropped || method !== "POST" || !String(init?.body).includes('"tools/call"')) return response;
    dropped = true;
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let seen = "";
    let cutNext = false;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (cutNext) {
          // Cancelling the real body closes the connection, so the server sees the client go.
          await reader.cancel();
          controller.error(new TypeError("terminated: connection lost"));
          onDrop();
          return;
        }
        const { value, done } = await reader.read();
        if (done) return controller.close();
        controller.enqueue(value);
        seen += new TextDecoder().decode(value);
        cutNext = seen.includes("notifications/progress");
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
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

describe("MCP over Streamable HTTP: resumable streams", () => {
  it("a tool call whose stream drops is resumed by the SDK client with Last-Event-ID and returns", async () => {
    slow = deferred();
    const requests: { method: string; lastEventId: string | null }[] = [];
    const drop = deferred();
    const client = new Client({ name: "pyro-http-test", version: "1" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: AUTH },
        fetch: droppingFetch(requests, drop.resolve),
      }),
    );
    const progress: string[] = [];
    const tokens: string[] = [];
    const call = client.callTool({ name: "vm_run", arguments: { command: "slow" } }, undefined, {
      onprogress: (p) => progress.push(p.message ?? ""),
      onresumptiontoken: (token) => tokens.push(token),
    });
    await drop.promise;
    // The result is sent while the client is away: only the replay can bring it.
    slow.resolve();
    const result = await call;
    assert.equal((result.structuredContent as { stdout: string }).stdout, "hi\n");
    assert.deepEqual(progress, ["booting: debian:12"], "the progress event is not delivered twice");
    const resumes = requests.filter((r) => r.method === "GET" && r.lastEventId !== null);
    assert.equal(resumes.length, 1);
    // The priming event's id, then the progress event's: the client resumed after the last one it had.
    assert.equal(resumes[0]?.lastEventId, tokens[1]);
    await client.close();
  });

  it("a client that restarts resumes the call with its saved resumption token", async () => {
    slow = deferred();
    const drop = deferred();
    const first = new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: AUTH },
      fetch: droppingFetch([], drop.resolve),
      // This client gives up at once, as a process that died would.
      reconnectionOptions: {
        maxRetries: 0,
        initialReconnectionDelay: 1,
        maxReconnectionDelay: 1,
        reconnectionDelayGrowFactor: 1,
      },
    });
    const gone = new Client({ name: "pyro-http-test", version: "1" });
    await gone.connect(first);
    let saved = "";
    const abandoned = gone
      .callTool({ name: "vm_run", arguments: { command: "slow" } }, undefined, {
        // Asking for progress makes the server send an event mid-call, where the stream drops.
        onprogress: () => {},
        onresumptiontoken: (token) => {
          saved = token;
        },
      })
      .catch((err: Error) => err);
    await drop.promise;
    await gone.close();
    assert.ok((await abandoned) instanceof Error);

    const restarted = new Client({ name: "pyro-http-test", version: "1" });
    await restarted.connect(
      new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: AUTH }, sessionId: first.sessionId }),
    );
    const resumed = restarted.request(
      { method: "tools/call", params: { name: "vm_run", arguments: { command: "slow" } } },
      CallToolResultSchema,
      { resumptionToken: saved },
    );
    slow.resolve();
    const result = await resumed;
    assert.equal((result.structuredContent as { stdout: string }).stdout, "hi\n");
    await restarted.close();
  });

  it("every SSE event has an id, and the first tells the client when to reconnect (retry)", async () => {
    slow = deferred();
    const session = await openSession();
    const call = await post(session, callSlow(2));
    assert.equal(call.status, 200);
    assert.match(call.headers.get("content-type") ?? "", /^text\/event-stream/);
    slow.resolve();
    const text = await call.text();
    const events = text.split("\n\n").filter((block) => block.trim() !== "");
    assert.match(events[0] ?? "", /^id: \S+\nretry: 1000\ndata: $/, "a priming event with an id and retry");
    assert.equal(events.length, 3, "priming, progress, result");
    const ids = events.map((event) => /^id: (\S+)$/m.exec(event)?.[1]);
    assert.ok(ids.every((id) => id !== undefined));
    assert.equal(new Set(ids).size, ids.length, "ids are unique");
    assert.match(text, /"stdout":"hi\\n"/);
  });

  it("a 2025-06-18 client gets no priming event, which it could not read, but ids on every message", async () => {
    slow = deferred();
    const session = await openSession("2025-06-18");
    const call = await post(session, callSlow(2));
    slow.resolve();
    const events = (await call.text()).split("\n\n").filter((block) => block.trim() !== "");
    assert.equal(events.length, 2, "progress, result");
    for (const event of events) assert.match(event, /^id: \S+\ndata: \{/m);
  });

  it("GET with Last-Event-ID replays what the dropped stream missed, then carries it on", async () => {
    slow = deferred();
    const session = await openSession();
    const gone = new AbortController();
    const call = await post(session, callSlow(3), gone.signal);
    const received = await readUntil(call.body, (t) => t.includes("notifications/progress"));
    const primingId = /^id: (\S+)\nretry:/m.exec(received)?.[1];
    const progressId = idOfEventWith(received, "notifications/progress");
    assert.ok(primingId && progressId);
    gone.abort();

    // Resume from the priming event at once, before the server may have noticed the drop: the
    // progress event is replayed with its own id.
    const resumed = await get({ ...session, "last-event-id": primingId });
    assert.equal(resumed.status, 200);
    assert.match(resumed.headers.get("content-type") ?? "", /^text\/event-stream/);
    const reader = resumed.body;
    let text = await readUntil(reader, (t) => t.includes("notifications/progress"));
    assert.equal(idOfEventWith(text, "notifications/progress"), progressId);
    // Then the stream goes on: the result, sent after the resume, arrives on it.
    slow.resolve();
    text += await readUntil(reader, (t) => t.includes('"result"'));
    assert.match(text, /"id":3/);
    assert.match(text, /"stdout":"hi\\n"/);
  });

  it("refuses a Last-Event-ID that is not this session's, saying what to do", async () => {
    const session = await openSession();
    const response = await get({ ...session, "last-event-id": "nonsense:99" });
    assert.equal(response.status, 400);
    const { error } = (await response.json()) as { error: { message: string } };
    assert.match(error.message, /Last-Event-ID nonsense:99 is not an event of this session.*without Last-Event-ID/);
  });

  it("the event store keeps the newest events within its caps, and says when an id is too old", async () => {
    assert.deepEqual(REPLAY_LIMITS, { maxEvents: 1000, maxBytes: 16 * 1024 * 1024 });
    const store = new SessionEventStore({ maxEvents: 3, maxBytes: 1000 });
    const note = (n: number) => ({ jsonrpc: "2.0" as const, method: "notifications/message", params: { n } });
    const a = await store.storeEvent("s", note(1));
    const b = await store.storeEvent("s", note(2));
    await store.storeEvent("other", note(3));
    const d = await store.storeEvent("s", note(4));
    // Four events against a cap of three: the oldest went.
    assert.match(store.whyNotReplayable(a) ?? "", /too old.*last 3 events.*send the request again/);
    const replayed: unknown[] = [];
    const stream = await store.replayEventsAfter(b, { send: async (_id, message) => void replayed.push(message) });
    assert.equal(stream, "s");
    assert.deepEqual(replayed, [note(4)], "only this stream's events after the given one");
    // One message over the byte cap pushes everything else out but is itself kept.
    const big = await store.storeEvent("s", { ...note(5), params: { n: "x".repeat(2000) } });
    assert.match(store.whyNotReplayable(d) ?? "", /too old/);
    assert.equal(store.whyNotReplayable(big), undefined);
    await assert.rejects(store.replayEventsAfter(d, { send: async () => {} }), /too old/);
    store.clear();
    assert.match(store.whyNotReplayable(big) ?? "", /not an event of this session/);
    await store.storeEvent("s", note(6));
    assert.match(store.whyNotReplayable("s:6") ?? "", /not an event/, "nothing is kept after the session ends");
  });
});

describe("MCP over Streamable HTTP: the rest of the transport", () => {
  it("GET opens the session's stream for server messages; it needs Accept: text/event-stream", async () => {
    const session = await openSession();
    const stream = await get(session);
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get("content-type") ?? "", /^text\/event-stream/);
    assert.equal((await get(session)).status, 409, "one such stream per session");
    await stream.body?.cancel();
    const refused = await fetch(url, { headers: { ...session, accept: "application/json" } });
    assert.equal(refused.status, 406);
  });

  it("a POST must accept JSON and SSE and send JSON; no session is made otherwise", async () => {
    const notAccepted = await post({ ...AUTH, accept: "application/json" });
    assert.equal(notAccepted.status, 406);
    assert.equal(notAccepted.headers.get("mcp-session-id"), null);
    const notJson = await post({ ...AUTH, "content-type": "text/plain" });
    assert.equal(notJson.status, 415);
    assert.equal(notJson.headers.get("mcp-session-id"), null);
  });

  it("DELETE ends the session; after it the session id gets 404", async () => {
    const session = await openSession();
    const deleted = await fetch(url, { method: "DELETE", headers: session });
    assert.equal(deleted.status, 200);
    const reused = await post(session, { jsonrpc: "2.0", id: 4, method: "tools/list" });
    assert.equal(reused.status, 404);
    const { error } = (await reused.json()) as { error: { message: string } };
    assert.match(error.message, /unknown or ended session; send initialize without Mcp-Session-Id/);
    assert.equal((await get(session)).status, 404);
    assert.equal((await fetch(url, { method: "DELETE", headers: session })).status, 404);
  });

  it("a request without a session id that is not initialize gets 400", async () => {
    const response = await post(AUTH, { jsonrpc: "2.0", id: 5, method: "tools/list" });
    assert.equal(response.status, 400);
    const { error } = (await response.json()) as { error: { message: string } };
    assert.match(error.message, /missing Mcp-Session-Id header: POST initialize first/);
    assert.equal((await get(AUTH)).status, 400);
  });

  it("an unsupported MCP-Protocol-Version gets 400", async () => {
    const session = await openSession();
    const response = await post(
      { ...session, "mcp-protocol-version": "1999-01-01" },
      { jsonrpc: "2.0", id: 6, method: "tools/list" },
    );
    assert.equal(response.status, 400);
    const { error } = (await response.json()) as { error: { message: string } };
    assert.match(error.message, /Unsupported protocol version: 1999-01-01/);
  });

  it("a method other than GET, POST and DELETE gets 405 with Allow", async () => {
    const session = await openSession();
    for (const headers of [AUTH, session]) {
      const response = await fetch(url, { method: "PUT", headers, body: "{}" });
      assert.equal(response.status, 405);
      assert.equal(response.headers.get("allow"), "GET, POST, DELETE");
      const { error } = (await response.json()) as { error: { message: string } };
      assert.match(error.message, /method PUT not allowed; the MCP endpoint takes GET, POST, DELETE/);
    }
  });

  it("a body over 16 MiB gets 413 with a JSON-RPC error; one that is not JSON gets a parse error", async () => {
    const session = await openSession();
    const huge = { jsonrpc: "2.0", id: 7, method: "tools/list", params: { pad: "x".repeat(16 * 1024 * 1024) } };
    const tooLarge = await post(session, huge);
    assert.equal(tooLarge.status, 413);
    const body = (await tooLarge.json()) as { jsonrpc: string; id: null; error: { code: number; message: string } };
    assert.equal(body.jsonrpc, "2.0");
    assert.equal(body.id, null);
    assert.equal(body.error.code, -32600);
    assert.match(body.error.message, /request body over 16 MiB/);
    const notJson = await post(session, "{not json");
    assert.equal(notJson.status, 400);
    assert.equal(((await notJson.json()) as { error: { code: number } }).error.code, -32700);
  });
});

describe("MCP over Streamable HTTP: sessions are bounded", () => {
  it("an initialize past maxSessions gets 503 saying what to do; idle sessions are closed and make room", async () => {
    const stopSmall = new AbortController();
    let smallUrl = "";
    const logged: string[] = [];
    const servedSmall = new Promise<void>((resolve) => {
      void serveHttp({
        profile: "vm-run",
        manager,
        token: TOKEN,
        signal: stopSmall.signal,
        sessionIdleMs: 300,
        maxSessions: 2,
        log: (line) => logged.push(line),
        onListening: (info) => {
          smallUrl = info.url;
          resolve();
        },
      });
    });
    await servedSmall;
    const init = () =>
      fetch(smallUrl, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream", ...AUTH },
        body: JSON.stringify(initialize),
      });
    try {
      const first = await init();
      assert.equal(first.status, 200);
      await first.text();
      const second = await init();
      assert.equal(second.status, 200);
      await second.text();
      const third = await init();
      assert.equal(third.status, 503);
      const { error } = (await third.json()) as { error: { message: string } };
      assert.match(error.message, /^too many open sessions \(2\); end unused ones with DELETE/);
      await new Promise((r) => setTimeout(r, 700));
      const reused = await fetch(smallUrl, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...AUTH,
          "mcp-session-id": first.headers.get("mcp-session-id") ?? "",
          "mcp-protocol-version": "2025-06-18",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
      });
      assert.equal(reused.status, 404, "the idle session was closed");
      await reused.text();
      const again = await init();
      assert.equal(again.status, 200, "room was made");
      await again.text();
      assert.ok(
        logged.some((line) => /closing session .*: idle for/.test(line)),
        logged.join("\n"),
      );
    } finally {
      stopSmall.abort();
    }
  });
});
