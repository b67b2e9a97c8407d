import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

describe("embedded migrations", () => {
  it("match the .sql files (run `npm run embed-migrations` after editing one)", () => {
    const script = fileURLToPath(new URL("../../scripts/embed-migrations.ts", import.meta.url));
    expect(() =>
      execFileSync(process.execPath, ["--import", "tsx", script, "--check"], { stdio: "pipe" }),
    ).not.toThrow();
  });
});
