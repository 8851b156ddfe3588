// Rootless mode's verdicts: what a process's uid map says about its privileges, and the one line
// doctor prints (with its fix) for each missing piece of the host.
import assert from "node:assert/strict";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  cannotRunInstructions,
  cannotRunReason,
  parseIdMap,
  privilegeCheck,
  privilegeFrom,
} from "../../src/rootless/mode.js";
import { explainUnshareFailure, inInitialUserNamespace, nsenterArgv } from "../../src/rootless/namespace.js";

const HOST_MAP = "         0          0 4294967295\n";
const USER_MAP = "         0       1001          1\n         1     100000      65536\n";

describe("rootless: privileges from the uid map", () => {
  it("root in the host's namespace is root", () => {
    assert.equal(inInitialUserNamespace(HOST_MAP), true);
    assert.deepEqual(privilegeFrom(0, HOST_MAP, undefined), { mode: "root" });
    assert.deepEqual(privilegeCheck({ mode: "root" }), { ok: true, detail: "running as root" });
  });

  it("root inside pyro's user namespace is rootless, with the user's uid and subordinate range", () => {
    assert.equal(inInitialUserNamespace(USER_MAP), false);
    assert.deepEqual(parseIdMap(USER_MAP), [
      { inside: 0, outside: 1001, count: 1 },
      { inside: 1, outside: 100000, count: 65536 },
    ]);
    const p = privilegeFrom(0, USER_MAP, undefined);
    assert.deepEqual(p, { mode: "rootless", hostUid: 1001, subordinate: { start: 100000, count: 65536 } });
    const check = privilegeCheck(p);
    assert.equal(check.ok, true);
    assert.match(check.detail, /^rootless: uid 1001 is root only inside pyro's user namespace; .*100000-165535/);
    assert.match(check.detail, /without cgroup limits/, "doctor says what rootless mode gives up");
  });

  it("an ordinary user outside the namespace can run nothing, and doctor splits the fix out", () => {
    const reason = explainUnshareFailure('unshare: no line matching user "ann" in /etc/subuid: Success\n', "ann");
    const p = privilegeFrom(1001, HOST_MAP, reason);
    assert.equal(p.mode, "none");
    const check = privilegeCheck(p);
    assert.equal(check.ok, false);
    assert.equal(check.detail, "user ann has no subordinate uid/gid range");
    assert.match(
      check.fix ?? "",
      /^an administrator runs: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ann/,
    );
    assert.doesNotMatch(check.fix ?? "", /Success/);
  });

  it("without a recorded reason, says how pyro must be started", () => {
    const check = privilegeCheck(privilegeFrom(1001, HOST_MAP, undefined));
    assert.equal(check.ok, false);
    assert.match(check.detail, /run pyro through its `pyro` program/);
  });
});

describe("rootless: doctor's line for each missing piece", () => {
  const cases: Array<[string, string, RegExp]> = [
    ["no subordinate ids", 'unshare: no line matching user "ann" in /etc/subuid', /usermod --add-subuids .* ann/],
    ["newuidmap missing", "unshare: failed to execute newuidmap: No such file or directory", /apt-get install uidmap/],
    [
      "user namespaces forbidden (Debian sysctl, Ubuntu AppArmor)",
      "unshare: unshare failed: Operation not permitted",
      /kernel\.unprivileged_userns_clone=1 .*kernel\.apparmor_restrict_unprivileged_userns=0/,
    ],
    [
      "anything else, in unshare's words",
      "unshare: something new",
      /could not create a user namespace for ann: unshare: something new/,
    ],
  ];
  for (const [what, stderr, expected] of cases) {
    it(what, () => assert.match(explainUnshareFailure(stderr, "ann"), expected));
  }

  it("tun: a device this user cannot open fails with the chmod that fixes it", async () => {
    const { tunCheck } = await import("../../src/engines/checks.js");
    const dir = await mkdtemp(join(tmpdir(), "pyro-unit-tun-"));
    try {
      assert.deepEqual(await tunCheck(join(dir, "absent")), {
        name: "tun",
        ok: false,
        detail: `${join(dir, "absent")} is missing: --network cannot work`,
        fix: "modprobe tun",
      });
      const device = join(dir, "tun");
      await writeFile(device, "");
      await chmod(device, 0o600);
      assert.equal((await tunCheck(device)).ok, true, "as root (not rootless) existence is enough");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("rootless: entering the namespace", () => {
  it("nsenter joins the holder's user and mount namespaces, keeps the caller's credentials and directory", () => {
    assert.deepEqual(nsenterArgv(42, ["node", "cli.mjs", "run"], "/home/ann/repo"), [
      "nsenter",
      "--target=42",
      "--user",
      "--mount",
      "--preserve-credentials",
      "--wd=/home/ann/repo",
      "--",
      "node",
      "cli.mjs",
      "run",
    ]);
  });
});

describe("rootless: a server that can run nothing says so first", () => {
  it("its instructions open with the problem, which host doctor reads back whole", () => {
    const problem =
      "sandboxes cannot start as this user: user ann has no subordinate uid/gid range; an administrator runs: usermod …. (x)";
    const text = cannotRunInstructions(problem, "Run commands in sandboxes.");
    assert.ok(text.startsWith("pyro cannot run here: every tool fails until this is fixed: "));
    assert.equal(cannotRunReason(text), problem);
    assert.equal(cannotRunReason("Run commands in sandboxes."), undefined);
    assert.equal(cannotRunReason(undefined), undefined);
  });
});
