/**
 * Fault injection for tests and the chaos harness: `BATON_FAULT_INJECT=<point>` makes the
 * process SIGKILL itself the first time it reaches `<point>`, so a test can kill a worker
 * at an exact moment of the effect window. Inert unless the variable is set; read once.
 *
 * Points: `effect:before-intent`, `effect:after-intent`, `effect:after-run` (the call
 * returned, its result not yet recorded), `effect:after-result`, `compensation:after-result`.
 */
let armed: string | undefined | null = null;

export function faultPoint(point: string): void {
  if (armed === null) armed = process.env.BATON_FAULT_INJECT || undefined;
  if (armed !== undefined && armed === point) {
    armed = undefined;
    process.kill(process.pid, "SIGKILL");
  }
}
