// The FTP application helper, as IPVS's ip_vs_ftp.c over ip_vs_app.c (masquerading only):
// FTP carries addresses in its payload (RFC 959 PORT and 227, RFC 2428 EPRT and 229), which
// NAT alone would break. The helper binds to TCP connections whose virtual port is one of the
// engine's ftpPorts (ip_vs_ftp's `ports`, default 21), and on an ESTABLISHED control
// connection's segments that carry payload:
//
//   client -> server, never rewritten:
//     PASV, EPSV (any argument, EPSV ALL too)   arm the reply parser
//     PORT h1,h2,h3,h4,p1,p2 / EPRT |1|a|p|     a connection for the server's active data
//                                               connection: client a:p, virtual VIP:vport-1,
//                                               real server RIP:dport-1, state LISTEN
//   server -> client, once armed:
//     227 ... h1,h2,h3,h4,p1,p2 ...             the address becomes the VIP's (the port stays),
//                                               and a connection for the passive data
//                                               connection: client caddr:0 (port filled in by
//                                               the client's first packet), VIP:port, h1..h4:port
//     229 ... (|||port|)                        the same connection, to RIP:port; text unchanged
//
// Worked example: the server at 10.0.0.5 (VIP 192.168.100.30) answers PASV with
// "227 Entering Passive Mode (10,0,0,5,195,80)"; the client gets "(192,168,100,30,195,80)",
// six bytes longer, and every later sequence number of the server and acknowledgement of the
// client shifts by 6 (ip_vs_app.c vs_fix_seq / vs_fix_ack_seq, with init_seq, delta and
// previous_delta so that retransmissions of data from before the change get the old delta).
// The client's SYN to VIP:50000 finds the connection with client port 0, which takes its port.
//
// Where wasmvs goes beyond ip_vs_ftp (each tested):
// - Lines, not segments: every complete line of a segment is looked at (IPVS looks at the
//   segment's start for PORT and 227), so two commands or replies in one segment work.
// - A retransmitted 227 (its sequence number is the rewritten one's) is rewritten again, the
//   same way; IPVS sends it unmodified, with the real server's address, and its length off.
// - SACK blocks in the client's acknowledgements are mapped like the acknowledgement, as
//   conntrack's nf_conntrack_seqadj.c nf_ct_sack_adjust does (IPVS's own code does not).
// - A command or reply cut by the segment's end is counted and reported as an event (the
//   host logs it), never half-parsed: the next segment does not start a line and is not
//   mistaken for one that does.
// - Acknowledgements are mapped by where they fall in the client's sequence space (after the
//   rewritten segment's start there: the new delta), as seqadj does for SACK; IPVS compares
//   with init_seq + delta, which is off for a reply that shrank.
// Sequence arithmetic is modular throughout (`after`, as the kernel's before()/after()).
//
// Why in the data plane and not the host: every packet of a control connection needs its
// sequence numbers mapped once a reply changed length, in order with the packets around it
// (a replayed capture may hold a 227 and the client's SYN to its port in one batch), and a
// data connection must exist before its first packet is looked up. Here that is a flag test
// on the connection (CONN_F_APP) for other traffic, and no host call at all.
import { checksumCompute, checksumFold, checksumSum } from './checksum';
import { connAddr, connAlloc, connHash, connLookup, connUnhash, linkAddr, tupleHash } from './conn';
import { connRelease } from './conn-life';
import { emit } from './events';
import { recordsAvailable } from './expire';
import {
  APP_DELTA, APP_FLAGS, APP_F_OUT_SEQ, APP_F_PASV, APP_INIT_SEQ, APP_PREV_DELTA, APP_SIZE, CONN_CADDR,
  CONN_CPORT, CONN_DADDR, CONN_DEST, CONN_DPORT, CONN_EXPIRES, CONN_FLAGS, CONN_F_INACTIVE,
  CONN_F_NO_CPORT, CONN_PROTO, CONN_STATE, CONN_VADDR, CONN_VPORT, COUNTER_CONN_NEW, COUNTER_FTP_BASE,
  CTRL_APP_COUNT, CTRL_NO_CPORT, DEST_INACTIVE, FTP_SESSIONS_FULL, EVENT_CONN_EXPIRED, EVENT_CONN_NEW, EVENT_FTP, FTP_ACTIVE, FTP_BAD_REPLY,
  FTP_CLASH, FTP_NO_ROOM, FTP_PASSIVE, FTP_RETRANSMIT, FTP_REWRITTEN, FTP_SPLIT_COMMAND, FTP_SPLIT_REPLY,
  FTP_TABLE_FULL, INDEX_DIR_BIT, INDEX_REF_MASK, LINK_CONTROL, LINK_N_CONTROL,
} from './layout';
import { pkt, pktHash, pktL4, pktNow, pktPartial, pktRoom, pktTotal, resultResized } from './packet';
import { add32, appBase, appKeys, appMask, appMax, count, CTRL, ftpPortsBase, timeoutMs } from './regions';
import { destAddr, destUpdateOverload } from './service';
import { TCP_S_ESTABLISHED, TCP_S_LISTEN, timeoutSlot } from './tcpstate';
import { timeDiff, timerSet } from './timer';
import { IPPROTO_TCP, ipv4Daddr, ipv4HeaderLen, ipv4Saddr } from './wire/ipv4';
import { TCP_ACK_SEQ, TCP_CHECKSUM, TCP_SEQ, tcpHeaderLen } from './wire/tcp';

