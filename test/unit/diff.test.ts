// Unit tests for the host side of `workspace diff`: manifests of real directories, the comparison
// rules, the payload, and patches that real `git apply` and `patch -p1` accept and that reproduce
// the current tree from a copy of the baseline. No sandboxes.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, cp, mkdir, readFile, readlink, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { test } from "node:test";
import {
  buildDiff,
  type Change,
  compareTrees,
  type DiffFilters,
  type DiffIo,
  DiffResult,
  selectChanges,
  TreeEntry,
} from "../../src/manager/diff.js";
import { manifestOfDir } from "../../src/util/tree.js";
import { tempDir } from "../helpers/scratch.js";

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
  const changes = await compareTrees(await manifestOfDir(base), await manifestOfDir(cur));
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
    patch_omitted: [],
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

test("a directory's mode change alone is not a change", async () => {
  const dir = (mode: number): TreeEntry => ({ path: "d", type: "directory", mode, size: 0 });
  assert.deepEqual(await compareTrees([dir(0o755)], [dir(0o700)]), []);
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
  const changes = await compareTrees([link("a"), file(0o644)], [link("b"), file(0o755)]);
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

test("the patch is cut at a file boundary once it would pass maxPatchBytes, naming what it left out", async () => {
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
  assert.deepEqual(result.patch_omitted, [
    { path: "c.txt", reason: "size_cap" },
    { path: "d.txt", reason: "size_cap" },
  ]);
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
  await buildDiff(await compareTrees(baseline, current), io);
  const started = performance.now();
  const changes = await compareTrees(baseline, current);
  const result = await buildDiff(changes, io);
  const elapsed = performance.now() - started;
  console.log(`# compareTrees+buildDiff, 2000 files, 10 changed: ${elapsed.toFixed(1)} ms`);
  assert.equal(result.summary.modified, 10);
  assert.ok(elapsed < 200, `took ${elapsed} ms`);
});

// ---------------------------------------------------------------------------------------------
// What is shown: ignore rules, .git/ internals, path filters

/** The changes selectChanges keeps between two trees on disk, and how many it counted as ignored. */
async function selectBetween(
  baseline: Spec | string,
  current: Spec | string,
  filters?: DiffFilters,
): Promise<{ kept: string[]; ignored: number; reads: string[] }> {
  const dirOf = async (spec: Spec | string) => {
    if (typeof spec === "string") return spec;
    const dir = join(await tempDir(), "tree");
    await makeTree(dir, spec);
    return dir;
  };
  const base = await dirOf(baseline);
  const cur = await dirOf(current);
  const reads: string[] = [];
  const io = recordingIo(diskIo(base, cur), reads);
  const trees = { baseline: await manifestOfDir(base), current: await manifestOfDir(cur), ...io };
  const { changes, ignored } = await selectChanges(await compareTrees(trees.baseline, trees.current), trees, filters);
  return { kept: changes.map((c) => c.path), ignored, reads };
}

function recordingIo(io: DiffIo, calls: string[]): DiffIo {
  return {
    readBaseline: (path, maxBytes) => {
      calls.push(`base:${path}${maxBytes === undefined ? "" : `@${maxBytes}`}`);
      return io.readBaseline(path, maxBytes);
    },
    readCurrent: (path, maxBytes) => {
      calls.push(`cur:${path}${maxBytes === undefined ? "" : `@${maxBytes}`}`);
      return io.readCurrent(path, maxBytes);
    },
  };
}

test("ignore rules agree with git: nested .gitignore files, negation, anchoring, .git/info/exclude", async () => {
  const cur = join(await tempDir(), "repo");
  await mkdir(cur, { recursive: true });
  execFileSync("git", ["init", "-q"], { cwd: cur });
  await makeTree(cur, {
    ".git/info/exclude": "secret.txt\n",
    ".gitignore": [
      "# build output",
      "*.log",
      "!keep.log",
      "build/",
      "/root-only.txt",
      "docs/*.tmp",
      "\\#hash",
      "foo/**/bar",
      "lib/cache/",
      "node_modules/",
      "",
    ].join("\n"),
    "sub/.gitignore": "!x.log\n/gen/\ntmp\n*.c\n!main.c\n",
    "lib/.gitignore": "!cache/\n",
    "node_modules/pkg/.gitignore": "!*\n",
    "node_modules/pkg/index.js": "x\n",
    "we[ir]d/.gitignore": "*.tmp\n",
    "we[ir]d/x.tmp": "t\n",
    "wed/x.tmp": "t\n",
    "a.log": "l\n",
    "keep.log": "l\n",
    "sub/keep.log": "l\n",
    "sub/x.log": "l\n",
    "sub/y.log": "l\n",
    "sub/gen/g.txt": "g\n",
    "gen/g.txt": "g\n",
    "sub/deeper/gen/g.txt": "g\n",
    "sub/tmp": "t\n",
    "sub/deeper/tmp/t.txt": "t\n",
    "sub/a.c": "c\n",
    "sub/main.c": "c\n",
    "sub/deeper/b.c": "c\n",
    "build/out.o": "o\n",
    "src/build/x": "x\n",
    "root-only.txt": "r\n",
    "sub/root-only.txt": "r\n",
    "docs/a.tmp": "t\n",
    "docs/x/a.tmp": "t\n",
    "#hash": "h\n",
    "foo/bar": "b\n",
    "foo/a/b/bar": "b\n",
    "secret.txt": "s\n",
    "sub/secret.txt": "s\n",
    "lib/cache/c.txt": "c\n",
    "src/main.c": "int main;\n",
  });
  const git = (...args: string[]) =>
    execFileSync("git", args, { cwd: cur, encoding: "utf8" }).split("\n").filter(Boolean).sort();
  const shownByGit = git("ls-files", "--others", "--exclude-standard");
  const ignoredByGit = git("ls-files", "--others", "--ignored", "--exclude-standard");
  assert.ok(shownByGit.includes("sub/x.log") && ignoredByGit.includes("sub/y.log"), "the cases are real");

  const { kept, ignored } = await selectBetween({}, cur);
  assert.deepEqual([...kept].sort(), shownByGit);
  // Empty directories count as changes too (git lists none), and there are some in a new .git/.
  const gitInternals = (await compareTrees([], await manifestOfDir(cur))).filter((c) => c.path.startsWith(".git/"));
  assert.equal(ignored, ignoredByGit.length + gitInternals.length);
});

test(".git/ internals are left out at any depth; a change to .gitignore itself is shown", async () => {
  const { kept, ignored } = await selectBetween(
    { ".git/HEAD": "ref: refs/heads/main\n", ".git/index": "i1", ".gitignore": "*.o\n", "src/a.c": "int a;\n" },
    {
      ".git/HEAD": "ref: refs/heads/main\n",
      ".git/index": "i2",
      ".git/objects/ab/cdef": "blob",
      ".gitignore": "*.o\n*.a\n",
      "src/a.c": "int a = 1;\n",
      "vendor/lib/.git/HEAD": "ref\n",
      "vendor/sub/.git": "gitdir: ../../.git/modules/sub\n",
    },
  );
  assert.deepEqual(kept, [".gitignore", "src/a.c"]);
  assert.equal(ignored, 4);
});

test("a build's ignored output is left out and counted; include_ignored shows it all", async () => {
  const baseline: Spec = { ".gitignore": "build/\n*.o\nnode_modules/\n__pycache__/\n", "src/a.c": "int a;\n" };
  const current: Spec = {
    ...baseline,
    "src/a.c": "int a = 1;\n",
    "src/a.o": Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0]),
    "build/lib.so": "so",
    "build/gen/config.h": "#define X\n",
    "node_modules/left-pad/index.js": "module.exports = 1;\n",
    "src/__pycache__/a.cpython-311.pyc": "pyc",
    "empty-build-dir/build": { dir: true },
  };
  const filtered = await selectBetween(baseline, current);
  assert.deepEqual(filtered.kept, ["src/a.c"]);
  assert.equal(filtered.ignored, 6);
  const everything = await selectBetween(baseline, current, { includeIgnored: true });
  assert.equal(everything.ignored, 0);
  assert.deepEqual(everything.kept, [
    "build/gen/config.h",
    "build/lib.so",
    "empty-build-dir/build",
    "node_modules/left-pad/index.js",
    "src/__pycache__/a.cpython-311.pyc",
    "src/a.c",
    "src/a.o",
  ]);
});

