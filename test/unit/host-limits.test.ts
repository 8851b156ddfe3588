// Unit tests of the host-fit check: a sandbox shape this machine cannot honour is refused at once,
// naming the field, the host's figure and the largest value that fits, before anything is built.
import assert from "node:assert/strict";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { PyroError } from "../../src/contract/errors.js";
import { checkFitsHost, hostShape } from "../../src/manager/host-limits.js";
import { ensureDisk } from "../../src/manager/layer-disk.js";
import { Manager } from "../../src/manager/manager.js";
import { faces } from "../helpers/requests.js";

const stateDir = mkdtempSync(join(tmpdir(), "pyro-test-hostfit-"));
const manager = new Manager({ stateDir });
const face = faces(manager);
after(async () => {
  await manager.close();
  rmSync(stateDir, { recursive: true, force: true });
});

describe("a sandbox shape must fit the host", () => {
  const small = { cpus: 2, memMib: 4096 };

  it("takes what fits, up to the host's own figures", () => {
    checkFitsHost({ vcpu_count: 2, mem_mib: 4096 }, small);
    checkFitsHost({ vcpu_count: 1, mem_mib: 128 }, small);
  });

  it("refuses more vCPUs or memory than the host has, saying what fits", () => {
    assert.throws(
      () => checkFitsHost({ vcpu_count: 3, mem_mib: 512 }, small),
      (e: PyroError) =>
        e.code === "INVALID_ARGUMENT" && e.message === "vcpu_count 3 is more than this host's 2 CPUs; use at most 2",
    );
    assert.throws(
      () => checkFitsHost({ vcpu_count: 1, mem_mib: 4097 }, small),
      (e: PyroError) => e.message === "mem_mib 4097 is more than this host's 4096 MiB of memory; use at most 4096",
    );
  });

  it("reads this host's CPUs and memory", () => {
    const host = hostShape();
    assert.equal(host.cpus, availableParallelism());
    assert.ok(host.memMib > 128);
  });

  it("run and workspace create on this host refuse one vCPU or one MiB more than it has, before building anything", async () => {
    const host = hostShape();
    const tooMany = { vcpu_count: host.cpus + 1 };
    const tooMuch = { mem_mib: host.memMib + 1 };
    // Only what the contract's own ranges allow (≤ 64 vCPUs, ≤ 262144 MiB) reaches the host check.
    const shapes = [...(host.cpus < 64 ? [tooMany] : []), ...(host.memMib < 262144 ? [tooMuch] : [])];
    for (const extra of shapes) {
      const refused = (e: PyroError) => e.code === "INVALID_ARGUMENT" && /is more than this host's/.test(e.message);
      await assert.rejects(face.run({ command: "true", ...extra }), refused);
      await assert.rejects(face.workspaces.create({ ...extra }), refused);
    }
    assert.deepEqual(
      readdirSync(stateDir).filter((d) => d === "workspaces" || d === "sandboxes"),
      [],
    );
  });

  it("workspace create refuses a disk larger than the file system holding the state, before building anything", async () => {
    const fs = statfsSync(stateDir);
    const hostMib = Math.floor((fs.blocks * fs.bsize) / (1024 * 1024));
    await assert.rejects(
      face.workspaces.create({ disk_mib: hostMib + 1 }),
      (e: PyroError) =>
        e.code === "INVALID_ARGUMENT" &&
        e.message ===
          `disk_mib ${hostMib + 1} is more than the ${hostMib} MiB file system holding ${stateDir}; use at most ${hostMib}`,
    );
    await assert.rejects(face.workspaces.create({ disk_mib: 255 }), /disk_mib/);
    assert.deepEqual(
      readdirSync(stateDir).filter((d) => d === "workspaces"),
      [],
    );
  });
});

describe("a workspace's disk without a limit (a plain directory)", () => {
  it("takes in the layers of a layout from before disks, and a reset's swap a crash cut off is finished", async () => {
    const sandbox = join(stateDir, "legacy-sandbox");
    mkdirSync(join(sandbox, "upper", "workspace"), { recursive: true });
    writeFileSync(join(sandbox, "upper", "workspace", "kept.txt"), "kept\n");
    mkdirSync(join(sandbox, "work"));
    await ensureDisk(sandbox, null);
    assert.equal(readFileSync(join(sandbox, "disk", "upper", "workspace", "kept.txt"), "utf8"), "kept\n");
    // Nothing of the old layout is left beside the disk (the lock file is the disk's own).
    assert.deepEqual(
      readdirSync(sandbox).filter((n) => n !== "disk.lock"),
      ["disk"],
    );
    // A crash after the old disk was moved aside: the new one (whole) goes into place.
    renameSync(join(sandbox, "disk"), join(sandbox, "disk.old"));
    mkdirSync(join(sandbox, "disk.next", "upper", "workspace"), { recursive: true });
    writeFileSync(join(sandbox, "disk.next", "upper", "workspace", "new.txt"), "new\n");
    await ensureDisk(sandbox, null);
    assert.deepEqual(readdirSync(join(sandbox, "disk", "upper", "workspace")), ["new.txt"]);
    assert.equal(existsSync(join(sandbox, "disk.old")) || existsSync(join(sandbox, "disk.next")), false);
    // A crash while the new one was being filled: it is dropped, the old one stays.
    mkdirSync(join(sandbox, "disk.next", "upper"), { recursive: true });
    await ensureDisk(sandbox, null);
    assert.deepEqual(readdirSync(join(sandbox, "disk", "upper", "workspace")), ["new.txt"]);
    assert.equal(existsSync(join(sandbox, "disk.next")), false);
  });
});
