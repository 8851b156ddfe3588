// The real `pyro` binary against real sandboxes: output streams, exit codes, --json payloads,
// timeouts and Ctrl-C, as a user at a terminal or a script would see them. State goes to a temp
// PYRO_STATE_DIR; environments come from the shared cache so nothing is rebuilt.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DoctorResult, EnvironmentList, RunResult } from "../../src/contract/schemas.js";
import { PACKAGE_ROOT } from "../../src/version.js";
import { removeStateDir } from "../helpers/state-dir.js";

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
  removeStateDir(stateDir);
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
    assert.match(stderr, /^error\[INVALID_ARGUMENT\]: --mem-mib must be ≥ 128/);
  });

  it("exits 1 with error[ENVIRONMENT_UNKNOWN] on an unknown environment", async () => {
    const { code, stdout, stderr } = await pyro(["run", "debian:99", "--", "true"]);
    assert.equal(code, 1);
    assert.equal(stdout, "");
    assert.match(stderr, /^error\[ENVIRONMENT_UNKNOWN\]: .*debian:99/);
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
    assert.match(stderr, /error\[CANCELLED\]: interrupted/);
    const doctor = await pyro(["doctor", "--json"]);
    const report = DoctorResult.parse(JSON.parse(doctor.stdout));
    assert.deepEqual(report.leftovers.items, []);
  });
});

/** Starts the CLI and notes when each piece of its stdout arrived (ms since the start). */
function pyroLive(args: string[]) {
  const started = Date.now();
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, PYRO_STATE_DIR: stateDir },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const seen = { stdout: "", stderr: "", arrivals: [] as Array<{ at: number; text: string }> };
  child.stdout.on("data", (chunk: Buffer) => {
    seen.stdout += chunk.toString();
    seen.arrivals.push({ at: Date.now() - started, text: chunk.toString() });
  });
  child.stderr.on("data", (chunk: Buffer) => {
    seen.stderr += chunk.toString();
  });
  const closed = new Promise<{ code: number | null; ms: number }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, ms: Date.now() - started }));
  });
  return { child, seen, closed };
}

describe("pyro workspace exec (real sandboxes): live output, timeouts and Ctrl-C kill the whole tree", () => {
  let id = "";
  const leftovers = async (pattern: string) =>
    (await pyro(["workspace", "exec", id, "--", `ps -eo args | grep -c '${pattern}' || true`])).stdout.trim();
  const logged = async (sequence: number) => {
    const logs = JSON.parse((await pyro(["workspace", "logs", id, "--json"])).stdout) as {
      commands: Array<{ sequence: number; exit_code: number; timed_out: boolean; cancelled: boolean }>;
    };
    return logs.commands.find((c) => c.sequence === sequence);
  };

  before(async () => {
    const created = await pyro(["workspace", "create", "debian:12", "--id-only"]);
    assert.equal(created.code, 0, created.stderr);
    id = created.stdout.trim();
  });

  after(async () => {
    if (id) await pyro(["workspace", "delete", id]);
  });

  it("prints each line when the command prints it, not all at the end", async () => {
    const { seen, closed } = pyroLive([
      "workspace",
      "exec",
      id,
      "--",
      "echo first; sleep 4; echo second >&2; echo third",
    ]);
    const { code, ms } = await closed;
    assert.equal(code, 0, seen.stderr);
    assert.equal(seen.stdout, "first\nthird\n");
    assert.match(seen.stderr, /^second\n\[workspace exec\] /);
    const first = seen.arrivals.find((a) => a.text.includes("first"));
    assert.ok(first && ms - first.at >= 3000, `"first" came at ${first?.at} ms, the command ended at ${ms} ms`);
  });

  it("says in words that --timeout-seconds killed the command, and kills what it started in a session of its own", async () => {
    const { code, stderr } = await pyro([
      "workspace",
      "exec",
      id,
      "--timeout-seconds",
      "2",
      "--",
      "setsid sh -c 'sleep 106; true' & echo started; sleep 107",
    ]);
    assert.equal(code, 124);
    assert.match(
      stderr,
      /^error: the command ran past --timeout-seconds 2 and was killed, with every process it started \(exit 124\); give it longer with --timeout-seconds N/m,
    );
    const sequence = Number(/sequence=(\d+)/.exec(stderr)?.[1]);
    assert.equal(await leftovers("[s]leep 10[67]"), "0");
    const entry = await logged(sequence);
    assert.equal(entry?.timed_out, true, "logged as timed out");
    assert.equal(entry?.exit_code, 124);
  });

  it("Ctrl-C kills the command with its setsid grandchild, logs it as cancelled and exits 130", async () => {
    const { child, seen, closed } = pyroLive([
      "workspace",
      "exec",
      id,
      "--",
      "setsid sh -c 'sleep 108; true' & echo started; sleep 109",
    ]);
    const deadline = Date.now() + 60_000;
    while (!seen.stdout.includes("started") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    child.kill("SIGINT");
    const interruptedAt = Date.now();
    const { code } = await closed;
    assert.equal(code, 130, seen.stderr);
    assert.ok(Date.now() - interruptedAt < 10_000, "Ctrl-C took too long");
    assert.match(seen.stderr, /error\[CANCELLED\]: interrupted/);
    assert.equal(await leftovers("[s]leep 10[89]"), "0");
    const logs = JSON.parse((await pyro(["workspace", "logs", id, "--json"])).stdout) as {
      commands: Array<{ command: string; exit_code: number; cancelled: boolean }>;
    };
    const entry = logs.commands.find((c) => c.command.includes("sleep 109"));
    assert.equal(entry?.cancelled, true, JSON.stringify(logs.commands));
    assert.equal(entry?.exit_code, 137);
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
