import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PyroError } from "../../src/contract/errors.js";
import { REDACTED, Redactor } from "../../src/manager/redact.js";

const secret = "s3cr3t-value";
const r = new Redactor([secret, "short"]);

describe("Redactor", () => {
  it("replaces every occurrence, longest secret first", () => {
    assert.equal(r.redact(`a ${secret} b ${secret}`), `a ${REDACTED} b ${REDACTED}`);
    const nested = new Redactor(["abc", "xabcx"]);
    assert.equal(nested.redact("xabcx abc"), `${REDACTED} ${REDACTED}`);
    assert.equal(new Redactor([]).redact(secret), secret);
    assert.equal(new Redactor([""]).redact("anything"), "anything");
  });

  it("redacts the part of a secret that continues a previous piece", () => {
    const first = r.redactPiece("", `out: ${secret.slice(0, 5)}`, { holdBack: true });
    // The start of a secret at the end of a piece is held back for the next read.
    assert.equal(first.text, "out: ");
    assert.equal(first.held, 5);
    const second = r.redactPiece("out: ", `${secret} done`, { holdBack: true });
    assert.equal(second.text, `${REDACTED} done`);
    // Read from a cursor inside the secret: its remainder is redacted using the look-behind.
    const inside = r.redactPiece(`out: ${secret.slice(0, 5)}`, `${secret.slice(5)} done`, { holdBack: false });
    assert.equal(inside.text, `${REDACTED} done`);
  });

  it("holds back nothing when the end cannot start a secret, or when asked not to", () => {
    assert.deepEqual(r.redactPiece("", "prompt$ ", { holdBack: true }), { text: "prompt$ ", held: 0 });
    assert.deepEqual(r.redactPiece("", "tail s3c", { holdBack: false }), { text: "tail s3c", held: 0 });
  });

  it("redacts error messages and keeps their code", () => {
    const err = r.redactError(new PyroError("INVALID_ARGUMENT", `no such dir /workspace/${secret}`)) as PyroError;
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.equal(err.message, `no such dir /workspace/${REDACTED}`);
    assert.equal((r.redactError(new Error(`x ${secret}`)) as Error).message, `x ${REDACTED}`);
  });
});

describe("Redactor.redactDeep", () => {
  it("redacts every string of a result, names and paths included, and keeps workspace_id", () => {
    const r = new Redactor(["s3cret"]);
    const result = {
      workspace_id: "ws-s3cret0000",
      files: [{ path: "dir/s3cret.txt", status: "added", size: 3 }],
      patch: "+s3cret",
      nested: { list: ["a", "xs3cretx"], n: 1, none: null },
    };
    assert.deepEqual(r.redactDeep(result), {
      workspace_id: "ws-s3cret0000",
      files: [{ path: `dir/${REDACTED}.txt`, status: "added", size: 3 }],
      patch: `+${REDACTED}`,
      nested: { list: ["a", `x${REDACTED}x`], n: 1, none: null },
    });
  });

  it("returns the very value when there are no secrets", () => {
    const value = { path: "a" };
    assert.equal(new Redactor([]).redactDeep(value), value);
  });
});
