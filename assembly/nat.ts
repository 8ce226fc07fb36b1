// The per-packet path of IPVS NAT ("masquerading", net/netfilter/ipvs/ip_vs_core.c and
// ip_vs_xmit.c ip_vs_nat_xmit), over one ring slot at a time:
//
//   validate IPv4 -> validate TCP/UDP -> hash the tuple -> look up the connection
//     found, request direction  (client -> VIP:vport):    DNAT to RIP:rport      FORWARD
//     found, reply direction    (RIP:rport -> client):    SNAT back to VIP:vport FORWARD
//     not found, VIP service, TCP SYN or any UDP:         schedule (one host call), record,
//                                                         DNAT                   FORWARD
//     not found, VIP without that service, or ICMP query
//       or another protocol to a VIP:                     the director's own     LOCAL
//     anything else:                                      not ours               PASS
//
// Worked example (the seed's golden test): service TCP 202.103.106.5:80, the scheduler picks
// 172.16.0.3:8000. 202.100.1.2:3456 -> 202.103.106.5:80 leaves as 202.100.1.2:3456 ->
// 172.16.0.3:8000; the reply 172.16.0.3:8000 -> 202.100.1.2:3456 leaves as
// 202.103.106.5:80 -> 202.100.1.2:3456. Each rewrite adjusts the IP and TCP checksums by the
// difference of the changed words only (checksum.ts); the payload is never read.
//
// Connection reuse follows IPVS conn_reuse_mode=1 (ip_vs_core.c is_new_conn_expected): a
// new SYN on the tuple of a connection in TIME_WAIT or CLOSE retires the old connection and
// is scheduled afresh, in the same pass (the kernel drops that SYN and waits for the
// client's retransmit a second later; we do not need to).
import {
  checksumCompute, checksumPartialReplace32, checksumReplace32, checksumReplace32And16,
} from './checksum';
import {
  connAddr, connAlloc, connFree, connHash, connLookup, connRecordsFree, connTouch, connUnhash, indexTouch,
  linkAddr, tupleHash,
} from './conn';
import {
  CONN_CADDR, CONN_CPORT, CONN_DADDR, CONN_DEST, CONN_DPORT, CONN_EXPIRES, CONN_FLAGS,
  CONN_F_HASHED, CONN_F_INACTIVE, CONN_F_TEMPLATE, CONN_F_TIMER, CONN_PROTO, CONN_STATE, CONN_VADDR, CONN_VPORT,
  COUNTER_CONN_EXPIRED, COUNTER_CONN_NEW, COUNTER_CONN_REUSED, COUNTER_EVENTS_LOST,
  COUNTER_FORWARD_IN, COUNTER_FORWARD_OUT, CTRL_EVENT_MASK, CTRL_EVENT_READ, CTRL_EVENT_WRITE,
  CTRL_SETTINGS, DESC_CONN, DESC_FLAGS, DESC_F_CSUM_PARTIAL, DESC_F_NEW_CONN, DESC_F_REPLY,
  DESC_HASH_HI, DESC_L3OFF, DESC_LEN, DESC_REASON, DESC_SIZE, DESC_VERDICT, DEST_ACTIVE,
  DEST_CONNS, DEST_DADDR, DEST_DPORT, DEST_FLAGS, DEST_F_AVAILABLE, DEST_INACTIVE, DEST_IN_BYTES,
  DEST_IN_PKTS, DEST_OUT_BYTES, DEST_OUT_PKTS, DEST_PERSIST, DROP_BAD_SLOT, DROP_DEST_GONE,
  DROP_FRAGMENT, DROP_ICMP_NO_CONN, DROP_NO_CONN, DROP_NO_DEST, DROP_SCHEDULER_ERROR, DROP_SHORT_PACKET,
  DROP_TABLE_FULL, DROP_TUPLE_CLASH, EVENT_CADDR, EVENT_CONN, EVENT_CONN_EXPIRED, EVENT_CONN_NEW,
  EVENT_CONN_REUSED, EVENT_CONN_STATE, EVENT_CPORT, EVENT_DADDR, EVENT_DEST, EVENT_DPORT,
  EVENT_NEW_STATE, EVENT_OLD_STATE, EVENT_PROTO, EVENT_SIZE, EVENT_TIME, EVENT_TYPE, EVENT_VADDR,
  EVENT_VPORT, INDEX_DIR_BIT, INDEX_REF_MASK, LINK_CONTROL, LINK_N_CONTROL, LINK_TIMEOUT,
  LOCAL_ICMP, LOCAL_NO_SERVICE, LOCAL_PROTOCOL, PASS_NOT_IPV4, PASS_NO_MATCH, PASS_PROTOCOL,
  SCHEDULE_ERROR, SETTING_EXPIRE_NODEST_CONN, SVC_FLAGS,
  SVC_F_ONE_PACKET, SVC_F_PERSISTENT, SVC_NETMASK, SVC_PTIMEOUT, SVC_VPORT, TEMPLATE_PROTO_BIT,
  VERDICT_DROP, VERDICT_FORWARD, VERDICT_LOCAL, VERDICT_NONE, VERDICT_PASS,
} from './layout';
import {
  count, countDrop, countLocal, countPass, CTRL, dataBase, descBase, eventBase, eventCapacity, maxDests,
  slotCount, slotSize, timeoutMs,
} from './regions';
import { destAddr, destUpdateOverload, isDestAddr, isVip, serviceFind, svcAddr } from './service';
import {
  TCP_S_CLOSE, TCP_S_ESTABLISHED, TCP_S_NONE, TCP_S_TIME_WAIT, tcpNextState, timeoutSlot,
  UDP_S_NORMAL,
} from './tcpstate';
import { timeDiff, timerSet, timerUnlink, wheelRun, wheelStart } from './timer';
import {
  IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ipv4Check, ipv4Checksum, ipv4Daddr, ipv4HeaderLen,
  ipv4IsLaterFragment, ipv4MoreFragments, ipv4Protocol, ipv4Saddr, ipv4SetChecksum, ipv4SetDaddr,
  ipv4SetSaddr, ipv4TotalLen, ipv4Version,
} from './wire/ipv4';
import {
  ICMP_CHECKSUM, ICMP_HEADER_LEN, ICMP_NOT_AN_ERROR, ICMP_NOT_TRANSLATABLE, icmpErrorCheck, icmpQuoted,
} from './wire/icmp';
import { TCP_ACK, TCP_CHECKSUM, TCP_FIN, TCP_RST, TCP_SYN, tcpCheck, tcpDport, tcpFlags, tcpSport } from './wire/tcp';
import { UDP_CHECKSUM, UDP_HEADER_LEN, udpCheck } from './wire/udp';

