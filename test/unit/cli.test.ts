// The CLI face against a fake manager: argument parsing (including the ssh-style command rule),
// text and --json output, and exit codes 0, 1, 2, 130 and the guest's own.
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { commandFromWords } from "../../src/cli/command-words.js";
import { runCli } from "../../src/cli/run-cli.js";
import { PyroError } from "../../src/contract/errors.js";
import type { DoctorResult, EnvironmentInspect, RunRequest, RunResult } from "../../src/contract/schemas.js";
import type { ManagerApi } from "../../src/sdk/manager.js";
import { PYRO_VERSION } from "../../src/version.js";

const ENV: EnvironmentInspect = {
  name: "debian:12",
  description: "Debian 12 with Git",
  installed: true,
  version: "1",
  packages: ["git"],
  path: "/cache/environments/debian-12-v1",
  manifest: null,
  agent_current: true,
};

const DOCTOR: DoctorResult = {
  ok: true,
  platform: "linux-x64",
  pyro_version: PYRO_VERSION,
  engine: { selected: "gvisor", reason: "auto", engines: [{ name: "gvisor", available: true, detail: "runsc" }] },
  state_dir: "/state",
  cache_dir: "/cache",
  checks: [{ name: "runsc", ok: true, detail: "/usr/bin/runsc" }],
  environments: [{ name: "debian:12", installed: true }],
  leftovers: { found: 0, repaired: 0, items: [] },
};

function runResult(over: Partial<RunResult> = {}): RunResult {
  return {
    environment: "debian:12",
    stdout: "out\n",
    stderr: "err\n",
    exit_code: 0,
    duration_ms: 812,
    timed_out: false,
    stdout_truncated: false,
    stderr_truncated: false,
    execution_mode: "gvisor",
    ...over,
  };
}

interface Fake extends ManagerApi {
  calls: { method: string; args: unknown[] }[];
}

function fakeManager(over: Partial<ManagerApi> = {}): Fake {
  const calls: Fake["calls"] = [];
  const record =
    <A extends unknown[], R>(method: string, impl: (...args: A) => Promise<R>) =>
    (...args: A) => {
      calls.push({ method, args });
      return impl(...args);
    };
  return {
    calls,
    run: record("run", over.run ?? (async () => runResult())),
    listEnvironments: record(
      "listEnvironments",
      over.listEnvironments ??
        (async () => ({
          catalog_version: "1",
          count: 1,
          environments: [{ ...ENV }].map(({ path, manifest, agent_current, ...e }) => e),
        })),
    ),
    pullEnvironment: record(
      "pullEnvironment",
      over.pullEnvironment ?? (async () => ({ ...ENV, pulled: true, duration_ms: 2500 })),
    ),
    inspectEnvironment: record("inspectEnvironment", over.inspectEnvironment ?? (async () => ENV)),
    pruneEnvironments: record(
      "pruneEnvironments",
      over.pruneEnvironments ?? (async () => ({ removed: [], freed_bytes: 0 })),
    ),
    doctor: record("doctor", over.doctor ?? (async () => DOCTOR)),
    close: record("close", over.close ?? (async () => {})),
    // The workspace commands have their own suite (workspace-faces.test.ts).
    workspaces: over.workspaces ?? ({} as ManagerApi["workspaces"]),
    prepare: record("prepare", over.prepare ?? (async () => Promise.reject(new Error("not expected")))),
    shells: over.shells ?? ({} as ManagerApi["shells"]),
    services: over.services ?? ({} as ManagerApi["services"]),
  };
}

