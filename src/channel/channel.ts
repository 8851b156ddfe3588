// Owns the multiplexed RPC that runs over any byte stream (agent stdio, virtio-serial, vsock, the
// supervisor's Unix socket): hello/version check, request ids, deadlines, cancellation, streamed
// binary data in both directions, and a writer that lets control frames overtake bulk data.
import { once } from "node:events";
import type { Duplex } from "node:stream";
import { z } from "zod";
import { isErrorCode, PyroError, toPyroError } from "../contract/errors.js";
import {
  DATA_CHUNK_BYTES,
  encodeFrame,
  encodeJsonFrame,
  type Frame,
  FrameReader,
  FrameType,
  MAX_FRAME_BYTES,
} from "./frame.js";

export const PROTOCOL_VERSION = 1;

/** Above this many unread input bytes the channel stops reading its transport; below the low mark
 * it reads again. */
const INPUT_HIGH_WATER = 8 * 1024 * 1024;
const INPUT_LOW_WATER = 2 * 1024 * 1024;
/** How often a channel that stopped reading checks that its peer is still there. */
const PAUSED_PEER_CHECK_MS = 1_000;

/** The first frame each side sends: who it is and what it speaks. */
export const Hello = z.object({
  protocol: z.number().int(),
  name: z.string(),
  version: z.string(),
  capabilities: z.array(z.string()),
  max_frame_bytes: z.number().int().positive(),
});
export type Hello = z.infer<typeof Hello>;

export interface RequestOptions {
  /** Milliseconds the peer has to answer; the request is cancelled and rejected after it. */
  deadlineMs?: number;
  /** Receives streamed output (stdout, stderr, archive bytes) as it arrives. */
  onData?: (stream: number, chunk: Buffer) => void;
  /** Bytes streamed to the peer after the request (uploads). */
  input?: AsyncIterable<Uint8Array> | Uint8Array;
  signal?: AbortSignal;
}

export interface HandlerContext {
  id: number;
  /** Aborted when the caller cancels, the deadline passes or the channel closes. */
  signal: AbortSignal;
  deadlineMs: number | undefined;
  /** Streams bytes back to the caller; resolves once written, which is the backpressure. */
  send(stream: number, chunk: Uint8Array): Promise<void>;
  /** Bytes the caller streamed with the request. */
  input: AsyncIterable<Buffer>;
  peer: Hello;
}

export type Handler = (params: unknown, ctx: HandlerContext) => Promise<unknown>;

export interface ChannelOptions {
  role: "client" | "server";
  hello: Omit<Hello, "protocol" | "max_frame_bytes">;
  handlers?: Record<string, Handler>;
  /** Serves operations with no handler of their own (the supervisor proxies these to the agent). */
  fallback?: (op: string, params: unknown, ctx: HandlerContext) => Promise<unknown>;
  maxFrameBytes?: number;
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  onData?: (stream: number, chunk: Buffer) => void;
  timer?: NodeJS.Timeout;
}

interface Incoming {
  abort: AbortController;
  input: InputQueue;
  lastSend: Promise<void>;
}

/** A tiny async queue for bytes the caller streams in. */
/** Bytes streamed into a request's handler, held until it reads them. `onDrop` hears of every
 * byte that leaves the queue (read or discarded), which is how the channel keeps all queues bounded. */
class InputQueue implements AsyncIterable<Buffer> {
  private items: Buffer[] = [];
  private done = false;
  private discarded = false;
  private failure: Error | undefined;
  private waiter: (() => void) | undefined;

  constructor(private readonly onDrop: (bytes: number) => void = () => {}) {}

  push(chunk: Buffer): void {
    if (this.discarded) {
      this.onDrop(chunk.length);
      return;
    }
    this.items.push(chunk);
    this.wake();
  }

  /** Drops what the handler never read (it returned early), and whatever still arrives. */
  discard(): void {
    this.discarded = true;
    for (const item of this.items) this.onDrop(item.length);
    this.items = [];
    this.end();
  }

  end(): void {
    this.done = true;
    this.wake();
  }

  /** The sender went away or the request was cancelled: the handler's next read throws `err`, so a
   * cut-off input is never mistaken for a complete one (an archive half sent is not extracted). */
  fail(err: Error): void {
    if (this.done) return;
    this.failure = err;
    for (const item of this.items) this.onDrop(item.length);
    this.items = [];
    this.end();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const next = this.items.shift();
      if (next) {
        this.onDrop(next.length);
        yield next;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.done) return;
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }
}

