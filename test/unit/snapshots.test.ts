// Unit tests for the host snapshot store: snapshots of real directories, restores that reproduce
// them exactly, hard-link sharing between snapshots and the baseline (and never with live data),
// deletes, names, crash leftovers, and a timing comparison with `cp -a`. No sandboxes.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmod,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { PyroError } from "../../src/contract/errors.js";
import { SnapshotStore, sameMtime } from "../../src/manager/snapshots.js";

const BIG = 5 * 1024 * 1024;
const tempDirs: string[] = [];
after(async () => {
  for (const d of tempDirs) {
    // Read-only directories inside would stop rm when not root.
    spawnSync("chmod", ["-R", "u+rwx", d]);
    await rm(d, { recursive: true, force: true });
  }
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pyro-test-"));
  tempDirs.push(dir);
  return dir;
}

interface Entry {
  type: "file" | "dir" | "symlink" | "other";
  mode: number;
  mtimeUs: bigint;
  sha256?: string;
  target?: string;
  ino: bigint;
}

/** Everything about a tree a restore must reproduce, keyed by relative path (root is ""). */
async function manifest(root: string): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  const visit = async (rel: string): Promise<void> => {
    const full = rel ? join(root, rel) : root;
    const st = await lstat(full, { bigint: true });
    const base = { mode: Number(st.mode & 0o7777n), mtimeUs: st.mtimeNs / 1000n, ino: st.ino };
    if (st.isDirectory()) {
      out.set(rel, { type: "dir", ...base });
      for (const name of await readdir(full)) await visit(rel ? `${rel}/${name}` : name);
    } else if (st.isFile()) {
      out.set(rel, {
        type: "file",
        ...base,
        sha256: createHash("sha256")
          .update(await readFile(full))
          .digest("hex"),
      });
    } else if (st.isSymbolicLink()) {
      out.set(rel, { type: "symlink", ...base, target: await readlink(full) });
    } else out.set(rel, { type: "other", ...base });
  };
  await visit("");
  return out;
}

/** Manifests equal in everything but inode numbers (and symlink times, which cp may not keep). */
function assertSameTree(actual: Map<string, Entry>, expected: Map<string, Entry>): void {
  const strip = (m: Map<string, Entry>) =>
    Object.fromEntries(
      [...m].map(([path, { ino: _ino, ...e }]) => [path, e.type === "symlink" ? { ...e, mtimeUs: 0n, mode: 0 } : e]),
    );
  assert.deepEqual(strip(actual), strip(expected));
}

