// A "fake internet" for the allowlist tests: a network namespace on a veth link from the host,
// holding HTTP (80) and HTTPS (443) servers that answer for several names with a certificate made
// here, and a git repository served over dumb HTTP. A hosts file maps the names to its address;
// the gateway reads it through PYRO_EGRESS_HOSTS. Nothing leaves the machine.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type RunningServer, VETH_PREFIX, waitForPort } from "./netns.js";

const run = promisify(execFile);

export const FAKE_NET_PREFIX = "pyro-test-fakenet-";

/** Answers "hello from HOST PATH" over HTTP and HTTPS; /repo.git/* comes from the bare repository. */
const SERVER_SOURCE = `
const http = require("node:http"), https = require("node:https"), fs = require("node:fs"), path = require("node:path");
const [dir, address] = process.argv.slice(1);
const handler = (req, res) => {
  if (req.url.startsWith("/repo.git/")) {
    const file = path.join(dir, "repo.git", path.normalize(req.url.slice(10).split("?")[0]));
    fs.readFile(file, (err, data) => { if (err) { res.statusCode = 404; res.end(); } else res.end(data); });
    return;
  }
  fs.appendFileSync(path.join(dir, "requests.log"), JSON.stringify({ host: req.headers.host, url: req.url, authorization: req.headers.authorization ?? null }) + "\\n");
  res.end("hello from " + req.headers.host + " " + req.url + (req.headers.authorization ? " auth=" + req.headers.authorization : "") + "\\n");
};
http.createServer(handler).listen(80, address);
const tls = https.createServer({ key: fs.readFileSync(path.join(dir, "key.pem")), cert: fs.readFileSync(path.join(dir, "cert.pem")) }, handler);
tls.listen(443, address, () => console.log(JSON.stringify({ port: 443 })));
`;

export interface FakeInternet {
  /** Where the servers listen (a public-looking TEST-NET-2 address). */
  address: string;
  /** The host's end of the link: one of the host's own addresses. */
  hostAddress: string;
  hostsFile: string;
  /** The CA that signed the servers' certificate (PEM). */
  caFile: string;
  /** One JSON line per request the servers answered: host, url, authorization. */
  requestsFile: string;
  names: string[];
  teardown(): Promise<void>;
}

async function git(cwd: string, args: string[]): Promise<void> {
  await run("git", ["-c", "user.name=pyro", "-c", "user.email=pyro@test", "-c", "init.defaultBranch=main", ...args], {
    cwd,
  });
}

/** `names` answer at the fake internet; `extra` lines go into the hosts file as they are. */
export async function createFakeInternet(names: string[], extra: string[] = []): Promise<FakeInternet> {
  const tag = randomBytes(3).toString("hex");
  const nsName = `${FAKE_NET_PREFIX}${tag}`;
  const vethHost = `${VETH_PREFIX}${tag}`;
  const octet = 4 * (randomBytes(1)[0]! % 60);
  const hostAddress = `198.51.100.${octet + 1}`;
  const address = `198.51.100.${octet + 2}`;
  const dir = await mkdtemp(join(tmpdir(), "pyro-test-fakenet-"));
  let server: RunningServer | undefined;
  const ip = (args: string[]) => run("ip", args, { timeout: 5_000 });
  const teardown = async () => {
    await server?.stop();
    await ip(["netns", "delete", nsName]).catch(() => {});
    await ip(["link", "delete", vethHost]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };
  try {
    // A CA of its own signs the servers' certificate: a guest trusts it only when told to (ca_files).
    const openssl = (args: string[]) => run("openssl", args, { cwd: dir });
    await openssl(
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem"].concat([
        "-days",
        "2",
        "-subj",
        "/CN=pyro fake internet CA",
      ]),
    );
    await openssl([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "key.pem",
      "-out",
      "server.csr",
      "-subj",
      `/CN=${names[0]}`,
    ]);
    await writeFile(join(dir, "san.ext"), `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}\n`);
    await openssl(
      ["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial"].concat([
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
      ]),
    );
    const work = join(dir, "work");
    await mkdir(work);
    await git(work, ["init", "-q"]);
    await writeFile(join(work, "README.md"), "fetched through the allowlist\n");
    await git(work, ["add", "."]);
    await git(work, ["commit", "-q", "-m", "first"]);
    await git(dir, ["clone", "-q", "--bare", work, "repo.git"]);
    await git(join(dir, "repo.git"), ["update-server-info"]);
    await ip(["netns", "add", nsName]);
    await ip(["link", "add", vethHost, "type", "veth", "peer", "name", `${vethHost}n`]);
    await ip(["link", "set", `${vethHost}n`, "netns", nsName]);
    await ip(["addr", "add", `${hostAddress}/30`, "dev", vethHost]);
    await ip(["link", "set", vethHost, "up"]);
    await ip(["-n", nsName, "addr", "add", `${address}/30`, "dev", `${vethHost}n`]);
    await ip(["-n", nsName, "link", "set", `${vethHost}n`, "up"]);
    await ip(["-n", nsName, "link", "set", "lo", "up"]);
    const child = spawn(
      "nsenter",
      [`--net=/run/netns/${nsName}`, "--", process.execPath, "-e", SERVER_SOURCE, dir, address],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    server = await waitForPort(child, "the fake internet");
    const hostsFile = join(dir, "hosts");
    await writeFile(hostsFile, [`${address} ${names.join(" ")}`, ...extra, ""].join("\n"));
    return {
      address,
      hostAddress,
      hostsFile,
      caFile: join(dir, "ca.pem"),
      requestsFile: join(dir, "requests.log"),
      names,
      teardown,
    };
  } catch (err) {
    await teardown();
    throw err;
  }
}
