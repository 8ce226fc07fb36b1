// TCP header (RFC 9293 section 3.1) field accessors over packet memory.
//
//    0                   1                   2                   3
//   +-------------------------------+-------------------------------+
//   |          Source Port          |       Destination Port        |  0
//   +-------------------------------+-------------------------------+
//   |                        Sequence Number                        |  4
//   +---------------------------------------------------------------+
//   |                    Acknowledgment Number                      |  8
//   +-------+-------+-+-+-+-+-+-+-+-+-------------------------------+
//   |  Data |       |C|E|U|A|P|R|S|F|                               |
//   | Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             | 12
//   +-------+-------+-+-+-+-+-+-+-+-+-------------------------------+
//   |           Checksum            |         Urgent Pointer        | 16
//   +-------------------------------+-------------------------------+
import { DROP_BAD_TCP_DOFF, DROP_TCP_TRUNCATED } from '../layout';

export const TCP_MIN_HEADER_LEN: u32 = 20;
export const TCP_SPORT: u32 = 0;
export const TCP_DPORT: u32 = 2;
export const TCP_SEQ: u32 = 4;
export const TCP_ACK_SEQ: u32 = 8;
export const TCP_DOFF: u32 = 12;
export const TCP_FLAGS: u32 = 13;
export const TCP_CHECKSUM: u32 = 16;

export const TCP_FIN: u8 = 0x01;
export const TCP_SYN: u8 = 0x02;
export const TCP_RST: u8 = 0x04;
export const TCP_ACK: u8 = 0x10;

@inline export function tcpSport(t: usize): u16 { return load<u16>(t + TCP_SPORT); }
@inline export function tcpDport(t: usize): u16 { return load<u16>(t + TCP_DPORT); }
@inline export function tcpSetSport(t: usize, v: u16): void { store<u16>(t + TCP_SPORT, v); }
@inline export function tcpSetDport(t: usize, v: u16): void { store<u16>(t + TCP_DPORT, v); }
@inline export function tcpFlags(t: usize): u8 { return load<u8>(t + TCP_FLAGS); }
@inline export function tcpHeaderLen(t: usize): u32 { return (<u32>load<u8>(t + TCP_DOFF) >> 4) << 2; }

/** Validates a TCP header at `t` with `avail` bytes of segment; 0 or the drop reason. */
export function tcpCheck(t: usize, avail: u32): u16 {
  if (avail < TCP_MIN_HEADER_LEN) return DROP_TCP_TRUNCATED;
  const hlen = tcpHeaderLen(t);
  if (hlen < TCP_MIN_HEADER_LEN || hlen > avail) return DROP_BAD_TCP_DOFF;
  return 0;
}
