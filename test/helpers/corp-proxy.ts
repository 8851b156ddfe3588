// A company's explicit proxy for the host_proxy tests: CONNECT-only, on the host's end of the fake
// internet's link, and the only thing that knows where the fake internet's names are (it sends
// every CONNECT to the fake internet's address), so a name the host cannot resolve works only
// through it. Each CONNECT line it is asked is kept, in order.
import { connect, createServer, type Socket } from "node:net";
import type { FakeInternet } from "./fake-internet.js";

export interface CorpProxy {
  url: string;
  /** The CONNECT request lines it was sent. */
  connects: string[];
  close(): Promise<void>;
}

export async function startCorpProxy(net: FakeInternet): Promise<CorpProxy> {
  const connects: string[] = [];
  const open = new Set<Socket>();
  const server = createServer((client) => {
    open.add(client);
    client.on("close", () => open.delete(client));
    client.on("error", () => {});
    client.once("data", (head: Buffer) => {
      const line = head.toString("latin1").split("\r\n")[0] ?? "";
      connects.push(line);
      const target = /^CONNECT [^ :]+:(\d+) HTTP\/1\.[01]$/.exec(line);
      if (!target) return client.end("HTTP/1.1 405 Method Not Allowed\r\n\r\n");
      const upstream = connect(Number(target[1]), net.address, () => {
        client.write("HTTP/1.1 200 Connection established\r\n\r\n");
        client.pipe(upstream);
        upstream.pipe(client);
      });
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, net.hostAddress, resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://${net.hostAddress}:${port}`,
    connects,
    close: () =>
      new Promise((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
