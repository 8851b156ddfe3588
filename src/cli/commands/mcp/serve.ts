// Owns `pyro mcp serve`: pyro's MCP server on stdio, for Claude Code, Codex, Cursor and friends.
import { Command, Option, UsageError } from "clipanion";
import * as t from "typanion";
import { z } from "zod";
import { EngineChoice } from "../../../contract/schemas.js";
import { HostPaths } from "../../../mcp/host-paths.js";
import { DEFAULT_PROFILE, McpMode, McpProfile, PROFILE_TOOLS } from "../../../mcp/profiles.js";
import { resolveProjectSource } from "../../../mcp/project.js";
import { PyroCommand } from "../../base.js";
import { parseFlags } from "../../flags.js";
import type { Output } from "../../output.js";

const ServeFlags = z.object({
  profile: McpProfile.optional(),
  mode: McpMode.optional(),
  engine: EngineChoice.default("auto"),
  transport: z.enum(["stdio", "http"]).default("stdio"),
  port: z.number().int().min(0).max(65_535).default(0),
  token: z.string().min(16, "must be at least 16 characters").optional(),
  maxSourceMib: z.number().int().min(1).optional(),
});

export class McpServeCommand extends PyroCommand {
  static override paths = [["mcp", "serve"]];

  static override usage = Command.Usage({
    category: "MCP",
    description: "serve pyro's tools to an agent over MCP (stdio or HTTP)",
    details: `
      Speaks the Model Context Protocol on stdin/stdout until the client disconnects; logs go to stderr. An agent host starts it for you once it is registered: \`pyro host print-config HOST\` prints the line or config that does that for this installation, and \`pyro host connect HOST\` runs it.

      \`--mode\` narrows the tools to one use case and words their descriptions for it: \`repro-fix\` (reproduce, fix, diff), \`inspect\` (untrusted code: no network, no file writes), \`cold-start\` (install, build, test and start a repository from scratch) or \`review-eval\` (apply a candidate change and measure it). With a mode the profile defaults to \`workspace-full\`.

      Started inside a git checkout, new workspaces created without \`seed_path\` start with that checkout's git-tracked files as they are on disk (untracked and ignored files are left out; the checkout is never written). \`--project-path P\` names another checkout, \`--repo-url URL [--repo-ref REF]\` uses a clean clone instead, and \`--no-project-source\` starts them empty.

      \`--transport http\` serves Streamable HTTP instead, for clients that cannot start a process: on 127.0.0.1 only (\`--port\`, default a free one), at \`/mcp\`, with a bearer token that every request must send (\`--token\`, or \`$PYRO_MCP_TOKEN\`, or one generated and printed on stderr), and with DNS-rebinding protection (requests whose Host or Origin is not this server are refused).

      Host paths a caller names (\`seed_path\`, \`source_path\`, \`output_path\`, a secret's \`file_path\`) must lie under the project directory (the checkout, or the directory the server was started in), after symlinks are resolved; relative ones start there. \`--allow-host-path DIR\` (repeatable) allows more directories, \`--allow-any-host-path\` any path this user can reach. A directory or archive copied in is at most 2048 MiB (\`--max-source-mib\`) and 500,000 entries. Refusals are \`HOST_PATH_NOT_ALLOWED\`. The CLI and the SDK are not limited this way.

      \`--profile\` chooses the tools: \`vm-run\` exposes only \`vm_run\`; \`workspace-core\` (the default) adds the persistent-workspace tools; \`workspace-full\` exposes every tool. \`--engine\` is the engine for calls that leave it at \`auto\`.
    `,
    examples: [
      ["Serve the default profile", "$0 mcp serve"],
      ["Serve only vm_run", "$0 mcp serve --profile vm-run"],
      ["Serve the tools for inspecting untrusted code", "$0 mcp serve --mode inspect"],
      ["Serve over HTTP on a fixed port", "$0 mcp serve --transport http --port 8765"],
      ["Register with Claude Code", "pyro host connect claude-code"],
    ],
  });

