// Owns the typed use of the guest agent's operation table (AGENT_OPS in protocol.ts) on both sides
// of a channel, through the generic table machinery of ops.ts.
import type { RequestOptions } from "./channel.js";
import { callOp, type OpHandlers, type Peer, type Requester, serveOps } from "./ops.js";
import { AGENT_OPS, type AgentOpName, type AgentParams, type AgentResult } from "./protocol.js";

export type { Requester } from "./ops.js";

const AGENT: Peer = {
  name: "the guest agent",
  fix: "the sandbox may run an agent from another pyro version: recreate the workspace, and report it if it happens again",
};

/** Calls `op` on the agent behind `peer`; a reply that does not match the table is AGENT_PROTOCOL_ERROR. */
export function callAgent<K extends AgentOpName>(
  peer: Requester,
  op: K,
  params: AgentParams<K>,
  opts?: RequestOptions,
): Promise<AgentResult<K>> {
  return callOp(AGENT_OPS, AGENT, peer, op, params, opts) as Promise<AgentResult<K>>;
}

/** An agent's implementation of some of the table's operations. */
export type AgentHandlers = OpHandlers<typeof AGENT_OPS>;

/** The channel handlers for `handlers`: each parses its request against the table first. */
export function serveAgentOps(handlers: AgentHandlers) {
  return serveOps(AGENT_OPS, handlers);
}
