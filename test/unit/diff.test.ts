// Unit tests for the host side of `workspace diff`: manifests of real directories, the comparison
// rules, the payload, and patches that real `git apply` and `patch -p1` accept and that reproduce
// the current tree from a copy of the baseline. No sandboxes.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, cp, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, test } from "node:test";
import { buildDiff, type Change, compareTrees, DiffResult, manifestOfDir, TreeEntry } from "../../src/manager/diff.js";

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "pyro-test-"));
  tempDirs.push(dir);
  return dir;
}

type Spec = Record<string, string | Buffer | { link: string } | { dir: true } | { text: string; mode: number }>;

async function makeTree(root: string, spec: Spec): Promise<void> {
  await mkdir(root, { recursive: true });
  for (const [path, what] of Object.entries(spec)) {
    const full = join(root, path);
    await mkdir(dirname(full), { recursive: true });
    if (typeof what === "string" || Buffer.isBuffer(what)) await writeFile(full, what);
    else if ("link" in what) await symlink(what.link, full);
    else if ("dir" in what) await mkdir(full, { recursive: true });
    else {
      await writeFile(full, what.text);
      await chmod(full, what.mode);
    }
  }
}

/** Baseline and current trees on disk, and the diff between them with I/O straight from disk. */
async function diffTrees(
  baseline: Spec,
  current: Spec,
  opts?: { maxPatchBytes?: number },
): Promise<{ base: string; cur: string; changes: Change[]; result: DiffResult }> {
  const root = await tempDir();
  const base = join(root, "base");
  const cur = join(root, "cur");
  await makeTree(base, baseline);
  await makeTree(cur, current);
  const changes = compareTrees(await manifestOfDir(base), await manifestOfDir(cur));
  const result = await buildDiff(changes, diskIo(base, cur), opts);
  assert.deepEqual(DiffResult.parse(result), result);
  return { base, cur, changes, result };
}

function diskIo(base: string, cur: string) {
  return {
    readBaseline: (path: string) => readFile(join(base, path)),
    readCurrent: (path: string) => readFile(join(cur, path)),
  };
}

/** Applies `patch` to a fresh copy of `base` with the given tool and returns the copy. */
async function applyWith(tool: "git" | "patch", base: string, patch: string): Promise<string> {
  const root = await tempDir();
  const copy = join(root, "copy");
  await cp(base, copy, { recursive: true, verbatimSymlinks: true });
  const patchFile = join(root, "change.patch");
  await writeFile(patchFile, patch);
  // Outside any repository git apply acts like patch; the ceiling keeps it from finding one above.
  const env = { ...process.env, GIT_CEILING_DIRECTORIES: root };
  if (tool === "git") {
    execFileSync("git", ["apply", "--check", patchFile], { cwd: copy, env });
    execFileSync("git", ["apply", patchFile], { cwd: copy, env });
  } else {
    execFileSync("patch", ["-p1", "--batch", "--silent", "-i", patchFile], { cwd: copy });
  }
  return copy;
}

/** The parts of a manifest a patch can carry: files and symlinks with their content and exec bit. */
function patchable(entries: TreeEntry[]): string[] {
  return entries
    .filter((e) => e.type === "file" || e.type === "symlink")
    .map(
      (e) => `${e.path} ${e.type} ${e.type === "file" ? `${e.sha256} ${e.mode & 0o100 ? "x" : "-"}` : e.link_target}`,
    );
}

test("manifestOfDir lists files, directories and symlinks (unfollowed) sorted, with digests and modes", async () => {
  const dir = await tempDir();
  await makeTree(dir, {
    "b.txt": { text: "hello\n", mode: 0o640 },
    "a/run.sh": { text: "#!/bin/sh\n", mode: 0o755 },
    "a/empty": { dir: true },
    "link-to-b": { link: "b.txt" },
    dangling: { link: "/nowhere/at/all" },
  });
  const entries = await manifestOfDir(dir);
  for (const e of entries) TreeEntry.parse(e);
  assert.deepEqual(
    entries.map((e) => e.path),
    ["a", "a/empty", "a/run.sh", "b.txt", "dangling", "link-to-b"],
  );
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.deepEqual(byPath.get("b.txt"), {
    path: "b.txt",
    type: "file",
    mode: 0o640,
    size: 6,
    sha256: createHash("sha256").update("hello\n").digest("hex"),
  });
  assert.equal(byPath.get("a/run.sh")?.mode, 0o755);
  assert.equal(byPath.get("a/empty")?.type, "directory");
  assert.deepEqual(
    { type: byPath.get("dangling")?.type, target: byPath.get("dangling")?.link_target },
    { type: "symlink", target: "/nowhere/at/all" },
  );
  assert.equal(byPath.get("link-to-b")?.sha256, undefined);
});

