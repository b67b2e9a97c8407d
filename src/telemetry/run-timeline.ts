import type { JournalEntry, RunEvent } from "../store/store.js";

/**
 * A run's story in one ordered list, built from its events (claims, takeovers, handoffs,
 * lease losses, compensation…) and its journal (steps, sleeps, effects, compensations),
 * for the dashboard API and the CLI.
 *
 * Order. Events keep the order the store gave them (by id). Journal entries are placed
 * among them by fence first, since a fence names one ownership of the run (one claim by
 * one worker) and clocks of different workers may disagree: an entry written under fence
 * `f` comes after the claim or takeover that began `f`, and before whatever ended it
 * (handoff, sleep, completion, lease loss). Within one ownership, entries go by the time
 * they started.
 */

/** One line of the timeline. */
export type TimelineEntry = {
  /** `event`: a stored event; `journal`: a journal entry; `derived`: inferred from the events. */
  source: "event" | "journal" | "derived";
  /** The event's kind, the journal entry's kind (`step`, `sleep`, `effect`, `compensation`), or `lease-expired`. */
  kind: string;
  /** Epoch ms: when the event happened, or when the entry's (last) attempt started. */
  at: number;
  workerId: string | null;
  fence: number | null;
  /** Events: the stored id. */
  eventId?: number;
  /** Events: the stored detail, decoded when it is JSON. */
  detail?: unknown;
  /** Journal entries. */
  seq?: number;
  name?: string;
  status?: string;
  attempts?: number;
  idempotencyKey?: string | null;
  /** Journal entries that ended (`completed`, `failed`): when. */
  endedAt?: number;
  durationMs?: number;
  error?: { name: string; message: string };
};

/** A run resumed by a new owner after a handoff or a lease expiry. */
export type Recovery = {
  cause: "handoff" | "crash";
  fromWorker: string | null;
  fromFence: number | null;
  toWorker: string | null;
  fence: number | null;
  /** The handoff, or the lease's expiry; null when the expiry was not recorded. */
  interruptedAt: number | null;
  claimedAt: number;
  /**
   * When the first step under the new fence started (or the run ended, by replay alone);
   * null when neither is recorded (the new owner was itself interrupted).
   */
  resumedAt: number | null;
  /** `claimedAt - interruptedAt`. */
  claimMs: number | null;
  /** `resumedAt - interruptedAt`: what `baton_recovery_seconds` measures. */
  recoveryMs: number | null;
};

const START = new Set(["created", "claimed", "takeover"]);
const END = new Set([
  "handoff",
  "sleeping",
  "completed",
  "failed",
  "cancelled",
  "lease-lost",
  "lease-expired",
  "compensated",
  "abandoned",
]);

/** Events that end a run: one that ends with no new step was resumed by replay alone. */
const RUN_ENDS = new Set(["completed", "failed", "compensated"]);

/** 0: begins an ownership; 2: ends one; 1: happens during one. */
function rank(kind: string): 0 | 1 | 2 {
  return START.has(kind) ? 0 : END.has(kind) ? 2 : 1;
}

/** The merged, ordered timeline of a run. */
export function buildTimeline(
  events: readonly RunEvent[],
  journal: readonly JournalEntry[],
): TimelineEntry[] {
  const fromEvents = eventEntries(events);
  const fromJournal = journal.map(journalEntry).sort(compareJournal);
  const merged: TimelineEntry[] = [];
  let e = 0;
  let j = 0;
  while (e < fromEvents.length || j < fromJournal.length) {
    const event = fromEvents[e];
    const entry = fromJournal[j];
    if (entry && (!event || journalFirst(entry, event))) {
      merged.push(entry);
      j += 1;
    } else if (event) {
      merged.push(event);
      e += 1;
    }
  }
  return merged;
}

/**
 * The recoveries in a timeline: each claim after a handoff, and each takeover after a
 * lease expiry, with how long the run waited.
 */
