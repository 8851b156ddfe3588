// Unit tests of the OCI spec's CPU pinning: gVisor shows a sandbox every host CPU, so a sandbox
// given fewer starts its first process pinned to that many (nproc inside is vcpu_count).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { pinnedToVcpus } from "../../src/engines/gvisor/oci.js";

const withTaskset = mkdtempSync(join(tmpdir(), "pyro-test-oci-"));
mkdirSync(join(withTaskset, "usr", "bin"), { recursive: true });
writeFileSync(join(withTaskset, "usr", "bin", "taskset"), "");
const without = mkdtempSync(join(tmpdir(), "pyro-test-oci-bare-"));
after(() => {
  rmSync(withTaskset, { recursive: true, force: true });
  rmSync(without, { recursive: true, force: true });
});

describe("a gvisor sandbox's first process", () => {
  it("starts pinned to its first vcpu_count CPUs when it has fewer than the host", () => {
    assert.deepEqual(pinnedToVcpus(["tini", "--", "agent"], 1, withTaskset, 4), [
      "/usr/bin/taskset",
      "--cpu-list",
      "0",
      "tini",
      "--",
      "agent",
    ]);
    assert.deepEqual(pinnedToVcpus(["nproc"], 3, withTaskset, 4).slice(0, 3), [
      "/usr/bin/taskset",
      "--cpu-list",
      "0-2",
    ]);
  });

  it("is not pinned when it has every host CPU, or its root has no taskset", () => {
    assert.deepEqual(pinnedToVcpus(["nproc"], 4, withTaskset, 4), ["nproc"]);
    assert.deepEqual(pinnedToVcpus(["nproc"], 1, without, 4), ["nproc"]);
  });
});
