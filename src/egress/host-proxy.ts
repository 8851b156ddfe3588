// Owns the host's explicit proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), for hosts whose only way out
// is one, as in many companies. `host_proxy` reads it from pyro's environment at create. Under the
// egress policies the guest's processes get the same variables; under allowlist the guest gets none
// (the gateway is its way out) and the gateway opens its upstream connections through the proxy
// with CONNECT instead of dialing them itself.
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { PyroError } from "../contract/errors.js";

/** The proxy settings a workspace keeps (its record), as the host's variables gave them. */
export interface HostProxy {
  https?: string;
  http?: string;
  no_proxy?: string;
}

const CONNECT_TIMEOUT_MS = 10_000;
/** The proxy's answer to CONNECT must end its head within this many bytes. */
const MAX_ANSWER_BYTES = 16 * 1024;

function proxyUrl(value: string, variable: string): URL {
  let url: URL;
  try {
    url = new URL(value.includes("://") ? value : `http://${value}`);
  } catch {
    throw new PyroError("INVALID_ARGUMENT", `host_proxy: ${variable} is not a proxy URL (${JSON.stringify(value)})`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `host_proxy: ${variable} is a ${url.protocol.slice(0, -1)} proxy; pyro hands on http:// and https:// proxies only`,
    );
  }
  return url;
}

/** The host's proxy variables (upper case first, as curl reads them), checked. */
export function readHostProxy(env: NodeJS.ProcessEnv = process.env): HostProxy {
  const pick = (name: string): [string, string] | undefined => {
    for (const variable of [name.toUpperCase(), name]) {
      const value = env[variable]?.trim();
      if (value) return [variable, value];
    }
    return undefined;
  };
  const https = pick("https_proxy");
  const http = pick("http_proxy");
  const noProxy = pick("no_proxy");
  if (!https && !http) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      "host_proxy: pyro's environment has no HTTPS_PROXY or HTTP_PROXY (upper or lower case); set them where pyro runs, or leave host_proxy off",
    );
  }
  for (const found of [https, http]) if (found) proxyUrl(found[1], found[0]);
  return {
    ...(https ? { https: https[1] } : {}),
    ...(http ? { http: http[1] } : {}),
    ...(noProxy ? { no_proxy: noProxy[1] } : {}),
  };
}

/** The settings as status shows them: a password in a proxy URL becomes ***. */
export function maskedHostProxy(proxy: HostProxy): HostProxy {
  const mask = (value: string) => {
    try {
      const url = new URL(value.includes("://") ? value : `http://${value}`);
      if (!url.password) return value;
      url.password = "***";
      return url.toString();
    } catch {
      return value;
    }
  };
  return {
    ...(proxy.https ? { https: mask(proxy.https) } : {}),
    ...(proxy.http ? { http: mask(proxy.http) } : {}),
    ...(proxy.no_proxy ? { no_proxy: proxy.no_proxy } : {}),
  };
}

/** True when the proxy is on the host's loopback, which a sandbox under egress cannot reach. */
export function onLoopback(proxy: HostProxy): string | undefined {
  for (const value of [proxy.https, proxy.http]) {
    if (!value) continue;
    const host = proxyUrl(value, "the proxy").hostname.replace(/^\[|\]$/g, "");
    if (host === "localhost" || host === "::1" || /^127\./.test(host)) return value;
  }
  return undefined;
}

/** The variables a guest process gets under the egress policies, in both cases. */
export function proxyEnvironment(proxy: HostProxy): Record<string, string> {
  const env: Record<string, string> = {};
  const set = (name: string, value: string | undefined) => {
    if (value === undefined) return;
    env[name] = value;
    env[name.toUpperCase()] = value;
  };
  set("https_proxy", proxy.https);
  set("http_proxy", proxy.http);
  set("no_proxy", proxy.no_proxy);
  return env;
}

