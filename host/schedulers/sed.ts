// Shortest expected delay, as net/netfilter/ipvs/ip_vs_sed.c (Weinrib and Shenker, "Greed is
// not enough", INFOCOM '88): the expected delay of a new job on server i is (Ci + 1) / Ui,
// Ci its active connections (inactive ones do not count here, unlike wlc), Ui its weight.
// Same shape as wlc: the first dest neither overloaded nor quiescent starts, later
// non-overloaded ones replace it only if strictly better, compared as h1*w2 > h2*w1.
//
// Worked example: list [B(w1), A(w3)], both idle: B (1)*3 > A (1)*1, so A (delay 1/3 < 1).
// A at 2 active: B 1*3 > 3*1? no -> B (1/1 = 3/3: a tie keeps the earlier, B).
import type { SchedDest, Scheduler } from './types.js';

export function createShortestExpectedDelay(): Scheduler {
  let dests: readonly SchedDest[] = [];
  return {
    destsChanged(next) { dests = next; },
    schedule() {
      const n = dests.length;
      let i = 0;
      while (i < n && (dests[i].overloaded || dests[i].weight <= 0)) i++;
      if (i === n) return undefined;
      let least = dests[i];
      let loh = least.activeConns + 1; // ip_vs_sed_dest_overhead
      for (i++; i < n; i++) {
        const d = dests[i];
        if (d.overloaded) continue;
        const doh = d.activeConns + 1;
        if (loh * d.weight > doh * least.weight) {
          least = d;
          loh = doh;
        }
      }
      return least;
    },
  };
}
