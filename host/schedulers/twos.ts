// Weighted random two choices, as net/netfilter/ipvs/ip_vs_twos.c (Mitzenmacher, "The Power
// of Two Random Choices"): draw two dests at random in proportion to weight, keep the one
// less loaded by overhead / weight (activeConns * 256 + inactConns, ip_vs_dest_conn_overhead).
// Exactly as the kernel: total = the sum of the weights of the non-overloaded dests of
// positive weight, plus 1; two draws r1, r2 = u32 % total (so 0..total-1, inclusive of the
// sum); walking the list, each such dest subtracts its weight from both, and the first dest
// that brings r1 (r2) to <= 0 is choice 1 (2). Choice 2 wins only if strictly less loaded:
// w2 * oh1 > w1 * oh2. (The draws favour the first dest by one unit: r = 0 lands on it too.)
//   The random source is injectable for tests: `random` returns [0, 1) as Math.random, and
// u32 = floor(random() * 2^32) stands in for the kernel's get_random_u32().
//
// Worked example: list [C(w1), B(w2), A(w3)], total 7. Draws u32 10 and 3: r1 = 3, r2 = 3.
// C: 3-1 = 2, 2 > 0; B: 2-2 = 0 <= 0, so choice 1 = choice 2 = B: B. Draws 0 and 6: r1 = 0,
// C: -1 <= 0, choice 1 = C; r2 = 6: C 5, B 3, A 0: choice 2 = A. C has 1 active (256 / 1),
// A 1 active (256 / 3): 3 * 256 > 1 * 256, so A.
import { connOverhead } from './common.js';
import type { SchedDest, Scheduler } from './types.js';

export interface TwosOptions {
  /** Uniform in [0, 1), as Math.random (the default). */
  random?: () => number;
}

export function createTwoChoices(_flags: readonly string[] = [], options: TwosOptions = {}): Scheduler {
  const random = options.random ?? Math.random;
  let dests: readonly SchedDest[] = [];
  const u32 = () => Math.floor(random() * 4294967296) >>> 0;

  return {
    destsChanged(next) { dests = next; },
    schedule() {
      let total = 0;
      for (const d of dests) if (!d.overloaded && d.weight > 0) total += d.weight;
      if (total === 0) return undefined;
      total += 1;
      let r1 = u32() % total;
      let r2 = u32() % total;
      let c1: SchedDest | undefined;
      let c2: SchedDest | undefined;
      let w1 = 0, w2 = 0, oh1 = 0, oh2 = 0;
      for (const d of dests) {
        if (d.overloaded || d.weight <= 0) continue;
        r1 -= d.weight;
        r2 -= d.weight;
        if (r1 <= 0 && c1 === undefined) { c1 = d; w1 = d.weight; oh1 = connOverhead(d); }
        if (r2 <= 0 && c2 === undefined) { c2 = d; w2 = d.weight; oh2 = connOverhead(d); }
        if (c1 !== undefined && c2 !== undefined) break;
      }
      return w2 * oh1 > w1 * oh2 ? c2 : c1;
    },
  };
}
