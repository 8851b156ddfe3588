// One stdio message's size limit: whole lines pass, an oversized one is dropped as it streams by and
// reported with its size and request id, and the lines after it still pass.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  LineLimit,
  MAX_STDIO_MESSAGE_BYTES,
  type Oversize,
  oversizeError,
  requestIdOf,
} from "../../src/mcp/stdio-limit.js";

async function feed(max: number, chunks: string[]): Promise<{ lines: string; oversize: Oversize[] }> {
  const oversize: Oversize[] = [];
  const limit = new LineLimit(max, (o) => oversize.push(o));
  const out: Buffer[] = [];
  limit.on("data", (c: Buffer) => out.push(c));
  const ended = new Promise((r) => limit.once("end", r));
  for (const c of chunks) limit.write(Buffer.from(c));
  limit.end();
  await ended;
  return { lines: Buffer.concat(out).toString(), oversize };
}

describe("mcp stdio: one message's size limit", () => {
  it("passes lines within the limit whole, however they are split", async () => {
    const r = await feed(20, ['{"a":', '1}\n{"b"', ":2}\n", '{"c":3}\n']);
    assert.equal(r.lines, '{"a":1}\n{"b":2}\n{"c":3}\n');
    assert.deepEqual(r.oversize, []);
  });

  it("drops a longer line across chunks, reports its size and id, and passes the next", async () => {
    const big = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"x":"${"y".repeat(100)}"}}\n`;
    const r = await feed(40, ['{"id":1}\n', big.slice(0, 30), big.slice(30, 90), big.slice(90), '{"id":2}\n']);
    assert.equal(r.lines, '{"id":1}\n{"id":2}\n');
    assert.deepEqual(r.oversize, [{ bytes: Buffer.byteLength(big), id: 7 }]);
  });

  it("a line exactly at the limit (newline included) passes; one byte more does not", async () => {
    assert.equal((await feed(10, ['{"id":12}\n'])).lines, '{"id":12}\n');
    assert.deepEqual((await feed(9, ['{"id":12}\n'])).oversize, [{ bytes: 10, id: 12 }]);
  });

  it("finds the top-level id before params, or as the last member (the MCP SDK client's order)", () => {
    assert.equal(requestIdOf('{"jsonrpc":"2.0","id":"abc","method":"x"'), "abc");
    assert.equal(requestIdOf('{"jsonrpc":"2.0","method":"x","params":{"id":5}'), undefined);
    assert.equal(requestIdOf('{"method":"x","params":{"id":5', '"}},"jsonrpc":"2.0","id":11}\n'), 11);
    assert.equal(
      requestIdOf('{"method":"x","params":{"a":{"id":5', 'y"}, "id":3}}\n'),
      undefined,
      "a nested last id is not the request's",
    );
    assert.equal(requestIdOf('{"method":"x"'), undefined);
  });

  it("an SDK-ordered oversized request (id last) is answered by its id", async () => {
    const big = `{"method":"tools/call","params":{"x":"${"y".repeat(500)}"},"jsonrpc":"2.0","id":42}\n`;
    const r = await feed(100, [big.slice(0, 50), big.slice(50, 300), big.slice(300)]);
    assert.deepEqual(r.oversize, [{ bytes: Buffer.byteLength(big), id: 42 }]);
  });

  it("the refusal is a JSON-RPC Invalid Request naming the size and the limit", () => {
    const reply = JSON.parse(oversizeError({ bytes: 40 * 1024 * 1024, id: 9 }));
    assert.equal(reply.id, 9);
    assert.equal(reply.error.code, -32600);
    assert.match(reply.error.message, /message of 40\.0 MiB is over pyro's 32\.0 MiB limit/);
    assert.equal(MAX_STDIO_MESSAGE_BYTES, 32 * 1024 * 1024);
  });
});