class Capture extends Writable {
  text = "";
  constructor(readonly isTTY = false) {
    super();
  }
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function cli(argv: string[], opts: { manager?: Fake; signal?: AbortSignal; interactive?: boolean } = {}) {
  const manager = opts.manager ?? fakeManager();
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(argv, {
    manager,
    stdout,
    stderr,
    env: {},
    signal: opts.signal,
    interactive: opts.interactive ?? false,
  });
  return { code, stdout: stdout.text, stderr: stderr.text, manager };
}

function runRequest(manager: Fake): RunRequest {
  const call = manager.calls.find((c) => c.method === "run");
  assert.ok(call, "manager.run was not called");
  return call.args[0] as RunRequest;
}

/** Object keys in the order JSON.parse met them, at every depth. */
function keysInOrder(value: unknown, out: string[][] = []): string[][] {
  if (Array.isArray(value)) for (const item of value) keysInOrder(item, out);
  else if (value !== null && typeof value === "object") {
    out.push(Object.keys(value));
    for (const child of Object.values(value)) keysInOrder(child, out);
  }
  return out;
}

function assertOneSortedJsonObject(stdout: string): Record<string, unknown> {
  const parsed = JSON.parse(stdout) as Record<string, unknown>;
  assert.equal(typeof parsed, "object");
  for (const keys of keysInOrder(parsed)) assert.deepEqual(keys, [...keys].sort());
  return parsed;
}

describe("command words after --", () => {
  it("treats several words as argv", () => {
    assert.deepEqual(commandFromWords(["git", "--version"]), ["git", "--version"]);
    assert.deepEqual(commandFromWords(["sh", "-c", "echo a; echo b"]), ["sh", "-c", "echo a; echo b"]);
  });
  it("runs one word with spaces or shell syntax through the shell", () => {
    assert.equal(commandFromWords(["make && make test"]), "make && make test");
    assert.equal(commandFromWords(["ls | wc -l"]), "ls | wc -l");
    assert.equal(commandFromWords(["echo $HOME"]), "echo $HOME");
    assert.equal(commandFromWords(["ls>out"]), "ls>out");
    assert.equal(commandFromWords(["*.txt"]), "*.txt");
  });
  it("runs one plain word as argv of one", () => {
    assert.deepEqual(commandFromWords(["uname"]), ["uname"]);
    assert.deepEqual(commandFromWords(["/usr/bin/env"]), ["/usr/bin/env"]);
  });
  it("has no command without words", () => {
    assert.equal(commandFromWords([]), undefined);
  });
});

describe("pyro run", () => {
  it("passes argv and the contract defaults to the manager", async () => {
    const { code, manager } = await cli(["run", "debian:12", "--", "git", "--version"]);
    assert.equal(code, 0);
    assert.deepEqual(runRequest(manager), {
      environment: "debian:12",
      command: ["git", "--version"],
      vcpu_count: 1,
      mem_mib: 1024,
      timeout_seconds: 30,
      network: false,
      engine: "auto",
    });
  });

  it("prints the command's output as it arrives, each byte once, and the rest at the end", async () => {
    const streamed: string[] = [];
    const manager = fakeManager({
      run: async (_params, opts) => {
        streamed.push(opts?.onOutput ? "listened" : "not listened");
        opts?.onOutput?.("stdout", "building...\n");
        opts?.onOutput?.("stderr", "warn");
        // The result holds all of it, plus what a runtime that streams nothing would only return.
        return runResult({ stdout: "building...\ndone\n", stderr: "warn" });
      },
    });
    const { stdout, stderr } = await cli(["run", "debian:12", "--", "make"], { manager });
    assert.deepEqual(streamed, ["listened"], "text mode asks for the output as it comes");
    assert.equal(stdout, "building...\ndone\n");
    assert.match(stderr, /^warn\n\[run\] /, "stderr once, ended by a newline before the status line");
  });

  it("passes a quoted shell line as a string command", async () => {
    const { manager } = await cli(["run", "debian:12", "--", "make && make test"]);
    assert.equal(runRequest(manager).command, "make && make test");
  });

  it("passes every flag through", async () => {
    const argv = ["run", "debian:12", "--vcpu-count", "2", "--mem-mib=512", "--timeout-seconds", "5", "--network"];
    const { manager } = await cli([...argv, "--engine", "gvisor", "--", "true"]);
    const request = runRequest(manager);
    assert.equal(request.vcpu_count, 2);
    assert.equal(request.mem_mib, 512);
    assert.equal(request.timeout_seconds, 5);
    assert.equal(request.network, true);
    assert.equal(request.engine, "gvisor");
  });

  it("does not read flags among the guest command's words", async () => {
    const { code, manager } = await cli(["run", "debian:12", "--", "ls", "--json", "-h"]);
    assert.equal(code, 0);
    assert.deepEqual(runRequest(manager).command, ["ls", "--json", "-h"]);
  });

  it("prints guest stdout and stderr apart, then a status line on stderr", async () => {
    const manager = fakeManager({ run: async () => runResult({ stdout: "out\n", stderr: "err", exit_code: 3 }) });
    const { code, stdout, stderr } = await cli(["run", "debian:12", "--", "sh", "-c", "exit 3"], { manager });
    assert.equal(code, 3);
    assert.equal(stdout, "out\n");
    assert.equal(stderr, "err\n[run] environment=debian:12 engine=gvisor exit_code=3 duration_ms=812\n");
  });

  it("reports a timeout in the status line and exits 124", async () => {
    const manager = fakeManager({ run: async () => runResult({ exit_code: 124, timed_out: true, stderr: "" }) });
    const { code, stderr } = await cli(["run", "debian:12", "--timeout-seconds", "1", "--", "sleep", "30"], {
      manager,
    });
    assert.equal(code, 124);
    assert.match(stderr, /^\[run\] .*exit_code=124 .*timed_out=true\n$/);
  });

  it("prints exactly one sorted JSON object with --json and keeps the guest's exit code", async () => {
    const manager = fakeManager({ run: async () => runResult({ exit_code: 7 }) });
    const { code, stdout, stderr } = await cli(["run", "debian:12", "--json", "--", "false"], { manager });
    assert.equal(code, 7);
    assert.equal(stderr, "");
    const payload = assertOneSortedJsonObject(stdout);
    assert.deepEqual(payload, runResult({ exit_code: 7 }));
  });

  it("rejects out-of-range values naming the flag, with exit 2 and the usage line", async () => {
    const { code, stdout, stderr, manager } = await cli(["run", "debian:12", "--mem-mib", "64", "--", "true"]);
    assert.equal(code, 2);
    assert.equal(stdout, "");
    assert.match(stderr, /^error\[INVALID_ARGUMENT\]: --mem-mib must be ≥ 128 \(got 64\)\n/);
    assert.match(stderr, /\$ pyro run .*<ENV>/);
    assert.equal(manager.calls.length, 0);
  });

  for (const [label, argv, pattern] of [
    ["a non-number", ["--vcpu-count", "many"], /--vcpu-count/],
    ["a fraction", ["--vcpu-count", "1.5"], /--vcpu-count must be a whole number/],
    ["too long a timeout", ["--timeout-seconds", "999999"], /--timeout-seconds must be ≤ 86400/],
    ["an unknown engine", ["--engine", "docker"], /--engine must be one of auto, gvisor, qemu, firecracker/],
    ["an unknown flag", ["--memory", "1"], /Unsupported option name \("--memory"\)/],
  ] as const) {
    it(`exits 2 on ${label}`, async () => {
      const { code, stderr, manager } = await cli(["run", "debian:12", ...argv, "--", "true"]);
      assert.equal(code, 2);
      assert.match(stderr, /^error\[INVALID_ARGUMENT\]: /);
      assert.match(stderr, pattern);
      assert.equal(manager.calls.length, 0);
    });
  }

  it("exits 2 without a command or without an environment", async () => {
    const noCommand = await cli(["run", "debian:12"]);
    assert.equal(noCommand.code, 2);
    assert.match(noCommand.stderr, /needs a command after --/);
    const nothing = await cli(["run"]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /^error\[INVALID_ARGUMENT\]: /);
  });

  it("reports a usage error as a JSON error object in --json mode", async () => {
    const { code, stdout, stderr } = await cli(["run", "debian:12", "--json", "--mem-mib", "64", "--", "true"]);
    assert.equal(code, 2);
    assert.equal(stderr, "");
    assert.deepEqual(assertOneSortedJsonObject(stdout), {
      error: { code: "INVALID_ARGUMENT", message: "--mem-mib must be ≥ 128 (got 64)" },
    });
    const unknownFlag = await cli(["run", "debian:12", "--json", "--bogus", "--", "true"]);
    assert.equal(unknownFlag.code, 2);
    assert.equal((JSON.parse(unknownFlag.stdout) as { error: { code: string } }).error.code, "INVALID_ARGUMENT");
  });

  it("exits 1 with error: <message> when the operation fails", async () => {
    const manager = fakeManager({
      run: async () => {
        throw new PyroError("ENVIRONMENT_UNKNOWN", 'unknown environment "nope"; see pyro env list');
      },
    });
    const text = await cli(["run", "nope", "--", "true"], { manager });
    assert.equal(text.code, 1);
    assert.equal(text.stdout, "");
    assert.equal(text.stderr, 'error[ENVIRONMENT_UNKNOWN]: unknown environment "nope"; see pyro env list\n');
    const json = await cli(["run", "nope", "--json", "--", "true"], { manager });
    assert.equal(json.code, 1);
    assert.deepEqual(JSON.parse(json.stdout), {
      error: { code: "ENVIRONMENT_UNKNOWN", message: 'unknown environment "nope"; see pyro env list' },
    });
  });

  it("reports an unexpected error as a bug, without a stack trace", async () => {
    const manager = fakeManager({
      run: async () => {
        throw new TypeError("cannot read properties of undefined");
      },
    });
    const { code, stderr } = await cli(["run", "debian:12", "--", "true"], { manager });
    assert.equal(code, 1);
    assert.match(stderr, /^error\[INTERNAL\]: cannot read properties of undefined \(this is a bug in pyro/);
    assert.doesNotMatch(stderr, /\n\s+at /);
  });

  it("aborts the run on interrupt and exits 130", { timeout: 10_000 }, async () => {
    const controller = new AbortController();
    let sawSignal: AbortSignal | undefined;
    const manager = fakeManager({
      run: (_params, opts) =>
        new Promise((_, reject) => {
          sawSignal = opts?.signal;
          opts?.signal?.addEventListener("abort", () => reject(new PyroError("CHANNEL_CLOSED", "aborted")));
          setImmediate(() => controller.abort("SIGINT"));
        }),
    });
    const { code, stdout, stderr } = await cli(["run", "debian:12", "--", "sleep", "30"], {
      manager,
      signal: controller.signal,
    });
    assert.equal(code, 130);
    assert.equal(sawSignal?.aborted, true);
    assert.equal(stdout, "");
    assert.equal(stderr, "error[CANCELLED]: interrupted\n");
  });

  it("exits 130 when the interrupt arrives as a killed command rather than a rejection", async () => {
    const controller = new AbortController();
    const manager = fakeManager({
      run: async () => {
        controller.abort("SIGINT");
        return runResult({ stdout: "partial\n", stderr: "", exit_code: 137 });
      },
    });
    const text = await cli(["run", "debian:12", "--", "sleep", "30"], { manager, signal: controller.signal });
    assert.equal(text.code, 130);
    assert.equal(text.stdout, "partial\n");
    assert.equal(text.stderr, "error[CANCELLED]: interrupted\n");
  });

  it("draws progress only on an interactive stderr, and never in --json mode", async () => {
    const manager = fakeManager({
      run: async (_params, opts) => {
        opts?.progress?.phase("boot", "gvisor sandbox");
        opts?.progress?.phase("exec", "true");
        return runResult({ stderr: "" });
      },
    });
    const quiet = await cli(["run", "debian:12", "--", "true"], { manager });
    assert.equal(quiet.stderr, "[run] environment=debian:12 engine=gvisor exit_code=0 duration_ms=812\n");
    const json = await cli(["run", "debian:12", "--json", "--", "true"], { manager, interactive: true });
    assert.equal(json.stderr, "");
    const tty = await cli(["run", "debian:12", "--", "true"], { manager, interactive: true });
    assert.match(tty.stderr, /boot: gvisor sandbox/);
    assert.match(tty.stderr, /\[run\] environment=debian:12/);
  });
});

describe("pyro env", () => {
  it("lists environments as text and as JSON", async () => {
    const text = await cli(["env", "list"]);
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^debian:12 {2}installed {2}Debian 12 with Git\n$/);
    assert.equal(text.stderr, "[env list] catalog_version=1 count=1 installed=1\n");
    const json = await cli(["env", "list", "--json"]);
    const payload = assertOneSortedJsonObject(json.stdout);
    assert.equal(payload.count, 1);
  });

  it("pulls with --force and reports the result", async () => {
    const { code, stdout, stderr, manager } = await cli(["env", "pull", "debian:12", "--force"]);
    assert.equal(code, 0);
    const call = manager.calls.find((c) => c.method === "pullEnvironment");
    assert.deepEqual(call?.args, ["debian:12", { force: true, progress: undefined }]);
    assert.match(stdout, /^debian:12 installed in 2\.5 s\n/);
    assert.equal(stderr, "[env pull] environment=debian:12 pulled=true duration_ms=2500\n");
  });

  it("inspects one environment", async () => {
    const { code, stdout, manager } = await cli(["env", "inspect", "debian:12"]);
    assert.equal(code, 0);
    assert.equal(manager.calls[0]?.args[0], "debian:12");
    assert.match(stdout, /path: +\/cache\/environments\/debian-12-v1/);
  });

  it("prunes", async () => {
    const manager = fakeManager({ pruneEnvironments: async () => ({ removed: ["debian-12-v0"], freed_bytes: 1024 }) });
    const { code, stdout, stderr } = await cli(["env", "prune"], { manager });
    assert.equal(code, 0);
    assert.equal(stdout, "removed debian-12-v0\n");
    assert.equal(stderr, "[env prune] removed=1 freed_bytes=1024\n");
  });

  it("needs an environment name to pull", async () => {
    const { code } = await cli(["env", "pull"]);
    assert.equal(code, 2);
  });
});

describe("pyro doctor", () => {
  it("passes --environment and --repair and exits 0 when healthy", async () => {
    const { code, stdout, manager } = await cli(["doctor", "--environment", "debian:12", "--repair"]);
    assert.equal(code, 0);
    assert.deepEqual(manager.calls[0]?.args[0], { environment: "debian:12", repair: true });
    assert.match(stdout, /PASS {2}runsc/);
  });

  it("exits 1 and shows the fix when a check fails", async () => {
    const failing: DoctorResult = {
      ...DOCTOR,
      ok: false,
      checks: [{ name: "runsc", ok: false, detail: "missing", fix: "apt-get install runsc" }],
    };
    const manager = fakeManager({ doctor: async () => failing });
    const text = await cli(["doctor"], { manager });
    assert.equal(text.code, 1);
    assert.match(text.stdout, /FAIL {2}runsc: missing\n +fix: apt-get install runsc/);
    assert.match(text.stderr, /error: 1 check\(s\) failed/);
    const json = await cli(["doctor", "--json"], { manager });
    assert.equal(json.code, 1);
    assert.equal(assertOneSortedJsonObject(json.stdout).ok, false);
  });
});

describe("pyro --version and help", () => {
  it("prints the version", async () => {
    const text = await cli(["--version"]);
    assert.equal(text.code, 0);
    assert.equal(text.stdout, `${PYRO_VERSION}\n`);
    const json = await cli(["--version", "--json"]);
    assert.deepEqual(JSON.parse(json.stdout), { version: PYRO_VERSION });
  });

  it("lists every command for help, -h, --help and no arguments", async () => {
    for (const argv of [["help"], ["-h"], ["--help"], []]) {
      const { code, stdout } = await cli(argv);
      assert.equal(code, 0, `pyro ${argv.join(" ")}`);
      for (const command of ["pyro run", "pyro env list", "pyro env pull", "pyro doctor", "pyro mcp serve"]) {
        assert.ok(stdout.includes(command), `${command} missing from pyro ${argv.join(" ")}`);
      }
    }
  });

  it("shows one command's details", async () => {
    for (const argv of [
      ["help", "run"],
      ["run", "--help"],
    ]) {
      const { code, stdout } = await cli(argv);
      assert.equal(code, 0);
      assert.match(stdout, /^ {2}--mem-mib MEM_MIB {4,}Memory in MiB/m);
      assert.doesNotMatch(stdout, /#\d/, "no clipanion placeholder");
      const columns = stdout.split("\n").flatMap((l) => (/^ {2}--/.test(l) ? [l.search(/ {4}\S/)] : []));
      assert.equal(new Set(columns).size, 1, "the option descriptions start in one column");
      assert.match(stdout, /Examples/);
      assert.match(stdout, /pyro run debian:12 -- git --version/);
    }
  });

  it("exits 2 on an unknown command without touching the manager", async () => {
    const { code, stderr, manager } = await cli(["frobnicate"]);
    assert.equal(code, 2);
    assert.match(stderr, /^error\[INVALID_ARGUMENT\]: unknown command "pyro frobnicate"; run pyro help to/);
    assert.equal(manager.calls.length, 0);
  });

  it("points a bare noun at its commands", async () => {
    const { code, stderr } = await cli(["env"]);
    assert.equal(code, 2);
    assert.match(
      stderr,
      /^error\[INVALID_ARGUMENT\]: unknown command "pyro env"; run pyro help env to see the commands/,
    );
    const help = await cli(["help", "env"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /pyro env list[\s\S]*pyro env pull <ENV>/);
  });

  it("prints a group's commands for --help and -h, and exits 0", async () => {
    for (const argv of [
      ["host", "--help"],
      ["workspace", "-h"],
      ["workspace", "file", "--help"],
      ["env", "--help"],
    ]) {
      const { code, stdout, manager } = await cli(argv);
      const group = argv.filter((a) => !a.startsWith("-")).join(" ");
      assert.equal(code, 0, `pyro ${argv.join(" ")}`);
      assert.ok(stdout.startsWith(`Usage: pyro ${group} <command>`), stdout);
      assert.match(stdout, new RegExp(`pyro ${group} \\w+`));
      assert.equal(manager.calls.length, 0);
    }
    const json = await cli(["host", "--help", "--json"]);
    assert.deepEqual(
      (JSON.parse(json.stdout) as { commands: Array<{ path: string }> }).commands.map((c) => c.path).sort(),
      ["pyro host connect", "pyro host doctor", "pyro host print-config"],
    );
    assert.equal((await cli(["hots", "--help"])).code, 2, "not a group: still an unknown command");
  });

  it("exits 2 on an unknown profile for mcp serve", async () => {
    const { code, stderr } = await cli(["mcp", "serve", "--profile", "everything"]);
    assert.equal(code, 2);
    assert.match(stderr, /--profile must be one of vm-run, workspace-core, workspace-full/);
  });

  it("refuses at startup an --allow-host-path that is not a directory, and a zero --max-source-mib", async () => {
    const missing = await cli(["mcp", "serve", "--no-project-source", "--allow-host-path", "/nonexistent-pyro-dir"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /--allow-host-path \/nonexistent-pyro-dir is not a directory on this host/);
    const zero = await cli(["mcp", "serve", "--no-project-source", "--max-source-mib", "0"]);
    assert.equal(zero.code, 2);
    assert.match(zero.stderr, /--max-source-mib/);
  });
});
