// Packages published on the fake internet the way the real registries serve them, so a guest's own
// npm and pip install them through the allowlist: an npm packument and tarball at
// registry.npmjs.org, a PEP 503 simple index at pypi.org whose link points at a wheel on
// files.pythonhosted.org. Each is made here with the host's tar and python3.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { FakeInternet } from "./fake-internet.js";

const run = promisify(execFile);

/** An npm package whose index.js is `source`: its packument at /NAME, its tarball under /NAME/-/. */
export async function publishNpmPackage(
  net: FakeInternet,
  name: string,
  version: string,
  source: string,
): Promise<void> {
  const staging = await mkdtemp(join(tmpdir(), "pyro-test-npm-"));
  try {
    await mkdir(join(staging, "package"));
    await writeFile(join(staging, "package", "package.json"), JSON.stringify({ name, version, main: "index.js" }));
    await writeFile(join(staging, "package", "index.js"), source);
    const file = `${name}-${version}.tgz`;
    await run("tar", ["-czf", file, "package"], { cwd: staging });
    const tarball = await readFile(join(staging, file));
    const root = join(net.dir, "www", "registry.npmjs.org", name);
    await mkdir(join(root, "-"), { recursive: true });
    await writeFile(join(root, "-", file), tarball);
    const packument = {
      name,
      "dist-tags": { latest: version },
      versions: {
        [version]: {
          name,
          version,
          main: "index.js",
          dist: {
            tarball: `https://registry.npmjs.org/${name}/-/${file}`,
            shasum: createHash("sha1").update(tarball).digest("hex"),
            integrity: `sha512-${createHash("sha512").update(tarball).digest("base64")}`,
          },
        },
      },
    };
    await writeFile(join(root, "index"), JSON.stringify(packument));
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

const WHEEL_SCRIPT = `
import base64, hashlib, sys, zipfile
out, module, dist, version, source = sys.argv[1:]
info = f"{module}-{version}.dist-info"
files = {
    f"{module}/__init__.py": source,
    f"{info}/METADATA": f"Metadata-Version: 2.1\\nName: {dist}\\nVersion: {version}\\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\\nGenerator: pyro-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
}
def digest(data):
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
record = "".join(f"{p},sha256={digest(t.encode())},{len(t.encode())}\\n" for p, t in files.items()) + f"{info}/RECORD,,\\n"
with zipfile.ZipFile(out, "w") as z:
    for p, t in files.items():
        z.writestr(p, t)
    z.writestr(f"{info}/RECORD", record)
`;

/** A pure-Python wheel of `module` (distribution name with dashes) listed in pypi.org's simple index. */
export async function publishWheel(net: FakeInternet, module: string, version: string, source: string): Promise<void> {
  const dist = module.replaceAll("_", "-");
  const file = `${module}-${version}-py3-none-any.whl`;
  const packages = join(net.dir, "www", "files.pythonhosted.org", "packages");
  await mkdir(packages, { recursive: true });
  await run("python3", ["-c", WHEEL_SCRIPT, join(packages, file), module, dist, version, source]);
  const sha256 = createHash("sha256")
    .update(await readFile(join(packages, file)))
    .digest("hex");
  const index = join(net.dir, "www", "pypi.org", "simple", dist);
  await mkdir(index, { recursive: true });
  await writeFile(
    join(index, "index"),
    `<!DOCTYPE html><html><body><a href="https://files.pythonhosted.org/packages/${file}#sha256=${sha256}">${file}</a></body></html>\n`,
  );
}