const CR: u8 = 13;
const LF: u8 = 10;
const COMMA: u8 = 44;
const SPACE: u8 = 32;
const IPV4_MAX_TOTAL: u32 = 0xffff;
const TCPOPT_EOL: u8 = 0;
const TCPOPT_NOP: u8 = 1;
const TCPOPT_SACK: u8 = 5;

// The helper's table: open addressing over appMask + 1 slots, keyed by record number + 1,
// a multiplicative hash (Knuth 6.4: x times an odd constant permutes the low bits, so
// consecutive record numbers take distinct home slots), linear probing, deletion by shifting
// later entries back (Knuth 6.4 Algorithm R), as the connection index.
@inline function homeOf(key: u32): u32 { return (key * 0x9e3779b1) & appMask; }
@inline function keyAt(i: u32): u32 { return load<u32>(appKeys + (<usize>i << 2)); }
@inline function stateAt(i: u32): usize { return appBase + <usize>i * APP_SIZE; }

/** The table slot of control connection `idx` (bound: it is there). */
function slotOf(idx: u32): u32 {
  const key = idx + 1;
  let i = homeOf(key);
  while (keyAt(i) != key) i = (i + 1) & appMask;
  return i;
}

@inline function appAddr(idx: u32): usize { return stateAt(slotOf(idx)); }
/** a is after b, modulo 2^32 (the kernel's after()). */
@inline function after(a: u32, b: u32): bool { return <i32>(b - a) < 0; }

/** Does the helper bind to a TCP connection to virtual port `vport` (wire order)? */
export function ftpBinds(vport: u16): bool {
  if (ftpPortsBase == 0) return false;
  const port = <u32>bswap<u16>(vport);
  return (load<u8>(ftpPortsBase + (port >> 3)) & (<u8>1 << <u8>(port & 7))) != 0;
}

/**
 * Connection `idx` is a new control connection: its helper state starts empty. False (counted
 * and reported) when the helper already follows as many as it has room for: the connection is
 * then forwarded as any other.
 */
