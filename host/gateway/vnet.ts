// struct virtio_net_hdr, the 10 bytes in front of every packet read from and written to a TUN
// opened with IFF_VNET_HDR (include/uapi/linux/virtio_net.h; the kernel fills it in
// virtio_net_hdr_from_skb() and parses it in virtio_net_hdr_to_skb(), include/linux/virtio_net.h).
// The TUN's vnet header is little-endian (drivers/net/tun.c: tun16_to_cpu() is LE unless
// TUNSETVNETBE, which we never set).
//
//  0        1          2          4          6            8             10
//  +--------+----------+----------+----------+------------+-------------+
//  | flags  | gso_type | hdr_len  | gso_size | csum_start | csum_offset |
//  +--------+----------+----------+----------+------------+-------------+
//    u8       u8         u16 LE     u16 LE     u16 LE       u16 LE
//
// Offsets are from the start of the IPv4 header (a TUN has no link-layer header). Example: a
// TCP super-packet the kernel hands us after TSO is coalesced reads
//   01 01 42 00 b4 05 14 00 10 00
// NEEDS_CSUM, GSO TCPV4, hdr_len 66 (the linear part, a hint), gso_size 1460 (MSS), checksum
// from byte 20 (the TCP header) stored at 20 + 16 (TCP's checksum field). The field then holds
// the folded, uncomplemented pseudo-header sum; the receiver of the segments completes it.
//
// Like smoltcp's wire types: one validation function (vnetHeaderCheck) on untrusted input, after
// which the accessors cannot read past the header.

export const VNET_HDR_LEN = 10;

// Field offsets.
export const VNET_FLAGS = 0;
export const VNET_GSO_TYPE = 1;
export const VNET_HDR_LEN_FIELD = 2;
export const VNET_GSO_SIZE = 4;
export const VNET_CSUM_START = 6;
export const VNET_CSUM_OFFSET = 8;

// flags
/** The L4 checksum is partial: complete it from csum_start, store at csum_start + csum_offset. */
export const VNET_F_NEEDS_CSUM = 1;
/** The checksum was verified by the sender's side (CHECKSUM_UNNECESSARY). */
export const VNET_F_DATA_VALID = 2;
/** Every flag bit the kernel's tun driver ever sets (RSC_INFO, 4, is virtio-net only). */
const VNET_KNOWN_FLAGS = VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID;

// gso_type
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
/** UFO (IP fragmentation of a UDP datagram): the engine does not handle it. */
export const VNET_GSO_UDP = 3;
export const VNET_GSO_TCPV6 = 4;
/** USO: a UDP super-packet segmented into datagrams of gso_size payload bytes. */
export const VNET_GSO_UDP_L4 = 5;
/** Ored into TCPV4/TCPV6: the super-packet carries CWR, set on the first segment only. */
export const VNET_GSO_ECN = 0x80;

// TCP and UDP checksum field offsets within their headers (RFC 793, RFC 768).
const TCP_CSUM_FIELD = 16;
const UDP_CSUM_FIELD = 6;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPV4_MIN_HEADER = 20;

// Results of vnetHeaderCheck: 0 is good, anything else is a reason the loop counts and drops.
export const VNET_OK = 0;
/** Fewer bytes than the header, or than a minimal IPv4 header after it. */
export const VNET_ERR_SHORT = 1;
/** A flag bit the tun driver never sets, or NEEDS_CSUM and DATA_VALID together. */
export const VNET_ERR_FLAGS = 2;
/** A gso_type the engine cannot handle (TCPV6, UFO, unknown, ECN without TCP), or one the
 *  packet's IP protocol does not match. */
export const VNET_ERR_GSO_TYPE = 3;
/** A super-packet with gso_size 0. */
export const VNET_ERR_GSO_SIZE = 4;
/** NEEDS_CSUM with the checksum's start or field outside the packet or not TCP's/UDP's field. */
export const VNET_ERR_CSUM = 5;
/** hdr_len longer than the packet. */
export const VNET_ERR_HDR_LEN = 6;
/** A super-packet without NEEDS_CSUM: segments would carry no valid checksums. */
export const VNET_ERR_GSO_NO_CSUM = 7;
/** A super-packet that is not IPv4. */
export const VNET_ERR_NOT_IPV4 = 8;

/** Counter names for the results above, indexed by result. */
export const VNET_ERROR_NAMES: readonly string[] = [
  'ok', 'short', 'flags', 'gso-type', 'gso-size', 'csum', 'hdr-len', 'gso-no-csum', 'not-ipv4',
];

function get16le(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}

function put16le(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}

// Accessors take the header's offset in `b` last (0: the header starts the buffer, as in a
// ring slot); setters take the value before it.

/** The header's flags byte (VNET_F_*). */
export function vnetFlags(b: Uint8Array, at = 0): number {
  return b[at + VNET_FLAGS];
}
/** gso_type (VNET_GSO_*, ECN bit included). */
export function vnetGsoType(b: Uint8Array, at = 0): number {
  return b[at + VNET_GSO_TYPE];
}
/** hdr_len: bytes of headers (a hint the kernel fills with the skb's linear length). */
export function vnetHdrLen(b: Uint8Array, at = 0): number {
  return get16le(b, at + VNET_HDR_LEN_FIELD);
}
/** gso_size: payload bytes per segment (the MSS for TCP). */
export function vnetGsoSize(b: Uint8Array, at = 0): number {
  return get16le(b, at + VNET_GSO_SIZE);
}
/** csum_start: where the partial checksum's coverage starts, from the IPv4 header. */
export function vnetCsumStart(b: Uint8Array, at = 0): number {
  return get16le(b, at + VNET_CSUM_START);
}
/** csum_offset: where the checksum field is, from csum_start. */
export function vnetCsumOffset(b: Uint8Array, at = 0): number {
  return get16le(b, at + VNET_CSUM_OFFSET);
}

