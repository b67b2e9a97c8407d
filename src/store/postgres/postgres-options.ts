import { ConfigError } from "../../workflow/errors.js";

/** Options of the PostgreSQL backend. Every field but the connection string is optional. */
export type PostgresStoreOptions = {
  /** A `postgres://` connection string (without Baton's own `schema` and `pool` options). */
  connectionString: string;
  /**
   * The schema that holds Baton's tables, created if missing, so Baton can live in the
   * application's database beside its tables. A lowercase SQL identifier.
   * (Default: `"baton"`)
   */
  schema?: string;
  /** Most connections the pool opens; the LISTEN connection is one more. (Default: 10) */
  poolSize?: number;
  /** How long opening a connection may take before it counts as failed. (Default: 5000 ms) */
  connectTimeoutMs?: number;
  /**
   * How long a statement is retried after a transient connection error (a Postgres restart
   * or failover) before the error is thrown. Lease renewals retry for at most a third of
   * the lease. (Default: 5000 ms)
   */
  retryForMs?: number;
};

/** The options with every default applied, validated once. */
export type ResolvedPostgresOptions = Required<PostgresStoreOptions>;

export const DEFAULT_SCHEMA = "baton";
const DEFAULT_POOL_SIZE = 10;

/** Query parameters `pg` understands, passed through to it unchanged. */
const PG_PARAMS = new Set([
  "host",
  "port",
  "user",
  "password",
  "ssl",
  "sslmode",
  "sslcert",
  "sslkey",
  "sslrootcert",
  "sslnegotiation",
  "uselibpqcompat",
  "application_name",
  "fallback_application_name",
  "options",
  "client_encoding",
  "statement_timeout",
  "lock_timeout",
  "idle_in_transaction_session_timeout",
  "query_timeout",
]);
/** Query parameters Baton reads itself and removes before `pg` sees the URL. */
const BATON_PARAMS = new Set(["schema", "pool", "connect_timeout"]);

const EXAMPLE = "postgres://USER:PASSWORD@HOST:5432/DATABASE?schema=baton&pool=10";

/**
 * Reads a store URL: `postgres://USER:PASSWORD@HOST:PORT/DATABASE?schema=NAME&pool=N`,
 * plus `pg`'s own parameters (`sslmode`, `application_name`, ...). `connect_timeout` is
 * in seconds, as in libpq. Throws a {@link ConfigError} that names the value (password
 * hidden) and the fix.
 */
export function parsePostgresUrl(url: string): PostgresStoreOptions {
  const shown = redactPostgresUrl(url);
  const queryAt = url.indexOf("?");
  const base = queryAt === -1 ? url : url.slice(0, queryAt);
  const params = new URLSearchParams(queryAt === -1 ? "" : url.slice(queryAt + 1));
  let parsed: URL;
  try {
    // As pg does, an empty host ("user@/db?host=/var/run/postgresql") is allowed.
    parsed = new URL(base.replace("@/", "@localhost/"));
  } catch (error) {
    throw new ConfigError(
      `store URL "${shown}" is not a valid URL (check the port, and percent-encode special characters in the password); use e.g. "${EXAMPLE}"`,
      { cause: error },
    );
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new ConfigError(`store URL "${shown}" must start with postgres:// or postgresql://`);
  }
  for (const [part, value] of [
    ["user name", parsed.username],
    ["password", parsed.password],
    ["database name", parsed.pathname],
  ] as const) {
    try {
      decodeURIComponent(value);
    } catch (error) {
      throw new ConfigError(
        `store URL "${shown}": the ${part} is not valid percent-encoding; encode special characters (e.g. "%" as "%25", "@" as "%40")`,
        { cause: error },
      );
    }
  }
  for (const key of new Set(params.keys())) {
    if (!PG_PARAMS.has(key) && !BATON_PARAMS.has(key)) {
      throw new ConfigError(
        `store URL "${shown}": unknown option "${key}"; Baton reads ${[...BATON_PARAMS].join(", ")} and passes ${[...PG_PARAMS].join(", ")} to pg`,
      );
    }
  }
  const options: PostgresStoreOptions = { connectionString: "" };
  const schema = params.get("schema");
  if (schema !== null) options.schema = schema;
  const pool = params.get("pool");
  if (pool !== null) options.poolSize = integerParam(shown, "pool", pool, 1, 1000);
  const timeout = params.get("connect_timeout");
  if (timeout !== null) {
    options.connectTimeoutMs = integerParam(shown, "connect_timeout", timeout, 0, 3600) * 1000;
  }
  for (const key of BATON_PARAMS) params.delete(key);
  const rest = params.toString();
  options.connectionString = rest === "" ? base : `${base}?${rest}`;
  return options;
}

/** Applies the defaults and checks every value; the only place options are validated. */
export function resolvePostgresOptions(options: PostgresStoreOptions): ResolvedPostgresOptions {
  const shown = redactPostgresUrl(options.connectionString);
  const schema = options.schema ?? DEFAULT_SCHEMA;
  // 58 characters, so the notification channel `<schema>_wake` fits Postgres's 63.
  if (!/^[a-z_][a-z0-9_]{0,57}$/.test(schema)) {
    throw new ConfigError(
      `store URL "${shown}": schema "${schema}" is not a lowercase SQL identifier (a-z, 0-9, _; at most 58 characters, not starting with a digit); use e.g. "?schema=${DEFAULT_SCHEMA}"`,
    );
  }
  return {
    connectionString: options.connectionString,
    schema,
    poolSize: checkedInteger(shown, "pool", options.poolSize ?? DEFAULT_POOL_SIZE, 1, 1000),
    connectTimeoutMs: checkedInteger(
      shown,
      "connectTimeoutMs",
      options.connectTimeoutMs ?? 5000,
      0,
      3_600_000,
    ),
    retryForMs: checkedInteger(shown, "retryForMs", options.retryForMs ?? 5000, 0, 3_600_000),
  };
}

/** The URL with its password hidden (in the user info and in a `password=` parameter). */
export function redactPostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    if (parsed.searchParams.has("password")) parsed.searchParams.set("password", "***");
    return parsed.toString().replace("%2A%2A%2A", "***");
  } catch {
    // Not a URL: hide everything between the user name and the last "@", to be safe.
    return url
      .replace(/^([a-z]+:\/\/[^:@/?#]*):.*@/is, "$1:***@")
      .replace(/([?&]password=)[^&]*/gi, "$1***");
  }
}

function integerParam(shown: string, key: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) {
    throw new ConfigError(
      `store URL "${shown}": ${key} must be a whole number from ${min} to ${max}, not "${raw}"`,
    );
  }
  return checkedInteger(shown, key, Number(raw), min, max);
}

function checkedInteger(shown: string, key: string, value: number, min: number, max: number) {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(
      `store URL "${shown}": ${key} must be a whole number from ${min} to ${max}, not ${value}`,
    );
  }
  return value;
}
