// The qemu engine's pure parts: the machine's command line (one shape for a saved VM and its
// restores), the KVM verdict on each kind of host, the QMP client against a scripted QEMU, and
// PYRO_ENGINE's meaning for `auto`.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { PyroError } from "../../src/contract/errors.js";
import { selectEngine } from "../../src/engines/index.js";
import { describeKvm, type KvmState, readKvmState, verdictFor } from "../../src/engines/qemu/kvm.js";
import { machineArgs, restoresSavedVm, vmFiles } from "../../src/engines/qemu/machine.js";
import { hmp, qmp } from "../../src/engines/qemu/qmp.js";

const dir = mkdtempSync(join(tmpdir(), "pyro-test-qemu-unit-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const guest = { kernel: "/k", initrd: "/i", release: "6.1", package: "p", initramfs_digest: "d" };
const files = vmFiles("/run/ws-1/sandbox");
const args = (over: Partial<Parameters<typeof machineArgs>[0]> = {}) =>
  machineArgs({ accel: "tcg", memMib: 512, vcpuCount: 2, guest, nic: false, files, ramInFile: false, ...over });
const valuesOf = (list: string[], flag: string) => list.filter((_, i) => list[i - 1] === flag);

describe("the qemu machine's command line", () => {
  it("a saved VM and its restores keep memory in a named shared file; a cold boot in a memfd", () => {
    assert.deepEqual(valuesOf(args({ ramInFile: true }), "-object"), [
      `memory-backend-file,id=mem,size=512M,mem-path=${files.ram},share=on`,
    ]);
    assert.deepEqual(valuesOf(args(), "-object"), ["memory-backend-memfd,id=mem,size=512M,share=on"]);
    assert.match(files.ram, /^\/dev\/shm\/pyro-vm-[0-9a-f]{16}\.ram$/);
    assert.notEqual(vmFiles("/run/ws-2/sandbox").ram, files.ram, "each run dir has its own memory file");
  });

  it("vcpu_count and mem_mib are the VM's; policy off has no NIC; TCG is pc and KVM microvm", () => {
    const tcg = args();
    assert.deepEqual(valuesOf(tcg, "-m"), ["512"]);
    assert.deepEqual(valuesOf(tcg, "-smp"), ["2"]);
    // One vCPU under TCG still gets a second possible one, so QEMU keeps the guest's barriers,
    // which virtio-fs's handshake with virtiofsd needs; KVM runs the guest's own.
    assert.deepEqual(valuesOf(args({ vcpuCount: 1 }), "-smp"), ["1,maxcpus=2"]);
    assert.deepEqual(valuesOf(args({ vcpuCount: 1, accel: "kvm" }), "-smp"), ["1"]);
    assert.deepEqual(valuesOf(tcg, "-M"), ["pc"]);
    assert.equal(tcg.includes("-netdev"), false);
    assert.deepEqual(valuesOf(args({ nic: true }), "-netdev"), ["user,id=net0"]);
    assert.deepEqual(valuesOf(args({ accel: "kvm" }), "-M"), ["microvm,acpi=on,pcie=on"]);
    assert.equal(restoresSavedVm("tcg"), true);
    assert.equal(restoresSavedVm("kvm"), false);
  });

  it("the same shape gives the same command line whatever the run dir's memory file", () => {
    const a = machineArgs({ accel: "tcg", memMib: 1024, vcpuCount: 1, guest, nic: true, files, ramInFile: true });
    const b = machineArgs({ accel: "tcg", memMib: 1024, vcpuCount: 1, guest, nic: true, files, ramInFile: true });
    assert.deepEqual(a, b);
  });
});

/** A scripted QMP server: greets, accepts capabilities, then answers each command from `answers`. */
function fakeQemu(path: string, answers: Record<string, unknown>) {
  const seen: string[] = [];
  const server = createServer((socket) => {
    socket.write(`${JSON.stringify({ QMP: { version: {}, capabilities: [] } })}\n`);
    let buf = "";
    socket.on("data", (chunk) => {
      buf += chunk.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const cmd = JSON.parse(buf.slice(0, nl)) as { execute: string };
        buf = buf.slice(nl + 1);
        seen.push(cmd.execute);
        // An event before the reply, as QEMU sends them: the client must skip it.
        socket.write(`${JSON.stringify({ event: "RESUME", data: {} })}\n`);
        const answer = cmd.execute === "qmp_capabilities" ? { return: {} } : answers[cmd.execute];
        socket.write(
          `${JSON.stringify(answer ?? { error: { class: "CommandNotFound", desc: `no ${cmd.execute}` } })}\n`,
        );
      }
    });
  });
  return new Promise<{ seen: string[]; close: () => void }>((resolve) =>
    server.listen(path, () => resolve({ seen, close: () => server.close() })),
  );
}

describe("the KVM verdict on each kind of host", () => {
  const present: KvmState = { device: "present", key: "2569/6.18.44/kvm+kvm_intel" };
  const at = "2026-12-02T18:00:00.000Z";

  it("no /dev/kvm: TCG, gvisor for auto, no probe owed, and no probe's words", async () => {
    const state = await readKvmState(join(dir, "no-such-device"));
    assert.deepEqual(state, { device: "absent" });
    // A verdict carried over from a host that had a device (the cache dir moved, the device went).
    const report = describeKvm(state, { accel: "tcg", probed_at: at, key: present.key });
    assert.equal(report.accel, "tcg");
    assert.equal(report.auto, false);
    assert.equal(report.unprobed, false);
    assert.match(report.doctor, /^\/dev\/kvm is absent: the qemu engine uses TCG/);
    assert.doesNotMatch(`${report.doctor} ${report.engine}`, /probe boot/);
  });

  it("a /dev/kvm that cannot boot a stock guest: TCG after the probe, said with the probe's date", () => {
    assert.equal(describeKvm(present, undefined).unprobed, true, "no verdict yet: a probe is owed");
    const report = describeKvm(present, { accel: "tcg", probed_at: at, key: present.key });
    assert.deepEqual([report.accel, report.auto, report.unprobed], ["tcg", false, false]);
    assert.match(report.doctor, /did not reach the guest in 8 s \(2026-12-02.*qemu engine uses TCG/);
    const unusable = describeKvm({ device: "unusable", reason: "this user cannot open it" }, undefined);
    assert.deepEqual([unusable.accel, unusable.auto, unusable.unprobed], ["tcg", false, false]);
    assert.match(unusable.doctor, /exists but this user cannot open it/);
  });

  it("a working KVM: KVM, and auto picks qemu", () => {
    const report = describeKvm(present, { accel: "kvm", probed_at: at, key: present.key });
    assert.deepEqual([report.accel, report.auto], ["kvm", true]);
    assert.match(report.doctor, /boots a stock guest kernel.*uses KVM/);
  });

  it("a verdict holds only for the KVM state it was taken on", async () => {
    const verdict = { accel: "kvm" as const, probed_at: at, key: present.key };
    assert.equal(verdictFor(present, verdict), verdict);
    assert.equal(verdictFor({ device: "present", key: "2569/6.19.0/kvm+kvm_amd" }, verdict), undefined);
    assert.equal(verdictFor({ device: "absent" }, verdict), undefined);
    assert.equal(describeKvm({ device: "present", key: "other" }, verdict).unprobed, true, "re-probed, not trusted");
    // Any character device this user can open reads as present, keyed by its device number.
    const devNull = await readKvmState("/dev/null");
    assert.equal(devNull.device, "present");
    assert.match(devNull.device === "present" ? devNull.key : "", /^\d+\//);
  });
});

describe("the QMP client", () => {
  it("runs commands in order after the handshake, skipping events", async () => {
    const path = join(dir, "qmp1.sock");
    const qemu = await fakeQemu(path, {
      stop: { return: {} },
      "query-status": { return: { status: "paused", running: false } },
    });
    const results = await qmp(path, [{ execute: "stop" }, { execute: "query-status" }]);
    assert.deepEqual(qemu.seen, ["qmp_capabilities", "stop", "query-status"]);
    assert.deepEqual(results, [{}, { status: "paused", running: false }]);
    qemu.close();
  });

  it("a refused command rejects with QEMU's words; a human-monitor error too", async () => {
    const path = join(dir, "qmp2.sock");
    const qemu = await fakeQemu(path, {
      "human-monitor-command": { return: "Could not set up host forwarding rule 'tcp::80-:80'\r\n" },
    });
    await assert.rejects(qmp(path, [{ execute: "bogus" }]), (e: PyroError) =>
      /refused bogus: no bogus/.test(e.message),
    );
    await assert.rejects(hmp(path, "hostfwd_add net0 tcp::80-:80"), /Could not set up host forwarding/);
    qemu.close();
  });

  it("a socket nobody listens on is SANDBOX_NOT_RUNNING", async () => {
    await assert.rejects(qmp(join(dir, "absent.sock"), []), (e: PyroError) => e.code === "SANDBOX_NOT_RUNNING");
  });
});

describe("PYRO_ENGINE", () => {
  it("pins what auto means, names itself as the reason, and a bad name is refused", async () => {
    const saved = process.env.PYRO_ENGINE;
    try {
      process.env.PYRO_ENGINE = "qemu";
      const pinned = await selectEngine("auto");
      assert.equal(pinned.engine.name, "qemu");
      assert.match(pinned.reason, /pinned by PYRO_ENGINE/);
      assert.equal((await selectEngine("gvisor")).engine.name, "gvisor", "a named engine wins over the pin");
      process.env.PYRO_ENGINE = "vmware";
      await assert.rejects(
        selectEngine("auto"),
        (e: PyroError) => e.code === "INVALID_ARGUMENT" && /vmware/.test(e.message),
      );
    } finally {
      if (saved === undefined) delete process.env.PYRO_ENGINE;
      else process.env.PYRO_ENGINE = saved;
    }
  });
});
