import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { siblingModule } from "../internal/module-path.js";
import type { AppliedOp, LedgerSnapshot, OpRequest } from "./ledger.js";

/** The ledger refused a request: a stale fence (409) or an unknown account (422). */
export class LedgerRefusedError extends Error {
  override readonly name = "LedgerRefusedError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function post<T>(
  url: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "Content-Type": "application/json" },
    ...(signal ? { signal } : {}),
  });
  return { status: res.status, body: (await res.json()) as T };
}

/** Applies an operation once per key; throws LedgerRefusedError on a stale fence. */
export async function applyOp(
  ledgerUrl: string,
  request: OpRequest & { delayMs?: number },
  signal?: AbortSignal,
): Promise<AppliedOp> {
  const { status, body } = await post<{ op?: AppliedOp; status: string; error?: string }>(
    `${ledgerUrl}/ops`,
    request,
    signal,
  );
  if (status !== 200 || !body.op) {
    throw new LedgerRefusedError(
      `ledger refused ${request.kind} ${request.key} with fence ${request.fence}: ${JSON.stringify(body)}`,
      status,
    );
  }
  return body.op;
}

/** Whether `key` was applied; the fence goes along, so a stale owner is refused here too. */
export async function checkOp(
  ledgerUrl: string,
  request: { key: string; runId: string; fence: number },
  signal?: AbortSignal,
): Promise<AppliedOp | undefined> {
  const { status, body } = await post<{ status: string; op?: AppliedOp }>(
    `${ledgerUrl}/check`,
    request,
    signal,
  );
  if (status !== 200) {
    throw new LedgerRefusedError(
      `ledger refused a check of ${request.key} with fence ${request.fence}: ${JSON.stringify(body)}`,
      status,
    );
  }
  return body.status === "found" ? body.op : undefined;
}

export type LedgerProcess = {
  url: string;
  child: ChildProcess;
  openAccounts(accounts: Record<string, number>): Promise<void>;
  state(): Promise<LedgerSnapshot>;
  stop(): Promise<void>;
};

/** Starts the ledger service in its own process (with `nodeArgs`, so tsx carries over). */
export async function startLedger(nodeArgs: readonly string[]): Promise<LedgerProcess> {
  const child = spawn(
    process.execPath,
    [...nodeArgs, siblingModule(import.meta.url, "./ledger-service")],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the ledger did not start in 30 s")), 30_000);
    void exited.then(() => reject(new Error("the ledger exited before it started")));
    createInterface({ input: child.stdout }).once("line", (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    child,
    async openAccounts(accounts) {
      const { status } = await post(`${url}/accounts`, { accounts });
      if (status !== 200) throw new Error(`the ledger did not open accounts (${status})`);
    },
    async state() {
      const res = await fetch(`${url}/state`);
      return (await res.json()) as LedgerSnapshot;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