test("deleted paths are judged by the baseline's rules, existing ones by the current rules", async () => {
  const { kept, ignored } = await selectBetween(
    { "sub/.gitignore": "gen/\n", "sub/gen/out.txt": "g\n", "sub/a.c": "a\n", "x.tmp": "x\n" },
    { ".gitignore": "*.tmp\n", "y.tmp": "y\n", "x.tmp": "x2\n" },
  );
  // sub/ went with its .gitignore: sub/gen/out.txt is still ignored; x.tmp and y.tmp by the new rule.
  assert.deepEqual(kept, [".gitignore", "sub/.gitignore", "sub/a.c"]);
  assert.equal(ignored, 3);
});

test("rules are read only where needed: not the baseline's without deletions, not inside ignored dirs", async () => {
  const spec: Spec = {
    ".gitignore": "node_modules/\n",
    "node_modules/pkg/.gitignore": "!*\n",
    "node_modules/pkg/index.js": "x\n",
    "src/.gitignore": "*.tmp\n",
    "src/a.c": "a\n",
  };
  const { kept, reads } = await selectBetween(spec, { ...spec, "src/a.c": "b\n", "node_modules/pkg/new.js": "y\n" });
  assert.deepEqual(kept, ["src/a.c"]);
  assert.deepEqual(reads.sort(), ["cur:.gitignore", "cur:src/.gitignore"]);
});

