// Owns the size limit of one MCP message over stdio. The SDK's stdio transport closes itself when a
// message outgrows its read buffer (10 MiB), which ended `pyro mcp serve` silently with exit 0. Here
// each line is held until its newline or the limit; a line over the limit is dropped as it streams
// by (never held whole), answered with a JSON-RPC error naming its size, and the server serves on.
import { Transform, type TransformCallback } from "node:stream";

const MIB = 1024 * 1024;
/** One stdio message's limit: room for a 16 MiB file write with JSON escaping to spare. */
export const MAX_STDIO_MESSAGE_BYTES = 32 * MIB;
/** How much of each end of a dropped line is kept to find its request id. */
const HEAD_BYTES = 4096;
const TAIL_BYTES = 256;
/** JSON-RPC "Invalid Request". */
export const INVALID_REQUEST = -32600;

export interface Oversize {
  bytes: number;
  /** The request's id, when the start of the line names it before its params. */
  id: string | number | undefined;
}

const ID = String.raw`"id"\s*:\s*("(?:[^"\\]|\\.)*"|-?\d+)`;

function parseId(text: string | undefined): string | number | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as string | number;
  } catch {
    return undefined;
  }
}

/**
 * The top-level id of a JSON-RPC request from the two ends of its line: at the start when it comes
 * before "params" (an "id" inside params must not be mistaken for it), or as the top object's last
 * member (`…,"id":7}`), where the MCP SDK's client puts it.
 */
export function requestIdOf(head: string, tail = ""): string | number | undefined {
  const first = new RegExp(ID).exec(head);
  const params = head.indexOf('"params"');
  if (first && (params === -1 || first.index < params)) return parseId(first[1]);
  return parseId(new RegExp(`${ID}\\s*}\\s*$`).exec(tail)?.[1]);
}

export function oversizeError(o: Oversize): string {
  const mib = (n: number) => `${(n / MIB).toFixed(1)} MiB`;
  return `${JSON.stringify({
    jsonrpc: "2.0",
    id: o.id ?? null,
    error: {
      code: INVALID_REQUEST,
      message:
        `message of ${mib(o.bytes)} is over pyro's ${mib(MAX_STDIO_MESSAGE_BYTES)} limit for one stdio message; ` +
        "send less at once (large files: workspace sync push or a seed)",
    },
  })}\n`;
}

/** Passes whole lines of at most `maxBytes` (newline included); reports longer ones to `onOversize`. */
export class LineLimit extends Transform {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private dropped: { bytes: number; head: Buffer; tail: Buffer } | undefined;

  constructor(
    private readonly maxBytes: number,
    private readonly onOversize: (o: Oversize) => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    for (let start = 0; start < chunk.length; ) {
      const newline = chunk.indexOf(10, start);
      const end = newline === -1 ? chunk.length : newline + 1;
      this.add(chunk.subarray(start, end));
      if (newline !== -1) this.endLine();
      start = end;
    }
    done();
  }

  override _flush(done: TransformCallback): void {
    this.endLine();
    done();
  }

  private add(piece: Buffer): void {
    if (this.dropped) {
      this.dropped.bytes += piece.length;
      this.dropped.tail = lastBytes(Buffer.concat([this.dropped.tail, piece.subarray(-TAIL_BYTES)]));
      return;
    }
    if (this.pendingBytes + piece.length <= this.maxBytes) {
      this.pending.push(piece);
      this.pendingBytes += piece.length;
      return;
    }
    const head = Buffer.concat([...this.pending, piece.subarray(0, HEAD_BYTES)]).subarray(0, HEAD_BYTES);
    this.dropped = { bytes: this.pendingBytes + piece.length, head, tail: lastBytes(piece) };
    this.pending = [];
    this.pendingBytes = 0;
  }

  private endLine(): void {
    if (this.dropped) {
      const { bytes, head, tail } = this.dropped;
      this.dropped = undefined;
      this.onOversize({ bytes, id: requestIdOf(head.toString("utf8"), tail.toString("utf8")) });
    } else if (this.pendingBytes > 0) {
      this.push(Buffer.concat(this.pending));
    }
    this.pending = [];
    this.pendingBytes = 0;
  }
}

function lastBytes(buffer: Buffer): Buffer {
  return buffer.length > TAIL_BYTES ? buffer.subarray(buffer.length - TAIL_BYTES) : buffer;
}
