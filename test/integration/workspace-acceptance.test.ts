// The workspace acceptance flow against real sandboxes, as a user and an agent host drive it: the
// real `pyro` binary (one process per command, --json) and a real MCP client talking to
// `pyro mcp serve` over stdio. A 2,000-file Git repository is seeded, edited by file write and
// patch, diffed, exported, reset and deleted, and nothing of it is left in the state directory.
// State goes to a temp PYRO_STATE_DIR; environments come from the shared cache.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  ExportResult,
  FileWriteResult,
  PatchApplyResult,
  ResetResult,
  WorkspaceDeleteResult,
  WorkspaceDiffResult,
  WorkspaceExecResult,
  WorkspaceInfo,
  WorkspaceListResult,
} from "../../src/contract/workspace.js";
import { PACKAGE_ROOT } from "../../src/version.js";
import { execToEnd } from "../helpers/exec-to-end.js";
import { removeStateDir } from "../helpers/state-dir.js";

const PYRO = join(PACKAGE_ROOT, "dist", "bin", "pyro.mjs");
const stateDir = mkdtempSync(join(tmpdir(), "pyro-test-wsflow-state-"));
const host = mkdtempSync(join(tmpdir(), "pyro-test-wsflow-host-"));
const env = { ...process.env, PYRO_STATE_DIR: stateDir } as Record<string, string>;
delete env.PYRO_DEBUG;
const created = new Set<string>();

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
}

function pyro(args: string[]): Promise<Outcome> {
  const child = spawn(process.execPath, [PYRO, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** `pyro ARGS --json`, exit 0 expected, payload parsed by its contract schema. */
async function pyroJson<T>(schema: { parse(value: unknown): T }, args: string[], words: string[] = []): Promise<T> {
  const { code, stdout, stderr } = await pyro([...args, "--json", ...(words.length ? ["--", ...words] : [])]);
  assert.equal(code, 0, `pyro ${args.join(" ")} exited ${code}: ${stderr}${stdout}`);
  assert.equal(stderr, "", `pyro ${args.join(" ")} --json wrote to stderr`);
  return schema.parse(JSON.parse(stdout));
}

function remember(info: WorkspaceInfo): WorkspaceInfo {
  created.add(info.workspace_id);
  return info;
}

const FILES_PER_DIR = 10;
const SUBDIRS = 10;
const DIRS = 20; // 20 × 10 × 10 = 2,000 files
const PATCHED_FILE = "dir3/sub4/file5.txt";
const NEW_FILE = "NOTES.md";

function fileText(path: string): string {
  return ["first line", `this is ${path}`, "middle line", "last line", ""].join("\n");
}

/** A committed Git repository of 2,000 files in nested directories. */
function makeRepo(dir: string): void {
  for (let d = 0; d < DIRS; d++) {
    for (let s = 0; s < SUBDIRS; s++) {
      mkdirSync(join(dir, `dir${d}`, `sub${s}`), { recursive: true });
      for (let f = 0; f < FILES_PER_DIR; f++) {
        const rel = `dir${d}/sub${s}/file${f}.txt`;
        writeFileSync(join(dir, rel), fileText(rel));
      }
    }
  }
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=pyro", "-c", "user.email=pyro@example.invalid", ...args], {
      cwd: dir,
      stdio: "pipe",
    });
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "2,000 files");
}

/**
 * `git status` without taking optional locks: a plain `git status` in a copied checkout refreshes the
 * stat data in .git/index and writes it back, which diff would rightly report as a third change.
 */
const GIT_STATUS = ["git", "--no-optional-locks", "status", "--porcelain"];

const PATCH = [
  `diff --git a/${PATCHED_FILE} b/${PATCHED_FILE}`,
  `--- a/${PATCHED_FILE}`,
  `+++ b/${PATCHED_FILE}`,
  "@@ -1,4 +1,4 @@",
  " first line",
  ` this is ${PATCHED_FILE}`,
  "-middle line",
  "+middle line, patched",
  " last line",
  "",
].join("\n");

const repo = join(host, "repo");

before(() => {
  assert.ok(existsSync(PYRO), `${PYRO} is missing: run npm run build first`);
  makeRepo(repo);
  assert.equal(
    execFileSync("git", ["ls-files"], { cwd: repo, encoding: "utf8" }).trim().split("\n").length,
    DIRS * SUBDIRS * FILES_PER_DIR,
  );
});