test("paths and exclude take .gitignore-syntax patterns; /workspace/x and ./x mean the top-level x", async () => {
  const baseline: Spec = { ".gitignore": "*.o\n" };
  const current: Spec = {
    ...baseline,
    "src/a.c": "a\n",
    "src/a.o": "o\n",
    "src/parser.gen.c": "g\n",
    "lib/src/b.c": "b\n",
    "docs/guide.md": "d\n",
    "README.md": "r\n",
  };
  const kept = async (filters: DiffFilters) => (await selectBetween(baseline, current, filters)).kept;
  assert.deepEqual(await kept({ paths: ["src/"] }), ["lib/src/b.c", "src/a.c", "src/parser.gen.c"]);
  assert.deepEqual(await kept({ paths: ["/src"] }), ["src/a.c", "src/parser.gen.c"]);
  assert.deepEqual(await kept({ paths: ["/workspace/src"] }), ["src/a.c", "src/parser.gen.c"]);
  assert.deepEqual(await kept({ paths: ["./src/"], exclude: ["*.gen.c"] }), ["src/a.c"]);
  assert.deepEqual(await kept({ paths: ["*.md"] }), ["README.md", "docs/guide.md"]);
  assert.deepEqual(await kept({ exclude: ["/docs", "lib/"] }), ["README.md", "src/a.c", "src/parser.gen.c"]);
  // Filters go first; only what they let through is judged by the ignore rules and counted.
  assert.deepEqual(await selectBetween(baseline, current, { paths: ["/src"] }), {
    kept: ["src/a.c", "src/parser.gen.c"],
    ignored: 1,
    reads: ["cur:.gitignore"],
  });
  assert.deepEqual(await kept({ paths: ["/src"], includeIgnored: true }), ["src/a.c", "src/a.o", "src/parser.gen.c"]);
});

// ---------------------------------------------------------------------------------------------
// The size cap: what goes in first, and what is named when it does not fit

