// Owns the list of CLI commands. A new command is one file under commands/<noun>/<verb>.ts plus
// one line here.
import type { CommandClass } from "clipanion";
import type { PyroContext } from "../context.js";
import { DoctorCommand } from "./doctor.js";
import { EnvInspectCommand } from "./env/inspect.js";
import { EnvListCommand } from "./env/list.js";
import { EnvPruneCommand } from "./env/prune.js";
import { EnvPullCommand } from "./env/pull.js";
import { HelpCommand } from "./help.js";
import { McpServeCommand } from "./mcp/serve.js";
import { RunCommand } from "./run.js";
import { VersionCommand } from "./version.js";

export const COMMANDS: readonly CommandClass<PyroContext>[] = [
  HelpCommand,
  VersionCommand,
  RunCommand,
  EnvListCommand,
  EnvPullCommand,
  EnvInspectCommand,
  EnvPruneCommand,
  DoctorCommand,
  McpServeCommand,
];
