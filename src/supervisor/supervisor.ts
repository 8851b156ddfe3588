// Owns one sandbox's life on the host (the containerd-shim pattern): it starts the engine, holds the
// single channel to the guest agent, serves any number of clients on a Unix socket by proxying
// their requests to the agent, watches for the sandbox dying, and tears everything down once.
import { readFile, rm, unlink, writeFile } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { z } from "zod";
import { callAgent } from "../channel/agent-ops.js";
import { Channel, type Hello } from "../channel/channel.js";
import { serveOps } from "../channel/ops.js";
import { AgentOp } from "../channel/protocol.js";
import { checkRules, type EgressRules } from "../contract/egress-rules.js";
import { PyroError, toPyroError } from "../contract/errors.js";
import type { EngineName } from "../contract/schemas.js";
import { type CredentialConfig, Credentials } from "../egress/credentials.js";
import { EgressGateway } from "../egress/gateway.js";
import { type HostProxy, UpstreamProxy } from "../egress/host-proxy.js";
import { NetworkLog } from "../egress/log.js";
import type { Engine, NetworkPolicy, Sandbox } from "../engines/types.js";
import type { InstalledEnvironment } from "../environments/index.js";
import { PYRO_VERSION } from "../version.js";
import {
  type PublishedPort,
  type PublishParams,
  SANDBOX_EXIT_FILE,
  SUPERVISOR_OPS,
  SupervisorOp,
  type SupervisorState,
  type SupervisorStatus,
} from "./protocol.js";

export interface SupervisorConfig {
  id: string;
  runDir: string;
  engine: EngineName;
  environment: InstalledEnvironment;
  vcpuCount: number;
  memMib: number;
  network: NetworkPolicy;
  /** One-shot sandboxes end when their last client disconnects, and take their run dir with them. */
  ephemeral: boolean;
  readyTimeoutMs: number;
  socketPath: string;
  /** Network policy allowlist: the rules the egress gateway starts with and where it logs. */
  egress?: {
    rules: EgressRules;
    logPath: string;
    credentials?: CredentialConfig;
    /** The host's proxy settings (host_proxy, JSON): the gateway connects upstream through it. */
    proxyFile?: string;
  };
  /** PEM files of CA certificates the guest trusts too, added at every start. */
  trustFiles?: string[];
}

export class Supervisor {
  private sandbox: Sandbox | undefined;
  private agent: Channel | undefined;
  private gateway: EgressGateway | undefined;
  private server: Server | undefined;
  private readonly clients = new Set<Socket>();
  /** Published ports by owner, with the engine's forward ids to close them by. */
  private readonly forwards = new Map<string, Array<PublishedPort & { id: number }>>();
  private everConnected = false;
  private state: SupervisorState = "starting";
  private tearingDown: Promise<void> | undefined;
  /** The teardown under way was asked for (shutdown, last client gone), not caused by the sandbox. */
  private asked = false;
  private readonly startedAt = new Date().toISOString();
  private resolveDone!: () => void;
  /** Settles when teardown has finished. */
  readonly done = new Promise<void>((resolve) => {
    this.resolveDone = resolve;
  });

  constructor(
    private readonly config: SupervisorConfig,
    private readonly engine: Engine,
    private readonly log: (line: string) => void,
  ) {}

  /** Boots the sandbox and waits, bounded, for the agent's hello. */
  async start(): Promise<Hello> {
    const { config } = this;
    await rm(join(config.runDir, SANDBOX_EXIT_FILE), { force: true });
    try {
      this.sandbox = await this.engine.start({
        id: config.id,
        runDir: config.runDir,
        environment: config.environment,
        vcpuCount: config.vcpuCount,
        memMib: config.memMib,
        network: config.network,
        log: this.log,
      });
      if (config.network === "allowlist") await this.startGateway();
      this.agent = new Channel(this.sandbox.channel, {
        role: "client",
        hello: { name: "pyro-supervisor", version: PYRO_VERSION, capabilities: [] },
      });
      const hello = await Promise.race([
        this.agent.ready,
        this.sandbox.exited.then((exit) => {
          throw new PyroError(
            "SANDBOX_START_FAILED",
            `the ${config.engine} sandbox exited (code ${exit.code}, signal ${exit.signal}) before its agent was ready; see ${config.runDir}/supervisor.log`,
          );
        }),
        new Promise<never>((_, reject) =>
          setTimeout(
            () =>
              reject(
                new PyroError(
                  "SANDBOX_START_FAILED",
                  `the ${config.engine} sandbox's agent was not ready within ${config.readyTimeoutMs} ms; see ${config.runDir}/supervisor.log`,
                ),
              ),
            config.readyTimeoutMs,
          ).unref(),
        ),
      ]);
      this.log(`agent ready: ${hello.name} ${hello.version} protocol ${hello.protocol}`);
      await this.sandbox.setup?.(this.agent);
      if (config.trustFiles?.length) await this.trust(config.trustFiles);
      // The exit watcher: whatever ends the sandbox or its channel ends the supervisor, once.
      void this.sandbox.exited.then(async (exit) => {
        // The engine names the cause when it knows it; otherwise an end nobody asked for still says so.
        const why =
          exit.reason ??
          (this.asked
            ? undefined
            : `the sandbox ended unexpectedly (exit code ${exit.code}, signal ${exit.signal}); see ${config.runDir}/supervisor.log`);
        if (why) {
          const note = `${why} (at ${new Date().toISOString()})\n`;
          await writeFile(join(config.runDir, SANDBOX_EXIT_FILE), note).catch(() => {});
        }
        await this.teardown("sandbox exited");
      });
      void this.agent.closed.then(() => this.teardown("agent channel closed"));
      this.state = "ready";
      return hello;
    } catch (err) {
      this.state = "failed";
      await this.teardown(`start failed: ${(err as Error).message}`);
      throw toPyroError(err);
    }
  }

