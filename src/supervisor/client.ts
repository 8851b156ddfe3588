// Owns the host side of a supervisor connection: connect to its socket, check the hello, send
// requests (proxied to the agent), and shut the sandbox down.

import { connect } from "node:net";
import type { z } from "zod";
import { callAgent } from "../channel/agent-ops.js";
import { Channel, type RequestOptions } from "../channel/channel.js";
import type { AgentOpName, AgentParams, AgentResult } from "../channel/protocol.js";
import type { EgressRules } from "../contract/egress-rules.js";
import { PyroError } from "../contract/errors.js";
import { PYRO_VERSION } from "../version.js";
import { type PublishedPort, PublishedPorts, SupervisorOp, SupervisorStatus } from "./protocol.js";

export class SupervisorClient {
  private constructor(
    private readonly channel: Channel,
    readonly socketPath: string,
  ) {}

  static async connect(socketPath: string, timeoutMs = 5_000): Promise<SupervisorClient> {
    const socket = connect(socketPath);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", (err) =>
        reject(
          new PyroError("SANDBOX_NOT_RUNNING", `cannot reach the sandbox supervisor at ${socketPath}: ${err.message}`),
        ),
      );
    });
    const channel = new Channel(socket, {
      role: "client",
      hello: { name: "pyro-client", version: PYRO_VERSION, capabilities: [] },
    });
    const timer = setTimeout(() => channel.close(), timeoutMs);
    try {
      await channel.ready;
    } finally {
      clearTimeout(timer);
    }
    return new SupervisorClient(channel, socketPath);
  }

  get isOpen(): boolean {
    return this.channel.isOpen;
  }

  request(op: string, params: unknown, opts?: RequestOptions): Promise<unknown> {
    return this.channel.request(op, params, opts);
  }

  /** An agent operation, relayed by the supervisor: params and reply checked against the table. */
  call<K extends AgentOpName>(op: K, params: AgentParams<K>, opts?: RequestOptions): Promise<AgentResult<K>> {
    return callAgent(this, op, params, opts);
  }

  async status(): Promise<SupervisorStatus> {
    const reply = await this.channel.request(SupervisorOp.STATUS, {}, { deadlineMs: 5_000 });
    return checked(SupervisorOp.STATUS, SupervisorStatus, reply);
  }

  async publish(owner: string, ports: Array<{ host_port: number; guest_port: number }>): Promise<PublishedPort[]> {
    const reply = await this.channel.request(SupervisorOp.PUBLISH, { owner, ports }, { deadlineMs: 15_000 });
    return checked(SupervisorOp.PUBLISH, PublishedPorts, reply).ports;
  }

  async unpublish(owner: string): Promise<void> {
    await this.channel.request(SupervisorOp.UNPUBLISH, { owner }, { deadlineMs: 15_000 });
  }

  async setEgressRules(rules: EgressRules): Promise<void> {
    await this.channel.request(SupervisorOp.EGRESS_RULES, rules, { deadlineMs: 15_000 });
  }

  async ports(): Promise<PublishedPort[]> {
    const reply = await this.channel.request(SupervisorOp.PORTS, {}, { deadlineMs: 5_000 });
    return checked(SupervisorOp.PORTS, PublishedPorts, reply).ports;
  }

  /** Asks for teardown and resolves once it has finished (the supervisor closes us last). */
  async shutdown(timeoutMs = 30_000): Promise<void> {
    await this.channel.request(SupervisorOp.SHUTDOWN, {}, { deadlineMs: 5_000 }).catch(() => {});
    await Promise.race([this.channel.closed, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  close(): void {
    this.channel.close();
  }
}

/** A supervisor's reply that does not match its schema is a protocol error, named by op and field. */
function checked<S extends z.ZodType>(op: string, schema: S, reply: unknown): z.output<S> {
  const parsed = schema.safeParse(reply);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(reply)"}: ${i.message}`).join("; ");
  throw new PyroError(
    "AGENT_PROTOCOL_ERROR",
    `the sandbox supervisor's reply to ${op} is malformed (${problems}); stop the workspace and start it again`,
  );
}
