// Owns the registry of implemented MCP tools, keyed by name; profiles.ts decides which are exposed.
import type { ToolName } from "../profiles.js";
import type { PyroTool } from "../tool.js";
import { vmListEnvironments } from "./vm-list-environments.js";
import { vmRun } from "./vm-run.js";

export const TOOLS: Readonly<Record<ToolName, PyroTool>> = {
  vm_run: vmRun,
  vm_list_environments: vmListEnvironments,
};
