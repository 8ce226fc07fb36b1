// The cache table lblc and lblcr share, as net/netfilter/ipvs/ip_vs_lblc.c and ip_vs_lblcr.c
// each have it: 1024 hash buckets (IP_VS_LBLC_TAB_BITS 10) keyed by the destination address
// with the golden-ratio hash, and a periodic timer, every CHECK_EXPIRE_INTERVAL (60 s) from
// the start, that collects stale entries:
//   - every 30th run (COUNT_FOR_FULL_EXPIRATION; the count only advances on runs that find
//     the table within max_size) a full check removes every entry unused for the expiration
//     time (sysctl lblc_expiration / lblcr_expiration, default 24 h) and restarts the count;
//   - otherwise, while the table holds more than max_size = 16 * 1024 entries, it walks the
//     buckets from the one after `rover`, removing entries unused for ENTRY_TIMEOUT (6 min),
//     and stops after the bucket where it has removed its goal of
//     min((entries - max_size) * 4 / 3, max_size / 2); the rover stays at that bucket.
// Time is engine milliseconds. The scheduler has no timer: `advance(now)` runs, in order,
// every check due by `now` (a check at time t sees the table as the kernel's timer would at
// t, since the table only changes when a connection is scheduled). The timer starts at the
// time given at creation or else at the first connection scheduled: the table is empty
// before then, so only the phase of the 30-run cycle can differ from a kernel's.
import { goldenHash } from './common.js';
import type { SchedDest } from './types.js';

export const LOCALITY_TAB_SIZE = 1024;
const MASK = LOCALITY_TAB_SIZE - 1;
export const CHECK_EXPIRE_INTERVAL_MS = 60_000;
export const ENTRY_TIMEOUT_MS = 6 * 60_000;
export const DEFAULT_EXPIRATION_MS = 24 * 60 * 60_000;
export const COUNT_FOR_FULL_EXPIRATION = 30;
export const LOCALITY_MAX_SIZE = LOCALITY_TAB_SIZE * 16;

export interface LocalityEntry {
  /** The destination address (big-endian reading). */
  readonly addr: number;
  /** Last time a connection was scheduled through this entry (ms). */
  lastuse: number;
}

export interface LocalityOptions {
  /** Engine time the service was created (the timer's start); default: the first connection. */
  start?: number;
  /** The sysctl lblc_expiration / lblcr_expiration, ms. Default 24 h. */
  expiration?: number;
}

export class LocalityTable<E extends LocalityEntry> {
  readonly buckets: E[][] = Array.from({ length: LOCALITY_TAB_SIZE }, () => []);
  readonly expiration: number;
  /** Bucket where the last partial collection stopped. */
  rover = 0;
  /** Runs since the last full check, from 1. */
  counter = 1;
  /** Engine time last seen. */
  now = 0;
  private entries = 0;
  private nextCheck: number | undefined;

  constructor(options: LocalityOptions = {}) {
    this.expiration = options.expiration ?? DEFAULT_EXPIRATION_MS;
    if (options.start !== undefined) this.nextCheck = options.start + CHECK_EXPIRE_INTERVAL_MS;
  }

  get size(): number { return this.entries; }

  static bucketOf(addr: number): number { return goldenHash(addr, MASK); }

  get(addr: number): E | undefined {
    for (const e of this.buckets[LocalityTable.bucketOf(addr)]) if (e.addr === addr) return e;
    return undefined;
  }

  /** hlist_add_head: the newest entry first in its bucket. */
  add(e: E): void {
    this.buckets[LocalityTable.bucketOf(e.addr)].unshift(e);
    this.entries++;
  }

  remove(e: E): void {
    const b = this.buckets[LocalityTable.bucketOf(e.addr)];
    b.splice(b.indexOf(e), 1);
    this.entries--;
  }

  /** Runs the checks due by `now` (if given), then returns the time to use. */
  advance(now: number | undefined): number {
    if (now === undefined) return this.now;
    this.nextCheck ??= now + CHECK_EXPIRE_INTERVAL_MS;
    while (this.nextCheck <= now) {
      if (this.entries === 0) {
        // Nothing to collect: only the count moves, c -> c % 30 + 1 per run.
        const runs = Math.floor((now - this.nextCheck) / CHECK_EXPIRE_INTERVAL_MS) + 1;
        this.counter = ((this.counter - 1 + runs) % COUNT_FOR_FULL_EXPIRATION) + 1;
        this.nextCheck += runs * CHECK_EXPIRE_INTERVAL_MS;
        break;
      }
      this.check(this.nextCheck);
      this.nextCheck += CHECK_EXPIRE_INTERVAL_MS;
    }
    this.now = now;
    return now;
  }

  /** One run of ip_vs_lblc_check_expire() at time `at`. */
  private check(at: number): void {
    if (this.counter % COUNT_FOR_FULL_EXPIRATION === 0) {
      this.sweep(at, this.expiration, Infinity);
      this.counter = 1;
      return;
    }
    if (this.entries <= LOCALITY_MAX_SIZE) {
      this.counter++;
      return;
    }
    const goal = Math.min(Math.floor(((this.entries - LOCALITY_MAX_SIZE) * 4) / 3), LOCALITY_MAX_SIZE / 2);
    this.sweep(at, ENTRY_TIMEOUT_MS, goal);
  }

  /** Walks the buckets from rover + 1, removing entries unused for `age`, until `goal` removed. */
  private sweep(at: number, age: number, goal: number): void {
    let j = this.rover;
    for (let i = 0; i < LOCALITY_TAB_SIZE; i++) {
      j = (j + 1) & MASK;
      const b = this.buckets[j];
      const kept = b.filter((e) => at < e.lastuse + age);
      goal -= b.length - kept.length;
      this.entries -= b.length - kept.length;
      this.buckets[j] = kept;
      if (goal <= 0) break;
    }
    this.rover = j;
  }
}

/**
 * The dest a cache entry points to, if it is still in the service: the kernel's entry holds
 * the dest itself, which stays IP_VS_DEST_F_AVAILABLE until deleted, and is the same dest
 * again if revived from the trash (same record, same server). Undefined if it left.
 */
/** Re-keys `byIndex` on the service's current dests (after add, edit or delete). */
export function reindex(byIndex: Map<number, SchedDest>, dests: readonly SchedDest[]): void {
  byIndex.clear();
  for (const d of dests) byIndex.set(d.index, d);
}

export function liveDest(byIndex: ReadonlyMap<number, SchedDest>, d: SchedDest): SchedDest | undefined {
  const cur = byIndex.get(d.index);
  return cur !== undefined && (cur === d || (cur.daddr === d.daddr && cur.dport === d.dport)) ? cur : undefined;
}

/**
 * lblc's and lblcr's is_overloaded(): more active connections than its weight while some
 * dest of the service is under half its weight. (Not the threshold flag: that one only
 * keeps a dest from being newly chosen.)
 */
export function localityOverloaded(dest: SchedDest, dests: readonly SchedDest[]): boolean {
  if (dest.activeConns <= dest.weight) return false;
  for (const d of dests) if (d.activeConns * 2 < d.weight) return true;
  return false;
}
