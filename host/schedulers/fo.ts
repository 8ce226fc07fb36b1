// Weighted fail-over, as net/netfilter/ipvs/ip_vs_fo.c: every new connection to the
// non-overloaded dest of highest weight; among equal weights the first in list order (only a
// strictly higher weight replaces the pick). Weight 0 never qualifies (the bar starts at 0).
// Connection counts play no part: the standby takes over only when the primary is quiesced,
// overloaded or deleted.
//
// Worked example: list [C(w5), B(w10), A(w10)] -> B (the first 10). B overloaded -> A;
// A and B quiesced (weight 0) -> C; everything weight 0 -> none.
import type { SchedDest, Scheduler } from './types.js';

export function createFailOver(): Scheduler {
  let dests: readonly SchedDest[] = [];
  return {
    destsChanged(next) { dests = next; },
    schedule() {
      let best: SchedDest | undefined;
      let hw = 0;
      for (const d of dests) {
        if (!d.overloaded && d.weight > hw) {
          best = d;
          hw = d.weight;
        }
      }
      return best;
    },
  };
}
