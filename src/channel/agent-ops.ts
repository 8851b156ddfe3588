// Owns the typed use of the agent's operation table (AGENT_OPS in protocol.ts) on both sides of a
// channel: the host's calls check their params before sending and the agent's reply on arrival, and
// the agent's handlers receive params already parsed against the same schemas.
import type { z } from "zod";
import { PyroError } from "../contract/errors.js";
import { parseParams } from "../contract/parse.js";
import type { Handler, HandlerContext, RequestOptions } from "./channel.js";
import { AGENT_OPS, type AgentOpName, type AgentParams, type AgentParsedParams, type AgentResult } from "./protocol.js";

/** Anything that sends a request to an agent: a channel, or the supervisor's client that relays it. */
export interface Requester {
  request(op: string, params: unknown, opts?: RequestOptions): Promise<unknown>;
}

/** Calls `op` on the agent behind `peer`; a reply that does not match the table is AGENT_PROTOCOL_ERROR. */
export async function callAgent<K extends AgentOpName>(
  peer: Requester,
  op: K,
  params: AgentParams<K>,
  opts?: RequestOptions,
): Promise<AgentResult<K>> {
  parseParams(AGENT_OPS[op].params as z.ZodType, params, `agent ${op}`);
  return checkReply(op, await peer.request(op, params, opts));
}

export function checkReply<K extends AgentOpName>(op: K, reply: unknown): AgentResult<K> {
  const parsed = (AGENT_OPS[op].result as z.ZodType).safeParse(reply);
  if (parsed.success) return parsed.data as AgentResult<K>;
  const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(reply)"}: ${i.message}`).join("; ");
  throw new PyroError(
    "AGENT_PROTOCOL_ERROR",
    `the guest agent's reply to ${op} is malformed (${problems}); the sandbox may run an agent from another pyro version: recreate the workspace, and report it if it happens again`,
  );
}

/** An agent's implementation of some of the table's operations. */
export type AgentHandlers = {
  [K in AgentOpName]?: (
    params: AgentParsedParams<K>,
    ctx: HandlerContext,
  ) => Promise<z.input<(typeof AGENT_OPS)[K]["result"]>>;
};

/** The channel handlers for `handlers`: each parses its request against the table first. */
export function serveAgentOps(handlers: AgentHandlers): Record<string, Handler> {
  return Object.fromEntries(
    Object.entries(handlers).map(([op, fn]) => {
      const schema = AGENT_OPS[op as AgentOpName].params as z.ZodType;
      const handler: Handler = (raw, ctx) =>
        (fn as (params: unknown, ctx: HandlerContext) => Promise<unknown>)(parseParams(schema, raw, op), ctx);
      return [op, handler];
    }),
  );
}