export function ftpBind(idx: u32): bool {
  const n = load<u32>(CTRL + CTRL_APP_COUNT);
  if (n >= appMax) { note(FTP_SESSIONS_FULL, idx, true); return false; }
  store<u32>(CTRL + CTRL_APP_COUNT, n + 1);
  const key = idx + 1;
  let i = homeOf(key);
  while (keyAt(i) != 0) i = (i + 1) & appMask;
  store<u32>(appKeys + (<usize>i << 2), key);
  memory.fill(stateAt(i), 0, APP_SIZE);
  return true;
}

/** Control connection `idx` is gone: its helper state too. */
export function ftpUnbind(idx: u32): void {
  store<u32>(CTRL + CTRL_APP_COUNT, load<u32>(CTRL + CTRL_APP_COUNT) - 1);
  let hole = slotOf(idx);
  let j = hole;
  while (true) {
    j = (j + 1) & appMask;
    const k = keyAt(j);
    if (k == 0) break;
    const home = homeOf(k);
    if (((j - home) & appMask) >= ((j - hole) & appMask)) {
      store<u32>(appKeys + (<usize>hole << 2), k);
      memory.copy(stateAt(hole), stateAt(j), APP_SIZE);
      hole = j;
    }
  }
  store<u32>(appKeys + (<usize>hole << 2), 0);
}

/** Counts what the helper did; the odd cases are also events, which the host logs. */
function note(what: u32, idx: u32, report: bool): void {
  count(COUNTER_FTP_BASE + what);
  if (report) emit(EVENT_FTP, idx, 0, <u8>what, pktNow);
}

// ---- text ------------------------------------------------------------------------------------

/** Case-insensitive: do the `n` bytes at `p` match the ASCII word `w` (upper case) from its start? */
function matchWord(p: usize, n: u32, w: string): bool {
  for (let i: u32 = 0; i < n; i++) {
    let b = load<u8>(p + i);
    if (b >= 97 && b <= 122) b -= 32;
    if (<u32>b != <u32>w.charCodeAt(i)) return false;
  }
  return true;
}

/** The line at `p` (its `n` bytes, end of line excluded) starts with `w` (case-insensitive). */
@inline function startsWith(p: usize, n: u32, w: string): bool {
  return n >= <u32>w.length && matchWord(p, <u32>w.length, w);
}

/** The `n` bytes at `p` could be the start of a line beginning with `w` (a cut-off line). */
@inline function couldStart(p: usize, n: u32, w: string): bool {
  const k = n < <u32>w.length ? n : <u32>w.length;
  return matchWord(p, k, w);
}

@inline function isDigit(b: u8): bool { return b >= 48 && b <= 57; }

// A parsed number list: h1,h2,h3,h4,p1,p2 (PORT, 227), where its address text starts and ends.
let numAddr: u32 = 0; //  wire order
let numPort: u16 = 0; //  wire order
let numStart: usize = 0;
let numAddrEnd: usize = 0;
let numEnd: usize = 0;
/** The segment being looked at had a 227 rewritten (replies, rewrite227). */
let rewrote = false;

/**
 * Parses six comma-separated numbers of 0..255 from `p` (before `end`): the address and
 * port of PORT and 227 (RFC 959 4.1.2). Sets num*; false when they do not parse.
 */
function parseSix(p: usize, end: usize): bool {
  numStart = p;
  let addr: u32 = 0;
  let port: u32 = 0;
  for (let i: u32 = 0; i < 6; i++) {
    if (i > 0) {
      if (p >= end || load<u8>(p) != COMMA) return false;
      p++;
    }
    let v: u32 = 0;
    let digits: u32 = 0;
    while (p < end && isDigit(load<u8>(p)) && digits < 4) { v = v * 10 + <u32>(load<u8>(p) - 48); p++; digits++; }
    if (digits == 0 || digits > 3 || v > 255) return false;
    if (i < 4) addr |= v << (i << 3);
    else port = (port << 8) | v;
    if (i == 3) numAddrEnd = p;
  }
  if (p < end && isDigit(load<u8>(p))) return false;
  numAddr = addr;
  numPort = bswap<u16>(<u16>port);
  numEnd = p;
  return true;
}