after(async () => {
  for (const id of created) {
    const { code, stderr } = await pyro(["workspace", "delete", id]);
    if (code !== 0) process.stderr.write(`cleanup: pyro workspace delete ${id} failed: ${stderr}`);
  }
  removeStateDir(stateDir);
  rmSync(host, { recursive: true, force: true });
});

/** What the flow checks after the two edits, on whichever face produced the diff. */
function assertTwoChanges(diff: WorkspaceDiffResult): void {
  assert.equal(diff.changed, true);
  assert.deepEqual(diff.summary, { total: 2, added: 1, modified: 1, deleted: 0, type_changed: 0, binary: 0 });
  assert.deepEqual(
    diff.files.map((f) => [f.path, f.status]),
    [
      [NEW_FILE, "added"],
      [PATCHED_FILE, "modified"],
    ],
  );
  assert.match(diff.patch, new RegExp(`^\\+\\+\\+ b/${NEW_FILE}$`, "m"));
  assert.match(diff.patch, /^\+middle line, patched$/m);
  assert.match(diff.patch, /^-middle line$/m);
  assert.equal(diff.patch_truncated, false);
}

function assertExported(dir: string): void {
  const subdirs = readdirSync(dir).sort();
  assert.equal(subdirs.length, SUBDIRS);
  assert.equal(readdirSync(join(dir, "sub4")).length, FILES_PER_DIR);
  assert.equal(
    readFileSync(join(dir, "sub4", "file5.txt"), "utf8"),
    fileText(PATCHED_FILE).replace("middle line", "middle line, patched"),
  );
  assert.equal(readFileSync(join(dir, "sub0", "file0.txt"), "utf8"), fileText("dir3/sub0/file0.txt"));
}

function assertNothingLeft(id: string): void {
  assert.equal(existsSync(join(stateDir, "workspaces", id)), false, `workspaces/${id} is still there`);
  const left = existsSync(join(stateDir, "workspaces")) ? readdirSync(join(stateDir, "workspaces")) : [];
  assert.ok(!left.includes(id));
}