  async listen(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await unlink(this.config.socketPath).catch(() => {});
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.config.socketPath, () => resolve());
    });
    if (this.config.ephemeral) {
      // A one-shot sandbox nobody connects to must not live forever.
      setTimeout(() => {
        if (!this.everConnected) void this.teardown("no client connected");
      }, this.config.readyTimeoutMs).unref();
    }
  }

  status(): SupervisorStatus {
    return {
      id: this.config.id,
      engine: this.config.engine,
      state: this.state,
      supervisor_pid: process.pid,
      sandbox_pids: this.sandbox?.pids() ?? [],
      started_at: this.startedAt,
      agent: this.agent?.peerHello ?? null,
    };
  }

  private accept(socket: Socket): void {
    if (this.tearingDown) {
      socket.destroy();
      return;
    }
    this.everConnected = true;
    this.clients.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => {
      this.clients.delete(socket);
      if (this.config.ephemeral && this.clients.size === 0) void this.teardown("last client disconnected");
    });
    new Channel(socket, {
      role: "server",
      hello: { name: "pyro-supervisor", version: PYRO_VERSION, capabilities: ["proxy"] },
      handlers: serveOps(SUPERVISOR_OPS, {
        [SupervisorOp.STATUS]: async () => this.status(),
        [SupervisorOp.PUBLISH]: async (params) => this.publish(params),
        [SupervisorOp.UNPUBLISH]: async ({ owner }) => ({ removed: await this.unpublish(owner) }),
        [SupervisorOp.PORTS]: async () => ({ ports: this.ports() }),
        [SupervisorOp.EGRESS_RULES]: async (params) => this.setEgressRules(params),
        [SupervisorOp.SHUTDOWN]: async () => {
          // Answer first, then tear down: the caller learns teardown ended when the socket closes.
          setImmediate(() => void this.teardown("shutdown requested"));
          return { stopping: true };
        },
      }),
      fallback: (op, params, ctx) => {
        const agent = this.agent;
        if (!agent?.isOpen || this.state !== "ready") {
          throw new PyroError("SANDBOX_NOT_RUNNING", `sandbox ${this.config.id} is ${this.state}; start it again`);
        }
        return agent
          .request(op, params, {
            deadlineMs: ctx.deadlineMs,
            signal: ctx.signal,
            input: ctx.input,
            onData: (stream, chunk) => void ctx.send(stream, chunk),
          })
          .catch((err) => this.explainLoss(op, err));
      },
    });
  }

  private async trust(files: string[]): Promise<void> {
    const pem = (await Promise.all(files.map((file) => readFile(file, "utf8")))).join("\n");
    const result = await callAgent(this.agent!, AgentOp.TRUST, { pem }, { deadlineMs: 15_000 });
    this.log(`trust: ${result.certificates} extra CA certificates in the guest's ${result.bundle}`);
  }

  /** The allowlist's gateway binds its sockets in the sandbox's namespace before the guest runs
   * anything, so the first lookup already has an answer. */
  private async startGateway(): Promise<void> {
    const { config } = this;
    const nsPath = this.sandbox?.netnsPath;
    if (!config.egress || !nsPath) {
      throw new PyroError("INTERNAL", `sandbox ${config.id} has network policy allowlist but no rules or namespace`);
    }
    const log = new NetworkLog(config.egress.logPath, (err) => this.log(`egress: network log: ${err.message}`));
    const credentials =
      config.egress.credentials &&
      (await Credentials.load(config.egress.credentials, join(config.runDir, "egress-tls"), {
        log: (entry) => log.write(entry),
      }));
    const proxy =
      config.egress.proxyFile &&
      new UpstreamProxy(JSON.parse(await readFile(config.egress.proxyFile, "utf8")) as HostProxy);
    this.gateway = await EgressGateway.start({
      nsPath,
      ...(proxy ? { proxy } : {}),
      rules: config.egress.rules,
      log,
      diagnostics: this.log,
      ...(credentials ? { credentials } : {}),
      ...(process.env.PYRO_EGRESS_HOSTS ? { hostsFile: process.env.PYRO_EGRESS_HOSTS } : {}),
    });
    this.log(
      `egress: gateway serving ${config.egress.rules.allow.length} allow and ${config.egress.rules.deny.length} deny rules${proxy ? `, upstream through the host's proxy ${proxy.address}` : ""}`,
    );
  }

  private async setEgressRules(params: EgressRules): Promise<{ rules: EgressRules }> {
    if (!this.gateway) {
      throw new PyroError(
        "NETWORK_POLICY_DENIED",
        `sandbox ${this.config.id} has network policy ${this.config.network}; only allowlist has rules to change`,
      );
    }
    const rules = { allow: checkRules(params.allow, "allow"), deny: checkRules(params.deny, "deny") };
    await this.gateway.setRules(rules);
    this.log(`egress: rules now ${rules.allow.length} allow and ${rules.deny.length} deny`);
    return { rules };
  }

  private ports(): PublishedPort[] {
    return [...this.forwards.values()].flat().map(({ id: _id, ...port }) => port);
  }

  /** Publishes every port or none: a failure closes the ones this call opened. */
  private async publish({ owner, ports }: z.output<typeof PublishParams>): Promise<{ ports: PublishedPort[] }> {
    const sandbox = this.sandbox;
    if (!sandbox?.publishPort || this.state !== "ready") {
      throw new PyroError(
        "NETWORK_POLICY_DENIED",
        `sandbox ${this.config.id} cannot publish ports under network policy ${this.config.network}; create the workspace with --network-policy egress+published-ports`,
      );
    }
    if (this.config.network !== "egress+published-ports") {
      throw new PyroError(
        "NETWORK_POLICY_DENIED",
        `publishing ports needs network policy egress+published-ports (this workspace has ${this.config.network}); create a workspace with --network-policy egress+published-ports`,
      );
    }
    const opened: Array<PublishedPort & { id: number }> = [];
    try {
      for (const port of ports) {
        const { id, host_port } = await sandbox.publishPort(port.host_port, port.guest_port);
        opened.push({ id, owner, host: "127.0.0.1", host_port, guest_port: port.guest_port });
      }
    } catch (err) {
      for (const port of opened) await sandbox.unpublishPort?.(port.id).catch(() => {});
      throw err;
    }
    this.forwards.set(owner, [...(this.forwards.get(owner) ?? []), ...opened]);
    this.log(`published ${opened.map((p) => `127.0.0.1:${p.host_port}->${p.guest_port}`).join(", ")} for ${owner}`);
    return { ports: opened.map(({ id: _id, ...port }) => port) };
  }

  private async unpublish(owner: string): Promise<number> {
    const ports = this.forwards.get(owner) ?? [];
    this.forwards.delete(owner);
    for (const port of ports) {
      await this.sandbox
        ?.unpublishPort?.(port.id)
        .catch((err: Error) => this.log(`unpublish ${port.host_port}: ${err.message}`));
    }
    return ports.length;
  }

  /** A request cut off by the sandbox dying gets the cause (out of memory, killed) rather than a
   * bare closed-connection error. */
  private async explainLoss(op: string, err: unknown): Promise<never> {
    if (err instanceof PyroError && err.code === "CHANNEL_CLOSED" && this.sandbox) {
      const exit = await Promise.race([
        this.sandbox.exited,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 2_000)),
      ]);
      if (exit?.reason) throw new PyroError("SANDBOX_NOT_RUNNING", `the sandbox stopped during ${op}: ${exit.reason}`);
    }
    throw err;
  }

  /** Stops the sandbox and releases everything, exactly once however many callers ask. */
  teardown(reason: string): Promise<void> {
    if (!this.tearingDown && reason !== "sandbox exited" && reason !== "agent channel closed") this.asked = true;
    this.tearingDown ??= this.doTeardown(reason);
    return this.tearingDown;
  }

  private async doTeardown(reason: string): Promise<void> {
    this.log(`teardown: ${reason}`);
    if (this.state !== "failed") this.state = "stopping";
    this.server?.close();
    this.agent?.close();
    this.gateway?.close();
    try {
      await this.sandbox?.stop();
    } catch (err) {
      this.log(`teardown: stopping the sandbox failed: ${(err as Error).message}`);
    }
    await unlink(this.config.socketPath).catch(() => {});
    if (this.config.ephemeral) await rm(this.config.runDir, { recursive: true, force: true }).catch(() => {});
    if (this.state !== "failed") this.state = "stopped";
    for (const socket of this.clients) socket.destroy();
    this.log("teardown: done");
    this.resolveDone();
  }
}