/** A decimal port of 1..65535 at `p` (before `end`), ending at `term`; -1 when it is not one. */
function parsePort(p: usize, end: usize, term: u8): i32 {
  let v: u32 = 0;
  let digits: u32 = 0;
  while (p < end && isDigit(load<u8>(p))) {
    v = v * 10 + <u32>(load<u8>(p) - 48);
    if (++digits > 5) return -1;
    p++;
  }
  if (digits == 0 || v == 0 || v > 0xffff || p >= end || load<u8>(p) != term) return -1;
  numEnd = p;
  return <i32>v;
}

/** A dotted IPv4 address at `p` (before `end`) ending at `term` (EPRT, RFC 2428 2); sets numAddr. */
function parseDotted(p: usize, end: usize, term: u8): bool {
  let addr: u32 = 0;
  for (let i: u32 = 0; i < 4; i++) {
    if (i > 0) {
      if (p >= end || load<u8>(p) != 46) return false;
      p++;
    }
    let v: u32 = 0;
    let digits: u32 = 0;
    while (p < end && isDigit(load<u8>(p)) && digits < 4) { v = v * 10 + <u32>(load<u8>(p) - 48); p++; digits++; }
    if (digits == 0 || digits > 3 || v > 255) return false;
    addr |= v << (i << 3);
  }
  if (p >= end || load<u8>(p) != term) return false;
  numAddr = addr;
  numEnd = p;
  return true;
}

/** Decimal digits of 0..255. */
@inline function decLen(v: u32): u32 { return v >= 100 ? 3 : v >= 10 ? 2 : 1; }

/** Writes `v` (0..255) in decimal at `p`; returns the byte after it. */
function writeDec(p: usize, v: u32): usize {
  const n = decLen(v);
  for (let i = <i32>n - 1; i >= 0; i--) { store<u8>(p + <usize>i, <u8>(48 + v % 10)); v /= 10; }
  return p + n;
}

// ---- data connections ------------------------------------------------------------------------

/**
 * Records a data connection of control connection `ctrl` (record `c`), as ip_vs_ftp's
 * ip_vs_conn_new + ip_vs_control_add + ip_vs_tcp_conn_listen: client caddr:cport (cport 0:
 * not known yet), virtual vaddr-of-the-control:vport, real server daddr:dport on the control
 * connection's server, state LISTEN, controlled by the control connection (which does not
 * expire while it lives). An existing one is kept, as the kernel finds it first.
 */
