// `pyro mcp serve` as an agent host runs it: the real binary over stdio, driven by the MCP SDK's
// own Client and by the MCP Inspector CLI, against real sandboxes.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, LoggingMessageNotificationSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import { RunResult } from "../../src/contract/schemas.js";
import { WorkspaceExecResult, WorkspaceLogsResult } from "../../src/contract/workspace.js";
import { PROFILE_TOOLS } from "../../src/mcp/profiles.js";
import { PACKAGE_ROOT } from "../../src/version.js";
import { httpAnnouncement } from "../helpers/mcp-http.js";
import { removeStateDir } from "../helpers/state-dir.js";

const MAIN = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
const INSPECTOR = join(PACKAGE_ROOT, "node_modules", "@modelcontextprotocol", "inspector-cli");
const stateDir = mkdtempSync(join(tmpdir(), "pyro-mcp-test-"));
const env = { ...process.env, PYRO_STATE_DIR: stateDir } as Record<string, string>;

before(() => {
  assert.ok(existsSync(MAIN), `${MAIN} is missing: run npm run build first`);
});

after(() => {
  removeStateDir(stateDir);
});

async function connect(profile: string) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [MAIN, "mcp", "serve", "--profile", profile],
    env,
    stderr: "pipe",
  });
  let serverLog = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    serverLog += chunk.toString();
  });
  // Anything but protocol messages on the server's stdout surfaces here as a parse error.
  const transportErrors: Error[] = [];
  const client = new Client({ name: "pyro-integration", version: "1.0.0" });
  await client.connect(transport);
  transport.onerror = (err) => transportErrors.push(err);
  return { client, transportErrors, log: () => serverLog };
}

describe("pyro mcp serve over stdio (real SDK client)", () => {
  it("refuses a message over the stdio limit by size and keeps serving", async () => {
    const { client, log } = await connect("workspace-core");
    try {
      // 40 MiB: over pyro's 32 MiB limit and far over the SDK's own 10 MiB buffer, which used to
      // close the transport and end the server silently with exit 0.
      const huge = "x".repeat(40 * 1024 * 1024);
      await assert.rejects(
        client.callTool({ name: "workspace_status", arguments: { workspace: huge } }),
        (err: unknown) =>
          err instanceof McpError &&
          err.code === ErrorCode.InvalidRequest &&
          /message of 40\.0 MiB is over pyro's 32\.0 MiB limit for one stdio message/.test(err.message),
      );
      const { tools } = await client.listTools();
      assert.ok(tools.length > 0, "the server still answers");
      assert.match(log(), /refused a \d+-byte message \(limit 33554432\)/);
    } finally {
      await client.close();
    }
  });

  it("serves vm_run alone in the vm-run profile and runs real commands", async () => {
    const { client, transportErrors, log } = await connect("vm-run");
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(
        tools.map((t) => t.name),
        ["vm_run"],
      );

      const ok = await client.callTool({ name: "vm_run", arguments: { command: "git --version" } });
      assert.notEqual(ok.isError, true);
      const okResult = RunResult.parse(ok.structuredContent);
      assert.equal(okResult.exit_code, 0);
      assert.match(okResult.stdout, /^git version /);

      const failed = await client.callTool({
        name: "vm_run",
        arguments: { command: ["sh", "-c", "echo e >&2; exit 5"] },
      });
      assert.notEqual(failed.isError, true, "a command that fails is a normal result");
      const failedResult = RunResult.parse(failed.structuredContent);
      assert.equal(failedResult.exit_code, 5);
      assert.equal(failedResult.stderr, "e\n");
      assert.deepEqual(JSON.parse((failed.content as { text: string }[])[0]?.text ?? ""), failed.structuredContent);

      const unknownEnv = await client.callTool({
        name: "vm_run",
        arguments: { command: "true", environment: "debian:99" },
      });
      assert.equal(unknownEnv.isError, true);
      assert.match((unknownEnv.content as { text: string }[])[0]?.text ?? "", /^ENVIRONMENT_UNKNOWN: .*debian:99/);

      await assert.rejects(
        client.callTool({ name: "vm_run", arguments: { command: "true", timeout_seconds: 0 } }),
        (err: unknown) =>
          err instanceof McpError &&
          err.code === ErrorCode.InvalidParams &&
          /timeout_seconds must be ≥ 1/.test(err.message),
      );
      assert.deepEqual(transportErrors, []);
      assert.match(log(), /\[mcp serve\] profile=vm-run/);
    } finally {
      await client.close();
    }
  });

  it("adds vm_list_environments in workspace-full", async () => {
    const { client } = await connect("workspace-full");
    try {
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), [...PROFILE_TOOLS["workspace-full"]].sort());
      assert.ok(tools.some((t) => t.name === "vm_list_environments"));
      const list = await client.callTool({ name: "vm_list_environments", arguments: {} });
      const names = (list.structuredContent as { environments: { name: string }[] }).environments.map((e) => e.name);
      assert.ok(names.includes("debian:12"));
    } finally {
      await client.close();
    }
  });
});