test("small edits take room before large generated files; the patch stays in path order and applies", async () => {
  const source = Array.from({ length: 100 }, (_, i) => `int f${i}(void) { return ${i}; }`).join("\n") + "\n";
  const bundle = (n: number) => Array.from({ length: n }, (_, i) => `var v${i}=${i};`).join("\n") + "\n";
  const { base, result } = await diffTrees(
    { "src/main.c": source, "aaa/bundle.js": bundle(100) },
    {
      "src/main.c": source.replace("return 42;", "return 4200;"),
      "aaa/bundle.js": bundle(180), // sorts first by path, grows by ~1.2 KB
      "aab/generated.js": bundle(200), // added, ~2.3 KB
    },
    { maxPatchBytes: 2000 },
  );
  assert.deepEqual(
    result.files.map((f) => f.path),
    ["aaa/bundle.js", "aab/generated.js", "src/main.c"],
  );
  assert.match(result.patch, /^\+int f42\(void\) \{ return 4200; \}$/m);
  assert.deepEqual(result.patch_omitted, [{ path: "aab/generated.js", reason: "too_large" }]);
  assert.equal(result.patch_truncated, true);
  // aaa/bundle.js fitted after main.c had taken its room, and is printed first, in path order.
  assert.ok(result.patch.indexOf("a/aaa/bundle.js") < result.patch.indexOf("a/src/main.c"));
  const copy = await applyWith("git", base, result.patch);
  assert.match(await readFile(join(copy, "src/main.c"), "utf8"), /return 4200;/);
});

test("a one-line edit that sorts after hundreds of large changes is still in the patch", async () => {
  const blob = "y".repeat(4000) + "\n";
  const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`node_modules/p${i}/index.js`, blob]));
  const { result } = await diffTrees(
    { "zz/app.py": "x = 1\n" },
    { ...many, "zz/app.py": "x = 2\n" },
    { maxPatchBytes: 100_000 },
  );
  assert.match(result.patch, /^-x = 1\n\+x = 2$/m);
  assert.ok(Buffer.byteLength(result.patch) <= 100_000);
  assert.equal(result.patch_omitted?.length, 300 - (result.patch.match(/^diff --git /gm) ?? []).length + 1);
  assert.ok(result.patch_omitted?.every((o) => o.path.startsWith("node_modules/") && o.reason === "size_cap"));
});

test("files that cannot fit are not read whole: over maxFileBytes or larger than the cap; binaries sniffed", async () => {
  const calls: string[] = [];
  const big = "z".repeat(5000) + "\n";
  const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0]), Buffer.alloc(6000, 1)]);
  const root = await tempDir();
  const base = join(root, "base");
  const cur = join(root, "cur");
  await makeTree(base, { "huge.txt": big, "small.txt": "a\n" });
  await makeTree(cur, { "huge.txt": `${big}more\n`, "added-big.txt": big, "tool.bin": elf, "small.txt": "b\n" });
  const changes = await compareTrees(await manifestOfDir(base), await manifestOfDir(cur));
  const result = await buildDiff(changes, recordingIo(diskIo(base, cur), calls), {
    maxPatchBytes: 3000,
    maxFileBytes: 4096,
  });
  assert.deepEqual(result.patch_omitted, [
    { path: "added-big.txt", reason: "too_large" },
    { path: "huge.txt", reason: "too_large" },
  ]);
  assert.deepEqual(
    result.files.map((f) => [f.path, f.binary]),
    [
      ["added-big.txt", false],
      ["huge.txt", false],
      ["small.txt", false],
      ["tool.bin", true],
    ],
  );
  assert.equal(result.summary.binary, 1);
  assert.match(result.patch, /^\+b$/m);
  // Only small.txt was read whole; the others only as far as the binary sniff needs.
  assert.deepEqual(calls.filter((c) => !c.includes("@")).sort(), ["base:small.txt", "cur:small.txt"]);
  assert.deepEqual(calls.filter((c) => c.includes("@")).sort(), [
    "base:huge.txt@8192",
    "cur:added-big.txt@8192",
    "cur:huge.txt@8192",
    "cur:tool.bin@8192",
  ]);
});

test("a type change and the changes beneath it go into the patch together or not at all", async () => {
  const body = "p\n".repeat(150);
  const { base, result } = await diffTrees(
    { lib: "was a file\n", "note.txt": "n\n" },
    { "lib/mod.py": body, "lib/util.py": body, "note.txt": "n2\n" },
    { maxPatchBytes: 1300 },
  );
  assert.deepEqual(result.patch_omitted, [
    { path: "lib", reason: "size_cap" },
    { path: "lib/mod.py", reason: "size_cap" },
    { path: "lib/util.py", reason: "size_cap" },
  ]);
  assert.doesNotMatch(result.patch, /lib/);
  const copy = await applyWith("git", base, result.patch);
  assert.equal(await readFile(join(copy, "note.txt"), "utf8"), "n2\n");
});
