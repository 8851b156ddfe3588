// What only the qemu engine has to prove (the workspace contract itself runs against qemu in the
// conformance stage of npm test): a real Debian guest kernel under QEMU, KVM only where the host's
// /dev/kvm boots a stock kernel (what doctor reports, asserted for whichever host this is), and
// VMs restored from one saved image that still each have an identity of their own.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";
import { resolvePaths } from "../../src/util/paths.js";
import { removeStateDir } from "../helpers/state-dir.js";
import { PYRO_BIN, runCli } from "../helpers/workspace-suite.js";

const run = promisify(execFile);
const stateDir = mkdtempSync(join(tmpdir(), "pyro-test-qemu-"));
after(() => removeStateDir(stateDir));

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
    const { stdout } = await run("pgrep", ["-c", "-f", `qemu-system.*${stateDir}`]).catch(() => ({ stdout: "0" }));
    assert.equal(stdout.trim(), "0", "no VM left running");
  });

  it("doctor's KVM verdict is this host's (no /dev/kvm, one that cannot boot a stock kernel, or a working KVM), and VMs and auto follow it", async () => {
    const doctor = JSON.parse((await pyro(["doctor", "--json"])).stdout) as {
      engine: { selected: string; engines: Array<{ name: string; available: boolean; detail: string }> };
      checks: Array<{ name: string; ok: boolean; detail: string }>;
    };
    const qemu = doctor.engine.engines.find((e) => e.name === "qemu");
    const kvm = doctor.checks.find((c) => c.name === "kvm");
    assert.equal(qemu?.available, true);
    assert.equal(kvm?.ok, true, kvm?.detail);
    // What the guest kernel itself sees: kvm-clock is offered only to a guest running under KVM.
    const clocks = await pyro([
      "run",
      "debian:12",
      "--engine",
      "qemu",
      "--",
      "cat",
      "/sys/devices/system/clocksource/clocksource0/available_clocksource",
    ]);
    assert.equal(clocks.code, 0, clocks.stderr);
    const underKvm = clocks.stdout.includes("kvm-clock");
    if (!existsSync("/dev/kvm")) {
      assert.match(kvm!.detail, /^\/dev\/kvm is absent: the qemu engine uses TCG/);
      assert.doesNotMatch(`${kvm!.detail} ${qemu!.detail}`, /probe boot/, "no verdict of another host's KVM");
      assert.match(qemu!.detail, /TCG.*\/dev\/kvm is absent/);
      assert.equal(underKvm, false);
      assert.equal(doctor.engine.selected, process.env.PYRO_ENGINE ?? "gvisor");
    } else if (/boots a stock guest kernel/.test(kvm!.detail)) {
      assert.match(qemu!.detail, /with KVM/);
      assert.equal(underKvm, true, "the probe said KVM works, so VMs run under it");
      assert.equal(doctor.engine.selected, process.env.PYRO_ENGINE ?? "qemu");
    } else {
      // A device that boots no stock guest (a PVM host) or that this user cannot open.
      assert.match(kvm!.detail, /did not reach the guest in \d+ s|cannot open it/);
      assert.match(qemu!.detail, /TCG/);
      assert.equal(underKvm, false);
      assert.equal(doctor.engine.selected, process.env.PYRO_ENGINE ?? "gvisor");
    }
  });

  it("workspaces restored from the one saved VM each get their own random state, machine id and clock", async () => {
    const probe = "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; cat /etc/machine-id; date +%s";
    const seen: string[][] = [];
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const created = await pyro(["workspace", "create", "debian:12", "--engine", "qemu", "--json"]);
      assert.equal(created.code, 0, created.stderr);
      const id = (JSON.parse(created.stdout) as { workspace_id: string }).workspace_id;
      ids.push(id);
      const log = readFileSync(join(stateDir, "workspaces", id, "sandbox", "supervisor.log"), "utf8");
      assert.match(log, /qemu: restored in \d+ ms/, "started from the saved VM, not booted");
      const out = await pyro(["workspace", "exec", id, "--", "sh", "-c", probe]);
      assert.equal(out.code, 0, out.stderr);
      const lines = out.stdout.trim().split("\n");
      assert.equal(lines.length, 3);
      assert.ok(Math.abs(Number(lines[2]) - Date.now() / 1000) < 10, `guest clock ${lines[2]} is the host's`);
      seen.push(lines);
    }
    assert.notEqual(
      seen[0]![0],
      seen[1]![0],
      "the CRNGs were rekeyed: the same first random bytes would mean a shared state",
    );
    assert.notEqual(seen[0]![1], seen[1]![1], "machine ids differ");
    for (const id of ids) assert.equal((await pyro(["workspace", "delete", id])).code, 0);
    const shm = readdirSync("/dev/shm").filter((f) => f.startsWith("pyro-vm-"));
    assert.deepEqual(shm, [], "no guest memory file is left in /dev/shm");
    const { stdout } = await run("pgrep", ["-c", "-f", `qemu-system.*${stateDir}`]).catch(() => ({ stdout: "0" }));
    assert.equal(stdout.trim(), "0", "no VM left running");
  });

  it("the root disk outlives stop/start, a reset starts a fresh VM, and a memory hog dies alone", async () => {
    const created = await pyro(["workspace", "create", "debian:12", "--engine", "qemu", "--mem-mib", "512", "--json"]);
    assert.equal(created.code, 0, created.stderr);
    const id = (JSON.parse(created.stdout) as { workspace_id: string }).workspace_id;
    const exec = (script: string) => pyro(["workspace", "exec", id, "--", "sh", "-c", script]);
    assert.equal((await exec("echo installed > /etc/pyro-tool && echo kept > /workspace/w")).code, 0);
    assert.equal((await pyro(["workspace", "stop", id])).code, 0);
    assert.equal((await pyro(["workspace", "start", id])).code, 0);
    const log = readFileSync(join(stateDir, "workspaces", id, "sandbox", "supervisor.log"), "utf8");
    assert.match(log, /qemu: booting in \d+ ms/, "a stopped workspace boots its own disk");
    assert.equal((await exec("cat /etc/pyro-tool /workspace/w")).stdout, "installed\nkept\n");

    // 512 MiB of guest memory: the guest kernel's OOM killer takes the biggest process, not the agent.
    const hog = await exec("python3 -c 'b=[]\nwhile True: b.append(bytearray(64*1024*1024))'");
    assert.equal(hog.code, 137, hog.stderr);
    assert.equal((await exec("echo alive")).stdout, "alive\n");

    assert.equal((await pyro(["workspace", "reset", id])).code, 0);
    const after = await exec("cat /etc/pyro-tool; ls /workspace");
    assert.match(after.stderr, /No such file/, "a reset drops what was installed outside /workspace, as on gvisor");
    assert.equal(after.stdout, "", "and /workspace is the baseline (empty)");
    assert.equal((await pyro(["workspace", "delete", id])).code, 0);
  });

  it("a full /dev/shm (where VM memory lives) fails the create with a fix and leaves nothing", async () => {
    // A private mount namespace with an 8 MiB tmpfs on /dev/shm; the host's is untouched. The
    // shell reports the CLI's exit code, so unshare itself succeeds.
    const { stdout, stderr } = await run(
      "unshare",
      [
        "-m",
        "sh",
        "-c",
        'mount -t tmpfs -o size=8m tmpfs /dev/shm && "$0" "$1" workspace create debian:12 --engine qemu; echo "exit=$?"',
        process.execPath,
        PYRO_BIN,
      ],
      { env: { ...process.env, PYRO_STATE_DIR: stateDir } },
    );
    assert.match(stdout, /exit=1/);
    assert.match(stderr, /No space left on device; each running qemu sandbox keeps the memory it uses in \/dev\/shm/);
    const list = await pyro(["workspace", "list", "--json"]);
    assert.deepEqual((JSON.parse(list.stdout) as { workspaces: unknown[] }).workspaces, []);
  });

  it("env prune removes stale images, saved VMs and initramfs files, never what a disk still uses", async () => {
    const { cacheDir: cache } = resolvePaths();
    const envDir = join(cache, "environments", "debian_12-v1");
    // A workspace from this state dir, stopped: its disk is an overlay on the current saved VM.
    const created = await pyro(["workspace", "create", "debian:12", "--engine", "qemu", "--json"]);
    const id = (JSON.parse(created.stdout) as { workspace_id: string }).workspace_id;
    assert.equal((await pyro(["workspace", "stop", id])).code, 0);
    // Stale things as an older agent would have left them: an image, a saved VM on it, an initrd;
    // and a second stale image that a disk in another state dir still uses (registered, not seen).
    const stale = join(envDir, "qemu-root-0000deadbeef.img");
    const used = join(envDir, "qemu-root-0000cafef00d.img");
    await run("truncate", ["-s", "64M", stale]);
    await run("truncate", ["-s", "64M", used]);
    const savedVm = join(cache, "qemu", "templates", "00000000deadbeef");
    mkdirSync(savedVm, { recursive: true });
    await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", stale, "-F", "raw", join(savedVm, "root.qcow2")]);
    writeFileSync(
      join(savedVm, "template.json"),
      JSON.stringify({ root: join(savedVm, "root.qcow2"), initrd: "/old" }),
    );
    const otherDisk = join(stateDir, "elsewhere.qcow2");
    await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", used, "-F", "raw", otherDisk]);
    mkdirSync(`${used}.users`);
    symlinkSync(otherDisk, join(`${used}.users`, "x"));
    // A saved VM whose image an environment rebuild already removed.
    const orphanVm = join(cache, "qemu", "templates", "00000000feedface");
    mkdirSync(orphanVm, { recursive: true });
    const gone = join(envDir, "qemu-root-0000000000ff.img");
    await run("qemu-img", [
      "create",
      "-q",
      "-f",
      "qcow2",
      "-u",
      "-b",
      gone,
      "-F",
      "raw",
      join(orphanVm, "root.qcow2"),
      "64M",
    ]);
    writeFileSync(
      join(orphanVm, "template.json"),
      JSON.stringify({ root: join(orphanVm, "root.qcow2"), initrd: "/old" }),
    );
    const oldInitrd = join(cache, "qemu", "initrd-0-old.gz");
    writeFileSync(oldInitrd, "old");

    const pruned = await pyro(["env", "prune", "--json"]);
    assert.equal(pruned.code, 0, pruned.stderr);
    const removed = (JSON.parse(pruned.stdout) as { removed: string[] }).removed;
    assert.ok(removed.includes("qemu saved VM 00000000deadbeef"), removed.join("; "));
    assert.ok(removed.includes("qemu root image debian_12-v1/qemu-root-0000deadbeef.img"));
    assert.ok(removed.includes("qemu initramfs initrd-0-old.gz"));
    assert.ok(removed.includes("qemu saved VM 00000000feedface"), "one whose image is gone");
    for (const path of [stale, savedVm, orphanVm, oldInitrd]) assert.equal(existsSync(path), false, path);
    assert.equal(existsSync(used), true, "a disk of another state dir still uses it");
    rmSync(used, { force: true });
    rmSync(`${used}.users`, { recursive: true, force: true });

    // The stopped workspace's whole chain is intact: it starts and runs.
    assert.equal((await pyro(["workspace", "start", id])).code, 0);
    assert.equal((await pyro(["workspace", "exec", id, "--", "true"])).code, 0);
    assert.equal((await pyro(["workspace", "delete", id])).code, 0);
  });
});