interface Queued {
  buf: Buffer;
  done: () => void;
}

export class Channel {
  readonly ready: Promise<Hello>;
  readonly closed: Promise<Error | undefined>;
  private peer: Hello | undefined;
  private readonly reader: FrameReader;
  private readonly pending = new Map<number, Pending>();
  private readonly incoming = new Map<number, Incoming>();
  private readonly control: Queued[] = [];
  private readonly data: Queued[] = [];
  private flushing = false;
  /** Bytes received for requests' inputs and not yet read by their handlers. */
  private inputBytes = 0;
  private pausedForInput = false;
  private nextId = 1;
  private closeError: Error | undefined;
  private isClosed = false;
  private resolveReady!: (h: Hello) => void;
  private rejectReady!: (e: Error) => void;
  private resolveClosed!: (e: Error | undefined) => void;

  constructor(
    private readonly stream: Duplex,
    private readonly options: ChannelOptions,
  ) {
    this.reader = new FrameReader(options.maxFrameBytes ?? MAX_FRAME_BYTES);
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    stream.on("data", (chunk: Buffer) => this.onChunk(chunk));
    stream.on("error", (err) => this.shutdown(new PyroError("CHANNEL_CLOSED", `channel error: ${err.message}`)));
    stream.on("close", () => this.shutdown());
    stream.on("end", () => this.shutdown());
    const hello: Hello = {
      protocol: PROTOCOL_VERSION,
      max_frame_bytes: options.maxFrameBytes ?? MAX_FRAME_BYTES,
      ...options.hello,
    };
    this.enqueue(encodeJsonFrame(FrameType.HELLO, 0, hello), false);
  }

