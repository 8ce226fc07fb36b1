// Round-robin, as net/netfilter/ipvs/ip_vs_rr.c: continue after the last chosen destination,
// skip those with weight 0 (quiescent) or overloaded, wrap once.
// Worked example: dests [C, B, A] (A added first), all weight 1 -> C, B, A, C, B, ...
// Setting B's weight to 0 -> C, A, C, A.
import type { SchedDest, Scheduler } from './types.js';

export function createRoundRobin(): Scheduler {
  let dests: readonly SchedDest[] = [];
  let last: SchedDest | undefined; // undefined = the list head

  return {
    destsChanged(next, change) {
      // ip_vs_rr_del_dest: if the mark is on the removed dest, step back to its predecessor.
      if (change.kind === 'del' && last === change.dest) {
        const at = dests.indexOf(change.dest);
        last = at > 0 ? dests[at - 1] : undefined;
      }
      dests = next;
    },
    schedule() {
      const n = dests.length;
      const start = last === undefined ? -1 : dests.indexOf(last);
      for (let step = 1; step <= n; step++) {
        const i = (start + step) % n;
        const d = dests[i];
        if (!d.overloaded && d.weight > 0) {
          last = d;
          return d;
        }
      }
      return undefined;
    },
  };
}
