// A hostile guest on the engine under test (gvisor, and qemu in the conformance stage): what it
// does inside its workspace stays inside. Each case ends as a user would check: status, a command
// that still runs, the workspace's files, and pyro doctor finding nothing damaged or left over.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { GUEST_TASK_LIMIT } from "../../src/contract/defaults.js";
import type { PyroError } from "../../src/contract/errors.js";
import { diskLimitUnavailable } from "../../src/manager/layer-disk.js";
import { ENGINE } from "../helpers/engine.js";
import { runCli, workspaceSuite } from "../helpers/workspace-suite.js";

const { stateDir, host, manager, ws, create } = workspaceSuite("hostile");

/** Status, a fresh command, the file written before, and doctor: the workspace came through. */
async function cameThrough(id: string): Promise<void> {
  const status = await ws.status({ workspace: id });
  assert.equal(status.state, "running");
  assert.equal(status.process_limit, GUEST_TASK_LIMIT);
  const after = await ws.exec({ workspace: id, command: "cat before.txt", timeout_seconds: 60 });
  assert.equal(after.stdout, "written before\n");
  const doctor = await runCli(stateDir, ["doctor", "--json"]);
  const report = JSON.parse(doctor.stdout) as { leftovers: { items: string[] } };
  assert.deepEqual(report.leftovers.items, [], "doctor finds no damaged record and nothing left behind");
}

