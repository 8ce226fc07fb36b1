// Connection timeouts: a timer wheel of one-millisecond buckets with lazy re-arming.
//
// Each record sits in the doubly linked list (its links array entry) of one bucket, the bucket
// of its tick `t.tick` (tick & (WHEEL_SIZE - 1)). The per-packet path only stores the new
// expiry time: a connection whose expiry moves later is left where it is, and when the wheel
// reaches its bucket it is re-linked at its real expiry (a busy 900-second connection moves
// about 14 times in its life, once per turn of the 65.5-second wheel). Only a state change
// that makes the expiry earlier than the armed tick (ESTABLISHED -> CLOSE) re-links at once,
// so the wheel expires every record at its exact millisecond, in time order.
//
// wheelRun(now, budget) walks every tick since the last call, however long the gap: an
// occupancy bitmap (a bit per bucket) lets it jump over empty buckets 64 at a time, so an
// idle day costs about 1,300 turns of 1,024 word reads, and records due in a long gap still
// go in the order of their expiry, as separate kernel timers would fire. It handles at most
// `budget` records per call, so a million connections created in the same millisecond
// expire over several batches instead of stopping the engine.
import {
  CONN_EXPIRES, CONN_F_TEMPLATE, CONN_F_TIMER, CONN_FLAGS, CONN_TTICK, LINK_NEXT, LINK_PREV,
  CTRL_WHEEL_STARTED, CTRL_WHEEL_TICK, WHEEL_SIZE,
} from './layout';
import { connAddr, linkAddr } from './conn';
import { CTRL, wheelBase } from './regions';

const WHEEL_MASK: u32 = WHEEL_SIZE - 1;

const BITMAP_WORDS: u32 = WHEEL_SIZE / 64;

@inline function bucketAddr(tick: u32): usize { return wheelBase + (<usize>(tick & WHEEL_MASK) << 2); }
@inline function bitmapWord(bucket: u32): usize { return wheelBase + (<usize>WHEEL_SIZE << 2) + (<usize>(bucket >> 6) << 3); }
@inline function markBucket(tick: u32): void {
  const b = tick & WHEEL_MASK;
  const w = bitmapWord(b);
  store<u64>(w, load<u64>(w) | (<u64>1 << <u64>(b & 63)));
}
@inline function clearBucket(tick: u32): void {
  const b = tick & WHEEL_MASK;
  const w = bitmapWord(b);
  store<u64>(w, load<u64>(w) & ~(<u64>1 << <u64>(b & 63)));
}

/** Ticks from `tick` to the next one whose bucket holds records (0 if its own does), or
 * WHEEL_SIZE when the wheel is empty. */
function distanceToNextBucket(tick: u32): u32 {
  const b = tick & WHEEL_MASK;
  let word = b >> 6;
  let bits = load<u64>(wheelBase + (<usize>WHEEL_SIZE << 2) + (<usize>word << 3)) >> <u64>(b & 63);
  if (bits != 0) return <u32>ctz<u64>(bits);
  let dist: u32 = 64 - (b & 63);
  for (let i: u32 = 0; i < BITMAP_WORDS; i++) {
    word = (word + 1) & (BITMAP_WORDS - 1);
    bits = load<u64>(wheelBase + (<usize>WHEEL_SIZE << 2) + (<usize>word << 3));
    if (bits != 0) return dist + <u32>ctz<u64>(bits);
    dist += 64;
  }
  return WHEEL_SIZE;
}

/** Signed difference a - b of two wrapping millisecond clocks. */
@inline export function timeDiff(a: u32, b: u32): i32 { return <i32>(a - b); }

function timerLink(idx: u32, tick: u32): void {
  const c = connAddr(idx);
  const link = linkAddr(idx);
  const bucket = bucketAddr(tick);
  const head = load<u32>(bucket);
  store<u32>(link + LINK_PREV, 0);
  store<u32>(link + LINK_NEXT, head);
  if (head != 0) store<u32>(linkAddr(head - 1) + LINK_PREV, idx + 1);
  else markBucket(tick);
  store<u32>(bucket, idx + 1);
  store<u32>(c + CONN_TTICK, tick);
  store<u16>(c + CONN_FLAGS, load<u16>(c + CONN_FLAGS) | CONN_F_TIMER);
}

export function timerUnlink(idx: u32): void {
  const c = connAddr(idx);
  const flags = load<u16>(c + CONN_FLAGS);
  if (!(flags & CONN_F_TIMER)) return;
  const link = linkAddr(idx);
  const prev = load<u32>(link + LINK_PREV);
  const next = load<u32>(link + LINK_NEXT);
  if (prev != 0) store<u32>(linkAddr(prev - 1) + LINK_NEXT, next);
  else {
    const tick = load<u32>(c + CONN_TTICK);
    store<u32>(bucketAddr(tick), next);
    if (next == 0) clearBucket(tick);
  }
  if (next != 0) store<u32>(linkAddr(next - 1) + LINK_PREV, prev);
  store<u16>(c + CONN_FLAGS, flags & ~CONN_F_TIMER);
}

/** Arms at `expires`, never behind the wheel's hand (a bucket already passed). */
function timerArmAt(idx: u32, expires: u32): void {
  const first = load<u32>(CTRL + CTRL_WHEEL_TICK) + 1;
  timerLink(idx, timeDiff(expires, first) < 0 ? first : expires);
}

