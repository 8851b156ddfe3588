// One-shot runs on real gVisor sandboxes through the manager: isolation, limits, network policy,
// timeouts, output caps, and crash cleanup (kill -9 of the supervisor and of runsc).
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { PyroError } from "../../src/contract/errors.js";
import { Manager } from "../../src/manager/manager.js";
import {
  createOutsideNamespace,
  type OutsideNamespace,
  type ProbeResult,
  parseProbeOutput,
  probeArgs,
  startHostLoopbackServer,
} from "../helpers/netns.js";
import { faces } from "../helpers/requests.js";
import { removeStateDir } from "../helpers/state-dir.js";

const stateDir = mkdtempSync(join(tmpdir(), "pyro-test-sandbox-"));
const manager = new Manager({ stateDir });
const { run } = faces(manager);
const sandboxes = join(stateDir, "sandboxes");
/** The agent's own Node runtime, usable as a probe inside any environment. */
const GUEST_NODE = ["/opt/pyro/lib/ld-linux-x86-64.so.2", "--library-path", "/opt/pyro/lib", "/opt/pyro/bin/node"];

function sandboxDirs(): string[] {
  try {
    return readdirSync(sandboxes);
  } catch {
    return [];
  }
}

after(async () => {
  await manager.reapLeftovers();
  removeStateDir(stateDir);
});

