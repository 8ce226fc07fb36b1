// Packet bytes, checksums and the TCP state table for the reference engine: the same rules as
// assembly/wire/*.ts, assembly/checksum.ts and assembly/tcpstate.ts, written plainly over a
// DataView. Addresses and ports are numbers in the usual big-endian reading (host/addr.ts);
// one's-complement sums do not care about byte order, so checksums are computed on big-endian
// words here and give the same bytes as the data plane's little-endian words.
import { DROP_REASONS, LOCAL_REASONS, PASS_REASONS, type DropReason, type LocalReason, type PassReason } from '../../host/engine/abi.js';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_ACK = 0x10;

// Offsets from the start of the IPv4 header / the transport header.
export const IP_TOTAL_LEN = 2;
export const IP_FRAG = 6;
export const IP_PROTOCOL = 9;
export const IP_CHECKSUM = 10;
export const IP_SADDR = 12;
export const IP_DADDR = 16;
export const TCP_FLAGS = 13;
export const TCP_CHECKSUM = 16;
export const UDP_CHECKSUM = 6;
export const ICMP_CHECKSUM = 2;
export const ICMP_HEADER_LEN = 8;

// ---- checksums (assembly/checksum.ts) -------------------------------------------------------

/** One's-complement sum of `len` bytes from `at` as big-endian words (odd byte padded). */
export function sum16(bytes: Uint8Array, at: number, len: number, sum = 0): number {
  let i = 0;
  for (; i + 1 < len; i += 2) sum += (bytes[at + i] << 8) | bytes[at + i + 1];
  if (i < len) sum += bytes[at + i] << 8;
  return sum;
}

/** checksumFold: to 16 bits, not complemented. */
export function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

const halves = (x: number) => (x >>> 16) + (x & 0xffff);
const notHalves = (x: number) => ((~x >>> 16) & 0xffff) + (~x & 0xffff);

/** checksumReplace32 (RFC 1624 eqn. 3): the field after a 32-bit word changes. */
export function replace32(check: number, from: number, to: number): number {
  return ~fold((~check & 0xffff) + notHalves(from) + halves(to)) & 0xffff;
}

/** checksumReplace32And16: an address and a port changed. */
export function replace32And16(check: number, from32: number, to32: number, from16: number, to16: number): number {
  return ~fold((~check & 0xffff) + notHalves(from32) + halves(to32) + (~from16 & 0xffff) + to16) & 0xffff;
}

// ---- validation (nat.ts validate, wire/ipv4.ts ipv4Check, wire/tcp.ts, wire/udp.ts, wire/icmp.ts)

/** What validate() decides for a packet that is not to be looked up. */
export type Early = { verdict: 'drop'; reason: DropReason } | { verdict: 'pass'; reason: PassReason }
  | { verdict: 'local'; reason: LocalReason };
export const drop = (reason: DropReason): Early => ({ verdict: 'drop', reason });
export const pass = (reason: PassReason): Early => ({ verdict: 'pass', reason });
export const local = (reason: LocalReason): Early => ({ verdict: 'local', reason });

export interface Ip {
  /** The IPv4 header's offset in the bytes. */
  l3: number;
  hlen: number;
  total: number;
  protocol: number;
  saddr: number;
  daddr: number;
  laterFragment: boolean;
  moreFragments: boolean;
}

export function readIp(v: DataView, l3: number): Ip {
  const frag = v.getUint16(l3 + IP_FRAG);
  return {
    l3,
    hlen: (v.getUint8(l3) & 0x0f) * 4,
    total: v.getUint16(l3 + IP_TOTAL_LEN),
    protocol: v.getUint8(l3 + IP_PROTOCOL),
    saddr: v.getUint32(l3 + IP_SADDR),
    daddr: v.getUint32(l3 + IP_DADDR),
    laterFragment: (frag & 0x1fff) !== 0,
    moreFragments: (frag & 0x2000) !== 0,
  };
}

/** ipv4Check: header checks in the data plane's order: the drop reason, or undefined when sound. */
export function ipv4Check(bytes: Uint8Array, v: DataView, l3: number, avail: number): DropReason | undefined {
  if (avail < 20) return 'short-packet';
  if (v.getUint8(l3) >> 4 !== 4) return 'bad-version';
  const hlen = (v.getUint8(l3) & 0x0f) * 4;
  if (hlen < 20) return 'bad-ihl';
  if (hlen > avail) return 'truncated';
  const total = v.getUint16(l3 + IP_TOTAL_LEN);
  if (total < hlen) return 'bad-total-length';
  if (total > avail) return 'truncated';
  if (fold(sum16(bytes, l3, hlen)) !== 0xffff) return 'bad-ip-checksum';
  return undefined;
}

