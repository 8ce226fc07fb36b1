// Answers for packets addressed to a VIP that no service serves, as a host owning that address
// would answer them (issue 8, "Traffic addressed to the director itself"):
//
//   TCP, any segment but a RST     -> RST                 RFC 793 "Reset Generation" (RFC 9293 3.10.7.1),
//                                                         as net/ipv4/tcp_ipv4.c tcp_v4_send_reset
//   UDP                            -> ICMP 3/3 port unreachable      RFC 1122 4.1.3.1, net/ipv4/udp.c
//   ICMP echo request (8/0)        -> ICMP echo reply (0/0)          RFC 792, RFC 1122 3.2.2.6
//   ICMP anything else             -> nothing                        RFC 1122 3.2.2 (never an error about an error)
//   IGMP                           -> nothing (a host has IGMP and ignores it sent to a unicast address, net/ipv4/igmp.c)
//   any other protocol             -> ICMP 3/2 protocol unreachable  RFC 1122 3.2.2.1, ip_local_deliver_finish
//
// Never answered (RFC 1122 3.2.2 for ICMP errors; the kernel drops these before TCP sees them, so
// no RST either): a non-initial fragment; a source that names no single host (0/8, 127/8,
// 224/4, 255.255.255.255 — the kernel's martian sources, net/ipv4/route.c ip_route_input_slow;
// 240/4 is unicast there since 2.6.25, so it is answered); a multicast or broadcast destination;
// a packet that does not parse (version, IHL, total length, a bad IPv4 header checksum as
// ip_rcv_core drops, truncated L4 headers, a UDP length that does not fit as __udp4_lib_rcv
// drops, an ICMP echo with a bad checksum as icmp_rcv drops); a packet with a source-route
// option, which Linux drops with accept_source_route 0 (its default) and which RFC 1122 3.2.2.6
// would otherwise oblige us to reverse. TCP and UDP checksums are not checked: packets may come
// from a TUN with offload, carrying partial checksums (the pseudo-header sum only).
//
// A fragment with more to follow (MF set, offset 0) is answered only where the answer does not
// need the rest: a RST to a segment with ACK (seq = SEG.ACK), and ICMP errors (the quote is the
// first bytes). A RST|ACK needs SEG.LEN and an echo reply the whole payload, which only
// reassembly gives, so those fragments are not answered.
//
// Every answer is built from scratch, checksums computed in full, into the caller's buffer; no
// allocation per answer. Source = the packet's destination (the VIP, and its port for TCP),
// destination = its source, TTL 64 (net.ipv4.ip_default_ttl), no IP options.
//
//   RST (40 bytes)        IP: tos of the packet with ECN cleared, DF, id 0 (tcp_sk_init sets the
//                         control socket IP_PMTUDISC_DO; ip_select_ident gives DF packets id 0)
//                         TCP: ports swapped, seq/ack below, data offset 5, window 0, no options
//   ICMP error (<= 576)   IP: precedence Internetwork Control (RFC 1812 4.3.2.5) with the packet's
//                         TOS bits, as icmp_send; no DF (icmp_sk_init: IP_PMTUDISC_DONT); id from
//                         a counter. ICMP: type 3, code, 4 zero bytes, then the original IP header
//                         and as much of the datagram as keeps the whole reply within 576 bytes
//                         (RFC 1812 4.3.2.3; icmp_send caps room at 576), never past its end.
//   Echo reply            IP as an ICMP error but with the request's tos (ECN cleared); ICMP:
//                         type 0 code 0, the request's identifier, sequence and data.
//
// Every answer takes one token from one bucket (ratelimit.ts). The kernel limits only ICMP
// errors (icmp_ratemask 0x1818) and not RSTs or echo replies; the gateway bounds all of them,
// since every answer it generates costs the same and a flood of SYNs or pings to a VIP should
// not turn the director into an amplifier.
import { TokenBucket } from './ratelimit.js';
import { WasmvsError } from '../errors.js';

export type ReplyKind = 'tcp-reset' | 'port-unreachable' | 'echo-reply' | 'protocol-unreachable';

export interface ResponderOptions {
  /** Answers per second refilled into the bucket; default 1000 (net.ipv4.icmp_msgs_per_sec). */
  ratePerSecond?: number;
  /** Bucket capacity and initial fill; default 50 (net.ipv4.icmp_msgs_burst). */
  burst?: number;
}

