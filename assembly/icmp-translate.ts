// ICMP errors about our connections, as ip_vs_core.c ip_vs_in_icmp / ip_vs_out_icmp and
// ip_vs_xmit.c ip_vs_nat_icmp: the quoted packet's reverse tuple finds the connection (that
// packet left the director; its reverse came in), then the outer address on our side, the
// quoted packet's address and port, and the quoted IP and TCP/UDP checksums are adjusted by
// difference, and the ICMP checksum is recomputed over the message (its payload changed).
// The message itself is checked by wire/icmp.ts icmpErrorCheck.
//
// Worked example, path MTU discovery: a router between director and client answers
// 202.103.106.5:80 -> 202.100.1.2:3456 (a reply we sent) with "fragmentation needed, MTU
// 1400" to 202.103.106.5. The quote's reverse is the connection's request tuple, so the error
// goes to the real server: outer destination 172.16.0.3, quote 172.16.0.3:8000 ->
// 202.100.1.2:3456, and its TCP stack lowers the path MTU.
import { checksumCompute, checksumReplace32 } from './checksum';
import { connAddr, connLookup, tupleHash } from './conn';
import { connRelease } from './conn-life';
import {
  CONN_DADDR, CONN_DEST, CONN_EXPIRES, CONN_VADDR, DROP_ICMP_NO_CONN, EVENT_CONN_EXPIRED,
  INDEX_DIR_BIT, INDEX_REF_MASK, PASS_NO_MATCH, VERDICT_FORWARD,
} from './layout';
import { drop, pass, pkt, pktHash, pktNow, pktTotal, resultConn } from './packet';
import { accountReply, accountRequest, L4_NONE, L4_TCP, L4_UDP, rewrite } from './rewrite';
import { destAddr, isDestAddr, isVip } from './service';
import { timeDiff } from './timer';
import {
  IPPROTO_TCP, ipv4Checksum, ipv4Daddr, ipv4HeaderLen, ipv4Protocol, ipv4Saddr, ipv4SetChecksum,
  ipv4SetDaddr, ipv4SetSaddr,
} from './wire/ipv4';
import { ICMP_CHECKSUM, ICMP_HEADER_LEN, icmpQuoted } from './wire/icmp';
import { TCP_CHECKSUM, tcpDport, tcpSport } from './wire/tcp';

/** The tuple hash an ICMP error at `l4` is looked up by: the reverse of its quote's tuple. */
@inline export function icmpQuoteHash(l4: usize): u64 {
  const q = icmpQuoted(l4);
  const ql4 = q + ipv4HeaderLen(q);
  return tupleHash(ipv4Daddr(q), tcpDport(ql4), ipv4Saddr(q), tcpSport(ql4), ipv4Protocol(q));
}

/** Translates the ICMP error being handled (packet.ts): forward, or drop/pass with a reason. */
export function translateIcmp(): u8 {
  const p = pkt;
  const now = pktNow;
  const total = pktTotal;
  const m = p + ipv4HeaderLen(p);
  const mlen = total - ipv4HeaderLen(p);
  const q = icmpQuoted(m);
  const qhlen = ipv4HeaderLen(q);
  const ql4 = q + qhlen;
  const qproto = ipv4Protocol(q);
  const qsaddr = ipv4Saddr(q);
  const qdaddr = ipv4Daddr(q);
  let entry = connLookup(pktHash, qdaddr, tcpDport(ql4), qsaddr, tcpSport(ql4), qproto);
  if (entry != 0 && timeDiff(load<u32>(connAddr((entry & INDEX_REF_MASK) - 1) + CONN_EXPIRES), now) <= 0) {
    connRelease((entry & INDEX_REF_MASK) - 1, EVENT_CONN_EXPIRED, now);
    entry = 0;
  }
  if (entry == 0) {
    // About a packet from a VIP or to a real server: ours, but no connection. Else transit.
    return isVip(qsaddr) || isDestAddr(qdaddr) ? drop(DROP_ICMP_NO_CONN) : pass(PASS_NO_MATCH);
  }
  const idx = (entry & INDEX_REF_MASK) - 1;
  const c = connAddr(idx);
  const d = destAddr(load<u16>(c + CONN_DEST));
  const isTcp = qproto == IPPROTO_TCP;
  // The quote holds at least the ports; the TCP checksum only if 18 bytes of TCP are quoted.
  const quotedL4 = mlen - ICMP_HEADER_LEN - qhlen;
  const kind = isTcp ? (quotedL4 >= TCP_CHECKSUM + 2 ? L4_TCP : L4_NONE) : L4_UDP;
  if (entry & INDEX_DIR_BIT) {
    // The quote is client -> real server, as we sent it: the error goes back to the client,
    // from the VIP (IPVS rewrites the outer source even when a router sent the error).
    rewrite(q, ql4, c, true, false, kind);
    const vaddr = load<u32>(c + CONN_VADDR);
    const outerFrom = ipv4Saddr(p);
    ipv4SetSaddr(p, vaddr);
    ipv4SetChecksum(p, checksumReplace32(ipv4Checksum(p), outerFrom, vaddr));
    accountReply(d, total);
  } else {
    // The quote is VIP -> client, as we sent it: the error goes to the real server.
    rewrite(q, ql4, c, false, true, kind);
    const raddr = load<u32>(c + CONN_DADDR);
    const outerFrom = ipv4Daddr(p);
    ipv4SetDaddr(p, raddr);
    ipv4SetChecksum(p, checksumReplace32(ipv4Checksum(p), outerFrom, raddr));
    accountRequest(d, total);
  }
  store<u16>(m + ICMP_CHECKSUM, 0);
  store<u16>(m + ICMP_CHECKSUM, checksumCompute(m, mlen, 0));
  resultConn(idx);
  return VERDICT_FORWARD;
}
