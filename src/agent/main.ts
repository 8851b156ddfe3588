// The guest agent's entry point (bundled to dist/agent/pyro-agent.mjs and injected under
// /opt/pyro). It serves the guest protocol on its channel and exits when the channel closes,
// which ends the sandbox: a sandbox never outlives the host side that owns it.
import { readFileSync } from "node:fs";
import { release } from "node:os";
import { Duplex } from "node:stream";
import { Channel } from "../channel/channel.js";
import { AGENT_NAME, type AgentInfoResult, AgentOp } from "../channel/protocol.js";
import { execHandler } from "./exec.js";
import { fileHandlers } from "./fileops.js";
import { initSandbox } from "./init.js";
import { tarHandlers } from "./tarops.js";

// stdout is the protocol channel: nothing else may write to it.
console.log = console.error;
console.info = console.error;

const started = Date.now();
const agentVersion = (() => {
  try {
    return (JSON.parse(readFileSync("/opt/pyro/VERSION", "utf8")) as { agent_version: string }).agent_version;
  } catch {
    return "dev";
  }
})();

initSandbox();

const stream = Duplex.from({ readable: process.stdin, writable: process.stdout });
const channel = new Channel(stream, {
  role: "server",
  hello: { name: AGENT_NAME, version: agentVersion, capabilities: ["exec", "files", "tar"] },
  handlers: {
    [AgentOp.INFO]: async (): Promise<AgentInfoResult> => ({
      agent_version: agentVersion,
      kernel_release: release(),
      pid: process.pid,
      uptime_ms: Date.now() - started,
    }),
    [AgentOp.EXEC]: execHandler,
    ...fileHandlers(),
    ...tarHandlers(),
  },
});

void channel.closed.then(() => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
