/** One numbered schema change, embedded in the build from a `.sql` file. */
export type Migration = { version: number; name: string; sql: string };
