// Snapshots, reset, stop/start, disk tools, TTL and crash recovery on real gVisor workspaces: what
// an agent relies on when it retries, checkpoints, parks a workspace or loses a process.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { PyroError } from "../../src/contract/errors.js";
import { getEngine } from "../../src/engines/index.js";
import { ENGINE, sandboxProcessPattern } from "../helpers/engine.js";
import { code, PYRO_BIN, workspaceSuite } from "../helpers/workspace-suite.js";

const run = promisify(execFile);
const PYRO = PYRO_BIN;
const { stateDir, host, manager, ws, shells, services, created, create } = workspaceSuite("snap");

/** sha256, mode and type of every entry under /workspace, as the guest sees them. */
async function fingerprint(workspace: string): Promise<string> {
  const result = await ws.exec({
    workspace,
    command:
      "cd /workspace && find . -mindepth 1 | LC_ALL=C sort | while read -r p; do " +
      'if [ -L "$p" ]; then echo "$p link $(readlink "$p")"; ' +
      'elif [ -d "$p" ]; then echo "$p dir $(stat -c %a "$p")"; ' +
      'else echo "$p file $(stat -c %a "$p") $(sha256sum < "$p" | cut -c1-16)"; fi; done',
  });
  assert.equal(result.exit_code, 0, result.stderr);
  return result.stdout;
}

