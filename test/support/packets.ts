// Test packet kit: builds and checks IPv4/TCP/UDP packets for the NAT engine's tests.
//
// This is the tests' oracle, so it shares no code with the engine, not even host/addr.ts:
// every checksum is recomputed from scratch with the plainest loop of RFC 1071 (sum the
// big-endian 16-bit words, fold the carries, complement), never adjusted by difference as the
// data plane does (RFC 1624). Nothing here is fast; everything here is obvious.
//
//   IPv4 header (RFC 791)                 TCP header (RFC 9293)         UDP header (RFC 768)
//   +0  version|ihl   +1 tos              +0  sport   +2  dport         +0 sport  +2 dport
//   +2  total length                      +4  seq                       +4 length +6 checksum
//   +4  id            +6 flags|frag off   +8  ack
//   +8  ttl  +9 protocol  +10 checksum    +12 data off|rsvd  +13 flags
//   +12 src           +16 dst             +14 window  +16 checksum  +18 urgent
//   +20 options (ihl*4 - 20 bytes)        +20 options (data off*4 - 20 bytes)

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

const IPV4_HEADER_LEN = 20;
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
const MAX_OPTIONS_LEN = 40;
const MAX_TOTAL_LEN = 0xffff;

const TCP_HEADER_LEN = 20;
const TCP_SPORT = 0;
const TCP_DPORT = 2;
const TCP_SEQ = 4;
const TCP_ACK = 8;
const TCP_DATA_OFF = 12;
const TCP_FLAGS = 13;
const TCP_WINDOW = 14;
const TCP_CHECKSUM = 16;

const UDP_HEADER_LEN = 8;
const UDP_SPORT = 0;
const UDP_DPORT = 2;
const UDP_LENGTH = 4;
const UDP_CHECKSUM = 6;

const ICMP_CHECKSUM = 2;
const ICMP_HEADER_LEN = 8;
const ICMP_MIN_LEN = 4;

const ETH_HEADER_LEN = 14;
const ETH_MIN_FRAME_LEN = 60; // without the FCS, which captures do not carry
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_VLAN = 0x8100;
const VLAN_TAG_LEN = 4;
const VLAN_ID_MAX = 0x0fff;

const DEFAULT_TTL = 64;
const DEFAULT_WINDOW = 65535;
// Locally administered unicast MACs, so no fixture can be mistaken for a real vendor's.
const DEFAULT_SRC_MAC = '02:00:00:00:00:01';
const DEFAULT_DST_MAC = '02:00:00:00:00:02';

// TCP flag bits, listed from bit 0 up so that decode() spells flags the usual way: 'SA', 'FA', 'PA'.
const TCP_FLAG_BITS: ReadonlyArray<[string, number]> = [
  ['F', 0x01],
  ['S', 0x02],
  ['R', 0x04],
  ['P', 0x08],
  ['A', 0x10],
  ['U', 0x20],
  ['E', 0x40],
  ['C', 0x80],
];

export interface Ipv4Opts {
  src: string;
  dst: string;
  ttl?: number;
  id?: number;
  tos?: number;
  df?: boolean;
  mf?: boolean;
  /** In 8-byte units, as on the wire. */
  fragOffset?: number;
  /** IP options, a multiple of 4 bytes. */
  options?: Uint8Array;
}

export interface TcpOpts extends Ipv4Opts {
  sport: number;
  dport: number;
  /** Letters from 'SAFRPUEC', e.g. 'S', 'SA', 'A', 'FA', 'R', 'PA'. */
  flags: string;
  seq?: number;
  ack?: number;
  window?: number;
  /** A string is encoded as UTF-8. */
  payload?: Uint8Array | string;
  tcpOptions?: Uint8Array;
}

export interface UdpOpts extends Ipv4Opts {
  sport: number;
  dport: number;
  payload?: Uint8Array | string;
  /** Send checksum 0 ("none", RFC 768) instead of the computed one. */
  zeroChecksum?: boolean;
}

