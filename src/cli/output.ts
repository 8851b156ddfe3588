// Owns everything a CLI command prints, so every command keeps the contract's output rules: in
// --json mode exactly one JSON object (keys sorted) on stdout and nothing else there; in text mode
// the result on stdout and `[command] key=value ...` status lines on stderr; progress only as a
// spinner on an interactive stderr; errors as `error[CODE]: <message>` (or `{"error":{code,message}}`).
import type { Writable } from "node:stream";
import ora, { type Ora } from "ora";
import { type PyroError, toPyroError } from "../contract/errors.js";
import { stableJson } from "../sdk/json.js";
import type { ProgressReporter } from "../sdk/manager.js";

export type StatusValue = string | number | boolean | null | undefined;

export interface OutputOptions {
  stdout: Writable;
  stderr: Writable;
  json: boolean;
  /** The command path (`env pull`), shown in status lines. */
  label: string;
  interactive: boolean;
  /** Print stacks of unexpected errors (PYRO_DEBUG=1). */
  debug?: boolean;
}

function statusValue(value: Exclude<StatusValue, undefined>): string {
  if (value === null) return "none";
  const text = String(value);
  return text === "" || /[\s"=]/.test(text) ? JSON.stringify(text) : text;
}

/**
 * A guest command's stdout and stderr as pyro prints them (`run`, `workspace exec`): unchanged,
 * except that stderr ends in a newline so the status line after it starts on a line of its own.
 */
export function guestStreams(result: { stdout: string; stderr: string }): { stdout: string; stderr: string } {
  const { stdout, stderr } = result;
  return { stdout, stderr: stderr === "" || stderr.endsWith("\n") ? stderr : `${stderr}\n` };
}

/** Text mode's way of showing a command's output: each piece written as it arrives (`onOutput`,
 * undefined in JSON mode), then `rest` gives what the result holds beyond that (a runtime that
 * streams nothing), stderr ended by a newline so that a status line after it starts on its own. */
export function streamedOutput(
  json: boolean,
  stdout: NodeJS.WritableStream,
  stderr: NodeJS.WritableStream,
): {
  onOutput: ((stream: "stdout" | "stderr", text: string) => void) | undefined;
  rest: (result: { stdout: string; stderr: string }) => { stdout: string; stderr: string };
} {
  const shown = { stdout: "", stderr: "" };
  return {
    onOutput: json
      ? undefined
      : (stream, text) => {
          shown[stream] += text;
          (stream === "stdout" ? stdout : stderr).write(text);
        },
    rest: (result) => {
      const newline = result.stderr === "" || result.stderr.endsWith("\n") ? "" : "\n";
      return {
        stdout: result.stdout.slice(shown.stdout.length),
        stderr: `${result.stderr.slice(shown.stderr.length)}${newline}`,
      };
    },
  };
}

export class Output {
  private spinner: Ora | undefined;

  constructor(private readonly opts: OutputOptions) {}

  get json(): boolean {
    return this.opts.json;
  }

  /** The command's result: `payload` in --json mode; otherwise the given text on each stream. */
  result(payload: unknown, text: { stdout?: string; stderr?: string } = {}): void {
    this.stopProgress();
    if (this.opts.json) {
      this.opts.stdout.write(`${stableJson(payload, 2)}\n`);
      return;
    }
    if (text.stdout) this.opts.stdout.write(text.stdout);
    if (text.stderr) this.opts.stderr.write(text.stderr);
  }

  /** `[label] key=value ...` on stderr in text mode; undefined values are left out. */
  status(fields: Record<string, StatusValue>): void {
    if (this.opts.json) return;
    const parts = Object.entries(fields)
      .filter((entry): entry is [string, Exclude<StatusValue, undefined>] => entry[1] !== undefined)
      .map(([key, value]) => `${key}=${statusValue(value)}`);
    this.opts.stderr.write(`[${this.opts.label}] ${parts.join(" ")}\n`);
  }

  /** A reporter that shows the current phase as a spinner, or undefined where none may be drawn. */
  progress(): ProgressReporter | undefined {
    if (this.opts.json || !this.opts.interactive) return undefined;
    return {
      phase: (name, detail) => {
        const full = detail ? `${name}: ${detail}` : name;
        // One line only: a wrapped spinner line leaves debris behind when the terminal is resized.
        const columns = (this.opts.stderr as Writable & { columns?: number }).columns ?? 80;
        const room = Math.max(10, columns - 4);
        const text = full.length > room ? `${full.slice(0, room - 1)}…` : full;
        if (this.spinner) this.spinner.text = text;
        // stdin is left alone: discarding it puts the terminal in raw mode and Ctrl-C must reach us.
        else this.spinner = ora({ stream: this.opts.stderr, isEnabled: true, discardStdin: false, text }).start();
      },
    };
  }

  stopProgress(): void {
    this.spinner?.stop();
    this.spinner = undefined;
  }

  /** An `error:` line for a result that is itself a failure (doctor); --json has it in the payload. */
  problem(message: string): void {
    if (!this.opts.json) this.opts.stderr.write(`error: ${message}\n`);
  }

  /** A usage error: exit 2, with the command's usage line in text mode. */
  usageError(message: string, usage?: string): number {
    this.stopProgress();
    if (this.opts.json) {
      this.writeJsonError("INVALID_ARGUMENT", message);
    } else {
      this.opts.stderr.write(errorLine("INVALID_ARGUMENT", message));
      if (usage) this.opts.stderr.write(`\n${usage.trimEnd()}\n`);
    }
    return 2;
  }

  /** A failed operation: exit 1. Anything that is not a PyroError is reported as a pyro bug. */
  failure(err: unknown): number {
    this.stopProgress();
    const error: PyroError = toPyroError(err);
    if (this.opts.json) this.writeJsonError(error.code, error.message);
    else this.opts.stderr.write(errorLine(error.code, error.message));
    if (this.opts.debug && err instanceof Error && err.stack) this.opts.stderr.write(`${err.stack}\n`);
    return 1;
  }

  /** Ctrl-C (or SIGTERM): stderr only, since a JSON reader sees the exit status. */
  interrupted(signal: string): number {
    this.stopProgress();
    this.opts.stderr.write(errorLine("CANCELLED", "interrupted"));
    return signal === "SIGTERM" ? 143 : 130;
  }

  private writeJsonError(code: string, message: string): void {
    this.opts.stdout.write(`${stableJson({ error: { code, message } }, 2)}\n`);
  }
}

/** How a failure reads in text mode: its code first, so `pyro explain CODE` is one copy away. */
export function errorLine(code: string, message: string): string {
  return `error[${code}]: ${message}\n`;
}
