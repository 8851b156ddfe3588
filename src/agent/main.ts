// The guest agent's entry point (bundled to dist/agent/pyro-agent.mjs and injected under
// /opt/pyro). It serves the guest protocol on its channel and exits when the channel closes,
// which ends the sandbox: a sandbox never outlives the host side that owns it.

import { readFileSync } from "node:fs";
import { release } from "node:os";
import { Duplex } from "node:stream";
import { serveAgentOps } from "../channel/agent-ops.js";
import { Channel } from "../channel/channel.js";
import { AGENT_NAME, type AgentInfoResult, AgentOp } from "../channel/protocol.js";
import { execCancelHandler, execHandler } from "./exec.js";
import { fileHandlers } from "./fileops.js";
import { explainingFsErrors } from "./fs-errors.js";
import { initSandbox } from "./init.js";
import { ServiceRegistry } from "./services.js";
import { shellHandlers } from "./shells.js";
import { tarHandlers } from "./tarops.js";
import { trustHandlers } from "./trust.js";
import { findVirtioPort, guestHandlers, virtioPortStream } from "./vm.js";

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

// A failure nobody awaited must not end the agent: that would end the sandbox and every shell and
// service in it. It is logged (the supervisor keeps the sandbox's stderr) and the agent serves on.
process.on("uncaughtException", (err) => console.error(`pyro-agent: uncaught: ${err.stack ?? err}`));
process.on("unhandledRejection", (err) => console.error(`pyro-agent: unhandled rejection: ${String(err)}`));

initSandbox();
const services = new ServiceRegistry();

// In a microVM the channel is a virtio-serial port (`--virtio-port NAME`); elsewhere stdio.
const portFlag = process.argv.indexOf("--virtio-port");
const portName = portFlag > 0 ? process.argv[portFlag + 1] : undefined;
const stream = portName
  ? virtioPortStream(findVirtioPort(portName))
  : Duplex.from({ readable: process.stdin, writable: process.stdout });
const channel = new Channel(stream, {
  role: "server",
  hello: { name: AGENT_NAME, version: agentVersion, capabilities: ["exec", "files", "tar", "shells", "services"] },
  handlers: explainingFsErrors(
    serveAgentOps({
      [AgentOp.INFO]: async (): Promise<AgentInfoResult> => ({
        agent_version: agentVersion,
        kernel_release: release(),
        pid: process.pid,
        uptime_ms: Date.now() - started,
      }),
      [AgentOp.EXEC]: execHandler,
      [AgentOp.EXEC_CANCEL]: execCancelHandler,
      ...fileHandlers(),
      ...tarHandlers(),
      ...shellHandlers(),
      ...services.handlers(),
      ...trustHandlers(),
      ...(portName ? guestHandlers() : {}),
    }),
  ),
});
// The VM's init waits for this line before it is saved as an image to restore sandboxes from.
if (portName) console.error("PYRO-AGENT-READY");

/** Services get a moment to stop cleanly; the sandbox ends with the agent either way. */
async function shutdown(): Promise<never> {
  await Promise.race([services.stopAll(1_000), new Promise((r) => setTimeout(r, 2_000))]);
  process.exit(0);
}
void channel.closed.then(shutdown);
process.on("SIGTERM", () => void shutdown());
