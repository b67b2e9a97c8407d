/**
 * Recent durations of each step, per workflow and step name, so a draining worker can
 * tell whether a step is likely to finish before its deadline. Keeps the last `window`
 * successful attempts of each step in memory; nothing is stored.
 */
export class StepDurations {
  private readonly samples = new Map<string, number[]>();

  constructor(private readonly window = 50) {}

  record(workflow: string, step: string, ms: number): void {
    const key = `${workflow}\u0000${step}`;
    const list = this.samples.get(key) ?? [];
    list.push(ms);
    if (list.length > this.window) list.shift();
    this.samples.set(key, list);
  }

  /** The 95th percentile of recent durations, or undefined before any was seen. */
  p95(workflow: string, step: string): number | undefined {
    const list = this.samples.get(`${workflow}\u0000${step}`);
    if (!list || list.length === 0) return undefined;
    const sorted = [...list].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)];
  }
}
