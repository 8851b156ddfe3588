// Unit tests for the host side of `workspace patch apply`: parsing plain and git-style unified
// diffs, checking every hunk against in-memory files, and the all-or-nothing plan with errors that
// name the file and the hunk. Ends with a round trip through buildDiff. No sandboxes.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { PyroError } from "../../src/contract/errors.js";
import { buildDiff, compareTrees, type TreeEntry } from "../../src/manager/diff.js";
import { PatchApplyParams, PatchApplyResult, PatchPlan, planPatch } from "../../src/manager/patch.js";

type Files = Record<string, string | { content: string; mode: number }>;

/** An in-memory workspace; `reads` records what planPatch asked for. */
function memoryIo(files: Files) {
  const reads: string[] = [];
  return {
    reads,
    read: async (path: string) => {
      reads.push(path);
      const f = files[path];
      if (f === undefined) return null;
      return typeof f === "string" ? { content: f, mode: 0o644 } : f;
    },
  };
}

async function plan(patch: string, files: Files) {
  const result = await planPatch(patch, memoryIo(files));
  assert.deepEqual(PatchPlan.parse(result), result);
  return result;
}

async function rejects(patch: string, files: Files, code: string, message: RegExp): Promise<PyroError> {
  let caught: unknown;
  try {
    await planPatch(patch, memoryIo(files));
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof PyroError, `expected a PyroError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, message);
  return caught;
}

const numbered = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `line ${i + from}\n`).join("");

test("one patch adds, modifies and deletes files; the plan lists deletions first", async () => {
  const patch = [
    "diff --git a/src/app.py b/src/app.py",
    "index 1111111..2222222 100644",
    "--- a/src/app.py",
    "+++ b/src/app.py",
    "@@ -1,3 +1,3 @@",
    " import os",
    "-print('hi')",
    "+print('hello')",
    " exit()",
    "diff --git a/src/new.py b/src/new.py",
    "new file mode 100755",
    "index 0000000..3333333",
    "--- /dev/null",
    "+++ b/src/new.py",
    "@@ -0,0 +1,2 @@",
    "+#!/usr/bin/env python3",
    "+VALUE = 1",
    "diff --git a/zz_old.txt b/zz_old.txt",
    "deleted file mode 100644",
    "--- a/zz_old.txt",
    "+++ /dev/null",
    "@@ -1,2 +0,0 @@",
    "-one",
    "-two",
    "",
  ].join("\n");
  const result = await plan(patch, {
    "src/app.py": { content: "import os\nprint('hi')\nexit()\n", mode: 0o600 },
    "zz_old.txt": "one\ntwo\n",
  });
  assert.deepEqual(result.files, [
    { path: "zz_old.txt", status: "deleted" },
    { path: "src/app.py", status: "modified", content: "import os\nprint('hello')\nexit()\n", mode: 0o600 },
    { path: "src/new.py", status: "added", content: "#!/usr/bin/env python3\nVALUE = 1\n", mode: 0o755 },
  ]);
});

test("plain unified diffs work too: no git header, no a/ b/ prefixes, timestamps after a tab", async () => {
  const patch = [
    "--- notes.txt\t2024-05-01 10:00:00.000000000 +0000",
    "+++ notes.txt\t2024-05-02 10:00:00.000000000 +0000",
    "@@ -1 +1 @@",
    "-draft",
    "+final",
    "--- /dev/null",
    "+++ b/docs/new.md",
    "@@ -0,0 +1 @@",
    "+# New",
    "",
  ].join("\n");
  const result = await plan(patch, { "notes.txt": "draft\n" });
  assert.deepEqual(result.files, [
    { path: "docs/new.md", status: "added", content: "# New\n", mode: 0o644 },
    { path: "notes.txt", status: "modified", content: "final\n", mode: 0o644 },
  ]);
});

test("`diff -N` style new files (old name not /dev/null) are created; git-style ones must exist", async () => {
  const plainNew = "--- a/fresh.txt\t1970-01-01 00:00:00.000000000 +0000\n+++ b/fresh.txt\n@@ -0,0 +1,2 @@\n+a\n+b\n";
  assert.deepEqual((await plan(plainNew, {})).files, [
    { path: "fresh.txt", status: "added", content: "a\nb\n", mode: 0o644 },
  ]);
  const gitModify = `diff --git a/fresh.txt b/fresh.txt\n${plainNew}`;
  await rejects(gitModify, {}, "PATCH_DOES_NOT_APPLY", /^patch modifies fresh\.txt, which does not exist/);
});

test("a patch written with /workspace/ paths is told the relative form", async () => {
  await rejects(
    "--- /workspace/src/x.py\n+++ /workspace/src/x.py\n@@ -1 +1 @@\n-a\n+b\n",
    {},
    "PATH_OUTSIDE_WORKSPACE",
    /absolute path \/workspace\/src\/x\.py; patch paths are relative to \/workspace, e\.g\. `--- a\/src\/x\.py`/,
  );
});

test("real `git diff` output (rename, chmod, add, delete, edit) plans to the committed-then-changed files", async () => {
  const repo = await mkdtemp(join(tmpdir(), "pyro-test-"));
  try {
    const git = (...args: string[]) =>
      execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo, encoding: "utf8" });
    const before: Record<string, string> = {
      "src/main.c": `${numbered(30)}`,
      "docs/old-name.md": "# Title\n\nsame body line 1\nsame body line 2\nsame body line 3\nsame body line 4\n",
      "tools/run.sh": "#!/bin/sh\necho run\n",
      "obsolete.txt": "remove me\n",
    };
    git("init", "-q");
    for (const [path, text] of Object.entries(before)) {
      await mkdir(dirname(join(repo, path)), { recursive: true });
      await writeFile(join(repo, path), text);
    }
    git("add", "-A");
    git("commit", "-qm", "base");
    await writeFile(
      join(repo, "src/main.c"),
      numbered(30).replace("line 7\n", "line seven\n").replace("line 25\n", ""),
    );
    git("mv", "docs/old-name.md", "docs/new-name.md");
    await writeFile(join(repo, "docs/new-name.md"), `${before["docs/old-name.md"]}appended\n`);
    await chmod(join(repo, "tools/run.sh"), 0o755);
    git("rm", "-q", "obsolete.txt");
    await writeFile(join(repo, "added.txt"), "brand new\n");
    git("add", "-A");
    const patch = git("diff", "--cached", "-M");
    assert.match(patch, /rename from docs\/old-name\.md/);

    const result = await plan(patch, before);
    assert.deepEqual(
      result.files.map((f) => [f.path, f.status, f.mode]),
      [
        ["docs/old-name.md", "deleted", undefined],
        ["obsolete.txt", "deleted", undefined],
        ["added.txt", "added", 0o644],
        ["docs/new-name.md", "added", 0o644],
        ["src/main.c", "modified", 0o644],
        ["tools/run.sh", "modified", 0o755],
      ],
    );
    for (const f of result.files.filter((x) => x.status !== "deleted")) {
      assert.equal(f.content, await readFile(join(repo, f.path), "utf8"), f.path);
    }
  } finally {
    await rm(repo, { recursive: true, force: true });
  }
});

test("several hunks in one file apply, including one that sits at a shifted offset", async () => {
  const before = numbered(40);
  const patch = [
    "--- a/f.txt",
    "+++ b/f.txt",
    "@@ -2,3 +2,3 @@",
    " line 2",
    "-line 3",
    "+LINE 3",
    " line 4",
    "@@ -30,3 +30,4 @@",
    " line 30",
    " line 31",
    "+inserted",
    " line 32",
    "",
  ].join("\n");
  const expected = before.replace("line 3\n", "LINE 3\n").replace("line 31\n", "line 31\ninserted\n");
  assert.equal((await plan(patch, { "f.txt": before })).files[0]?.content, expected);
  // Two lines added above the second hunk: it still applies at its new place, as with git apply.
  const shifted = before.replace("line 10\n", "line 10\nextra a\nextra b\n");
  const out = (await plan(patch, { "f.txt": shifted })).files[0]?.content;
  assert.equal(out, shifted.replace("line 3\n", "LINE 3\n").replace("line 31\n", "line 31\ninserted\n"));
});

test("a hunk that does not match names the file and the hunk, and nothing is planned", async () => {
  const patch = [
    "--- a/ok.txt",
    "+++ b/ok.txt",
    "@@ -1 +1 @@",
    "-a",
    "+A",
    "--- a/src/app.py",
    "+++ b/src/app.py",
    "@@ -1,2 +1,2 @@",
    " line 1",
    "-line 2",
    "+LINE 2",
    "@@ -10,4 +10,5 @@",
    " line 10",
    "-line eleven",
    "+line 11",
    "+line 11.5",
    " line 12",
    " line 13",
    "",
  ].join("\n");
  const err = await rejects(
    patch,
    { "ok.txt": "a\n", "src/app.py": numbered(20) },
    "PATCH_DOES_NOT_APPLY",
    /^patch does not apply: src\/app\.py hunk 2 \(@@ -10,4 \+10,5 @@\) does not match the file; read the file again and regenerate the patch$/,
  );
  assert.deepEqual(err.details, {
    problems: ["patch does not apply: src/app.py hunk 2 (@@ -10,4 +10,5 @@) does not match the file"],
  });
});

test("every failing file is named at once", async () => {
  const patch = [
    "--- a/one.txt",
    "+++ b/one.txt",
    "@@ -1 +1 @@",
    "-x",
    "+y",
    "--- a/two.txt",
    "+++ b/two.txt",
    "@@ -1 +1 @@",
    "-x",
    "+y",
    "",
  ].join("\n");
  await rejects(
    patch,
    { "one.txt": "not x\n" },
    "PATCH_DOES_NOT_APPLY",
    /one\.txt hunk 1 .*; patch modifies two\.txt, which does not exist; nothing was changed/,
  );
});

test("modifying a missing file, adding an existing one, or deleting what is not there is refused", async () => {
  const modify = "--- a/src/x.c\n+++ b/src/x.c\n@@ -1 +1 @@\n-a\n+b\n";
  await rejects(modify, {}, "PATCH_DOES_NOT_APPLY", /^patch modifies src\/x\.c, which does not exist; check the path/);
  const add = "--- /dev/null\n+++ b/README.md\n@@ -0,0 +1 @@\n+# hi\n";
  await rejects(
    add,
    { "README.md": "# old\n" },
    "PATCH_DOES_NOT_APPLY",
    /^patch adds README\.md, which already exists/,
  );
  const del = "--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n";
  await rejects(del, {}, "PATCH_DOES_NOT_APPLY", /^patch deletes gone\.txt, which does not exist/);
});

test("a delete must remove exactly the file's content", async () => {
  const del = "--- a/gone.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-bye\n";
  await rejects(
    del,
    { "gone.txt": "bye\nand more\n" },
    "PATCH_DOES_NOT_APPLY",
    /gone\.txt (hunk 1 .* does not match the file|but the file has lines the patch does not remove)/,
  );
  await rejects(del, { "gone.txt": "hello\n" }, "PATCH_DOES_NOT_APPLY", /gone\.txt hunk 1 \(@@ -1,1 \+0,0 @@\)/);
  assert.deepEqual((await plan(del, { "gone.txt": "bye\n" })).files, [{ path: "gone.txt", status: "deleted" }]);
});

test("empty, garbage and malformed patches get a message that says what to pass", async () => {
  for (const text of ["", "   \n", "hello world\nthis is not a diff\n"]) {
    await rejects(text, {}, "INVALID_ARGUMENT", /^no file changes found in the patch; pass a unified diff/);
  }
  await rejects("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n+b\n", { x: "a\n" }, "INVALID_ARGUMENT", /malformed.*line/);
  await rejects("@@ -1 +1 @@\n-a\n+b\n", {}, "INVALID_ARGUMENT", /hunk without `---`\/`\+\+\+` file names/);
  await rejects(
    "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\nnonsense here\n",
    { x: "a\n" },
    "INVALID_ARGUMENT",
    /malformed in the changes to x: Unknown line 7/,
  );
});

test("absolute paths and .. are refused before any file is read", async () => {
  const cases = [
    "--- /etc/passwd\n+++ /etc/passwd\n@@ -1 +1 @@\n-a\n+b\n",
    "--- a/../outside.txt\n+++ b/../outside.txt\n@@ -1 +1 @@\n-a\n+b\n",
    "--- /dev/null\n+++ b/src/../../x\n@@ -0,0 +1 @@\n+a\n",
    "diff --git a/ok b/ok\nrename from ok\nrename to ../../ok\n",
  ];
  for (const patch of cases) {
    const io = memoryIo({});
    await assert.rejects(planPatch(patch, io), (err: unknown) => {
      assert.ok(err instanceof PyroError);
      assert.equal(err.code, "PATH_OUTSIDE_WORKSPACE", err.message);
      assert.match(err.message, /relative to \/workspace|stay inside \/workspace/);
      return true;
    });
    assert.deepEqual(io.reads, []);
  }
});

test("patches over 5 MiB are refused with the limit in the message", async () => {
  const huge = `--- /dev/null\n+++ b/big.txt\n@@ -0,0 +1 @@\n+${"x".repeat(5 * 1024 * 1024)}\n`;
  await rejects(huge, {}, "INVALID_ARGUMENT", /at most 5242880 bytes \(5 MiB\)/);
});

test("CRLF files: a CRLF patch applies exactly, and an LF patch applies keeping the file CRLF", async () => {
  const file = { "win.txt": "one\r\ntwo\r\nthree\r\n" };
  const crlfPatch = "--- a/win.txt\n+++ b/win.txt\n@@ -1,3 +1,3 @@\n one\r\n-two\r\n+TWO\r\n three\r\n";
  assert.equal((await plan(crlfPatch, file)).files[0]?.content, "one\r\nTWO\r\nthree\r\n");
  const lfPatch = "--- a/win.txt\n+++ b/win.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n";
  assert.equal((await plan(lfPatch, file)).files[0]?.content, "one\r\nTWO\r\nthree\r\n");
  // A whole patch transported with CRLF line ends still applies to an LF file.
  const lfFile = { "unix.txt": "a\nb\n" };
  const transported = "--- a/unix.txt\r\n+++ b/unix.txt\r\n@@ -1,2 +1,2 @@\r\n a\r\n-b\r\n+B\r\n";
  assert.deepEqual((await plan(transported, lfFile)).files[0]?.content, "a\nB\n");
  // A file with mixed endings gets no conversion: the patch must match byte for byte.
  await rejects(lfPatch, { "win.txt": "one\r\ntwo\nthree\r\n" }, "PATCH_DOES_NOT_APPLY", /win\.txt hunk 1/);
});

test('"\\ No newline at end of file" is honoured in both directions', async () => {
  const addNewline = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+y\n";
  assert.equal((await plan(addNewline, { f: "x\ny" })).files[0]?.content, "x\ny\n");
  await rejects(addNewline, { f: "x\ny\n" }, "PATCH_DOES_NOT_APPLY", /f hunk 1/);
  const dropNewline = "--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n x\n-y\n+y\n\\ No newline at end of file\n";
  assert.equal((await plan(dropNewline, { f: "x\ny\n" })).files[0]?.content, "x\ny");
  const newFile = "--- /dev/null\n+++ b/g\n@@ -0,0 +1 @@\n+last\n\\ No newline at end of file\n";
  assert.equal((await plan(newFile, {})).files[0]?.content, "last");
});

test("git extras: empty new files, mode changes, renames; binary and symlink changes are refused", async () => {
  const empty = "diff --git a/empty b/empty\nnew file mode 100644\nindex 0000000..e69de29\n";
  assert.deepEqual((await plan(empty, {})).files, [{ path: "empty", status: "added", content: "", mode: 0o644 }]);
  const chmod = "diff --git a/run.sh b/run.sh\nold mode 100644\nnew mode 100755\n";
  assert.deepEqual((await plan(chmod, { "run.sh": "echo\n" })).files, [
    { path: "run.sh", status: "modified", content: "echo\n", mode: 0o755 },
  ]);
  const rename = [
    "diff --git a/old name.txt b/new name.txt",
    "similarity index 80%",
    "rename from old name.txt",
    "rename to new name.txt",
    "--- a/old name.txt\t",
    "+++ b/new name.txt\t",
    "@@ -1,2 +1,2 @@",
    " keep",
    "-old",
    "+new",
    "",
  ].join("\n");
  assert.deepEqual((await plan(rename, { "old name.txt": "keep\nold\n" })).files, [
    { path: "old name.txt", status: "deleted" },
    { path: "new name.txt", status: "added", content: "keep\nnew\n", mode: 0o644 },
  ]);
  const quoted =
    'diff --git "a/caf\\303\\251.txt" "b/caf\\303\\251.txt"\n--- "a/caf\\303\\251.txt"\n+++ "b/caf\\303\\251.txt"\n@@ -1 +1 @@\n-a\n+b\n';
  assert.deepEqual((await plan(quoted, { "café.txt": "a\n" })).files[0]?.path, "café.txt");

  const binary =
    "diff --git a/logo.png b/logo.png\nindex 1111111..2222222 100644\nBinary files a/logo.png and b/logo.png differ\n";
  await rejects(binary, { "logo.png": "x" }, "INVALID_ARGUMENT", /binary file logo\.png.*sync push/);
  await rejects("Binary files a/x.bin and b/x.bin differ\n", {}, "INVALID_ARGUMENT", /binary change .*sync push/);
  const link =
    "diff --git a/l b/l\nnew file mode 120000\nindex 0000000..1111111\n--- /dev/null\n+++ b/l\n@@ -0,0 +1 @@\n+target\n\\ No newline at end of file\n";
  await rejects(link, {}, "INVALID_ARGUMENT", /symlink or submodule l; .*ln -s/);
});

test("git format-patch mail: the message before the diff and the signature after it are ignored", async () => {
  const mail = [
    "From 1234 Mon Sep 17 00:00:00 2001",
    "Subject: [PATCH] fix",
    "",
    "---",
    " a.txt | 2 +-",
    "",
    "diff --git a/a.txt b/a.txt",
    "index 1111111..2222222 100644",
    "--- a/a.txt",
    "+++ b/a.txt",
    "@@ -1 +1 @@",
    "-old",
    "+new",
    "-- ",
    "2.39.5",
    "",
  ].join("\n");
  assert.equal((await plan(mail, { "a.txt": "old\n" })).files[0]?.content, "new\n");
});

test("a patch that changes nothing in the end plans nothing", async () => {
  const patch = "--- /dev/null\n+++ b/t\n@@ -0,0 +1 @@\n+x\n--- a/t\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";
  assert.deepEqual(await plan(patch, {}), { files: [] });
});

test("round trip: buildDiff's patch planned against the baseline reproduces the current files", async () => {
  const baseline: Record<string, string> = {
    "src/app.py": numbered(50),
    "src/dos.txt": "a\r\nb\r\nc\r\n",
    "src/tail.txt": "no newline",
    "docs/guide.md": "# Guide\n\nStep one.\n",
    "run.sh": "#!/bin/sh\n",
    "gone.txt": "bye\n",
  };
  const current: Record<string, string> = {
    "src/app.py": numbered(50).replace("line 3\n", "line three\n").replace("line 44\n", "line 44\nnew line\n"),
    "src/dos.txt": "a\r\nB\r\nc\r\n",
    "src/tail.txt": "no newline, still",
    "docs/guide.md": "# Guide\n\nStep one.\nStep two.\n",
    "run.sh": "#!/bin/sh\n",
    "docs/new file.md": "fresh\n",
  };
  const modes: Record<string, number> = { "run.sh": 0o755 };
  const manifest = (files: Record<string, string>, withModes: boolean): TreeEntry[] =>
    Object.entries(files).map(([path, text]) => ({
      path,
      type: "file",
      mode: withModes ? (modes[path] ?? 0o644) : 0o644,
      size: Buffer.byteLength(text),
      sha256: text, // any value that differs exactly when the content differs
    }));
  const diff = await buildDiff(await compareTrees(manifest(baseline, false), manifest(current, true)), {
    readBaseline: async (p) => Buffer.from(baseline[p]!),
    readCurrent: async (p) => Buffer.from(current[p]!),
  });
  assert.equal(diff.summary.total, 7);

  const result = await plan(diff.patch, baseline);
  const after = { ...baseline };
  for (const f of result.files) {
    if (f.status === "deleted") delete after[f.path];
    else after[f.path] = f.content!;
  }
  assert.deepEqual(after, current);
  assert.equal(result.files.find((f) => f.path === "run.sh")?.mode, 0o755);

  const applied = PatchApplyResult.parse({
    changed: result.files.length > 0,
    files: result.files.map((f) => ({ path: f.path, status: f.status })),
  });
  assert.equal(applied.files.length, 7);
});

test("PatchApplyParams takes the patch text", () => {
  assert.deepEqual(PatchApplyParams.parse({ patch: "--- a/x\n" }), { patch: "--- a/x\n" });
  assert.equal(PatchApplyParams.safeParse({}).success, false);
});