function dataConn(ctrl: u32, c: usize, caddr: u32, cport: u16, vport: u16, daddr: u32, dport: u16, passive: bool): void {
  const now = pktNow;
  const vaddr = load<u32>(c + CONN_VADDR);
  // Records first: freeing due ones must not happen between the look-ups and the insert.
  if (!recordsAvailable(1, now)) { note(FTP_TABLE_FULL, ctrl, true); return; }
  const hReq = tupleHash(caddr, cport, vaddr, vport, IPPROTO_TCP);
  const seen = connLookup(hReq, caddr, cport, vaddr, vport, IPPROTO_TCP);
  if (seen != 0) {
    const other = (seen & INDEX_REF_MASK) - 1;
    if (timeDiff(load<u32>(connAddr(other) + CONN_EXPIRES), now) > 0) {
      if (!(seen & INDEX_DIR_BIT)) return; // already there (a retransmitted command or reply)
      note(FTP_CLASH, ctrl, true);
      return;
    }
    connRelease(other, EVENT_CONN_EXPIRED, now);
  }
  const hRep = tupleHash(daddr, dport, caddr, cport, IPPROTO_TCP);
  const clash = connLookup(hRep, daddr, dport, caddr, cport, IPPROTO_TCP);
  if (clash != 0) {
    const other = (clash & INDEX_REF_MASK) - 1;
    if (timeDiff(load<u32>(connAddr(other) + CONN_EXPIRES), now) > 0) { note(FTP_CLASH, ctrl, true); return; }
    connRelease(other, EVENT_CONN_EXPIRED, now);
  }
  const idx = <u32>connAlloc();
  const n = connAddr(idx);
  const dest = load<u16>(c + CONN_DEST);
  store<u32>(n + CONN_CADDR, caddr);
  store<u32>(n + CONN_VADDR, vaddr);
  store<u32>(n + CONN_DADDR, daddr);
  store<u16>(n + CONN_CPORT, cport);
  store<u16>(n + CONN_VPORT, vport);
  store<u16>(n + CONN_DPORT, dport);
  store<u8>(n + CONN_PROTO, IPPROTO_TCP);
  store<u8>(n + CONN_STATE, TCP_S_LISTEN);
  store<u16>(n + CONN_FLAGS, CONN_F_INACTIVE | (passive ? CONN_F_NO_CPORT : 0));
  store<u16>(n + CONN_DEST, dest);
  connHash(idx, hReq);
  // ip_vs_control_add: the control connection counts it in its n_control.
  store<u32>(linkAddr(idx) + LINK_CONTROL, ctrl + 1);
  const cl = linkAddr(ctrl);
  store<u32>(cl + LINK_N_CONTROL, load<u32>(cl + LINK_N_CONTROL) + 1);
  if (passive) store<u32>(CTRL + CTRL_NO_CPORT, load<u32>(CTRL + CTRL_NO_CPORT) + 1);
  const d = destAddr(dest);
  add32(d + DEST_INACTIVE, 1);
  destUpdateOverload(d, true);
  count(COUNTER_CONN_NEW);
  emit(EVENT_CONN_NEW, idx, 0, TCP_S_LISTEN, now);
  timerSet(idx, now + timeoutMs(timeoutSlot(false, TCP_S_LISTEN)));
  note(passive ? FTP_PASSIVE : FTP_ACTIVE, ctrl, false);
}

/**
 * A TCP packet found no connection: is it the first of a passive data connection, whose
 * client port was not known (ip_vs_conn_in_get's retry with cport 0)? Then the connection
 * takes the port (ip_vs_conn_fill_cport) and its index entry is returned, else 0.
 */
export function ftpFillCport(saddr: u32, sport: u16, daddr: u32, dport: u16): u32 {
  const h = tupleHash(saddr, 0, daddr, dport, IPPROTO_TCP);
  const e = connLookup(h, saddr, 0, daddr, dport, IPPROTO_TCP);
  if (e == 0 || (e & INDEX_DIR_BIT)) return 0;
  const idx = (e & INDEX_REF_MASK) - 1;
  const c = connAddr(idx);
  const flags = load<u16>(c + CONN_FLAGS);
  if (!(flags & CONN_F_NO_CPORT)) return 0;
  connUnhash(idx);
  store<u16>(c + CONN_CPORT, sport);
  store<u16>(c + CONN_FLAGS, flags & ~CONN_F_NO_CPORT);
  connHash(idx, pktHash);
  store<u32>(CTRL + CTRL_NO_CPORT, load<u32>(CTRL + CTRL_NO_CPORT) - 1);
  return idx + 1;
}

// ---- the control connection's packets -----------------------------------------------------------

/** A client-space sequence number (an acknowledgement, a SACK edge) in the server's space. */
@inline function toServer(a: usize, s: u32): u32 {
  const init = load<u32>(a + APP_INIT_SEQ);
  const prev = load<u32>(a + APP_PREV_DELTA);
  return s - (after(s, init + prev) ? load<u32>(a + APP_DELTA) : prev);
}