describe("workspace acceptance flow through the CLI (--json, one process per command)", () => {
  it("seed, exec, write, patch, diff, export, reset, delete", { timeout: 300_000 }, async () => {
    const info = remember(
      await pyroJson(WorkspaceInfo, ["workspace", "create", "debian:12", "--seed-path", repo, "--name", "cli-flow"]),
    );
    assert.equal(info.name, "cli-flow");
    assert.equal(info.state, "running");
    assert.equal(info.workspace_seed.mode, "directory");
    assert.equal(info.workspace_seed.seed_path, repo);

    const status = await pyroJson(WorkspaceExecResult, ["workspace", "exec", "cli-flow"], GIT_STATUS);
    assert.equal(status.exit_code, 0, status.stderr);
    assert.equal(status.stdout, "", "the seeded checkout is clean");
    assert.equal(status.cwd, "/workspace");

    const written = await pyroJson(FileWriteResult, [
      "workspace",
      "file",
      "write",
      "cli-flow",
      NEW_FILE,
      "--text",
      "# notes\n",
    ]);
    assert.equal(written.bytes_written, 8);

    const patchFile = join(host, "fix.patch");
    writeFileSync(patchFile, PATCH);
    const patched = await pyroJson(PatchApplyResult, [
      "workspace",
      "patch",
      "apply",
      "cli-flow",
      "--patch-file",
      patchFile,
    ]);
    assert.deepEqual(patched.files, [{ path: PATCHED_FILE, status: "modified" }]);

    assertTwoChanges(await pyroJson(WorkspaceDiffResult, ["workspace", "diff", info.workspace_id]));

    // Text mode: the patch alone on stdout, so it can be piped into git apply.
    const text = await pyro(["workspace", "diff", "cli-flow"]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^diff --git /);
    assert.match(text.stderr, /\[workspace diff\] .*changed=true total=2 added=1 modified=1/);
    execFileSync("git", ["apply", "--check", "-"], { cwd: repo, input: text.stdout });

    const output = join(host, "cli-export");
    const exported = await pyroJson(ExportResult, ["workspace", "export", "cli-flow", "dir3", "--output", output]);
    assert.equal(exported.artifact_type, "directory");
    assert.equal(exported.output_path, output);
    assertExported(output);

    const reset = await pyroJson(ResetResult, ["workspace", "reset", "cli-flow"]);
    assert.deepEqual(reset, { workspace_id: info.workspace_id, snapshot: "baseline", reset_count: 1 });
    const clean = await pyroJson(WorkspaceDiffResult, ["workspace", "diff", "cli-flow"]);
    assert.equal(clean.changed, false);
    assert.equal(clean.summary.total, 0);
    assert.equal(clean.patch, "");

    const deleted = await pyroJson(WorkspaceDeleteResult, ["workspace", "delete", "cli-flow"]);
    assert.deepEqual(deleted, { workspace_id: info.workspace_id, deleted: true });
    created.delete(info.workspace_id);
    assertNothingLeft(info.workspace_id);
  });

  it("create, exec and list from separate processes agree", { timeout: 120_000 }, async () => {
    const info = remember(
      await pyroJson(WorkspaceInfo, ["workspace", "create", "--name", "three-procs", "--label", "k=v"]),
    );
    const exec = await pyro(["workspace", "exec", "three-procs", "--", "echo hi > greeting && cat greeting"]);
    assert.equal(exec.code, 0, exec.stderr);
    assert.equal(exec.stdout, "hi\n");
    assert.match(exec.stderr, new RegExp(`^\\[workspace exec\\] workspace_id=${info.workspace_id} sequence=1 `));
    const list = await pyroJson(WorkspaceListResult, ["workspace", "list"]);
    const entry = list.workspaces.find((w) => w.workspace_id === info.workspace_id);
    assert.ok(entry, "the workspace is listed");
    assert.equal(entry.name, "three-procs");
    assert.deepEqual(entry.labels, { k: "v" });
    assert.equal(entry.state, "running");
    assert.equal(entry.command_count, 1);
    const read = await pyro(["workspace", "file", "read", info.workspace_id, "greeting", "--content-only"]);
    assert.deepEqual([read.code, read.stdout, read.stderr], [0, "hi\n", ""]);

    const failing = await pyro(["workspace", "exec", "three-procs", "--", "sh", "-c", "echo oops >&2; exit 3"]);
    assert.equal(failing.code, 3, "exec exits with the guest command's exit code");
    assert.match(failing.stderr, /^oops\n\[workspace exec\] .*exit_code=3/);

    const duplicate = await pyro(["workspace", "create", "--name", "three-procs"]);
    assert.equal(duplicate.code, 1);
    assert.equal(duplicate.stdout, "");
    assert.match(
      duplicate.stderr,
      /^error\[WORKSPACE_NAME_TAKEN\]: the name "three-procs" is taken by workspace ws-\w+; choose another name/,
    );
    const later = await pyroJson(WorkspaceListResult, ["workspace", "list"]);
    assert.equal(later.count, list.count, "the refused create left nothing behind");

    await pyroJson(WorkspaceDeleteResult, ["workspace", "delete", "three-procs"]);
    created.delete(info.workspace_id);
    assertNothingLeft(info.workspace_id);
  });

  it("an unknown workspace exits 1 naming it", async () => {
    for (const args of [
      ["workspace", "status", "no-such-ws"],
      ["workspace", "exec", "no-such-ws", "--", "true"],
      ["workspace", "diff", "no-such-ws"],
    ]) {
      const { code, stdout, stderr } = await pyro(args);
      assert.equal(code, 1, args.join(" "));
      assert.equal(stdout, "");
      assert.match(stderr, /^error\[WORKSPACE_NOT_FOUND\]: no workspace has the id or name "no-such-ws"/);
    }
    const json = await pyro(["workspace", "status", "no-such-ws", "--json"]);
    assert.equal(json.code, 1);
    assert.equal((JSON.parse(json.stdout) as { error: { code: string } }).error.code, "WORKSPACE_NOT_FOUND");
  });

  // git status stats the checkout from several threads at once. On qemu under TCG a one-vCPU VM
  // once lost virtio-fs replies this way and the workspace hung for good, about once in ten runs.
  it("git status, again and again, in a 2,000-file checkout always answers", { timeout: 360_000 }, async () => {
    const info = remember(
      await pyroJson(WorkspaceInfo, ["workspace", "create", "debian:12", "--seed-path", repo, "--name", "status-loop"]),
    );
    const rounds = 12;
    const loop = `for i in $(seq ${rounds}); do git status --porcelain >/dev/null || exit 1; echo -n "$i "; done`;
    const run = await pyro(["workspace", "exec", "status-loop", "--timeout-seconds", "300", "--", "sh", "-c", loop]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, Array.from({ length: rounds }, (_, i) => `${i + 1} `).join(""));
    await pyroJson(WorkspaceDeleteResult, ["workspace", "delete", info.workspace_id]);
    created.delete(info.workspace_id);
  });
});

