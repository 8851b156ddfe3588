// The workspace-core surface on all three faces against a fake manager: the CLI's parsing, output
// and exit codes; the SDK's methods; the MCP tools per profile, their schemas and annotations, and
// their results and errors through a real SDK Client over the in-memory transport.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { after, describe, it } from "node:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { runCli } from "../../src/cli/run-cli.js";
import { PyroError } from "../../src/contract/errors.js";
import {
  type ExportResult,
  type FileListResult,
  type FileReadResult,
  type PatchApplyResult,
  type SyncPushResult,
  type WorkspaceDiffResult,
  type WorkspaceExecResult,
  WorkspaceInfo,
  type WorkspaceLogsResult,
  type WorkspaceSummary,
} from "../../src/contract/workspace.js";
import type { HostPathOptions } from "../../src/mcp/host-paths.js";
import { PROFILE_TOOLS } from "../../src/mcp/profiles.js";
import { createServer } from "../../src/mcp/server.js";
import type { ManagerApi, WorkspaceApi } from "../../src/sdk/manager.js";
import { Pyro } from "../../src/sdk/pyro.js";

// ---- fixtures ------------------------------------------------------------------------------------

const INFO: WorkspaceInfo = {
  workspace_id: "ws-0123456789",
  name: "repro-fix",
  labels: { issue: "123" },
  environment: "debian:12",
  engine: "gvisor",
  state: "running",
  stopped_reason: null,
  vcpu_count: 1,
  mem_mib: 1024,
  disk_mib: 8192,
  disk_used_mib: 1,
  process_limit: 512,
  ttl_seconds: 600,
  network_policy: "off",
  network_rules: null,
  trusted_ca: null,
  host_proxy: null,
  workspace_seed: { mode: "directory", seed_path: "/home/me/repo", entry_count: 2001 },
  secrets: [],
  created_at: "2025-01-01T00:00:00.000Z",
  last_activity_at: "2025-01-01T00:00:05.000Z",
  expires_at: "2025-01-01T00:10:05.000Z",
  command_count: 0,
  reset_count: 0,
  service_count: 0,
  running_service_count: 0,
};

const EXEC: WorkspaceExecResult = {
  workspace_id: INFO.workspace_id,
  sequence: 1,
  cwd: "/workspace",
  stdout: "out\n",
  stderr: "err",
  exit_code: 0,
  duration_ms: 41,
  timed_out: false,
  cancelled: false,
  running: false,
  stdout_truncated: false,
  stderr_truncated: false,
  execution_mode: "gvisor",
  next_stdout_offset: 4,
  next_stderr_offset: 3,
};

const PATCH = "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n";

const DIFF: WorkspaceDiffResult = {
  workspace_id: INFO.workspace_id,
  changed: true,
  summary: { total: 2, added: 1, modified: 1, deleted: 0, type_changed: 0, binary: 1 },
  patch: PATCH,
  files: [
    { path: "a.txt", status: "modified", binary: false },
    { path: "logo.png", status: "added", binary: true },
  ],
  patch_truncated: false,
};

const LOGS: WorkspaceLogsResult = {
  workspace_id: INFO.workspace_id,
  count: 2,
  commands: [
    {
      sequence: 1,
      command: ["git", "status"],
      cwd: "/workspace",
      exit_code: 0,
      timed_out: false,
      cancelled: false,
      duration_ms: 30,
      started_at: "2025-01-01T00:00:06.000Z",
      stdout_bytes: 0,
      stderr_bytes: 0,
    },
    {
      sequence: 2,
      command: "make && make test",
      cwd: "/workspace/src",
      exit_code: 2,
      timed_out: false,
      cancelled: false,
      duration_ms: 900,
      started_at: "2025-01-01T00:00:07.000Z",
      stdout_bytes: 10,
      stderr_bytes: 20,
    },
  ],
};

const SUMMARY: WorkspaceSummary = {
  workspace_id: INFO.workspace_id,
  name: INFO.name,
  state: "running",
  commands: { total: 2, failed: 1, last: LOGS.commands },
  changes: {
    changed: true,
    total: 1,
    added: 0,
    modified: 1,
    deleted: 0,
    type_changed: 0,
    files: [{ path: "a.txt", status: "modified" }],
  },
  exports: [{ workspace_path: "/workspace/out", output_path: "/tmp/out", at: "2025-01-01T00:00:08.000Z" }],
  reset_count: 0,
};

const PUSH: SyncPushResult = {
  workspace_id: INFO.workspace_id,
  source_path: "/home/me/more",
  dest: "/workspace",
  entry_count: 3,
  bytes_written: 1200,
  skipped: ["evil -> /etc"],
};

const EXPORT: ExportResult = {
  workspace_id: INFO.workspace_id,
  workspace_path: "/workspace/out",
  output_path: "/tmp/out",
  artifact_type: "directory",
  entry_count: 4,
  bytes_written: 512,
  skipped: [],
  modes_cleared: [],
};

const FILES: FileListResult = {
  workspace_id: INFO.workspace_id,
  path: "/workspace",
  recursive: false,
  entries: [
    { path: "/workspace/a.txt", artifact_type: "file", size_bytes: 2 },
    { path: "/workspace/src", artifact_type: "directory", size_bytes: 4096 },
    { path: "/workspace/link", artifact_type: "symlink", size_bytes: 5, link_target: "a.txt" },
  ],
  truncated: false,
};

const READ: FileReadResult = {
  workspace_id: INFO.workspace_id,
  path: "/workspace/a.txt",
  content: "hello\n",
  size_bytes: 6,
  truncated: false,
};

const PATCHED: PatchApplyResult = {
  workspace_id: INFO.workspace_id,
  changed: true,
  files: [
    { path: "a.txt", status: "modified" },
    { path: "new.txt", status: "added" },
  ],
};

// ---- a fake manager whose workspaces record every call ---------------------------------------------

type Method = keyof WorkspaceApi;

const SNAPSHOT = {
  workspace_id: "ws-0123456789",
  snapshot_name: "before",
  created_at: "2026-11-21T10:00:00.000Z",
  size_bytes: 5_000_000,
  file_count: 3,
  shared_bytes: 0,
};
interface Call {
  method: Method;
  params: unknown;
}

function fakeWorkspaces(
  // biome-ignore lint/suspicious/noExplicitAny: each fake reads the options of its own method
  over: Partial<Record<Method, (params: unknown, opts?: any) => Promise<unknown>>> = {},
) {
  const calls: Call[] = [];
  const canned: Record<Method, unknown> = {
    create: INFO,
    list: { count: 1, workspaces: [INFO] },
    update: INFO,
    status: INFO,
    logs: LOGS,
    policyCheck: {
      workspace_id: INFO.workspace_id,
      network_policy: "allowlist",
      name: "registry.npmjs.org",
      port: 443,
      allowed: true,
      rule: "registry.npmjs.org",
      reason: "allowed by rule registry.npmjs.org",
    },
    summary: SUMMARY,
    delete: { workspace_id: INFO.workspace_id, deleted: true },
    stop: { ...INFO, state: "stopped" },
    start: INFO,
    exec: EXEC,
    execWait: EXEC,
    syncPush: PUSH,
    export: EXPORT,
    diff: DIFF,
    listFiles: FILES,
    readFile: READ,
    writeFile: { workspace_id: INFO.workspace_id, path: "/workspace/notes.md", bytes_written: 5 },
    applyPatch: PATCHED,
    reset: { workspace_id: INFO.workspace_id, snapshot: "baseline", reset_count: 1 },
    snapshotCreate: SNAPSHOT,
    snapshotList: { workspace_id: INFO.workspace_id, count: 1, snapshots: [SNAPSHOT] },
    snapshotDelete: { workspace_id: INFO.workspace_id, snapshot_name: "before", deleted: true },
    diskExport: { workspace_id: INFO.workspace_id, output_path: "/tmp/ws.img", size_bytes: 33554432, entry_count: 3 },
    diskList: FILES,
    diskRead: READ,
  };
  const workspaces = Object.fromEntries(
    (Object.keys(canned) as Method[]).map((method) => [
      method,
      async (params?: unknown, opts?: unknown) => {
        calls.push({ method, params });
        const impl = over[method];
        return impl ? impl(params, opts) : structuredClone(canned[method]);
      },
    ]),
  ) as unknown as WorkspaceApi;
  return { workspaces, calls };
}

