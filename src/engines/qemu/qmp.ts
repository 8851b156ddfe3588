// Owns talking to a running QEMU over QMP, its JSON control protocol on a Unix socket. QEMU serves
// one QMP client at a time, so each call is one short connection: greeting, capabilities, the
// commands in order, close. Concurrent callers queue in the socket's backlog until it is their turn.
import { createConnection } from "node:net";
import { PyroError } from "../../contract/errors.js";

export interface QmpCommand {
  execute: string;
  arguments?: Record<string, unknown>;
}

/** Runs `commands` in order and returns their results; a QMP error rejects with QEMU's words. */
export function qmp(socketPath: string, commands: QmpCommand[], timeoutMs = 10_000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(socketPath);
    const results: unknown[] = [];
    // The greeting, then the capabilities handshake, then one reply per command.
    let step = -2;
    let buffered = "";
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new PyroError("INTERNAL", `QEMU did not answer on ${socketPath} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const send = (cmd: QmpCommand) => socket.write(`${JSON.stringify(cmd)}\n`);
    socket.setEncoding("utf8");
    socket.on("error", (err) => fail(new PyroError("SANDBOX_NOT_RUNNING", `QEMU's control socket: ${err.message}`)));
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { event?: string; QMP?: unknown; return?: unknown; error?: { desc: string } };
        if (msg.event) continue;
        if (msg.error) {
          const what = step >= 0 ? commands[step]!.execute : "qmp_capabilities";
          fail(new PyroError("INTERNAL", `QEMU refused ${what}: ${msg.error.desc}`));
          return;
        }
        if (step >= 0) results.push(msg.return);
        step++;
        if (step === -1) send({ execute: "qmp_capabilities" });
        else if (step < commands.length) send(commands[step]!);
        else {
          clearTimeout(timer);
          socket.end();
          resolve(results);
          return;
        }
      }
    });
  });
}

/** Runs a human-monitor command (for what QMP has no command of its own, like hostfwd_add);
 * its output is empty on success and an error message otherwise. */
export async function hmp(socketPath: string, command: string): Promise<void> {
  const [output] = await qmp(socketPath, [
    { execute: "human-monitor-command", arguments: { "command-line": command } },
  ]);
  if (typeof output === "string" && output.trim())
    throw new PyroError("INTERNAL", `QEMU: ${command}: ${output.trim()}`);
}