  get peerHello(): Hello | undefined {
    return this.peer;
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  async request(op: string, params: unknown, opts: RequestOptions = {}): Promise<unknown> {
    if (this.options.role !== "client") throw new Error("only a client channel sends requests");
    await this.ready;
    if (this.isClosed) throw this.closedError();
    const id = this.nextId++;
    const result = new Promise<unknown>((resolve, reject) => {
      const entry: Pending = { resolve, reject, onData: opts.onData };
      if (opts.deadlineMs !== undefined) {
        entry.timer = setTimeout(() => {
          this.cancel(id);
          this.settle(
            id,
            undefined,
            new PyroError("AGENT_TIMEOUT", `${op} got no answer within ${opts.deadlineMs} ms`),
          );
        }, opts.deadlineMs);
      }
      this.pending.set(id, entry);
    });
    if (opts.signal) {
      const onAbort = () => {
        this.cancel(id);
        this.settle(id, undefined, new PyroError("CANCELLED", `${op} was cancelled`));
      };
      if (opts.signal.aborted) onAbort();
      else opts.signal.addEventListener("abort", onAbort, { once: true });
    }
    // `input: true` says data frames and an END follow; without it the handler's input is empty at once.
    const body = { op, params, deadline_ms: opts.deadlineMs, ...(opts.input ? { input: true } : {}) };
    this.enqueue(encodeJsonFrame(FrameType.REQUEST, id, body), false);
    if (opts.input) void this.pumpInput(id, opts.input);
    return result;
  }

  close(): void {
    this.stream.end();
    this.shutdown();
  }

  private async pumpInput(id: number, input: AsyncIterable<Uint8Array> | Uint8Array): Promise<void> {
    try {
      const source = input instanceof Uint8Array ? [input] : input;
      for await (const chunk of source) {
        if (!this.pending.has(id)) return;
        for (let off = 0; off < chunk.length; off += DATA_CHUNK_BYTES) {
          const piece = Buffer.from(chunk.subarray(off, off + DATA_CHUNK_BYTES));
          await this.enqueue(encodeFrame(FrameType.DATA, id, piece, 0), true);
        }
      }
      if (!this.pending.has(id)) return;
      await this.enqueue(encodeFrame(FrameType.END, id, undefined, 0), true);
    } catch (err) {
      this.cancel(id);
      this.settle(id, undefined, toPyroError(err));
    }
  }

  private cancel(id: number): void {
    if (!this.isClosed) this.enqueue(encodeFrame(FrameType.CANCEL, id), false);
  }

  private settle(id: number, value: unknown, err?: Error): void {
    const entry = this.pending.get(id);
    if (!entry) return;
    this.pending.delete(id);
    if (entry.timer) clearTimeout(entry.timer);
    if (err) entry.reject(err);
    else entry.resolve(value);
  }

  private onChunk(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      this.shutdown(toPyroError(err));
      this.stream.destroy();
      return;
    }
    for (const frame of frames) {
      try {
        this.onFrame(frame);
      } catch (err) {
        this.shutdown(new PyroError("AGENT_PROTOCOL_ERROR", `malformed frame from peer: ${(err as Error).message}`));
        this.stream.destroy();
        return;
      }
    }
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case FrameType.HELLO: {
        const parsed = Hello.safeParse(JSON.parse(frame.payload.toString("utf8")));
        if (!parsed.success) {
          const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(hello)"}: ${i.message}`).join("; ");
          this.shutdown(new PyroError("AGENT_PROTOCOL_ERROR", `the peer's hello is malformed (${problems})`));
          return;
        }
        const hello = parsed.data;
        if (hello.protocol !== PROTOCOL_VERSION) {
          const err = new PyroError(
            "AGENT_PROTOCOL_ERROR",
            `${hello.name} ${hello.version} speaks protocol ${hello.protocol} but this pyro speaks ${PROTOCOL_VERSION}; ` +
              "re-pull the environment (pyro env pull ENV) so its agent matches",
          );
          this.shutdown(err);
          return;
        }
        this.peer = hello;
        this.resolveReady(hello);
        return;
      }
      case FrameType.RESPONSE: {
        const body = JSON.parse(frame.payload.toString("utf8")) as {
          ok: boolean;
          result?: unknown;
          error?: { code: string; message: string; details?: Record<string, unknown> };
        };
        if (body.ok) this.settle(frame.id, body.result);
        else {
          const code = isErrorCode(body.error?.code) ? body.error.code : "INTERNAL";
          this.settle(
            frame.id,
            undefined,
            new PyroError(code, body.error?.message ?? "unknown error", body.error?.details),
          );
        }
        return;
      }
      case FrameType.DATA: {
        if (this.options.role === "client") this.pending.get(frame.id)?.onData?.(frame.stream, frame.payload);
        else {
          const input = this.incoming.get(frame.id)?.input;
          if (!input) return;
          this.inputBytes += frame.payload.length;
          input.push(frame.payload);
          // Handlers slower than the sender (a big archive into a slow disk) must not fill memory:
          // stop reading the transport until they catch up; the sender then waits on the pipe.
          if (this.inputBytes > INPUT_HIGH_WATER && !this.pausedForInput) {
            this.pausedForInput = true;
            this.stream.pause();
            this.watchPeerWhilePaused();
          }
        }
        return;
      }
      case FrameType.END: {
        if (this.options.role === "server") this.incoming.get(frame.id)?.input.end();
        return;
      }
      case FrameType.CANCEL: {
        this.incoming.get(frame.id)?.abort.abort(new PyroError("CANCELLED", "cancelled by caller"));
        return;
      }
      case FrameType.REQUEST: {
        if (this.options.role !== "server") throw new Error("a client channel does not accept requests");
        const body = JSON.parse(frame.payload.toString("utf8")) as {
          op: string;
          params: unknown;
          deadline_ms?: number;
          input?: boolean;
        };
        void this.serve(frame.id, body);
        return;
      }
    }
  }

  private async serve(
    id: number,
    body: { op: string; params: unknown; deadline_ms?: number; input?: boolean },
  ): Promise<void> {
    const abort = new AbortController();
    const entry: Incoming = { abort, input: new InputQueue((n) => this.inputConsumed(n)), lastSend: Promise.resolve() };
    // A cancel, a deadline or the peer going away ends the input with that reason, not as complete.
    abort.signal.addEventListener("abort", () => entry.input.fail(abort.signal.reason as Error), { once: true });
    // A request sent without input has none: a handler reading it finds it ended, not waiting.
    if (body.input !== true) entry.input.end();
    this.incoming.set(id, entry);
    const timer =
      body.deadline_ms !== undefined
        ? setTimeout(
            () => abort.abort(new PyroError("AGENT_TIMEOUT", `${body.op} passed its deadline`)),
            body.deadline_ms,
          )
        : undefined;
    let response: unknown;
    try {
      const own = this.options.handlers?.[body.op];
      const fallback = this.options.fallback;
      const handler: Handler | undefined = own ?? (fallback ? (params, c) => fallback(body.op, params, c) : undefined);
      if (!handler) {
        const known = Object.keys(this.options.handlers ?? {}).join(", ");
        throw new PyroError("AGENT_PROTOCOL_ERROR", `unknown operation "${body.op}" (this peer handles: ${known})`);
      }
      const ctx: HandlerContext = {
        id,
        signal: abort.signal,
        deadlineMs: body.deadline_ms,
        input: entry.input,
        peer: this.peer!,
        send: (stream, chunk) => {
          const writes: Promise<void>[] = [];
          for (let off = 0; off < chunk.length; off += DATA_CHUNK_BYTES) {
            const piece = Buffer.from(chunk.subarray(off, off + DATA_CHUNK_BYTES));
            writes.push(this.enqueue(encodeFrame(FrameType.DATA, id, piece, stream), true));
          }
          const all = Promise.all(writes).then(() => {});
          entry.lastSend = all;
          return all;
        },
      };
      const result = await handler(body.params, ctx);
      response = { ok: true, result };
    } catch (err) {
      const e = toPyroError(err);
      response = { ok: false, error: { code: e.code, message: e.message, details: e.details } };
    } finally {
      if (timer) clearTimeout(timer);
      entry.input.discard();
    }
    // Data already queued for this request must reach the caller before its response.
    await entry.lastSend.catch(() => {});
    this.incoming.delete(id);
    if (this.isClosed) return;
    let frame: Buffer;
    try {
      frame = encodeJsonFrame(FrameType.RESPONSE, id, response);
    } catch (err) {
      // A result too large for one frame is the handler's failure, not the channel's: answer with an
      // error instead of leaving the caller waiting (or taking the serving process down).
      const e = toPyroError(err);
      frame = encodeJsonFrame(FrameType.RESPONSE, id, {
        ok: false,
        error: { code: e.code, message: `the result of ${body.op} could not be sent: ${e.message}` },
      });
    }
    this.enqueue(frame, true);
  }

  /**
   * A paused transport reads nothing, so a peer that dies meanwhile goes unnoticed: its end of
   * stream waits behind the unread data (a sync push whose CLI was killed kept the guest waiting for
   * the rest of the archive). A write does notice: an empty frame on id 0, which no request uses and
   * every peer ignores, each second while paused finds a dead peer (EPIPE) and shuts the channel.
   */
  private watchPeerWhilePaused(): void {
    const timer = setInterval(() => {
      if (!this.pausedForInput || this.isClosed) clearInterval(timer);
      else void this.enqueue(encodeFrame(FrameType.DATA, 0, Buffer.alloc(0), 0), false);
    }, PAUSED_PEER_CHECK_MS);
    timer.unref();
  }

  private inputConsumed(bytes: number): void {
    this.inputBytes -= bytes;
    if (this.pausedForInput && this.inputBytes <= INPUT_LOW_WATER) {
      this.pausedForInput = false;
      this.stream.resume();
    }
  }

  /** Input bytes received and not yet read by handlers (bounded by flow control). */
  get bufferedInputBytes(): number {
    return this.inputBytes;
  }

  private enqueue(buf: Buffer, isData: boolean): Promise<void> {
    if (this.isClosed) return Promise.resolve();
    return new Promise((resolve) => {
      (isData ? this.data : this.control).push({ buf, done: resolve });
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      for (;;) {
        const next = this.control.shift() ?? this.data.shift();
        if (!next) break;
        if (this.isClosed || this.stream.destroyed) {
          next.done();
          continue;
        }
        const ok = this.stream.write(next.buf);
        if (!ok) {
          await Promise.race([once(this.stream, "drain"), this.closed]);
        }
        next.done();
      }
    } finally {
      this.flushing = false;
    }
  }

  private closedError(): PyroError {
    const reason = this.closeError?.message ?? "the peer went away";
    return new PyroError("CHANNEL_CLOSED", `connection to ${this.peer?.name ?? "peer"} closed: ${reason}`);
  }

  private shutdown(err?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeError = err;
    const error = err instanceof PyroError && err.code !== "CHANNEL_CLOSED" ? err : this.closedError();
    this.rejectReady(error);
    for (const id of [...this.pending.keys()]) this.settle(id, undefined, error);
    for (const entry of this.incoming.values()) {
      entry.abort.abort(error);
      entry.input.end();
    }
    for (const q of [...this.control.splice(0), ...this.data.splice(0)]) q.done();
    this.resolveClosed(err);
  }
}
