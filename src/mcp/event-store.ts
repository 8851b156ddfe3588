// Owns the replay buffer behind resumable Streamable HTTP streams: one per session, holding what
// the server sent on each SSE stream so that a client whose connection dropped can reconnect (GET
// with Last-Event-ID) and get the messages it missed. In memory, bounded, dropped with its session.
import type { EventId, EventStore, StreamId } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

/**
 * Per session. Past either cap the oldest events are dropped first, but the newest one is always
 * kept whatever its size: a large tool result (a file read may return 16 MiB) must still be
 * redeliverable to a client whose connection dropped just before it arrived.
 */
export const REPLAY_LIMITS = { maxEvents: 1000, maxBytes: 16 * 1024 * 1024 };
const MIB = 1024 * 1024;

interface StoredEvent {
  streamId: StreamId;
  seq: number;
  message: JSONRPCMessage;
  bytes: number;
}

/**
 * Leaves out the optional `getStreamIdForEventId` on purpose. With it, the SDK answers 409 to a
 * resume while it still holds the old connection of that stream, which it does until it notices
 * the drop: a client reconnecting at once would be refused, and the SDK client does not retry an
 * explicit resume. Without it, the resume replaces the old connection, and the client that
 * reconnects, the one that knows its connection is gone, wins.
 */
export class SessionEventStore implements EventStore {
  /** Insertion order is age order, which eviction and replay both rely on. */
  private readonly events = new Map<EventId, StoredEvent>();
  private nextSeq = 1;
  private bytes = 0;
  /** The highest sequence number evicted: an id at or below it is too old, not unknown. */
  private droppedThrough = 0;
  private closed = false;

  constructor(private readonly limits: typeof REPLAY_LIMITS = REPLAY_LIMITS) {}

  async storeEvent(streamId: StreamId, message: JSONRPCMessage): Promise<EventId> {
    // The id names its stream (the spec asks ids to identify the originating stream) and a
    // per-session sequence number, which makes it unique in the session and tells old from unknown.
    const seq = this.nextSeq++;
    const id = `${streamId}:${seq}`;
    if (this.closed) return id;
    const bytes = Buffer.byteLength(JSON.stringify(message));
    this.events.set(id, { streamId, seq, message, bytes });
    this.bytes += bytes;
    for (const [oldId, old] of this.events) {
      const over = this.events.size > this.limits.maxEvents || this.bytes > this.limits.maxBytes;
      if (!over || this.events.size === 1) break;
      this.events.delete(oldId);
      this.bytes -= old.bytes;
      this.droppedThrough = old.seq;
    }
    return id;
  }

  async replayEventsAfter(
    lastEventId: EventId,
    { send }: { send: (eventId: EventId, message: JSONRPCMessage) => Promise<void> },
  ): Promise<StreamId> {
    const from = this.events.get(lastEventId);
    if (!from) throw new Error(this.whyNotReplayable(lastEventId));
    // The live map, not a copy: an event stored while the replay is under way is replayed too
    // (the SDK skips writing it again once the resumed stream is registered).
    for (const [id, event] of this.events) {
      // Only this stream's events (the spec forbids replaying another stream's), and not the
      // empty priming events, which carry no message.
      if (event.seq > from.seq && event.streamId === from.streamId && "jsonrpc" in event.message) {
        await send(id, event.message);
      }
    }
    return from.streamId;
  }

  /** Undefined when `eventId` can be resumed from; otherwise why not, and what to do instead. */
  whyNotReplayable(eventId: EventId): string | undefined {
    if (this.events.has(eventId)) return undefined;
    const seq = Number(eventId.slice(eventId.lastIndexOf(":") + 1));
    if (Number.isInteger(seq) && seq > 0 && seq <= this.droppedThrough) {
      const { maxEvents, maxBytes } = this.limits;
      const size = maxBytes % MIB === 0 ? `${maxBytes / MIB} MiB` : `${maxBytes} bytes`;
      return (
        `Last-Event-ID ${eventId} is too old: this session keeps its last ${maxEvents} events (${size}) ` +
        "for replay and has dropped it, so the messages after it are lost; send the request again"
      );
    }
    return (
      `Last-Event-ID ${eventId} is not an event of this session; resume with the id of the last event ` +
      "received on this session, or open the stream without Last-Event-ID"
    );
  }

  /** Drops every event; later ones are not kept. Called when the session ends. */
  clear(): void {
    this.closed = true;
    this.events.clear();
    this.bytes = 0;
  }
}
