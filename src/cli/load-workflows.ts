import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { isWorkflow } from "../workflow/define-workflow.js";
import { ConfigError } from "../workflow/errors.js";
import type { Workflow } from "../workflow/types.js";

/**
 * Imports the user's workflows module and collects every workflow it exports (directly,
 * or in an exported array). A missing file, a module that fails to load, or one that
 * exports no workflow is a ConfigError that says which.
 */
export async function loadWorkflows(modulePath: string): Promise<Workflow[]> {
  const path = resolve(modulePath);
  if (!existsSync(path)) {
    throw new ConfigError(
      `workflows module "${modulePath}" does not exist (looked at ${path}); pass the file that exports your workflows`,
    );
  }
  let exports: Record<string, unknown>;
  try {
    exports = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (error) {
    throw new ConfigError(
      `workflows module "${modulePath}" failed to load: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const found = new Map<string, Workflow>();
  for (const value of Object.values(exports)) {
    for (const candidate of Array.isArray(value) ? (value as unknown[]) : [value]) {
      if (isWorkflow(candidate)) found.set(candidate.name, candidate);
    }
  }
  if (found.size === 0) {
    throw new ConfigError(
      `workflows module "${modulePath}" exports no workflow; export the results of defineWorkflow(...)`,
    );
  }
  return [...found.values()];
}
