/**
 * The ledger as its own process, on 127.0.0.1 and a free port; prints `{"port": N}` once
 * listening. Never killed by the chaos: it is the outside world that the harness checks.
 *
 * - `POST /accounts` `{ "accounts": { name: balance } }`: opens accounts.
 * - `POST /ops` `{ key, runId, fence, account, amount, kind, delayMs? }`: applies once per
 *   key (200 `{ status, op }`), 409 for a stale fence, 422 for an unknown account. The
 *   operation is applied when the request arrives; the answer waits `delayMs`, like a
 *   remote service's latency, which leaves a window in which the caller can die not knowing.
 * - `POST /check` `{ key, runId, fence }`: 200 `{ status: "found", op }` or
 *   `{ status: "not-found" }`, 409 for a stale fence.
 * - `GET /state`: balances, applied operations and every call.
 */
import { createServer, type ServerResponse } from "node:http";
import { Ledger, type OpRequest } from "./ledger.js";

const ledger = new Ledger();

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  res.end(text);
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    try {
      const body = chunks.length
        ? (JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown)
        : {};
      const route = `${req.method} ${req.url}`;
      if (route === "POST /ops") {
        const { delayMs, ...request } = body as OpRequest & { delayMs?: number };
        const answer = ledger.apply(request);
        const status = answer.status === "stale" ? 409 : answer.status === "rejected" ? 422 : 200;
        setTimeout(() => send(res, status, answer), Math.max(0, Math.min(delayMs ?? 0, 5_000)));
        return;
      }
      if (route === "POST /check") {
        const answer = ledger.check(body as { key: string; runId: string; fence: number });
        return send(res, answer.status === "stale" ? 409 : 200, answer);
      }
      if (route === "POST /accounts") {
        ledger.open((body as { accounts: Record<string, number> }).accounts);
        return send(res, 200, { ok: true });
      }
      if (route === "GET /state") return send(res, 200, ledger.snapshot());
      send(res, 404, { error: `no route ${route}` });
    } catch (error) {
      send(res, 400, { error: (error as Error).message });
    }
  });
});
server.keepAliveTimeout = 30_000;

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  console.log(JSON.stringify({ port: typeof address === "object" && address ? address.port : 0 }));
});
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