export interface Decoded {
  src: string;
  dst: string;
  protocol: number;
  sport?: number;
  dport?: number;
  /** TCP flags in bit order (FSRPAUEC): 'S', 'SA', 'FA', 'PA', '' for none. */
  flags?: string;
  ttl: number;
  totalLength: number;
  ipChecksum: number;
  l4Checksum?: number;
  /** The TCP/UDP payload, or the whole IP payload for other protocols and for fragments; a view. */
  payload: Uint8Array;
  // Beyond the brief's minimum, because NAT tests need to see them unchanged.
  id: number;
  tos: number;
  df: boolean;
  mf: boolean;
  fragOffset: number;
  seq?: number;
  ack?: number;
  window?: number;
}

// ---- checksums: the naive way on purpose --------------------------------------------------

/** One's-complement sum of big-endian 16-bit words, an odd last byte padded with zero, folded. */
function onesSum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    const hi = bytes[i];
    const lo = i + 1 < bytes.length ? bytes[i + 1] : 0;
    sum += hi * 256 + lo;
  }
  while (sum > 0xffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  return sum;
}

function complement(sum: number): number {
  return 0xffff - sum;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** RFC 9293 §3.1 / RFC 768: src, dst, zero, protocol, segment length. */
function pseudoHeader(pkt: Uint8Array, protocol: number, segmentLength: number): Uint8Array {
  const ph = new Uint8Array(12);
  ph.set(pkt.subarray(IP_SRC, IP_SRC + 4), 0);
  ph.set(pkt.subarray(IP_DST, IP_DST + 4), 4);
  ph[9] = protocol;
  put16(ph, 10, segmentLength);
  return ph;
}

interface IpLayout {
  headerLen: number;
  totalLength: number;
  protocol: number;
  fragment: boolean;
}

/** Validates the IPv4 header enough for the functions below; throws on a malformed packet. */
function layout(pkt: Uint8Array): IpLayout {
  if (pkt.length < IPV4_HEADER_LEN) throw new Error(`IPv4 packet of ${pkt.length} bytes is shorter than a header`);
  if (pkt[IP_VER_IHL] >> 4 !== IP_VERSION_4) throw new Error(`IP version ${pkt[IP_VER_IHL] >> 4} is not 4`);
  const headerLen = (pkt[IP_VER_IHL] & IHL_MASK) * 4;
  const totalLength = get16(pkt, IP_TOTAL_LEN);
  if (headerLen < IPV4_HEADER_LEN) throw new Error(`IPv4 header length ${headerLen} is below 20`);
  if (totalLength < headerLen || totalLength > pkt.length) {
    throw new Error(`IPv4 total length ${totalLength} does not fit header ${headerLen} and buffer ${pkt.length}`);
  }
  const frag = get16(pkt, IP_FRAG);
  return {
    headerLen,
    totalLength,
    protocol: pkt[IP_PROTOCOL],
    fragment: (frag & IP_MF) !== 0 || (frag & FRAG_OFFSET_MASK) !== 0,
  };
}

function l4ChecksumOffset(protocol: number): number {
  switch (protocol) {
    case IPPROTO_TCP: return TCP_CHECKSUM;
    case IPPROTO_UDP: return UDP_CHECKSUM;
    case IPPROTO_ICMP: return ICMP_CHECKSUM;
    default: throw new Error(`protocol ${protocol} has no checksum this kit knows`);
  }
}

function minL4Len(protocol: number): number {
  return protocol === IPPROTO_TCP ? TCP_HEADER_LEN : protocol === IPPROTO_UDP ? UDP_HEADER_LEN : ICMP_MIN_LEN;
}

/** The bytes a receiver sums to verify the L4 checksum, checksum field included. */
function l4SummedBytes(pkt: Uint8Array, ip: IpLayout): Uint8Array {
  const segment = pkt.subarray(ip.headerLen, ip.totalLength);
  if (segment.length < minL4Len(ip.protocol)) {
    throw new Error(`protocol ${ip.protocol} segment of ${segment.length} bytes is shorter than its header`);
  }
  // ICMP's checksum covers the message only; TCP and UDP add the pseudo-header.
  return ip.protocol === IPPROTO_ICMP ? segment : concat(pseudoHeader(pkt, ip.protocol, segment.length), segment);
}

/**
 * The correct IPv4 header checksum for the field (the field's current value is ignored). The
 * header length comes from IHL, so a whole packet may be passed.
 */
export function ipChecksum(header: Uint8Array): number {
  const headerLen = (header[IP_VER_IHL] & IHL_MASK) * 4;
  if (headerLen < IPV4_HEADER_LEN || header.length < headerLen) {
    throw new Error(`IPv4 header length ${headerLen} does not fit ${header.length} bytes`);
  }
  const copy = header.slice(0, headerLen);
  put16(copy, IP_CHECKSUM, 0);
  return complement(onesSum(copy));
}

/**
 * The correct TCP/UDP (or ICMP) checksum for the field of this IPv4 packet, the field's current
 * value ignored. A UDP result of 0 is returned as 0xffff, since 0 on the wire means "none".
 */
export function l4Checksum(pkt: Uint8Array): number {
  const ip = layout(pkt);
  const copy = pkt.slice(0, ip.totalLength);
  const fieldAt = ip.headerLen + l4ChecksumOffset(ip.protocol);
  if (fieldAt + 2 > ip.totalLength) throw new Error(`protocol ${ip.protocol} segment is too short for its checksum`);
  put16(copy, fieldAt, 0);
  const sum = complement(onesSum(l4SummedBytes(copy, ip)));
  return ip.protocol === IPPROTO_UDP && sum === 0 ? 0xffff : sum;
}

/**
 * Full recompute, as a receiver checks (RFC 1071 §1): the sum over the header, or over
 * pseudo-header and segment, checksum field included, must be 0xffff. So 0x0000 and 0xffff in
 * the field count the same, as they do on the wire; compare with ipChecksum()/l4Checksum()
 * when a test wants the exact bits. UDP checksum 0 is "none" and valid. Protocols other than
 * TCP, UDP and ICMP, and fragments (whose L4 checksum covers the reassembled datagram), have
 * nothing to check here and report l4: true. Throws when the bytes are not an IPv4 packet.
 */
export function checksumsValid(pkt: Uint8Array): { ip: boolean; l4: boolean } {
  const ip = layout(pkt);
  const ipOk = onesSum(pkt.subarray(0, ip.headerLen)) === 0xffff;
  let l4Ok = true;
  if (!ip.fragment && (ip.protocol === IPPROTO_TCP || ip.protocol === IPPROTO_UDP || ip.protocol === IPPROTO_ICMP)) {
    const noUdpChecksum = ip.protocol === IPPROTO_UDP && pkt.length >= ip.headerLen + UDP_HEADER_LEN &&
      get16(pkt, ip.headerLen + UDP_CHECKSUM) === 0;
    l4Ok = noUdpChecksum || onesSum(l4SummedBytes(pkt, ip)) === 0xffff;
  }
  return { ip: ipOk, l4: l4Ok };
}

// ---- builders -----------------------------------------------------------------------------

export function ipv4Packet(o: Ipv4Opts & { protocol: number; payload: Uint8Array }): Uint8Array {
  const options = o.options ?? new Uint8Array(0);
  if (options.length % 4 !== 0 || options.length > MAX_OPTIONS_LEN) {
    throw new Error(`IP options of ${options.length} bytes: need a multiple of 4 up to ${MAX_OPTIONS_LEN}`);
  }
  const headerLen = IPV4_HEADER_LEN + options.length;
  const totalLength = headerLen + o.payload.length;
  if (totalLength > MAX_TOTAL_LEN) throw new Error(`IPv4 packet of ${totalLength} bytes exceeds ${MAX_TOTAL_LEN}`);
  const pkt = new Uint8Array(totalLength);
  pkt[IP_VER_IHL] = (IP_VERSION_4 << 4) | (headerLen / 4);
  pkt[IP_TOS] = checkInt('tos', o.tos ?? 0, 0xff);
  put16(pkt, IP_TOTAL_LEN, totalLength);
  put16(pkt, IP_ID, checkInt('id', o.id ?? 0, 0xffff));
  put16(pkt, IP_FRAG, (o.df ? IP_DF : 0) | (o.mf ? IP_MF : 0) | checkInt('fragOffset', o.fragOffset ?? 0, FRAG_OFFSET_MASK));
  pkt[IP_TTL] = checkInt('ttl', o.ttl ?? DEFAULT_TTL, 0xff);
  pkt[IP_PROTOCOL] = checkInt('protocol', o.protocol, 0xff);
  pkt.set(parseAddr(o.src), IP_SRC);
  pkt.set(parseAddr(o.dst), IP_DST);
  pkt.set(options, IPV4_HEADER_LEN);
  pkt.set(o.payload, headerLen);
  put16(pkt, IP_CHECKSUM, ipChecksum(pkt));
  return pkt;
}

/**
 * An ICMP message (RFC 792): type, code, the header's last 4 bytes (`rest`: the next-hop MTU
 * of "fragmentation needed", id and sequence of an echo), then `body`, checksummed in full.
 */
export function icmpPacket(o: Ipv4Opts & { type: number; code?: number; rest?: number; body?: Uint8Array }): Uint8Array {
  const body = o.body ?? new Uint8Array(0);
  const msg = new Uint8Array(ICMP_HEADER_LEN + body.length);
  msg[0] = checkInt('type', o.type, 0xff);
  msg[1] = checkInt('code', o.code ?? 0, 0xff);
  new DataView(msg.buffer).setUint32(4, checkInt('rest', o.rest ?? 0, 0xffffffff));
  msg.set(body, ICMP_HEADER_LEN);
  const pkt = ipv4Packet({ ...o, protocol: IPPROTO_ICMP, payload: msg });
  const hlen = (pkt[IP_VER_IHL] & 0x0f) * 4;
  put16(pkt, hlen + ICMP_CHECKSUM, l4Checksum(pkt));
  return pkt;
}

/** What an ICMP error quotes of the packet it is about: its IP header and `l4Bytes` after it. */
export function quotePacket(pkt: Uint8Array, l4Bytes: number): Uint8Array {
  return pkt.slice(0, (pkt[IP_VER_IHL] & 0x0f) * 4 + l4Bytes);
}

export function tcpPacket(o: TcpOpts): Uint8Array {
  const payload = toBytes(o.payload);
  const tcpOptions = o.tcpOptions ?? new Uint8Array(0);
  if (tcpOptions.length % 4 !== 0 || tcpOptions.length > MAX_OPTIONS_LEN) {
    throw new Error(`TCP options of ${tcpOptions.length} bytes: need a multiple of 4 up to ${MAX_OPTIONS_LEN}`);
  }
  const headerLen = TCP_HEADER_LEN + tcpOptions.length;
  const seg = new Uint8Array(headerLen + payload.length);
  put16(seg, TCP_SPORT, checkInt('sport', o.sport, 0xffff));
  put16(seg, TCP_DPORT, checkInt('dport', o.dport, 0xffff));
  put32(seg, TCP_SEQ, checkInt('seq', o.seq ?? 0, 0xffffffff));
  put32(seg, TCP_ACK, checkInt('ack', o.ack ?? 0, 0xffffffff));
  seg[TCP_DATA_OFF] = (headerLen / 4) << 4;
  seg[TCP_FLAGS] = parseFlags(o.flags);
  put16(seg, TCP_WINDOW, checkInt('window', o.window ?? DEFAULT_WINDOW, 0xffff));
  seg.set(tcpOptions, TCP_HEADER_LEN);
  seg.set(payload, headerLen);
  const pkt = ipv4Packet({ ...ipOpts(o), protocol: IPPROTO_TCP, payload: seg });
  put16(pkt, (pkt[IP_VER_IHL] & IHL_MASK) * 4 + TCP_CHECKSUM, l4Checksum(pkt));
  return pkt;
}

export function udpPacket(o: UdpOpts): Uint8Array {
  const payload = toBytes(o.payload);
  const seg = new Uint8Array(UDP_HEADER_LEN + payload.length);
  put16(seg, UDP_SPORT, checkInt('sport', o.sport, 0xffff));
  put16(seg, UDP_DPORT, checkInt('dport', o.dport, 0xffff));
  put16(seg, UDP_LENGTH, seg.length);
  seg.set(payload, UDP_HEADER_LEN);
  const pkt = ipv4Packet({ ...ipOpts(o), protocol: IPPROTO_UDP, payload: seg });
  if (!o.zeroChecksum) put16(pkt, (pkt[IP_VER_IHL] & IHL_MASK) * 4 + UDP_CHECKSUM, l4Checksum(pkt));
  return pkt;
}

/** Wraps an IP packet in Ethernet II, optionally with one 802.1Q tag; `pad` fills to 60 bytes. */
export function ethernetFrame(ipPacket: Uint8Array, opts: { vlan?: number; src?: string; dst?: string; pad?: boolean } = {}): Uint8Array {
  const tagLen = opts.vlan === undefined ? 0 : VLAN_TAG_LEN;
  const len = ETH_HEADER_LEN + tagLen + ipPacket.length;
  const frame = new Uint8Array(opts.pad ? Math.max(len, ETH_MIN_FRAME_LEN) : len);
  frame.set(parseMac(opts.dst ?? DEFAULT_DST_MAC), 0);
  frame.set(parseMac(opts.src ?? DEFAULT_SRC_MAC), 6);
  let at = 12;
  if (opts.vlan !== undefined) {
    put16(frame, at, ETHERTYPE_VLAN);
    put16(frame, at + 2, checkInt('vlan', opts.vlan, VLAN_ID_MAX));
    at += VLAN_TAG_LEN;
  }
  put16(frame, at, ETHERTYPE_IPV4);
  frame.set(ipPacket, at + 2);
  return frame;
}

// ---- decoding -----------------------------------------------------------------------------

/**
 * Decodes an IPv4 packet (not a frame); bytes past total length, such as Ethernet padding, are
 * ignored. Throws when version, lengths or the TCP data offset do not make a packet.
 */
export function decode(pkt: Uint8Array): Decoded {
  const ip = layout(pkt);
  const frag = get16(pkt, IP_FRAG);
  const d: Decoded = {
    src: formatAddr(pkt.subarray(IP_SRC, IP_SRC + 4)),
    dst: formatAddr(pkt.subarray(IP_DST, IP_DST + 4)),
    protocol: ip.protocol,
    ttl: pkt[IP_TTL],
    totalLength: ip.totalLength,
    ipChecksum: get16(pkt, IP_CHECKSUM),
    payload: pkt.subarray(ip.headerLen, ip.totalLength),
    id: get16(pkt, IP_ID),
    tos: pkt[IP_TOS],
    df: (frag & IP_DF) !== 0,
    mf: (frag & IP_MF) !== 0,
    fragOffset: frag & FRAG_OFFSET_MASK,
  };
  // Only an unfragmented packet or a first fragment holds the L4 header.
  if (d.fragOffset !== 0) return d;
  const l4 = ip.headerLen;
  const segLen = ip.totalLength - l4;
  if (ip.protocol === IPPROTO_TCP) {
    if (segLen < TCP_HEADER_LEN) throw new Error(`TCP segment of ${segLen} bytes is shorter than a header`);
    const dataOff = (pkt[l4 + TCP_DATA_OFF] >> 4) * 4;
    if (dataOff < TCP_HEADER_LEN || dataOff > segLen) throw new Error(`TCP data offset ${dataOff} does not fit ${segLen} bytes`);
    d.sport = get16(pkt, l4 + TCP_SPORT);
    d.dport = get16(pkt, l4 + TCP_DPORT);
    d.seq = get32(pkt, l4 + TCP_SEQ);
    d.ack = get32(pkt, l4 + TCP_ACK);
    d.flags = formatFlags(pkt[l4 + TCP_FLAGS]);
    d.window = get16(pkt, l4 + TCP_WINDOW);
    d.l4Checksum = get16(pkt, l4 + TCP_CHECKSUM);
    d.payload = pkt.subarray(l4 + dataOff, ip.totalLength);
  } else if (ip.protocol === IPPROTO_UDP) {
    if (segLen < UDP_HEADER_LEN) throw new Error(`UDP datagram of ${segLen} bytes is shorter than a header`);
    d.sport = get16(pkt, l4 + UDP_SPORT);
    d.dport = get16(pkt, l4 + UDP_DPORT);
    d.l4Checksum = get16(pkt, l4 + UDP_CHECKSUM);
    d.payload = pkt.subarray(l4 + UDP_HEADER_LEN, ip.totalLength);
  }
  return d;
}

// ---- bytes and text -----------------------------------------------------------------------

/** Lowercase hex without separators, for assertion diffs that show where bytes differ. */
export function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Parses hex, ignoring whitespace so fixtures can be laid out by header field. */
export function fromHex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new Error(`not an even run of hex digits: ${clean.slice(0, 40)}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function ipOpts(o: Ipv4Opts): Ipv4Opts {
  return { src: o.src, dst: o.dst, ttl: o.ttl, id: o.id, tos: o.tos, df: o.df, mf: o.mf, fragOffset: o.fragOffset, options: o.options };
}

function toBytes(payload: Uint8Array | string | undefined): Uint8Array {
  if (payload === undefined) return new Uint8Array(0);
  return typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
}

function checkInt(what: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new Error(`${what} ${value} is not an integer from 0 to ${max}`);
  return value;
}

function parseAddr(text: string): Uint8Array {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) {
    throw new Error(`"${text}" is not a dotted-quad IPv4 address`);
  }
  return Uint8Array.from(parts.map(Number));
}

function formatAddr(bytes: Uint8Array): string {
  return Array.from(bytes).join('.');
}

function parseMac(text: string): Uint8Array {
  if (!/^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/.test(text)) throw new Error(`"${text}" is not a MAC address like 02:00:00:00:00:01`);
  return fromHex(text.replace(/:/g, ''));
}

function parseFlags(flags: string): number {
  let bits = 0;
  for (const letter of flags) {
    const entry = TCP_FLAG_BITS.find(([l]) => l === letter);
    if (!entry) throw new Error(`TCP flag "${letter}" in "${flags}" is not one of SAFRPUEC`);
    bits |= entry[1];
  }
  return bits;
}

function formatFlags(bits: number): string {
  return TCP_FLAG_BITS.filter(([, bit]) => (bits & bit) !== 0).map(([l]) => l).join('');
}

function get16(b: Uint8Array, at: number): number {
  return b[at] * 256 + b[at + 1];
}

function get32(b: Uint8Array, at: number): number {
  return get16(b, at) * 0x10000 + get16(b, at + 2);
}

function put16(b: Uint8Array, at: number, value: number): void {
  b[at] = Math.floor(value / 256) & 0xff;
  b[at + 1] = value & 0xff;
}

function put32(b: Uint8Array, at: number, value: number): void {
  put16(b, at, Math.floor(value / 0x10000));
  put16(b, at + 2, value & 0xffff);
}
