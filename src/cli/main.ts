#!/usr/bin/env node
// The `pyro` binary: wires runCli to the real process. The first Ctrl-C (or SIGTERM) aborts the
// command so a running sandbox is torn down; a second one leaves at once.
import { toPyroError } from "../contract/errors.js";
import { errorLine } from "./output.js";
import { runCli } from "./run-cli.js";

const controller = new AbortController();
let interrupts = 0;
function onSignal(signal: NodeJS.Signals): void {
  interrupts += 1;
  if (interrupts > 1) process.exit(signal === "SIGTERM" ? 143 : 130);
  controller.abort(signal);
}
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

// `pyro env list | head -1`: a reader that went away ends pyro the way SIGPIPE ends other tools
// (exit 141), not with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    process.exit(err.code === "EPIPE" ? 141 : 1);
  });
}

function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => stream.write("", () => resolve()));
}

let code: number;
try {
  code = await runCli(process.argv.slice(2), { signal: controller.signal });
} catch (err) {
  const error = toPyroError(err);
  process.stderr.write(errorLine(error.code, error.message));
  code = 1;
}
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
// Exit explicitly: the command is done, and nothing left in the event loop should keep `pyro` alive.
process.exit(code);