describe("workspace-full over stdio: shells, services, published ports and secrets (real SDK client)", () => {
  it("drives a shell, serves HTTP on a published port and never shows a secret", async () => {
    const { client, transportErrors } = await connect("workspace-full");
    const call = async (name: string, args: Record<string, unknown>) => {
      const result = await client.callTool({ name, arguments: args });
      assert.notEqual(result.isError, true, `${name}: ${JSON.stringify(result.content)}`);
      const text = (result.content as Array<{ text: string }>)[0]?.text ?? "";
      assert.ok(!text.includes(SECRET), `${name} showed the secret`);
      // biome-ignore lint/suspicious/noExplicitAny: payload fields are checked by the assertions below
      return result.structuredContent as Record<string, any>;
    };
    const SECRET = "mcp-secret-4c1f7e2a9b";
    let workspace: string | undefined;
    try {
      const created = await call("workspace_create", {
        network_policy: "egress+published-ports",
        secrets: [{ name: "TOKEN", value: SECRET }],
      });
      workspace = created.workspace_id as string;
      assert.deepEqual(created.secrets, [{ name: "TOKEN", source_kind: "literal" }]);

      const shell = await call("shell_open", { workspace, secret_env: { TOKEN: "TOKEN" } });
      await call("shell_write", {
        workspace,
        shell_id: shell.shell_id,
        input: "printf '\\033[32mgreen\\033[0m %s\\n' \"$TOKEN\"",
      });
      const read = await call("shell_read", {
        workspace,
        shell_id: shell.shell_id,
        plain: true,
        wait_for_idle_ms: 500,
      });
      assert.match(read.output, /^green \[REDACTED\]$/m);
      assert.ok(!read.output.includes("\x1b"));
      await call("shell_close", { workspace, shell_id: shell.shell_id });

      const web = await call("service_start", {
        workspace,
        service_name: "web",
        command: "python3 -m http.server 8000",
        readiness: { type: "http", url: "http://127.0.0.1:8000/" },
        publish: [{ guest_port: 8000 }],
      });
      assert.equal(web.state, "ready");
      const port = web.published_ports[0].host_port as number;
      const response = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(response.status, 200);
      await response.arrayBuffer();
      const listed = await call("service_list", { workspace });
      assert.equal(listed.running_count, 1);
      const stopped = await call("service_stop", { workspace, service_name: "web" });
      assert.equal(stopped.state, "stopped");
      await assert.rejects(fetch(`http://127.0.0.1:${port}/`));
      assert.deepEqual(transportErrors, []);
    } finally {
      if (workspace) await client.callTool({ name: "workspace_delete", arguments: { workspace } });
      await client.close();
    }
  });
});

describe("pyro mcp serve --transport http (real binary, real SDK client)", () => {
  it("refuses a request without the token and lists the tools with it", async () => {
    const child = spawn(process.execPath, [MAIN, "mcp", "serve", "--transport", "http", "--json"], {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    try {
      const { url, token } = await httpAnnouncement(child);
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
      const refused = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      });
      assert.equal(refused.status, 401);
      const client = new Client({ name: "pyro-http", version: "1" });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(url), {
          requestInit: { headers: { authorization: `Bearer ${token}` } },
        }),
      );
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), [...PROFILE_TOOLS["workspace-core"]].sort());
      await client.close();
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
  });
});

describe("pyro host print-config: every host's config starts a server that answers", () => {
  /** The command and args each host would run, read back from its own format. */
  function launch(host: string, text: string): { command: string; args: string[] } {
    switch (host) {
      case "claude-desktop":
      case "cursor":
      case "gemini":
        return JSON.parse(text).mcpServers.pyro;
      case "vscode":
        return JSON.parse(text).servers.pyro;
      case "opencode": {
        const [command, ...args] = JSON.parse(text).mcp.pyro.command as string[];
        return { command: command!, args };
      }
      case "codex":
        return {
          command: JSON.parse(/^command = (.+)$/m.exec(text)![1]!),
          args: JSON.parse(/^args = (.+)$/m.exec(text)![1]!),
        };
      default: {
        // claude-code: `claude mcp add pyro -- COMMAND ARGS...`, words without shell quoting here.
        const words = text.trim().split(" ");
        const [command, ...args] = words.slice(words.indexOf("--") + 1);
        return { command: command!, args };
      }
    }
  }

  for (const host of ["claude-desktop", "cursor", "vscode", "opencode", "codex", "claude-code", "gemini"]) {
    it(host, async () => {
      const { stdout } = await promisify(execFile)(process.execPath, [MAIN, "host", "print-config", host, "--json"], {
        env,
      });
      const { text } = JSON.parse(stdout) as { text: string };
      const { command, args } = launch(host, text);
      const client = new Client({ name: `as-${host}`, version: "1" });
      await client.connect(new StdioClientTransport({ command, args, env, stderr: "pipe" }));
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === "vm_run"));
      await client.close();
    });
  }
});