export function findRecoveries(timeline: readonly TimelineEntry[]): Recovery[] {
  const recoveries: Recovery[] = [];
  let interruption: TimelineEntry | undefined;
  let open: Recovery | undefined;
  for (const entry of timeline) {
    if (open && open.resumedAt === null && entry.fence === open.fence) {
      if (entry.source === "journal" || (entry.source === "event" && RUN_ENDS.has(entry.kind))) {
        // An entry rewritten under the new fence may keep an older start (a pending effect).
        open.resumedAt = Math.max(entry.at, open.claimedAt);
        if (open.interruptedAt !== null) open.recoveryMs = open.resumedAt - open.interruptedAt;
      }
    }
    if (entry.source === "journal") continue;
    if (entry.kind === "handoff" || entry.kind === "lease-expired") {
      interruption = entry;
      continue;
    }
    if (entry.kind === "claimed" || entry.kind === "takeover") {
      const expected = entry.kind === "claimed" ? "handoff" : "lease-expired";
      if (interruption?.kind === expected) {
        const interruptedAt = interruption.source === "derived" ? null : interruption.at;
        open = {
          cause: expected === "handoff" ? "handoff" : "crash",
          fromWorker: interruption.workerId,
          fromFence: interruption.fence,
          toWorker: entry.workerId,
          fence: entry.fence,
          interruptedAt,
          claimedAt: entry.at,
          resumedAt: null,
          claimMs: interruptedAt === null ? null : entry.at - interruptedAt,
          recoveryMs: null,
        };
        recoveries.push(open);
      }
      interruption = undefined;
      continue;
    }
    if (rank(entry.kind) === 2 || entry.kind === "created") interruption = undefined;
  }
  return recoveries;
}

function eventEntries(events: readonly RunEvent[]): TimelineEntry[] {
  const sorted = [...events].sort((a, b) => a.id - b.id);
  const entries: TimelineEntry[] = [];
  let fence = 0;
  let owner: RunEvent | undefined;
  let expiryRecorded = false;
  for (const event of sorted) {
    const kind: string = event.kind;
    if (kind === "takeover" && owner && !expiryRecorded) {
      // The store records the takeover, not the expiry that allowed it: say what it implies.
      entries.push({
        source: "derived",
        kind: "lease-expired",
        at: event.at,
        workerId: owner.workerId,
        fence: owner.fence,
        detail: `the lease of ${owner.workerId ?? "the previous owner"} (fence ${owner.fence ?? "?"}) expired before this takeover; when is not recorded`,
      });
    }
    if (kind === "claimed" || kind === "takeover") {
      owner = event;
      expiryRecorded = false;
    } else if (kind === "lease-expired") {
      expiryRecorded = true;
    }
    if (event.fence !== null) fence = event.fence;
    entries.push({
      source: "event",
      kind,
      at: event.at,
      workerId: event.workerId,
      fence: event.fence ?? fence,
      eventId: event.id,
      ...(event.detail !== null ? { detail: decodeDetail(event.detail) } : {}),
    });
  }
  return entries;
}

function journalEntry(entry: JournalEntry): TimelineEntry {
  const ended = entry.status === "completed" || entry.status === "failed";
  const at = entry.startedAt ?? entry.updatedAt;
  const line: TimelineEntry = {
    source: "journal",
    kind: entry.kind,
    at,
    workerId: entry.workerId,
    fence: entry.fence,
    seq: entry.seq,
    name: entry.name,
    status: entry.status,
    attempts: entry.attempts,
  };
  if (entry.idempotencyKey) line.idempotencyKey = entry.idempotencyKey;
  if (ended) {
    line.endedAt = entry.updatedAt;
    line.durationMs = entry.updatedAt - at;
  }
  const error = decodeError(entry.error);
  if (error && entry.status !== "completed") line.error = error;
  return line;
}

/** Journal order: by ownership, then start; compensations run in reverse step order. */
function compareJournal(a: TimelineEntry, b: TimelineEntry): number {
  return (
    (a.fence ?? 0) - (b.fence ?? 0) ||
    a.at - b.at ||
    Number(a.kind === "compensation") - Number(b.kind === "compensation") ||
    (a.kind === "compensation" ? (b.seq ?? 0) - (a.seq ?? 0) : (a.seq ?? 0) - (b.seq ?? 0))
  );
}

/** Whether a journal entry goes before an event in the timeline. */
function journalFirst(entry: TimelineEntry, event: TimelineEntry): boolean {
  const entryFence = entry.fence ?? 0;
  const eventFence = event.fence ?? 0;
  if (entryFence !== eventFence) return entryFence < eventFence;
  const r = rank(event.kind);
  if (r !== 1) return r === 2;
  if (entry.at !== event.at) return entry.at < event.at;
  // Same millisecond: a compensation follows the event that began compensating.
  return entry.kind !== "compensation";
}

function decodeDetail(detail: string): unknown {
  const first = detail.trimStart()[0];
  if (first !== "{" && first !== "[" && first !== '"') return detail;
  try {
    return JSON.parse(detail) as unknown;
  } catch {
    return detail;
  }
}

function decodeError(error: string | null): { name: string; message: string } | undefined {
  if (error === null) return undefined;
  try {
    const parsed = JSON.parse(error) as { name?: unknown; message?: unknown };
    return {
      name: typeof parsed.name === "string" ? parsed.name : "Error",
      message: typeof parsed.message === "string" ? parsed.message : error,
    };
  } catch {
    return { name: "Error", message: error };
  }
}
