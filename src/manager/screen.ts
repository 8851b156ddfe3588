// Owns rendering terminal output as plain text, as a person would see it: a headless terminal
// replays the bytes, so colours, cursor movement, carriage-return overwrites, backspaces and erases
// take effect and no escape sequence survives. History (bytes already read) sets the terminal's
// state; only what the output adds is returned.
import xtermHeadless, { type IBuffer, type Terminal as XTerm } from "@xterm/headless";

// The package is CommonJS: under Node's ESM loader its exports arrive on the default export only.
const { Terminal } = xtermHeadless;

const SCROLLBACK_LINES = 10_000;

function write(term: XTerm, data: Uint8Array): Promise<void> {
  return new Promise((resolve) => term.write(data, resolve));
}

/** Lines [from, to) of a buffer, a wrapped line joined to the one it continues, trailing empty lines dropped. */
function linesOf(buffer: IBuffer, from: number, to: number): string {
  const lines: string[] = [];
  for (let y = from; y < to; y++) {
    const line = buffer.getLine(y);
    if (!line) continue;
    // Keep a line's trailing blanks when the next line continues it: they are part of the text.
    const continued = buffer.getLine(y + 1)?.isWrapped ?? false;
    const text = continued ? line.translateToString(false) : line.translateToString(true).replace(/ +$/, "");
    if (line.isWrapped && lines.length > 0) lines[lines.length - 1] += text;
    else lines.push(text);
  }
  while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  return lines.join("\n");
}

/** The text `output` puts on a cols x rows terminal after `history`: from the line the cursor was on
 * when the output began, or the whole screen when a full-screen program (vi, less) has it. */
export async function renderPlain(history: Buffer, output: Buffer, cols: number, rows: number): Promise<string> {
  if (output.length === 0) return "";
  const term = new Terminal({ cols, rows, scrollback: SCROLLBACK_LINES, allowProposedApi: true });
  try {
    await write(term, history);
    const normal = term.buffer.normal;
    // A marker follows its line when old lines leave the scrollback; it only marks the active buffer.
    const marker = term.buffer.active.type === "normal" ? term.registerMarker(0) : undefined;
    const noted = normal.baseY + normal.cursorY;
    await write(term, output);
    const active = term.buffer.active;
    if (active.type === "alternate") return linesOf(active, active.viewportY, active.viewportY + rows);
    const start = marker ? Math.max(0, marker.line) : noted;
    return linesOf(normal, start, normal.length);
  } finally {
    term.dispose();
  }
}
