// Least-connection, as net/netfilter/ipvs/ip_vs_lc.c: the dest with the smallest
// ip_vs_dest_conn_overhead() = activeConns * 256 + inactConns, weights ignored except that
// weight 0 (quiescent) and overloaded dests are skipped. Ties go to the first in list order
// (the newest dest), since only a strictly smaller overhead replaces the current pick.
//
// Worked example: list [C, B, A]; A has 1 active, B 0 active 300 inactive, C 0 active 2
// inactive -> overheads A 256, B 300, C 2: C. Give C 2 active (514): A (256) wins.
import { connOverhead } from './common.js';
import type { SchedDest, Scheduler } from './types.js';

export function createLeastConnection(): Scheduler {
  let dests: readonly SchedDest[] = [];
  return {
    destsChanged(next) { dests = next; },
    schedule() {
      let least: SchedDest | undefined;
      let loh = 0;
      for (const d of dests) {
        if (d.overloaded || d.weight === 0) continue;
        const doh = connOverhead(d);
        if (least === undefined || doh < loh) {
          least = d;
          loh = doh;
        }
      }
      return least;
    },
  };
}
