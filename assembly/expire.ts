// Expiry: the timer wheel (timer.ts) hands due records here. Connections go as
// ip_vs_conn_expire lets them; templates live on while they control connections. When the
// table is full, records already due are freed first, so a burst after an idle period is not
// refused for want of records the wheel has not reached yet.
import { CONN_FLAGS, CONN_F_TEMPLATE, CONN_PROTO, CONN_STATE, EVENT_CONN_EXPIRED, LINK_N_CONTROL } from './layout';
import { connAddr, connRecordsFree, linkAddr } from './conn';
import { timeoutMs } from './regions';
import { timeoutSlot } from './tcpstate';
import { IPPROTO_UDP } from './wire/ipv4';
import { connRelease } from './conn-life';
import { templateExpire } from './persist';
import { timerSet, wheelRun } from './timer';

/** The time the expiry being run was called with (the wheel's callback takes no extra argument). */
let expireNow: u32 = 0;

/**
 * The wheel reached a due record. Templates (and FTP control connections with data
 * connections) go after the connections due in the same tick
 * (they ask to be deferred): a template whose last connection ends as it falls due goes too,
 * as when the kernel's timers, added later first, fire in turn.
 */
function expireOne(idx: u32, tick: u32, late: bool): bool {
  if (load<u16>(connAddr(idx) + CONN_FLAGS) & CONN_F_TEMPLATE) {
    if (!late) return true;
    templateExpire(idx, tick);
  } else if (load<u32>(linkAddr(idx) + LINK_N_CONTROL) != 0) {
    // An FTP control connection lives while its data connections do (ip_vs_conn_expire:
    // n_control, expire_later): another period of its state's timeout. Like a template it
    // goes after the connections due in the same tick, so that it goes with its last one.
    if (!late) return true;
    const c = connAddr(idx);
    // From the tick it fell due at, as the kernel re-arms a timer that fired (and as
    // templates are): an expire() that catches up a long gap walks it forward in steps.
    timerSet(idx, tick + timeoutMs(timeoutSlot(load<u8>(c + CONN_PROTO) == IPPROTO_UDP, load<u8>(c + CONN_STATE))));
  } else {
    connRelease(idx, EVENT_CONN_EXPIRED, expireNow);
  }
  return false;
}

/** Expires due connections, at most `budget` of them. 1 when more remain, else 0. */
export function expireDue(now: u32, budget: u32): u32 {
  expireNow = now;
  return wheelRun(now, budget, expireOne);
}

/** Records freed per try when the table is full. */
const FULL_TABLE_EXPIRE_BUDGET: u32 = 64;

/** True when `n` records are free, after freeing a few that are already due if need be. */
export function recordsAvailable(n: u32, now: u32): bool {
  if (connRecordsFree(n)) return true;
  expireDue(now, FULL_TABLE_EXPIRE_BUDGET);
  return connRecordsFree(n);
}
