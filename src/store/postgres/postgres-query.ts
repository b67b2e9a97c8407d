import type pg from "pg";
import type { Replay } from "./postgres-retry.js";

/** A statement's result, and whether an earlier try may have committed (its answer was lost). */
export type QueryResult<R extends pg.QueryResultRow> = pg.QueryResult<R> & { ambiguous: boolean };

/**
 * How the PostgreSQL store's parts send one statement: on a pooled connection, as a
 * prepared statement, retrying transient failures for up to `budgetMs` (the store's
 * `retryForMs` when omitted) as its {@link Replay} class allows. It is the narrow
 * dependency that the claim and group-commit modules get instead of the whole store.
 */
export type PostgresQuery = <R extends pg.QueryResultRow = pg.QueryResultRow>(
  text: string,
  values: unknown[],
  replay: Replay,
  budgetMs?: number,
) => Promise<QueryResult<R>>;