test("an unchanged tree diffs to changed:false and an empty patch", async () => {
  const spec: Spec = { "src/app.py": "print(1)\n", "README.md": "# x\n", "bin/tool": { link: "../src/app.py" } };
  const { changes, result } = await diffTrees(spec, spec);
  assert.deepEqual(changes, []);
  assert.deepEqual(result, {
    changed: false,
    summary: { total: 0, added: 0, modified: 0, deleted: 0, type_changed: 0, binary: 0 },
    patch: "",
    files: [],
    patch_truncated: false,
  });
});

test("add, modify and delete render as git-style sections with /dev/null and file modes", async () => {
  const { result } = await diffTrees(
    { "keep.txt": "a\nb\nc\n", "gone.txt": "bye\n" },
    { "keep.txt": "a\nB\nc\n", "new.txt": "hi\n" },
  );
  assert.deepEqual(result.files, [
    { path: "gone.txt", status: "deleted", binary: false },
    { path: "keep.txt", status: "modified", binary: false },
    { path: "new.txt", status: "added", binary: false },
  ]);
  assert.deepEqual(result.summary, { total: 3, added: 1, modified: 1, deleted: 1, type_changed: 0, binary: 0 });
  assert.equal(
    result.patch,
    [
      "diff --git a/gone.txt b/gone.txt",
      "deleted file mode 100644",
      "index b023018..0000000", // the ids are `git hash-object` of the contents
      "--- a/gone.txt",
      "+++ /dev/null",
      "@@ -1,1 +0,0 @@",
      "-bye",
      "diff --git a/keep.txt b/keep.txt",
      "index de98044..7be73ce 100644",
      "--- a/keep.txt",
      "+++ b/keep.txt",
      "@@ -1,3 +1,3 @@",
      " a",
      "-b",
      "+B",
      " c",
      "diff --git a/new.txt b/new.txt",
      "new file mode 100644",
      "index 0000000..45b983b",
      "--- /dev/null",
      "+++ b/new.txt",
      "@@ -0,0 +1,1 @@",
      "+hi",
      "",
    ].join("\n"),
  );
});

test("hunks carry 3 lines of context", async () => {
  const lines = Array.from({ length: 20 }, (_, i) => `line ${i + 1}`);
  const changed = [...lines];
  changed[9] = "LINE 10";
  const { result } = await diffTrees({ "f.txt": `${lines.join("\n")}\n` }, { "f.txt": `${changed.join("\n")}\n` });
  assert.match(result.patch, /@@ -7,7 \+7,7 @@\n line 7\n line 8\n line 9\n-line 10\n\+LINE 10\n line 11\n/);
});

test("a mode-only change is modified with old/new mode lines; a change git cannot see has no section", async () => {
  const { base, result } = await diffTrees(
    { "run.sh": { text: "echo\n", mode: 0o644 }, secret: { text: "s\n", mode: 0o644 } },
    { "run.sh": { text: "echo\n", mode: 0o755 }, secret: { text: "s\n", mode: 0o600 } },
  );
  assert.deepEqual(result.files, [
    { path: "run.sh", status: "modified", binary: false },
    { path: "secret", status: "modified", binary: false },
  ]);
  assert.equal(result.patch, "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n");
  const copy = await applyWith("git", base, result.patch);
  assert.equal((await manifestOfDir(copy)).find((e) => e.path === "run.sh")?.mode, 0o755);
});

test("type changes: file→symlink and file→directory, as git renders them", async () => {
  const { base, cur, changes, result } = await diffTrees(
    { config: "x=1\n", lib: "not a dir yet\n", "other.txt": "o\n" },
    { config: { link: "other.txt" }, "lib/mod.py": "pass\n", "other.txt": "o\n" },
  );
  assert.deepEqual(
    changes.map((c) => [c.path, c.status]),
    [
      ["config", "type_changed"],
      ["lib", "type_changed"],
      ["lib/mod.py", "added"],
    ],
  );
  assert.equal(result.summary.type_changed, 2);
  assert.match(result.patch, /diff --git a\/config b\/config\ndeleted file mode 100644\n/);
  assert.match(
    result.patch,
    /diff --git a\/config b\/config\nnew file mode 120000\nindex 0000000\.\.\w{7}\n--- \/dev\/null\n\+\+\+ b\/config\n@@ -0,0 \+1,1 @@\n\+other.txt\n\\ No newline at end of file\n/,
  );
  // The removals come first so that `lib` is gone before `lib/mod.py` is created.
  assert.ok(
    result.patch.indexOf("diff --git a/lib b/lib\ndeleted file mode 100644") < result.patch.indexOf("+++ b/lib/mod.py"),
  );
  const copy = await applyWith("git", base, result.patch);
  assert.deepEqual(patchable(await manifestOfDir(copy)), patchable(await manifestOfDir(cur)));
  assert.equal(await readlink(join(copy, "config")), "other.txt");
});

