// The package entry (`import { Pyro } from "pyro-mcp"`): the SDK, the MCP server factory, the error
// family and the contract schemas every payload is checked against.
export * from "./contract/index.js";
export { DEFAULT_PROFILE, McpProfile, PROFILE_TOOLS, type ToolName } from "./mcp/profiles.js";
export { type CreateServerOptions, createServer, type ServeStdioOptions, serveStdio } from "./mcp/server.js";
export type { ProgressReporter } from "./sdk/manager.js";
export {
  DoctorParams,
  EnvironmentParams,
  EnvironmentPullParams,
} from "./sdk/params.js";
export { type CallOptions, Pyro, type PyroOptions } from "./sdk/pyro.js";
export { PYRO_VERSION } from "./version.js";
