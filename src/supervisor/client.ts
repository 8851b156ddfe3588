// Owns the host side of a supervisor connection: connect to its socket, check the hello, send
// requests (proxied to the agent), and shut the sandbox down.

import { connect } from "node:net";
import type { z } from "zod";
import { callAgent } from "../channel/agent-ops.js";
import { Channel, type RequestOptions } from "../channel/channel.js";
import { callOp, type Peer } from "../channel/ops.js";
import type { AgentOpName, AgentParams, AgentResult } from "../channel/protocol.js";
import type { EgressRules } from "../contract/egress-rules.js";
import { PyroError } from "../contract/errors.js";
import { PYRO_VERSION } from "../version.js";
import { type PublishedPort, SUPERVISOR_OPS, SupervisorOp, type SupervisorStatus } from "./protocol.js";

const SUPERVISOR: Peer = {
  name: "the sandbox supervisor",
  fix: "stop the workspace and start it again",
};

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
    return this.supervisor(SupervisorOp.STATUS, {}, 5_000);
  }

  async publish(owner: string, ports: Array<{ host_port: number; guest_port: number }>): Promise<PublishedPort[]> {
    return (await this.supervisor(SupervisorOp.PUBLISH, { owner, ports }, 15_000)).ports;
  }

  async unpublish(owner: string): Promise<void> {
    await this.supervisor(SupervisorOp.UNPUBLISH, { owner }, 15_000);
  }

  async setEgressRules(rules: EgressRules): Promise<void> {
    await this.supervisor(SupervisorOp.EGRESS_RULES, rules, 15_000);
  }

  async ports(): Promise<PublishedPort[]> {
    return (await this.supervisor(SupervisorOp.PORTS, {}, 5_000)).ports;
  }

  /** One of the supervisor's own operations, params and reply checked against SUPERVISOR_OPS. */
  private supervisor<K extends keyof typeof SUPERVISOR_OPS & string>(
    name: K,
    params: z.input<(typeof SUPERVISOR_OPS)[K]["params"]>,
    deadlineMs: number,
  ): Promise<z.output<(typeof SUPERVISOR_OPS)[K]["result"]>> {
    return callOp(SUPERVISOR_OPS, SUPERVISOR, this.channel, name, params, { deadlineMs });
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