function unexpected(): never {
  throw new Error("not expected in this test");
}

function fakeManager(over: Parameters<typeof fakeWorkspaces>[0] = {}) {
  const { workspaces, calls } = fakeWorkspaces(over);
  const manager: ManagerApi = {
    run: async () => unexpected(),
    listEnvironments: async () => ({ catalog_version: "1", count: 0, environments: [] }),
    pullEnvironment: async () => unexpected(),
    inspectEnvironment: async () => unexpected(),
    pruneEnvironments: async () => unexpected(),
    doctor: async () => unexpected(),
    close: async () => {},
    workspaces,
    prepare: async () => {
      throw new Error("not expected in this test");
    },
    shells: {} as ManagerApi["shells"],
    services: {} as ManagerApi["services"],
  };
  return { manager, calls };
}

const notFound = async (): Promise<never> => {
  throw new PyroError(
    "WORKSPACE_NOT_FOUND",
    'no workspace has the id or name "nope"; list them with pyro workspace list (workspace_list)',
  );
};

// ---- CLI ------------------------------------------------------------------------------------------

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function cli(argv: string[], opts: { over?: Parameters<typeof fakeWorkspaces>[0]; stdin?: string } = {}) {
  const { manager, calls } = fakeManager(opts.over);
  const stdout = new Capture();
  const stderr = new Capture();
  const stdin = new PassThrough();
  stdin.end(opts.stdin ?? "");
  const code = await runCli(argv, { manager, stdout, stderr, stdin, env: {}, interactive: false });
  return { code, stdout: stdout.text, stderr: stderr.text, calls };
}

