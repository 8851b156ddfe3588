// Owns what the agent does only inside a microVM: its channel is a virtio-serial port rather than
// stdio, and a VM restored from a saved image must take on an identity of its own (clock, random
// state, machine id, hostname) and mount its workspace before it serves anyone.
import { closeSync, openSync, read, readdirSync, readFileSync, write, writeFileSync } from "node:fs";
import { Duplex } from "node:stream";
import { promisify } from "node:util";
import type { AgentHandlers } from "../channel/agent-ops.js";
import { type AgentGuestSetupResult, BASE_ENV, GuestOp } from "../channel/protocol.js";
import { PyroError } from "../contract/errors.js";
import { spawnProcess, vmSyscalls } from "./spawner.js";

const readAsync = promisify(read);
const writeAsync = promisify(write);
/** How often a port whose host end is not connected is read again. */
const HOST_POLL_MS = 5;

/** The /dev node of the virtio-serial port QEMU named `name` (no udev here to make symlinks). */
export function findVirtioPort(name: string): string {
  const base = "/sys/class/virtio-ports";
  for (const port of readdirSync(base)) {
    if (readFileSync(`${base}/${port}/name`, "utf8").trim() === name) return `/dev/${port}`;
  }
  throw new PyroError("INTERNAL", `no virtio-serial port named ${name}`);
}

/**
 * The channel over a virtio-serial port. Until the host connects, a read returns 0 (the port's
 * host side is closed) and a write blocks in the kernel, so the agent can wait — even through a
 * save and restore of the whole VM — and its hello goes out the moment a host is there. Once data
 * has arrived, a read of 0 means the host went away: the stream ends, and with it the agent.
 */
export function virtioPortStream(path: string): Duplex {
  const fd = openSync(path, "r+");
  let connected = false;
  const buf = Buffer.alloc(256 * 1024);
  return new Duplex({
    read() {
      const next = async (): Promise<void> => {
        for (;;) {
          const { bytesRead } = await readAsync(fd, buf, 0, buf.length, null);
          if (bytesRead > 0) {
            connected = true;
            this.push(Buffer.from(buf.subarray(0, bytesRead)));
            return;
          }
          if (connected) {
            this.push(null);
            return;
          }
          await new Promise((r) => setTimeout(r, HOST_POLL_MS));
        }
      };
      next().catch((err: Error) => this.destroy(err));
    },
    write(chunk: Buffer, _encoding, callback) {
      const all = async () => {
        for (let off = 0; off < chunk.length; ) {
          off += (await writeAsync(fd, chunk, off, chunk.length - off)).bytesWritten;
        }
      };
      all().then(() => callback(), callback);
    },
    destroy(err, callback) {
      try {
        closeSync(fd);
      } catch {}
      callback(err);
    },
  });
}

async function run(file: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawnProcess(file, args, { cwd: "/", env: { ...BASE_ENV } });
  child.stdout.resume();
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const exit = await child.exit;
  return { code: exit.code, stderr: exit.error ? exit.error.message : stderr };
}

async function mountShared(tag: string, target: string, deadline: number): Promise<void> {
  // A hot-plugged device takes a moment to appear; until it does, mount says the tag is unknown.
  for (;;) {
    let problem: string;
    if (vmSyscalls) {
      try {
        vmSyscalls.mountFs(tag, target, "virtiofs");
        return;
      } catch (err) {
        problem = (err as Error).message;
      }
    } else {
      const { code, stderr } = await run("mount", ["-t", "virtiofs", tag, target]);
      if (code === 0) return;
      problem = stderr.trim();
    }
    if (Date.now() > deadline) {
      throw new PyroError("SANDBOX_START_FAILED", `could not mount the ${tag} share at ${target}: ${problem}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function setClock(epochMs: number): Promise<void> {
  if (vmSyscalls) return vmSyscalls.setClock(epochMs);
  const clock = await run("date", ["-u", "-s", `@${(epochMs / 1000).toFixed(3)}`]);
  if (clock.code !== 0) console.error(`pyro-agent: could not set the clock: ${clock.stderr.trim()}`);
}

export function guestHandlers(): AgentHandlers {
  return {
    [GuestOp.SETUP]: async (p): Promise<AgentGuestSetupResult> => {
      // Durations on the monotonic clock: the wall clock is about to jump.
      const started = performance.now();
      const entropy = Buffer.from(p.entropy, "base64");
      // A write only mixes the bytes in; the addon's ioctl credits them and rekeys the CRNG at once.
      writeFileSync("/dev/urandom", entropy);
      vmSyscalls?.reseedRandom(entropy);
      await setClock(p.time_ms + (performance.now() - started));
      writeFileSync("/proc/sys/kernel/hostname", p.hostname);
      writeFileSync("/etc/machine-id", `${p.machine_id}\n`);
      if (p.nameserver) writeFileSync("/etc/resolv.conf", `nameserver ${p.nameserver}\n`);
      const mounted: string[] = [];
      for (const m of p.mounts) {
        await mountShared(m.tag, m.target, Date.now() + p.mount_timeout_ms);
        mounted.push(m.target);
      }
      return { crng_reseeded: vmSyscalls !== undefined, mounted, duration_ms: Math.round(performance.now() - started) };
    },
  };
}
