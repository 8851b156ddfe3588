// The disk tools over a stopped workspace's layer, a plain temp directory here: guest-space
// symlink resolution that never leaves /workspace on the host, list, bounded UTF-8 read, and the
// raw ext4 image export (mounted read-only to check what it holds).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { PyroError } from "../../src/contract/errors.js";
import { exportLayerImage, listLayer, readLayer, resolveInLayer } from "../../src/manager/disk.js";

const base = mkdtempSync(join(tmpdir(), "pyro-test-disk-"));
// Laid out like a real sandbox: <base>/upper/workspace, with host files the links must never reach.
const layer = join(base, "upper", "workspace");
mkdirSync(layer, { recursive: true });
mkdirSync(join(base, "outside"));
writeFileSync(join(base, "outside", "secret"), "host secret\n");

writeFileSync(join(layer, "hello.txt"), "hello\n");
mkdirSync(join(layer, "src", "nested"), { recursive: true });
writeFileSync(join(layer, "src", "main.ts"), "export {};\n");
writeFileSync(join(layer, "src", "nested", "deep.txt"), "deep\n");
mkdirSync(join(layer, "bin"));
writeFileSync(join(layer, "bin", "run.sh"), "#!/bin/sh\necho hi\n");
chmodSync(join(layer, "bin", "run.sh"), 0o755);
mkdirSync(join(layer, "empty"));
writeFileSync(join(layer, "utf8.txt"), "aé");
writeFileSync(join(layer, "binary.bin"), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0xff, 0x00, 0x01]));
symlinkSync("hello.txt", join(layer, "link-to-hello"));
symlinkSync("/workspace/src/main.ts", join(layer, "abs-link"));
symlinkSync("src", join(layer, "dir-link"));
symlinkSync("/etc/passwd", join(layer, "passwd-link"));
// On the host, <layer>/src/../../../outside/secret is a real file: only guest-space resolution refuses it.
symlinkSync("../../../outside/secret", join(layer, "src", "escape"));
// An absolute HOST path is a guest path outside /workspace.
symlinkSync(join(base, "outside", "secret"), join(layer, "host-abs-link"));
symlinkSync("loop-b", join(layer, "loop-a"));
symlinkSync("loop-a", join(layer, "loop-b"));

const mounts: string[] = [];
after(() => {
  for (const m of mounts) {
    try {
      execFileSync("umount", [m]);
    } catch {}
  }
  rmSync(base, { recursive: true, force: true });
});

const refused = (code: string, text?: RegExp) => (e: unknown) => {
  assert.ok(e instanceof PyroError, `expected a PyroError, got ${String(e)}`);
  assert.equal(e.code, code, e.message);
  if (text) assert.match(e.message, text);
  return true;
};

function lstatMode(rel: string): number {
  return lstatSync(join(layer, rel)).mode & 0o7777;
}

describe("resolveInLayer", () => {
  it("maps guest paths into the layer, following links only where asked", async () => {
    assert.deepEqual(await resolveInLayer(layer, "/workspace", { followFinal: true }), {
      hostPath: layer,
      guestPath: "/workspace",
    });
    assert.deepEqual(await resolveInLayer(layer, "abs-link", { followFinal: true }), {
      hostPath: join(layer, "src", "main.ts"),
      guestPath: "/workspace/src/main.ts",
    });
    assert.deepEqual(await resolveInLayer(layer, "abs-link", { followFinal: false }), {
      hostPath: join(layer, "abs-link"),
      guestPath: "/workspace/abs-link",
    });
    // An intermediate symlink is always followed.
    assert.deepEqual(await resolveInLayer(layer, "dir-link/nested/deep.txt", { followFinal: false }), {
      hostPath: join(layer, "src", "nested", "deep.txt"),
      guestPath: "/workspace/src/nested/deep.txt",
    });
  });

  it("refuses a path outside, a missing path, and a symlink out of /workspace even without following it last", async () => {
    await assert.rejects(resolveInLayer(layer, "/etc", { followFinal: true }), refused("PATH_OUTSIDE_WORKSPACE"));
    await assert.rejects(
      resolveInLayer(layer, "nope/x", { followFinal: true }),
      refused("FILE_NOT_FOUND", /does not exist in the workspace/),
    );
    await assert.rejects(
      resolveInLayer(layer, "hello.txt/x", { followFinal: true }),
      refused("INVALID_ARGUMENT", /not a directory/),
    );
    await assert.rejects(
      resolveInLayer(layer, "passwd-link/x", { followFinal: false }),
      refused("PATH_OUTSIDE_WORKSPACE", /passwd-link/),
    );
    // Not following the last component: the link itself is inside, so it resolves.
    assert.equal(
      (await resolveInLayer(layer, "passwd-link", { followFinal: false })).hostPath,
      join(layer, "passwd-link"),
    );
  });
});

