// Owns fault injection for crash-safety tests: `PYRO_FAULT=<point>` makes the process kill itself
// with SIGKILL when it reaches that named point, exactly as a crash or `kill -9` there would.
// Points are named `<operation>:<step>`; unset (always, outside tests) it costs one lookup.

export function faultPoint(point: string): void {
  if (process.env.PYRO_FAULT === point) process.kill(process.pid, "SIGKILL");
}