describe("snapshots and reset", () => {
  let id: string;
  let seeded: string;
  before(async () => {
    const seed = join(host, "seed");
    mkdirSync(join(seed, "src"), { recursive: true });
    mkdirSync(join(seed, "empty"));
    writeFileSync(join(seed, "big.bin"), randomBytes(5 * 1024 * 1024));
    writeFileSync(join(seed, "src", "a.txt"), "alpha\n");
    writeFileSync(join(seed, "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
    id = (await create({ seed_path: seed, name: "snaps" })).workspace_id;
    seeded = await fingerprint(id);
  });

  it("resets to a snapshot exactly, and to the baseline", async () => {
    await ws.exec({ workspace: id, command: "echo beta > src/b.txt && ln -s src/b.txt link && chmod 600 src/a.txt" });
    const atSnapshot = await fingerprint(id);
    const snap = await ws.snapshotCreate({ workspace: id, snapshot_name: "s1" });
    assert.equal(snap.snapshot_name, "s1");
    assert.ok(snap.size_bytes >= 5 * 1024 * 1024);
    assert.ok(snap.shared_bytes >= 5 * 1024 * 1024, "the unchanged 5 MB file is shared with the baseline");

    await ws.exec({
      workspace: id,
      command:
        "head -c 1000 /dev/urandom > big.bin && rm -r src empty && echo x > extra && mkdir more && chmod 700 run.sh",
    });
    assert.notEqual(await fingerprint(id), atSnapshot);
    const reset = await ws.reset({ workspace: id, snapshot: "s1" });
    assert.equal(reset.snapshot, "s1");
    assert.equal(await fingerprint(id), atSnapshot);

    await ws.reset({ workspace: id, snapshot: "baseline" });
    assert.equal(await fingerprint(id), seeded);
    const info = await ws.status({ workspace: id });
    assert.equal(info.reset_count, 2);
    assert.equal(info.name, "snaps");

    const list = await ws.snapshotList({ workspace: id });
    assert.deepEqual(
      list.snapshots.map((s) => s.snapshot_name),
      ["s1"],
    );
    await assert.rejects(ws.snapshotCreate({ workspace: id, snapshot_name: "s1" }));
    await assert.rejects(ws.reset({ workspace: id, snapshot: "nope" }));
    await ws.snapshotDelete({ workspace: id, snapshot_name: "s1" });
    assert.equal((await ws.snapshotList({ workspace: id })).count, 0);
  });

  it("a reset clears shells and services and keeps secrets", async () => {
    const secretWs = await create({ secrets: [{ name: "T", value: "keep-me-secret-1234" }] });
    const shell = await shells.open({ workspace: secretWs.workspace_id });
    await services.start({ workspace: secretWs.workspace_id, service_name: "s", command: "sleep 100" });
    await ws.reset({ workspace: secretWs.workspace_id });
    await assert.rejects(shells.read({ workspace: secretWs.workspace_id, shell_id: shell.shell_id }));
    assert.equal((await services.list({ workspace: secretWs.workspace_id })).count, 0);
    const out = await ws.exec({
      workspace: secretWs.workspace_id,
      command: 'test "$T" = keep-me-secret-1234 && echo kept',
      secret_env: { T: "T" },
    });
    assert.equal(out.stdout, "kept\n");
  });
});

describe("stop, disk tools and start", () => {
  it("reads, lists and exports a stopped workspace's disk without a sandbox; start gives it back", async () => {
    const { workspace_id: id } = await create();
    await ws.writeFile({ workspace: id, path: "notes/today.md", text: "stopped but readable\n" });
    await ws.exec({ workspace: id, command: "ln -s notes/today.md latest && ln -s /etc/passwd escape" });
    await assert.rejects(ws.diskList({ workspace: id }), code("WORKSPACE_RUNNING"));

    const stopped = await ws.stop({ workspace: id });
    assert.equal(stopped.state, "stopped");
    assert.equal((await ws.status({ workspace: id })).state, "stopped");
    const sandboxProcs = await run("pgrep", ["-f", sandboxProcessPattern(id)]).catch(() => ({ stdout: "" }));
    assert.equal(sandboxProcs.stdout.trim(), "", "a stopped workspace runs no processes");

    const listing = await ws.diskList({ workspace: id, recursive: true });
    const paths = listing.entries.map((e) => e.path);
    assert.ok(paths.includes("/workspace/notes/today.md"));
    assert.equal(listing.entries.find((e) => e.path === "/workspace/latest")?.artifact_type, "symlink");
    const read = await ws.diskRead({ workspace: id, path: "latest" });
    assert.equal(read.content, "stopped but readable\n");
    await assert.rejects(ws.diskRead({ workspace: id, path: "escape" }), code("PATH_OUTSIDE_WORKSPACE"));

    const image = join(host, "ws.img");
    const exported = await ws.diskExport({ workspace: id, output_path: image });
    assert.ok(exported.size_bytes > 0);
    const { stdout: type } = await run("blkid", ["-o", "value", "-s", "TYPE", image]);
    assert.equal(type.trim(), "ext4");
    const mnt = mkdtempSync(join(tmpdir(), "pyro-test-mnt-"));
    await run("mount", ["-o", "loop,ro", image, mnt]);
    try {
      assert.equal(readFileSync(join(mnt, "notes", "today.md"), "utf8"), "stopped but readable\n");
    } finally {
      await run("umount", [mnt]);
      rmSync(mnt, { recursive: true, force: true });
    }
    await assert.rejects(ws.diskExport({ workspace: id, output_path: image }), code("OUTPUT_EXISTS"));

    const started = await ws.start({ workspace: id });
    assert.equal(started.state, "running");
    const back = await ws.readFile({ workspace: id, path: "notes/today.md" });
    assert.equal(back.content, "stopped but readable\n");
  });
});

describe("TTL", () => {
  it("stops (never deletes) a workspace idle past its ttl, and start brings it back", async () => {
    const { workspace_id: id } = await create({ ttl_seconds: 2 });
    await ws.writeFile({ workspace: id, path: "kept.txt", text: "still here\n" });
    const before = await ws.status({ workspace: id });
    assert.ok(before.expires_at);
    assert.deepEqual(await manager.lifecycle.reapExpired(), []);
    await new Promise((r) => setTimeout(r, 2_500));
    // Any pyro command reaps: here the CLI listing workspaces.
    const { stdout } = await run("node", [PYRO, "workspace", "list", "--json"], {
      env: { ...process.env, PYRO_STATE_DIR: stateDir },
    });
    const listed = JSON.parse(stdout) as { workspaces: Array<{ workspace_id: string; state: string }> };
    assert.equal(listed.workspaces.find((w) => w.workspace_id === id)?.state, "expired");
    assert.equal((await ws.status({ workspace: id })).state, "expired");
    assert.equal((await ws.diskRead({ workspace: id, path: "kept.txt" })).content, "still here\n");
    const started = await ws.start({ workspace: id });
    assert.equal(started.state, "running");
    assert.equal((await ws.readFile({ workspace: id, path: "kept.txt" })).content, "still here\n");
  });
});

describe("crash recovery", () => {
  /** Runs the CLI and SIGKILLs it after ms, or as soon as `now()` says so. */
  async function killCliDuring(args: string[], ms: number, now: () => boolean = () => false): Promise<void> {
    const child = spawn("node", [PYRO, ...args], {
      env: { ...process.env, PYRO_STATE_DIR: stateDir },
      stdio: "ignore",
    });
    const exited = new Promise((r) => child.once("exit", r));
    const t0 = Date.now();
    while (Date.now() - t0 < ms && !now()) await new Promise((r) => setTimeout(r, 10));
    child.kill("SIGKILL");
    await exited;
  }

  it("sync push is all or nothing: a CLI killed with the push staged, before the move, leaves no part of it", async () => {
    const { workspace_id: id } = await create({ name: "halfpush" });
    const layer = getEngine(ENGINE).workspaceLayer(manager.lifecycle.records.paths(id).sandbox);
    const bulk = join(host, "halfpush");
    mkdirSync(bulk);
    for (let i = 0; i < 400; i++) writeFileSync(join(bulk, `f${i}.txt`), `file ${i}\n`);
    for (let i = 0; i < 6; i++) writeFileSync(join(bulk, `z-big${i}`), randomBytes(8 << 20));
    const push = ["workspace", "sync", "push", "halfpush", bulk, "--dest", "pushed"];
    const child = spawn("node", [PYRO, ...push], {
      env: { ...process.env, PYRO_STATE_DIR: stateDir, PYRO_FAULT: "push:staged" },
      stdio: "ignore",
    });
    assert.equal(await new Promise((r) => child.once("exit", (_code, signal) => r(signal))), "SIGKILL");
    // It died with the sandbox paused and the whole push staged at the top of /workspace.
    const staged = readdirSync(layer).filter((n) => n.startsWith(".pyro-push-"));
    assert.equal(staged.length, 1, "the push was staged in /workspace on the host");
    assert.equal(readdirSync(join(layer, staged[0]!)).length, 406);
    // The next command thaws the sandbox, and the staged tree goes first.
    const probe = "ls -A /workspace | grep -c '^.pyro-'; test -e pushed && echo present || echo absent";
    const left = await ws.exec({ workspace: id, command: probe, timeout_seconds: 20 });
    assert.equal(left.stdout, "0\nabsent\n", "no staging directory, no pushed/");
    const again = await run("node", [PYRO, ...push, "--json"], { env: { ...process.env, PYRO_STATE_DIR: stateDir } });
    assert.equal((JSON.parse(again.stdout) as { entry_count: number }).entry_count, 407);
    const count = await ws.exec({ workspace: id, command: "ls -A pushed | wc -l; ls -A | grep -c '^.pyro-'" });
    assert.equal(count.stdout, "406\n0\n");
    assert.equal((await ws.status({ workspace: id })).state, "running");
  });

  it("a CLI killed during sync push or snapshot create leaves a workspace that status describes and that works", async () => {
    const { workspace_id: id } = await create({ name: "crashy" });
    await ws.writeFile({ workspace: id, path: "before.txt", text: "written before the kill\n" });
    const bulk = join(host, "bulk");
    mkdirSync(bulk);
    for (let i = 0; i < 1500; i++) writeFileSync(join(bulk, `f${i}.txt`), `file ${i}\n`);

    await killCliDuring(["workspace", "sync", "push", "crashy", bulk, "--dest", "bulk"], 1_500);
    assert.equal((await ws.status({ workspace: id })).state, "running");
    assert.equal((await ws.readFile({ workspace: id, path: "before.txt" })).content, "written before the kill\n");
    // Writing big files makes the snapshot take long enough to be killed in the middle.
    await ws.exec({
      workspace: id,
      command: "for i in 1 2 3 4 5 6 7 8; do head -c 20000000 /dev/urandom > big$i; done",
    });
    await killCliDuring(["workspace", "snapshot", "create", "crashy", "half"], 900);
    const exec = await ws.exec({ workspace: id, command: "cat before.txt", timeout_seconds: 10 });
    assert.equal(exec.stdout, "written before the kill\n", "a sandbox frozen by the killed CLI is thawed");
    const snaps = await ws.snapshotList({ workspace: id });
    assert.ok(snaps.snapshots.every((s) => s.snapshot_name === "half"));
    if (snaps.count === 0) await ws.snapshotCreate({ workspace: id, snapshot_name: "half" });
    await ws.reset({ workspace: id, snapshot: "half" });
    assert.equal((await ws.readFile({ workspace: id, path: "before.txt" })).content, "written before the kill\n");
    assert.equal((await ws.status({ workspace: id })).state, "running");
  });

  it("kill -9 of the supervisor during a long exec: status says stopped, start and reset work, data stays", async () => {
    const { workspace_id: id } = await create();
    await ws.writeFile({ workspace: id, path: "data.txt", text: "precious\n" });
    const pending = ws.exec({ workspace: id, command: "sleep 60", timeout_seconds: 120 }).catch((e: PyroError) => e);
    await new Promise((r) => setTimeout(r, 1_000));
    const statePath = join(manager.lifecycle.records.paths(id).sandbox, "supervisor.state.json");
    const { pid } = JSON.parse(readFileSync(statePath, "utf8")) as { pid: number };
    process.kill(pid, "SIGKILL");
    const outcome = await pending;
    assert.ok(outcome instanceof Error);
    assert.equal((await ws.status({ workspace: id })).state, "stopped");
    await ws.start({ workspace: id });
    assert.equal((await ws.readFile({ workspace: id, path: "data.txt" })).content, "precious\n");
    await ws.reset({ workspace: id });
    assert.ok(!existsSync(join(manager.lifecycle.records.paths(id).sandbox, "disk.next")));
  });
});

describe(`a killed sandbox (${ENGINE})`, () => {
  it("kill -9 of every sandbox process of a workspace: status says stopped, start brings the data back", async () => {
    const { workspace_id: id } = await create();
    await ws.writeFile({ workspace: id, path: "data.txt", text: "survives runsc\n" });
    const { stdout } = await run("pgrep", ["-f", sandboxProcessPattern(id)]);
    const pids = stdout.split("\n").filter(Boolean).map(Number);
    assert.ok(pids.length > 0);
    for (const pid of pids) process.kill(pid, "SIGKILL");
    const t0 = Date.now();
    while ((await ws.status({ workspace: id })).state === "running" && Date.now() - t0 < 10_000) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal((await ws.status({ workspace: id })).state, "stopped");
    await ws.start({ workspace: id });
    assert.equal((await ws.readFile({ workspace: id, path: "data.txt" })).content, "survives runsc\n");
  });
});

describe("fault injection: a CLI killed at each step leaves a workspace status describes and a command takes forward", () => {
  const env = { ...process.env, PYRO_STATE_DIR: stateDir };

  /** Runs the CLI with PYRO_FAULT=point and checks that it died there (SIGKILL). */
  async function crashAt(point: string, args: string[]): Promise<void> {
    const child = spawn("node", [PYRO, ...args], { env: { ...env, PYRO_FAULT: point }, stdio: "ignore" });
    const signal = await new Promise((r) => child.once("exit", (_code, sig) => r(sig)));
    assert.equal(signal, "SIGKILL", `${point} was not reached`);
  }

  const stateOf = async (name: string) =>
    (await ws.list()).workspaces.find((w) => w.name === name || w.workspace_id === name)?.state;

  for (const point of ["create:recorded", "create:seeded"]) {
    it(`${point}: the workspace reads as failed, start says to delete it, delete works`, async () => {
      const name = `crash-${point.replace(":", "-")}`;
      await crashAt(point, ["workspace", "create", "debian:12", "--name", name, "--secret", "K=never-leaks-123"]);
      assert.equal(await stateOf(name), "failed");
      await assert.rejects(ws.start({ workspace: name }), /delete it/);
      assert.equal((await ws.delete({ workspace: name })).deleted, true);
      assert.equal(await stateOf(name), undefined);
    });
  }

  it("create:baselined: the workspace is stopped and start brings it up", async () => {
    await crashAt("create:baselined", ["workspace", "create", "debian:12", "--name", "crash-baselined"]);
    assert.equal(await stateOf("crash-baselined"), "stopped");
    await ws.start({ workspace: "crash-baselined" });
    created.push((await ws.status({ workspace: "crash-baselined" })).workspace_id);
    assert.equal((await ws.exec({ workspace: "crash-baselined", command: "echo up" })).stdout, "up\n");
  });

  it("reset:built and reset:swapping: stopped, then start gives one whole layer, and reset works", async () => {
    const { workspace_id: id } = await create({ name: "crash-reset" });
    await ws.writeFile({ workspace: id, path: "mine.txt", text: "changed after create\n" });
    await crashAt("reset:built", ["workspace", "reset", id]);
    assert.equal(await stateOf(id), "stopped");
    await ws.start({ workspace: id });
    assert.equal((await ws.readFile({ workspace: id, path: "mine.txt" })).content, "changed after create\n");
    await crashAt("reset:swapping", ["workspace", "reset", id]);
    assert.equal(await stateOf(id), "stopped");
    await ws.start({ workspace: id });
    // The swap had begun: the new layer (the baseline) is what comes up, whole.
    await assert.rejects(ws.readFile({ workspace: id, path: "mine.txt" }));
    await ws.reset({ workspace: id });
    assert.equal(await stateOf(id), "running");
  });

  it("snapshot:frozen: the paused sandbox is thawed by the next command, no half snapshot is listed", async () => {
    const { workspace_id: id } = await create({ name: "crash-snap" });
    await crashAt("snapshot:frozen", ["workspace", "snapshot", "create", id, "s"]);
    assert.equal(await stateOf(id), "running");
    assert.equal((await ws.exec({ workspace: id, command: "echo thawed", timeout_seconds: 10 })).stdout, "thawed\n");
    assert.equal((await ws.snapshotList({ workspace: id })).count, 0);
    await ws.snapshotCreate({ workspace: id, snapshot_name: "s" });
    assert.equal((await ws.snapshotList({ workspace: id })).count, 1);
  });

  it("stop:halted: status says stopped, start works", async () => {
    const { workspace_id: id } = await create({ name: "crash-stop" });
    await crashAt("stop:halted", ["workspace", "stop", id]);
    assert.equal(await stateOf(id), "stopped");
    await ws.start({ workspace: id });
    assert.equal(await stateOf(id), "running");
  });

  it("delete:halted and delete:moved: delete finishes, and a half-deleted directory is swept", async () => {
    const { workspace_id: id } = await create({ name: "crash-delete" });
    await crashAt("delete:halted", ["workspace", "delete", id]);
    assert.equal(await stateOf(id), "stopped");
    await crashAt("delete:moved", ["workspace", "delete", id]);
    assert.equal(await stateOf(id), undefined);
    const trash = () => readdirSync(manager.lifecycle.records.root).filter((n) => n.startsWith(".trash-"));
    assert.equal(trash().length, 1);
    await run("node", [PYRO, "workspace", "list"], { env });
    assert.deepEqual(trash(), []);
  });
});
