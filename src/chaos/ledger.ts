/**
 * The chaos harness's external system: a bank ledger with the two defences an external
 * system should have against a runtime that may repeat itself. It applies each operation
 * once per idempotency key (a repeat gets the first answer back), and it refuses any
 * request carrying a fence older than the newest it has seen for that run, so a worker
 * that lost its run cannot write. It records every request it was asked, refused ones
 * too, so the harness can check the outside world afterwards.
 *
 * Pure state: `ledger-service.ts` serves it over HTTP in its own process.
 */

/** What an operation does; `undo-*` are the compensations of the run's debit and credit. */
export type OpKind = "debit" | "credit" | "undo-debit" | "undo-credit";

export type OpRequest = {
  key: string;
  runId: string;
  fence: number;
  account: string;
  /** Added to the account's balance (negative for a debit). */
  amount: number;
  kind: OpKind;
};

/** An applied operation, as the ledger answers it (the same answer for a repeat). */
export type AppliedOp = {
  opId: number;
  key: string;
  runId: string;
  fence: number;
  account: string;
  amount: number;
  kind: OpKind;
  at: number;
};

/**
 * One request the ledger was asked. `apply`: `applied`, `duplicate` (the key was applied
 * before; nothing changed), `stale` (refused: an older fence), `rejected` (no such
 * account). `check`: `found`, `not-found`, or `stale`.
 */
export type LedgerCall = {
  /** Order of arrival, from 1. */
  seq: number;
  at: number;
  type: "apply" | "check";
  key: string;
  runId: string;
  fence: number;
  kind?: OpKind;
  account?: string;
  amount?: number;
  outcome: "applied" | "duplicate" | "stale" | "rejected" | "found" | "not-found";
  /** For a stale request: the newest fence seen for the run when it came. */
  newestFence?: number;
};

export type LedgerSnapshot = {
  initial: Record<string, number>;
  balances: Record<string, number>;
  ops: AppliedOp[];
  calls: LedgerCall[];
};

export type ApplyAnswer =
  | { status: "applied" | "duplicate"; op: AppliedOp }
  | { status: "stale"; newestFence: number }
  | { status: "rejected"; error: string };

export type CheckAnswer =
  | { status: "found"; op: AppliedOp }
  | { status: "not-found" }
  | { status: "stale"; newestFence: number };

export class Ledger {
  private readonly initial = new Map<string, number>();
  private readonly balances = new Map<string, number>();
  private readonly byKey = new Map<string, AppliedOp>();
  private readonly ops: AppliedOp[] = [];
  private readonly calls: LedgerCall[] = [];
  private readonly newestFence = new Map<string, number>();

  constructor(private readonly clock: () => number = Date.now) {}

  /** Opens accounts with their starting balances (an existing account is left as it is). */
  open(accounts: Readonly<Record<string, number>>): void {
    for (const [name, balance] of Object.entries(accounts)) {
      if (this.balances.has(name)) continue;
      this.initial.set(name, balance);
      this.balances.set(name, balance);
    }
  }

  apply(request: OpRequest): ApplyAnswer {
    const { key, runId, fence, account, amount, kind } = request;
    const call = { seq: this.calls.length + 1, at: this.clock(), type: "apply" as const };
    const fields = { key, runId, fence, kind, account, amount };
    const newest = this.newestFence.get(runId) ?? 0;
    if (fence < newest) {
      this.calls.push({ ...call, ...fields, outcome: "stale", newestFence: newest });
      return { status: "stale", newestFence: newest };
    }
    this.newestFence.set(runId, fence);
    const previous = this.byKey.get(key);
    if (previous) {
      this.calls.push({ ...call, ...fields, outcome: "duplicate" });
      return { status: "duplicate", op: previous };
    }
    const balance = this.balances.get(account);
    if (balance === undefined) {
      this.calls.push({ ...call, ...fields, outcome: "rejected" });
      return { status: "rejected", error: `no account "${account}"` };
    }
    const op: AppliedOp = { opId: this.ops.length + 1, ...fields, at: call.at };
    this.balances.set(account, balance + amount);
    this.byKey.set(key, op);
    this.ops.push(op);
    this.calls.push({ ...call, ...fields, outcome: "applied" });
    return { status: "applied", op };
  }

  /** Was `key` applied? Carries the asker's fence: a stale owner is refused here too. */
  check(request: { key: string; runId: string; fence: number }): CheckAnswer {
    const { key, runId, fence } = request;
    const call = { seq: this.calls.length + 1, at: this.clock(), type: "check" as const };
    const newest = this.newestFence.get(runId) ?? 0;
    if (fence < newest) {
      this.calls.push({ ...call, key, runId, fence, outcome: "stale", newestFence: newest });
      return { status: "stale", newestFence: newest };
    }
    this.newestFence.set(runId, fence);
    const op = this.byKey.get(key);
    this.calls.push({ ...call, key, runId, fence, outcome: op ? "found" : "not-found" });
    return op ? { status: "found", op } : { status: "not-found" };
  }

  snapshot(): LedgerSnapshot {
    return {
      initial: Object.fromEntries(this.initial),
      balances: Object.fromEntries(this.balances),
      ops: [...this.ops],
      calls: [...this.calls],
    };
  }
}
