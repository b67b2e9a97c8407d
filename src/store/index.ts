/** `baton/store`: the storage contract and the backends, for custom setups and tests. */
export * from "./store.js";
export { openStore, DEFAULT_STORE_URL } from "./open-store.js";
export {
  SqliteStore,
  type SqliteStoreOptions,
  type SqliteSynchronous,
} from "./sqlite/sqlite-store.js";
export { PostgresStore } from "./postgres/postgres-store.js";
export { parsePostgresUrl, type PostgresStoreOptions } from "./postgres/postgres-options.js";
