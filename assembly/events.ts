// Connection events: fixed 32-byte records (layout.ts EVENT_*) in a ring in linear memory,
// drained by the host once per batch (host/engine/events.ts). A type nobody listens to costs
// one load: the host keeps CTRL_EVENT_MASK to the event types it has listeners for. A full
// ring drops the event and counts it (eventsLost): the data plane never waits for the host.
import {
  CONN_CADDR, CONN_CPORT, CONN_DADDR, CONN_DEST, CONN_DPORT, CONN_PROTO, CONN_VADDR, CONN_VPORT,
  COUNTER_EVENTS_LOST, CTRL_EVENT_MASK, CTRL_EVENT_READ, CTRL_EVENT_WRITE, EVENT_CADDR, EVENT_CONN,
  EVENT_CPORT, EVENT_DADDR, EVENT_DEST, EVENT_DPORT, EVENT_NEW_STATE, EVENT_OLD_STATE, EVENT_PROTO,
  EVENT_SIZE, EVENT_TIME, EVENT_TYPE, EVENT_VADDR, EVENT_VPORT,
} from './layout';
import { connAddr } from './conn';
import { count, CTRL, eventBase, eventCapacity } from './regions';

/** Records an event of `type` about connection `idx` at time `now`, if somebody listens. */
export function emit(type: u8, idx: u32, oldState: u8, newState: u8, now: u32): void {
  if (!(load<u32>(CTRL + CTRL_EVENT_MASK) & (1 << type))) return; // nobody listens: free
  const w = load<u32>(CTRL + CTRL_EVENT_WRITE);
  if (w - load<u32>(CTRL + CTRL_EVENT_READ) >= eventCapacity) { count(COUNTER_EVENTS_LOST); return; }
  const e = eventBase + <usize>(w & (eventCapacity - 1)) * EVENT_SIZE;
  const c = connAddr(idx);
  store<u8>(e + EVENT_TYPE, type);
  store<u8>(e + EVENT_PROTO, load<u8>(c + CONN_PROTO));
  store<u8>(e + EVENT_OLD_STATE, oldState);
  store<u8>(e + EVENT_NEW_STATE, newState);
  store<u32>(e + EVENT_CONN, idx + 1);
  store<u32>(e + EVENT_CADDR, load<u32>(c + CONN_CADDR));
  store<u32>(e + EVENT_VADDR, load<u32>(c + CONN_VADDR));
  store<u32>(e + EVENT_DADDR, load<u32>(c + CONN_DADDR));
  store<u16>(e + EVENT_CPORT, load<u16>(c + CONN_CPORT));
  store<u16>(e + EVENT_VPORT, load<u16>(c + CONN_VPORT));
  store<u16>(e + EVENT_DPORT, load<u16>(c + CONN_DPORT));
  store<u16>(e + EVENT_DEST, load<u16>(c + CONN_DEST));
  store<u32>(e + EVENT_TIME, now);
  store<u32>(CTRL + CTRL_EVENT_WRITE, w + 1);
}