export interface ResponderCounters {
  tcpReset: number;
  portUnreachable: number;
  echoReply: number;
  protocolUnreachable: number;
  /** Answerable, but the bucket was empty. */
  rateLimited: number;
  /** Nothing to answer: see the list above (also an answer larger than `out`). */
  notAnswered: number;
}

export const DEFAULT_RATE_PER_SECOND = 1000;
export const DEFAULT_BURST = 50;
/** RFC 1812 4.3.2.3: an ICMP error stays within 576 bytes. */
export const ICMP_ERROR_MAX_LEN = 576;
/** Length of every RST this module sends. */
export const TCP_RESET_LEN = 40;

const IPPROTO_ICMP = 1;
const IPPROTO_IGMP = 2;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

// IPv4 header (RFC 791)
const IP_HEADER_LEN = 20;
const IP_VER_IHL = 0;
const IP_TOS = 1;
const IP_TOTAL_LEN = 2;
const IP_ID = 4;
const IP_FRAG = 6;
const IP_TTL = 8;
const IP_PROTOCOL = 9;
const IP_CHECKSUM = 10;
const IP_SRC = 12;
const IP_DST = 16;
const IP_VERSION_4 = 4;
const IHL_MASK = 0x0f;
const IP_DF = 0x4000;
const IP_MF = 0x2000;
const FRAG_OFFSET_MASK = 0x1fff;
const DEFAULT_TTL = 64;
const ECN_MASK = 0x03;
const TOS_BITS = 0x1e; // RT_TOS: the four TOS bits, without precedence and the unused bit
const PREC_INTERNETCONTROL = 0xc0;
const IPOPT_END = 0;
const IPOPT_NOOP = 1;
const IPOPT_LSRR = 131;
const IPOPT_SSRR = 137;

// TCP header (RFC 9293)
const TCP_HEADER_LEN = 20;
const TCP_SPORT = 0;
const TCP_DPORT = 2;
const TCP_SEQ = 4;
const TCP_ACK = 8;
const TCP_DATA_OFF = 12;
const TCP_FLAGS = 13;
const TCP_WINDOW = 14;
const TCP_CHECKSUM = 16;
const TCP_URGENT = 18;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK_FLAG = 0x10;

// UDP header (RFC 768)
const UDP_HEADER_LEN = 8;
const UDP_LENGTH = 4;

// ICMP (RFC 792)
const ICMP_HEADER_LEN = 8;
const ICMP_TYPE = 0;
const ICMP_CODE = 1;
const ICMP_CHECKSUM = 2;
const ICMP_ECHO_REPLY = 0;
const ICMP_DEST_UNREACH = 3;
const ICMP_ECHO = 8;
const ICMP_PROT_UNREACH = 2;
const ICMP_PORT_UNREACH = 3;

export class Responder {
  private readonly bucket: TokenBucket;
  private kind: ReplyKind | undefined = undefined;
  /** IP identification of the next ICMP answer (RSTs carry DF and id 0). */
  private nextId = 0;
  private readonly count: ResponderCounters = {
    tcpReset: 0, portUnreachable: 0, echoReply: 0, protocolUnreachable: 0, rateLimited: 0, notAnswered: 0,
  };

  constructor(options: ResponderOptions = {}) {
    if (options === null || typeof options !== 'object') {
      throw new WasmvsError('WASMVS_BAD_OPTION', 'responder options must be an object');
    }
    for (const key of Object.keys(options)) {
      if (key !== 'ratePerSecond' && key !== 'burst') {
        throw new WasmvsError('WASMVS_BAD_OPTION', `unknown responder option "${key}" (known: ratePerSecond, burst)`);
      }
    }
    this.bucket = new TokenBucket({
      ratePerSecond: options.ratePerSecond === undefined ? DEFAULT_RATE_PER_SECOND : options.ratePerSecond,
      burst: options.burst === undefined ? DEFAULT_BURST : options.burst,
    });
  }

  /** The kind of the last answer sent (for logs/counters), or undefined if none yet. */
  get lastKind(): ReplyKind | undefined {
    return this.kind;
  }

  counters(): ResponderCounters {
    return { ...this.count };
  }

