import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { tempDir } from "../support/temp-dir.js";

describe("baton demo (what npm start runs)", () => {
  it("survives a SIGKILLed worker: every run completes, no completed step runs again", async () => {
    const dir = tempDir();
    try {
      const result = await runCli(
        ["demo", "--runs", "20", "--workers", "3", "--dir", join(dir.path, "demo")],
        {},
        120_000,
      );
      expect(result.stdout).toMatch(/ok\s+runs completed:\s+20\/20/);
      expect(result.stdout).toMatch(/ok\s+steps re-executed after completion:\s+0/);
      expect(result.stdout).toMatch(/runs resumed on another worker:\s+[1-9]/);
      expect(result.code).toBe(0);
    } finally {
      dir.remove();
    }
  });
});
