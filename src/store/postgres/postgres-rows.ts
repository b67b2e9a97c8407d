import pg from "pg";

/** How `pg` returns this store's rows: bigint columns as numbers (the shapes are in ../rows.ts). */

const parseBigint = (value: string): number => Number(value);

/**
 * Type parsers for this store's pool only (the global `pg.types` is left alone for the
 * application): `bigint` — epoch milliseconds, fences, counts — becomes a number. Epoch
 * milliseconds stay exact up to 2^53 (the year 287396).
 */
export const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary"): ((value: string) => unknown) =>
    oid === (pg.types.builtins.INT8 as number) && format !== "binary"
      ? parseBigint
      : (pg.types.getTypeParser(oid, format) as (
          value: string,
        ) => unknown)) as pg.CustomTypesConfig["getTypeParser"],
};
