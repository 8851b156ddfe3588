// A "fake internet" for the allowlist tests: a network namespace on a veth link from the host,
// holding HTTP (80) and HTTPS (443) servers that answer for several names with a certificate made
// here, a git repository served over dumb HTTP, and a DNS server (53/udp) answering its names with
// its address, as a resolver one hop away would. A hosts file maps the names to its address; the
// gateway reads it through PYRO_EGRESS_HOSTS. Nothing leaves the machine.
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type RunningServer, VETH_PREFIX, waitForPort } from "./netns.js";

const run = promisify(execFile);

export const FAKE_NET_PREFIX = "pyro-test-fakenet-";

/** Answers "hello from HOST PATH" over HTTP and HTTPS, unless www/HOST/PATH is a file (or a
 * directory holding a file named "index"): then that file. /repo.git/* comes from the bare repository. */
const SERVER_SOURCE = `
const http = require("node:http"), https = require("node:https"), fs = require("node:fs"), path = require("node:path");
const [dir, address, dnsPacketPath, namesJson] = process.argv.slice(1);
const dnsPacket = require(dnsPacketPath), names = JSON.parse(namesJson);
const dns = require("node:dgram").createSocket("udp4");
dns.on("message", (message, remote) => {
  let query;
  try { query = dnsPacket.decode(message); } catch { return; }
  const question = (query.questions ?? [])[0];
  if (!question) return;
  const known = names.includes(question.name.toLowerCase());
  const answers = known && question.type === "A" ? [{ type: "A", name: question.name, ttl: 5, data: address }] : [];
  dns.send(dnsPacket.encode({ id: query.id, type: "response", flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3), questions: [question], answers }), remote.port, remote.address);
});
dns.bind(53, address);
const handler = (req, res) => {
  // An origin server must accept a request's target in absolute form too (RFC 9112 3.2.2), as a
  // proxy relays it.
  const pathname = decodeURIComponent(new URL(req.url, "http://origin").pathname);
  if (pathname.startsWith("/repo.git/")) {
    const file = path.join(dir, "repo.git", path.normalize(pathname.slice(10)));
    fs.readFile(file, (err, data) => { if (err) { res.statusCode = 404; res.end(); } else res.end(data); });
    return;
  }
  fs.appendFileSync(path.join(dir, "requests.log"), JSON.stringify({ host: req.headers.host, url: req.url, authorization: req.headers.authorization ?? null }) + "\\n");
  let file = path.join(dir, "www", String(req.headers.host).replace(/[:/].*/, ""), path.normalize(pathname));
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, "index");
  if (fs.existsSync(file) && fs.statSync(file).isFile()) {
    const body = fs.readFileSync(file);
    res.setHeader("Content-Type", body[0] === 0x3c ? "text/html" : body[0] === 0x7b ? "application/json" : "application/octet-stream");
    return res.end(body);
  }
  res.end("hello from " + req.headers.host + " " + req.url + (req.headers.authorization ? " auth=" + req.headers.authorization : "") + "\\n");
};
http.createServer(handler).listen(80, address);
const tls = https.createServer({ key: fs.readFileSync(path.join(dir, "key.pem")), cert: fs.readFileSync(path.join(dir, "cert.pem")) }, handler);
tls.listen(443, address, () => console.log(JSON.stringify({ port: 443 })));
`;

export interface FakeInternet {
  /** The servers' working directory: files under www/HOST/ are served as they are. */
  dir: string;
  /** Where the servers listen (a public-looking TEST-NET-2 address), the DNS server (53/udp) too. */
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
      [
        `--net=/run/netns/${nsName}`,
        "--",
        process.execPath,
        "-e",
        SERVER_SOURCE,
        dir,
        address,
        createRequire(import.meta.url).resolve("dns-packet"),
        JSON.stringify(names),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    server = await waitForPort(child, "the fake internet");
    const hostsFile = join(dir, "hosts");
    await writeFile(hostsFile, [`${address} ${names.join(" ")}`, ...extra, ""].join("\n"));
    return {
      dir,
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
