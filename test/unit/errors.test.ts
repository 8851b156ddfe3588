// The error codes as users meet them: docs/errors.md lists every code with its meaning and fix, and
// `pyro explain` prints the same words.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { runCli } from "../../src/cli/run-cli.js";
import { ERROR_CODES, ERROR_FIXES, type ErrorCode } from "../../src/contract/errors.js";
import type { ManagerApi } from "../../src/sdk/manager.js";

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function pyro(argv: string[]) {
  const stdout = new Capture();
  const stderr = new Capture();
  // explain never needs the manager: one that throws proves it.
  const manager = new Proxy(
    {},
    {
      get: () => {
        throw new Error("explain touched the manager");
      },
    },
  ) as ManagerApi;
  const code = await runCli(argv, { manager, stdout, stderr, env: {}, interactive: false });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe("error codes", () => {
  it("docs/errors.md has one row per code, with the same meaning and fix as the code", () => {
    const doc = readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8");
    const rows = doc.split("\n").filter((line) => /^\| `[A-Z_]+` \|/.test(line));
    assert.deepEqual(
      rows.map((row) => /^\| `([A-Z_]+)`/.exec(row)![1]),
      CODES,
      "docs/errors.md lists exactly the codes of src/contract/errors.ts, in order",
    );
    for (const code of CODES) {
      assert.ok(
        rows.includes(`| \`${code}\` | ${ERROR_CODES[code]} | ${ERROR_FIXES[code]} |`),
        `${code}'s row is stale`,
      );
    }
  });

  it("pyro explain CODE prints the meaning and the fix, from the code as the error line shows it", async () => {
    for (const spelling of ["WORKSPACE_NOT_RUNNING", "workspace_not_running", "error[WORKSPACE_NOT_RUNNING]:"]) {
      const { code, stdout } = await pyro(["explain", spelling]);
      assert.equal(code, 0, spelling);
      assert.equal(
        stdout,
        `WORKSPACE_NOT_RUNNING: ${ERROR_CODES.WORKSPACE_NOT_RUNNING}\nfix: ${ERROR_FIXES.WORKSPACE_NOT_RUNNING}\n`,
      );
    }
    const json = await pyro(["explain", "FILE_NOT_FOUND", "--json"]);
    assert.deepEqual(JSON.parse(json.stdout), {
      code: "FILE_NOT_FOUND",
      meaning: ERROR_CODES.FILE_NOT_FOUND,
      fix: ERROR_FIXES.FILE_NOT_FOUND,
    });
  });

  it("pyro explain lists every code; an unknown one is a usage error naming it", async () => {
    const all = await pyro(["explain", "--json"]);
    assert.deepEqual(
      (JSON.parse(all.stdout) as { codes: Array<{ code: string }> }).codes.map((c) => c.code),
      CODES,
    );
    const unknown = await pyro(["explain", "NO_SUCH_CODE"]);
    assert.equal(unknown.code, 2);
    assert.match(
      unknown.stderr,
      /^error\[INVALID_ARGUMENT\]: NO_SUCH_CODE is not an error code of pyro; `pyro explain` lists them all/,
    );
  });
});
