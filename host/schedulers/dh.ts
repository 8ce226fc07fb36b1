// Destination hashing, as net/netfilter/ipvs/ip_vs_dh.c: a 256-bucket table
// (IP_VS_DH_TAB_BITS 8) filled with the dests in list order, one bucket each, round and
// round (weights play no part in the table), rebuilt on every add, edit and delete. A new
// connection goes to bucket (daddr * 2654435761) & 255 of its destination address
// (big-endian reading); that dest quiescent (weight 0) or overloaded means no destination.
// dh is meant for caches addressed by the origin server's address (fwmark or transparent
// services); for an ordinary service daddr is the VIP, so every connection maps to one dest.
//
// Worked example: dests A, B, C added in that order are listed [C, B, A], so bucket i holds
// C, B, A for i % 3 = 0, 1, 2. Only the low byte of the product survives the mask: the
// bucket is (last octet * 0xb1) & 255. daddr 202.103.106.5: 5 * 177 = 885 & 255 = 117,
// 117 % 3 = 0: C. 192.0.2.7: 7 * 177 = 1239 & 255 = 215, 215 % 3 = 2: A.
import { goldenHash } from './common.js';
import type { SchedDest, Scheduler } from './types.js';

export const DH_TAB_SIZE = 256;
const MASK = DH_TAB_SIZE - 1;

export function createDestinationHashing(): Scheduler {
  const buckets: Array<SchedDest | undefined> = new Array(DH_TAB_SIZE).fill(undefined);
  return {
    destsChanged(dests) {
      // ip_vs_dh_reassign
      for (let i = 0; i < DH_TAB_SIZE; i++) buckets[i] = dests.length === 0 ? undefined : dests[i % dests.length];
    },
    schedule(packet) {
      const dest = buckets[goldenHash(packet.daddr, MASK)];
      return dest === undefined || dest.weight <= 0 || dest.overloaded ? undefined : dest;
    },
  };
}
