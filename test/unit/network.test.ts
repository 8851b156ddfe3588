// Unit tests for the pure parts of the gvisor sandbox network: slirp4netns argv, the JSON API's
// request encoding and reply decoding, naming and validation. No namespaces, no processes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { PyroError } from "../../src/contract/errors.js";
import {
  addHostfwdId,
  addHostfwdRequest,
  createSandboxNetwork,
  decodeSlirpReply,
  encodeSlirpRequest,
  networkFiles,
  nsenterPrefix,
  portInUseError,
  removeHostfwdRequest,
  slirp4netnsArgs,
} from "../../src/engines/network.js";

test("networkFiles names the namespace, its path and the files in the run directory", () => {
  assert.deepEqual(networkFiles("ab12", "/state/sandboxes/ab12"), {
    nsName: "pyro-ab12",
    nsPath: "/run/netns/pyro-ab12",
    apiSocket: "/state/sandboxes/ab12/slirp.sock",
    pidFile: "/state/sandboxes/ab12/slirp.pid",
  });
});

test("networkFiles refuses ids that could escape a path or a name", () => {
  for (const id of ["", "../x", "a/b", "a b", ".hidden", "-flag", "x".repeat(65), "ü"]) {
    assert.throws(
      () => networkFiles(id, "/run"),
      (err: unknown) => {
        assert.ok(err instanceof PyroError);
        assert.equal(err.code, "INVALID_ARGUMENT");
        assert.match(err.message, /cannot name a network namespace/);
        return true;
      },
    );
  }
  assert.equal(networkFiles("x".repeat(64), "/r").nsName, `pyro-${"x".repeat(64)}`);
  assert.equal(networkFiles("ws_1.a-b", "/r").nsName, "pyro-ws_1.a-b");
});

test("slirp4netns is told to configure tap0, keep off the host loopback, filter syscalls, and use fds 3 and 4", () => {
  const args = slirp4netnsArgs("/run/netns/pyro-a", "/s/slirp.sock");
  // --enable-sandbox would detach every network namespace on the host (see network.ts).
  assert.ok(!args.includes("--enable-sandbox"));
  assert.deepEqual(args, [
    "--configure",
    "--mtu=65520",
    "--disable-host-loopback",
    "--enable-seccomp",
    "--netns-type=path",
    "--api-socket",
    "/s/slirp.sock",
    "--ready-fd=3",
    "--exit-fd=4",
    "/run/netns/pyro-a",
    "tap0",
  ]);
});

test("nsenterPrefix joins only the network namespace, never via ip netns exec", () => {
  assert.deepEqual(nsenterPrefix({ nsPath: "/run/netns/pyro-a" }), ["nsenter", "--net=/run/netns/pyro-a", "--"]);
});

test("add_hostfwd requests bind 127.0.0.1 only and target slirp's guest address", () => {
  assert.equal(
    encodeSlirpRequest(addHostfwdRequest(8080, 8000)),
    '{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":8080,' +
      '"guest_addr":"10.0.2.100","guest_port":8000}}',
  );
  assert.equal(encodeSlirpRequest(removeHostfwdRequest(3)), '{"execute":"remove_hostfwd","arguments":{"id":3}}');
});

test("decodeSlirpReply separates results, slirp's refusals and unreadable replies", () => {
  assert.deepEqual(decodeSlirpReply("add_hostfwd", '{"return":{"id":7}}'), { ok: true, value: { id: 7 } });
  assert.deepEqual(decodeSlirpReply("remove_hostfwd", '{"return":{}}'), { ok: true, value: {} });
  assert.deepEqual(
    decodeSlirpReply("add_hostfwd", '{"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}}'),
    {
      ok: false,
      desc: "bad request: add_hostfwd: slirp_add_hostfwd failed",
    },
  );
  // slirp4netns 1.2.0 answers list_hostfwd without the "return" wrapper.
  assert.deepEqual(decodeSlirpReply("list_hostfwd", '{"entries":[]}'), { ok: true, value: { entries: [] } });
  for (const bad of ["", "not json", "[]", '{"return":5}', '{"error":"x"}']) {
    assert.throws(
      () => decodeSlirpReply("add_hostfwd", bad),
      (err: unknown) => {
        assert.ok(err instanceof PyroError);
        assert.equal(err.code, "INTERNAL");
        assert.match(err.message, /slirp4netns answered add_hostfwd/);
        return true;
      },
    );
  }
});

test("addHostfwdId needs a numeric forward id", () => {
  assert.equal(addHostfwdId({ id: 0 }), 0);
  assert.equal(addHostfwdId({ id: 12 }), 12);
  assert.throws(() => addHostfwdId({}), { code: "INTERNAL" });
  assert.throws(() => addHostfwdId({ id: "1" }), { code: "INTERNAL" });
});

test("a taken host port is reported with the option to change", () => {
  const err = portInUseError(8080);
  assert.equal(err.code, "PORT_UNAVAILABLE");
  assert.equal(
    err.message,
    "host port 8080 is already in use on 127.0.0.1; choose another --publish host port or omit it",
  );
});

test("a run directory too deep for a Unix socket path is refused before anything is created", async () => {
  await assert.rejects(createSandboxNetwork("a", `/${"d".repeat(120)}`), (err: unknown) => {
    assert.ok(err instanceof PyroError);
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.match(err.message, /longer than 107 bytes; use a shorter PYRO_STATE_DIR/);
    return true;
  });
});
