/**
 * Seeded randomness for the chaos harness: the same seed gives the same kill schedule,
 * the same victims and the same run inputs. Workers derive their scripted latencies from
 * `hash` alone, so a run's model takes as long on every worker that executes it.
 */

/** A 32-bit FNV-1a hash of a string. */
export function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** An integer in [min, max] picked by `hash(key)`. */
export function hashedBetween(key: string, min: number, max: number): number {
  return min + (hash(key) % (max - min + 1));
}

/** A seeded generator (mulberry32): `next()` in [0, 1). */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("Prng.pick: empty list");
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A key chosen with probability proportional to its weight (weights > 0 only). */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = (Object.entries(weights) as Array<[K, number]>).filter(([, w]) => w > 0);
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let x = this.next() * total;
    for (const [key, w] of entries) {
      x -= w;
      if (x < 0) return key;
    }
    return entries.at(-1)![0];
  }
}
