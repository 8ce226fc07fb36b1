// Source hashing, as net/netfilter/ipvs/ip_vs_sh.c: a 256-bucket table (IP_VS_SH_TAB_BITS 8)
// tiled with the dests in list order, each repeated `weight` times (a weight-0 dest still
// takes one bucket, and is unavailable there), rebuilt on every add, edit and delete. A new
// connection goes to bucket (saddr * 2654435761) & 255, big-endian reading of the address
// (with sh-port: (sport + saddr) * 2654435761), so the table and the picks equal the
// kernel's for the same dests added in the same order.
//   A bucket's dest that is quiescent (weight 0) or overloaded means no destination, unless
// sh-fallback (flag-1): then the kernel probes bucket (roffset + hash(saddr)) & 255 with
// roffset = (hash + offset) & 255 for offset 0, 1, ... 255, i.e. buckets 2h, 2h+1, 2h+2, ...
// (h the first bucket), and takes the first available dest.
//
// Worked example: dests A (w1) then B (w2) are listed [B, A], so the buckets are
// B B A B B A ... (bucket i is A when i % 3 == 2). Only the low byte of the product
// survives the mask, so the bucket is (last octet * 0xb1) & 255: client 10.0.0.1 -> 177
// (177 % 3 = 0: B); 10.0.0.2 -> 354 & 255 = 98 (98 % 3 = 2: A). Quiesce A (weight 0):
// 10.0.0.2 gets none; with sh-fallback it probes bucket 196 (196 % 3 = 1: B).
import { goldenHash, hashFlags, unavailable } from './common.js';
import type { SchedDest, Scheduler } from './types.js';

export const SH_TAB_SIZE = 256;
const MASK = SH_TAB_SIZE - 1;

export function createSourceHashing(flags: readonly string[] = []): Scheduler {
  const { fallback, port } = hashFlags('sh', flags);
  const buckets: Array<SchedDest | undefined> = new Array(SH_TAB_SIZE).fill(undefined);

  return {
    destsChanged(dests) {
      // ip_vs_sh_reassign: stay on a dest until it has filled `weight` buckets.
      let p = 0;
      let count = 0;
      for (let i = 0; i < SH_TAB_SIZE; i++) {
        if (dests.length === 0) { buckets[i] = undefined; continue; }
        const d = dests[p];
        buckets[i] = d;
        if (++count >= d.weight) {
          p = (p + 1) % dests.length;
          count = 0;
        }
      }
    },
    schedule(packet) {
      const key = (port ? packet.sport : 0) + packet.saddr;
      const ihash = goldenHash(key, MASK);
      const dest = buckets[ihash];
      if (dest === undefined) return undefined;
      if (!unavailable(dest)) return dest;
      if (!fallback) return undefined;
      // ip_vs_sh_get_fallback: the hash of (roffset + key) is roffset + ihash, masked.
      for (let offset = 0; offset < SH_TAB_SIZE; offset++) {
        const roffset = (offset + ihash) & MASK;
        const d = buckets[(roffset + ihash) & MASK];
        if (d === undefined) break;
        if (!unavailable(d)) return d;
      }
      return undefined;
    },
  };
}
