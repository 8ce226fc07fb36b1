// Weighted least-connection, as net/netfilter/ipvs/ip_vs_wlc.c (ipvsadm's default): the dest
// with the smallest overhead / weight, overhead = activeConns * 256 + inactConns
// (ip_vs_dest_conn_overhead). No division: h1/w1 > h2/w2 is tested as h1*w2 > h2*w1. The
// first dest that is neither overloaded nor quiescent (weight 0) starts; each later
// non-overloaded dest replaces it only if strictly less loaded, so ties go to the earlier
// dest in list order (newest first), and a later weight-0 dest never wins (h*0 > h'*w fails).
// The loop itself is in common.ts: lblc and lblcr schedule new entries with it too.
//
// Worked example: list [C(w1), B(w2), A(w3)], A 2 active, B 1 active, C none: overheads
// A 512, B 256, C 0 -> C (0). Give C 1 active (256): C 256*2 > B 256*1, so B; then A:
// 256*3 > 512*2? 768 > 1024 no -> B (256/2 = 128 beats 512/3 = 170.7 and 256/1).
import { weightedLeastConn } from './common.js';
import type { SchedDest, Scheduler } from './types.js';

export function createWeightedLeastConnection(): Scheduler {
  let dests: readonly SchedDest[] = [];
  return {
    destsChanged(next) { dests = next; },
    schedule() { return weightedLeastConn(dests); },
  };
}
