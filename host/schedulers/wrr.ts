// Weighted round-robin, as net/netfilter/ipvs/ip_vs_wrr.c: a current weight `cw` steps down
// from the maximum weight by the weights' gcd `di`; each pass over the list picks the
// destinations whose weight is at least `cw`.
//
// Worked example (the seed): the service starts empty (cw = mw = 0); 172.16.0.2 weight 1 is
// added (cw = mw = 1), then 172.16.0.3 weight 2, so the list is [.3 (2), .2 (1)], di = 1,
// mw = 2 and cw stays 1. Scheduling from the head:
//   cw=1: .3, .2 | wrap, cw=0 -> mw=2: .3 | wrap, cw=1: .3, .2 | wrap, cw=2: .3 | ...
// giving .3 .2 .3 .3 .2 .3 ...: 2 of every 3 new connections to the weight-2 server.
import type { SchedDest, Scheduler } from './types.js';

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

export function createWeightedRoundRobin(): Scheduler {
  let dests: readonly SchedDest[] = [];
  let cl = -1; //  current position; -1 = the list head
  let cw = 0; //   current weight
  let mw = 0; //   maximum weight, less (di - 1)
  let di = 1; //   decreasing interval: gcd of the positive weights

  function recompute(): void {
    let g = 0;
    let max = 0;
    for (const d of dests) {
      if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
      if (d.weight > max) max = d.weight;
    }
    di = g || 1;
    mw = max - (di - 1);
  }

  return {
    destsChanged(next) {
      dests = next;
      // ip_vs_wrr_dest_changed: restart from the head, keep cw where it still makes sense.
      cl = -1;
      recompute();
      if (cw > mw || cw === 0) cw = mw;
      else if (di > 1) cw = Math.floor(cw / di) * di + 1;
    },
    schedule() {
      if (mw <= 0) return undefined;
      const last = cl;
      let stop = -2; // -2: no stop mark
      let lastPass = false;
      let restarted = false;
      let i = cl;
      for (;;) {
        for (i = i + 1; i < dests.length; i++) {
          const d = dests[i];
          if (!d.overloaded && d.weight >= cw) {
            cl = i;
            return d;
          }
          if (i === stop) {
            cl = i;
            return undefined;
          }
        }
        i = -1;
        cw -= di;
        if (cw <= 0) {
          cw = mw;
          // Stop once a pass with cw <= di (every positive weight qualifies) found nothing.
          if (lastPass || last === -1) {
            cl = -1;
            return undefined;
          }
          restarted = true;
        }
        lastPass = cw <= di;
        if (lastPass && restarted && last !== -1) stop = last;
      }
    },
  };
}
