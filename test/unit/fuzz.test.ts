// Property tests (fast-check) of the parsers that read outside input: guest frames, archive entries,
// paths in the workspace, patches, workspace names and MCP arguments, stdio message lines. Each
// property states what a hostile peer may never get: a crash other than a PyroError, a path outside
// the workspace, a frame or line that comes out changed. A failure prints the smallest input found.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, normalize, relative } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { confine } from "../../src/agent/confine.js";
import { encodeFrame, FrameReader, FrameType, MAX_FRAME_BYTES } from "../../src/channel/frame.js";
import { PyroError } from "../../src/contract/errors.js";
import { parseParams } from "../../src/contract/parse.js";
import { WORKSPACE_ID_PATTERN, WorkspaceCreateParams, WorkspaceExecParams } from "../../src/contract/workspace.js";
import { planPatch } from "../../src/manager/patch.js";
import { LineLimit, type Oversize, requestIdOf } from "../../src/mcp/stdio-limit.js";
import { entryProblem } from "../../src/util/archive.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const params = { numRuns: RUNS };

/** Runs fn and fails unless it returns or throws a PyroError (anything else would be a crash). */
async function onlyPyroErrors<T>(fn: () => T | Promise<T>): Promise<T | PyroError> {
  try {
    return await fn();
  } catch (err) {
    assert.ok(err instanceof PyroError, `threw ${String(err)} (${(err as Error)?.stack})`);
    return err;
  }
}

/** Paths built from the pieces an attacker would combine. */
const hostilePath = fc
  .array(fc.constantFrom("..", ".", "a", "b", "in", "out", "link-out", "link-in", "", "workspace", "\\", "a b", "é"), {
    maxLength: 8,
  })
  .chain((parts) => fc.boolean().map((absolute) => (absolute ? "/" : "") + parts.join("/")));

describe("fuzz: guest frames", () => {
  const frame = fc.record({
    type: fc.constantFrom(...Object.values(FrameType)),
    stream: fc.integer({ min: 0, max: 255 }),
    id: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    payload: fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
  });

  it("frames come out exactly as they went in, however the bytes are split", () => {
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 8 }), fc.array(fc.nat(), { maxLength: 10 }), (frames, cuts) => {
        const wire = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.id, f.payload, f.stream)));
        const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
        const reader = new FrameReader();
        const got = [];
        let from = 0;
        for (const at of [...points, wire.length]) {
          got.push(...reader.push(wire.subarray(from, at)));
          from = at;
        }
        assert.deepEqual(
          got.map((f) => ({ ...f, payload: Buffer.from(f.payload) })),
          frames,
        );
      }),
      params,
    );
  });

  it("any bytes from a peer give frames or a PyroError, never a crash or an oversized frame", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), async (chunks) => {
        const reader = new FrameReader();
        for (const chunk of chunks) {
          const out = await onlyPyroErrors(() => reader.push(Buffer.from(chunk)));
          if (out instanceof PyroError) return;
          for (const f of out) assert.ok(f.payload.length <= MAX_FRAME_BYTES);
        }
      }),
      params,
    );
  });
});

describe("fuzz: archive entries", () => {
  it("an entry that is let through lands inside the destination, and its link target too", () => {
    const root = "/dest";
    fc.assert(
      fc.property(
        hostilePath,
        fc.constantFrom("File", "Directory", "SymbolicLink", "Link", "CharacterDevice", "FIFO"),
        hostilePath,
        (path, type, linkpath) => {
          const problem = entryProblem({ path, type, linkpath }, new Set());
          if (problem) {
            assert.ok(problem instanceof PyroError);
            return;
          }
          const landed = normalize(join(root, path));
          assert.ok(landed === root || landed.startsWith(`${root}/`), `${path} lands at ${landed}`);
          assert.ok(["File", "Directory", "SymbolicLink", "Link"].includes(type), `${type} let through`);
          if (type === "SymbolicLink" || type === "Link") {
            assert.ok(!isAbsolute(linkpath), `absolute link target ${linkpath} let through`);
            const base = type === "SymbolicLink" ? join(landed, "..") : root;
            const target = normalize(join(base, linkpath));
            assert.ok(target === root || target.startsWith(`${root}/`), `${path} -> ${linkpath} leaves: ${target}`);
          }
        },
      ),
      params,
    );
  });
});

describe("fuzz: paths in the workspace", () => {
  let base: string;
  let root: string;
  before(async () => {
    base = await realpath(await mkdtemp(join(tmpdir(), "pyro-fuzz-")));
    root = join(base, "workspace");
    await mkdir(join(root, "in", "a"), { recursive: true });
    await mkdir(join(base, "out"), { recursive: true });
    await writeFile(join(base, "out", "secret"), "host\n");
    await symlink("../out", join(root, "link-out"));
    await symlink("in/a", join(root, "link-in"));
    await symlink("/etc", join(root, "in", "abs"));
  });
  after(() => rm(base, { recursive: true, force: true }));

  it("a path is refused, or it and every link on it resolve inside the workspace", async () => {
    await fc.assert(
      fc.asyncProperty(hostilePath, async (userPath) => {
        const out = await onlyPyroErrors(() => confine(root, userPath));
        if (out instanceof PyroError) {
          assert.ok(["PATH_OUTSIDE_WORKSPACE", "INVALID_ARGUMENT"].includes(out.code), out.code);
          return;
        }
        assert.ok(!relative(root, out.abs).startsWith(".."), `${userPath} -> ${out.abs}`);
        // The deepest existing ancestor, links resolved, is inside too.
        let probe = out.abs;
        for (;;) {
          const real = await realpath(probe).catch(() => undefined);
          if (real !== undefined) {
            assert.ok(real === root || real.startsWith(`${root}/`), `${userPath} resolves to ${real}`);
            break;
          }
          probe = join(probe, "..");
        }
      }),
      params,
    );
  });
});