  profile = Option.String("--profile", {
    description: "vm-run, workspace-core or workspace-full (default workspace-core)",
  });
  engine = Option.String("--engine", { description: "auto, gvisor, qemu or firecracker (default auto)" });
  mode = Option.String("--mode", {
    description: "repro-fix, inspect, cold-start or review-eval: only that use case's tools",
  });
  projectPath = Option.String("--project-path", {
    description: "Seed new workspaces with this git checkout's tracked files (default: the checkout pyro runs in)",
  });
  repoUrl = Option.String("--repo-url", { description: "Seed new workspaces with a clean clone of this repository" });
  repoRef = Option.String("--repo-ref", { description: "The branch, tag or commit of --repo-url (default its HEAD)" });
  noProjectSource = Option.Boolean("--no-project-source", false, {
    description: "New workspaces start empty unless seed_path is given",
  });
  transport = Option.String("--transport", { description: "stdio or http (default stdio)" });
  port = Option.String("--port", {
    validator: t.isNumber(),
    description: "HTTP port on 127.0.0.1 (default: a free one)",
  });
  token = Option.String("--token", { description: "HTTP bearer token (default $PYRO_MCP_TOKEN, or a generated one)" });
  allowHostPath = Option.Array("--allow-host-path", [], {
    description: "Also let callers read and write host paths under DIR (repeatable; default: the project directory)",
  });
  allowAnyHostPath = Option.Boolean("--allow-any-host-path", false, {
    description: "Let callers name any host path this user can reach",
  });
  maxSourceMib = Option.String("--max-source-mib", {
    validator: t.isNumber(),
    description: "Largest directory or archive a caller may copy in (default 2048)",
  });

  protected override readonly handlesInterrupt = true;

  protected async perform(out: Output): Promise<undefined> {
    const flags = parseFlags(ServeFlags, {
      profile: this.profile,
      mode: this.mode,
      engine: this.engine,
      transport: this.transport,
      port: this.port,
      token: this.token ?? process.env.PYRO_MCP_TOKEN,
      maxSourceMib: this.maxSourceMib,
    });
    const { engine, transport, port, token, mode } = flags;
    const profile = flags.profile ?? (mode ? "workspace-full" : DEFAULT_PROFILE);
    if ([this.projectPath, this.repoUrl, this.noProjectSource || undefined].filter((v) => v !== undefined).length > 1) {
      throw new UsageError("give at most one of --project-path, --repo-url and --no-project-source");
    }
    const project = await resolveProjectSource({
      projectPath: this.projectPath,
      repoUrl: this.repoUrl,
      repoRef: this.repoRef,
      noProjectSource: this.noProjectSource,
    });
    const hostPaths = new HostPaths({
      roots: [project?.directory ?? process.cwd(), ...this.allowHostPath],
      anyPath: this.allowAnyHostPath,
      maxSourceBytes: flags.maxSourceMib === undefined ? undefined : flags.maxSourceMib * 1024 ** 2,
    });
    await hostPaths.check();
    const { stdin, stdout, stderr, signal } = this.context;
    const log = (line: string) => stderr.write(`${line}\n`);
    if (transport === "http") {
      // The server's modules (the MCP SDK among them) load only here: other commands start faster.
      const { serveHttp } = await import("../../../mcp/http.js");
      const manager = await this.context.manager({ engine });
      await serveHttp({
        profile,
        mode,
        project,
        hostPaths,
        manager,
        port,
        token,
        signal,
        log,
        // The token goes to the operator: stderr in text mode, the JSON line on stdout with --json.
        onListening: ({ url, token: bearer }) =>
          out.result(
            { transport, url, token: bearer, profile },
            { stderr: `pyro MCP server (${profile}) at ${url}\nAuthorization: Bearer ${bearer}\n` },
          ),
      });
      return undefined;
    }
    if (stdout === process.stdout) {
      // A stray console.log anywhere in the process would corrupt the protocol stream.
      console.log = console.info = console.debug = (...args: unknown[]) => console.error(...args);
    }
    const [{ serveStdio }, { applyMode }, { toolsFor }] = await Promise.all([
      import("../../../mcp/server.js"),
      import("../../../mcp/modes.js"),
      import("../../../mcp/tools/index.js"),
    ]);
    const manager = await this.context.manager({ engine });
    const tools = mode ? applyMode(mode, toolsFor(profile)).map((t) => t.name) : PROFILE_TOOLS[profile];
    out.status({
      profile,
      mode,
      engine,
      seed: project?.origin,
      host_paths: hostPaths.anyPath ? "any" : hostPaths.roots.join(","),
      tools: tools.join(","),
      transport: "stdio",
    });
    await serveStdio({
      profile,
      mode,
      project,
      hostPaths,
      manager,
      stdin,
      stdout,
      signal,
      log: (line) => stderr.write(`${line}\n`),
    });
    return undefined;
  }
}
