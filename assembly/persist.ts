// Persistence templates, as ip_vs_core.c ip_vs_sched_persist and ip_vs_conn.c. A persistent
// service sends a client's new connections where its template says while the template lives:
// `-p` seconds after its last use, and for as long as connections it scheduled are alive
// (n_control). A template is a connection record flagged CONN_F_TEMPLATE, keyed by (client
// address under the -M netmask, 0, VIP, service port, protocol | TEMPLATE_PROTO_BIT), so it
// shares the table, the index and the wheel with connections.
//
// Worked example: -p 300 -M 255.255.255.0; 202.100.1.2 opens a connection, scheduled to
// .3:8000 -> template (202.100.1.0, VIP:80) -> .3:8000; then 202.100.1.77 opens one: same /24,
// the template sends it to .3:8000 without scheduling.
import {
  CONN_CADDR, CONN_DADDR, CONN_DEST, CONN_DPORT, CONN_EXPIRES, CONN_FLAGS, CONN_F_HASHED,
  CONN_F_TEMPLATE, CONN_F_TIMER, CONN_PROTO, CONN_VADDR, CONN_VPORT, DEST_DADDR, DEST_DPORT,
  DEST_FLAGS, DEST_F_AVAILABLE, DEST_PERSIST, INDEX_REF_MASK, LINK_CONTROL, LINK_N_CONTROL, LINK_TIMEOUT,
  SVC_NETMASK, SVC_VPORT, TEMPLATE_PROTO_BIT,
} from './layout';
import { connAddr, connAlloc, connFree, connHash, connLookup, connUnhash, linkAddr, tupleHash } from './conn';
import { add32 } from './regions';
import { destAddr } from './service';
import { timeDiff, timerSet, timerUnlink } from './timer';

/** Frees template `idx`: out of the index and the wheel, off its server's template count. */
export function templateRelease(idx: u32): void {
  if (load<u16>(connAddr(idx) + CONN_FLAGS) & CONN_F_HASHED) connUnhash(idx);
  timerUnlink(idx);
  const d = destAddr(load<u16>(connAddr(idx) + CONN_DEST));
  add32(d + DEST_PERSIST, -1);
  connFree(idx);
}

/**
 * One of template `t`'s connections is gone; a template already retired goes with its last.
 * Not while the wheel holds it (timer flag clear: it is due in the tick being run, and is
 * released there), or the wheel would walk a freed record.
 */
export function templateDetach(t: u32): void {
  const link = linkAddr(t);
  const n = load<u32>(link + LINK_N_CONTROL) - 1;
  store<u32>(link + LINK_N_CONTROL, n);
  const flags = load<u16>(connAddr(t) + CONN_FLAGS);
  if (n == 0 && !(flags & CONN_F_HASHED) && (flags & CONN_F_TIMER)) templateRelease(t);
}

/** Connection `idx` is scheduled by template `t`: the template lives while it does. */
export function templateAttach(idx: u32, t: u32): void {
  store<u32>(linkAddr(idx) + LINK_CONTROL, t + 1);
  const tl = linkAddr(t);
  store<u32>(tl + LINK_N_CONTROL, load<u32>(tl + LINK_N_CONTROL) + 1);
}

/** The wheel reached a template: it lives on while it controls connections (expire_later). */
export function templateExpire(idx: u32, at: u32): void {
  const link = linkAddr(idx);
  if (load<u32>(link + LINK_N_CONTROL) != 0) timerSet(idx, at + load<u32>(link + LINK_TIMEOUT));
  else templateRelease(idx);
}

/** Each use of a template restarts its timer (-p seconds from now). */
export function templateTouch(t: u32, now: u32): void {
  timerSet(t, now + load<u32>(linkAddr(t) + LINK_TIMEOUT));
}

// The key of the template looked up for the new connection being scheduled: (client address
// under the -M netmask, 0, VIP, service port, protocol | TEMPLATE_PROTO_BIT) and its hash.
let keyHash: u64 = 0;
let keyCaddr: u32 = 0;
let keyVaddr: u32 = 0;
let keyVport: u16 = 0;
let keyProto: u8 = 0;

/** Sets the template key for client `saddr` of service record `s` on VIP `vaddr`. */
export function templateKey(s: usize, saddr: u32, vaddr: u32, proto: u8): void {
  keyCaddr = saddr & load<u32>(s + SVC_NETMASK);
  keyVaddr = vaddr;
  keyVport = load<u16>(s + SVC_VPORT); // 0 for a port-zero service: one template for all ports
  keyProto = proto | TEMPLATE_PROTO_BIT;
  keyHash = tupleHash(keyCaddr, 0, keyVaddr, keyVport, keyProto);
}

/**
 * The template of the key set by templateKey, or -1 (none, or no longer valid). As
 * ip_vs_check_template, a template whose server was deleted is retired; it stays valid for a
 * quiescent (weight 0) or overloaded server: persistence wins.
 */
export function templateFind(now: u32): i32 {
  const e = connLookup(keyHash, keyCaddr, 0, keyVaddr, keyVport, keyProto);
  if (e == 0) return -1;
  const t = (e & INDEX_REF_MASK) - 1;
  const c = connAddr(t);
  const dest = load<u16>(c + CONN_DEST);
  const due = timeDiff(load<u32>(c + CONN_EXPIRES), now) <= 0;
  if (!(load<u16>(destAddr(dest) + DEST_FLAGS) & DEST_F_AVAILABLE) || (due && load<u32>(linkAddr(t) + LINK_N_CONTROL) == 0)) {
    connUnhash(t); // out of the way of a new template; freed with its last connection
    if (load<u32>(linkAddr(t) + LINK_N_CONTROL) == 0) templateRelease(t);
    return -1;
  }
  return <i32>t;
}

/** A new template of the key set by templateKey, naming `dest`, living `timeout` ms after each use. */
export function templateCreate(dest: u32, timeout: u32, now: u32): u32 {
  const t = <u32>connAlloc();
  const c = connAddr(t);
  const d = destAddr(dest);
  store<u32>(c + CONN_CADDR, keyCaddr);
  store<u32>(c + CONN_VADDR, keyVaddr);
  store<u32>(c + CONN_DADDR, load<u32>(d + DEST_DADDR));
  store<u16>(c + CONN_VPORT, keyVport);
  store<u16>(c + CONN_DPORT, load<u16>(d + DEST_DPORT));
  store<u8>(c + CONN_PROTO, keyProto);
  store<u16>(c + CONN_FLAGS, CONN_F_TEMPLATE);
  store<u16>(c + CONN_DEST, <u16>dest);
  store<u32>(linkAddr(t) + LINK_TIMEOUT, timeout); // its own, as cp->timeout, whatever the service becomes
  add32(d + DEST_PERSIST, 1);
  connHash(t, keyHash);
  timerSet(t, now + timeout);
  return t;
}
