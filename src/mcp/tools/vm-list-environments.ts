// Owns the `vm_list_environments` tool: the environment catalog.
import { z } from "zod";
import { EnvironmentList } from "../../contract/schemas.js";
import { defineTool } from "../tool.js";

export const vmListEnvironments = defineTool({
  name: "vm_list_environments",
  title: "List sandbox environments",
  description: [
    "List the environments a sandbox can start from (the `environment` argument of vm_run), such as",
    "debian:12, debian:12-base and debian:12-build, each with a description, its package list and",
    "whether it is installed locally. An environment that is not installed is built on first use, which",
    "makes that first call slower. Use it to pick an environment with the tools a task needs.",
    "Returns catalog_version, count and environments.",
  ].join(" "),
  inputSchema: z.object({}),
  outputSchema: EnvironmentList,
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  call: (_args, { manager }) => manager.listEnvironments(),
});
