/**
 * The chaos report: a verdict, the figures a site-reliability engineer asks for after a
 * game day, and every invariant check with its first violations. `formatReport` is for a
 * person (ten seconds to read); the object itself is the `--json` output.
 */
import type { KillWeights } from "./chaos-options.js";
import { findWarnings, runChecks, type CheckResult } from "./checks.js";
import type { ChaosEvidence, TerminationKind } from "./evidence.js";
import {
  distribution,
  recoveryTimes,
  shutdownTimes,
  tokenFigures,
  type Distribution,
} from "./figures.js";

/** At most this many violations per check are kept in the report. */
const MAX_LISTED = 50;

export type ChaosTarget = { name: string; valueMs: number; limitMs: number; met: boolean };

export type ChaosReport = {
  /** No violation of any invariant. */
  ok: boolean;
  violations: number;
  seed: number;
  store: string;
  config: {
    workers: number;
    runs: number;
    durationMs: number;
    graceMs: number;
    leaseMs: number;
    pollMs: number;
    concurrency: number;
    kill: KillWeights;
    killIntervalMs: number;
    env: Record<string, string>;
  };
  elapsedMs: number;
  runs: { submitted: number; completed: number; compensated: number; failed: number; lost: number };
  terminations: Record<TerminationKind, number> & { replacements: number };
  handoffs: number;
  takeovers: number;
  recovery: { handoff: Distribution; crash: Distribution; stall: Distribution };
  /** Graceful exits during the chaos (k8s and rolling), preStop hook to exit. */
  shutdown: Distribution & { graceMs: number };
  duplicates: { effectsAskedAgain: number; stepsReexecuted: number };
  staleWritesRefused: { ledger: number; store: number };
  tokens: { total: number; redone: number; keptByProgress: number };
  money: { before: number; after: number };
  /** The acceptance targets: handoff p99 <= 100 ms, crash and stall p99 <= lease + 1 s. */
  targets: ChaosTarget[];
  /** Each check, with its violation count and at most 50 of them. */
  checks: Array<CheckResult & { count: number }>;
  /** Findings that break no invariant (e.g. a worker ended by SIGTERM's default action after its drain). */
  warnings: string[];
  /** Problems of the harness itself (a replacement that did not start, a torn log line). */
  notes: string[];
  /** Where the store and logs were kept, with --keep. */
  kept?: string;
};

export type ReportContext = Pick<ChaosReport, "seed" | "store" | "config" | "elapsedMs"> & {
  replacements: number;
  notes: string[];
  kept?: string;
};

export function buildReport(ev: ChaosEvidence, context: ReportContext): ChaosReport {
  const results = runChecks(ev);
  const checks = results.map((c) => ({
    ...c,
    count: c.violations.length,
    violations:
      c.violations.length > MAX_LISTED
        ? [...c.violations.slice(0, MAX_LISTED), `… and ${c.violations.length - MAX_LISTED} more`]
        : c.violations,
  }));
  const counts = new Map(results.map((c) => [c.id, c.violations.length]));
  const violations = [...counts.values()].reduce((a, b) => a + b, 0);
  const status = (s: string) => ev.runs.filter((r) => r.status === s).length;
  const kinds: TerminationKind[] = ["k8s", "sigkill", "stop", "rolling", "teardown"];
  const terminations = Object.fromEntries(
    kinds.map((k) => [k, ev.terminations.filter((t) => t.kind === k).length]),
  ) as Record<TerminationKind, number>;
  const events = ev.runs.flatMap((r) => r.events);
  const recovery = recoveryTimes(ev);
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  const report: ChaosReport = {
    ok: violations === 0,
    violations,
    seed: context.seed,
    store: context.store,
    config: context.config,
    elapsedMs: context.elapsedMs,
    runs: {
      submitted: ev.submitted.length,
      completed: status("completed"),
      compensated: status("compensated"),
      failed: status("failed"),
      lost: ev.submitted.length - ev.runs.filter((r) => isEnded(r.status)).length,
    },
    terminations: { ...terminations, replacements: context.replacements },
    handoffs: events.filter((e) => e.kind === "handoff").length,
    takeovers: events.filter((e) => e.kind === "takeover").length,
    recovery: {
      handoff: distribution(recovery.handoff),
      crash: distribution(recovery.crash),
      stall: distribution(recovery.stall),
    },
    shutdown: {
      ...distribution(shutdownTimes(ev, ["k8s", "rolling"])),
      graceMs: ev.graceMs,
    },
    duplicates: {
      effectsAskedAgain: ev.ledger.calls.filter((c) => c.outcome === "duplicate").length,
      stepsReexecuted: counts.get("no-step-reexecuted") ?? 0,
    },
    staleWritesRefused: {
      ledger: ev.ledger.calls.filter((c) => c.outcome === "stale").length,
      store: events.filter((e) => e.kind === "lease-lost").length,
    },
    tokens: tokenFigures(ev),
    money: { before: sum(ev.ledger.initial), after: sum(ev.ledger.balances) },
    targets: [],
    checks,
    warnings: findWarnings(ev),
    notes: context.notes,
    ...(context.kept ? { kept: context.kept } : {}),
  };
  const target = (name: string, d: Distribution, limitMs: number): ChaosTarget => ({
    name,
    valueMs: d.p99,
    limitMs,
    met: d.p99 <= limitMs,
  });
  report.targets = [
    target("handoff recovery p99", report.recovery.handoff, 100),
    target("crash recovery p99", report.recovery.crash, ev.leaseMs + 1_000),
    target("stall recovery p99", report.recovery.stall, ev.leaseMs + 1_000),
  ];
  return report;
}

