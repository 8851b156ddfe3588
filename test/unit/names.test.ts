// File names that are not UTF-8, on both sides: the host's readers refuse them by their bytes with
// the fix, and the agent turns Node's mangled ENOENT into the same kind of refusal.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { explainFsError } from "../../src/agent/fs-errors.js";
import { PyroError } from "../../src/contract/errors.js";
import { escapedName, utf8Names } from "../../src/util/names.js";
import { manifestOfDir } from "../../src/util/tree.js";

const dir = mkdtempSync(join(tmpdir(), "pyro-test-names-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("names that are not UTF-8", () => {
  it("are shown git-style by their bytes", () => {
    assert.equal(escapedName(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74])), "caf\\351.t");
    assert.equal(escapedName(Buffer.from("a\\b\n")), "a\\134b\\012");
  });

  it("are refused by the host's readers with the name and the fix; UTF-8 names pass", async () => {
    writeFileSync(join(dir, "ok-é.txt"), "x");
    assert.deepEqual(await utf8Names(dir), ["ok-é.txt"]);
    writeFileSync(Buffer.from(`${dir}/caf\xe9.txt`, "latin1"), "x");
    for (const read of [() => utf8Names(dir, "/workspace"), () => manifestOfDir(dir)]) {
      await assert.rejects(read(), (e: PyroError) => {
        assert.equal(e.code, "INVALID_ARGUMENT");
        assert.match(e.message, /^the file name "caf\\351\.txt" in .* is not valid UTF-8/);
        assert.match(e.message, /mv "\$\(printf 'caf\\351\.txt'\)" new-name/);
        return true;
      });
    }
  });

  it("reach the caller from the agent as INVALID_ARGUMENT, not as a bug in pyro", () => {
    const mangled = Object.assign(new Error("ENOENT: no such file or directory"), {
      code: "ENOENT",
      path: "/workspace/d\uFFFD/x",
    });
    const explained = explainFsError(mangled);
    assert.ok(explained instanceof PyroError);
    assert.equal(explained.code, "INVALID_ARGUMENT");
    assert.match(explained.message, /^a file name in \/workspace is not valid UTF-8/);
    const plain = Object.assign(new Error("gone"), { code: "ENOENT", path: "/workspace/gone" });
    assert.equal(explainFsError(plain), plain, "an ordinary ENOENT is left as it is");
  });
});
