// Overflow, as net/netfilter/ipvs/ip_vs_ovf.c: the highest-weight dest takes new connections
// until its active connections exceed its weight, then the next highest weight takes the
// overflow. A dest qualifies while activeConns <= weight (the kernel skips it once
// activeconns > weight), weight > 0 and not overloaded; among equal weights the first in
// list order wins. Inactive connections do not count, so for UDP (never "active") the top
// dest takes everything.
//
// Worked example: list [B(w2), A(w3)]. A takes connections while its active count is 0..3
// (A at 3 still qualifies: 3 > 3 is false); at 4 active the next pick is B, until B has 3;
// with A at 4 and B at 3, none.
import type { SchedDest, Scheduler } from './types.js';

export function createOverflow(): Scheduler {
  let dests: readonly SchedDest[] = [];
  return {
    destsChanged(next) { dests = next; },
    schedule() {
      let best: SchedDest | undefined;
      let hw = 0;
      for (const d of dests) {
        const w = d.weight;
        if (d.overloaded || d.activeConns > w || w === 0) continue;
        if (best === undefined || w > hw) {
          best = d;
          hw = w;
        }
      }
      return best;
    },
  };
}
