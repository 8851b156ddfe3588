// The real `pyro` binary against real sandboxes: output streams, exit codes, --json payloads,
// timeouts and Ctrl-C, as a user at a terminal or a script would see them. State goes to a temp
// PYRO_STATE_DIR; environments come from the shared cache so nothing is rebuilt.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DoctorResult, EnvironmentList, RunResult } from "../../src/contract/schemas.js";
import { PACKAGE_ROOT } from "../../src/version.js";

const MAIN = join(PACKAGE_ROOT, "dist", "src", "cli", "main.js");
const stateDir = mkdtempSync(join(tmpdir(), "pyro-cli-test-"));

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function pyro(args: string[], opts: { onSpawn?: (pid: number) => void } = {}): Promise<Outcome> {
  const started = Date.now();
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, PYRO_STATE_DIR: stateDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  if (child.pid !== undefined) opts.onSpawn?.(child.pid);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
}

before(() => {
  assert.ok(existsSync(MAIN), `${MAIN} is missing: run npm run build first`);
});

after(() => {
  rmSync(stateDir, { recursive: true, force: true });
});

describe("pyro run (real sandboxes)", () => {
  it("runs git --version in debian:12", async () => {
    const { code, stdout, stderr } = await pyro(["run", "debian:12", "--", "git", "--version"]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^git version \d+\.\d+/);
    assert.match(stderr, /^\[run\] environment=debian:12 engine=\w+ exit_code=0 duration_ms=\d+\n$/);
  });

  it("keeps guest stdout and stderr apart and exits with the guest's code", async () => {
    const { code, stdout, stderr } = await pyro([
      "run",
      "debian:12",
      "--",
      "sh",
      "-c",
      "echo out; echo err >&2; exit 3",
    ]);
    assert.equal(code, 3, stderr);
    assert.equal(stdout, "out\n");
    assert.match(stderr, /^err\n\[run\] environment=debian:12 engine=\w+ exit_code=3 duration_ms=\d+\n$/);
  });

  it("installs a package with apt-get without an error line (no TIOCSCTTY failure under gVisor)", async () => {
    // A package made on the spot, so no archive is needed: apt still runs dpkg as it always does.
    const build =
      "mkdir -p p/DEBIAN && printf 'Package: pyro-probe\\nVersion: 1\\nArchitecture: all\\n" +
      "Maintainer: t <t@t>\\nDescription: probe\\n' > p/DEBIAN/control && dpkg-deb --build p probe.deb >/dev/null";
    const { code, stdout, stderr } = await pyro([
      "run",
      "debian:12",
      "--",
      `${build} && apt-get install -y -q ./probe.deb && dpkg-query -W -f '\${Status}' pyro-probe`,
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /Setting up pyro-probe \(1\)/);
    assert.match(stdout, /install ok installed$/);
    assert.doesNotMatch(`${stdout}${stderr}`, /^E: /m);
  });

  it("runs one quoted word through the shell, as ssh does", async () => {
    const { code, stdout } = await pyro(["run", "debian:12", "--", "echo $((6 * 7)) | tr 4 x"]);
    assert.equal(code, 0);
    assert.equal(stdout, "x2\n");
  });

  it("prints one JSON object with the contract fields under --json", async () => {
    const { code, stdout, stderr } = await pyro(["run", "debian:12", "--json", "--", "sh", "-c", "echo hi; exit 2"]);
    assert.equal(code, 2);
    assert.equal(stderr, "");
    const payload = RunResult.strict().parse(JSON.parse(stdout));
    assert.equal(payload.stdout, "hi\n");
    assert.equal(payload.stderr, "");
    assert.equal(payload.exit_code, 2);
    assert.equal(payload.timed_out, false);
    assert.equal(payload.stdout_truncated, false);
    assert.equal(payload.stderr_truncated, false);
    assert.ok(payload.duration_ms > 0);
    for (const key of [
      "stdout",
      "stderr",
      "exit_code",
      "duration_ms",
      "timed_out",
      "stdout_truncated",
      "stderr_truncated",
      "execution_mode",
    ]) {
      assert.ok(key in payload, `${key} missing`);
    }
    assert.deepEqual(Object.keys(JSON.parse(stdout)), Object.keys(JSON.parse(stdout)).sort());
  });

  it("stops a command at --timeout-seconds and says so", async () => {
    const { code, stdout, ms } = await pyro([
      "run",
      "debian:12",
      "--json",
      "--timeout-seconds",
      "1",
      "--",
      "sleep",
      "30",
    ]);
    const payload = RunResult.parse(JSON.parse(stdout));
    assert.equal(payload.timed_out, true);
    assert.equal(payload.exit_code, 124);
    assert.equal(code, 124);
    assert.ok(ms < 10_000, `took ${ms} ms`);
  });

  it("exits 2 on a bad flag value before starting anything", async () => {
    const { code, stdout, stderr } = await pyro(["run", "debian:12", "--mem-mib", "64", "--", "true"]);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(stderr, /^error: --mem-mib must be ≥ 128/);
  });

  it("exits 1 with error: on an unknown environment", async () => {
    const { code, stdout, stderr } = await pyro(["run", "debian:99", "--", "true"]);
    assert.equal(code, 1);
    assert.equal(stdout, "");
    assert.match(stderr, /^error: .*debian:99/);
  });

  it("tears the sandbox down and exits 130 on Ctrl-C", async () => {
    let pid = 0;
    const outcome = pyro(["run", "debian:12", "--", "sleep", "60"], { onSpawn: (p) => (pid = p) });
    const sandboxes = join(stateDir, "sandboxes");
    const deadline = Date.now() + 30_000;
    // Interrupt once the sandbox exists, so the abort reaches a running command.
    while (Date.now() < deadline && !(existsSync(sandboxes) && readdirSync(sandboxes).length > 0)) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    process.kill(pid, "SIGINT");
    const interruptedAt = Date.now();
    const { code, stderr } = await outcome;
    assert.equal(code, 130, stderr);
    assert.ok(Date.now() - interruptedAt < 10_000, "Ctrl-C took too long");
    assert.match(stderr, /error: interrupted/);
    const doctor = await pyro(["doctor", "--json"]);
    const report = DoctorResult.parse(JSON.parse(doctor.stdout));
    assert.deepEqual(report.leftovers.items, []);
  });
});

describe("pyro env, doctor, --version (real manager)", () => {
  it("lists debian:12 as installed", async () => {
    const { code, stdout } = await pyro(["env", "list", "--json"]);
    assert.equal(code, 0);
    const list = EnvironmentList.parse(JSON.parse(stdout));
    assert.equal(list.environments.find((e) => e.name === "debian:12")?.installed, true);
  });

  it("reports the environment and state dirs in doctor", async () => {
    const { stdout } = await pyro(["doctor", "--json", "--environment", "debian:12"]);
    const report = DoctorResult.parse(JSON.parse(stdout));
    assert.equal(report.state_dir, stateDir);
    assert.ok(report.checks.some((c) => c.name.includes("debian:12") && c.ok));
  });

  it("prints its version", async () => {
    const { code, stdout } = await pyro(["--version"]);
    assert.equal(code, 0);
    assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
  });
});