/** Maps the client's acknowledgement and SACK blocks (RFC 2018) to the server's space. */
function fixAcks(a: usize, l4: usize): bool {
  if (load<u32>(a + APP_DELTA) == 0 && load<u32>(a + APP_PREV_DELTA) == 0) return false;
  const ack = bswap<u32>(load<u32>(l4 + TCP_ACK_SEQ));
  store<u32>(l4 + TCP_ACK_SEQ, bswap<u32>(toServer(a, ack)));
  // Options: kind, length, data; SACK (kind 5) holds 8-byte blocks of left and right edges.
  const end = l4 + tcpHeaderLen(l4);
  let o = l4 + 20;
  while (o < end) {
    const kind = load<u8>(o);
    if (kind == TCPOPT_EOL) break;
    if (kind == TCPOPT_NOP) { o++; continue; }
    if (o + 1 >= end) break;
    const len = <usize>load<u8>(o + 1);
    if (len < 2 || o + len > end) break;
    if (kind == TCPOPT_SACK) {
      for (let b = o + 2; b + 4 <= o + len; b += 4) store<u32>(b, bswap<u32>(toServer(a, bswap<u32>(load<u32>(b)))));
    }
    o += len;
  }
  return true;
}

/** Client -> server: PASV/EPSV arm the reply parser, PORT/EPRT open an active data connection. */
function commands(idx: u32, c: usize, a: usize, p: usize, end: usize): void {
  while (p < end) {
    let nl = p;
    while (nl < end && load<u8>(nl) != LF) nl++;
    let n = <u32>(nl - p);
    if (nl >= end) {
      // Cut off by the segment's end: counted and reported, never guessed at.
      if (n > 0 && (couldStart(p, n, 'PORT ') || couldStart(p, n, 'EPRT ') || couldStart(p, n, 'PASV') || couldStart(p, n, 'EPSV'))) note(FTP_SPLIT_COMMAND, idx, true);
      return;
    }
    if (n > 0 && load<u8>(p + n - 1) == CR) n--;
    const le = p + n;
    if ((startsWith(p, n, 'PASV') || startsWith(p, n, 'EPSV')) && (n == 4 || load<u8>(p + 4) == SPACE)) {
      store<u16>(a + APP_FLAGS, load<u16>(a + APP_FLAGS) | APP_F_PASV);
    } else if (startsWith(p, n, 'PORT ')) {
      let q = p + 5;
      while (q < le && load<u8>(q) == SPACE) q++;
      if (parseSix(q, le)) {
        store<u16>(a + APP_FLAGS, load<u16>(a + APP_FLAGS) & ~APP_F_PASV);
        activeConn(idx, c, numAddr, numPort);
      }
    } else if (startsWith(p, n, 'EPRT ') && n >= 8) {
      // EPRT <d>1<d>addr<d>port<d> (RFC 2428 2); protocol 2 (IPv6) is not ours.
      const d = load<u8>(p + 5);
      if (d >= 33 && d <= 126 && load<u8>(p + 6) == 49 && load<u8>(p + 7) == d && parseDotted(p + 8, le, d)) {
        const port = parsePort(numEnd + 1, le, d);
        if (port > 0) {
          store<u16>(a + APP_FLAGS, load<u16>(a + APP_FLAGS) & ~APP_F_PASV);
          activeConn(idx, c, numAddr, bswap<u16>(<u16>port));
        }
      }
    }
    p = nl + 1;
  }
}

/** PORT/EPRT: the server connects from RIP:dport-1 to the client's address, seen as VIP:vport-1. */
@inline function activeConn(idx: u32, c: usize, caddr: u32, cport: u16): void {
  const vport = bswap<u16>(bswap<u16>(load<u16>(c + CONN_VPORT)) - 1);
  const dport = bswap<u16>(bswap<u16>(load<u16>(c + CONN_DPORT)) - 1);
  dataConn(idx, c, caddr, cport, vport, load<u32>(c + CONN_DADDR), dport, false);
}

/**
 * Server -> client, armed (or a retransmission of the rewritten reply): 227 and 229. Returns
 * the segment's change in length; `retransmit`: the rewritten reply again, which changes
 * nothing but its own text.
 */
