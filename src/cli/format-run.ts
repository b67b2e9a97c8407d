import type { RunDetails, RunSummary } from "../run-view.js";
import { COMPENSATION_SEQ_BASE } from "../store/store.js";

const time = (ms: number | null) => (ms === null ? "-" : new Date(ms).toISOString().slice(11, 23));
const short = (value: unknown, max = 60) => {
  const text = value === undefined ? "" : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

/** One line per run, for `baton runs`. */
export function formatRunTable(runs: readonly RunSummary[]): string {
  if (runs.length === 0) return "no runs";
  const rows = runs.map((r) => [
    r.id,
    r.workflow,
    r.status,
    String(r.fence),
    String(r.interruptions),
    new Date(r.createdAt).toISOString(),
  ]);
  const header = ["ID", "WORKFLOW", "STATUS", "FENCE", "HANDOFFS", "CREATED"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows]
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** A run's journal and events merged into one readable timeline, for `baton run <id>`. */
export function formatRunTimeline(run: RunDetails): string {
  const lines = [
    `run ${run.id}  workflow ${run.workflow} v${run.version}  status ${run.status}  fence ${run.fence}  handoffs ${run.interruptions}`,
    `input  ${short(run.input, 100)}`,
  ];
  if (run.status === "completed") lines.push(`output ${short(run.output, 100)}`);
  if (run.error) lines.push(`error  ${run.error.name}: ${run.error.message}`);
  type Entry = { at: number; text: string };
  const entries: Entry[] = [
    ...run.events.map((e) => ({
      at: e.at,
      text:
        `${e.kind.padEnd(10)} ${e.workerId ? `worker ${e.workerId}` : ""}${e.fence !== null ? `  fence ${e.fence}` : ""}` +
        (e.kind === "effect-resolved" && e.detail ? `  ${describeResolution(e.detail)}` : ""),
    })),
    ...run.steps.map((s) => ({
      at: s.updatedAt,
      text:
        `  #${s.seq >= COMPENSATION_SEQ_BASE ? `undo of #${s.seq - COMPENSATION_SEQ_BASE}` : s.seq} ${s.kind} "${s.name}" ` +
        (s.status === "pending" ? "intent recorded, outcome not yet known" : s.status) +
        (s.attempts > 1 ? ` after ${s.attempts} attempts` : "") +
        (s.status === "completed" && s.kind !== "sleep" && s.output !== undefined
          ? ` → ${short(s.output)}`
          : "") +
        (s.error && s.status !== "completed" ? ` (${s.error.name}: ${s.error.message})` : "") +
        (s.progress !== undefined ? ` progress ${short(s.progress)}` : "") +
        (s.idempotencyKey ? `  key ${s.idempotencyKey}` : "") +
        `  [fence ${s.fence}]`,
    })),
  ].sort((a, b) => a.at - b.at);
  lines.push("", "timeline:");
  for (const entry of entries) lines.push(`${time(entry.at)}  ${entry.text}`);
  return lines.join("\n");
}

const RESOLUTIONS: Record<string, string> = {
  "checked-done": "check found it done: result recorded, not run again",
  "checked-not-done": "check found it not done: run again with the same key",
  "rerun-unchecked": "no check: run again with the same key",
};

function describeResolution(detail: string): string {
  const { name, resolution } = JSON.parse(detail) as { name: string; resolution: string };
  return `unknown outcome of "${name}": ${RESOLUTIONS[resolution] ?? resolution}`;
}
