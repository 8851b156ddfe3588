// Owns typed operation tables over a channel: a table names each operation's params and result
// schemas; the caller checks params before sending and the reply on arrival, and the server's
// handlers receive params already parsed. The guest agent's table is AGENT_OPS (protocol.ts), the
// supervisor's SUPERVISOR_OPS (supervisor/protocol.ts).
import type { z } from "zod";
import { PyroError } from "../contract/errors.js";
import { parseParams } from "../contract/parse.js";
import type { Handler, HandlerContext, RequestOptions } from "./channel.js";

export type OpTable = Record<string, { params: z.ZodType; result: z.ZodType }>;

/** One row of a table: what an operation takes and what it answers. */
export const op = <P extends z.ZodType, R extends z.ZodType>(params: P, result: R) => ({ params, result });

/** Anything that sends a request over a channel (a channel, or a client that relays it). */
export interface Requester {
  request(op: string, params: unknown, opts?: RequestOptions): Promise<unknown>;
}

/** Who answers a table's operations, for the error a malformed reply becomes. */
export interface Peer {
  /** e.g. "the guest agent" */
  name: string;
  /** What the user can do when its replies are malformed. */
  fix: string;
}

export async function callOp<T extends OpTable, K extends keyof T & string>(
  table: T,
  peer: Peer,
  requester: Requester,
  name: K,
  params: z.input<T[K]["params"]>,
  opts?: RequestOptions,
): Promise<z.output<T[K]["result"]>> {
  parseParams(table[name]!.params, params, name);
  return checkReply(table, peer, name, await requester.request(name, params, opts));
}

/** The reply, parsed; one that does not match the table is AGENT_PROTOCOL_ERROR naming op and field. */
export function checkReply<T extends OpTable, K extends keyof T & string>(
  table: T,
  peer: Peer,
  name: K,
  reply: unknown,
): z.output<T[K]["result"]> {
  const parsed = table[name]!.result.safeParse(reply);
  if (parsed.success) return parsed.data as z.output<T[K]["result"]>;
  const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(reply)"}: ${i.message}`).join("; ");
  throw new PyroError(
    "AGENT_PROTOCOL_ERROR",
    `${peer.name}'s reply to ${name} is malformed (${problems}); ${peer.fix}`,
  );
}

/** A server's implementation of some of a table's operations. */
export type OpHandlers<T extends OpTable> = {
  [K in keyof T]?: (params: z.output<T[K]["params"]>, ctx: HandlerContext) => Promise<z.input<T[K]["result"]>>;
};

/** The channel handlers for `handlers`: each parses its request against the table first. */
export function serveOps<T extends OpTable>(table: T, handlers: OpHandlers<T>): Record<string, Handler> {
  return Object.fromEntries(
    Object.entries(handlers).map(([name, fn]) => {
      const schema = table[name]!.params;
      const handler: Handler = (raw, ctx) =>
        (fn as (params: unknown, ctx: HandlerContext) => Promise<unknown>)(parseParams(schema, raw, name), ctx);
      return [name, handler];
    }),
  );
}
