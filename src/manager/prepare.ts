// Owns `pyro prepare`: warming the daily loop of an environment (built, agent current, and one
// workspace created, used, reset and deleted, so every cache on the way is hot), the record of
// having done so, and the verdict `pyro doctor --environment` gives: warm, cold or stale.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { parseParams } from "../contract/parse.js";
import type { DailyLoop, EnvironmentInspect, PrepareResult } from "../contract/schemas.js";
import { ResetParams, WorkspaceCreateParams, WorkspaceExecParams } from "../contract/workspace.js";
import { PYRO_VERSION } from "../version.js";
import type { ProgressReporter } from "./progress.js";
import type { WorkspaceOperations } from "./workspace-api.js";

const PreparedRecord = z.object({
  environment: z.string(),
  rootfs_digest: z.string(),
  agent_digest: z.string(),
  pyro_version: z.string(),
  prepared_at: z.string(),
});
type PreparedRecord = z.infer<typeof PreparedRecord>;

function recordPath(stateDir: string, environment: string): string {
  return join(stateDir, "prepared", `${environment.replaceAll(/[^A-Za-z0-9._-]/g, "_")}.json`);
}

async function readRecord(stateDir: string, environment: string): Promise<PreparedRecord | undefined> {
  try {
    return PreparedRecord.parse(JSON.parse(await readFile(recordPath(stateDir, environment), "utf8")));
  } catch {
    return undefined;
  }
}

/** Warm when the last prepare used this very environment build, agent and pyro. */
export async function dailyLoopState(stateDir: string, env: EnvironmentInspect): Promise<DailyLoop> {
  const record = await readRecord(stateDir, env.name);
  const base = { environment: env.name, prepared_at: record?.prepared_at ?? null };
  if (!env.installed || !env.manifest) {
    return { ...base, state: "cold", detail: `${env.name} is not installed; run pyro prepare ${env.name}` };
  }
  if (!record) return { ...base, state: "cold", detail: `never prepared; run pyro prepare ${env.name}` };
  const changed = [
    record.rootfs_digest !== env.manifest.rootfs_digest && "the environment was rebuilt",
    (record.agent_digest !== env.manifest.agent_digest || !env.agent_current) && "the agent changed",
    record.pyro_version !== PYRO_VERSION && `pyro is now ${PYRO_VERSION} (was ${record.pyro_version})`,
  ].filter((c): c is string => typeof c === "string");
  if (changed.length > 0) {
    return {
      ...base,
      state: "stale",
      detail: `${changed.join("; ")} since ${record.prepared_at}; run pyro prepare ${env.name}`,
    };
  }
  return { ...base, state: "warm", detail: `prepared ${record.prepared_at}` };
}

export interface PrepareDeps {
  stateDir: string;
  workspaces: Pick<WorkspaceOperations, "create" | "exec" | "reset" | "delete">;
  inspect: (name: string) => Promise<EnvironmentInspect>;
}

/** Runs the daily loop once: create, exec, reset, delete (on an environment the manager has already
 * built, so that no bound on builds applies here), timing each step, then records the build it warmed. */
export async function prepare(
  deps: PrepareDeps,
  environment: string,
  progress?: ProgressReporter,
): Promise<PrepareResult> {
  const steps: PrepareResult["steps"] = [];
  const started = Date.now();
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    progress?.phase(name, environment);
    const t0 = Date.now();
    const value = await fn();
    steps.push({ step: name, duration_ms: Date.now() - t0 });
    return value;
  };
  // The daily loop's own requests, with the contract's defaults filled in as a face would.
  const request = <S extends z.ZodType>(schema: S, params: z.input<S>) => parseParams(schema, params, "prepare");
  const info = await step("create", () =>
    deps.workspaces.create(request(WorkspaceCreateParams, { environment, ttl_seconds: 0 }), { progress }),
  );
  const workspace = info.workspace_id;
  try {
    await step("exec", () =>
      deps.workspaces.exec(request(WorkspaceExecParams, { workspace, command: ["git", "--version"] })),
    );
    await step("reset", () => deps.workspaces.reset(request(ResetParams, { workspace })));
  } finally {
    await step("delete", () => deps.workspaces.delete({ workspace }));
  }
  const env = await deps.inspect(environment);
  if (env.manifest) {
    const record: PreparedRecord = {
      environment,
      rootfs_digest: env.manifest.rootfs_digest,
      agent_digest: env.manifest.agent_digest,
      pyro_version: PYRO_VERSION,
      prepared_at: new Date().toISOString(),
    };
    await mkdir(join(deps.stateDir, "prepared"), { recursive: true });
    await writeFile(recordPath(deps.stateDir, environment), `${JSON.stringify(record, null, 2)}\n`);
  }
  return {
    environment,
    engine: info.engine,
    steps,
    total_ms: Date.now() - started,
    daily_loop: await dailyLoopState(deps.stateDir, env),
  };
}
