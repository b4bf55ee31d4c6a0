/**
 * A seeded pseudo-random source (mulberry32): the same seed draws the same
 * users, numbers, losses and delays, so two runs differ only in what the
 * service does.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }

  /** Uniform in [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** `digits` random decimal digits. */
  digits(digits: number): string {
    let out = "";
    for (let i = 0; i < digits; i++) out += String(Math.floor(this.next() * 10));
    return out;
  }

  /** Log-normal around `median` (spread `sigma`), clamped to [min, max]: how long people take to type a code. */
  humanDelay(median: number, sigma: number, min: number, max: number): number {
    const normal = Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next());
    return Math.min(max, Math.max(min, median * Math.exp(sigma * normal)));
  }
}