  /**
   * The answer to `packet` (one IPv4 packet, header first; bytes past its total length, such as
   * link padding, are ignored), written at out[0..]; returns its length, or 0 when nothing is
   * sent: not answerable, the answer does not fit `out` (both counted notAnswered), or no token
   * (counted rateLimited). `now`: ms on any monotonic origin. Never throws on packet contents.
   * `out` must not overlap `packet`. Sizes: a RST is 40 bytes and an ICMP error at most 576; an
   * echo reply is 20 bytes plus the request's ICMP message.
   */
  answer(packet: Uint8Array, out: Uint8Array, now: number): number {
    const len = packet.length;
    if (len < IP_HEADER_LEN || packet[IP_VER_IHL] >> 4 !== IP_VERSION_4) return this.skip();
    const hlen = (packet[IP_VER_IHL] & IHL_MASK) * 4;
    const total = get16(packet, IP_TOTAL_LEN);
    if (hlen < IP_HEADER_LEN || total < hlen || total > len) return this.skip();
    if (fold(sum(packet, 0, hlen, 0)) !== 0xffff) return this.skip();
    const frag = get16(packet, IP_FRAG);
    if ((frag & FRAG_OFFSET_MASK) !== 0) return this.skip();
    const moreFragments = (frag & IP_MF) !== 0;
    if (!unicastSource(packet) || !unicastDestination(packet)) return this.skip();
    if (hasSourceRoute(packet, hlen)) return this.skip();

    const l4 = hlen;
    const segLen = total - hlen;
    switch (packet[IP_PROTOCOL]) {
      case IPPROTO_TCP: {
        if (segLen < TCP_HEADER_LEN) return this.skip();
        const doff = (packet[l4 + TCP_DATA_OFF] >> 4) * 4;
        if (doff < TCP_HEADER_LEN || doff > segLen) return this.skip();
        const flags = packet[l4 + TCP_FLAGS];
        if ((flags & TCP_RST) !== 0) return this.skip(); // RFC 793: a RST is never answered
        if (moreFragments && (flags & TCP_ACK_FLAG) === 0) return this.skip();
        if (out.length < TCP_RESET_LEN) return this.skip();
        if (!this.bucket.take(now)) return this.limited();
        this.count.tcpReset++;
        this.kind = 'tcp-reset';
        return writeReset(packet, l4, segLen - doff, flags, out);
      }
      case IPPROTO_UDP: {
        if (segLen < UDP_HEADER_LEN) return this.skip();
        const ulen = get16(packet, l4 + UDP_LENGTH);
        // __udp4_lib_rcv drops a length below the header or past the datagram; a first
        // fragment carries the length of the whole datagram, so only the header is checked.
        if (!moreFragments && (ulen < UDP_HEADER_LEN || ulen > segLen)) return this.skip();
        return this.unreachable(packet, total, ICMP_PORT_UNREACH, out, now);
      }
      case IPPROTO_ICMP: {
        if (moreFragments || segLen < ICMP_HEADER_LEN) return this.skip();
        if (packet[l4 + ICMP_TYPE] !== ICMP_ECHO || packet[l4 + ICMP_CODE] !== 0) return this.skip();
        if (fold(sum(packet, l4, total, 0)) !== 0xffff) return this.skip();
        if (out.length < IP_HEADER_LEN + segLen) return this.skip();
        if (!this.bucket.take(now)) return this.limited();
        this.count.echoReply++;
        this.kind = 'echo-reply';
        return this.writeEchoReply(packet, l4, segLen, out);
      }
      case IPPROTO_IGMP:
        return this.skip();
      default:
        return this.unreachable(packet, total, ICMP_PROT_UNREACH, out, now);
    }
  }

  private skip(): number {
    this.count.notAnswered++;
    return 0;
  }

  private limited(): number {
    this.count.rateLimited++;
    return 0;
  }

  private unreachable(packet: Uint8Array, total: number, code: number, out: Uint8Array, now: number): number {
    const quote = Math.min(total, ICMP_ERROR_MAX_LEN - IP_HEADER_LEN - ICMP_HEADER_LEN);
    const length = IP_HEADER_LEN + ICMP_HEADER_LEN + quote;
    if (out.length < length) return this.skip();
    if (!this.bucket.take(now)) return this.limited();
    if (code === ICMP_PORT_UNREACH) {
      this.count.portUnreachable++;
      this.kind = 'port-unreachable';
    } else {
      this.count.protocolUnreachable++;
      this.kind = 'protocol-unreachable';
    }
    const tos = PREC_INTERNETCONTROL | (packet[IP_TOS] & TOS_BITS);
    this.writeIpHeader(packet, out, tos, length, IPPROTO_ICMP);
    const m = IP_HEADER_LEN;
    out[m + ICMP_TYPE] = ICMP_DEST_UNREACH;
    out[m + ICMP_CODE] = code;
    for (let i = 2; i < ICMP_HEADER_LEN; i++) out[m + i] = 0;
    let s = (ICMP_DEST_UNREACH << 8) | code;
    s = copySum(packet, 0, quote, out, m + ICMP_HEADER_LEN, s);
    put16(out, m + ICMP_CHECKSUM, ~fold(s) & 0xffff);
    return length;
  }