export function setVnetFlags(b: Uint8Array, v: number, at = 0): void {
  b[at + VNET_FLAGS] = v & 0xff;
}
export function setVnetGsoType(b: Uint8Array, v: number, at = 0): void {
  b[at + VNET_GSO_TYPE] = v & 0xff;
}
export function setVnetHdrLen(b: Uint8Array, v: number, at = 0): void {
  put16le(b, at + VNET_HDR_LEN_FIELD, v);
}
export function setVnetGsoSize(b: Uint8Array, v: number, at = 0): void {
  put16le(b, at + VNET_GSO_SIZE, v);
}
export function setVnetCsumStart(b: Uint8Array, v: number, at = 0): void {
  put16le(b, at + VNET_CSUM_START, v);
}
export function setVnetCsumOffset(b: Uint8Array, v: number, at = 0): void {
  put16le(b, at + VNET_CSUM_OFFSET, v);
}

/**
 * Writes the header of a packet we generate ourselves (an ICMP reply, a RST): all zero, i.e.
 * no segmentation and checksums already complete, which virtio_net_hdr_to_skb() takes as
 * CHECKSUM_NONE (the receiver verifies them).
 */
export function writeVnetHeaderNone(b: Uint8Array, at = 0): void {
  b.fill(0, at, at + VNET_HDR_LEN);
}

/**
 * Checks that a header read from the kernel describes a packet the engine can handle: no
 * offload, or a TCPV4 (ECN bit allowed) or UDP_L4 super-packet with a partial checksum whose
 * start and field lie inside the packet. `length` is the byte count read, header included,
 * starting at `at`. Returns VNET_OK or a VNET_ERR_* reason; reads nothing outside
 * b[at, at + length).
 * Allocation-free: the loop calls it per packet.
 */
export function vnetHeaderCheck(b: Uint8Array, length: number, at = 0): number {
  if (length < VNET_HDR_LEN + IPV4_MIN_HEADER || at < 0 || at + length > b.length) return VNET_ERR_SHORT;
  const packetLen = length - VNET_HDR_LEN;
  const ip = at + VNET_HDR_LEN;
  const flags = b[at + VNET_FLAGS];
  if ((flags & ~VNET_KNOWN_FLAGS) !== 0) return VNET_ERR_FLAGS;
  if ((flags & VNET_F_NEEDS_CSUM) !== 0 && (flags & VNET_F_DATA_VALID) !== 0) return VNET_ERR_FLAGS;

  const gsoType = b[at + VNET_GSO_TYPE];
  const baseType = gsoType & ~VNET_GSO_ECN;
  const ecn = (gsoType & VNET_GSO_ECN) !== 0;
  if (baseType !== VNET_GSO_NONE && baseType !== VNET_GSO_TCPV4 && baseType !== VNET_GSO_UDP_L4) return VNET_ERR_GSO_TYPE;
  // The kernel sets ECN only beside a TCP type (SKB_GSO_TCP_ECN).
  if (ecn && baseType !== VNET_GSO_TCPV4) return VNET_ERR_GSO_TYPE;

  const ihl = (b[ip] & 0x0f) * 4;
  const protocol = b[ip + 9];
  if (baseType !== VNET_GSO_NONE) {
    if ((b[ip] >>> 4) !== 4 || ihl < IPV4_MIN_HEADER) return VNET_ERR_NOT_IPV4;
    if ((flags & VNET_F_NEEDS_CSUM) === 0) return VNET_ERR_GSO_NO_CSUM;
    if (vnetGsoSize(b, at) === 0) return VNET_ERR_GSO_SIZE;
    const wanted = baseType === VNET_GSO_TCPV4 ? IPPROTO_TCP : IPPROTO_UDP;
    if (protocol !== wanted) return VNET_ERR_GSO_TYPE;
  }
  if (vnetHdrLen(b, at) > packetLen) return VNET_ERR_HDR_LEN;

  if ((flags & VNET_F_NEEDS_CSUM) !== 0) {
    const start = vnetCsumStart(b, at);
    const offset = vnetCsumOffset(b, at);
    if (start + offset + 2 > packetLen) return VNET_ERR_CSUM;
    // The engine adjusts a partial checksum as TCP's or UDP's, right after the IPv4 header:
    // anything else (a tunnel's inner header, an options-length mismatch) it cannot follow.
    if ((b[ip] >>> 4) !== 4 || start !== ihl) return VNET_ERR_CSUM;
    if (protocol === IPPROTO_TCP ? offset !== TCP_CSUM_FIELD : protocol === IPPROTO_UDP ? offset !== UDP_CSUM_FIELD : true) {
      return VNET_ERR_CSUM;
    }
  }
  return VNET_OK;
}

/** vnetHeaderCheck(...) === VNET_OK: the loop drops and counts a packet for which this is false. */
export function vnetHeaderSupported(b: Uint8Array, length: number, at = 0): boolean {
  return vnetHeaderCheck(b, length, at) === VNET_OK;
}