/** NO_PROXY's rule for one name: `*` matches all, an entry matches itself and its subdomains. */
function bypassed(noProxy: string | undefined, name: string): boolean {
  for (const raw of (noProxy ?? "").split(",")) {
    const entry = raw
      .trim()
      .toLowerCase()
      .replace(/^\*?\./, "");
    if (!entry) continue;
    if (entry === "*" || name === entry || name.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** The gateway's way upstream through the host's proxy. */
export class UpstreamProxy {
  private readonly url: URL;

  constructor(private readonly proxy: HostProxy) {
    const value = proxy.https ?? proxy.http!;
    this.url = proxyUrl(value, "the proxy");
  }

  /** The proxy's host:port, for the network log (never its credentials). */
  get address(): string {
    return `${this.url.hostname}:${this.url.port || (this.url.protocol === "https:" ? 443 : 80)}`;
  }

  /** Whether connections to `name` go through the proxy (NO_PROXY names are dialed directly). */
  covers(name: string): boolean {
    return !bypassed(this.proxy.no_proxy, name);
  }

  /** A tunnel to name:port through the proxy (CONNECT), ready for the guest's bytes. */
  connect(name: string, port: number): Promise<Socket> {
    const { url } = this;
    const proxyPort = Number(url.port || (url.protocol === "https:" ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const socket: Socket =
      url.protocol === "https:"
        ? tlsConnect({ host, port: proxyPort, servername: host })
        : netConnect({ host, port: proxyPort });
    socket.setNoDelay(true);
    const auth = url.username
      ? `Proxy-Authorization: Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}\r\n`
      : "";
    return new Promise((resolve, reject) => {
      let answer = Buffer.alloc(0);
      const fail = (why: string) => {
        clearTimeout(timer);
        socket.destroy();
        reject(new Error(`the host's proxy ${this.address} ${why}`));
      };
      const timer = setTimeout(
        () => fail(`did not answer CONNECT within ${CONNECT_TIMEOUT_MS} ms`),
        CONNECT_TIMEOUT_MS,
      );
      const onData = (chunk: Buffer) => {
        answer = Buffer.concat([answer, chunk]);
        const end = answer.indexOf("\r\n\r\n");
        if (end < 0) {
          if (answer.length > MAX_ANSWER_BYTES)
            fail(`answered CONNECT with more than ${MAX_ANSWER_BYTES} bytes of head`);
          return;
        }
        socket.off("data", onData);
        socket.off("error", onError);
        const status = answer.subarray(0, answer.indexOf("\r\n")).toString("latin1");
        if (!/^HTTP\/1\.[01] 2\d\d /.test(`${status} `)) return fail(`refused CONNECT ${name}:${port}: ${status}`);
        clearTimeout(timer);
        socket.pause();
        const rest = answer.subarray(end + 4);
        if (rest.length > 0) socket.unshift(rest);
        resolve(socket);
      };
      const onError = (err: NodeJS.ErrnoException) => fail(`could not be reached (${err.code ?? err.message})`);
      socket.on("data", onData);
      socket.once("error", onError);
      socket.once(url.protocol === "https:" ? "secureConnect" : "connect", () =>
        socket.write(`CONNECT ${name}:${port} HTTP/1.1\r\nHost: ${name}:${port}\r\n${auth}\r\n`),
      );
    });
  }
}

/** The settings a new workspace keeps when create asks for host_proxy under `policy`; checked. */
export function hostProxyAtCreate(policy: string, env: NodeJS.ProcessEnv = process.env): HostProxy {
  if (policy === "off") {
    throw new PyroError(
      "INVALID_ARGUMENT",
      "host_proxy needs a network: add --network-policy egress, egress+published-ports or allowlist",
    );
  }
  const proxy = readHostProxy(env);
  const loopback = policy === "allowlist" ? undefined : onLoopback(proxy);
  if (loopback) {
    throw new PyroError(
      "INVALID_ARGUMENT",
      `host_proxy: the host's proxy ${maskedHostProxy({ https: loopback }).https} is on its loopback, which a sandbox under ${policy} cannot reach; use the proxy's address on the host's network, or network policy allowlist (its gateway runs on the host)`,
    );
  }
  return proxy;
}