function isEnded(status: string): boolean {
  return ["completed", "failed", "cancelled", "compensated"].includes(status);
}

const ms = (value: number) => (value >= 1_000 ? `${(value / 1000).toFixed(1)} s` : `${value} ms`);
const n = (value: number) => value.toLocaleString("en-US");

/** The report for a person: the verdict first, then the figures, then each check. */
export function formatReport(r: ChaosReport): string {
  const c = r.config;
  const t = r.terminations;
  const rec = r.recovery;
  const targetOf = (name: string) => r.targets.find((x) => x.name === name)!;
  /** `p50 …, p99 …  [target …: ok]`, or `none` when nothing was measured. */
  const recovered = (d: Distribution, target: string, limit: string) =>
    d.count === 0
      ? "none measured"
      : `p50 ${ms(d.p50)}, p99 ${ms(d.p99)}   [target ${limit}: ${targetOf(target).met ? "ok" : "MISS"}]`;
  const lease1 = ms(r.config.leaseMs + 1000);
  const lines = [
    "",
    `Baton chaos report: seed ${r.seed}, ${c.workers} workers, ${n(c.runs)} runs, ${ms(c.durationMs)} of chaos, ${r.store}`,
    r.ok
      ? `  PASS  every invariant held (${ms(r.elapsedMs)} in all)`
      : `  FAIL  ${n(r.violations)} violation(s) (${ms(r.elapsedMs)} in all)`,
    ...(Object.keys(c.env).length
      ? [
          `  with ${Object.entries(c.env)
            .map(([k, v]) => `${k}=${v}`)
            .join(" ")}`,
        ]
      : []),
    "",
    `  runs          ${n(r.runs.submitted)} submitted: ${n(r.runs.completed)} completed, ${n(r.runs.compensated)} compensated, ${n(r.runs.failed)} failed, ${n(r.runs.lost)} lost`,
    `  terminations  k8s ${t.k8s}, sigkill ${t.sigkill}, stop ${t.stop}, rolling ${t.rolling} (+${t.teardown} at the end); ${t.replacements} replacements started`,
    `  handoffs      ${n(r.handoffs)}, resumed elsewhere ${recovered(rec.handoff, "handoff recovery p99", "100 ms")}`,
    `  crashes       ${n(rec.crash.count)} runs taken over after SIGKILL, ${recovered(rec.crash, "crash recovery p99", `lease + 1 s = ${lease1}`)}`,
    `  stalls        ${n(rec.stall.count)} runs taken over after SIGSTOP, ${recovered(rec.stall, "stall recovery p99", lease1)}`,
    `  shutdown      ${r.shutdown.count} graceful exits: p50 ${ms(r.shutdown.p50)}, max ${ms(r.shutdown.max)} of grace ${ms(r.shutdown.graceMs)}`,
    `  duplicates    ${r.duplicates.effectsAskedAgain} effects asked again, ${r.duplicates.stepsReexecuted} completed steps re-executed`,
    `  stale writes  refused: ${n(r.staleWritesRefused.ledger)} by the ledger, ${n(r.staleWritesRefused.store)} by the store`,
    `  model tokens  ${n(r.tokens.total)} spent, ${n(r.tokens.redone)} redone, ${n(r.tokens.keptByProgress)} kept by saved progress`,
    `  money         ${n(r.money.before)} before, ${n(r.money.after)} after`,
    "",
  ];
  for (const check of r.checks) {
    const count = check.count;
    lines.push(
      `  ${count === 0 ? "ok  " : "FAIL"}  ${check.title.padEnd(52)} ${check.invariant}${count ? `  (${count})` : ""}`,
    );
    for (const v of check.violations.slice(0, 5)) lines.push(`          - ${v}`);
    if (count > 5) lines.push(`          - … ${count - 5} more (see --json)`);
  }
  for (const warning of r.warnings.slice(0, 5)) lines.push(`  warning: ${warning}`);
  if (r.warnings.length > 5) lines.push(`  warning: … ${r.warnings.length - 5} more (see --json)`);
  for (const note of r.notes) lines.push(`  note: ${note}`);
  if (r.kept) lines.push(`  kept: ${r.kept}`);
  lines.push("");
  return lines.join("\n");
}
