// Owns `pyro workspace service start`: a named background process, ready when its probe says so.
import { Command, Option, UsageError } from "clipanion";
import * as t from "typanion";
import { DEFAULTS } from "../../../../contract/defaults.js";
import { ServiceStartParams } from "../../../../contract/interactive.js";
import { PyroCommand } from "../../../base.js";
import { commandFromWords } from "../../../command-words.js";
import { parseFlags, secretEnvFlags } from "../../../flags.js";
import type { Output } from "../../../output.js";
import { describeService, SERVICE_POSITIONALS, serviceStatus } from "./render.js";

export class ServiceStartCommand extends PyroCommand {
  static override paths = [["workspace", "service", "start"]];

  static override usage = Command.Usage({
    category: "Services",
    description: "start a service in a workspace",
    details: `
      Starts \`CMD\` in the background as the service \`NAME\` and waits until it is ready: \`--ready-http URL\` answers with a 2xx or 3xx status, \`--ready-tcp HOST:PORT\` accepts a connection, \`--ready-file PATH\` exists, or \`--ready-command CMD\` exits 0 — each checked inside the sandbox every \`--ready-interval-ms\` (default ${DEFAULTS.readinessIntervalMs}) for up to \`--ready-timeout-seconds\` (default ${DEFAULTS.readinessTimeoutSeconds}). Without a probe it counts as running once started. A service that is not ready in time is stopped and reported \`failed\` with its last log lines, and pyro exits 1.

      \`--publish [HOST_PORT:]GUEST_PORT\` (repeatable) forwards 127.0.0.1:HOST_PORT on the host (a free port when left out) to the guest port; the workspace needs \`--network-policy egress+published-ports\` and the service must listen on 0.0.0.0. The ports close when the service stops or the workspace stops, resets or is deleted.
    `,
    examples: [
      [
        "A web server reachable from the host",
        "$0 workspace service start repro-fix web --ready-http http://127.0.0.1:8000/ --publish 8000 -- python3 -m http.server 8000",
      ],
      ["A worker with no readiness probe", "$0 workspace service start repro-fix worker -- ./worker.sh"],
    ],
  });

  workspace = Option.String({ name: "WS" });
  name = Option.String({ name: "NAME" });
  cwd = Option.String("--cwd", { description: "Working directory inside /workspace (default /workspace)" });
  readyFile = Option.String("--ready-file", { description: "Ready once this path exists" });
  readyTcp = Option.String("--ready-tcp", { description: "Ready once HOST:PORT accepts connections" });
  readyHttp = Option.String("--ready-http", { description: "Ready once this URL answers 2xx or 3xx" });
  readyCommand = Option.String("--ready-command", { description: "Ready once this shell command exits 0" });
  readyTimeoutSeconds = Option.String("--ready-timeout-seconds", {
    validator: t.isNumber(),
    description: `Give up after this long (default ${DEFAULTS.readinessTimeoutSeconds})`,
  });
  readyIntervalMs = Option.String("--ready-interval-ms", {
    validator: t.isNumber(),
    description: `Check this often (default ${DEFAULTS.readinessIntervalMs})`,
  });
  secretEnv = Option.Array("--secret-env", {
    description: "Expose a workspace secret as an environment variable: NAME or NAME=ENV_VAR (repeatable)",
  });
  publish = Option.Array("--publish", { description: "[HOST_PORT:]GUEST_PORT to forward from 127.0.0.1 (repeatable)" });
  words = Option.Rest({ name: "CMD" });

  protected async perform(out: Output): Promise<number> {
    const command = commandFromWords(this.words);
    if (command === undefined) {
      throw new UsageError(
        `pyro workspace service start needs a command after --, e.g. pyro workspace service start ${this.workspace} ${this.name} -- python3 -m http.server 8000`,
      );
    }
    const params = parseFlags(
      ServiceStartParams,
      {
        workspace: this.workspace,
        service_name: this.name,
        command,
        cwd: this.cwd,
        readiness: this.readiness(),
        ready_timeout_seconds: this.readyTimeoutSeconds,
        ready_interval_ms: this.readyIntervalMs,
        secret_env: secretEnvFlags(this.secretEnv),
        publish: (this.publish ?? []).map(parsePublish),
      },
      { ...SERVICE_POSITIONALS, secret_env: "--secret-env", publish: "--publish", readiness: "--ready-*" },
    );
    const { signal } = this.context;
    const info = await (await this.context.manager()).services.start(params, { signal });
    const failed = info.state === "failed" || info.state === "exited";
    out.result(info, failed ? { stderr: describeService(info) } : { stdout: describeService(info) });
    out.status(serviceStatus(info));
    return failed ? 1 : 0;
  }

  private readiness(): Record<string, unknown> | undefined {
    const given = [
      this.readyFile !== undefined && { type: "file", path: this.readyFile },
      this.readyTcp !== undefined && tcpTarget(this.readyTcp),
      this.readyHttp !== undefined && { type: "http", url: this.readyHttp },
      this.readyCommand !== undefined && { type: "command", command: this.readyCommand },
    ].filter((r): r is Record<string, unknown> => r !== false);
    if (given.length > 1) {
      throw new UsageError("give at most one of --ready-file, --ready-tcp, --ready-http and --ready-command");
    }
    return given[0];
  }
}

function tcpTarget(value: string): Record<string, unknown> {
  const colon = value.lastIndexOf(":");
  const port = Number(value.slice(colon + 1));
  if (colon <= 0 || !Number.isInteger(port)) throw new UsageError(`--ready-tcp must be HOST:PORT (got ${value})`);
  return { type: "tcp", host: value.slice(0, colon), port };
}

function parsePublish(value: string): { host_port?: number; guest_port: number } {
  const match = /^(?:(\d+):)?(\d+)$/.exec(value);
  if (!match) throw new UsageError(`--publish must be [HOST_PORT:]GUEST_PORT, e.g. 8080:8000 or 8000 (got ${value})`);
  return { ...(match[1] === undefined ? {} : { host_port: Number(match[1]) }), guest_port: Number(match[2]) };
}
