// Connection timeouts: a timer wheel of one-millisecond buckets with lazy re-arming.
//
// Each record sits in the doubly linked list (its links array entry) of one bucket, the bucket
// of its tick `t.tick`
// (tick & (WHEEL_SIZE - 1)). The per-packet path only stores the new expiry time: a
// connection whose expiry moves later is left where it is, and when the wheel reaches its
// bucket it is re-linked at its real expiry (a busy 900-second connection moves about 14
// times in its life, once per turn of the 65.5-second wheel). Only a state change that makes
// the expiry earlier than the armed tick (ESTABLISHED -> CLOSE) re-links at once, so the
// wheel expires every connection at its exact millisecond.
//
// expireRun(now, budget) visits the buckets of the ticks since the last call (at most one
// full turn) and handles at most `budget` records, so a million connections created in the
// same millisecond expire over several batches instead of stopping the engine.
import {
  CONN_EXPIRES, CONN_F_TIMER, CONN_FLAGS, CONN_TTICK, LINK_NEXT, LINK_PREV,
  CTRL_WHEEL_STARTED, CTRL_WHEEL_TICK, WHEEL_SIZE,
} from './layout';
import { connAddr, linkAddr } from './conn';
import { CTRL, wheelBase } from './regions';

const WHEEL_MASK: u32 = WHEEL_SIZE - 1;

@inline function bucketAddr(tick: u32): usize { return wheelBase + (<usize>(tick & WHEEL_MASK) << 2); }

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
  else store<u32>(bucketAddr(load<u32>(c + CONN_TTICK)), next);
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
 * Moves the hand to `now`, calling `onExpire(idx)` for each connection whose expiry has
 * come (the callee releases the record). Returns 1 when `budget` ran out first (call again),
 * else 0.
 */
export function wheelRun(now: u32, budget: u32, onExpire: (idx: u32) => void): u32 {
  wheelStart(now);
  let hand = load<u32>(CTRL + CTRL_WHEEL_TICK);
  if (timeDiff(now, hand) <= 0) return 0;
  // More than a turn behind: one full turn visits every bucket, which is enough.
  if (<u32>timeDiff(now, hand) > WHEEL_SIZE) hand = now - WHEEL_SIZE;
  while (hand != now) {
    const tick = hand + 1;
    const bucket = bucketAddr(tick);
    // Detach the bucket: re-linked records land on a fresh list and are not seen twice.
    let cur = load<u32>(bucket);
    store<u32>(bucket, 0);
    while (cur != 0) {
      if (budget == 0) {
        reattach(bucket, cur);
        store<u32>(CTRL + CTRL_WHEEL_TICK, hand);
        return 1;
      }
      budget--;
      const idx = cur - 1;
      const c = connAddr(idx);
      cur = load<u32>(linkAddr(idx) + LINK_NEXT);
      store<u16>(c + CONN_FLAGS, load<u16>(c + CONN_FLAGS) & ~CONN_F_TIMER);
      const expires = load<u32>(c + CONN_EXPIRES);
      if (timeDiff(expires, now) <= 0) {
        onExpire(idx);
      } else {
        // Still alive: re-arm at its expiry (ahead of the hand, which passes `tick` now).
        store<u32>(CTRL + CTRL_WHEEL_TICK, tick);
        timerArmAt(idx, expires);
      }
    }
    hand = tick;
  }
  store<u32>(CTRL + CTRL_WHEEL_TICK, hand);
  return 0;
}

/** Puts the unvisited rest of a detached list (starting at `first`) back on its bucket. */
function reattach(bucket: usize, first: u32): void {
  let last = first;
  let next = load<u32>(linkAddr(last - 1) + LINK_NEXT);
  while (next != 0) { last = next; next = load<u32>(linkAddr(last - 1) + LINK_NEXT); }
  const head = load<u32>(bucket);
  store<u32>(linkAddr(first - 1) + LINK_PREV, 0);
  store<u32>(linkAddr(last - 1) + LINK_NEXT, head);
  if (head != 0) store<u32>(linkAddr(head - 1) + LINK_PREV, last);
  store<u32>(bucket, first);
}
