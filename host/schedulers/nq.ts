// Never queue, as net/netfilter/ipvs/ip_vs_nq.c: the first dest in list order with no
// active connection takes the new one outright ("an idle server, instead of waiting for a
// fast one"); when none is idle, shortest expected delay as sed: the least
// (activeConns + 1) / weight, compared by cross-multiplication, ties to the earlier dest.
// Overloaded and quiescent (weight 0) dests are skipped throughout.
//
// Worked example: list [C(w1), B(w1), A(w4)], A 1 active, B 0 active with 50 inactive,
// C 3 active. B is idle (inactive ones do not count): B. With B at 1 active:
// C 4, B 2 (2*1 < 4*1, B), A 2 (2*4 > 2*1, A) -> A.
import type { SchedDest, Scheduler } from './types.js';

export function createNeverQueue(): Scheduler {
  let dests: readonly SchedDest[] = [];
  return {
    destsChanged(next) { dests = next; },
    schedule() {
      let least: SchedDest | undefined;
      let loh = 0;
      for (const d of dests) {
        if (d.overloaded || d.weight === 0) continue;
        if (d.activeConns === 0) return d;
        const doh = d.activeConns + 1; // ip_vs_nq_dest_overhead
        if (least === undefined || loh * d.weight > doh * least.weight) {
          least = d;
          loh = doh;
        }
      }
      return least;
    },
  };
}
