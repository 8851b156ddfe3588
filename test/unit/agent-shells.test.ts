import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { OutputBuffer, shellHandlers } from "../../src/agent/shells.js";
import { serveAgentOps } from "../../src/channel/agent-ops.js";
import { Channel } from "../../src/channel/channel.js";
import { memoryDuplexPair } from "../../src/channel/memory.js";
import {
  type AgentShellInfo,
  type AgentShellOpenParams,
  type AgentShellReadParams,
  type AgentShellReadResult,
  ShellOp,
} from "../../src/channel/protocol.js";
import type { PyroError } from "../../src/contract/errors.js";

const [a, b] = memoryDuplexPair();
new Channel(b, {
  role: "server",
  hello: { name: "agent", version: "t", capabilities: [] },
  handlers: serveAgentOps(shellHandlers()),
});
const client = new Channel(a, { role: "client", hello: { name: "host", version: "t", capabilities: [] } });
const tmp = mkdtempSync(join(tmpdir(), "pyro-test-shells-"));
const inputrc = join(tmp, "inputrc");
writeFileSync(inputrc, "set enable-bracketed-paste off\n");
const opened: string[] = [];
after(async () => {
  for (const shell_id of opened) await client.request(ShellOp.CLOSE, { shell_id });
  client.close();
  rmSync(tmp, { recursive: true, force: true });
});

// A plain prompt, no rc files and no bracketed paste, so output is predictable whatever the host's bash.
async function open(p: Partial<AgentShellOpenParams> = {}): Promise<AgentShellInfo> {
  const info = (await client.request(ShellOp.OPEN, {
    cwd: tmp,
    cols: 80,
    rows: 24,
    argv: ["/bin/bash", "--norc", "--noprofile", "-i"],
    env: { PS1: "$ ", INPUTRC: inputrc },
    ...p,
  })) as AgentShellInfo;
  opened.push(info.shell_id);
  return info;
}

async function read(shell_id: string, p: Partial<AgentShellReadParams> = {}) {
  const chunks: Buffer[] = [];
  const result = (await client.request(
    ShellOp.READ,
    { shell_id, cursor: 0, max_bytes: 1 << 20, ...p },
    { onData: (_s, c) => chunks.push(c) },
  )) as AgentShellReadResult;
  const bytes = Buffer.concat(chunks);
  const historyLength = result.cursor - result.history_start;
  return {
    ...result,
    history: bytes.subarray(0, historyLength).toString(),
    output: bytes.subarray(historyLength).toString(),
  };
}

const write = (shell_id: string, input: string) => client.request(ShellOp.WRITE, { shell_id, input });

/** Reads from cursor until `pattern` shows up in the output, or fails after a while. */
async function readUntil(shell_id: string, cursor: number, pattern: RegExp, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  let output = "";
  let next = cursor;
  while (Date.now() < deadline) {
    const r = await read(shell_id, { cursor: next, wait_for_idle_ms: 100, max_wait_ms: 500 });
    output += r.output;
    next = r.next_cursor;
    if (pattern.test(output)) return { output, next_cursor: next };
  }
  assert.fail(`no ${pattern} in ${JSON.stringify(output)}`);
}

const gone = (pid: number) => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");