async function expectError(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof PyroError, `expected a PyroError, got ${err}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

let root: string;
let layer: string;
let bigSha: string;

/** The layer: a 5 MB random file, small files, an executable, symlinks, an empty dir, a read-only
 * dir, a fifo, and a file with a nanosecond mtime. */
before(async () => {
  root = await tempDir();
  layer = join(root, "layer");
  await mkdir(join(layer, "src", "deep"), { recursive: true });
  await mkdir(join(layer, "empty"));
  await mkdir(join(layer, "ro"));
  const big = randomBytes(BIG);
  bigSha = createHash("sha256").update(big).digest("hex");
  await writeFile(join(layer, "big.bin"), big);
  await writeFile(join(layer, "a.txt"), "alpha\n");
  await writeFile(join(layer, "src", "b.txt"), "bravo\n");
  await writeFile(join(layer, "src", "deep", "c.txt"), "charlie\n");
  await writeFile(join(layer, "private.txt"), "secret-ish\n", { mode: 0o600 });
  await writeFile(join(layer, "run.sh"), "#!/bin/sh\necho hi\n");
  await chmod(join(layer, "run.sh"), 0o755);
  await writeFile(join(layer, "ro", "fixed.txt"), "fixed\n");
  await symlink("../a.txt", join(layer, "src", "rel-link"));
  await symlink("/nonexistent/absolute/target", join(layer, "abs-link"));
  await symlink("deep", join(layer, "src", "dir-link"));
  execFileSync("mkfifo", [join(layer, "pipe")]);
  // A time with nanoseconds, set by touch (Node's utimes only reaches microseconds).
  execFileSync("touch", ["-m", "-d", "@1700000000.123456789", join(layer, "src", "b.txt")]);
  await chmod(join(layer, "ro"), 0o555);
});

function withoutFifo(m: Map<string, Entry>): Map<string, Entry> {
  const copy = new Map(m);
  copy.delete("pipe");
  return copy;
}

test("snapshot, restore into a new dir, and the trees are identical; sharing and independence", async () => {
  const dir = join(await tempDir(), "snapshots");
  const store = new SnapshotStore(dir);
  const source = await manifest(layer);

  const s1 = await store.create("first", layer, {});
  assert.equal(s1.snapshot_name, "first");
  assert.deepEqual(s1.skipped, ["pipe"]);
  assert.equal(s1.file_count, 7);
  assert.equal(s1.size_bytes, BIG + 6 + 6 + 8 + 11 + 18 + 6);
  assert.equal(s1.shared_bytes, 0);
  assert.equal(s1.shared_files, 0);
  assert.deepEqual(JSON.parse(await readFile(join(dir, "first", "snapshot.json"), "utf8")), {
    snapshot_name: s1.snapshot_name,
    created_at: s1.created_at,
    size_bytes: s1.size_bytes,
    file_count: s1.file_count,
    shared_bytes: s1.shared_bytes,
    shared_files: s1.shared_files,
  });
  const { skipped: _skipped, ...stored } = s1;
  assert.deepEqual(await store.get("first"), stored);

  // The snapshot tree is the layer minus the fifo, times to the microsecond, links unresolved.
  const tree1 = await manifest(store.treePath("first"));
  assertSameTree(tree1, withoutFifo(source));
  assert.equal(tree1.get("src/rel-link")?.target, "../a.txt");
  assert.equal(tree1.get("abs-link")?.target, "/nonexistent/absolute/target");
  assert.equal(tree1.get("src/b.txt")?.mtimeUs, 1700000000123456n);
  assert.equal(tree1.get("empty")?.type, "dir");
  assert.equal(tree1.get("run.sh")?.mode, 0o755);
  assert.equal(tree1.get("ro")?.mode, 0o555);
  assert.equal(tree1.get("big.bin")?.sha256, bigSha);

  // Restore into a directory that does not exist yet.
  const restored = join(await tempDir(), "restored");
  await store.restore("first", restored);
  const back = await manifest(restored);
  assertSameTree(back, withoutFifo(source));
  for (const [path, e] of back) {
    if (e.type === "file") assert.notEqual(e.ino, tree1.get(path)?.ino, `${path} must be a copy, not a link`);
  }

  // Second snapshot after changing one small file: the big file (and the other unchanged ones) are
  // hard links to the first snapshot's, the changed one is a new copy.
  await writeFile(join(layer, "a.txt"), "alpha, changed\n");
  const s2 = await store.create("second", layer, {});
  assert.ok(s2.shared_bytes >= BIG, `shared_bytes ${s2.shared_bytes}`);
  assert.equal(s2.shared_files, 6);
  assert.equal(s2.shared_bytes, s2.size_bytes - 15);
  const tree2 = await manifest(store.treePath("second"));
  assert.equal(tree2.get("big.bin")?.ino, tree1.get("big.bin")?.ino);
  assert.equal(tree2.get("src/b.txt")?.ino, tree1.get("src/b.txt")?.ino);
  assert.notEqual(tree2.get("a.txt")?.ino, tree1.get("a.txt")?.ino);
  assert.equal(await readFile(join(store.treePath("second"), "a.txt"), "utf8"), "alpha, changed\n");
  assert.equal(await readFile(join(store.treePath("first"), "a.txt"), "utf8"), "alpha\n");
  // Nothing in a snapshot is linked to the live layer.
  for (const [path, e] of tree2) {
    if (e.type === "file") assert.notEqual(e.ino, (await lstat(join(layer, path), { bigint: true })).ino, path);
  }

  // Writing the restored tree in place (as the guest does) never reaches the snapshots.
  await writeFile(join(restored, "big.bin"), "overwritten");
  await writeFile(join(restored, "src", "b.txt"), "overwritten");
  await chmod(join(restored, "run.sh"), 0o600);
  await rm(join(restored, "empty"), { recursive: true });
  assertSameTree(await manifest(store.treePath("first")), tree1);
  assert.equal((await manifest(store.treePath("second"))).get("big.bin")?.sha256, bigSha);

  // Restoring over an existing, modified directory replaces its contents but keeps its inode.
  const restoredIno = (await stat(restored)).ino;
  await writeFile(join(restored, "stray.txt"), "not in the snapshot");
  await store.restore("second", restored);
  assert.equal((await stat(restored)).ino, restoredIno);
  assertSameTree(await manifest(restored), tree2);

  // list is ordered by creation; deleting one snapshot leaves the other whole.
  const listed = await store.list();
  assert.equal(listed.count, 2);
  assert.deepEqual(
    listed.snapshots.map((s) => s.snapshot_name),
    ["first", "second"],
  );
  await store.delete("first");
  await expectError(store.get("first"), "INVALID_ARGUMENT", /no snapshot named first; known snapshots: second/);
  await expectError(store.delete("first"), "INVALID_ARGUMENT", /no snapshot named first/);
  assert.deepEqual(
    (await store.list()).snapshots.map((s) => s.snapshot_name),
    ["second"],
  );
  assertSameTree(await manifest(store.treePath("second")), tree2);
  assert.deepEqual(await readdir(dir), ["second"]);

  await writeFile(join(layer, "a.txt"), "alpha\n");
});

test("the baseline is shared when given, with nanosecond-exact times from cp -a", async () => {
  const base = join(await tempDir(), "baseline", "tree");
  await mkdir(join(base, ".."), { recursive: true });
  execFileSync("cp", ["-a", "--no-target-directory", layer, base]);
  const store = new SnapshotStore(join(await tempDir(), "snapshots"));
  const info = await store.create("from-base", layer, { shareWith: [base, join(base, "missing")] });
  assert.equal(info.shared_files, info.file_count);
  assert.equal(info.shared_bytes, info.size_bytes);
  const a = await lstat(join(base, "big.bin"), { bigint: true });
  const b = await lstat(join(store.treePath("from-base"), "big.bin"), { bigint: true });
  assert.equal(a.ino, b.ino);
});

test("nothing is linked from live data or through a candidate's symlinks", async () => {
  const work = await tempDir();
  const src = join(work, "src");
  await mkdir(join(src, "sub"), { recursive: true });
  await writeFile(join(src, "sub", "secret"), "guest-made");
  const outside = join(work, "host-secrets");
  await mkdir(outside);
  await writeFile(join(outside, "secret"), "host-data!");
  const when = new Date("2024-01-02T03:04:05Z");
  await utimes(join(src, "sub", "secret"), when, when);
  await utimes(join(outside, "secret"), when, when);
  // A candidate tree whose "sub" is a symlink out of the tree to an identical-looking host file.
  const cand = join(work, "cand");
  await mkdir(cand);
  await symlink(outside, join(cand, "sub"));
  const store = new SnapshotStore(join(work, "snapshots"));
  const info = await store.create("safe", src, { shareWith: [cand] });
  assert.equal(info.shared_files, 0);
  assert.equal(await readFile(join(store.treePath("safe"), "sub", "secret"), "utf8"), "guest-made");

  await expectError(
    store.create("live", src, { shareWith: [src] }),
    "INVALID_ARGUMENT",
    /overlaps the snapshot source .*pass only snapshot or baseline trees/,
  );
  await expectError(store.create("live", join(src, "sub"), { shareWith: [src] }), "INVALID_ARGUMENT", /overlaps/);
  await expectError(store.create("nope", join(work, "missing"), {}), "INVALID_ARGUMENT", /is not a directory/);
  await expectError(store.restore("safe", join(work, "snapshots")), "INVALID_ARGUMENT", /overlaps the snapshot store/);
  assert.equal((await store.list()).count, 1);
});

test("bad, reserved and duplicate names are refused", async () => {
  const store = new SnapshotStore(join(await tempDir(), "snapshots"));
  for (const bad of ["", "-x", ".hidden", "a/b", "..", "a b", "x".repeat(65), "é"]) {
    await expectError(store.create(bad, layer, {}), "INVALID_ARGUMENT", /is not valid; use 1 to 64 letters/);
  }
  await expectError(store.create("baseline", layer, {}), "INVALID_ARGUMENT", /reserved/);
  await store.create("x".repeat(64), layer, {});
  await store.create("v1.0_rc-1", layer, {});
  await expectError(
    store.create("v1.0_rc-1", layer, {}),
    "INVALID_ARGUMENT",
    /^snapshot v1.0_rc-1 already exists; delete it first or choose another name$/,
  );
  await expectError(store.get("../etc"), "INVALID_ARGUMENT", /is not valid/);
  assert.throws(() => store.treePath("a/../../b"), /is not valid/);
  assert.equal((await store.list()).count, 2);
});

test("a half-built snapshot from a crash is swept and never listed", async () => {
  const dir = join(await tempDir(), "snapshots");
  const store = new SnapshotStore(dir);
  const dead = spawnSync("true").pid!;
  const crashed = join(dir, `.crashy.tmp-${dead}`);
  await mkdir(join(crashed, "tree", "half"), { recursive: true });
  await writeFile(join(crashed, "tree", "half", "file"), "partial");
  const mine = join(dir, `.other.del-${process.pid}`);
  await mkdir(mine);
  assert.deepEqual(await store.list(), { count: 0, snapshots: [] });
  assert.deepEqual(await readdir(dir), []);

  await mkdir(join(crashed, "tree"), { recursive: true });
  const info = await store.create("crashy", layer, {});
  assert.equal(info.snapshot_name, "crashy");
  assert.deepEqual(await readdir(dir), ["crashy"]);
  assert.deepEqual(
    (await store.list()).snapshots.map((s) => s.snapshot_name),
    ["crashy"],
  );
});

test("sameMtime accepts exact times and our microsecond copies only", () => {
  assert.ok(sameMtime(1700000000123456789n, 1700000000123456789n));
  assert.ok(sameMtime(1700000000123456000n, 1700000000123456789n));
  assert.ok(!sameMtime(1700000000123457000n, 1700000000123456789n));
  assert.ok(!sameMtime(1700000000123456789n, 1700000000123456000n));
});

test("timing: 5,000-file tree, snapshot vs cp -a (info only)", async () => {
  const work = await tempDir();
  const src = join(work, "many");
  for (let d = 0; d < 50; d++) {
    const sub = join(src, `pkg${d}`, "lib");
    await mkdir(sub, { recursive: true });
    await Promise.all(
      Array.from({ length: 100 }, (_, f) =>
        writeFile(join(sub, `file${f}.js`), randomBytes(512 + ((d * 100 + f) % 4096))),
      ),
    );
  }
  const store = new SnapshotStore(join(work, "snapshots"));
  const t0 = performance.now();
  const first = await store.create("one", src, {});
  const t1 = performance.now();
  execFileSync("cp", ["-a", "--no-target-directory", src, join(work, "cp-copy")]);
  const t2 = performance.now();
  const second = await store.create("two", src, {});
  const t3 = performance.now();
  const restored = join(work, "restored");
  await store.restore("two", restored);
  const t4 = performance.now();
  assert.equal(first.file_count, 5000);
  assert.equal(second.shared_files, 5000);
  const ms = (n: number) => `${n.toFixed(0)} ms`;
  console.log(
    `# timing, 5,000 files / ${(first.size_bytes / 1e6).toFixed(1)} MB: snapshot (copies) ${ms(t1 - t0)}; cp -a ${ms(t2 - t1)}; ` +
      `snapshot (all shared) ${ms(t3 - t2)}; restore ${ms(t4 - t3)}`,
  );
});
