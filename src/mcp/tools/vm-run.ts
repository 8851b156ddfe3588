// Owns the `vm_run` tool: one command in a throwaway sandbox.
import { RunParams, RunResult } from "../../contract/schemas.js";
import { buildNote, defineTool } from "../tool.js";

export const vmRun = defineTool({
  name: "vm_run",
  title: "Run a command in a disposable sandbox",
  description: [
    "Run one command in a fresh, isolated Linux sandbox and return its output; the sandbox is destroyed",
    "when the command ends, so files and processes do not carry over to the next call.",
    "Use it for self-contained checks: run a snippet, try a tool, see what a command prints on a clean",
    "Debian system. `command` is either a shell string (run by /bin/sh -lc, so pipes, && and redirections",
    "work) or an argv array (no shell). The sandbox starts in an empty /workspace with no network unless",
    "`network` is true; `environment` defaults to debian:12 (Git, Python 3, curl and common tools).",
    "Returns stdout, stderr, exit_code, duration_ms, timed_out, stdout_truncated, stderr_truncated and",
    "execution_mode (the engine that ran it). A non-zero exit_code is a normal result describing the",
    "command, not a failure of the tool; exit_code 124 with timed_out true means timeout_seconds was hit.",
    buildNote,
  ].join(" "),
  inputSchema: RunParams,
  outputSchema: RunResult,
  // It can reach the internet when asked to (network: true), and two identical calls run twice.
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
  call: (args, { manager, signal, progress }) => manager.run(args, { signal, progress }),
});
