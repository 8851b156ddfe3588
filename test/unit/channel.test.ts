import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Channel, type Handler, PROTOCOL_VERSION } from "../../src/channel/channel.js";
import { encodeFrame, encodeJsonFrame, FrameReader, FrameType, MAX_FRAME_BYTES } from "../../src/channel/frame.js";
import { memoryDuplexPair } from "../../src/channel/memory.js";
import { PyroError } from "../../src/contract/errors.js";

function pair(handlers: Record<string, Handler>) {
  const [a, b] = memoryDuplexPair();
  const server = new Channel(b, {
    role: "server",
    hello: { name: "test-agent", version: "1", capabilities: ["x"] },
    handlers,
  });
  const client = new Channel(a, { role: "client", hello: { name: "test-host", version: "1", capabilities: [] } });
  return { client, server };
}

describe("FrameReader", () => {
  it("reassembles frames split at every byte boundary", () => {
    const frames = Buffer.concat([
      encodeJsonFrame(FrameType.REQUEST, 7, { op: "x" }),
      encodeFrame(FrameType.DATA, 7, Buffer.from([0, 1, 2, 255]), 2),
    ]);
    const reader = new FrameReader();
    const out = [];
    for (const byte of frames) out.push(...reader.push(Buffer.from([byte])));
    assert.equal(out.length, 2);
    assert.equal(out[0]!.id, 7);
    assert.deepEqual(JSON.parse(out[0]!.payload.toString()), { op: "x" });
    assert.deepEqual([...out[1]!.payload], [0, 1, 2, 255]);
    assert.equal(out[1]!.stream, 2);
  });

  it("refuses a frame larger than the maximum before buffering it", () => {
    const header = Buffer.alloc(10);
    header.writeUInt32BE(MAX_FRAME_BYTES + 1, 0);
    header.writeUInt8(FrameType.DATA, 4);
    assert.throws(
      () => new FrameReader().push(header),
      (e: PyroError) => e.code === "FRAME_TOO_LARGE",
    );
  });

  it("refuses an unknown frame type", () => {
    const header = Buffer.alloc(10);
    header.writeUInt8(99, 4);
    assert.throws(
      () => new FrameReader().push(header),
      (e: PyroError) => e.code === "AGENT_PROTOCOL_ERROR",
    );
  });
});

