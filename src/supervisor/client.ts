// Owns the host side of a supervisor connection: connect to its socket, check the hello, send
// requests (proxied to the agent), and shut the sandbox down.

import { connect } from "node:net";
import { Channel, type RequestOptions } from "../channel/channel.js";
import { PyroError } from "../contract/errors.js";
import type { EgressRules } from "../egress/rules.js";
import { PYRO_VERSION } from "../version.js";
import { type PublishedPort, SupervisorOp } from "./protocol.js";
import type { SupervisorStatus } from "./supervisor.js";

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

  status(): Promise<SupervisorStatus> {
    return this.channel.request(SupervisorOp.STATUS, {}, { deadlineMs: 5_000 }) as Promise<SupervisorStatus>;
  }

  async publish(owner: string, ports: Array<{ host_port: number; guest_port: number }>): Promise<PublishedPort[]> {
    const reply = (await this.channel.request(SupervisorOp.PUBLISH, { owner, ports }, { deadlineMs: 15_000 })) as {
      ports: PublishedPort[];
    };
    return reply.ports;
  }

  async unpublish(owner: string): Promise<void> {
    await this.channel.request(SupervisorOp.UNPUBLISH, { owner }, { deadlineMs: 15_000 });
  }

  async setEgressRules(rules: EgressRules): Promise<void> {
    await this.channel.request(SupervisorOp.EGRESS_RULES, rules, { deadlineMs: 15_000 });
  }

  async ports(): Promise<PublishedPort[]> {
    return ((await this.channel.request(SupervisorOp.PORTS, {}, { deadlineMs: 5_000 })) as { ports: PublishedPort[] })
      .ports;
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
