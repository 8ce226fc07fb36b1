// The NAT rewrite of a packet of a known connection, as ip_vs_xmit.c ip_vs_nat_xmit with
// ip_vs_proto_tcp.c tcp_dnat_handler / tcp_snat_handler (and udp's): client -> VIP:vport
// leaves as client -> RIP:rport, RIP:rport -> client leaves as VIP:vport -> client. One
// address and one port change; the IP and TCP/UDP checksums are adjusted by the difference of
// the changed words only (RFC 1624 eqn. 3, checksum.ts): the payload is never read.
//
// Worked example (the seed's golden test): connection 202.100.1.2:3456 -> 202.103.106.5:80
// scheduled to 172.16.0.3:8000. The request's daddr 202.103.106.5 -> 172.16.0.3 and dport
// 80 -> 8000, its IP checksum adjusted for the address, its TCP checksum for address and port
// (both in the pseudo-header sum / header); the reply's saddr and sport go back the same way.
import {
  checksumPartialReplace32, checksumReplace32, checksumReplace32And16,
} from './checksum';
import { connAddr } from './conn';
import { connSetState } from './conn-life';
import {
  CONN_DADDR, CONN_DEST, CONN_DPORT, CONN_FLAGS, CONN_F_APP, CONN_STATE, CONN_VADDR, CONN_VPORT, COUNTER_FORWARD_IN,
  COUNTER_FORWARD_OUT, DESC_F_REPLY, DEST_IN_BYTES, DEST_IN_PKTS, DEST_OUT_BYTES, DEST_OUT_PKTS,
  VERDICT_FORWARD,
} from './layout';
import { pkt, pktIsTcp, pktL4, pktNow, pktPartial, pktTcpFlags, pktTotal, resultConn, resultFlag } from './packet';
import { add64, count, timeoutMs } from './regions';
import { ftpPacket } from './ftp';
import { destAddr } from './service';
import { tcpNextState, timeoutSlot } from './tcpstate';
import { timerSet } from './timer';
import { ipv4Checksum, ipv4SetChecksum, ipv4SetDaddr, ipv4SetSaddr } from './wire/ipv4';
import { TCP_CHECKSUM } from './wire/tcp';
import { UDP_CHECKSUM } from './wire/udp';

// What the TCP/UDP checksum of a rewritten header is: the kind of header, and whether the
// field holds a complete checksum or a partial pseudo-header sum (virtio_net_hdr NEEDS_CSUM).
/** No transport checksum to adjust (an ICMP error's quote that stops before it). */
export const L4_NONE: u8 = 0;
/** TCP: checksum at offset 16, always present. */
export const L4_TCP: u8 = 1;
/** UDP: checksum at offset 6; 0 means "none" (RFC 768). */
export const L4_UDP: u8 = 2;
/** With L4_TCP or L4_UDP: the field is the uncomplemented pseudo-header sum. */
export const L4_PARTIAL: u8 = 4;

@inline export function l4Kind(isTcp: bool, partial: bool): u8 {
  return (isTcp ? L4_TCP : L4_UDP) | (partial ? L4_PARTIAL : 0);
}

/**
 * Rewrites the packet at `p` (its TCP/UDP header at `l4`, of kind `l4kind`) between the two
 * sides of connection record `c`: from VIP:vport to RIP:rport when `toReal`, else back. The
 * destination address and port change when `onDest`, else the source ones. The IP header
 * checksum is adjusted for the address, the transport checksum for address and port.
 */
@inline export function rewrite(p: usize, l4: usize, c: usize, onDest: bool, toReal: bool, l4kind: u8): void {
  const fromAddr = load<u32>(c + (toReal ? CONN_VADDR : CONN_DADDR));
  const toAddr = load<u32>(c + (toReal ? CONN_DADDR : CONN_VADDR));
  const fromPort = load<u16>(c + (toReal ? CONN_VPORT : CONN_DPORT));
  const toPort = load<u16>(c + (toReal ? CONN_DPORT : CONN_VPORT));
  if (onDest) { ipv4SetDaddr(p, toAddr); store<u16>(l4 + 2, toPort); }
  else { ipv4SetSaddr(p, toAddr); store<u16>(l4, toPort); }
  ipv4SetChecksum(p, checksumReplace32(ipv4Checksum(p), fromAddr, toAddr));
  if (l4kind == L4_NONE) return;
  const isTcp = (l4kind & L4_TCP) != 0;
  const ckAddr = l4 + (isTcp ? TCP_CHECKSUM : UDP_CHECKSUM);
  const check = load<u16>(ckAddr);
  if (l4kind & L4_PARTIAL) {
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
@inline export function accountRequest(d: usize, bytes: u32): void {
  add64(d + DEST_IN_PKTS, 1); add64(d + DEST_IN_BYTES, bytes);
  count(COUNTER_FORWARD_IN);
}

/** Counts a forwarded packet of `bytes` from the real server `d` back to its client. */
@inline export function accountReply(d: usize, bytes: u32): void {
  add64(d + DEST_OUT_PKTS, 1); add64(d + DEST_OUT_BYTES, bytes);
  count(COUNTER_FORWARD_OUT);
  resultFlag(DESC_F_REPLY);
}

/**
 * Forwards the packet being handled (packet.ts) on connection `idx`, in the reply direction
 * when `reply`: rewrites it, counts it, moves the TCP state and re-arms the timeout.
 */
export function forward(idx: u32, reply: bool): u8 {
  const c = connAddr(idx);
  const d = destAddr(load<u16>(c + CONN_DEST));
  const isTcp = pktIsTcp;
  const kind = l4Kind(isTcp, pktPartial);
  if (reply) {
    rewrite(pkt, pktL4, c, false, false, kind);
    accountReply(d, pktTotal);
  } else {
    rewrite(pkt, pktL4, c, true, true, kind);
    accountRequest(d, pktTotal);
  }
  // An FTP control connection: the helper looks at it (ftp.ts); one flag test for the rest.
  if (load<u16>(c + CONN_FLAGS) & CONN_F_APP) ftpPacket(idx, c, reply);
  const now = pktNow;
  if (isTcp) connSetState(idx, tcpNextState(load<u8>(c + CONN_STATE), pktTcpFlags, reply ? 1 : 0), now);
  timerSet(idx, now + timeoutMs(timeoutSlot(!isTcp, load<u8>(c + CONN_STATE))));
  resultConn(idx);
  return VERDICT_FORWARD;
}