describe("listLayer", () => {
  it("lists a directory flat, sorted, with types, sizes and link targets", async () => {
    const list = await listLayer(layer);
    assert.equal(list.path, "/workspace");
    assert.equal(list.recursive, false);
    assert.equal(list.truncated, false);
    assert.deepEqual(
      list.entries.map((e) => [e.path, e.artifact_type, e.size_bytes, e.link_target]),
      [
        ["/workspace/abs-link", "symlink", 0, "/workspace/src/main.ts"],
        ["/workspace/bin", "directory", 0, undefined],
        ["/workspace/binary.bin", "file", 7, undefined],
        ["/workspace/dir-link", "symlink", 0, "src"],
        ["/workspace/empty", "directory", 0, undefined],
        ["/workspace/hello.txt", "file", 6, undefined],
        ["/workspace/host-abs-link", "symlink", 0, join(base, "outside", "secret")],
        ["/workspace/link-to-hello", "symlink", 0, "hello.txt"],
        ["/workspace/loop-a", "symlink", 0, "loop-b"],
        ["/workspace/loop-b", "symlink", 0, "loop-a"],
        ["/workspace/passwd-link", "symlink", 0, "/etc/passwd"],
        ["/workspace/src", "directory", 0, undefined],
        ["/workspace/utf8.txt", "file", 3, undefined],
      ],
    );
  });

  it("recurses into directories but never through symlinks", async () => {
    const list = await listLayer(layer, "/workspace", true);
    const paths = list.entries.map((e) => e.path);
    assert.deepEqual(paths, [...paths].sort());
    for (const p of [
      "/workspace/bin/run.sh",
      "/workspace/src/escape",
      "/workspace/src/main.ts",
      "/workspace/src/nested",
      "/workspace/src/nested/deep.txt",
    ]) {
      assert.ok(paths.includes(p), p);
    }
    assert.ok(!paths.some((p) => p.startsWith("/workspace/dir-link/")), "followed dir-link");
    assert.equal(list.entries.find((e) => e.path === "/workspace/bin/run.sh")?.mode, 0o755);
    assert.equal(list.entries.length, 18);
  });

  it("lists a file as its one entry, and a symlink (even one to a directory) as itself", async () => {
    assert.deepEqual((await listLayer(layer, "src/main.ts")).entries, [
      { path: "/workspace/src/main.ts", artifact_type: "file", size_bytes: 11, mode: lstatMode("src/main.ts") },
    ]);
    const dirLink = await listLayer(layer, "dir-link", true);
    assert.deepEqual(
      dirLink.entries.map((e) => [e.path, e.artifact_type, e.link_target]),
      [["/workspace/dir-link", "symlink", "src"]],
    );
    const passwd = await listLayer(layer, "/workspace/passwd-link");
    assert.equal(passwd.entries[0]?.link_target, "/etc/passwd");
  });

  it("lists a subdirectory by a relative path, and through an inside symlink", async () => {
    const list = await listLayer(layer, "dir-link/nested");
    assert.equal(list.path, "/workspace/dir-link/nested");
    assert.deepEqual(
      list.entries.map((e) => e.path),
      ["/workspace/dir-link/nested/deep.txt"],
    );
  });

  it("refuses paths outside /workspace and missing paths", async () => {
    await assert.rejects(listLayer(layer, "/etc"), refused("PATH_OUTSIDE_WORKSPACE"));
    await assert.rejects(listLayer(layer, ".."), refused("PATH_OUTSIDE_WORKSPACE"));
    await assert.rejects(listLayer(layer, "missing"), refused("FILE_NOT_FOUND", /does not exist/));
  });
});

