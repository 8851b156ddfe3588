// The helper `openInNamespace` runs inside a sandbox's network namespace (under nsenter): it binds
// the sockets it is asked for there and hands each one to its parent over the IPC channel, then
// exits. The parent then accepts on them from outside the namespace; nothing of pyro keeps running
// inside it. Argument: the JSON of a ListenRequest.
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server } from "node:net";
import type { ListenRequest, ListenSpec } from "./listen.js";

function bind(spec: ListenSpec): Promise<Server | UdpSocket> {
  return new Promise((resolve, reject) => {
    if (spec.proto === "tcp") {
      const server = createServer();
      server.once("error", reject);
      server.listen({ host: spec.address, port: spec.port, backlog: 511 }, () => resolve(server));
      return;
    }
    const socket = createSocket({ type: "udp4", reuseAddr: true });
    socket.once("error", reject);
    socket.bind({ address: spec.address, port: spec.port }, () => resolve(socket));
  });
}

function send(message: unknown, handle?: Server | UdpSocket): Promise<void> {
  return new Promise((resolve, reject) =>
    process.send!(message, handle as Server, (err: Error | null) => (err ? reject(err) : resolve())),
  );
}

const request = JSON.parse(process.argv[2] ?? "{}") as ListenRequest;
try {
  for (const [index, spec] of request.specs.entries()) {
    const handle = await bind(spec);
    await send({ index }, handle);
    if ("close" in handle) handle.close();
  }
  await send({ done: true });
} catch (err) {
  await send({ error: (err as Error).message }).catch(() => {});
}
process.disconnect();