test("a file replaced by a symlink also applies with patch -p1", async () => {
  const { base, cur, result } = await diffTrees({ config: "x=1\n", o: "o\n" }, { config: { link: "o" }, o: "o\n" });
  const copy = await applyWith("patch", base, result.patch);
  assert.deepEqual(patchable(await manifestOfDir(copy)), patchable(await manifestOfDir(cur)));
});

// GNU patch defers deletions to the end of its run, so it cannot swap a file and a directory at
// one path in one go whatever the order; git apply can.
test("a directory replaced by a file applies with git apply: the files under it are deleted first", async () => {
  const { base, cur, result } = await diffTrees({ "out/a.txt": "a\n", "out/b.txt": "b\n" }, { out: "now a file\n" });
  assert.deepEqual(
    result.files.map((f) => [f.path, f.status]),
    [
      ["out", "type_changed"],
      ["out/a.txt", "deleted"],
      ["out/b.txt", "deleted"],
    ],
  );
  const copy = await applyWith("git", base, result.patch);
  assert.deepEqual(patchable(await manifestOfDir(copy)), patchable(await manifestOfDir(cur)));
});

test("directories: an empty one counts, one created or removed with files counts as its files", async () => {
  const { changes, result } = await diffTrees(
    { "old/x.txt": "x\n", "old/deeper/y.txt": "y\n", "was-empty": { dir: true } },
    { "new/empty": { dir: true }, "pkg/sub/z.txt": "z\n" },
  );
  assert.deepEqual(
    changes.map((c) => [c.path, c.status]),
    [
      ["new/empty", "added"], // `new` itself is implied by new/empty
      ["old/deeper/y.txt", "deleted"],
      ["old/x.txt", "deleted"],
      ["pkg/sub/z.txt", "added"],
      ["was-empty", "deleted"],
    ],
  );
  assert.deepEqual(result.summary, { total: 5, added: 2, modified: 0, deleted: 3, type_changed: 0, binary: 0 });
  assert.doesNotMatch(result.patch, /new\/empty|was-empty/);
});

test("a directory's mode change alone is not a change", () => {
  const dir = (mode: number): TreeEntry => ({ path: "d", type: "directory", mode, size: 0 });
  assert.deepEqual(compareTrees([dir(0o755)], [dir(0o700)]), []);
});

test("binary files are listed and counted but stay out of the patch, which still applies", async () => {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d]);
  const latin1 = Buffer.from("caf\xe9\n", "latin1"); // no NUL, but not UTF-8
  const { base, result } = await diffTrees(
    { "logo.png": png, "notes.txt": "one\n" },
    { "logo.png": Buffer.concat([png, Buffer.from([1])]), "legacy.txt": latin1, "notes.txt": "two\n" },
  );
  assert.deepEqual(result.files, [
    { path: "legacy.txt", status: "added", binary: true },
    { path: "logo.png", status: "modified", binary: true },
    { path: "notes.txt", status: "modified", binary: false },
  ]);
  assert.equal(result.summary.binary, 2);
  assert.doesNotMatch(result.patch, /logo|legacy|Binary/);
  const copy = await applyWith("git", base, result.patch);
  assert.equal(await readFile(join(copy, "notes.txt"), "utf8"), "two\n");
});

test("no newline at end of file is marked and survives git apply", async () => {
  const { base, cur, result } = await diffTrees(
    { "a.txt": "x\ny", "b.txt": "p\nq\n", "c.txt": "m\nn" },
    { "a.txt": "x\ny\n", "b.txt": "p\nq", "c.txt": "m\nN" },
  );
  assert.match(result.patch, /-y\n\\ No newline at end of file\n\+y\n/);
  assert.match(result.patch, /-q\n\+q\n\\ No newline at end of file\n/);
  assert.match(result.patch, /-n\n\\ No newline at end of file\n\+N\n\\ No newline at end of file\n/);
  for (const tool of ["git", "patch"] as const) {
    const copy = await applyWith(tool, base, result.patch);
    for (const f of ["a.txt", "b.txt", "c.txt"]) {
      assert.equal(await readFile(join(copy, f), "utf8"), await readFile(join(cur, f), "utf8"), `${tool} ${f}`);
    }
  }
});