describe("readLayer", () => {
  it("reads UTF-8 text by relative and by absolute guest path", async () => {
    assert.deepEqual(await readLayer(layer, "hello.txt", 1024), {
      path: "/workspace/hello.txt",
      content: "hello\n",
      size_bytes: 6,
      truncated: false,
    });
    assert.equal((await readLayer(layer, "/workspace/src/nested/deep.txt", 1024)).content, "deep\n");
  });

  it("truncates at max_bytes without splitting a UTF-8 character", async () => {
    assert.deepEqual(await readLayer(layer, "utf8.txt", 2), {
      path: "/workspace/utf8.txt",
      content: "a",
      size_bytes: 3,
      truncated: true,
    });
    assert.equal((await readLayer(layer, "utf8.txt", 3)).content, "aé");
    assert.equal((await readLayer(layer, "hello.txt", 3)).content, "hel");
  });

  it("refuses binary content and directories, pointing at the right tool", async () => {
    await assert.rejects(readLayer(layer, "binary.bin", 1024), refused("INVALID_ARGUMENT", /disk export/));
    await assert.rejects(readLayer(layer, "src", 1024), refused("INVALID_ARGUMENT", /directory/));
    await assert.rejects(readLayer(layer, "dir-link", 1024), refused("INVALID_ARGUMENT", /directory/));
  });

  it("follows symlinks that stay inside, resolving absolute targets in the layer", async () => {
    assert.equal((await readLayer(layer, "link-to-hello", 1024)).content, "hello\n");
    assert.equal((await readLayer(layer, "abs-link", 1024)).content, "export {};\n");
    assert.equal((await readLayer(layer, "dir-link/main.ts", 1024)).content, "export {};\n");
  });

  it("never follows a symlink out of /workspace onto the host", async () => {
    await assert.rejects(readLayer(layer, "passwd-link", 1024), refused("PATH_OUTSIDE_WORKSPACE", /passwd-link/));
    await assert.rejects(
      readLayer(layer, "src/escape", 1024),
      refused("PATH_OUTSIDE_WORKSPACE", /src\/escape -> \.\.\/\.\.\/\.\.\/outside/),
    );
    await assert.rejects(readLayer(layer, "host-abs-link", 1024), refused("PATH_OUTSIDE_WORKSPACE"));
  });

  it("refuses `..` out of /workspace and absolute paths outside it", async () => {
    await assert.rejects(readLayer(layer, "../etc/passwd", 1024), refused("PATH_OUTSIDE_WORKSPACE"));
    await assert.rejects(readLayer(layer, "/workspace/../etc/passwd", 1024), refused("PATH_OUTSIDE_WORKSPACE"));
    await assert.rejects(
      readLayer(layer, "src/../../upper/workspace/hello.txt", 1024),
      refused("PATH_OUTSIDE_WORKSPACE"),
    );
    await assert.rejects(readLayer(layer, "/etc/passwd", 1024), refused("PATH_OUTSIDE_WORKSPACE"));
    // `..` that stays inside is fine.
    assert.equal((await readLayer(layer, "src/../hello.txt", 1024)).content, "hello\n");
  });

  it("refuses a symlink loop and a missing file", async () => {
    await assert.rejects(readLayer(layer, "loop-a", 1024), refused("INVALID_ARGUMENT", /symlink/));
    await assert.rejects(readLayer(layer, "nope.txt", 1024), refused("FILE_NOT_FOUND", /does not exist/));
    await assert.rejects(readLayer(layer, "hello.txt", 0), refused("INVALID_ARGUMENT"));
  });
});

describe("exportLayerImage", () => {
  it("writes a mountable ext4 image holding the files, modes, symlinks and empty directories", async () => {
    const out = join(base, "exports", "ws.img");
    const result = await exportLayerImage(layer, out);
    assert.equal(result.output_path, out);
    assert.equal(result.size_bytes, statSync(out).size);
    assert.ok(result.size_bytes >= 32 * 1024 * 1024);
    // 6 files, 4 directories, 8 symlinks (the layer root itself is not counted).
    assert.equal(result.entry_count, 18);
    assert.deepEqual(readdirSync(join(base, "exports")), ["ws.img"], "the temp image was left behind");
    assert.equal(execFileSync("blkid", ["-o", "value", "-s", "TYPE", out], { encoding: "utf8" }).trim(), "ext4");

    const mnt = mkdtempSync(join(tmpdir(), "pyro-test-disk-mnt-"));
    execFileSync("mount", ["-o", "loop,ro", out, mnt]);
    mounts.push(mnt);
    try {
      assert.equal(readFileSync(join(mnt, "hello.txt"), "utf8"), "hello\n");
      assert.equal(readFileSync(join(mnt, "src", "nested", "deep.txt"), "utf8"), "deep\n");
      assert.equal(readFileSync(join(mnt, "bin", "run.sh"), "utf8"), "#!/bin/sh\necho hi\n");
      assert.equal(statSync(join(mnt, "bin", "run.sh")).mode & 0o7777, 0o755);
      assert.ok(lstatSync(join(mnt, "abs-link")).isSymbolicLink());
      assert.equal(readlinkSync(join(mnt, "abs-link")), "/workspace/src/main.ts");
      assert.equal(readlinkSync(join(mnt, "src", "escape")), "../../../outside/secret");
      assert.ok(statSync(join(mnt, "empty")).isDirectory());
      assert.deepEqual(readdirSync(join(mnt, "empty")), []);
    } finally {
      execFileSync("umount", [mnt]);
      mounts.splice(mounts.indexOf(mnt), 1);
      rmSync(mnt, { recursive: true, force: true });
    }
  });

  it("refuses an existing output and leaves it untouched", async () => {
    const out = join(base, "taken.img");
    writeFileSync(out, "keep me");
    await assert.rejects(exportLayerImage(layer, out), refused("OUTPUT_EXISTS", /already exists/));
    assert.equal(readFileSync(out, "utf8"), "keep me");
    assert.deepEqual(
      readdirSync(base).filter((n) => n.includes(".pyro-")),
      [],
    );
    assert.ok(existsSync(out));
  });
});
