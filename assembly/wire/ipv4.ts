// IPv4 header (RFC 791) field accessors over packet memory.
// Validation happens once, in ipv4Check(); after it passes, every accessor below reads
// inside the packet, so none of them can fail.
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   +-------+-------+---------------+-------------------------------+
//   |Version|  IHL  |      TOS      |         Total Length          |  0
//   +-------+-------+---------------+-----+-------------------------+
//   |        Identification         |Flags|     Fragment Offset     |  4
//   +---------------+---------------+-----+-------------------------+
//   |      TTL      |    Protocol   |        Header Checksum        |  8
//   +---------------+---------------+-------------------------------+
//   |                        Source Address                         | 12
//   +---------------------------------------------------------------+
//   |                     Destination Address                       | 16
//   +---------------------------------------------------------------+
import { checksumFold, checksumSum } from '../checksum';
import {
  DROP_BAD_IHL, DROP_BAD_IP_CHECKSUM, DROP_BAD_TOTAL_LENGTH, DROP_BAD_VERSION,
  DROP_SHORT_PACKET, DROP_TRUNCATED,
} from '../layout';

export const IPV4_MIN_HEADER_LEN: u32 = 20;
export const IPV4_VER_IHL: u32 = 0;
export const IPV4_TOTAL_LEN: u32 = 2;
export const IPV4_FRAG: u32 = 6;
export const IPV4_TTL: u32 = 8;
export const IPV4_PROTOCOL: u32 = 9;
export const IPV4_CHECKSUM: u32 = 10;
export const IPV4_SADDR: u32 = 12;
export const IPV4_DADDR: u32 = 16;

export const IPPROTO_ICMP: u8 = 1;
export const IPPROTO_TCP: u8 = 6;
export const IPPROTO_UDP: u8 = 17;

// Flags and fragment offset as loaded little-endian from wire bytes: MF is bit 13 of the
// big-endian u16, the offset its low 13 bits.
const FRAG_MF_LE: u16 = 0x0020;
const FRAG_OFFSET_LE: u16 = 0xff1f;

@inline export function ipv4Version(p: usize): u32 { return <u32>load<u8>(p) >> 4; }
@inline export function ipv4HeaderLen(p: usize): u32 { return (<u32>load<u8>(p) & 0x0f) << 2; }
@inline export function ipv4TotalLen(p: usize): u32 { return <u32>bswap<u16>(load<u16>(p + IPV4_TOTAL_LEN)); }
@inline export function ipv4Protocol(p: usize): u8 { return load<u8>(p + IPV4_PROTOCOL); }
/** Addresses stay in wire order: a little-endian load of the four bytes. */
@inline export function ipv4Saddr(p: usize): u32 { return load<u32>(p + IPV4_SADDR); }
@inline export function ipv4Daddr(p: usize): u32 { return load<u32>(p + IPV4_DADDR); }
@inline export function ipv4SetSaddr(p: usize, a: u32): void { store<u32>(p + IPV4_SADDR, a); }
@inline export function ipv4SetDaddr(p: usize, a: u32): void { store<u32>(p + IPV4_DADDR, a); }
@inline export function ipv4Checksum(p: usize): u16 { return load<u16>(p + IPV4_CHECKSUM); }
@inline export function ipv4SetChecksum(p: usize, c: u16): void { store<u16>(p + IPV4_CHECKSUM, c); }
/** Non-zero fragment offset: a fragment without the transport header. */
@inline export function ipv4IsLaterFragment(p: usize): bool { return (load<u16>(p + IPV4_FRAG) & FRAG_OFFSET_LE) != 0; }
@inline export function ipv4MoreFragments(p: usize): bool { return (load<u16>(p + IPV4_FRAG) & FRAG_MF_LE) != 0; }

/**
 * Validates an untrusted IPv4 header of `avail` bytes at `p`.
 * Returns 0 when the header is sound, else the drop reason. The caller has checked the
 * version nibble is 4. Bytes past Total Length (link-layer padding) are allowed.
 */
export function ipv4Check(p: usize, avail: u32): u16 {
  if (avail < IPV4_MIN_HEADER_LEN) return DROP_SHORT_PACKET;
  if (ipv4Version(p) != 4) return DROP_BAD_VERSION;
  const hlen = ipv4HeaderLen(p);
  if (hlen < IPV4_MIN_HEADER_LEN) return DROP_BAD_IHL;
  if (hlen > avail) return DROP_TRUNCATED;
  const total = ipv4TotalLen(p);
  if (total < hlen) return DROP_BAD_TOTAL_LENGTH;
  if (total > avail) return DROP_TRUNCATED;
  // A correct header sums to 0xffff, its own checksum field included (RFC 1071). The usual
  // option-less header is summed as five words, without the general loop.
  const sum = hlen == IPV4_MIN_HEADER_LEN
    ? <u64>load<u32>(p) + <u64>load<u32>(p, 4) + <u64>load<u32>(p, 8) + <u64>load<u32>(p, 12) + <u64>load<u32>(p, 16)
    : checksumSum(p, hlen, 0);
  if (checksumFold(sum) != 0xffff) return DROP_BAD_IP_CHECKSUM;
  return 0;
}
