// Owns how a test stands in for a face: the manager takes parsed requests only, so a test that
// calls it directly parses each request with the same table the faces use (contract/requests.ts),
// and a bad one is refused as INVALID_ARGUMENT the way the SDK refuses it.
import type { z } from "zod";
import { SERVICE_REQUESTS, SHELL_REQUESTS, WORKSPACE_REQUESTS } from "../../src/contract/requests.js";
import { RunParams } from "../../src/contract/schemas.js";
import type { Manager } from "../../src/manager/manager.js";
import { parseOrThrow } from "../../src/sdk/validate.js";

type Table = Record<string, z.ZodType>;

/** `target` with each operation the table names taking the request as a caller writes it. */
export type Parsing<T, R extends Table> = {
  [K in keyof T]: K extends keyof R
    ? T[K] extends (request: never, ...rest: infer A) => infer O
      ? (request: z.input<R[K]>, ...rest: A) => O
      : T[K]
    : T[K];
};

export function parsing<T extends object, R extends Table>(target: T, table: R): Parsing<T, R> {
  return new Proxy(target, {
    get(obj, name, receiver) {
      const value = Reflect.get(obj, name, receiver);
      if (typeof value !== "function") return value;
      const schema = typeof name === "string" && Object.hasOwn(table, name) ? table[name] : undefined;
      if (!schema) return value.bind(obj);
      // Async, as the operation is: a refused request is a rejection, not a throw at the call.
      return async (request: unknown, ...rest: unknown[]) =>
        value.call(obj, parseOrThrow(schema, request, String(name)), ...rest);
    },
  }) as unknown as Parsing<T, R>;
}

/** The manager's run and its workspace, shell and service operations, each parsing its request first. */
export function faces(manager: Manager) {
  return {
    run: async (request: RunParams, opts?: Parameters<Manager["run"]>[1]) =>
      manager.run(parseOrThrow(RunParams, request, "run"), opts),
    workspaces: parsing(manager.workspaces, WORKSPACE_REQUESTS),
    shells: parsing(manager.shells, SHELL_REQUESTS),
    services: parsing(manager.services, SERVICE_REQUESTS),
  };
}