const tmp = mkdtempSync(join(tmpdir(), "pyro-test-faces-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** Keys in the order JSON.parse met them are sorted at every depth. */
function assertSortedKeys(value: unknown): void {
  if (Array.isArray(value)) for (const item of value) assertSortedKeys(item);
  else if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    assert.deepEqual(keys, [...keys].sort());
    for (const child of Object.values(value)) assertSortedKeys(child);
  }
}

describe("pyro workspace: every command reaches its operation with the contract params", () => {
  const cases: Array<[argv: string[], method: Method, params: unknown]> = [
    [
      ["workspace", "create"],
      "create",
      {
        environment: "debian:12",
        vcpu_count: 1,
        mem_mib: 1024,
        disk_mib: 8192,
        ttl_seconds: 600,
        engine: "auto",
        labels: {},
        network_policy: "off",
        allow_hosts: [],
        deny_hosts: [],
        allow_presets: [],
        ca_files: [],
        host_ca: false,
        host_proxy: false,
        secrets: [],
      },
    ],
    [
      [
        "workspace",
        "create",
        "debian:12-build",
        "--vcpu-count",
        "2",
        "--mem-mib=2048",
        "--ttl-seconds",
        "0",
        "--engine",
        "gvisor",
        "--seed-path",
        "./repo",
        "--name",
        "repro-fix",
        "--label",
        "issue=123",
        "--label",
        "url=https://x/?a=b",
        "--network-policy",
        "egress+published-ports",
        "--secret",
        "TOKEN=a=b",
        "--secret-file",
        "KEY=./key.txt",
      ],
      "create",
      {
        environment: "debian:12-build",
        vcpu_count: 2,
        mem_mib: 2048,
        disk_mib: 8192,
        ttl_seconds: 0,
        engine: "gvisor",
        seed_path: "./repo",
        name: "repro-fix",
        labels: { issue: "123", url: "https://x/?a=b" },
        network_policy: "egress+published-ports",
        allow_hosts: [],
        deny_hosts: [],
        allow_presets: [],
        ca_files: [],
        host_ca: false,
        host_proxy: false,
        secrets: [
          { name: "TOKEN", value: "a=b" },
          { name: "KEY", file_path: "./key.txt" },
        ],
      },
    ],
    [["workspace", "list"], "list", undefined],
    [["workspace", "snapshot", "create", "x", "before"], "snapshotCreate", { workspace: "x", snapshot_name: "before" }],
    [["workspace", "snapshot", "list", "x"], "snapshotList", { workspace: "x" }],
    [["workspace", "snapshot", "delete", "x", "before"], "snapshotDelete", { workspace: "x", snapshot_name: "before" }],
    [
      ["workspace", "disk", "export", "x", "--output", "/tmp/ws.img"],
      "diskExport",
      { workspace: "x", output_path: "/tmp/ws.img" },
    ],
    [
      ["workspace", "disk", "list", "x", "--recursive"],
      "diskList",
      { workspace: "x", path: "/workspace", recursive: true },
    ],
    [
      ["workspace", "disk", "read", "x", "a.txt", "--max-bytes", "10"],
      "diskRead",
      { workspace: "x", path: "a.txt", max_bytes: 10 },
    ],
    [["workspace", "status", "repro-fix"], "status", { workspace: "repro-fix" }],
    [["workspace", "logs", "repro-fix"], "logs", { workspace: "repro-fix", network: false, limit: 200 }],
    [["workspace", "summary", "repro-fix"], "summary", { workspace: "repro-fix" }],
    [["workspace", "delete", "repro-fix"], "delete", { workspace: "repro-fix" }],
    [["workspace", "stop", "repro-fix"], "stop", { workspace: "repro-fix" }],
    [["workspace", "start", "repro-fix"], "start", { workspace: "repro-fix" }],
    [
      [
        "workspace",
        "update",
        "ws-1",
        "--name",
        "new-name",
        "--label",
        "a=1",
        "--clear-label",
        "b",
        "--clear-label",
        "c",
      ],
      "update",
      {
        workspace: "ws-1",
        name: "new-name",
        labels: { a: "1" },
        clear_labels: ["b", "c"],
        allow_hosts: [],
        deny_hosts: [],
        allow_presets: [],
        remove_hosts: [],
      },
    ],
    [
      ["workspace", "exec", "repro-fix", "--timeout-seconds", "5", "--cwd", "src", "--", "git", "status"],
      "exec",
      { workspace: "repro-fix", command: ["git", "status"], cwd: "src", timeout_seconds: 5, secret_env: {} },
    ],
    [
      ["workspace", "exec", "repro-fix", "--", "make && make test"],
      "exec",
      { workspace: "repro-fix", command: "make && make test", cwd: "/workspace", timeout_seconds: 600, secret_env: {} },
    ],
    [
      ["workspace", "sync", "push", "repro-fix", "./more", "--dest", "src"],
      "syncPush",
      { workspace: "repro-fix", source_path: "./more", dest: "src" },
    ],
    [
      ["workspace", "sync", "push", "repro-fix", "./more.tgz"],
      "syncPush",
      { workspace: "repro-fix", source_path: "./more.tgz", dest: "/workspace" },
    ],
    [
      ["workspace", "export", "repro-fix", "out", "--output", "/tmp/out"],
      "export",
      { workspace: "repro-fix", path: "out", output_path: "/tmp/out" },
    ],
    [["workspace", "diff", "repro-fix"], "diff", { workspace: "repro-fix" }],
    [
      ["workspace", "file", "list", "repro-fix"],
      "listFiles",
      { workspace: "repro-fix", path: "/workspace", recursive: false },
    ],
    [
      ["workspace", "file", "list", "repro-fix", "src", "--recursive"],
      "listFiles",
      { workspace: "repro-fix", path: "src", recursive: true },
    ],
    [
      ["workspace", "file", "read", "repro-fix", "a.txt", "--max-bytes", "10"],
      "readFile",
      { workspace: "repro-fix", path: "a.txt", max_bytes: 10 },
    ],
    [
      ["workspace", "file", "write", "repro-fix", "notes.md", "--text", "hello"],
      "writeFile",
      { workspace: "repro-fix", path: "notes.md", text: "hello" },
    ],
    [
      ["workspace", "patch", "apply", "repro-fix", "--patch", PATCH],
      "applyPatch",
      { workspace: "repro-fix", patch: PATCH },
    ],
    [["workspace", "reset", "repro-fix"], "reset", { workspace: "repro-fix", snapshot: "baseline" }],
    [
      ["workspace", "reset", "repro-fix", "--snapshot", "baseline"],
      "reset",
      { workspace: "repro-fix", snapshot: "baseline" },
    ],
  ];
  for (const [argv, method, params] of cases) {
    it(`pyro ${argv.join(" ").slice(0, 80)}`, async () => {
      const { code, calls, stderr } = await cli(argv);
      assert.equal(code, 0, stderr);
      assert.deepEqual(calls, [{ method, params }]);
    });
  }

  it("prints exactly one sorted JSON object, the payload, with --json for every command", async () => {
    for (const [argv, method] of cases) {
      // --json goes before `--` so that it is pyro's flag, not the guest command's.
      const { code, stdout, stderr } = await cli([...argv.slice(0, 3), "--json", ...argv.slice(3)]);
      assert.equal(code, 0, `${argv.join(" ")}: ${stderr}`);
      assert.equal(stderr, "", argv.join(" "));
      const payload = JSON.parse(stdout) as unknown;
      assertSortedKeys(payload);
      const { workspaces } = fakeWorkspaces();
      assert.deepEqual(payload, await workspaces[method](undefined as never), method);
    }
  });
});

describe("pyro workspace create", () => {
  it("describes the workspace on stdout and reports on stderr", async () => {
    const { code, stdout, stderr } = await cli(["workspace", "create", "debian:12", "--seed-path", "./repo"]);
    assert.equal(code, 0);
    assert.match(stdout, /^workspace: +ws-0123456789\nname: +repro-fix\nstate: +running\n/m);
    assert.match(stdout, /seed: +directory \/home\/me\/repo, 2001 entries/);
    assert.equal(
      stderr,
      "[workspace create] workspace_id=ws-0123456789 name=repro-fix environment=debian:12 engine=gvisor state=running network=off seed=directory seed_entries=2001\n",
    );
  });

  it("prints the id alone with --id-only", async () => {
    const { code, stdout, stderr } = await cli(["workspace", "create", "--id-only"]);
    assert.equal(code, 0);
    assert.equal(stdout, "ws-0123456789\n");
    assert.equal(stderr, "");
  });

  for (const [label, flag, pattern] of [
    ["a label without =", "issue", /^error\[INVALID_ARGUMENT\]: --label must be KEY=VALUE \(got "issue"\)/],
    ["a label with an empty key", "=v", /^error\[INVALID_ARGUMENT\]: --label must be KEY=VALUE \(got "=v"\)/],
    [
      "a label key the contract refuses",
      "bad key=v",
      /^error\[INVALID_ARGUMENT\]: --label has an invalid key "bad key" \(label keys use/,
    ],
  ] as const) {
    it(`exits 2 on ${label}, without creating anything`, async () => {
      const { code, stderr, calls } = await cli(["workspace", "create", "--label", flag]);
      assert.equal(code, 2);
      assert.match(stderr, pattern);
      assert.match(stderr, /\$ pyro workspace create/);
      assert.deepEqual(calls, []);
    });
  }

  it("names the flag of an invalid value", async () => {
    const name = await cli(["workspace", "create", "--name", "bad name!"]);
    assert.equal(name.code, 2);
    assert.match(name.stderr, /^error\[INVALID_ARGUMENT\]: --name is not valid \(use letters, digits/);
    const ttl = await cli(["workspace", "create", "--ttl-seconds=-1"]);
    assert.equal(ttl.code, 2);
    assert.match(ttl.stderr, /--ttl-seconds must be ≥ 0 \(got -1\)/);
  });

  it("exits 1 with the message when the name is taken", async () => {
    const taken = async (): Promise<never> => {
      throw new PyroError("WORKSPACE_NAME_TAKEN", 'workspace name "repro-fix" is already taken');
    };
    const text = await cli(["workspace", "create", "--name", "repro-fix"], { over: { create: taken } });
    assert.equal(text.code, 1);
    assert.equal(text.stdout, "");
    assert.equal(text.stderr, 'error[WORKSPACE_NAME_TAKEN]: workspace name "repro-fix" is already taken\n');
    const json = await cli(["workspace", "create", "--name", "repro-fix", "--json"], { over: { create: taken } });
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.stdout), {
      error: { code: "WORKSPACE_NAME_TAKEN", message: 'workspace name "repro-fix" is already taken' },
    });
  });
});

describe("pyro workspace exec", () => {
  it("prints the guest's streams, a status line, and exits with the guest's exit code", async () => {
    const over = { exec: async () => ({ ...EXEC, exit_code: 3, sequence: 4 }) };
    const { code, stdout, stderr } = await cli(["workspace", "exec", "repro-fix", "--", "false"], { over });
    assert.equal(code, 3);
    assert.equal(stdout, "out\n");
    assert.equal(
      stderr,
      "err\n[workspace exec] workspace_id=ws-0123456789 sequence=4 cwd=/workspace engine=gvisor exit_code=3 duration_ms=41\n",
    );
    const json = await cli(["workspace", "exec", "repro-fix", "--json", "--", "false"], { over });
    assert.equal(json.code, 3);
    assert.equal(json.stderr, "");
    assert.equal((JSON.parse(json.stdout) as WorkspaceExecResult).exit_code, 3);
  });

  it("reports a timeout in words, then the status line, and exits 124", async () => {
    const over = { exec: async () => ({ ...EXEC, exit_code: 124, timed_out: true, stderr: "" }) };
    const { code, stderr } = await cli(["workspace", "exec", "ws", "--timeout-seconds", "5", "--", "sleep", "99"], {
      over,
    });
    assert.equal(code, 124);
    assert.match(
      stderr,
      /^error: the command ran past --timeout-seconds 5 and was killed, with every process it started \(exit 124\); give it longer with --timeout-seconds N/,
    );
    assert.match(stderr, /\n\[workspace exec\] .*exit_code=124 .*timed_out=true\n$/);
  });

  it("prints the output as it arrives, once, and only the payload with --json", async () => {
    let release: () => void = () => {};
    const streamed = { stdout: new Capture(), stderr: new Capture() };
    const over = {
      exec: async (_params: unknown, opts: { onOutput?: (stream: "stdout" | "stderr", text: string) => void }) => {
        opts.onOutput?.("stdout", "out\n");
        opts.onOutput?.("stderr", "er");
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        opts.onOutput?.("stderr", "r");
        return EXEC;
      },
    };
    const { manager } = fakeManager(over);
    const running = runCli(["workspace", "exec", "ws", "--", "make"], {
      manager,
      ...streamed,
      stdin: new PassThrough(),
      env: {},
      interactive: false,
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(streamed.stdout.text, "out\n", "stdout is printed before the command ends");
    assert.equal(streamed.stderr.text, "er");
    release();
    assert.equal(await running, 0);
    assert.equal(streamed.stdout.text, "out\n", "and not again at the end");
    assert.match(streamed.stderr.text, /^err\n\[workspace exec\] /);

    const json = await cli(["workspace", "exec", "ws", "--json", "--", "make"], {
      over: {
        exec: async (_params: unknown, opts: { onOutput?: unknown }) => {
          assert.equal(opts.onOutput, undefined, "--json streams nothing");
          return EXEC;
        },
      },
    });
    assert.deepEqual(JSON.parse(json.stdout), EXEC);
    assert.equal(json.stderr, "");
  });

  it("leaves flags after -- to the guest command", async () => {
    const { calls } = await cli(["workspace", "exec", "ws", "--", "ls", "--json", "--cwd", "-h"]);
    assert.deepEqual((calls[0]?.params as { command: unknown } | undefined)?.command, ["ls", "--json", "--cwd", "-h"]);
  });

  it("exits 2 without a command, naming what is missing", async () => {
    const { code, stderr, calls } = await cli(["workspace", "exec", "repro-fix"]);
    assert.equal(code, 2);
    assert.match(
      stderr,
      /^error\[INVALID_ARGUMENT\]: pyro workspace exec needs a command after --, e\.g\. pyro workspace exec repro-fix -- /,
    );
    assert.deepEqual(calls, []);
  });

  it("exits 2 on a --cwd outside /workspace, running nothing", async () => {
    for (const cwd of ["../..", "/", "/workspace/../etc", "src/../../tmp"]) {
      const { code, stderr, calls } = await cli(["workspace", "exec", "ws", "--cwd", cwd, "--", "true"]);
      assert.equal(code, 2, cwd);
      assert.match(
        stderr,
        /^error\[INVALID_ARGUMENT\]: --cwd is not valid \(must be inside \/workspace: a relative path starts there and may not leave it with \.\.; cd elsewhere within the command instead\)\n/,
      );
      assert.deepEqual(calls, []);
    }
    const inside = await cli(["workspace", "exec", "ws", "--cwd", "src/../lib", "--", "true"]);
    assert.equal(inside.code, 0, inside.stderr);
  });

  it("exits 2 on a bad timeout", async () => {
    const { code, stderr } = await cli(["workspace", "exec", "ws", "--timeout-seconds", "0", "--", "true"]);
    assert.equal(code, 2);
    assert.match(stderr, /^error\[INVALID_ARGUMENT\]: --timeout-seconds must be ≥ 1 \(got 0\)/);
  });
});

describe("pyro workspace file and patch", () => {
  it("reads --text-file, and --text-file - from stdin", async () => {
    const file = join(tmp, "content.txt");
    writeFileSync(file, "from a file\n");
    const fromFile = await cli(["workspace", "file", "write", "ws", "notes.md", "--text-file", file]);
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.deepEqual(fromFile.calls[0]?.params, { workspace: "ws", path: "notes.md", text: "from a file\n" });
    assert.equal(fromFile.stdout, "wrote 5 bytes to /workspace/notes.md\n");
    const fromStdin = await cli(["workspace", "file", "write", "ws", "notes.md", "--text-file", "-"], {
      stdin: "piped\n",
    });
    assert.deepEqual(fromStdin.calls[0]?.params, { workspace: "ws", path: "notes.md", text: "piped\n" });
  });

  it("reads --patch-file", async () => {
    const file = join(tmp, "fix.patch");
    writeFileSync(file, PATCH);
    const { code, stdout, stderr, calls } = await cli(["workspace", "patch", "apply", "ws", "--patch-file", file]);
    assert.equal(code, 0);
    assert.deepEqual(calls[0]?.params, { workspace: "ws", patch: PATCH });
    assert.equal(stdout, "modified  a.txt\nadded     new.txt\n");
    assert.equal(stderr, "[workspace patch apply] workspace_id=ws-0123456789 changed=true files=2\n");
  });

  it("wants exactly one of the inline flag and the file flag", async () => {
    const both = await cli(["workspace", "file", "write", "ws", "p", "--text", "a", "--text-file", "f"]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^error\[INVALID_ARGUMENT\]: give --text or --text-file, not both/);
    const neither = await cli(["workspace", "patch", "apply", "ws"]);
    assert.equal(neither.code, 2);
    assert.match(
      neither.stderr,
      /^error\[INVALID_ARGUMENT\]: give the content with --patch TEXT or --patch-file FILE \(- for stdin\)/,
    );
    assert.deepEqual([...both.calls, ...neither.calls], []);
  });

  it("exits 1 naming the flag when the file cannot be read or is not text", async () => {
    const missing = await cli(["workspace", "patch", "apply", "ws", "--patch-file", join(tmp, "nope.patch")]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^error\[INVALID_ARGUMENT\]: cannot read --patch-file .*nope\.patch: no such file\n$/);
    const binary = join(tmp, "blob.bin");
    writeFileSync(binary, Buffer.from([0xff, 0xfe, 0x00, 0x80]));
    const notText = await cli(["workspace", "file", "write", "ws", "b", "--text-file", binary]);
    assert.equal(notText.code, 1);
    assert.match(
      notText.stderr,
      /--text-file .*blob\.bin is not UTF-8 text; copy binary files in with pyro workspace sync push/,
    );
    assert.deepEqual([...missing.calls, ...notText.calls], []);
  });

  it("prints a file's content, then a status line; --content-only prints the content alone (file and disk read)", async () => {
    for (const source of ["file", "disk"]) {
      const text = await cli(["workspace", source, "read", "ws", "a.txt"]);
      assert.equal(text.stdout, "hello\n");
      assert.equal(
        text.stderr,
        `[workspace ${source} read] workspace_id=ws-0123456789 path=/workspace/a.txt size_bytes=6 truncated=false\n`,
      );
      const only = await cli(["workspace", source, "read", "ws", "a.txt", "--content-only"]);
      assert.equal(only.code, 0);
      assert.equal(only.stdout, "hello\n");
      assert.equal(only.stderr, "");
      assert.deepEqual(
        only.calls.map((c) => c.method),
        [source === "file" ? "readFile" : "diskRead"],
      );
    }
  });

  it("lists files with their type, size and link target", async () => {
    const { stdout, stderr } = await cli(["workspace", "file", "list", "ws"]);
    assert.equal(
      stdout,
      "/workspace/a.txt  file       2\n/workspace/src    directory  4096\n/workspace/link   symlink    5     -> a.txt\n",
    );
    assert.equal(stderr, "[workspace file list] workspace_id=ws-0123456789 path=/workspace recursive=false count=3\n");
  });
});

describe("pyro workspace diff, export, sync push, reset, logs, summary, list, update, delete", () => {
  it("prints the patch on stdout; binary files and the summary on stderr", async () => {
    const { code, stdout, stderr } = await cli(["workspace", "diff", "repro-fix"]);
    assert.equal(code, 0);
    assert.equal(stdout, PATCH);
    assert.equal(
      stderr,
      "not in the patch (binary): added logo.png\n" +
        "[workspace diff] workspace_id=ws-0123456789 changed=true total=2 added=1 modified=1 deleted=0 type_changed=0 binary=1\n",
    );
  });

  it("prints nothing on stdout when nothing changed", async () => {
    const clean: WorkspaceDiffResult = {
      ...DIFF,
      changed: false,
      summary: { total: 0, added: 0, modified: 0, deleted: 0, type_changed: 0, binary: 0 },
      patch: "",
      files: [],
    };
    const { stdout, stderr } = await cli(["workspace", "diff", "ws"], { over: { diff: async () => clean } });
    assert.equal(stdout, "");
    assert.match(stderr, /changed=false total=0/);
  });

  it("wants --output for export, by that name", async () => {
    const { code, stderr, calls } = await cli(["workspace", "export", "ws", "out"]);
    assert.equal(code, 2);
    assert.match(stderr, /^error\[INVALID_ARGUMENT\]: --output is required/);
    assert.deepEqual(calls, []);
  });

  it("reports an export, a push, a reset", async () => {
    const exported = await cli(["workspace", "export", "ws", "out", "--output", "/tmp/out"]);
    assert.equal(exported.stdout, "exported directory (4 entries) /workspace/out to /tmp/out\n");
    assert.match(exported.stderr, /^\[workspace export\] workspace_id=ws-0123456789 workspace_path=\/workspace\/out /);
    const pushed = await cli(["workspace", "sync", "push", "ws", "./more"]);
    assert.equal(pushed.stdout, "pushed 3 entries (1200 bytes) to /workspace\n");
    assert.match(pushed.stderr, /^skipped: evil -> \/etc\n\[workspace sync push\] .* skipped=1\n$/);
    const reset = await cli(["workspace", "reset", "ws"]);
    assert.equal(reset.stdout, "reset ws-0123456789 to baseline\n");
    assert.equal(reset.stderr, "[workspace reset] workspace_id=ws-0123456789 snapshot=baseline reset_count=1\n");
  });

  it("shows the history, the summary and the list", async () => {
    const logs = await cli(["workspace", "logs", "ws"]);
    assert.equal(
      logs.stdout,
      "#1  exit 0  30 ms   /workspace      git status\n#2  exit 2  900 ms  /workspace/src  make && make test\n",
    );
    assert.equal(logs.stderr, "[workspace logs] workspace_id=ws-0123456789 count=2 failed=1\n");
    const summary = await cli(["workspace", "summary", "ws"]);
    assert.match(summary.stdout, /^workspace ws-0123456789 \(repro-fix\): running\ncommands: 2 run, 1 failed\n/);
    assert.match(summary.stdout, /changes: 1 since create \(1 modified\)\n +modified +a\.txt\n/);
    assert.match(summary.stdout, /exports:\n +\/workspace\/out +-> +\/tmp\/out\n/);
    const list = await cli(["workspace", "list"]);
    assert.match(
      list.stdout,
      /^ID +NAME +STATE +ENVIRONMENT +LAST ACTIVITY +LABELS\nws-0123456789 +repro-fix +running /,
    );
    assert.equal(list.stderr, "[workspace list] count=1 running=1\n");
    const empty = await cli(["workspace", "list"], { over: { list: async () => ({ count: 0, workspaces: [] }) } });
    assert.equal(empty.stdout, "no workspaces; create one with pyro workspace create debian:12\n");
  });

  it("refuses an update with nothing to change", async () => {
    const { code, stderr, calls } = await cli(["workspace", "update", "ws"]);
    assert.equal(code, 2);
    assert.match(
      stderr,
      /^error\[INVALID_ARGUMENT\]: nothing to update: give --name, --label, --clear-label, --allow-host, --deny-host, --allow-preset or --remove-host/,
    );
    assert.deepEqual(calls, []);
  });

  it("says whether delete removed anything", async () => {
    const gone = await cli(["workspace", "delete", "ws"], {
      over: { delete: async () => ({ workspace_id: "ws", deleted: false }) },
    });
    assert.equal(gone.code, 0);
    assert.equal(gone.stdout, "ws was already gone\n");
  });

  it("exits 1 with the message for an unknown workspace, on every command", async () => {
    for (const argv of [
      ["status", "nope"],
      ["exec", "nope", "--", "true"],
      ["diff", "nope"],
      ["file", "read", "nope", "a"],
    ]) {
      const over = { status: notFound, exec: notFound, diff: notFound, readFile: notFound };
      const { code, stdout, stderr } = await cli(["workspace", ...argv], { over });
      assert.equal(code, 1, argv.join(" "));
      assert.equal(stdout, "");
      assert.match(
        stderr,
        /^error\[WORKSPACE_NOT_FOUND\]: no workspace has the id or name "nope"; list them with pyro workspace list/,
      );
    }
  });

  it("lists the workspace commands in help", async () => {
    const { stdout } = await cli(["help"]);
    assert.match(stdout, /Workspaces:\n {2}pyro workspace create \[ENV\] +create and start a persistent workspace\n/);
    for (const command of [
      "workspace list",
      "workspace exec",
      "workspace sync push",
      "workspace file read",
      "workspace patch apply",
      "workspace diff",
      "workspace reset",
    ]) {
      assert.ok(stdout.includes(`pyro ${command}`), command);
    }
    const one = await cli(["workspace", "exec", "--help"]);
    assert.match(one.stdout, /Examples/);
    assert.match(one.stdout, /pyro workspace exec repro-fix -- git status --short/);
  });
});

// ---- SDK ------------------------------------------------------------------------------------------

describe("Pyro workspace methods", () => {
  it("pass the contract params (with defaults) and return the payloads", async () => {
    const { manager, calls } = fakeManager();
    const pyro = new Pyro({ manager });
    assert.deepEqual(await pyro.createWorkspace({ seed_path: "./repo", name: "x" }), INFO);
    assert.deepEqual(calls.pop(), {
      method: "create",
      params: {
        environment: "debian:12",
        vcpu_count: 1,
        mem_mib: 1024,
        disk_mib: 8192,
        ttl_seconds: 600,
        engine: "auto",
        seed_path: "./repo",
        name: "x",
        labels: {},
        network_policy: "off",
        allow_hosts: [],
        deny_hosts: [],
        allow_presets: [],
        ca_files: [],
        host_ca: false,
        host_proxy: false,
        secrets: [],
      },
    });
    const ref = { workspace: "x" };
    const cases: Array<[() => Promise<unknown>, Method, unknown, unknown]> = [
      [() => pyro.listWorkspaces(), "list", undefined, { count: 1, workspaces: [INFO] }],
      [
        () => pyro.createSnapshot({ workspace: "x", snapshot_name: "before" }),
        "snapshotCreate",
        { workspace: "x", snapshot_name: "before" },
        SNAPSHOT,
      ],
      [
        () => pyro.listSnapshots(ref),
        "snapshotList",
        ref,
        { workspace_id: INFO.workspace_id, count: 1, snapshots: [SNAPSHOT] },
      ],
      [
        () => pyro.deleteSnapshot({ workspace: "x", snapshot_name: "before" }),
        "snapshotDelete",
        { workspace: "x", snapshot_name: "before" },
        { workspace_id: INFO.workspace_id, snapshot_name: "before", deleted: true },
      ],
      [
        () => pyro.exportWorkspaceDisk({ workspace: "x", output_path: "/tmp/ws.img" }),
        "diskExport",
        { workspace: "x", output_path: "/tmp/ws.img" },
        { workspace_id: INFO.workspace_id, output_path: "/tmp/ws.img", size_bytes: 33554432, entry_count: 3 },
      ],
      [
        () => pyro.listWorkspaceDisk({ workspace: "x", recursive: true }),
        "diskList",
        { workspace: "x", path: "/workspace", recursive: true },
        FILES,
      ],
      [
        () => pyro.readWorkspaceDisk({ workspace: "x", path: "a.txt" }),
        "diskRead",
        { workspace: "x", path: "a.txt", max_bytes: 65536 },
        READ,
      ],
      [() => pyro.statusWorkspace(ref), "status", ref, INFO],
      [() => pyro.logsWorkspace(ref), "logs", { ...ref, network: false, limit: 200 }, LOGS],
      [() => pyro.summarizeWorkspace(ref), "summary", ref, SUMMARY],
      [() => pyro.diffWorkspace(ref), "diff", ref, DIFF],
      [() => pyro.stopWorkspace(ref), "stop", ref, { ...INFO, state: "stopped" }],
      [() => pyro.startWorkspace(ref), "start", ref, INFO],
      [() => pyro.deleteWorkspace(ref), "delete", ref, { workspace_id: INFO.workspace_id, deleted: true }],
      [
        () => pyro.updateWorkspace({ workspace: "x", labels: { a: "1" } }),
        "update",
        {
          workspace: "x",
          labels: { a: "1" },
          clear_labels: [],
          allow_hosts: [],
          deny_hosts: [],
          allow_presets: [],
          remove_hosts: [],
        },
        INFO,
      ],
      [
        () => pyro.execWorkspace({ workspace: "x", command: "true" }),
        "exec",
        { workspace: "x", command: "true", cwd: "/workspace", timeout_seconds: 600, secret_env: {} },
        EXEC,
      ],
      [
        () => pyro.waitWorkspaceExec({ workspace: "x", sequence: 3 }),
        "execWait",
        { workspace: "x", sequence: 3, wait_seconds: 30, cancel: false },
        EXEC,
      ],
      [
        () => pyro.pushWorkspaceSync({ workspace: "x", source_path: "./more" }),
        "syncPush",
        { workspace: "x", source_path: "./more", dest: "/workspace" },
        PUSH,
      ],
      [
        () => pyro.exportWorkspace({ workspace: "x", path: "out", output_path: "/tmp/out" }),
        "export",
        { workspace: "x", path: "out", output_path: "/tmp/out" },
        EXPORT,
      ],
      [
        () => pyro.listWorkspaceFiles({ workspace: "x" }),
        "listFiles",
        { workspace: "x", path: "/workspace", recursive: false },
        FILES,
      ],
      [
        () => pyro.readWorkspaceFile({ workspace: "x", path: "a.txt" }),
        "readFile",
        { workspace: "x", path: "a.txt", max_bytes: 65_536 },
        READ,
      ],
      [
        () => pyro.writeWorkspaceFile({ workspace: "x", path: "n", text: "t" }),
        "writeFile",
        { workspace: "x", path: "n", text: "t" },
        { workspace_id: INFO.workspace_id, path: "/workspace/notes.md", bytes_written: 5 },
      ],
      [
        () => pyro.applyWorkspacePatch({ workspace: "x", patch: PATCH }),
        "applyPatch",
        { workspace: "x", patch: PATCH },
        PATCHED,
      ],
      [
        () => pyro.resetWorkspace({ workspace: "x" }),
        "reset",
        { workspace: "x", snapshot: "baseline" },
        { workspace_id: INFO.workspace_id, snapshot: "baseline", reset_count: 1 },
      ],
    ];
    for (const [call, method, params, result] of cases) {
      assert.deepEqual(await call(), result, method);
      assert.deepEqual(calls.pop(), { method, params }, method);
    }
  });

  it("reject invalid params naming the method and field, without calling the manager", async () => {
    const { manager, calls } = fakeManager();
    const pyro = new Pyro({ manager });
    const refused = async (promise: Promise<unknown>, pattern: RegExp) =>
      assert.rejects(promise, (err: unknown) => {
        assert.ok(err instanceof PyroError);
        assert.equal(err.code, "INVALID_ARGUMENT");
        assert.match(err.message, pattern);
        return true;
      });
    await refused(pyro.execWorkspace({ workspace: "x" } as never), /^execWorkspace: command is required$/);
    await refused(pyro.statusWorkspace({ workspace: "" }), /^statusWorkspace: workspace must not be empty$/);
    await refused(
      pyro.createWorkspace({ ttlSeconds: 5 } as never),
      /^createWorkspace: request has unknown field ttlSeconds$/,
    );
    await refused(
      pyro.updateWorkspace({ workspace: "x", labels: { "no spaces": "v" } }),
      /^updateWorkspace: labels has an invalid key "no spaces"/,
    );
    assert.deepEqual(calls, []);
  });

  it("pass a PyroError through unchanged", async () => {
    const pyro = new Pyro({ manager: fakeManager({ status: notFound }).manager });
    await assert.rejects(pyro.statusWorkspace({ workspace: "nope" }), (err: unknown) => {
      return err instanceof PyroError && err.code === "WORKSPACE_NOT_FOUND";
    });
  });
});

// ---- MCP ------------------------------------------------------------------------------------------

async function connect(
  profile: "vm-run" | "workspace-core" | "workspace-full" | undefined,
  manager?: ManagerApi,
  hostPaths: HostPathOptions = { anyPath: true },
) {
  const log: string[] = [];
  const server = createServer({
    profile,
    manager: manager ?? fakeManager().manager,
    hostPaths,
    log: (line) => log.push(line),
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  const client = new Client({ name: "pyro-test", version: "1.0.0" });
  await Promise.all([server.connect(serverSide), client.connect(clientSide)]);
  return { client, log };
}

const CORE = [
  "vm_run",
  "workspace_create",
  "workspace_list",
  "workspace_update",
  "workspace_status",
  "workspace_logs",
  "workspace_summary",
  "workspace_delete",
  "workspace_exec",
  "workspace_exec_wait",
  "workspace_sync_push",
  "workspace_file_list",
  "workspace_file_read",
  "workspace_file_write",
  "workspace_patch_apply",
  "workspace_diff",
  "workspace_export",
  "workspace_reset",
];

type Hints = [readOnly: boolean, destructive: boolean, idempotent: boolean];
const HINTS: Record<string, Hints> = {
  workspace_create: [false, false, false],
  workspace_list: [true, false, true],
  workspace_update: [false, false, true],
  workspace_status: [true, false, true],
  workspace_logs: [true, false, true],
  workspace_summary: [true, false, true],
  workspace_delete: [false, true, true],
  workspace_stop: [false, true, true],
  workspace_start: [false, false, true],
  workspace_exec: [false, true, false],
  workspace_exec_wait: [false, true, false],
  workspace_sync_push: [false, true, true],
  workspace_export: [false, false, false],
  workspace_diff: [true, false, true],
  workspace_file_list: [true, false, true],
  workspace_file_read: [true, false, true],
  workspace_file_write: [false, true, true],
  workspace_patch_apply: [false, true, false],
  workspace_reset: [false, true, true],
  workspace_disk_export: [false, false, false],
  workspace_disk_list: [true, false, true],
  workspace_disk_read: [true, false, true],
};

describe("MCP workspace tools", () => {
  it("are exposed per profile exactly as the contract lists them; workspace-core is the default", async () => {
    const expected = {
      "vm-run": ["vm_run"],
      "workspace-core": CORE,
      "workspace-full": [
        ...CORE,
        "vm_list_environments",
        "workspace_stop",
        "workspace_start",
        "workspace_disk_export",
        "workspace_disk_list",
        "workspace_disk_read",
        "snapshot_create",
        "snapshot_list",
        "snapshot_delete",
        "shell_open",
        "shell_read",
        "shell_write",
        "shell_signal",
        "shell_close",
        "service_start",
        "service_list",
        "service_status",
        "service_logs",
        "service_stop",
      ],
    };
    for (const [profile, names] of Object.entries(expected)) {
      assert.deepEqual([...PROFILE_TOOLS[profile as keyof typeof expected]], names, profile);
      const { client } = await connect(profile as keyof typeof expected);
      const { tools } = await client.listTools();
      assert.deepEqual(
        tools.map((t) => t.name),
        names,
        profile,
      );
      await client.close();
    }
    const { client } = await connect(undefined);
    assert.deepEqual(
      (await client.listTools()).tools.map((t) => t.name),
      CORE,
    );
    await client.close();
  });

  it("each declare input and output schemas, a model-facing description and honest annotations", async () => {
    const { client } = await connect("workspace-full");
    const { tools } = await client.listTools();
    const workspaceTools = tools.filter((t) => t.name.startsWith("workspace_"));
    assert.deepEqual(workspaceTools.map((t) => t.name).sort(), Object.keys(HINTS).sort());
    for (const tool of workspaceTools) {
      const [readOnlyHint, destructiveHint, idempotentHint] = HINTS[tool.name] ?? [];
      assert.equal(tool.inputSchema.type, "object", tool.name);
      assert.equal(tool.outputSchema?.type, "object", tool.name);
      const { title: _title, ...hints } = tool.annotations ?? {};
      assert.deepEqual(hints, { readOnlyHint, destructiveHint, idempotentHint, openWorldHint: false }, tool.name);
      const description = tool.description ?? "";
      assert.ok(description.length > 150, `${tool.name} description is too short`);
      if (tool.name !== "workspace_create" && tool.name !== "workspace_list") {
        assert.ok((tool.inputSchema.required ?? []).includes("workspace"), `${tool.name} requires workspace`);
        assert.match(description, /`workspace` takes the id or the (current )?name/, tool.name);
      }
    }
    const byName = new Map(tools.map((t) => [t.name, t]));
    assert.deepEqual(byName.get("workspace_exec")?.inputSchema.required, ["workspace", "command"]);
    assert.deepEqual(
      Object.keys(byName.get("workspace_status")?.outputSchema?.properties ?? {}).sort(),
      Object.keys(WorkspaceInfo.shape).sort(),
    );
    assert.match(
      byName.get("workspace_exec")?.description ?? "",
      /prefer workspace_file_write or\s+workspace_patch_apply/,
    );
    assert.match(
      byName.get("workspace_diff")?.description ?? "",
      /everything changed in \/workspace since the workspace was created/,
    );
    // workspace-full's create and exec take secrets, network policy and secret_env; workspace-core's do not.
    const props = (list: typeof tools, name: string) =>
      Object.keys(list.find((t) => t.name === name)?.inputSchema.properties ?? {});
    assert.ok(props(tools, "workspace_create").includes("secrets"));
    assert.ok(props(tools, "workspace_create").includes("network_policy"));
    assert.ok(props(tools, "workspace_exec").includes("secret_env"));
    for (const allowlist of ["allow_hosts", "deny_hosts", "allow_presets", "ca_files", "host_ca"]) {
      assert.ok(props(tools, "workspace_create").includes(allowlist), allowlist);
    }
    assert.ok(props(tools, "workspace_update").includes("remove_hosts"));
    assert.ok(props(tools, "workspace_logs").includes("network"));
    const core = await connect("workspace-core");
    const coreTools = (await core.client.listTools()).tools;
    for (const hidden of ["secrets", "allow_hosts", "deny_hosts", "ca_files"]) {
      assert.equal(props(coreTools, "workspace_create").includes(hidden), false, hidden);
    }
    // workspace-core may install dependencies: the allowlist with named presets, nothing free-form.
    const coreCreate = coreTools.find((t) => t.name === "workspace_create")?.inputSchema.properties ?? {};
    assert.deepEqual((coreCreate.network_policy as { enum?: string[] }).enum, ["off", "allowlist"]);
    assert.ok("allow_presets" in coreCreate && "host_ca" in coreCreate);
    for (const hidden of ["allow_hosts", "deny_hosts", "allow_presets", "remove_hosts"]) {
      assert.equal(props(coreTools, "workspace_update").includes(hidden), false, hidden);
    }
    assert.equal(props(coreTools, "workspace_exec").includes("secret_env"), false);
    await core.client.close();
    await client.close();
  });

  it("call the operation with the parsed arguments and return structuredContent plus the same JSON", async () => {
    const { manager, calls } = fakeManager();
    const { client } = await connect("workspace-full", manager);
    const cases: Array<[string, Record<string, unknown>, Method, unknown]> = [
      ["workspace_create", { name: "x" }, "create", { ...defaultsOfCreate(), name: "x" }],
      ["workspace_list", {}, "list", undefined],
      [
        "workspace_update",
        { workspace: "x", clear_labels: ["a"] },
        "update",
        {
          workspace: "x",
          labels: {},
          clear_labels: ["a"],
          allow_hosts: [],
          deny_hosts: [],
          allow_presets: [],
          remove_hosts: [],
        },
      ],
      ["workspace_status", { workspace: "x" }, "status", { workspace: "x" }],
      ["workspace_logs", { workspace: "x" }, "logs", { workspace: "x", network: false, limit: 200 }],
      ["workspace_summary", { workspace: "x" }, "summary", { workspace: "x" }],
      ["workspace_delete", { workspace: "x" }, "delete", { workspace: "x" }],
      ["workspace_stop", { workspace: "x" }, "stop", { workspace: "x" }],
      ["workspace_start", { workspace: "x" }, "start", { workspace: "x" }],
      [
        "workspace_exec",
        { workspace: "x", command: ["git", "status"] },
        "exec",
        {
          workspace: "x",
          command: ["git", "status"],
          cwd: "/workspace",
          timeout_seconds: 600,
          wait_seconds: 30,
          secret_env: {},
        },
      ],
      [
        "workspace_exec_wait",
        { workspace: "x", sequence: 2, stdout_offset: 10 },
        "execWait",
        { workspace: "x", sequence: 2, stdout_offset: 10, wait_seconds: 30, cancel: false },
      ],
      [
        "workspace_sync_push",
        { workspace: "x", source_path: "/src" },
        "syncPush",
        { workspace: "x", source_path: "/src", dest: "/workspace" },
      ],
      [
        "workspace_export",
        { workspace: "x", path: "out", output_path: "/tmp/o" },
        "export",
        { workspace: "x", path: "out", output_path: "/tmp/o" },
      ],
      ["workspace_diff", { workspace: "x" }, "diff", { workspace: "x" }],
      [
        "workspace_file_list",
        { workspace: "x", recursive: true },
        "listFiles",
        { workspace: "x", path: "/workspace", recursive: true },
      ],
      [
        "workspace_file_read",
        { workspace: "x", path: "a.txt" },
        "readFile",
        { workspace: "x", path: "a.txt", max_bytes: 65_536 },
      ],
      [
        "workspace_file_write",
        { workspace: "x", path: "a.txt", text: "t" },
        "writeFile",
        { workspace: "x", path: "a.txt", text: "t" },
      ],
      ["workspace_patch_apply", { workspace: "x", patch: PATCH }, "applyPatch", { workspace: "x", patch: PATCH }],
      ["workspace_reset", { workspace: "x" }, "reset", { workspace: "x", snapshot: "baseline" }],
    ];
    for (const [name, args, method, params] of cases) {
      const result = await client.callTool({ name, arguments: args });
      assert.notEqual(result.isError, true, name);
      assert.deepEqual(calls.pop(), { method, params }, name);
      const [content] = result.content as { type: string; text: string }[];
      assert.deepEqual(JSON.parse(content?.text ?? ""), result.structuredContent, name);
    }
    await client.close();
  });

  it("returns a command that ran and failed as a normal result", async () => {
    const { manager } = fakeManager({ exec: async () => ({ ...EXEC, exit_code: 2, stderr: "no\n" }) });
    const { client } = await connect(undefined, manager);
    const result = await client.callTool({ name: "workspace_exec", arguments: { workspace: "x", command: "false" } });
    assert.notEqual(result.isError, true);
    assert.equal((result.structuredContent as WorkspaceExecResult).exit_code, 2);
    await client.close();
  });

  it("reports a failed operation as isError with the code and message", async () => {
    const { manager } = fakeManager({ diff: notFound });
    const { client, log } = await connect(undefined, manager);
    const result = await client.callTool({ name: "workspace_diff", arguments: { workspace: "nope" } });
    assert.equal(result.isError, true);
    assert.match(
      (result.content as { text: string }[])[0]?.text ?? "",
      /^WORKSPACE_NOT_FOUND: no workspace has the id or name "nope"; list them with .*workspace_list/,
    );
    assert.match(log[0] ?? "", /workspace_diff failed: WORKSPACE_NOT_FOUND/);
    await client.close();
  });

  it("answers invalid arguments with a protocol error naming the field, without calling anything", async () => {
    const { manager, calls } = fakeManager();
    const { client } = await connect(undefined, manager);
    for (const [name, args, pattern] of [
      ["workspace_exec", { command: "true" }, /workspace is required/],
      ["workspace_status", { workspace: "" }, /workspace must not be empty/],
      ["workspace_create", { name: "bad name!" }, /name is not valid/],
      ["workspace_create", { labels: { "a b": "c" } }, /labels has an invalid key "a b"/],
      ["workspace_file_read", { workspace: "x", path: "a", max_bytes: 0 }, /max_bytes must be > 0/],
      ["workspace_patch_apply", { workspace: "x", patch: "" }, /patch must not be empty/],
    ] as const) {
      await assert.rejects(
        client.callTool({ name, arguments: args }),
        (err: unknown) => err instanceof McpError && err.code === ErrorCode.InvalidParams && pattern.test(err.message),
        name,
      );
    }
    assert.deepEqual(calls, []);
    await client.close();
  });

  it("keeps workspace_stop and workspace_start out of workspace-core", async () => {
    const { client } = await connect("workspace-core");
    await assert.rejects(
      client.callTool({ name: "workspace_stop", arguments: { workspace: "x" } }),
      (err: unknown) => err instanceof McpError && err.code === ErrorCode.InvalidParams,
    );
    await client.close();
  });
});

function defaultsOfCreate() {
  return {
    environment: "debian:12",
    vcpu_count: 1,
    mem_mib: 1024,
    disk_mib: 8192,
    ttl_seconds: 600,
    engine: "auto",
    labels: {},
    network_policy: "off",
    allow_hosts: [],
    deny_hosts: [],
    allow_presets: [],
    ca_files: [],
    host_ca: false,
    host_proxy: false,
    secrets: [],
  };
}

describe("MCP callers' host paths", () => {
  const base = mkdtempSync(join(tmpdir(), "pyro-test-hostpaths-"));
  const project = join(base, "project");
  const elsewhere = join(base, "elsewhere");
  after(() => rmSync(base, { recursive: true, force: true }));
  mkdirSync(join(project, "src"), { recursive: true });
  mkdirSync(elsewhere);
  writeFileSync(join(project, "src", "a.txt"), "a\n");
  writeFileSync(join(project, "key.txt"), "k");
  writeFileSync(join(elsewhere, "key.txt"), "k");
  symlinkSync(elsewhere, join(project, "out-link"));
  const policy = { roots: [project] };

  async function call(name: string, args: Record<string, unknown>, hostPaths: HostPathOptions = policy) {
    const fake = fakeManager();
    const { client } = await connect("workspace-full", fake.manager, hostPaths);
    const result = await client.callTool({ name, arguments: args });
    await client.close();
    const text = (result.content as { text: string }[])[0]?.text ?? "";
    return { error: result.isError ? text : undefined, calls: fake.calls };
  }

  it("let a caller name paths under the project directory, relative ones starting there", async () => {
    const create = await call("workspace_create", {
      seed_path: "src",
      secrets: [{ name: "KEY", file_path: "key.txt" }],
    });
    assert.equal(create.error, undefined);
    const params = create.calls[0]?.params as { seed_path: string; secrets: Array<{ file_path: string }> };
    assert.equal(params.seed_path, join(project, "src"));
    assert.equal(params.secrets[0]?.file_path, join(project, "key.txt"));
    const exported = await call("workspace_export", { workspace: "x", path: "out", output_path: "dist/new/out" });
    assert.equal(exported.error, undefined);
    assert.deepEqual(exported.calls[0]?.params, {
      workspace: "x",
      path: "out",
      output_path: join(project, "dist/new/out"),
    });
  });

  it("refuse every host path outside it with HOST_PATH_NOT_ALLOWED and the fix, calling nothing", async () => {
    const outside: Array<[string, Record<string, unknown>, RegExp]> = [
      ["workspace_create", { seed_path: "/etc" }, /^HOST_PATH_NOT_ALLOWED: seed_path \/etc is outside/],
      [
        "workspace_create",
        { secrets: [{ name: "K", file_path: join(elsewhere, "key.txt") }] },
        /secret K's file_path .* is outside/,
      ],
      [
        "workspace_sync_push",
        { workspace: "x", source_path: "../elsewhere" },
        /source_path \.\.\/elsewhere is outside/,
      ],
      ["workspace_export", { workspace: "x", path: "o", output_path: "/tmp/pyro-out" }, /output_path \/tmp\/pyro-out/],
      [
        "workspace_disk_export",
        { workspace: "x", output_path: "out-link/ws.ext4" },
        /output_path out-link\/ws\.ext4 \(it resolves to .*elsewhere\/ws\.ext4\) is outside/,
      ],
    ];
    for (const [name, args, pattern] of outside) {
      const { error, calls } = await call(name, args);
      assert.match(error ?? "", pattern, name);
      assert.match(error ?? "", /restart pyro mcp serve with --allow-host-path DIR$/, name);
      assert.deepEqual(calls, [], `${name}: the manager was not called`);
    }
  });

  it("cap what a caller copies in, and lift the directory rule only when told", async () => {
    const big = await call(
      "workspace_sync_push",
      { workspace: "x", source_path: "." },
      { ...policy, maxSourceBytes: 2 },
    );
    assert.match(
      big.error ?? "",
      /^HOST_PATH_NOT_ALLOWED: source_path \. is over \d+ bytes, more than the 2 bytes an MCP caller may copy in; .*--max-source-mib$/,
    );
    assert.deepEqual(big.calls, []);
    const any = await call("workspace_sync_push", { workspace: "x", source_path: elsewhere }, { anyPath: true });
    assert.equal(any.error, undefined);
    assert.equal((any.calls[0]?.params as { source_path: string } | undefined)?.source_path, elsewhere);
  });
});