function replies(idx: u32, c: usize, a: usize, p: usize, end: usize, retransmit: bool): i32 {
  let grown: i32 = 0;
  rewrote = false;
  while (p < end) {
    let nl = p;
    while (nl < end && load<u8>(nl) != LF) nl++;
    let n = <u32>(nl - p);
    if (nl >= end) {
      if (n > 0 && (couldStart(p, n, '227 ') || couldStart(p, n, '229 '))) note(FTP_SPLIT_REPLY, idx, true);
      break;
    }
    if (n > 0 && load<u8>(p + n - 1) == CR) n--;
    const le = p + n;
    if (startsWith(p, n, '227 ')) {
      // RFC 1123 4.1.2.6: the numbers may come with or without parentheses: scan to a digit.
      let q = p + 4;
      while (q < le && !isDigit(load<u8>(q))) q++;
      if (!parseSix(q, le)) {
        note(FTP_BAD_REPLY, idx, true);
      } else {
        if (!retransmit) store<u16>(a + APP_FLAGS, load<u16>(a + APP_FLAGS) & ~APP_F_PASV);
        dataConn(idx, c, load<u32>(c + CONN_CADDR), 0, numPort, numAddr, numPort, true);
        const diff = rewrite227(idx, c, end, grown, retransmit);
        grown += diff;
        end += diff;
        nl += diff;
      }
    } else if (startsWith(p, n, '229 ')) {
      // 229 Entering Extended Passive Mode (<d><d><d>port<d>) (RFC 2428 3).
      let q = p + 4;
      while (q < le && load<u8>(q) != 40) q++;
      const d = q + 4 < le ? load<u8>(q + 1) : <u8>0;
      const port = d >= 33 && d <= 126 && load<u8>(q + 2) == d && load<u8>(q + 3) == d ? parsePort(q + 4, le, d) : -1;
      if (port < 0) {
        note(FTP_BAD_REPLY, idx, true);
      } else {
        if (!retransmit) store<u16>(a + APP_FLAGS, load<u16>(a + APP_FLAGS) & ~APP_F_PASV);
        const wport = bswap<u16>(<u16>port);
        dataConn(idx, c, load<u32>(c + CONN_CADDR), 0, wport, load<u32>(c + CONN_DADDR), wport, true);
      }
    }
    p = nl + 1;
  }
  return grown;
}

/**
 * Replaces the 227's address text (numStart..numAddrEnd) with the VIP's octets. The tail of
 * the segment moves by the difference; a segment that cannot grow in its slot (or past an
 * IPv4 datagram's 65,535 bytes) is left as it is, counted. Returns the change in length.
 */
function rewrite227(idx: u32, c: usize, end: usize, grown: i32, retransmit: bool): i32 {
  const vip = load<u32>(c + CONN_VADDR);
  let len: u32 = 3;
  for (let i: u32 = 0; i < 4; i++) len += decLen((vip >> (i << 3)) & 0xff);
  const diff = <i32>len - <i32>(numAddrEnd - numStart);
  const total = <u32>(<i32>pktTotal + grown + diff);
  if (diff > 0 && (total > pktRoom || total > IPV4_MAX_TOTAL)) { note(FTP_NO_ROOM, idx, true); return 0; }
  memory.copy(numAddrEnd + diff, numAddrEnd, end - numAddrEnd);
  let w = numStart;
  for (let i: u32 = 0; i < 4; i++) {
    if (i > 0) { store<u8>(w, COMMA); w++; }
    w = writeDec(w, (vip >> (i << 3)) & 0xff);
  }
  rewrote = true;
  note(FTP_REWRITTEN, idx, false);
  if (retransmit) note(FTP_RETRANSMIT, idx, false);
  return diff;
}

