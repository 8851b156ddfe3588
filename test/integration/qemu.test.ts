// The qemu engine on this host: a real Debian guest kernel under QEMU (TCG here: this machine's KVM
// cannot run stock kernels, which the engine's probe boot finds out), for one-shot runs.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { runCli } from "../helpers/workspace-suite.js";

const run = promisify(execFile);
const stateDir = mkdtempSync(join(tmpdir(), "pyro-test-qemu-"));
after(() => rmSync(stateDir, { recursive: true, force: true }));

const pyro = (args: string[]) => runCli(stateDir, args);

describe("pyro run --engine qemu", () => {
  it("prints the guest's Debian kernel version, not the host's and not gVisor's", async () => {
    const qemu = await pyro(["run", "debian:12", "--engine", "qemu", "--", "uname", "-r"]);
    assert.equal(qemu.code, 0, qemu.stderr);
    assert.match(qemu.stdout, /^\d+\.\d+\.\d+-\d+-cloud-amd64\n$/);
    assert.notEqual(qemu.stdout.trim(), release());
    const gvisor = await pyro(["run", "debian:12", "--engine", "gvisor", "--", "uname", "-r"]);
    assert.notEqual(gvisor.stdout, qemu.stdout);
  });

  it("keeps stdout and stderr apart and exits with the command's code; the VM sees the resources asked for", async () => {
    const out = await pyro([
      "run",
      "debian:12",
      "--engine",
      "qemu",
      "--vcpu-count",
      "2",
      "--mem-mib",
      "768",
      "--json",
      "--",
      "sh",
      "-c",
      "echo out; echo err >&2; nproc; free -m | awk '/Mem:/{print $2}'; exit 7",
    ]);
    const result = JSON.parse(out.stdout) as {
      stdout: string;
      stderr: string;
      exit_code: number;
      execution_mode: string;
    };
    assert.equal(result.exit_code, 7);
    assert.equal(result.execution_mode, "qemu");
    const [first, cpus, mem] = result.stdout.trim().split("\n");
    assert.equal(first, "out");
    assert.equal(cpus, "2");
    assert.ok(Number(mem) > 600 && Number(mem) <= 768, `guest memory ${mem} MiB`);
    assert.equal(result.stderr, "err\n");
    const missing = await pyro(["run", "debian:12", "--engine", "qemu", "--", "no-such-command"]);
    assert.equal(missing.code, 127);
  });

  it("a timeout kills the VM: exit 124", async () => {
    const t0 = Date.now();
    const slow = await pyro(["run", "debian:12", "--engine", "qemu", "--timeout-seconds", "5", "--", "sleep", "60"]);
    assert.equal(slow.code, 124);
    assert.ok(Date.now() - t0 < 20_000);
    const { stdout } = await run("pgrep", ["-c", "qemu-system"]).catch(() => ({ stdout: "0" }));
    assert.equal(stdout.trim(), "0", "no VM left running");
  });

  it("auto stays on gvisor, and a qemu workspace says what to use instead", async () => {
    const doctor = JSON.parse((await pyro(["doctor", "--json"])).stdout) as {
      engine: { selected: string; engines: Array<{ name: string; available: boolean }> };
    };
    assert.equal(doctor.engine.selected, "gvisor");
    assert.equal(doctor.engine.engines.find((e) => e.name === "qemu")?.available, true);
    const ws = await pyro(["workspace", "create", "debian:12", "--engine", "qemu"]);
    assert.equal(ws.code, 1);
    assert.match(ws.stderr, /--engine gvisor/);
  });
});