/**
 * icmpErrorCheck: undefined for a sound error quoting TCP/UDP with its ports, else the
 * outcome; what is not such an error is the director's own when `toVip`, else transit.
 */
export function icmpCheck(bytes: Uint8Array, v: DataView, m: number, len: number, toVip: boolean): Early | undefined {
  const notOurs = toVip ? local('icmp') : pass('protocol');
  if (len < ICMP_HEADER_LEN) return drop('icmp-truncated');
  const type = v.getUint8(m);
  // Destination unreachable, source quench, time exceeded, parameter problem.
  if (type !== 3 && type !== 4 && type !== 11 && type !== 12) return notOurs;
  if (fold(sum16(bytes, m, len)) !== 0xffff) return drop('bad-icmp-checksum');
  const q = m + ICMP_HEADER_LEN;
  const qlen = len - ICMP_HEADER_LEN;
  if (qlen < 20 || v.getUint8(q) >> 4 !== 4) return drop('icmp-truncated');
  const qhlen = (v.getUint8(q) & 0x0f) * 4;
  if (qhlen < 20 || qhlen + 8 > qlen) return drop('icmp-truncated');
  const quoted = readIp(v, q);
  if ((quoted.protocol !== IPPROTO_TCP && quoted.protocol !== IPPROTO_UDP) || quoted.laterFragment) return notOurs;
  return undefined;
}

/** tcpCheck / udpCheck on the transport header at `l4` with `avail` bytes of segment. */
export function l4Check(v: DataView, ip: Ip, l4: number, avail: number): DropReason | undefined {
  if (ip.protocol === IPPROTO_TCP) {
    if (avail < 20) return 'tcp-truncated';
    const doff = (v.getUint8(l4 + 12) >> 4) * 4;
    if (doff < 20 || doff > avail) return 'bad-tcp-doff';
    return undefined;
  }
  // A first fragment holds only part of the datagram: its UDP length may exceed it.
  if (ip.moreFragments && avail >= 8) return undefined;
  if (avail < 8) return 'udp-truncated';
  const len = v.getUint16(l4 + 4);
  if (len < 8 || len > avail) return 'bad-udp-length';
  return undefined;
}

// ---- the IPVS TCP state table (assembly/tcpstate.ts, ip_vs_proto_tcp.c tcp_states) ---------

export const TCP_STATE_NAMES = [
  'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE',
  'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK',
] as const;
export const S_NONE = 0;
export const S_ESTABLISHED = 1;
export const S_FIN_WAIT = 4;
export const S_TIME_WAIT = 5;
export const S_CLOSE = 6;
export const S_LISTEN = 9;

// State numbers as TCP_STATE_NAMES (sNO 0 and sSA 10 only head columns).
const [sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI] = [1, 2, 3, 4, 5, 6, 7, 8, 9];
/** [direction: 0 input (client side), 1 output (real server side)][event syn/fin/ack/rst][state]. */
const TCP_STATES = [
  [ //    sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA      INPUT
    /*syn*/ [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
    /*fin*/ [sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW],
    /*ack*/ [sCL, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
    /*rst*/ [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR],
  ],
  [ //    sNO, sES, sSS, sSR, sFW, sTW, sCL, sCW, sLA, sLI, sSA      OUTPUT
    /*syn*/ [sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR],
    /*fin*/ [sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW],
    /*ack*/ [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES],
    /*rst*/ [sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL],
  ],
];

/** tcpNextState: RST first, then SYN, FIN, ACK; none of them moves to CLOSE (set_tcp_state). */
export function tcpNextState(state: number, flags: number, reply: boolean): number {
  const event = flags & TCP_RST ? 3 : flags & TCP_SYN ? 0 : flags & TCP_FIN ? 1 : flags & TCP_ACK ? 2 : -1;
  return event < 0 ? sCL : TCP_STATES[reply ? 1 : 0][event][state];
}

/** Timeout slot of UDP's one state, after the eleven TCP states. */
export const TIMEOUT_UDP = 11;
/** ip_vs_proto_tcp.c tcp_timeouts, ip_vs_proto_udp.c udp_timeouts, in ms, by slot. */
export const DEFAULT_TIMEOUTS_MS = [
  2_000, 900_000, 120_000, 60_000, 120_000, 120_000, 10_000, 60_000, 30_000, 120_000, 120_000, 300_000,
];

export { DROP_REASONS, LOCAL_REASONS, PASS_REASONS };
