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
        // Completing on a later turn gives the pair a pipe's backpressure, not an infinite sink.
        setImmediate(cb);
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        // Like a socket: when one end goes away the other sees end-of-stream.
        const other = peer();
        if (!other.destroyed) other.push(null);
        cb(err);
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}
