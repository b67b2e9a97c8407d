import type { z } from "zod";
import { LifecycleConfigError } from "./errors.js";

/**
 * Parses `input` with `schema`, or throws a {@link LifecycleConfigError} that names each
 * bad option and the value it was given.
 */
export function parseOptions<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    if (issue.code === "unrecognized_keys") {
      const where = issue.path.length > 0 ? ` in ${issue.path.join(".")}` : "";
      return `unknown lifecycle option${where}: ${issue.keys.join(", ")}`;
    }
    const path = issue.path.join(".");
    const value = valueAt(input, issue.path);
    return `lifecycle option ${path} = ${show(value)} is invalid: ${issue.message}`;
  });
  throw new LifecycleConfigError(problems.join("; "), { cause: result.error });
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function show(value: unknown): string {
  if (typeof value === "function") return "[function]";
  if (typeof value === "number" || value === undefined) return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return "[unprintable]";
  }
}