/**
 * The helper's part in forwarding a packet of control connection `idx` (record `c`), after
 * its addresses and ports were rewritten: sequence numbers mapped (server -> client) or
 * acknowledgements and SACK blocks (client -> server), the payload looked at, checksums made
 * right again: recomputed (the packet is a control connection's, short), or for a partial
 * checksum (vnet_hdr NEEDS_CSUM) only the pseudo-header's length adjusted.
 */
export function ftpPacket(idx: u32, c: usize, reply: bool): void {
  const a = appAddr(idx);
  const p = pkt;
  const l4 = pktL4;
  const flags = load<u16>(a + APP_FLAGS);
  const data = l4 + tcpHeaderLen(l4);
  const end = p + pktTotal;
  const established = load<u8>(c + CONN_STATE) == TCP_S_ESTABLISHED;
  let touched = false;
  let grown: i32 = 0;
  if (reply) {
    const seq = bswap<u32>(load<u32>(l4 + TCP_SEQ));
    const init = load<u32>(a + APP_INIT_SEQ);
    const delta = load<u32>(a + APP_DELTA);
    const prev = load<u32>(a + APP_PREV_DELTA);
    if (flags & APP_F_OUT_SEQ) {
      const fixed = seq + (after(seq, init) ? delta : prev);
      if (fixed != seq) { store<u32>(l4 + TCP_SEQ, bswap<u32>(fixed)); touched = true; }
    }
    const retransmit = (flags & APP_F_OUT_SEQ) != 0 && seq == init;
    if (established && data < end && ((flags & APP_F_PASV) || retransmit)) {
      grown = replies(idx, c, a, data, end, retransmit);
      // A 227 rewritten (not a retransmission): vs_seq_update, also when its length did not
      // change, so that its retransmission is known by its sequence number.
      if (!retransmit && rewrote && (!(flags & APP_F_OUT_SEQ) || after(seq, init))) {
        store<u32>(a + APP_PREV_DELTA, delta);
        store<u32>(a + APP_DELTA, delta + <u32>grown);
        store<u32>(a + APP_INIT_SEQ, seq);
        store<u16>(a + APP_FLAGS, load<u16>(a + APP_FLAGS) | APP_F_OUT_SEQ);
      }
      if (rewrote) touched = true;
    }
  } else {
    if (flags & APP_F_OUT_SEQ) touched = fixAcks(a, l4);
    if (established && data < end) commands(idx, c, a, data, end);
  }
  if (!touched) return;
  const hlen = ipv4HeaderLen(p);
  const oldTcpLen = pktTotal - hlen;
  const total = <u32>(<i32>pktTotal + grown);
  const tcpLen = total - hlen;
  if (grown != 0) {
    store<u16>(p + 2, bswap<u16>(<u16>total));
    store<u16>(p + 10, 0);
    store<u16>(p + 10, checksumCompute(p, hlen, 0));
    resultResized(total);
  }
  if (pktPartial) {
    // The field holds the uncomplemented pseudo-header sum: only its length word changed.
    if (grown != 0) {
      const old = load<u16>(l4 + TCP_CHECKSUM);
      store<u16>(l4 + TCP_CHECKSUM, checksumFold(<u64>old + <u64>(<u16>~bswap<u16>(<u16>oldTcpLen)) + <u64>bswap<u16>(<u16>tcpLen)));
    }
    return;
  }
  store<u16>(l4 + TCP_CHECKSUM, 0);
  const pseudo = <u64>(ipv4Saddr(p) & 0xffff) + <u64>(ipv4Saddr(p) >>> 16) + <u64>(ipv4Daddr(p) & 0xffff)
    + <u64>(ipv4Daddr(p) >>> 16) + <u64>bswap<u16>(<u16>IPPROTO_TCP) + <u64>bswap<u16>(<u16>tcpLen);
  store<u16>(l4 + TCP_CHECKSUM, ~checksumFold(checksumSum(l4, tcpLen, pseudo)));
}