  private writeEchoReply(packet: Uint8Array, l4: number, segLen: number, out: Uint8Array): number {
    const length = IP_HEADER_LEN + segLen;
    this.writeIpHeader(packet, out, packet[IP_TOS] & ~ECN_MASK, length, IPPROTO_ICMP);
    const m = IP_HEADER_LEN;
    out[m + ICMP_TYPE] = ICMP_ECHO_REPLY;
    out[m + ICMP_CODE] = 0;
    out[m + ICMP_CHECKSUM] = 0;
    out[m + ICMP_CHECKSUM + 1] = 0;
    let s = ICMP_ECHO_REPLY << 8;
    // Identifier, sequence and data, as received (RFC 792: "the data received in the echo
    // message must be returned in the echo reply message").
    s = copySum(packet, l4 + 4, l4 + segLen, out, m + 4, s);
    put16(out, m + ICMP_CHECKSUM, ~fold(s) & 0xffff);
    return length;
  }

  /** A 20-byte header for an ICMP answer: no DF, the next id, TTL 64, VIP -> packet's source. */
  private writeIpHeader(packet: Uint8Array, out: Uint8Array, tos: number, length: number, protocol: number): void {
    writeIp(packet, out, tos, length, this.nextId, 0, protocol);
    this.nextId = (this.nextId + 1) & 0xffff;
  }
}

/** RFC 793 Reset Generation, with the lengths and flags of tcp_v4_send_reset. */
function writeReset(packet: Uint8Array, l4: number, payloadLen: number, flags: number, out: Uint8Array): number {
  writeIp(packet, out, packet[IP_TOS] & ~ECN_MASK, TCP_RESET_LEN, 0, IP_DF, IPPROTO_TCP);
  const t = IP_HEADER_LEN;
  // Ports swapped: the RST comes from the VIP's port back to the sender's.
  out[t + TCP_SPORT] = packet[l4 + TCP_DPORT];
  out[t + TCP_SPORT + 1] = packet[l4 + TCP_DPORT + 1];
  out[t + TCP_DPORT] = packet[l4 + TCP_SPORT];
  out[t + TCP_DPORT + 1] = packet[l4 + TCP_SPORT + 1];
  if ((flags & TCP_ACK_FLAG) !== 0) {
    // "If the incoming segment has an ACK field, the reset takes its sequence number from the
    // ACK field of the segment" and carries no ACK.
    for (let i = 0; i < 4; i++) {
      out[t + TCP_SEQ + i] = packet[l4 + TCP_ACK + i];
      out[t + TCP_ACK + i] = 0;
    }
    out[t + TCP_FLAGS] = TCP_RST;
  } else {
    // "... otherwise the reset has sequence number zero and the ACK field is set to the sum of
    // the sequence number and segment length of the incoming segment"; SYN and FIN each count
    // one (RFC 9293 3.4), modulo 2^32.
    const seq = get32(packet, l4 + TCP_SEQ);
    const segmentLength = payloadLen + ((flags & TCP_SYN) !== 0 ? 1 : 0) + ((flags & TCP_FIN) !== 0 ? 1 : 0);
    put32(out, t + TCP_SEQ, 0);
    put32(out, t + TCP_ACK, (seq + segmentLength) >>> 0);
    out[t + TCP_FLAGS] = TCP_RST | TCP_ACK_FLAG;
  }
  out[t + TCP_DATA_OFF] = (TCP_HEADER_LEN / 4) << 4;
  put16(out, t + TCP_WINDOW, 0);
  put16(out, t + TCP_CHECKSUM, 0);
  put16(out, t + TCP_URGENT, 0);
  // Pseudo-header (RFC 9293 3.1): source, destination, zero, protocol, TCP length.
  let s = sum(out, IP_SRC, IP_SRC + 8, IPPROTO_TCP + TCP_HEADER_LEN);
  s = sum(out, t, t + TCP_HEADER_LEN, s);
  put16(out, t + TCP_CHECKSUM, ~fold(s) & 0xffff);
  return TCP_RESET_LEN;
}

