// Runs after every other suite: asserts the tests left nothing behind on the host.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";

it("leaves no sandbox mounts", () => {
  const mounts = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[4] ?? "")
    .filter((m) => m.includes("/pyro-test-") || m.includes("/sandboxes/"));
  assert.deepEqual(mounts, []);
});

it("leaves no sandbox processes", () => {
  const procs = execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" })
    .split("\n")
    // A <defunct> entry is an exited orphan this machine's PID 1 has not reaped yet: it holds nothing.
    .filter(
      (l) =>
        /runsc|slirp4netns|pyro-supervisor|qemu-system|virtiofsd/.test(l) &&
        !l.includes("ps -eo") &&
        !l.includes("<defunct>"),
    );
  assert.deepEqual(procs, []);
});

it("leaves no VM memory files", () => {
  assert.deepEqual(
    readdirSync("/dev/shm").filter((f) => f.startsWith("pyro-vm-")),
    [],
  );
});

it("leaves no network namespaces", () => {
  const names = execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .filter((l) => l.startsWith("pyro-"));
  assert.deepEqual(names, []);
});

it("leaves no cgroups", () => {
  const left: string[] = [];
  for (const controller of readdirSync("/sys/fs/cgroup")) {
    try {
      const entries = readdirSync(`/sys/fs/cgroup/${controller}/pyro`, { withFileTypes: true });
      left.push(...entries.filter((e) => e.isDirectory()).map((e) => `${controller}/pyro/${e.name}`));
    } catch {}
  }
  assert.deepEqual(left, []);
});

it("leaves no temporary directories", () => {
  const since = Number(process.env.PYRO_TEST_STARTED ?? 0) * 1000;
  assert.deepEqual(
    readdirSync(tmpdir()).filter((d) => d.startsWith("pyro-test-") && statSync(join(tmpdir(), d)).mtimeMs >= since),
    [],
  );
});
