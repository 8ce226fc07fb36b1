// Locality-based least-connection, as net/netfilter/ipvs/ip_vs_lblc.c: a cache maps each
// destination address (packet daddr: for an ordinary service, the VIP; lblc is meant for
// cache clusters reached by the origin's address) to one dest. A new connection to a cached
// address goes to that dest, and refreshes the entry's lastuse, unless the dest has left the
// service, is quiescent (weight 0), or is "overloaded" in lblc's own sense: more active
// connections than its weight while some dest of the service is under half its weight. (The
// threshold flag does not count here: a cached dest over its upper threshold is still used.)
// Otherwise wlc over the whole service picks a dest, and the entry is replaced by a new one
// for it. Entries expire as locality.ts describes (6 min when the table is over 16K
// entries, 24 h otherwise, on a 60 s timer).
//
// Worked example: list [B(w2), A(w1)], VIP V. First connection to V: no entry; wlc over
// B (0) and A (0) keeps B (0*1 > 0*2 fails): V -> B. B then has 3 active, A 0: B is over its
// weight (3 > 2) and A is under half its weight (0 * 2 < 1), so wlc runs again: B 768*1 >
// 0*2, A wins and V -> A. With A at 2 active and B at 3, A is over its weight but no dest is
// under half its own (B: 6 < 2 no; A: 4 < 1 no), so V stays on A.
import { weightedLeastConn } from './common.js';
import { type LocalityEntry, type LocalityOptions, LocalityTable, liveDest, localityOverloaded, reindex } from './locality.js';
import type { SchedDest, Scheduler } from './types.js';

interface LblcEntry extends LocalityEntry {
  readonly dest: SchedDest;
}

export function createLocalityLeastConnection(_flags: readonly string[] = [], options: LocalityOptions = {}): Scheduler & { readonly table: LocalityTable<LblcEntry> } {
  const table = new LocalityTable<LblcEntry>(options);
  let dests: readonly SchedDest[] = [];
  const byIndex = new Map<number, SchedDest>();

  return {
    table,
    destsChanged(next) {
      dests = next;
      reindex(byIndex, next);
    },
    schedule(packet) {
      const now = table.advance(packet.now);
      const en = table.get(packet.daddr);
      if (en !== undefined) {
        en.lastuse = now;
        const dest = liveDest(byIndex, en.dest);
        if (dest !== undefined && dest.weight > 0 && !localityOverloaded(dest, dests)) return dest;
      }
      const dest = weightedLeastConn(dests);
      if (dest === undefined) return undefined;
      // ip_vs_lblc_new: keep an entry already on this dest, else replace it.
      if (en === undefined || liveDest(byIndex, en.dest) !== dest) {
        if (en !== undefined) table.remove(en);
        table.add({ addr: packet.daddr, dest, lastuse: now });
      }
      return dest;
    },
  };
}
