import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { renderPlain } from "../../src/manager/screen.js";

const render = (history: string, output: string, cols = 80, rows = 24) =>
  renderPlain(Buffer.from(history), Buffer.from(output), cols, rows);

describe("renderPlain", () => {
  it("drops colours and escape sequences", async () => {
    const text = await render("", "\x1b[1;31mred\x1b[0m\r\nline1\r\nline2\r\nline3\r\n");
    assert.equal(text, "red\nline1\nline2\nline3");
    assert.ok(!text.includes("\x1b"));
  });

  it("applies carriage-return overwrites, backspaces and erases", async () => {
    assert.equal(await render("", "abc\rX"), "Xbc");
    assert.equal(await render("", "abc\b\bZ"), "aZc");
    assert.equal(await render("", "progress 10%\r\x1b[Kdone"), "done");
  });

  it("returns only what the output adds after the history", async () => {
    const text = await render("$ echo one\r\none\r\n$ ", "echo two\r\ntwo\r\n$ ");
    assert.equal(text, "$ echo two\ntwo\n$");
  });

  it("returns nothing for no output", async () => {
    assert.equal(await render("$ ls\r\nfile\r\n", ""), "");
  });

  it("joins lines the terminal wrapped", async () => {
    // The blank that ends the first row is part of the text, not trailing space.
    const long = `${"x".repeat(19)} ${"y".repeat(10)}`;
    assert.equal(await render("", `${long}\r\nnext\r\n`, 20), `${long}\nnext`);
  });

  it("renders the screen of a full-screen program on the alternate buffer", async () => {
    const draw =
      "\x1b[?1049h\x1b[2J\x1b[H" + // alternate buffer, clear, home
      "\x1b[1;1Htop-left\x1b[3;5H\x1b[7mmiddle\x1b[0m\x1b[5;1H~\x1b[6;1H~";
    assert.equal(await render("$ vi notes\r\n", draw, 40, 8), "top-left\n\n    middle\n\n~\n~");
  });

  it("returns to the shell's lines once the full-screen program leaves", async () => {
    const text = await render("$ ", "less f\r\n\x1b[?1049hpage\x1b[?1049l\r$ done\r\n");
    assert.equal(text, "$ less f\n$ done");
  });
});