/** An IPv4 header with no options from the packet's destination to its source. */
function writeIp(packet: Uint8Array, out: Uint8Array, tos: number, length: number, id: number, frag: number, protocol: number): void {
  out[IP_VER_IHL] = (IP_VERSION_4 << 4) | (IP_HEADER_LEN / 4);
  out[IP_TOS] = tos;
  put16(out, IP_TOTAL_LEN, length);
  put16(out, IP_ID, id);
  put16(out, IP_FRAG, frag);
  out[IP_TTL] = DEFAULT_TTL;
  out[IP_PROTOCOL] = protocol;
  put16(out, IP_CHECKSUM, 0);
  for (let i = 0; i < 4; i++) {
    out[IP_SRC + i] = packet[IP_DST + i];
    out[IP_DST + i] = packet[IP_SRC + i];
  }
  put16(out, IP_CHECKSUM, ~fold(sum(out, 0, IP_HEADER_LEN, 0)) & 0xffff);
}

/**
 * Whether the source names a single host (RFC 1122 3.2.2, 3.2.1.3): not 0/8, 127/8,
 * 224.0.0.0/4 multicast or the limited broadcast.
 */
function unicastSource(packet: Uint8Array): boolean {
  const a = packet[IP_SRC];
  if (a === 0 || a === 127 || (a & 0xf0) === 0xe0) return false;
  return !isLimitedBroadcast(packet, IP_SRC);
}

/** RFC 1122 3.2.2: no answer to a datagram sent to a multicast or broadcast address. */
function unicastDestination(packet: Uint8Array): boolean {
  if ((packet[IP_DST] & 0xf0) === 0xe0) return false;
  return !isLimitedBroadcast(packet, IP_DST);
}

function isLimitedBroadcast(packet: Uint8Array, at: number): boolean {
  return packet[at] === 0xff && packet[at + 1] === 0xff && packet[at + 2] === 0xff && packet[at + 3] === 0xff;
}

/**
 * Walks the IP options (RFC 791 3.1): true when a loose or strict source route is present, or
 * when the options do not parse (ip_options_compile rejects such a packet; no answer either way).
 */
function hasSourceRoute(packet: Uint8Array, hlen: number): boolean {
  let at = IP_HEADER_LEN;
  while (at < hlen) {
    const type = packet[at];
    if (type === IPOPT_END) return false;
    if (type === IPOPT_NOOP) {
      at++;
      continue;
    }
    if (at + 1 >= hlen) return true;
    const optLen = packet[at + 1];
    if (optLen < 2 || at + optLen > hlen) return true;
    if (type === IPOPT_LSRR || type === IPOPT_SSRR) return true;
    at += optLen;
  }
  return false;
}

// ---- one's-complement arithmetic (RFC 1071), over big-endian 16-bit words ------------------

/** Adds bytes [from, to) of b to s as big-endian words (an odd last byte padded with zero). */
function sum(b: Uint8Array, from: number, to: number, s: number): number {
  let i = from;
  for (; i + 1 < to; i += 2) s += (b[i] << 8) | b[i + 1];
  if (i < to) s += b[i] << 8;
  return s;
}

/**
 * Copies src[from, to) to dst at `at` and adds the copied bytes to s. Word boundaries are those
 * of dst relative to `at`; callers pass even `at` offsets into the ICMP message.
 */
function copySum(src: Uint8Array, from: number, to: number, dst: Uint8Array, at: number, s: number): number {
  let i = from;
  let j = at;
  for (; i + 1 < to; i += 2, j += 2) {
    const hi = src[i];
    const lo = src[i + 1];
    dst[j] = hi;
    dst[j + 1] = lo;
    s += (hi << 8) | lo;
  }
  if (i < to) {
    dst[j] = src[i];
    s += src[i] << 8;
  }
  return s;
}

/** Folds carries into 16 bits. Sums stay far below 2^53 for any IPv4 packet. */
function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

function get16(b: Uint8Array, at: number): number {
  return (b[at] << 8) | b[at + 1];
}

function get32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}

function put32(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}
