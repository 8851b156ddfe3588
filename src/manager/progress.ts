// Owns how a long operation tells its caller what it is doing: a phase name and an optional detail,
// shown by the CLI as a spinner line and by MCP as progress notifications.
export interface ProgressReporter {
  phase(name: string, detail?: string): void;
}