describe("workspace acceptance flow through a real MCP client (pyro mcp serve over stdio)", () => {
  let client: Client;
  let serverLog = "";

  before(async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [PYRO, "mcp", "serve"],
      env,
      // Started where the user's files are: the seed and the export are under its directory.
      cwd: host,
      stderr: "pipe",
    });
    transport.stderr?.on("data", (chunk: Buffer) => {
      serverLog += chunk.toString();
    });
    client = new Client({ name: "pyro-acceptance", version: "1.0.0" });
    await client.connect(transport);
  });

  after(async () => {
    await client?.close();
  });

  async function call<T>(
    schema: { parse(value: unknown): T },
    name: string,
    args: Record<string, unknown>,
  ): Promise<T> {
    const result = await client.callTool({ name, arguments: args });
    const text = (result.content as { text?: string }[])[0]?.text ?? "";
    assert.notEqual(result.isError, true, `${name} failed: ${text}\n${serverLog}`);
    assert.deepEqual(JSON.parse(text), result.structuredContent, `${name}: text and structuredContent differ`);
    return schema.parse(result.structuredContent);
  }

  it("seed, exec, write, patch, diff, export, reset, delete", { timeout: 300_000 }, async () => {
    const { tools } = await client.listTools();
    assert.ok(
      tools.some((t) => t.name === "workspace_create"),
      "workspace-core is the default profile",
    );

    const info = remember(
      await call(WorkspaceInfo, "workspace_create", { environment: "debian:12", seed_path: repo, name: "mcp-flow" }),
    );
    assert.equal(info.workspace_seed.mode, "directory");

    // The first git status in a copied checkout reads every file again; under TCG that can pass
    // workspace_exec's 30 s wait, and then the agent collects the rest with workspace_exec_wait.
    const status = await execToEnd(call, { workspace: "mcp-flow", command: GIT_STATUS });
    assert.equal(status.exit_code, 0, status.stderr);
    assert.equal(status.stdout, "");

    const failing = await call(WorkspaceExecResult, "workspace_exec", { workspace: "mcp-flow", command: "exit 4" });
    assert.equal(failing.exit_code, 4, "a command that fails is a normal result");

    await call(FileWriteResult, "workspace_file_write", { workspace: "mcp-flow", path: NEW_FILE, text: "# notes\n" });
    const patched = await call(PatchApplyResult, "workspace_patch_apply", {
      workspace: info.workspace_id,
      patch: PATCH,
    });
    assert.equal(patched.changed, true);

    assertTwoChanges(await call(WorkspaceDiffResult, "workspace_diff", { workspace: "mcp-flow" }));

    const output = join(host, "mcp-export");
    const exported = await call(ExportResult, "workspace_export", {
      workspace: "mcp-flow",
      path: "/workspace/dir3",
      output_path: output,
    });
    assert.equal(exported.artifact_type, "directory");
    assertExported(output);

    const again = await client.callTool({
      name: "workspace_export",
      arguments: { workspace: "mcp-flow", path: "dir3", output_path: output },
    });
    assert.equal(again.isError, true, "an existing output path is refused");
    assert.match((again.content as { text: string }[])[0]?.text ?? "", /^OUTPUT_EXISTS: /);

    assert.equal((await call(ResetResult, "workspace_reset", { workspace: "mcp-flow" })).reset_count, 1);
    const clean = await call(WorkspaceDiffResult, "workspace_diff", { workspace: "mcp-flow" });
    assert.equal(clean.changed, false);
    assert.deepEqual(clean.files, []);

    const deleted = await call(WorkspaceDeleteResult, "workspace_delete", { workspace: "mcp-flow" });
    assert.deepEqual(deleted, { workspace_id: info.workspace_id, deleted: true });
    created.delete(info.workspace_id);
    assertNothingLeft(info.workspace_id);

    const gone = await client.callTool({ name: "workspace_status", arguments: { workspace: "mcp-flow" } });
    assert.equal(gone.isError, true);
    assert.match(
      (gone.content as { text: string }[])[0]?.text ?? "",
      /^WORKSPACE_NOT_FOUND: no workspace has the id or name/,
    );
  });
});