describe("project-aware startup (real binary, real SDK client, real sandboxes)", () => {
  const sh = (cwd: string, script: string) => promisify(execFile)("sh", ["-c", script], { cwd, env });

  async function serveIn(cwd: string, args: string[] = []) {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [MAIN, "mcp", "serve", ...args],
      cwd,
      env,
      stderr: "pipe",
    });
    const client = new Client({ name: "pyro-project", version: "1" });
    await client.connect(transport);
    return client;
  }

  /** Runs each command in one new default-seeded workspace and returns their stdouts. */
  async function inNewWorkspace(client: Client, commands: string[]): Promise<string[]> {
    const created = await client.callTool({ name: "workspace_create", arguments: {} });
    assert.notEqual(created.isError, true, JSON.stringify(created.content));
    const workspace = (created.structuredContent as { workspace_id: string }).workspace_id;
    try {
      const outputs: string[] = [];
      for (const command of commands) {
        const out = await client.callTool({ name: "workspace_exec", arguments: { workspace, command } });
        const result = out.structuredContent as { stdout: string; stderr: string; exit_code: number };
        assert.equal(result.exit_code, 0, `${command}: ${result.stderr}`);
        outputs.push(result.stdout);
      }
      return outputs;
    } finally {
      await client.callTool({ name: "workspace_delete", arguments: { workspace } });
    }
  }

  const FILES = "find . -path ./.git -prune -o -type f -print | sort";
  const lines = (text: string) => text.split("\n").filter(Boolean);

  async function filesOf(client: Client): Promise<string[]> {
    return lines((await inNewWorkspace(client, [FILES]))[0]!);
  }

  it("started in a checkout, a new workspace holds exactly its tracked files in a repository at its HEAD, and the checkout is untouched", async () => {
    const repo = mkdtempSync(join(tmpdir(), "pyro-test-project-"));
    try {
      await sh(
        repo,
        "git init -q -b trunk && git config user.email t@t && git config user.name t && " +
          "mkdir src && echo one > src/a.txt && echo 'ignored.log' > .gitignore && echo keep > README && " +
          "git add -A && git commit -qm init && echo two > README && git commit -qam second && " +
          "echo changed > src/a.txt && echo staged > staged.txt && git add staged.txt && " +
          "echo new > untracked.txt && echo noise > ignored.log",
      );
      const git = "git --no-optional-locks";
      const head = (await sh(repo, `${git} log -1 --format=%H`)).stdout;
      const changes = (await sh(repo, `${git} diff HEAD --name-status`)).stdout;
      assert.equal(changes, "M\tsrc/a.txt\nA\tstaged.txt\n");
      const before = (await sh(repo, `${git} status --porcelain --ignored && stat -c %Y .git/index`)).stdout;
      const client = await serveIn(repo);
      try {
        const { tools } = await client.listTools();
        const create = tools.find((t) => t.name === "workspace_create");
        assert.match(create?.description ?? "", /git-tracked files of/);
        const [files, log, branch, status, diff] = await inNewWorkspace(client, [
          FILES,
          `${git} log --format=%H`,
          "git symbolic-ref HEAD",
          `${git} status --porcelain`,
          `${git} diff HEAD --name-status`,
        ]);
        assert.deepEqual(lines(files!), ["./.gitignore", "./README", "./src/a.txt", "./staged.txt"]);
        // HEAD's commit only (a shallow copy), on the checkout's branch.
        assert.equal(log, head);
        assert.equal(branch, "refs/heads/trunk\n");
        // The checkout's uncommitted changes, staged or not, are unstaged changes inside; a file only
        // staged is intent-to-add; untracked and ignored files are not there at all.
        assert.equal(status, " M src/a.txt\n A staged.txt\n");
        assert.equal(diff, changes);
      } finally {
        await client.close();
      }
      assert.equal(
        (await sh(repo, "git --no-optional-locks status --porcelain --ignored && stat -c %Y .git/index")).stdout,
        before,
      );
    } finally {
      rmSync(repo, { recursive: true, force: true });
    }
  });

  it("--repo-url of a local bare repository gives a clean clone of --repo-ref", async () => {
    const root = mkdtempSync(join(tmpdir(), "pyro-test-bare-"));
    try {
      await sh(
        root,
        "git init -q --bare origin.git && git init -q work && cd work && git config user.email t@t && " +
          "git config user.name t && echo v1 > version && git add -A && git commit -qm v1 && git tag v1 && " +
          "echo v2 > version && echo later > added && git add -A && git commit -qm v2 && " +
          "git push -q ../origin.git HEAD:refs/heads/main --tags",
      );
      const v1 = (await sh(join(root, "work"), "git rev-parse v1")).stdout.trim();
      const client = await serveIn(root, ["--repo-url", join(root, "origin.git"), "--repo-ref", "v1"]);
      try {
        const created = await client.callTool({ name: "workspace_create", arguments: {} });
        const workspace = (created.structuredContent as { workspace_id: string }).workspace_id;
        const out = await client.callTool({
          name: "workspace_exec",
          arguments: { workspace, command: "cat version; ls; git rev-parse HEAD; git status --porcelain | wc -l" },
        });
        assert.equal((out.structuredContent as { stdout: string }).stdout, `v1\nversion\n${v1}\n0\n`);
        await client.callTool({ name: "workspace_delete", arguments: { workspace } });
      } finally {
        await client.close();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("--no-project-source starts workspaces empty; a bad --project-path says what to do", async () => {
    const client = await serveIn(PACKAGE_ROOT, ["--no-project-source"]);
    try {
      assert.deepEqual(await filesOf(client), []);
    } finally {
      await client.close();
    }
    const bad = await promisify(execFile)(process.execPath, [MAIN, "mcp", "serve", "--project-path", tmpdir()], {
      env,
    }).catch((e: { code: number; stderr: string }) => e);
    assert.equal((bad as { code: number }).code, 1);
    assert.match((bad as { stderr: string }).stderr, /not inside a git checkout.*--no-project-source/);
  });

  it("a caller's host paths stay under the project directory: outside ones are refused and the server keeps serving", async () => {
    const base = mkdtempSync(join(tmpdir(), "pyro-test-hostpaths-"));
    const project = join(base, "project");
    const elsewhere = join(base, "elsewhere");
    try {
      await sh(
        base,
        "mkdir -p project/src elsewhere && echo hello > project/src/a.txt && echo private > elsewhere/b.txt",
      );
      const client = await serveIn(project, ["--no-project-source"]);
      try {
        const text = (r: Record<string, unknown>) => (r.content as { text: string }[] | undefined)?.[0]?.text ?? "";
        const refused = await client.callTool({ name: "workspace_create", arguments: { seed_path: elsewhere } });
        assert.equal(refused.isError, true);
        assert.match(
          text(refused),
          new RegExp(`^HOST_PATH_NOT_ALLOWED: seed_path ${elsewhere} is outside .*${project}`),
        );
        const created = await client.callTool({ name: "workspace_create", arguments: { seed_path: "src" } });
        assert.notEqual(created.isError, true, text(created));
        const workspace = (created.structuredContent as { workspace_id: string }).workspace_id;
        try {
          const out = await client.callTool({
            name: "workspace_export",
            arguments: { workspace, path: "a.txt", output_path: join(elsewhere, "a.txt") },
          });
          assert.match(text(out), /^HOST_PATH_NOT_ALLOWED: output_path .* is outside/);
          assert.equal(existsSync(join(elsewhere, "a.txt")), false);
          const ok = await client.callTool({
            name: "workspace_export",
            arguments: { workspace, path: "a.txt", output_path: "exported/a.txt" },
          });
          assert.notEqual(ok.isError, true, text(ok));
          assert.equal(readFileSync(join(project, "exported", "a.txt"), "utf8"), "hello\n");
        } finally {
          await client.callTool({ name: "workspace_delete", arguments: { workspace } });
        }
      } finally {
        await client.close();
      }
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

describe("pyro mcp serve under the MCP Inspector CLI", () => {
  const exec = promisify(execFile);
  // inspector-cli 1.0.3 finds its own package.json relative to the working directory, so it runs
  // from its build directory (with absolute paths for everything else).
  const inspect = (args: string[]) =>
    exec(
      process.execPath,
      [join(INSPECTOR, "build", "cli.js"), "--cli", process.execPath, MAIN, "mcp", "serve", ...args],
      {
        cwd: join(INSPECTOR, "build"),
        env,
        timeout: 60_000,
      },
    );

  it("lists tools", async () => {
    const { stdout } = await inspect(["--profile", "vm-run", "--method", "tools/list"]);
    const { tools } = JSON.parse(stdout) as { tools: { name: string; outputSchema?: unknown }[] };
    assert.deepEqual(
      tools.map((t) => t.name),
      ["vm_run"],
    );
    assert.ok(tools[0]?.outputSchema);
  });

  it("calls vm_run", async () => {
    const { stdout } = await inspect([
      "--profile",
      "vm-run",
      "--method",
      "tools/call",
      "--tool-name",
      "vm_run",
      "--tool-arg",
      'command=["sh","-c","echo inspected; exit 4"]',
      "--tool-arg",
      "timeout_seconds=20",
    ]);
    const result = JSON.parse(stdout) as { structuredContent: unknown; isError?: boolean };
    assert.notEqual(result.isError, true);
    const payload = RunResult.parse(result.structuredContent);
    assert.equal(payload.exit_code, 4);
    assert.equal(payload.stdout, "inspected\n");
  });
});

describe("a long command over MCP with the client's default options (real SDK client, real sandbox)", () => {
  it("runs a 3-minute command to completion through workspace_exec and workspace_exec_wait, output arriving on the way", async () => {
    const { client, transportErrors } = await connect("workspace-core");
    const messages: string[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void messages.push(String(n.params.data)));
    // callTool with no options: the SDK's 60 s request timeout, no progress token, no reset on progress.
    const call = async (name: string, args: Record<string, unknown>) => {
      const result = await client.callTool({ name, arguments: args });
      assert.notEqual(result.isError, true, `${name}: ${JSON.stringify(result.content)}`);
      return result.structuredContent;
    };
    const exec = async (name: string, args: Record<string, unknown>) =>
      WorkspaceExecResult.parse(await call(name, args));
    let workspace = "";
    try {
      workspace = ((await call("workspace_create", { environment: "debian:12" })) as { workspace_id: string })
        .workspace_id;
      const started = Date.now();
      const first = await exec("workspace_exec", {
        workspace,
        command: "for i in $(seq 1 36); do echo tick $i; sleep 5; done",
      });
      assert.equal(first.running, true, "after the default wait_seconds the call returns, the command runs on");
      assert.equal(first.exit_code, null);
      assert.match(first.stdout, /^tick 1\ntick 2\n/, "with the output so far");
      let stdout = first.stdout;
      let last = first;
      for (let calls = 1; last.running; calls++) {
        assert.ok(calls < 12, "a bounded number of waits");
        last = await exec("workspace_exec_wait", { workspace, sequence: first.sequence });
        if (last.running) assert.notEqual(last.stdout, "", "each wait brings new output");
        stdout += last.stdout;
      }
      assert.ok(Date.now() - started >= 175_000, "it really ran 3 minutes, past the client's 60 s timeout");
      assert.equal(last.exit_code, 0);
      assert.equal(stdout, Array.from({ length: 36 }, (_, i) => `tick ${i + 1}\n`).join(""), "every line, once");
      assert.ok(
        messages.some((m) => /^stdout: tick \d+/.test(m)),
        `output also came as log messages while calls waited: ${JSON.stringify(messages.slice(0, 5))}`,
      );

      // Cancelling a running command kills it with what it started in a session of its own.
      const second = await exec("workspace_exec", {
        workspace,
        command: "setsid sh -c 'sleep 111; true' & echo started; sleep 112",
        wait_seconds: 2,
      });
      assert.equal(second.running, true);
      const killed = await exec("workspace_exec_wait", { workspace, sequence: second.sequence, cancel: true });
      assert.equal(killed.running, false);
      assert.equal(killed.cancelled, true);
      assert.equal(killed.exit_code, 137);
      const ps = await exec("workspace_exec", { workspace, command: "ps -eo args | grep -c '[s]leep 11[12]' || true" });
      assert.equal(ps.stdout, "0\n");
      const logs = WorkspaceLogsResult.parse(await call("workspace_logs", { workspace }));
      const bySequence = new Map(logs.commands.map((c) => [c.sequence, c]));
      assert.equal(bySequence.get(first.sequence)?.exit_code, 0);
      assert.equal(bySequence.get(second.sequence)?.cancelled, true);
      assert.deepEqual(transportErrors, []);
    } finally {
      if (workspace) await client.callTool({ name: "workspace_delete", arguments: { workspace } }).catch(() => {});
      await client.close();
    }
  });
});
