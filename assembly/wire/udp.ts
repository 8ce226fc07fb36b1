// UDP header (RFC 768) field accessors over packet memory.
//
//    0                   1                   2                   3
//   +-------------------------------+-------------------------------+
//   |          Source Port          |       Destination Port        |  0
//   +-------------------------------+-------------------------------+
//   |            Length             |           Checksum            |  4
//   +-------------------------------+-------------------------------+
import { DROP_BAD_UDP_LENGTH, DROP_UDP_TRUNCATED } from '../layout';

export const UDP_HEADER_LEN: u32 = 8;
export const UDP_SPORT: u32 = 0;
export const UDP_DPORT: u32 = 2;
export const UDP_LENGTH: u32 = 4;
export const UDP_CHECKSUM: u32 = 6;

@inline export function udpLength(u: usize): u32 { return <u32>bswap<u16>(load<u16>(u + UDP_LENGTH)); }

/** Validates a UDP header at `u` with `avail` bytes of datagram; 0 or the drop reason. */
export function udpCheck(u: usize, avail: u32): u16 {
  if (avail < UDP_HEADER_LEN) return DROP_UDP_TRUNCATED;
  const len = udpLength(u);
  if (len < UDP_HEADER_LEN || len > avail) return DROP_BAD_UDP_LENGTH;
  return 0;
}