describe(`a hostile guest (${ENGINE})`, () => {
  it(`a fork storm meets the guest's own limit of ${GUEST_TASK_LIMIT} tasks (EAGAIN inside), and the workspace keeps serving`, async () => {
    const { workspace_id: id } = await create();
    await ws.writeFile({ workspace: id, path: "before.txt", text: "written before\n" });
    // Forks sleepers until the kernel refuses, says how far it got, then ends them all.
    const storm = [
      "my @kids; my $why = 'never refused';",
      "while (@kids < 5000) { my $p = fork(); if (!defined $p) { $why = $!; last } if ($p == 0) { sleep 300; exit 0 } push @kids, $p }",
      'print scalar(@kids), " $why\\n"; kill "KILL", @kids; waitpid($_, 0) for @kids;',
    ].join(" ");
    const r = await ws.exec({ workspace: id, command: ["perl", "-e", storm], timeout_seconds: 300 });
    assert.equal(r.exit_code, 0, r.stderr);
    const [count, ...why] = r.stdout.trim().split(" ");
    assert.equal(why.join(" "), "Resource temporarily unavailable", r.stdout);
    // The limit counts every task of the workspace's commands: the agent's exec wrapper and perl too.
    assert.ok(Number(count) > GUEST_TASK_LIMIT - 16 && Number(count) < GUEST_TASK_LIMIT, r.stdout);
    await cameThrough(id);
  });

  it("a command that eats all memory is ended by the limit, status says so when it took the sandbox, and nothing is lost", async () => {
    // qemu: the guest kernel's OOM killer ends the command (the agent is its last choice).
    // gvisor: gVisor has no OOM killer of its own; the host's memory cgroup ends the sandbox.
    const { workspace_id: id } = await create({ mem_mib: ENGINE === "qemu" ? 1024 : 256 });
    await ws.writeFile({ workspace: id, path: "before.txt", text: "written before\n" });
    const hog = "a = []\nwhile True: a.append(bytearray(32 << 20))";
    const outcome = await ws
      .exec({ workspace: id, command: ["python3", "-c", hog], timeout_seconds: 300 })
      .catch((err: Error) => err);
    if (ENGINE === "qemu") {
      assert.ok(!(outcome instanceof Error), String(outcome));
      assert.equal(outcome.exit_code, 137, outcome.stderr);
    } else {
      let status = await ws.status({ workspace: id });
      for (const t0 = Date.now(); status.state === "running" && Date.now() - t0 < 15_000; ) {
        await new Promise((r) => setTimeout(r, 200));
        status = await ws.status({ workspace: id });
      }
      assert.equal(
        status.state,
        "stopped",
        `exec gave ${outcome instanceof Error ? outcome.message : outcome.exit_code}`,
      );
      assert.match(status.stopped_reason ?? "", /^the sandbox ran out of memory \(mem_mib=256\); raise mem_mib/);
      await ws.start({ workspace: id });
      assert.equal((await ws.status({ workspace: id })).stopped_reason, null);
    }
    await cameThrough(id);
  });

  it("file names that are not UTF-8 get a clear refusal from diff, snapshot and export, the agent keeps serving, and a rename fixes it", async () => {
    const { workspace_id: id } = await create();
    await ws.writeFile({ workspace: id, path: "before.txt", text: "written before\n" });
    const made = await ws.exec({
      workspace: id,
      command: "printf x > \"$(printf 'caf\\351.txt')\" && mkdir \"$(printf 'd\\377')\" && ls -b",
    });
    assert.equal(made.stdout, "before.txt\ncaf\\351.txt\nd\\377\n", made.stderr);
    const refusal = (e: PyroError) =>
      e.code === "INVALID_ARGUMENT" && /not valid UTF-8/.test(e.message) && !/bug in pyro/.test(e.message);
    await assert.rejects(ws.diff({ workspace: id }), refusal);
    await assert.rejects(ws.snapshotCreate({ workspace: id, snapshot_name: "odd" }), refusal);
    await assert.rejects(ws.export({ workspace: id, path: ".", output_path: join(host, "odd-export") }), refusal);
    assert.equal(existsSync(join(host, "odd-export")), false, "nothing half exported");
    assert.equal((await ws.snapshotList({ workspace: id })).count, 0, "no half-made snapshot");
    await ws.exec({
      workspace: id,
      command: "mv \"$(printf 'caf\\351.txt')\" cafe.txt && rmdir \"$(printf 'd\\377')\"",
    });
    assert.deepEqual((await ws.diff({ workspace: id })).files.map((f) => f.path).sort(), ["before.txt", "cafe.txt"]);
    await ws.snapshotCreate({ workspace: id, snapshot_name: "odd" });
    await cameThrough(id);
  });

  it("a guest that fills its disk gets ENOSPC at disk_mib, the host's disk does not fill, deleting gives the space back, and a full workspace still resets", async () => {
    const noLimit = await diskLimitUnavailable();
    const { workspace_id: id, disk_mib } = await create({ disk_mib: 300 });
    if (noLimit) {
      // Rootless or without loop devices there is no limit, and status says so rather than pretend.
      assert.equal(disk_mib, null);
      return;
    }
    assert.equal(disk_mib, 300);
    await ws.writeFile({ workspace: id, path: "before.txt", text: "written before\n" });
    const image = join(manager.lifecycle.records.paths(id).sandbox, "disk.img");
    const fill = "dd if=/dev/zero of=/workspace/fill bs=1M count=400; sync";
    const full = await ws.exec({ workspace: id, command: fill, timeout_seconds: 300 });
    assert.match(full.stderr, /No space left on device/, full.stderr);
    const used = (await ws.status({ workspace: id })).disk_used_mib ?? 0;
    assert.ok(used > 250 && used <= 300, `disk_used_mib ${used}`);
    // What the host spent is the image's allocated blocks: never more than the disk's size.
    const spent = () => (statSync(image).blocks * 512) / (1024 * 1024);
    assert.ok(spent() <= 300, `the image holds ${spent()} MiB of the host's disk`);
    // The root shares the disk on gvisor (its overlay's upper layer); on qemu it is the VM's own disk.
    const root = await ws.exec({ workspace: id, command: "dd if=/dev/zero of=/var/tmp/r bs=1M count=8; sync" });
    if (ENGINE === "gvisor") assert.match(root.stderr, /No space left on device/, root.stderr);
    else assert.equal(root.exit_code, 0, root.stderr);
    await ws.exec({
      workspace: id,
      command: "rm -f /workspace/fill /var/tmp/r; sync; fstrim /workspace 2>/dev/null; true",
    });
    const freed = (await ws.status({ workspace: id })).disk_used_mib ?? 999;
    assert.ok(freed < 50, `disk_used_mib after rm: ${freed}`);
    await cameThrough(id);
    // A full disk does not stand in the way of going back: reset builds a new one.
    await ws.exec({ workspace: id, command: fill, timeout_seconds: 300 });
    await ws.reset({ workspace: id });
    const reset = await ws.status({ workspace: id });
    assert.equal(reset.state, "running");
    assert.ok((reset.disk_used_mib ?? 999) < 50, `disk_used_mib after reset: ${reset.disk_used_mib}`);
    assert.equal(
      (await ws.exec({ workspace: id, command: "echo fits > small.txt && cat small.txt" })).stdout,
      "fits\n",
    );
  });

  it("a seed larger than disk_mib fails the create naming the limit, and leaves no workspace behind", async () => {
    if (await diskLimitUnavailable()) return; // no limit to meet (rootless, or no loop devices): status says null
    const seed = join(host, "too-big-seed");
    mkdirSync(seed, { recursive: true });
    writeFileSync(join(seed, "small.txt"), "fits\n");
    writeFileSync(join(seed, "big.bin"), randomBytes(300 * 1024 * 1024));
    const before = (await ws.list()).count;
    await assert.rejects(create({ disk_mib: 256, seed_path: seed }), (e: PyroError) => {
      assert.equal(e.code, "INVALID_ARGUMENT");
      assert.match(e.message, /does not fit the workspace's disk \(ENOSPC\).*larger disk_mib/);
      return true;
    });
    rmSync(seed, { recursive: true, force: true });
    assert.equal((await ws.list()).count, before, "the failed create left no workspace");
    const doctor = JSON.parse((await runCli(stateDir, ["doctor", "--json"])).stdout) as {
      leftovers: { items: string[] };
    };
    assert.deepEqual(doctor.leftovers.items, [], "nor anything doctor would find");
  });

  it("the guest sees the vCPUs it was given: nproc in a workspace and in a one-shot run is vcpu_count", async () => {
    // gvisor shows every host CPU whatever the quota, so pyro pins the sandbox's first process; a VM
    // simply has vcpu_count CPUs.
    const { workspace_id: id } = await create({ vcpu_count: 1 });
    const seen = await ws.exec({
      workspace: id,
      command: "nproc; python3 -c 'import os; print(len(os.sched_getaffinity(0)))'",
    });
    assert.equal(seen.stdout, "1\n1\n", seen.stderr);
    const oneShot = await runCli(stateDir, ["run", "debian:12", "--vcpu-count", "1", "--", "nproc"]);
    assert.equal(oneShot.stdout, "1\n", oneShot.stderr);
  });

  it("qemu as root: the VM's host processes run in a cgroup of their own, capped at vcpu_count CPUs", {
    skip: ENGINE !== "qemu" || process.getuid?.() !== 0 ? "QEMU's host cgroup is made as root, for qemu" : false,
  }, async () => {
    const { workspace_id: id } = await create({ vcpu_count: 1 });
    const pid = readFileSync(join(manager.lifecycle.records.paths(id).sandbox, "qemu.pid"), "utf8").trim();
    const cgroups = readFileSync(`/proc/${pid}/cgroup`, "utf8");
    const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
    const dir = v2 ? `/sys/fs/cgroup/pyro/${id}` : `/sys/fs/cgroup/cpu/pyro/${id}`;
    if (v2) {
      assert.match(cgroups, new RegExp(`^0::/pyro/${id}$`, "m"), cgroups);
      assert.equal(readFileSync(`${dir}/cpu.max`, "utf8"), "100000 100000\n");
    } else {
      assert.match(cgroups, new RegExp(`cpu[^\\n]*:/pyro/${id}\\n`), cgroups);
      assert.match(cgroups, new RegExp(`pids:/pyro/${id}\\n`), cgroups);
      assert.equal(readFileSync(`${dir}/cpu.cfs_quota_us`, "utf8"), "100000\n");
    }
    await ws.delete({ workspace: id });
    assert.equal(existsSync(dir), false, "removed with the sandbox");
  });
});