describe("agent shells", () => {
  it("runs commands on a terminal and reads their output by cursor", async () => {
    const shell = await open();
    assert.match(shell.shell_id, /^sh-[0-9a-f]{8}$/);
    assert.equal(shell.state, "running");
    await write(
      shell.shell_id,
      "printf '\\033[1;31mred\\033[0m\\n'; for i in 1 2 3; do echo line$i; sleep 0.2; done\n",
    );
    const first = await read(shell.shell_id, { wait_for_idle_ms: 500 });
    assert.equal(first.cursor, 0);
    assert.equal(first.truncated, false);
    assert.ok(first.output.includes("\x1b[1;31mred\x1b[0m"), first.output);
    for (const line of ["line1", "line2", "line3"]) assert.match(first.output, new RegExp(`${line}\\r\\n`));

    await write(shell.shell_id, "echo after\n");
    const { output } = await readUntil(shell.shell_id, first.next_cursor, /after\r\n\$ $/);
    assert.ok(!output.includes("line1"), output);
  });

  it("applies the terminal size it was opened with", async () => {
    const shell = await open({ cols: 123, rows: 45 });
    await write(shell.shell_id, "stty size\n");
    await readUntil(shell.shell_id, 0, /45 123\r\n/);
  });

  it("sends history before the cursor when asked", async () => {
    const shell = await open();
    await write(shell.shell_id, "echo first\n");
    const { next_cursor } = await readUntil(shell.shell_id, 0, /first\r\n\$ $/);
    const r = await read(shell.shell_id, { cursor: next_cursor, history_max_bytes: 8 });
    assert.equal(r.history_start, next_cursor - 8);
    assert.equal(r.history, "first\r\n$ ".slice(-8));
    assert.equal(r.output, "");
  });

  it("interrupts the foreground command with INT and stays usable", async () => {
    const shell = await open();
    await write(shell.shell_id, "sleep 100\n");
    const { next_cursor } = await readUntil(shell.shell_id, 0, /sleep 100\r\n/);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    const info = (await client.request(ShellOp.SIGNAL, { shell_id: shell.shell_id, signal: "INT" })) as AgentShellInfo;
    assert.equal(info.state, "running");
    await write(shell.shell_id, "echo ok\n");
    await readUntil(shell.shell_id, next_cursor, /ok\r\n\$ $/);
    assert.ok(Date.now() - t0 < 3000);
  });

  it("reports the exit code when the shell exits", async () => {
    const shell = await open();
    await write(shell.shell_id, "exit 3\n");
    const deadline = Date.now() + 5000;
    let r = await read(shell.shell_id);
    while (r.state === "running" && Date.now() < deadline) {
      r = await read(shell.shell_id, { cursor: r.next_cursor, wait_for_idle_ms: 200, max_wait_ms: 1000 });
    }
    assert.equal(r.state, "exited");
    assert.equal(r.exit_code, 3);
    await assert.rejects(write(shell.shell_id, "echo no\n"), (e: PyroError) => e.code === "INVALID_ARGUMENT");
  });

  it("close ends every process of the session and keeps the output readable", async () => {
    const shell = await open();
    const pidfile = join(tmp, "bg.pid");
    await write(shell.shell_id, `sleep 1000 & echo $! > ${pidfile}; echo started\n`);
    await readUntil(shell.shell_id, 0, /started\r\n/);
    const bg = Number(readFileSync(pidfile, "utf8"));
    assert.equal(gone(bg), false);
    const info = (await client.request(ShellOp.CLOSE, { shell_id: shell.shell_id })) as AgentShellInfo;
    assert.equal(info.state, "closed");
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(gone(bg), true, "background sleep killed");
    assert.equal(gone(shell.pid!), true, "shell killed");
    const again = (await client.request(ShellOp.CLOSE, { shell_id: shell.shell_id })) as AgentShellInfo;
    assert.equal(again.state, "closed");
    const r = await read(shell.shell_id);
    assert.match(r.output, /started/);
    const { shells } = (await client.request(ShellOp.LIST, {})) as { shells: AgentShellInfo[] };
    assert.equal(shells.find((s) => s.shell_id === shell.shell_id)?.state, "closed");
  });

  it("says the cursor fell behind when more than 1 MiB came since", async () => {
    const shell = await open();
    await write(shell.shell_id, "head -c 1500000 /dev/zero | tr '\\0' x; echo; echo done\n");
    let r = await read(shell.shell_id, { wait_for_idle_ms: 300, max_wait_ms: 10_000, max_bytes: 1 });
    const deadline = Date.now() + 10_000;
    while (r.state === "running" && r.cursor < 1_000 && Date.now() < deadline) {
      r = await read(shell.shell_id, { wait_for_idle_ms: 300, max_bytes: 1 });
    }
    assert.equal(r.truncated, true);
    assert.ok(r.cursor > 0);
    const tail = await read(shell.shell_id, { cursor: r.cursor });
    assert.equal(tail.next_cursor - tail.cursor, 1024 * 1024);
    assert.match(tail.output, /done\r\n/);
  });

  it("never ends a running shell's output inside a UTF-8 character", async () => {
    const shell = await open();
    await write(shell.shell_id, "printf 'ab\\342\\202'; sleep 0.5; printf '\\254\\n'\n");
    const { next_cursor, output } = await readUntil(shell.shell_id, 0, /\r\nab/);
    assert.ok(output.endsWith("ab"), JSON.stringify(output));
    const rest = await readUntil(shell.shell_id, next_cursor, /\n/);
    assert.ok(rest.output.startsWith("€"), JSON.stringify(rest.output));
  });

  it("rejects an unknown shell and a missing working directory", async () => {
    await assert.rejects(read("sh-00000000"), (e: PyroError) => e.code === "SHELL_NOT_FOUND");
    await assert.rejects(
      client.request(ShellOp.OPEN, { cwd: join(tmp, "nope"), cols: 80, rows: 24 }),
      (e: PyroError) => e.code === "INVALID_ARGUMENT",
    );
  });
});

describe("shell output buffer", () => {
  it("keeps the newest bytes at their absolute offsets", () => {
    const buf = new OutputBuffer(10);
    buf.append(Buffer.from("0123456"));
    buf.append(Buffer.from("789ab"));
    assert.equal(buf.total, 12);
    assert.equal(buf.start, 2);
    assert.equal(buf.slice(2, 12).toString(), "23456789ab");
    buf.append(Buffer.from("c".repeat(15)));
    assert.equal(buf.start, 17);
    assert.equal(buf.slice(20, 27).toString(), "ccccccc");
  });
});