/** Asks the host's scheduler for a real server: one call per new connection, never per packet. */
@external('env', 'schedule')
declare function hostSchedule(service: u32, saddr: u32, sport: u32, daddr: u32, dport: u32): i32;

// Results of the packet being handled, written to its descriptor by processSlot.
let outReason: u16 = 0;
let outConn: u32 = 0;
let outFlags: u8 = 0;

@inline function drop(reason: u16): u8 { countDrop(reason); outReason = reason; return VERDICT_DROP; }
@inline function pass(reason: u16): u8 { countPass(reason); outReason = reason; return VERDICT_PASS; }
@inline function local(reason: u16): u8 { countLocal(reason); outReason = reason; return VERDICT_LOCAL; }

/** A SYN that opens a connection: SYN without ACK, RST or FIN. */
@inline function isOpeningSyn(flags: u8): bool { return (flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN; }

// ---- events: fixed records in a ring, drained by the host once per batch ------------------
function emit(type: u8, idx: u32, oldState: u8, newState: u8, now: u32): void {
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

@inline function add32(p: usize, delta: i32): void { store<u32>(p, load<u32>(p) + delta); }
@inline function add64(p: usize, delta: u64): void { store<u64>(p, load<u64>(p) + delta); }

// ---- connection life ------------------------------------------------------------------------
/** Moves a connection to `state`, keeping the dest's ActiveConn/InActConn right (set_tcp_state). */
function connSetState(idx: u32, state: u8, now: u32): void {
  const c = connAddr(idx);
  const old = load<u8>(c + CONN_STATE);
  if (old == state) return;
  store<u8>(c + CONN_STATE, state);
  const d = destAddr(load<u16>(c + CONN_DEST));
  const flags = load<u16>(c + CONN_FLAGS);
  if (!(flags & CONN_F_INACTIVE) && state != TCP_S_ESTABLISHED) {
    add32(d + DEST_ACTIVE, -1); add32(d + DEST_INACTIVE, 1);
    store<u16>(c + CONN_FLAGS, flags | CONN_F_INACTIVE);
  } else if ((flags & CONN_F_INACTIVE) && state == TCP_S_ESTABLISHED) {
    add32(d + DEST_ACTIVE, 1); add32(d + DEST_INACTIVE, -1);
    store<u16>(c + CONN_FLAGS, flags & ~CONN_F_INACTIVE);
  }
  emit(EVENT_CONN_STATE, idx, old, state, now);
}

/**
 * Retires a connection: out of the index and the wheel, off its dest's counts and its
 * template's, record freed.
 */
export function connRelease(idx: u32, why: u8, now: u32): void {
  const c = connAddr(idx);
  const flags = load<u16>(c + CONN_FLAGS);
  if (flags & CONN_F_TEMPLATE) {
    templateRelease(idx);
    return;
  }
  if (flags & CONN_F_HASHED) connUnhash(idx);
  timerUnlink(idx);
  const d = destAddr(load<u16>(c + CONN_DEST));
  add32(d + ((flags & CONN_F_INACTIVE) ? DEST_INACTIVE : DEST_ACTIVE), -1);
  destUpdateOverload(d, false);
  count(why == EVENT_CONN_REUSED ? COUNTER_CONN_REUSED : COUNTER_CONN_EXPIRED);
  const state = load<u8>(c + CONN_STATE);
  emit(why, idx, state, state, now);
  const control = load<u32>(linkAddr(idx) + LINK_CONTROL);
  connFree(idx);
  if (control != 0) templateDetach(control - 1);
}

// ---- persistence templates (ip_vs_core.c ip_vs_sched_persist, ip_vs_conn.c) -----------------
// A persistent service sends a client's new connections where its template says while the
// template lives: `-p` seconds after its last use, and for as long as connections it
// scheduled are alive (n_control). Worked example: -p 300 -M 255.255.255.0; 202.100.1.2 opens a
// connection, scheduled to .3:8000 -> template (202.100.1.0, VIP:80) -> .3:8000; then
// 202.100.1.77 opens one: same /24, the template sends it to .3:8000 without scheduling.

function templateRelease(idx: u32): void {
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
function templateDetach(t: u32): void {
  const link = linkAddr(t);
  const n = load<u32>(link + LINK_N_CONTROL) - 1;
  store<u32>(link + LINK_N_CONTROL, n);
  const flags = load<u16>(connAddr(t) + CONN_FLAGS);
  if (n == 0 && !(flags & CONN_F_HASHED) && (flags & CONN_F_TIMER)) templateRelease(t);
}

/** The wheel reached a template: it lives on while it controls connections (expire_later). */
function templateExpire(idx: u32, at: u32): void {
  const link = linkAddr(idx);
  if (load<u32>(link + LINK_N_CONTROL) != 0) timerSet(idx, at + load<u32>(link + LINK_TIMEOUT));
  else templateRelease(idx);
}

/**
 * The template for this client of a persistent service, or -1 (none, or no longer valid).
 * As ip_vs_check_template, a template whose server was deleted is retired; it stays valid for
 * a quiescent (weight 0) or overloaded server: persistence wins.
 */
function templateFind(th: u64, tcaddr: u32, vaddr: u32, tvport: u16, tproto: u8, now: u32): i32 {
  const e = connLookup(th, tcaddr, 0, vaddr, tvport, tproto);
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

function templateCreate(th: u64, tcaddr: u32, vaddr: u32, tvport: u16, tproto: u8, dest: u32, timeout: u32, now: u32): u32 {
  const t = <u32>connAlloc();
  const c = connAddr(t);
  const d = destAddr(dest);
  store<u32>(c + CONN_CADDR, tcaddr);
  store<u32>(c + CONN_VADDR, vaddr);
  store<u32>(c + CONN_DADDR, load<u32>(d + DEST_DADDR));
  store<u16>(c + CONN_VPORT, tvport);
  store<u16>(c + CONN_DPORT, load<u16>(d + DEST_DPORT));
  store<u8>(c + CONN_PROTO, tproto);
  store<u16>(c + CONN_FLAGS, CONN_F_TEMPLATE);
  store<u16>(c + CONN_DEST, <u16>dest);
  store<u32>(linkAddr(t) + LINK_TIMEOUT, timeout); // its own, as cp->timeout, whatever the service becomes
  add32(d + DEST_PERSIST, 1);
  connHash(t, th);
  timerSet(t, now + timeout);
  return t;
}

/** The connection's server was deleted and expire_nodest_conn is on. */
@inline function destGone(c: usize): bool {
  return (load<u32>(CTRL + CTRL_SETTINGS) & SETTING_EXPIRE_NODEST_CONN) != 0
    && (load<u16>(destAddr(load<u16>(c + CONN_DEST)) + DEST_FLAGS) & DEST_F_AVAILABLE) == 0;
}

// ---- expiry -------------------------------------------------------------------------------
let expireNow: u32 = 0;
/**
 * The wheel reached a due record. Templates go after the connections due in the same tick
 * (they ask to be deferred): a template whose last connection ends as it falls due goes too,
 * as when the kernel's timers, added later first, fire in turn.
 */
function expireOne(idx: u32, tick: u32, late: bool): bool {
  if (load<u16>(connAddr(idx) + CONN_FLAGS) & CONN_F_TEMPLATE) {
    if (!late) return true;
    templateExpire(idx, tick);
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

/** When the table is full, records whose time has come but which the wheel has not reached
 * yet are freed first, a few at a time, so a burst after an idle period is not refused. */
const FULL_TABLE_EXPIRE_BUDGET: u32 = 64;

function recordsAvailable(n: u32, now: u32): bool {
  if (connRecordsFree(n)) return true;
  expireDue(now, FULL_TABLE_EXPIRE_BUDGET);
  return connRecordsFree(n);
}

// ---- NAT rewrite --------------------------------------------------------------------------
/**
 * Rewrites one address (IP header offset `addrOff`) and one port (transport offset
 * `portOff`) and adjusts both checksums by difference (RFC 1624).
 */
@inline function rewrite(p: usize, l4: usize, isTcp: bool, partial: bool, toDest: bool,
  fromAddr: u32, toAddr: u32, fromPort: u16, toPort: u16, hasL4Checksum: bool = true): void {
  if (toDest) { ipv4SetDaddr(p, toAddr); store<u16>(l4 + 2, toPort); }
  else { ipv4SetSaddr(p, toAddr); store<u16>(l4, toPort); }
  ipv4SetChecksum(p, checksumReplace32(ipv4Checksum(p), fromAddr, toAddr));
  if (!hasL4Checksum) return; // a quote in an ICMP error may stop before it
  const ckAddr = l4 + (isTcp ? TCP_CHECKSUM : UDP_CHECKSUM);
  const check = load<u16>(ckAddr);
  if (partial) {
    // vnet_hdr NEEDS_CSUM: the field is the pseudo-header sum; ports are not part of it.
    store<u16>(ckAddr, checksumPartialReplace32(check, fromAddr, toAddr));
  } else if (isTcp) {
    store<u16>(ckAddr, checksumReplace32And16(check, fromAddr, toAddr, fromPort, toPort));
  } else if (check != 0) { // a UDP checksum of 0 means "none" and stays 0
    const updated = checksumReplace32And16(check, fromAddr, toAddr, fromPort, toPort);
    store<u16>(ckAddr, updated == 0 ? 0xffff : updated); // RFC 768: computed 0 is sent as ones
  }
}

/** Counts a forwarded packet of `bytes` toward the real server `d` (its stats, the totals). */
@inline function accountRequest(d: usize, bytes: u32): void {
  add64(d + DEST_IN_PKTS, 1); add64(d + DEST_IN_BYTES, bytes);
  count(COUNTER_FORWARD_IN);
}

/** Counts a forwarded packet of `bytes` from the real server `d` back to its client. */
@inline function accountReply(d: usize, bytes: u32): void {
  add64(d + DEST_OUT_PKTS, 1); add64(d + DEST_OUT_BYTES, bytes);
  count(COUNTER_FORWARD_OUT);
  outFlags |= DESC_F_REPLY;
}

/** Rewrites a packet of connection `idx`, moves its state and timeout. */
function forward(idx: u32, reply: bool, p: usize, l4: usize, isTcp: bool, partial: bool,
  tflags: u8, total: u32, now: u32): u8 {
  const c = connAddr(idx);
  const d = destAddr(load<u16>(c + CONN_DEST));
  if (reply) {
    rewrite(p, l4, isTcp, partial, false, load<u32>(c + CONN_DADDR), load<u32>(c + CONN_VADDR),
      load<u16>(c + CONN_DPORT), load<u16>(c + CONN_VPORT));
    accountReply(d, total);
  } else {
    rewrite(p, l4, isTcp, partial, true, load<u32>(c + CONN_VADDR), load<u32>(c + CONN_DADDR),
      load<u16>(c + CONN_VPORT), load<u16>(c + CONN_DPORT));
    accountRequest(d, total);
  }
  if (isTcp) connSetState(idx, tcpNextState(load<u8>(c + CONN_STATE), tflags, reply ? 1 : 0), now);
  timerSet(idx, now + timeoutMs(timeoutSlot(!isTcp, load<u8>(c + CONN_STATE))));
  outConn = idx + 1;
  return VERDICT_FORWARD;
}

/** Schedules and records a new connection for service `svc`, then forwards its first packet. */
function openConnection(svc: u32, h: u64, p: usize, l4: usize, isTcp: bool, partial: bool,
  tflags: u8, total: u32, saddr: u32, sport: u16, daddr: u32, dport: u16, proto: u8, now: u32): u8 {
  const s = svcAddr(svc);
  const persistent = (load<u8>(s + SVC_FLAGS) & SVC_F_PERSISTENT) != 0;
  if (!recordsAvailable(1, now)) return drop(DROP_TABLE_FULL);
  let dest: i32 = -1;
  let template: i32 = -1;
  let th: u64 = 0;
  const tcaddr = saddr & load<u32>(s + SVC_NETMASK);
  const tvport = load<u16>(s + SVC_VPORT); // 0 for a port-zero service: one template for all ports
  const tproto = proto | TEMPLATE_PROTO_BIT;
  if (persistent) {
    th = tupleHash(tcaddr, 0, daddr, tvport, tproto);
    template = templateFind(th, tcaddr, daddr, tvport, tproto, now);
    if (template >= 0) dest = <i32>load<u16>(connAddr(<u32>template) + CONN_DEST);
    // A client without a template needs a record for one as well as for the connection.
    else if (!recordsAvailable(2, now)) return drop(DROP_TABLE_FULL);
  }
  if (dest < 0) {
    dest = hostSchedule(svc, saddr, sport, daddr, dport);
    if (dest == SCHEDULE_ERROR) return drop(DROP_SCHEDULER_ERROR);
    if (dest < 0 || <u32>dest >= maxDests) return drop(DROP_NO_DEST);
    if (!(load<u16>(destAddr(<u32>dest) + DEST_FLAGS) & DEST_F_AVAILABLE)) return drop(DROP_NO_DEST);
  }
  const d = destAddr(<u32>dest);
  const raddr = load<u32>(d + DEST_DADDR);
  let rport = load<u16>(d + DEST_DPORT);
  if (rport == 0) rport = dport; // a real server without a port keeps the service's port
  // The reply tuple must be free too, or replies would be matched to another connection.
  const hr = tupleHash(raddr, rport, saddr, sport, proto);
  const clash = connLookup(hr, raddr, rport, saddr, sport, proto);
  if (clash != 0) {
    const other = (clash & INDEX_REF_MASK) - 1;
    if (timeDiff(load<u32>(connAddr(other) + CONN_EXPIRES), now) > 0) return drop(DROP_TUPLE_CLASH);
    connRelease(other, EVENT_CONN_EXPIRED, now); // already due: it no longer exists
  }
  if (persistent) {
    if (template < 0) template = <i32>templateCreate(th, tcaddr, daddr, tvport, tproto, <u32>dest, load<u32>(s + SVC_PTIMEOUT), now);
    else timerSet(<u32>template, now + load<u32>(linkAddr(<u32>template) + LINK_TIMEOUT)); // each use restarts it
  }
  const idx = <u32>connAlloc();
  const c = connAddr(idx);
  if (template >= 0) {
    store<u32>(linkAddr(idx) + LINK_CONTROL, <u32>template + 1);
    const tl = linkAddr(<u32>template);
    store<u32>(tl + LINK_N_CONTROL, load<u32>(tl + LINK_N_CONTROL) + 1);
  }
  store<u32>(c + CONN_CADDR, saddr);
  store<u32>(c + CONN_VADDR, daddr);
  store<u32>(c + CONN_DADDR, raddr);
  store<u16>(c + CONN_CPORT, sport);
  store<u16>(c + CONN_VPORT, dport);
  store<u16>(c + CONN_DPORT, rport);
  store<u8>(c + CONN_PROTO, proto);
  store<u8>(c + CONN_STATE, isTcp ? TCP_S_NONE : UDP_S_NORMAL);
  // New connections count as inactive until TCP reaches ESTABLISHED (ip_vs_ctl.c sets
  // IP_VS_CONN_F_INACTIVE in every dest's conn_flags); UDP stays inactive, as ipvsadm shows.
  store<u16>(c + CONN_FLAGS, CONN_F_INACTIVE);
  store<u16>(c + CONN_DEST, <u16>dest);
  store<u32>(c + CONN_EXPIRES, now);
  connHash(idx, h);
  add32(d + DEST_INACTIVE, 1);
  destUpdateOverload(d, true);
  add64(d + DEST_CONNS, 1);
  count(COUNTER_CONN_NEW);
  outFlags |= DESC_F_NEW_CONN;
  emit(EVENT_CONN_NEW, idx, 0, load<u8>(c + CONN_STATE), now);
  const verdict = forward(idx, false, p, l4, isTcp, partial, tflags, total, now);
  // One-packet scheduling (-o, UDP): the connection lives for this datagram only, as IPVS's
  // IP_VS_CONN_F_ONE_PACKET. Replies then find none and pass untranslated, as in IPVS.
  if (!isTcp && (load<u8>(s + SVC_FLAGS) & SVC_F_ONE_PACKET)) connRelease(idx, EVENT_CONN_EXPIRED, now);
  return verdict;
}

/**
 * Validates the IPv4 and TCP/UDP headers of an untrusted packet. Returns the final verdict
 * for a packet that is not ours or not sound (drop, pass), or VERDICT_NONE when it needs its
 * connection looked up.
 */
function validate(p: usize, avail: u32): u8 {
  if (avail == 0) return drop(DROP_SHORT_PACKET);
  if (ipv4Version(p) == 6) return pass(PASS_NOT_IPV4);
  const bad = ipv4Check(p, avail);
  if (bad) return drop(bad);
  const proto = ipv4Protocol(p);
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP) {
    // Another protocol to a VIP is the director's to answer (protocol unreachable), never to
    // route on: through a TUN it would loop back to the VIP. A later fragment of it is
    // dropped as any fragment to a VIP is (no reassembly, and one answer per datagram).
    if (!isVip(ipv4Daddr(p))) return pass(PASS_PROTOCOL);
    return ipv4IsLaterFragment(p) ? drop(DROP_FRAGMENT) : local(LOCAL_PROTOCOL);
  }
  if (ipv4IsLaterFragment(p)) {
    // No ports to look up without reassembly: drop what could be ours (to a VIP, or from a
    // real server, where passing it would leak the server's address) and let transit pass.
    return isVip(ipv4Daddr(p)) || isDestAddr(ipv4Saddr(p)) ? drop(DROP_FRAGMENT) : pass(PASS_NO_MATCH);
  }
  const hlen = ipv4HeaderLen(p);
  const l4avail = ipv4TotalLen(p) - hlen;
  const l4 = p + hlen;
  if (proto == IPPROTO_ICMP) {
    const r = icmpErrorCheck(l4, l4avail);
    // Echo requests and other queries, and errors about no flow of ours, to a VIP are the
    // director's own (it answers echo as icmp_echo does); elsewhere they are transit.
    if (r == ICMP_NOT_AN_ERROR || r == ICMP_NOT_TRANSLATABLE) return isVip(ipv4Daddr(p)) ? local(LOCAL_ICMP) : pass(PASS_PROTOCOL);
    return r ? drop(r) : VERDICT_NONE;
  }
  // A first fragment (MF set) holds only part of the datagram: its UDP length may exceed it.
  const badL4 = proto == IPPROTO_TCP ? tcpCheck(l4, l4avail)
    : (ipv4MoreFragments(p) && l4avail >= UDP_HEADER_LEN ? 0 : udpCheck(l4, l4avail));
  if (badL4) return drop(badL4);
  return VERDICT_NONE;
}

/**
 * The tuple hash a validated packet is looked up by: its own tuple, or for an ICMP error the
 * reverse of the quoted packet's (that packet left the director; its reverse came in).
 */
@inline function packetHash(p: usize): u64 {
  const l4 = p + ipv4HeaderLen(p);
  if (ipv4Protocol(p) == IPPROTO_ICMP) {
    const q = icmpQuoted(l4);
    const ql4 = q + ipv4HeaderLen(q);
    return tupleHash(ipv4Daddr(q), tcpDport(ql4), ipv4Saddr(q), tcpSport(ql4), ipv4Protocol(q));
  }
  // TCP and UDP ports share offsets 0 and 2.
  return tupleHash(ipv4Saddr(p), tcpSport(l4), ipv4Daddr(p), tcpDport(l4), ipv4Protocol(p));
}

/**
 * Translates an ICMP error about one of our connections, as ip_vs_in_icmp/ip_vs_out_icmp and
 * ip_vs_nat_icmp: the outer address on our side, the quoted packet's address and port, the
 * quoted IP and TCP/UDP checksums by difference, then the ICMP checksum over the message
 * (the payload changed). Worked example, path MTU discovery: a router between director and
 * client answers 202.103.106.5:80 -> 202.100.1.2:3456 (a reply we sent) with "fragmentation
 * needed, MTU 1400" to 202.103.106.5. The quote's reverse is the connection's request tuple,
 * so the error goes to the real server: outer destination 172.16.0.3, quote
 * 172.16.0.3:8000 -> 202.100.1.2:3456, and its TCP stack lowers the path MTU.
 */
function translateIcmp(p: usize, h: u64, now: u32): u8 {
  const m = p + ipv4HeaderLen(p);
  const mlen = ipv4TotalLen(p) - ipv4HeaderLen(p);
  const q = icmpQuoted(m);
  const qhlen = ipv4HeaderLen(q);
  const ql4 = q + qhlen;
  const qproto = ipv4Protocol(q);
  const qsaddr = ipv4Saddr(q);
  const qdaddr = ipv4Daddr(q);
  let entry = connLookup(h, qdaddr, tcpDport(ql4), qsaddr, tcpSport(ql4), qproto);
  if (entry != 0 && timeDiff(load<u32>(connAddr((entry & INDEX_REF_MASK) - 1) + CONN_EXPIRES), now) <= 0) {
    connRelease((entry & INDEX_REF_MASK) - 1, EVENT_CONN_EXPIRED, now);
    entry = 0;
  }
  if (entry == 0) {
    // About a packet from a VIP or to a real server: ours, but no connection. Else transit.
    return isVip(qsaddr) || isDestAddr(qdaddr) ? drop(DROP_ICMP_NO_CONN) : pass(PASS_NO_MATCH);
  }
  const idx = (entry & INDEX_REF_MASK) - 1;
  const c = connAddr(idx);
  const d = destAddr(load<u16>(c + CONN_DEST));
  const isTcp = qproto == IPPROTO_TCP;
  // The quote holds at least the ports; the TCP checksum only if 18 bytes of TCP are quoted.
  const quotedL4 = mlen - ICMP_HEADER_LEN - qhlen;
  const hasCheck = isTcp ? quotedL4 >= TCP_CHECKSUM + 2 : true;
  const vaddr = load<u32>(c + CONN_VADDR);
  const raddr = load<u32>(c + CONN_DADDR);
  const vport = load<u16>(c + CONN_VPORT);
  const rport = load<u16>(c + CONN_DPORT);
  const total = ipv4TotalLen(p);
  if (entry & INDEX_DIR_BIT) {
    // The quote is client -> real server, as we sent it: the error goes back to the client,
    // from the VIP (IPVS rewrites the outer source even when a router sent the error).
    rewrite(q, ql4, isTcp, false, true, raddr, vaddr, rport, vport, hasCheck);
    const outerFrom = ipv4Saddr(p);
    ipv4SetSaddr(p, vaddr);
    ipv4SetChecksum(p, checksumReplace32(ipv4Checksum(p), outerFrom, vaddr));
    accountReply(d, total);
  } else {
    // The quote is VIP -> client, as we sent it: the error goes to the real server.
    rewrite(q, ql4, isTcp, false, false, vaddr, raddr, vport, rport, hasCheck);
    const outerFrom = ipv4Daddr(p);
    ipv4SetDaddr(p, raddr);
    ipv4SetChecksum(p, checksumReplace32(ipv4Checksum(p), outerFrom, raddr));
    accountRequest(d, total);
  }
  store<u16>(m + ICMP_CHECKSUM, 0);
  store<u16>(m + ICMP_CHECKSUM, checksumCompute(m, mlen, 0));
  outConn = idx + 1;
  return VERDICT_FORWARD;
}

/** Looks up a validated packet's connection and rewrites it, or opens one, or refuses it. */
function handle(p: usize, partial: bool, h: u64, now: u32): u8 {
  const proto = ipv4Protocol(p);
  if (proto == IPPROTO_ICMP) return translateIcmp(p, h, now);
  const total = ipv4TotalLen(p);
  const l4 = p + ipv4HeaderLen(p);
  const isTcp = proto == IPPROTO_TCP;
  const saddr = ipv4Saddr(p);
  const daddr = ipv4Daddr(p);
  const sport = tcpSport(l4);
  const dport = tcpDport(l4);
  const tflags = isTcp ? tcpFlags(l4) : <u8>0;
  const entry = connLookup(h, saddr, sport, daddr, dport, proto);
  if (entry != 0) {
    const idx = (entry & INDEX_REF_MASK) - 1;
    const reply = (entry & INDEX_DIR_BIT) != 0;
    const c = connAddr(idx);
    const state = load<u8>(c + CONN_STATE);
    if (timeDiff(load<u32>(c + CONN_EXPIRES), now) <= 0) {
      // Timed out but not yet reached by the wheel: it no longer exists for this packet.
      connRelease(idx, EVENT_CONN_EXPIRED, now);
    } else if (!reply && destGone(c)) {
      // expire_nodest_conn (ip_vs_in): the server was deleted, so the connection goes now.
      // A SYN opening a new connection on its tuple is scheduled afresh; anything else is
      // dropped, and the client's retransmission or new connection finds a live server.
      connRelease(idx, EVENT_CONN_EXPIRED, now);
      if (!(isTcp && isOpeningSyn(tflags))) return drop(DROP_DEST_GONE);
    } else if (isTcp && !reply && isOpeningSyn(tflags) && (state == TCP_S_TIME_WAIT || state == TCP_S_CLOSE)) {
      connRelease(idx, EVENT_CONN_REUSED, now);
    } else {
      return forward(idx, reply, p, l4, isTcp, partial, tflags, total, now);
    }
  }
  const svc = serviceFind(proto, daddr, dport);
  // To a VIP on a port no service serves: refused as the host would (RST, port unreachable).
  if (svc < 0) return isVip(daddr) ? local(LOCAL_NO_SERVICE) : pass(PASS_NO_MATCH);
  if (isTcp && !isOpeningSyn(tflags)) return drop(DROP_NO_CONN);
  return openConnection(<u32>svc, h, p, l4, isTcp, partial, tflags, total, saddr, sport, daddr, dport, proto, now);
}

// ---- a batch: four passes over groups of slots -----------------------------------------------
// At a million connections a packet's index entry and its record are two cache misses, and
// the record's address comes from the index entry. Handled one packet at a time the misses
// follow each other (about 2 x 160 ns on this kind of machine), and the per-packet code is too
// long for the CPU to run ahead into the next packet. So slots go through in groups: pass 1
// validates and hashes each packet; pass 2 touches the index slots of the group; pass 3 reads
// the index entries, now arriving, and touches the candidate records; pass 4 does the work on
// warm lines. Passes 2 and 3 are kept tiny on purpose: a core keeps only as many misses in
// flight as its reorder window holds instructions between them. The touches are plain loads
// folded into a global so that no optimizer drops them.
//
// Between passes the slot's descriptor holds the tuple hash: its low 32 bits in DESC_CONN
// (the home slot) and bits 48..63 in DESC_HASH_HI (the tag), which is all the index uses.

const GROUP: u32 = 32;
let touchSink: u32 = 0;

@inline function slotDesc(slot: u32): usize { return descBase + <usize>slot * DESC_SIZE; }
@inline function slotPacket(slot: u32, desc: usize): usize {
  return dataBase + <usize>slot * slotSize + <usize>load<u16>(desc + DESC_L3OFF);
}
@inline function storedHash(desc: usize): u64 {
  return (<u64>load<u16>(desc + DESC_HASH_HI) << 48) | <u64>load<u32>(desc + DESC_CONN);
}

function writeResult(desc: usize, verdict: u8): void {
  store<u8>(desc + DESC_VERDICT, verdict);
  store<u16>(desc + DESC_REASON, outReason);
  store<u8>(desc + DESC_FLAGS, outFlags);
  store<u32>(desc + DESC_CONN, outConn);
}

/** Pass 1. Final verdicts are written now; returns 1 when the packet needs passes 2 and 3. */
function parseSlot(slot: u32): u32 {
  const desc = slotDesc(slot);
  const len = load<u32>(desc + DESC_LEN);
  const l3 = <u32>load<u16>(desc + DESC_L3OFF);
  outReason = 0;
  outConn = 0;
  outFlags = load<u8>(desc + DESC_FLAGS) & DESC_F_CSUM_PARTIAL;
  const verdict = len > slotSize || l3 >= len ? drop(DROP_BAD_SLOT) : validate(slotPacket(slot, desc), len - l3);
  if (verdict != VERDICT_NONE) {
    writeResult(desc, verdict);
    return 0;
  }
  const h = packetHash(slotPacket(slot, desc));
  store<u32>(desc + DESC_CONN, <u32>h);
  store<u16>(desc + DESC_HASH_HI, <u16>(h >> 48));
  store<u8>(desc + DESC_VERDICT, VERDICT_NONE);
  return 1;
}

/** Pass 4: the real work. Returns the verdict. */
function completeSlot(slot: u32, now: u32): u8 {
  const desc = slotDesc(slot);
  const partial = (load<u8>(desc + DESC_FLAGS) & DESC_F_CSUM_PARTIAL) != 0;
  outReason = 0;
  outConn = 0;
  outFlags = partial ? DESC_F_CSUM_PARTIAL : 0;
  const verdict = handle(slotPacket(slot, desc), partial, storedHash(desc), now);
  writeResult(desc, verdict);
  return verdict;
}

/** Handles one slot on its own (the host's one-packet call). Returns the verdict. */
export function processSlot(slot: u32, now: u32): u8 {
  return parseSlot(slot) ? completeSlot(slot, now) : load<u8>(slotDesc(slot) + DESC_VERDICT);
}

@inline function ringAdvance(slot: u32, k: u32): u32 {
  const next = slot + k;
  return next >= slotCount ? next - slotCount : next;
}

/** Handles `n` slots from `start`, wrapping around the ring. Returns how many were forwarded. */
export function processRing(start: u32, n: u32, now: u32): u32 {
  wheelStart(now);
  let forwarded: u32 = 0;
  let first = start;
  let left = n;
  while (left > 0) {
    const count = left < GROUP ? left : GROUP;
    let pending: u32 = 0; // bit k: slot k of the group needs passes 2 to 4
    let slot = first;
    for (let k: u32 = 0; k < count; k++) {
      pending |= parseSlot(slot) << k;
      slot = ringAdvance(slot, 1);
    }
    let sink: u32 = 0;
    slot = first;
    for (let k: u32 = 0; k < count; k++) {
      if (pending & (1 << k)) sink += indexTouch(storedHash(slotDesc(slot)));
      slot = ringAdvance(slot, 1);
    }
    slot = first;
    for (let k: u32 = 0; k < count; k++) {
      if (pending & (1 << k)) sink += connTouch(storedHash(slotDesc(slot)));
      slot = ringAdvance(slot, 1);
    }
    touchSink += sink;
    slot = first;
    for (let k: u32 = 0; k < count; k++) {
      if ((pending & (1 << k)) && completeSlot(slot, now) == VERDICT_FORWARD) forwarded++;
      slot = ringAdvance(slot, 1);
    }
    first = slot;
    left -= count;
  }
  return forwarded;
}
