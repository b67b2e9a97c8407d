import { describeStoreConformance } from "../conformance/store-conformance.js";
import { usePostgres } from "../support/postgres.js";

const postgres = usePostgres();

// Each test gets a fresh, empty schema; a peer is a second store (its own pool and LISTEN
// connection) on the same schema, as another process would be.
describeStoreConformance("postgres", async () => {
  const schema = await postgres.schema();
  return {
    store: schema.open(),
    openPeer: () => Promise.resolve(schema.open()),
    cleanup: () => schema.drop(),
  };
});