describe("fuzz: patches", () => {
  const line = fc.oneof(
    fc.constantFrom(
      "--- a/x.txt",
      "+++ b/x.txt",
      "--- /dev/null",
      "+++ b/../escape",
      "+++ /etc/passwd",
      "@@ -1 +1 @@",
      "@@ -1,2 +1,3 @@",
      "-old",
      "+new",
      " same",
      "\\ No newline at end of file",
      "diff --git a/x.txt b/x.txt",
      "rename from x.txt",
      "rename to ../y",
      "Binary files a/x and b/x differ",
      "",
    ),
    fc.string({ maxLength: 20 }),
  );
  const io = { read: async (path: string) => (path === "x.txt" ? { content: "old\nsame\n", mode: 0o644 } : null) };

  it("any patch text is planned inside the workspace or refused with a PyroError", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 14 }), async (lines) => {
        const out = await onlyPyroErrors(() => planPatch(`${lines.join("\n")}\n`, io));
        if (out instanceof PyroError) return;
        for (const file of out.files) {
          assert.ok(!isAbsolute(file.path) && !file.path.split("/").includes(".."), `planned ${file.path}`);
        }
      }),
      params,
    );
  });
});

describe("fuzz: names and MCP arguments", () => {
  it("workspace_create and workspace_exec arguments parse or are refused as INVALID_ARGUMENT", () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (create, exec) => {
        for (const [schema, input, op] of [
          [WorkspaceCreateParams, create, "workspace create"],
          [WorkspaceExecParams, exec, "workspace exec"],
        ] as const) {
          try {
            parseParams(schema, input, op);
          } catch (err) {
            assert.ok(err instanceof PyroError && err.code === "INVALID_ARGUMENT", String(err));
          }
        }
      }),
      params,
    );
  });

  it("an accepted workspace name can never be taken for an id", () => {
    const name = fc.oneof(
      fc.string({ maxLength: 70 }),
      fc.stringMatching(/^ws-[0-9a-f]{10}$/),
      fc.constantFrom("..", ".", "-", "ws-", "a/b"),
    );
    fc.assert(
      fc.property(name, (n) => {
        const parsed = WorkspaceCreateParams.safeParse({ name: n });
        if (parsed.success && parsed.data.name !== undefined) {
          assert.ok(!WORKSPACE_ID_PATTERN.test(parsed.data.name), `${n} accepted as a name`);
          assert.ok(!["..", "."].includes(parsed.data.name), `${n} accepted as a name`);
        }
      }),
      params,
    );
  });
});

describe("fuzz: stdio message lines", () => {
  it("lines within the limit come out whole and in order; each longer one is reported once", async () => {
    const max = 64;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.string({ maxLength: 150 }).map((s) => s.replaceAll("\n", "")),
          { maxLength: 10 },
        ),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 10 }),
        async (lines, sizes) => {
          const wire = Buffer.from(lines.map((l) => `${l}\n`).join(""));
          const oversize: Oversize[] = [];
          const limit = new LineLimit(max, (o) => oversize.push(o));
          const out: Buffer[] = [];
          limit.on("data", (c: Buffer) => out.push(c));
          const ended = new Promise((r) => limit.once("end", r));
          for (let at = 0, i = 0; at < wire.length; i++) {
            const size = sizes[i % sizes.length]!;
            limit.write(wire.subarray(at, at + size));
            at += size;
          }
          limit.end();
          await ended;
          const fits = (l: string) => Buffer.byteLength(l) + 1 <= max;
          const expected = lines.filter(fits).map((l) => `${l}\n`);
          assert.equal(Buffer.concat(out).toString(), expected.join(""));
          assert.equal(oversize.length, lines.filter((l) => !fits(l)).length);
        },
      ),
      params,
    );
  });

  it("the request id of a message is found at either end, whatever its params hold", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer(), fc.string({ maxLength: 12 })),
        fc.jsonValue(),
        fc.boolean(),
        (id, args, idFirst) => {
          const body = { method: "tools/call", params: { arguments: args } };
          const message = JSON.stringify(idFirst ? { jsonrpc: "2.0", id, ...body } : { ...body, jsonrpc: "2.0", id });
          const found = requestIdOf(message.slice(0, 4096), message.slice(-256));
          // An id is only trusted where it cannot be one inside params; a long string id may not fit.
          if (found !== undefined) assert.deepEqual(found, id);
          if (typeof id === "number") assert.deepEqual(found, id);
        },
      ),
      params,
    );
  });
});
