// Owns the wire format shared by the host and the guest agent (and the supervisor's Unix socket):
// length-prefixed binary frames. Header: u32 payload length, u8 type, u8 stream, u32 request id.
import { PyroError } from "../contract/errors.js";

export const HEADER_BYTES = 10;
/** Hard ceiling on one frame's payload; bulk data is chunked well below it. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** Size of the data chunks writers produce, small so control frames can interleave. */
export const DATA_CHUNK_BYTES = 64 * 1024;

export const FrameType = {
  HELLO: 1,
  REQUEST: 2,
  RESPONSE: 3,
  DATA: 4,
  END: 5,
  CANCEL: 6,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Stream numbers carried by DATA/END frames. */
export const Stream = { INPUT: 0, STDOUT: 1, STDERR: 2 } as const;

export interface Frame {
  type: FrameType;
  stream: number;
  id: number;
  payload: Buffer;
}

export function encodeFrame(type: FrameType, id: number, payload: Buffer = Buffer.alloc(0), stream = 0): Buffer {
  if (payload.length > MAX_FRAME_BYTES) {
    throw new PyroError("FRAME_TOO_LARGE", `frame of ${payload.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  }
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt8(type, 4);
  header.writeUInt8(stream, 5);
  header.writeUInt32BE(id, 6);
  return Buffer.concat([header, payload]);
}

export function encodeJsonFrame(type: FrameType, id: number, value: unknown): Buffer {
  return encodeFrame(type, id, Buffer.from(JSON.stringify(value), "utf8"));
}

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

/** Incremental decoder: feed it chunks as they arrive, get whole frames back. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    while (this.buffered >= HEADER_BYTES) {
      const head = this.peek(HEADER_BYTES);
      const length = head.readUInt32BE(0);
      const type = head.readUInt8(4);
      if (length > this.maxFrameBytes) {
        throw new PyroError(
          "FRAME_TOO_LARGE",
          `peer sent a frame of ${length} bytes; the maximum is ${this.maxFrameBytes}`,
        );
      }
      if (!KNOWN_TYPES.has(type)) {
        throw new PyroError("AGENT_PROTOCOL_ERROR", `peer sent unknown frame type ${type}`);
      }
      if (this.buffered < HEADER_BYTES + length) break;
      const whole = this.take(HEADER_BYTES + length);
      frames.push({
        type: type as FrameType,
        stream: whole.readUInt8(5),
        id: whole.readUInt32BE(6),
        payload: whole.subarray(HEADER_BYTES),
      });
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const out = Buffer.from(all.subarray(0, n));
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}
