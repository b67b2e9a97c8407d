import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { tempDir } from "../support/temp-dir.js";
import { describeStoreConformance } from "./store-conformance.js";

describeStoreConformance("sqlite (file, WAL)", () => {
  const dir = tempDir();
  const path = join(dir.path, "store.db");
  const store = new SqliteStore({ path });
  return Promise.resolve({
    store,
    openPeer: () => Promise.resolve(new SqliteStore({ path })),
    cleanup: async () => {
      await store.close();
      dir.remove();
    },
  });
});
