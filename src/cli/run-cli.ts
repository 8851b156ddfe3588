// Owns one CLI invocation from argv to exit code, without touching the process: parsing with
// clipanion, turning parse failures into usage errors (exit 2), running the command with its
// context, and closing the manager it opened. main.ts wires it to the real process; tests call it
// with their own streams and a fake manager.
import type { Readable, Writable } from "node:stream";
import { Cli, type Command } from "clipanion";
import { LazyManager, type ManagerApi, type ManagerOptions } from "../sdk/manager.js";
import { PYRO_VERSION } from "../version.js";
import { COMMANDS } from "./commands/index.js";
import type { PyroContext } from "./context.js";
import { Output } from "./output.js";

export interface RunCliOptions {
  /** An already open manager (tests); otherwise one is opened on first use and closed at the end. */
  manager?: ManagerApi;
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  env?: Record<string, string | undefined>;
  /** Aborted on SIGINT/SIGTERM, with the signal name as reason. */
  signal?: AbortSignal;
  /** Whether stderr is a terminal a spinner may draw on; derived from the stream when omitted. */
  interactive?: boolean;
}

function isTTY(stream: Writable): boolean {
  return (stream as Writable & { isTTY?: boolean }).isTTY === true;
}

/**
 * A terminal a spinner can redraw on. Some pseudo-terminals (`script` without a controlling tty,
 * `docker exec -t` before a resize) report 0 columns, and ora then clears an endless number of lines.
 */
function canDrawOn(stream: Writable, env: Record<string, string | undefined>): boolean {
  const columns = (stream as Writable & { columns?: number }).columns ?? 0;
  return isTTY(stream) && columns > 0 && env.TERM !== "dumb" && env.CI === undefined;
}

/**
 * clipanion writes an option's value as `#0` (`--mem-mib #0`); help says what goes there instead,
 * named after the option as most CLIs do (`--mem-mib MEM_MIB`), with the option table re-aligned.
 */
export function namePlaceholders(text: string): string {
  const named = text.replace(/(--[a-z][a-z0-9-]*)((?: #\d+)+)/g, (_all, flag: string, slots: string) => {
    const name = flag.slice(2).replaceAll("-", "_").toUpperCase();
    return `${flag}${slots.replace(/#\d+/g, name)}`;
  });
  // An option row is "  DEFINITION    description"; a definition never holds two spaces in a row.
  const row = /^ {2}(-\S*(?: \S+)*) {2,}(\S.*)$/;
  const lines = named.split("\n");
  const width = Math.max(0, ...lines.map((l) => row.exec(l)?.[1]?.length ?? 0));
  return lines
    .map((l) => l.replace(row, (_all, def: string, desc: string) => `  ${def.padEnd(width)}    ${desc}`))
    .join("\n");
}

class PyroCli extends Cli<PyroContext> {
  override usage(...args: Parameters<Cli<PyroContext>["usage"]>): string {
    return namePlaceholders(super.usage(...args));
  }
}

export function buildCli(colored = false): Cli<PyroContext> {
  const cli = new PyroCli({
    binaryLabel: "pyro: disposable, isolated Linux sandboxes for coding agents",
    binaryName: "pyro",
    binaryVersion: PYRO_VERSION,
    enableColors: colored,
  });
  for (const command of COMMANDS) cli.register(command);
  return cli;
}

/**
 * `pyro host --help` or `pyro workspace file -h`: a group of commands, not one command, asked for
 * its help; as `pyro help host` it prints the group's commands and exits 0. (A bare `pyro host`
 * stays a usage error that points here.)
 */
function groupHelp(cli: Cli<PyroContext>, argv: readonly string[]): string[] | undefined {
  const words = argv.filter((a) => !a.startsWith("-"));
  const flags = argv.filter((a) => a.startsWith("-"));
  if (words.length === 0 || !(flags.includes("--help") || flags.includes("-h"))) return undefined;
  if (!flags.every((f) => HELP_FLAGS.includes(f))) return undefined;
  const path = `pyro ${words.join(" ")}`;
  const paths = cli.definitions().map((d) => d.path);
  if (paths.includes(path) || !paths.some((p) => p.startsWith(`${path} `))) return undefined;
  return ["help", ...words, ...(flags.includes("--json") ? ["--json"] : [])];
}

const HELP_FLAGS = ["--help", "-h", "--json"];

/** `--json` given among the flags (not among the guest command's words after `--`). */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).includes("--json");
}

export async function runCli(argv: readonly string[], options: RunCliOptions = {}): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const env = options.env ?? process.env;
  const interactive = options.interactive ?? canDrawOn(stderr, env);
  const colored = isTTY(stdout) && env.NO_COLOR === undefined;

  let lazy: LazyManager | undefined;
  const context: PyroContext = {
    env,
    stdin: options.stdin ?? process.stdin,
    stdout,
    stderr,
    colorDepth: colored ? 8 : 1,
    signal: options.signal ?? new AbortController().signal,
    interactive,
    manager: (opts?: ManagerOptions) => {
      lazy ??= new LazyManager(options.manager, opts);
      return lazy.get();
    },
  };

  const cli = buildCli(colored);
  const args = argv.length === 0 ? ["help"] : (groupHelp(cli, argv) ?? [...argv]);
  let command: Command<PyroContext>;
  try {
    command = cli.process(args, context);
  } catch (err) {
    const out = new Output({ stdout, stderr, json: wantsJson(args), label: "pyro", interactive: false });
    if (err instanceof Error && err.name === "UnknownSyntaxError" && err.message.startsWith("Command not found")) {
      // clipanion would list every command with its flags; point at the overview of the namespace.
      const noun = args[0] ?? "";
      const isNamespace = cli.definitions().some((d) => d.path.startsWith(`pyro ${noun} `));
      const help = isNamespace ? `pyro help ${noun}` : "pyro help";
      return out.usageError(`unknown command "pyro ${args.join(" ")}"; run ${help} to see the commands`);
    }
    if (err instanceof Error && "clipanion" in err) {
      // clipanion's rendering carries the usage line of the command it was parsing.
      const rendered = cli.error(err, { colored: false }).replace(/^[^:\n]*: /, "");
      return out.json
        ? out.usageError(err.message.split("\n\n")[0] ?? err.message)
        : out.usageError(rendered.trimEnd());
    }
    return out.failure(err);
  }

  try {
    return await cli.run(command, context);
  } finally {
    await lazy?.close();
  }
}
