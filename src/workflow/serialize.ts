import { ValidationError } from "./errors.js";

/** Default largest input, step output or run output Baton stores: 1 MiB of JSON. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/**
 * Encodes a value as JSON for the store, refusing what JSON cannot carry faithfully
 * (functions, symbols, bigints, cycles, non-finite numbers) and anything larger than
 * `maxBytes`. `what` names the value in the error ("input of run r-1").
 * `undefined` encodes as `null` in SQL (a step that returns nothing).
 */
export function encodeJson(value: unknown, what: string, maxBytes: number): string | null {
  if (value === undefined) return null;
  assertJsonSafe(value, what, new Set());
  const text = JSON.stringify(value);
  const bytes = Buffer.byteLength(text);
  if (bytes > maxBytes) {
    throw new ValidationError(
      `${what} is ${bytes} bytes of JSON, over the limit of ${maxBytes}; ` +
        `store large data elsewhere and pass a reference, or raise maxPayloadBytes`,
    );
  }
  return text;
}

/** Decodes what {@link encodeJson} stored. */
export function decodeJson<T = unknown>(text: string | null): T {
  return (text === null ? undefined : JSON.parse(text)) as T;
}

function assertJsonSafe(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case "string":
    case "boolean":
    case "undefined":
      return;
    case "number":
      if (!Number.isFinite(value)) {
        throw new ValidationError(
          `${path} is ${value}, which JSON cannot represent; use null or a string`,
        );
      }
      return;
    case "bigint":
      throw new ValidationError(
        `${path} is a bigint, which JSON cannot represent; convert it to a string`,
      );
    case "function":
    case "symbol":
      throw new ValidationError(
        `${path} is a ${typeof value}, which is not JSON-serialisable; pass data only`,
      );
    case "object": {
      if (value === null) return;
      if (seen.has(value)) {
        throw new ValidationError(
          `${path} refers back to itself (a cycle), which is not JSON-serialisable`,
        );
      }
      if (typeof (value as { toJSON?: unknown }).toJSON === "function") return;
      seen.add(value);
      if (Array.isArray(value)) {
        value.forEach((item, i) => assertJsonSafe(item, `${path}[${i}]`, seen));
      } else {
        for (const [key, item] of Object.entries(value))
          assertJsonSafe(item, `${path}.${key}`, seen);
      }
      seen.delete(value);
      return;
    }
  }
}