describe("Channel", () => {
  it("exchanges hellos with version and capabilities", async () => {
    const { client } = pair({});
    const hello = await client.ready;
    assert.equal(hello.name, "test-agent");
    assert.equal(hello.protocol, PROTOCOL_VERSION);
    assert.deepEqual(hello.capabilities, ["x"]);
  });

  it("multiplexes concurrent requests and streams binary data before the response", async () => {
    const { client } = pair({
      echo: async (params, ctx) => {
        const { n } = params as { n: number };
        await new Promise((r) => setTimeout(r, 30 - n * 10));
        await ctx.send(1, Buffer.from([n, 0, 255]));
        return { n };
      },
    });
    const seen: Record<number, number[]> = {};
    const results = await Promise.all(
      [0, 1, 2].map((n) =>
        client.request("echo", { n }, { onData: (_s, chunk) => (seen[n] = [...chunk]) }).then((r) => {
          assert.deepEqual(seen[n], [n, 0, 255], "data arrives before the response");
          return r;
        }),
      ),
    );
    assert.deepEqual(results, [{ n: 0 }, { n: 1 }, { n: 2 }]);
  });

  it("streams input to the server", async () => {
    const { client } = pair({
      sum: async (_p, ctx) => {
        let total = 0;
        for await (const chunk of ctx.input) total += chunk.length;
        return total;
      },
    });
    const big = Buffer.alloc(300_000, 7);
    assert.equal(await client.request("sum", {}, { input: big }), 300_000);
    // Sent without input, the handler's input is empty at once, not open until the deadline.
    const t0 = Date.now();
    assert.equal(await client.request("sum", {}, { deadlineMs: 5_000 }), 0);
    assert.ok(Date.now() - t0 < 1_000, `took ${Date.now() - t0} ms`);
  });

  it("rejects with the handler's PyroError code and message", async () => {
    const { client } = pair({
      fail: async () => {
        throw new PyroError("PATH_OUTSIDE_WORKSPACE", "nope: use a path under /workspace");
      },
    });
    await assert.rejects(
      client.request("fail", {}),
      (e: PyroError) => e.code === "PATH_OUTSIDE_WORKSPACE" && /nope/.test(e.message),
    );
  });

  it("names an unknown operation", async () => {
    const { client } = pair({ a: async () => 1 });
    await assert.rejects(client.request("zzz", {}), /unknown operation "zzz"/);
  });

  it("times out at the deadline and cancels the handler", async () => {
    let aborted = false;
    const { client } = pair({
      hang: (_p, ctx) =>
        new Promise((resolve) => {
          ctx.signal.addEventListener("abort", () => {
            aborted = true;
            resolve(null);
          });
        }),
    });
    const t0 = Date.now();
    await assert.rejects(client.request("hang", {}, { deadlineMs: 100 }), (e: PyroError) => e.code === "AGENT_TIMEOUT");
    assert.ok(Date.now() - t0 < 1000);
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(aborted, "the server side was told to stop");
  });

  it("fails pending requests when the peer goes away", async () => {
    const [a, b] = memoryDuplexPair();
    new Channel(b, {
      role: "server",
      hello: { name: "s", version: "1", capabilities: [] },
      handlers: { hang: () => new Promise(() => {}) },
    });
    const client = new Channel(a, { role: "client", hello: { name: "c", version: "1", capabilities: [] } });
    const pending = client.request("hang", {});
    await client.ready;
    setTimeout(() => b.destroy(), 20);
    await assert.rejects(pending, (e: PyroError) => e.code === "CHANNEL_CLOSED");
  });

  it("refuses a peer speaking another protocol version with a fix in the message", async () => {
    const [a, b] = memoryDuplexPair();
    const client = new Channel(a, { role: "client", hello: { name: "c", version: "1", capabilities: [] } });
    b.write(
      encodeJsonFrame(FrameType.HELLO, 0, {
        protocol: 99,
        name: "old-agent",
        version: "0",
        capabilities: [],
        max_frame_bytes: 1,
      }),
    );
    await assert.rejects(
      client.ready,
      (e: PyroError) => e.code === "AGENT_PROTOCOL_ERROR" && /pyro env pull/.test(e.message),
    );
  });

  it("lets a small control request overtake a large bulk transfer", async () => {
    const { client } = pair({
      bulk: async (_p, ctx) => {
        await ctx.send(1, Buffer.alloc(8 * 1024 * 1024, 1));
        return "bulk";
      },
      ping: async () => "pong",
    });
    const order: string[] = [];
    const bulk = client.request("bulk", {}, { onData: () => {} }).then(() => order.push("bulk"));
    await new Promise((r) => setImmediate(r));
    const ping = client.request("ping", {}).then(() => order.push("ping"));
    await Promise.all([bulk, ping]);
    assert.deepEqual(order, ["ping", "bulk"]);
  });
});

describe("a result too large for one frame", () => {
  it("is answered with an error, and the channel keeps serving", async () => {
    const { client, server } = pair({
      huge: async () => ({ blob: "x".repeat(MAX_FRAME_BYTES + 10) }),
      small: async () => ({ ok: 1 }),
    });
    await assert.rejects(
      client.request("huge", {}),
      (e: PyroError) => e.code === "FRAME_TOO_LARGE" && e.message.includes("the result of huge could not be sent"),
    );
    assert.deepEqual(await client.request("small", {}), { ok: 1 });
    client.close();
    server.close();
  });
});

describe("flow control of request input", () => {
  it("a slow handler keeps at most about 8 MiB of unread input, and still gets every byte", async () => {
    let peak = 0;
    let serverChannel: Channel | undefined;
    const { client, server } = pair({
      slow: async (_params, ctx) => {
        let total = 0;
        for await (const chunk of ctx.input) {
          total += chunk.length;
          peak = Math.max(peak, serverChannel?.bufferedInputBytes ?? 0);
          // Slower than the sender, so unread input piles up until flow control stops reading.
          await new Promise((r) => setTimeout(r, 1));
        }
        return { total };
      },
      early: async () => ({ ignored: true }),
    });
    serverChannel = server;
    const size = 32 * 1024 * 1024;
    async function* source() {
      const piece = Buffer.alloc(256 * 1024, 7);
      for (let sent = 0; sent < size; sent += piece.length) yield piece;
    }
    assert.deepEqual(await client.request("slow", {}, { input: source() }), { total: size });
    assert.ok(peak <= 9 * 1024 * 1024, `peak unread input ${peak}`);
    assert.ok(peak > 4 * 1024 * 1024, `peak unread input ${peak}: the handler was never behind`);
    // A handler that returns without reading its input does not leave the channel paused.
    assert.deepEqual(await client.request("early", {}, { input: source() }), { ignored: true });
    assert.deepEqual(await client.request("slow", {}, { input: Buffer.alloc(10) }), { total: 10 });
    assert.equal(server.bufferedInputBytes, 0);
    client.close();
    server.close();
  });
});
