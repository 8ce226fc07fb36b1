// ICMP (RFC 792) error messages and the packet they quote, over packet memory.
//
//    0               1               2                               4
//   +---------------+---------------+-------------------------------+
//   |     Type      |     Code      |           Checksum            |  0
//   +---------------+---------------+-------------------------------+
//   |   unused (or, for "fragmentation needed", the next-hop MTU)   |  4
//   +---------------------------------------------------------------+
//   |   the offending packet: its IP header and at least 8 bytes    |  8
//   |   of what followed (RFC 792; RFC 1812 allows more)            |
//   +---------------------------------------------------------------+
// Validation happens once, in icmpErrorCheck(); afterwards the quoted IP header and the
// quoted ports are known to lie within the message.
import { checksumFold, checksumSum } from '../checksum';
import { DROP_BAD_ICMP_CHECKSUM, DROP_ICMP_TRUNCATED } from '../layout';
import { IPPROTO_TCP, IPPROTO_UDP, IPV4_MIN_HEADER_LEN, ipv4HeaderLen, ipv4IsLaterFragment, ipv4Protocol, ipv4Version } from './ipv4';

export const ICMP_HEADER_LEN: u32 = 8;
export const ICMP_TYPE: u32 = 0;
export const ICMP_CHECKSUM: u32 = 2;
export const ICMP_QUOTED: u32 = 8;
export const ICMP_QUOTED_L4_MIN: u32 = 8; // the quoted ports (and UDP's checksum) at least

export const ICMP_DEST_UNREACH: u8 = 3;
export const ICMP_SOURCE_QUENCH: u8 = 4;
export const ICMP_TIME_EXCEEDED: u8 = 11;
export const ICMP_PARAMETERPROB: u8 = 12;

// icmpErrorCheck's results besides 0 (a sound error about TCP or UDP) and a drop reason.
export const ICMP_NOT_AN_ERROR: u16 = 0xffff; //   echo, timestamp ...: not about a flow
export const ICMP_NOT_TRANSLATABLE: u16 = 0xfffe; // quotes neither TCP nor UDP, or no ports

@inline export function icmpType(m: usize): u8 { return load<u8>(m + ICMP_TYPE); }
@inline export function icmpQuoted(m: usize): usize { return m + ICMP_QUOTED; }

/** Errors that concern one flow: the kinds IPVS translates (ip_vs_in_icmp), and parameter problems. */
@inline function isFlowError(type: u8): bool {
  return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH || type == ICMP_TIME_EXCEEDED
    || type == ICMP_PARAMETERPROB;
}

/**
 * Checks an untrusted ICMP message of `len` bytes at `m`: 0 when it is a sound error quoting
 * a TCP or UDP packet with its ports, ICMP_NOT_AN_ERROR or ICMP_NOT_TRANSLATABLE when it is
 * to pass as it is, else a drop reason.
 */
export function icmpErrorCheck(m: usize, len: u32): u16 {
  if (len < ICMP_HEADER_LEN) return DROP_ICMP_TRUNCATED;
  if (!isFlowError(icmpType(m))) return ICMP_NOT_AN_ERROR;
  if (checksumFold(checksumSum(m, len, 0)) != 0xffff) return DROP_BAD_ICMP_CHECKSUM;
  const q = icmpQuoted(m);
  const qlen = len - ICMP_HEADER_LEN;
  if (qlen < IPV4_MIN_HEADER_LEN || ipv4Version(q) != 4) return DROP_ICMP_TRUNCATED;
  const qhlen = ipv4HeaderLen(q);
  if (qhlen < IPV4_MIN_HEADER_LEN || qhlen + ICMP_QUOTED_L4_MIN > qlen) return DROP_ICMP_TRUNCATED;
  const proto = ipv4Protocol(q);
  if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || ipv4IsLaterFragment(q)) return ICMP_NOT_TRANSLATABLE;
  return 0;
}
