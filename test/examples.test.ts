import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../examples/quickstart.js";
import { tempDir } from "./support/temp-dir.js";

describe("examples", () => {
  it("quickstart runs as the README shows", async () => {
    const dir = tempDir();
    try {
      expect(await main(`sqlite:${join(dir.path, "q.db")}`)).toEqual({
        summary: "summary of the text of https://example.org (attempt 1)",
      });
    } finally {
      dir.remove();
    }
  });
});