/**
 * Sets a connection's expiry. Later than the armed tick: just store it (lazy). Earlier:
 * re-link now. Not armed yet (a new connection): link.
 */
export function timerSet(idx: u32, expires: u32): void {
  const c = connAddr(idx);
  store<u32>(c + CONN_EXPIRES, expires);
  if (!(load<u16>(c + CONN_FLAGS) & CONN_F_TIMER)) {
    timerArmAt(idx, expires);
  } else if (timeDiff(expires, load<u32>(c + CONN_TTICK)) < 0) {
    timerUnlink(idx);
    timerArmAt(idx, expires);
  }
}

/** Starts the wheel's hand at the first time the engine is given. */
export function wheelStart(now: u32): void {
  if (load<u32>(CTRL + CTRL_WHEEL_STARTED) == 0) {
    store<u32>(CTRL + CTRL_WHEEL_TICK, now - 1);
    store<u32>(CTRL + CTRL_WHEEL_STARTED, 1);
  }
}

/**
 * Moves the hand to `now`, calling `onExpire(idx, tick, false)` for each record whose expiry has
 * come by its bucket's tick (the callee releases it, or returns true to be called again with
 * late = true after the rest of that tick). Returns 1 when `budget` ran out first (call again),
 * else 0.
 */
export function wheelRun(now: u32, budget: u32, onExpire: (idx: u32, tick: u32, late: bool) => bool): u32 {
  wheelStart(now);
  let hand = load<u32>(CTRL + CTRL_WHEEL_TICK);
  if (timeDiff(now, hand) <= 0) return 0;
  while (hand != now) {
    // Jump to the next tick whose bucket holds records, or to `now`.
    const skip = distanceToNextBucket(hand + 1);
    if (<u32>timeDiff(now, hand) <= skip) { hand = now; break; }
    const tick = hand + 1 + skip;
    const bucket = bucketAddr(tick);
    // Records are taken off the bucket's head one at a time, each properly unlinked, so that
    // whatever a release does to the others (a template going with its last connection) it
    // does to well-formed lists. Records held back meanwhile are in no list, timer flag clear:
    // due, asked to go after the rest of this tick's: FTP control connections (before their
    // own templates), then templates; each after the connections they control.
    let deferred: u32 = 0;
    let deferredTemplates: u32 = 0;
    let postponed: u32 = 0; // not due, their expiry falls in this same bucket a turn later
    while (true) {
      const head = load<u32>(bucket);
      if (head == 0) break;
      if (budget == 0) {
        relinkPostponed(postponed);
        store<u32>(CTRL + CTRL_WHEEL_TICK, hand);
        runDeferred(deferred, tick, onExpire);
        runDeferred(deferredTemplates, tick, onExpire);
        return 1;
      }
      budget--;
      const idx = head - 1;
      timerUnlink(idx);
      const expires = load<u32>(connAddr(idx) + CONN_EXPIRES);
      // Due by this bucket's tick, not merely by `now`: a record whose expiry moved later
      // is re-armed there and handled in its turn, so records expire in time order, as
      // separate kernel timers would (a template must see its connections still alive).
      if (timeDiff(expires, tick) <= 0) {
        if (onExpire(idx, tick, false)) {
          if (load<u16>(connAddr(idx) + CONN_FLAGS) & CONN_F_TEMPLATE) {
            store<u32>(linkAddr(idx) + LINK_NEXT, deferredTemplates);
            deferredTemplates = idx + 1;
          } else {
            store<u32>(linkAddr(idx) + LINK_NEXT, deferred);
            deferred = idx + 1;
          }
        }
      } else if ((expires & WHEEL_MASK) == (tick & WHEEL_MASK)) {
        store<u32>(linkAddr(idx) + LINK_NEXT, postponed);
        postponed = idx + 1;
      } else {
        // Still alive: re-arm at its expiry (ahead of the hand, which passes `tick` now).
        store<u32>(CTRL + CTRL_WHEEL_TICK, tick);
        timerArmAt(idx, expires);
      }
    }
    store<u32>(CTRL + CTRL_WHEEL_TICK, tick);
    relinkPostponed(postponed);
    runDeferred(deferred, tick, onExpire);
    runDeferred(deferredTemplates, tick, onExpire);
    hand = tick;
  }
  store<u32>(CTRL + CTRL_WHEEL_TICK, hand);
  return 0;
}

/** Links records held back from a bucket into it again, at their own expiry. */
function relinkPostponed(first: u32): void {
  let cur = first;
  while (cur != 0) {
    const idx = cur - 1;
    cur = load<u32>(linkAddr(idx) + LINK_NEXT);
    timerLink(idx, load<u32>(connAddr(idx) + CONN_EXPIRES));
  }
}

/** The records of one tick that asked to go last, linked through their next fields. */
function runDeferred(first: u32, tick: u32, onExpire: (idx: u32, tick: u32, late: bool) => bool): void {
  let cur = first;
  while (cur != 0) {
    const idx = cur - 1;
    cur = load<u32>(linkAddr(idx) + LINK_NEXT);
    onExpire(idx, tick, true);
  }
}
