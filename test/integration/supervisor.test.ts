// The detached supervisor on a real gVisor sandbox with the real agent: its socket API, several
// clients at once, the exit watcher, the readiness timeout, and what a kill -9 leaves for cleanup.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Stream } from "../../src/channel/frame.js";
import type { AgentExecResult, AgentInfoResult } from "../../src/channel/protocol.js";
import type { PyroError } from "../../src/contract/errors.js";
import { EnvironmentStore, type InstalledEnvironment } from "../../src/environments/index.js";
import { Manager } from "../../src/manager/manager.js";
import { SupervisorClient } from "../../src/supervisor/client.js";
import { launchSupervisor } from "../../src/supervisor/launch.js";
import { resolvePaths } from "../../src/util/paths.js";
import { removeStateDir } from "../helpers/state-dir.js";

const stateDir = mkdtempSync(join(tmpdir(), "pyro-test-sup-"));
const sandboxes = join(stateDir, "sandboxes");
let environment: InstalledEnvironment;
let n = 0;

before(async () => {
  environment = await new EnvironmentStore(resolvePaths().cacheDir).require("debian:12");
});
after(async () => {
  await new Manager({ stateDir }).reapLeftovers();
  removeStateDir(stateDir);
});

function launch(overrides: { readyTimeoutMs?: number } = {}) {
  const id = `sup-${process.pid}-${n++}`;
  return launchSupervisor({
    id,
    runDir: join(sandboxes, id),
    engine: "gvisor",
    environment,
    vcpuCount: 1,
    memMib: 512,
    network: "off",
    ephemeral: false,
    readyTimeoutMs: overrides.readyTimeoutMs ?? 30_000,
  }).then((l) => ({ ...l, id, runDir: join(sandboxes, id) }));
}

const mounted = (dir: string) => readFileSync("/proc/self/mountinfo", "utf8").includes(dir);
const alive = (pid: number) =>
  existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

async function exec(client: SupervisorClient, argv: string[]) {
  let stdout = "";
  const result = (await client.request(
    "exec",
    { argv, cwd: "/workspace", timeout_ms: 10_000, max_output_bytes: 1 << 20 },
    {
      onData: (s, c) => {
        if (s === Stream.STDOUT) stdout += c.toString();
      },
    },
  )) as AgentExecResult;
  return { ...result, stdout };
}

describe("detached supervisor", () => {
  it("serves several clients at once over its socket, then shuts down leaving nothing", async () => {
    const sup = await launch();
    assert.equal(sup.hello.name, "pyro-agent");
    const [a, b] = await Promise.all([
      SupervisorClient.connect(sup.socketPath),
      SupervisorClient.connect(sup.socketPath),
    ]);
    const status = await a.status();
    assert.equal(status.state, "ready");
    assert.equal(status.supervisor_pid, sup.pid);
    const info = (await b.request("info", {})) as AgentInfoResult;
    assert.equal(info.kernel_release, "4.4.0", "the agent runs on gVisor's kernel");
    const t0 = Date.now();
    const [slow, fast] = await Promise.all([exec(a, ["sh", "-c", "sleep 1; echo slow"]), exec(b, ["echo", "fast"])]);
    assert.equal(slow.stdout, "slow\n");
    assert.equal(fast.stdout, "fast\n");
    assert.ok(Date.now() - t0 < 5_000);
    // State written in one call is there in the next: it is one sandbox.
    await exec(a, ["sh", "-c", "echo kept > /workspace/f"]);
    assert.equal((await exec(b, ["cat", "/workspace/f"])).stdout, "kept\n");
    b.close();
    await a.shutdown();
    assert.ok(await waitFor(() => !alive(sup.pid), 5_000), "supervisor exited");
    assert.equal(mounted(sup.runDir), false, "overlay unmounted");
    assert.equal(existsSync(sup.socketPath), false, "socket removed");
  });

  it("tears down by itself when its sandbox dies (exit watcher)", async () => {
    const sup = await launch();
    const client = await SupervisorClient.connect(sup.socketPath);
    const [runsc] = (await client.status()).sandbox_pids;
    process.kill(runsc!, "SIGKILL");
    assert.ok(await waitFor(() => !alive(sup.pid), 10_000), "supervisor exited after its sandbox died");
    assert.equal(mounted(sup.runDir), false);
    const log = readFileSync(join(sup.runDir, "supervisor.log"), "utf8");
    assert.equal(log.match(/teardown: done/g)?.length, 1, "teardown ran exactly once");
  });

  it("reports a sandbox that is not ready in time, and cleans up", async () => {
    await assert.rejects(launch({ readyTimeoutMs: 1 }), (e: PyroError) => e.code === "SANDBOX_START_FAILED");
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(
      readFileSync("/proc/self/mountinfo", "utf8")
        .split("\n")
        .filter((l) => l.includes(sandboxes)),
      [],
    );
  });

  it("kill -9 of the supervisor: the sandbox ends with it and the reaper removes what is left", async () => {
    const sup = await launch();
    process.kill(sup.pid, "SIGKILL");
    await waitFor(() => !alive(sup.pid), 2_000);
    const sandboxGone = () =>
      !execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).includes(`runsc --root ${sup.runDir}/runsc`);
    assert.ok(await waitFor(sandboxGone, 10_000), "the agent saw its channel close and the sandbox ended");
    assert.equal(mounted(sup.runDir), true, "the overlay is what a dead supervisor leaves");
    const cleaned = await new Manager({ stateDir }).reapLeftovers();
    assert.ok(
      cleaned.some((c) => c.startsWith("mount ")),
      cleaned.join(", "),
    );
    assert.equal(mounted(sup.runDir), false);
    assert.ok(readdirSync(sandboxes).includes(sup.id), "a persistent sandbox's directory (its disk) is kept");
  });
});