test("a realistic mixed change: git apply and patch -p1 on a copy of the baseline reproduce the current tree", async () => {
  const app = Array.from({ length: 60 }, (_, i) => `def f${i}():\n    return ${i}\n`).join("\n");
  const appAfter = app.replace("return 5\n", "return 50\n").replace("return 42\n", "return 4200\n    # changed\n");
  const { base, cur, result } = await diffTrees(
    {
      "src/app.py": app,
      "src/util.py": "import os\n",
      "src/dos.txt": "one\r\ntwo\r\nthree\r\n",
      "docs/old guide.md": "# Old\n",
      "scripts/build.sh": { text: "#!/bin/sh\nmake\n", mode: 0o644 },
      "bin/app": { link: "../src/app.py" },
      'weird"name\\.txt': "q\n",
      "empty.txt": "",
      "README.md": "# project\n",
    },
    {
      "src/app.py": appAfter,
      "src/dos.txt": "one\r\nTWO\r\nthree\r\n",
      "src/new_mod.py": "VALUE = 1\n",
      "docs/new guide.md": "# New\n",
      "scripts/build.sh": { text: "#!/bin/sh\nmake all\n", mode: 0o755 },
      "bin/app": { link: "../src/new_mod.py" },
      'weird"name\\.txt': "q2\n",
      "empty.txt": "now text\n",
      "added-empty.txt": "",
      "README.md": "# project\n",
    },
  );
  assert.equal(result.summary.total, 11);
  assert.match(result.patch, /^diff --git "a\/weird\\"name\\\\.txt" "b\/weird\\"name\\\\.txt"$/m);
  assert.match(result.patch, /^--- a\/docs\/old guide\.md\t$/m);
  for (const tool of ["git", "patch"] as const) {
    const copy = await applyWith(tool, base, result.patch);
    assert.deepEqual(patchable(await manifestOfDir(copy)), patchable(await manifestOfDir(cur)), tool);
  }
});

test("io is never asked for symlinks, and a mode-only change reads only the baseline", async () => {
  const calls: string[] = [];
  const link = (target: string): TreeEntry => ({
    path: "l",
    type: "symlink",
    mode: 0o777,
    size: target.length,
    link_target: target,
  });
  const file = (mode: number): TreeEntry => ({ path: "f", type: "file", mode, size: 2, sha256: "same" });
  const changes = compareTrees([link("a"), file(0o644)], [link("b"), file(0o755)]);
  const result = await buildDiff(changes, {
    readBaseline: async (p) => {
      calls.push(`base:${p}`);
      return Buffer.from("x\n");
    },
    readCurrent: async (p) => {
      calls.push(`cur:${p}`);
      return Buffer.from("x\n");
    },
  });
  assert.deepEqual(calls, ["base:f"]);
  assert.match(
    result.patch,
    /diff --git a\/l b\/l\nindex \w{7}\.\.\w{7} 120000\n--- a\/l\n\+\+\+ b\/l\n@@ -1,1 \+1,1 @@\n-a\n/,
  );
});

test("the patch is cut at a file boundary once it would pass maxPatchBytes", async () => {
  const big = "x".repeat(300) + "\n";
  const { result } = await diffTrees(
    {},
    { "a.txt": big, "b.txt": big, "c.txt": big, "d.txt": big },
    { maxPatchBytes: 1000 },
  );
  assert.equal(result.patch_truncated, true);
  assert.equal(result.files.length, 4);
  assert.equal(result.summary.added, 4);
  assert.equal((result.patch.match(/^diff --git /gm) ?? []).length, 2);
  assert.ok(Buffer.byteLength(result.patch) <= 1000);
  assert.ok(result.patch.endsWith("\n"));
});

test("2,000-file trees with 10 changes: compareTrees + buildDiff stay well under 200 ms", async () => {
  const entries = (n: number): TreeEntry[] =>
    Array.from({ length: n }, (_, i) => ({
      path: `pkg${i % 40}/mod${i}.py`,
      type: "file" as const,
      mode: 0o644,
      size: 100,
      sha256: `h${i}`,
    }));
  const baseline = entries(2000);
  const current = entries(2000).map((e, i) => (i % 200 === 7 ? { ...e, sha256: `changed${i}` } : e));
  const content = (tag: string) =>
    Buffer.from(Array.from({ length: 200 }, (_, i) => `${i === 100 ? tag : "line"} ${i}`).join("\n") + "\n");
  const io = {
    readBaseline: async () => content("old"),
    readCurrent: async () => content("new"),
  };
  // Warm up module-level JIT so the measured run is the steady state.
  await buildDiff(compareTrees(baseline, current), io);
  const started = performance.now();
  const changes = compareTrees(baseline, current);
  const result = await buildDiff(changes, io);
  const elapsed = performance.now() - started;
  console.log(`# compareTrees+buildDiff, 2000 files, 10 changed: ${elapsed.toFixed(1)} ms`);
  assert.equal(result.summary.modified, 10);
  assert.ok(elapsed < 200, `took ${elapsed} ms`);
});
