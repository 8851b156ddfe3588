// Owns the in-memory linked pair of byte streams that unit tests run the channel, agent and
// supervisor over (the MCP SDK's InMemoryTransport idea, one layer lower).
import { Duplex } from "node:stream";

export function memoryDuplexPair(): [Duplex, Duplex] {
  let a!: Duplex;
  let b!: Duplex;
  const make = (peer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}