describe("one-shot runs on gvisor", () => {
  it("runs the command inside gVisor, not on the host", async () => {
    const r = await run({
      command: [
        "sh",
        "-c",
        "uname -r; cat /etc/debian_version; test -e /work/main/package.json && echo visible || echo hidden; hostname",
      ],
    });
    assert.equal(r.exit_code, 0, r.stderr);
    assert.equal(r.execution_mode, "gvisor");
    const [kernel, debian, work, hostname] = r.stdout.trim().split("\n");
    assert.notEqual(
      kernel,
      execFileSync("uname", ["-r"], { encoding: "utf8" }).trim(),
      "guest kernel is not the host's",
    );
    assert.match(debian!, /^12\./);
    assert.equal(work, "hidden", "host files are not visible");
    assert.equal(hostname, "pyro");
  });

  it("ls -l, ls DIR and stat work (this runsc refuses coreutils' statx flags without pyro's shim)", async () => {
    const r = await run({
      command: "ls -l /etc/passwd && ls -d /etc && stat -c '%n %F' /etc && ls / | grep -c .",
    });
    assert.equal(r.exit_code, 0, r.stderr);
    const [long, dir, stat, count] = r.stdout.trim().split("\n");
    assert.match(long!, /^-rw-r--r-- 1 root root \d+ .* \/etc\/passwd$/);
    assert.equal(dir, "/etc");
    assert.equal(stat, "/etc directory");
    assert.ok(Number(count) > 10, `ls / listed ${count} entries`);
  });

  it("sees only its own processes", async () => {
    const r = await run({ command: "find /proc -maxdepth 1 -name '[0-9]*' | wc -l" });
    const seen = Number(r.stdout.trim());
    assert.ok(seen > 0 && seen < 10, `sandbox sees ${r.stdout.trim()} processes`);
  });

  it("writes never reach the environment or the next sandbox", async () => {
    const first = await run({ command: "echo hi > /etc/pyro-marker && cat /etc/pyro-marker" });
    assert.equal(first.stdout, "hi\n");
    const second = await run({ command: "cat /etc/pyro-marker" });
    assert.notEqual(second.exit_code, 0);
    assert.match(second.stderr, /No such file/);
  });

  it("honours vcpu_count and mem_mib", async () => {
    const r = await run({ command: "nproc; head -1 /proc/meminfo", vcpu_count: 2, mem_mib: 256 });
    const [cpus, mem] = r.stdout.trim().split("\n");
    assert.equal(cpus, "2");
    assert.match(mem!, /262144 kB/);
  });

  it("a sandbox that outgrows its memory limit is killed, and the output says why", async () => {
    const r = await run({
      command: ["python3", "-c", "print('started', flush=True); x = bytearray(600 * 1024 * 1024); print('survived')"],
      mem_mib: 256,
    });
    assert.equal(r.exit_code, 137);
    assert.equal(r.stdout, "started\n");
    assert.match(r.stderr, /ran out of memory \(mem_mib=256\); raise mem_mib/);
  });

  it("times out by killing the whole process group, and says so", async () => {
    const t0 = Date.now();
    const r = await run({ command: "sleep 100 & sleep 100", timeout_seconds: 1 });
    assert.equal(r.timed_out, true);
    assert.equal(r.exit_code, 124);
    assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms`);
  });

  it("a command printing 200 MB: output truncated with the flag set, host memory bounded", async () => {
    const rssBefore = process.memoryUsage().rss;
    const r = await run({
      command: "head -c 200000000 /dev/zero | tr '\\0' x; echo done >&2",
      timeout_seconds: 120,
    });
    assert.equal(r.exit_code, 0);
    assert.equal(r.stdout.length, 1_048_576);
    assert.equal(r.stdout_truncated, true);
    assert.equal(r.stderr, "done\n");
    const grownMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    assert.ok(grownMiB < 64, `host process grew by ${grownMiB.toFixed(0)} MiB`);
  });

  it("refuses bad input with the field named", async () => {
    await assert.rejects(
      run({ command: "true", mem_mib: 1 }),
      (e: PyroError) => e.code === "INVALID_ARGUMENT" && /mem_mib/.test(e.message),
    );
    await assert.rejects(
      run({ command: "true", environment: "debian:99" }),
      (e: PyroError) => e.code === "ENVIRONMENT_UNKNOWN",
    );
    await assert.rejects(
      run({ command: "true", engine: "firecracker" }),
      (e: PyroError) => e.code === "ENGINE_UNAVAILABLE",
    );
  });

  it("leaves nothing behind after a run", () => {
    assert.deepEqual(sandboxDirs(), []);
  });
});

describe("network policy", () => {
  let outside: OutsideNamespace;
  let loopback: Awaited<ReturnType<typeof startHostLoopbackServer>>;
  before(async () => {
    outside = await createOutsideNamespace();
    loopback = await startHostLoopbackServer("host-loopback");
  });
  after(async () => {
    await outside?.teardown();
    await loopback?.stop();
  });

  const probe = async (network: boolean): Promise<ProbeResult[]> => {
    const targets = [
      { host: outside.nsAddr, port: outside.server.port },
      { host: "127.0.0.1", port: loopback.port },
      { host: "10.0.2.2", port: loopback.port },
    ];
    const r = await run({ command: [...GUEST_NODE, ...probeArgs(targets)], network, timeout_seconds: 20 });
    assert.equal(r.exit_code, 0, r.stderr);
    return parseProbeOutput(r.stdout);
  };

  it("off: only loopback, nothing outside reachable", async () => {
    const ifaces = await run({ command: "cat /proc/net/dev" });
    assert.doesNotMatch(ifaces.stdout, /eth|tap/);
    const [out, lo, gw] = await probe(false);
    assert.equal(out!.ok, false);
    assert.equal(lo!.ok, false);
    assert.equal(gw!.ok, false);
  });

  it("--network: egress works, the host's loopback stays unreachable", async () => {
    const [out, lo, gw] = await probe(true);
    assert.deepEqual(out, { host: outside.nsAddr, port: outside.server.port, ok: true, data: `${outside.greeting}\n` });
    assert.equal(lo!.ok, false, "127.0.0.1 inside is the sandbox's own loopback");
    assert.equal(gw!.ok, false, "slirp's host alias does not lead to the host's loopback");
    assert.deepEqual(sandboxDirs(), []);
  });
});

describe("crash cleanup", () => {
  const pidsOf = (pattern: string) =>
    execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
      .split("\n")
      .filter((l) => l.includes(pattern) && !l.includes("ps -eo"))
      .map((l) => Number(l.trim().split(" ")[0]));

  const waitForSandbox = async (): Promise<string> => {
    for (let i = 0; i < 100; i++) {
      const id = sandboxDirs()[0];
      if (id && pidsOf(`runsc --root ${join(sandboxes, id)}/runsc`).length > 0) return join(sandboxes, id);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("sandbox did not come up");
  };

  it("kill -9 of the process that owns a run: the sandbox dies with it, doctor --repair cleans the rest", async () => {
    const script = `import { Manager } from ${JSON.stringify(join(process.cwd(), "src/manager/manager.ts"))};
      import { RunParams } from ${JSON.stringify(join(process.cwd(), "src/contract/schemas.ts"))};
      const request = RunParams.parse({ command: "sleep 60", timeout_seconds: 120, network: true });
      await new Manager({ stateDir: ${JSON.stringify(stateDir)} }).run(request);`;
    const owner = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: "ignore",
    });
    const runDir = await waitForSandbox();
    owner.kill("SIGKILL");
    await new Promise((r) => owner.once("exit", r));
    for (let i = 0; i < 50 && pidsOf(runDir).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(pidsOf(runDir), [], "runsc, its sandbox and slirp4netns died with their owner");
    const report = await manager.doctor();
    assert.ok(report.leftovers.found > 0, "doctor sees what the dead owner left");
    const repaired = await manager.doctor({ repair: true });
    assert.deepEqual(repaired.leftovers.items, []);
    assert.deepEqual(sandboxDirs(), []);
  });

  it("kill -9 of runsc mid-run: the caller gets exit 137 and nothing is left", async () => {
    const pending = run({ command: "sleep 60", timeout_seconds: 120 });
    const runDir = await waitForSandbox();
    for (const pid of pidsOf(`runsc --root ${runDir}/runsc`).slice(0, 1)) process.kill(pid, "SIGKILL");
    const r = await pending;
    assert.equal(r.exit_code, 137);
    await new Promise((res) => setTimeout(res, 300));
    assert.deepEqual(pidsOf(runDir), []);
    assert.deepEqual(sandboxDirs(), []);
  });
});
