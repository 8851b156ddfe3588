// Owns `pyro help [COMMAND...]` (also `pyro -h`, `pyro --help` and bare `pyro`): the commands by
// category with first steps, or one command's details.
import { Writable } from "node:stream";
import { Command, type Definition, Option, UsageError } from "clipanion";
import { PYRO_VERSION } from "../../version.js";
import { PyroCommand } from "../base.js";
import type { Output } from "../output.js";
import { table } from "../table.js";

/** Categories in the order a newcomer needs them; clipanion would sort them alphabetically. */
const CATEGORY_ORDER = ["Sandboxes", "Workspaces", "Environments", "MCP", "Host", "General"];

const FIRST_STEPS = `
First steps:
  pyro doctor                            check the host and see which engine runs
  pyro env pull debian:12                build the default environment once
  pyro run debian:12 -- git --version    run a command in a throwaway sandbox
  pyro workspace create debian:12 --seed-path . --name fix
                                         a persistent sandbox holding a copy of this checkout
  pyro workspace exec fix -- git status  run commands in it; then workspace diff, export, delete
  pyro mcp serve                         serve the tools to an agent over MCP

Connect an agent (the command runs this installation of pyro):
  pyro host connect claude-code          register with Claude Code (also codex, gemini)
  pyro host print-config claude-code     only print the line (also cursor, vscode, claude-desktop, …)
  pyro host doctor                       check that the command the hosts run answers
`;

interface CommandSummary {
  path: string;
  usage: string;
  category: string;
  description: string;
}

function summarize(definitions: readonly Definition[]): CommandSummary[] {
  return definitions.map((d) => ({
    path: d.path,
    usage: d.usage,
    category: d.category?.trim() ?? "General",
    description: d.description?.trim() ?? "",
  }));
}

function overview(commands: readonly CommandSummary[]): string {
  const rank = (category: string) => {
    const i = CATEGORY_ORDER.indexOf(category);
    return i === -1 ? CATEGORY_ORDER.length : i;
  };
  const categories = [...new Set(commands.map((c) => c.category))].sort((a, b) => rank(a) - rank(b));
  let text = `pyro ${PYRO_VERSION}: disposable, isolated Linux sandboxes for coding agents\n\n`;
  text += "Usage: pyro <command> [options]    (every command takes --json)\n";
  for (const category of categories) {
    const rows = commands.filter((c) => c.category === category).map((c) => [`  ${c.usage}`, c.description]);
    text += `\n${category}:\n${table(rows)}`;
  }
  text += "\nDetails of one command: pyro help <command>, or pyro <command> --help\n";
  return text + FIRST_STEPS;
}

export class HelpCommand extends PyroCommand {
  static override paths = [["help"], ["-h"], ["--help"]];

  static override usage = Command.Usage({
    category: "General",
    description: "list the commands, or show one command's details",
    examples: [
      ["List every command", "$0 help"],
      ["Show the details of one command", "$0 help run"],
    ],
  });

  words = Option.Rest({ name: "COMMAND" });

  protected async perform(out: Output): Promise<undefined> {
    const commands = summarize(this.cli.definitions());
    if (this.words.length === 0) {
      out.result({ commands }, { stdout: overview(commands) });
      return undefined;
    }
    const path = `pyro ${this.words.join(" ")}`;
    const exact = commands.find((c) => c.path === path);
    if (exact) {
      out.result(exact, { stdout: await this.detailedUsage() });
      return undefined;
    }
    const under = commands.filter((c) => c.path.startsWith(`${path} `));
    if (under.length === 0) throw new UsageError(`there is no command "${path}"; see pyro help`);
    const text =
      `Usage: ${path} <command> [options]\n\n` +
      `${table(under.map((c) => [`  ${c.usage}`, c.description]))}\n` +
      `Details of one command: pyro help ${this.words.join(" ")} <command>, or ${path} <command> --help\n`;
    out.result({ commands: under }, { stdout: text });
    return undefined;
  }

  /** clipanion renders a command's details when it parses `<path> --help`; capture that text. */
  private async detailedUsage(): Promise<string> {
    let text = "";
    const capture = new Writable({
      write(chunk, _encoding, done) {
        text += String(chunk);
        done();
      },
    });
    await this.cli.run([...this.words, "--help"], { stdout: capture });
    return text;
  }
}
