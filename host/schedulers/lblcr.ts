// Locality-based least-connection with replication, as net/netfilter/ipvs/ip_vs_lblcr.c: as
// lblc, but each destination address maps to a set of dests (newest first). A new connection
// to a cached address goes to the set's least loaded member by wlc's measure (members that
// left the service, are quiescent or over their threshold skipped), unless that one is
// overloaded in lblc's sense (more active connections than its weight while some dest of the
// service is under half its weight) or none qualifies: then wlc over the whole service picks
// a dest, which joins the set. A set of more than one member that has not changed for the
// expiration time (24 h) drops its most loaded member (weight > 0) on the next connection.
// Entries expire as locality.ts describes.
//
// Worked example: list [B(w1), A(w1)], VIP V. First connection: wlc keeps B (a tie):
// V -> {B}. B at 2 active, A at 0: B is over its weight and A under half its own, so wlc
// picks A, which joins: {A, B}, and the connection goes to A. Later, A at 1, B at 2: the
// set's least loaded is A (256 < 512), not overloaded (1 > 1 fails): A. A day and a minute
// after the set last changed, the next connection finds two members: it still goes to the
// least loaded (chosen first), and B, the most loaded, leaves the set.
import { connOverhead, weightedLeastConn } from './common.js';
import { type LocalityEntry, type LocalityOptions, LocalityTable, liveDest, localityOverloaded, reindex } from './locality.js';
import type { SchedDest, Scheduler } from './types.js';

interface LblcrEntry extends LocalityEntry {
  /** The dest set, newest first (list_add_rcu), and when it last changed. */
  set: SchedDest[];
  lastmod: number;
}

type ByIndex = ReadonlyMap<number, SchedDest>;

/** ip_vs_dest_set_min(): weighted least-connection among the set's available members. */
function setMin(set: readonly SchedDest[], byIndex: ByIndex): SchedDest | undefined {
  let least: SchedDest | undefined;
  let loh = 0;
  for (const e of set) {
    const d = liveDest(byIndex, e); // gone: not IP_VS_DEST_F_AVAILABLE, skipped in both stages
    if (d === undefined || d.overloaded) continue;
    if (least === undefined) {
      if (d.weight > 0) { least = d; loh = connOverhead(d); }
      continue;
    }
    const doh = connOverhead(d);
    if (loh * d.weight > doh * least.weight) { least = d; loh = doh; }
  }
  return least;
}

/** ip_vs_dest_set_max(): the position of the most loaded member of positive weight, gone or not. */
function setMax(set: readonly SchedDest[], byIndex: ByIndex): number {
  let most = -1;
  let moh = 0;
  let mw = 0;
  for (let i = 0; i < set.length; i++) {
    const d = liveDest(byIndex, set[i]) ?? set[i];
    if (d.weight <= 0) continue;
    const doh = connOverhead(d);
    if (most < 0 || moh * d.weight < doh * mw) { most = i; moh = doh; mw = d.weight; }
  }
  return most;
}

export function createLocalityLeastConnectionReplication(_flags: readonly string[] = [], options: LocalityOptions = {}): Scheduler & { readonly table: LocalityTable<LblcrEntry> } {
  const table = new LocalityTable<LblcrEntry>(options);
  let dests: readonly SchedDest[] = [];
  const byIndex = new Map<number, SchedDest>();
  const same = (a: SchedDest, b: SchedDest) => a === b || liveDest(byIndex, a) === b;

  return {
    table,
    destsChanged(next) {
      dests = next;
      reindex(byIndex, next);
    },
    schedule(packet) {
      const now = table.advance(packet.now);
      const en = table.get(packet.daddr);
      if (en === undefined) {
        const dest = weightedLeastConn(dests);
        if (dest !== undefined) table.add({ addr: packet.daddr, set: [dest], lastmod: now, lastuse: now });
        return dest;
      }
      en.lastuse = now;
      let dest = setMin(en.set, byIndex);
      if (en.set.length > 1 && now > en.lastmod + table.expiration) {
        const m = setMax(en.set, byIndex);
        if (m >= 0) {
          en.set.splice(m, 1);
          en.lastmod = now;
        }
      }
      if (dest !== undefined && !localityOverloaded(dest, dests)) return dest;
      dest = weightedLeastConn(dests);
      if (dest === undefined) return undefined;
      // ip_vs_dest_set_insert(check = true)
      if (!en.set.some((e) => same(e, dest!))) {
        en.set.unshift(dest);
        en.lastmod = now;
      }
      return dest;
    },
  };
}
