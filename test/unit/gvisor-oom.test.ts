// How the gvisor engine tells an out-of-memory kill from the kernel log: by the sandbox's memory
// cgroup, and only when it was logged since this start (a workspace keeps its id across starts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { oomKilledSince } from "../../src/engines/gvisor/engine.js";

const LOG = [
  "[36001.000001] eth0: link up",
  "[36034.622876] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=ws-3cf2b8fc13,mems_allowed=0,oom_memcg=/pyro/ws-3cf2b8fc13,task_memcg=/pyro/ws-3cf2b8fc13,task=exe,pid=24781,uid=65534",
  "[36041.273479] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=ws-d5013fc70f,mems_allowed=0,oom_memcg=/pyro/ws-d5013fc70f,task_memcg=/pyro/ws-d5013fc70f,task=exe,pid=24981,uid=65534",
].join("\n");

describe("an out-of-memory kill in the kernel log", () => {
  it("counts for its own sandbox, logged since it started", () => {
    assert.equal(oomKilledSince(LOG, "ws-3cf2b8fc13", 36000), true);
    assert.equal(oomKilledSince(LOG, "ws-d5013fc70f", 36040), true);
  });

  it("does not count for another sandbox, a prefix of its id, or an earlier start of the same workspace", () => {
    assert.equal(oomKilledSince(LOG, "ws-0000000000", 0), false);
    assert.equal(oomKilledSince(LOG, "ws-3cf2b8fc1", 0), false);
    assert.equal(oomKilledSince(LOG, "ws-3cf2b8fc13", 36035), false, "killed before this start");
  });
});
