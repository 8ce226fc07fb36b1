// The per-packet decision of IPVS NAT ("masquerading", net/netfilter/ipvs/ip_vs_core.c and
// ip_vs_xmit.c ip_vs_nat_xmit), over one ring slot at a time:
//
//   validate IPv4 -> validate TCP/UDP -> hash the tuple -> look up the connection
//     found, request direction  (client -> VIP:vport):    DNAT to RIP:rport      FORWARD
//     found, reply direction    (RIP:rport -> client):    SNAT back to VIP:vport FORWARD
//     not found, VIP service, TCP SYN or any UDP:         schedule (one host call), record,
//                                                         DNAT                   FORWARD
//     not found, VIP without that service, or ICMP query
//       or another protocol to a VIP:                     the director's own     LOCAL
//     anything else:                                      not ours               PASS
//
// Worked example (the seed's golden test): service TCP 202.103.106.5:80, the scheduler picks
// 172.16.0.3:8000. 202.100.1.2:3456 -> 202.103.106.5:80 leaves as 202.100.1.2:3456 ->
// 172.16.0.3:8000; the reply 172.16.0.3:8000 -> 202.100.1.2:3456 leaves as
// 202.103.106.5:80 -> 202.100.1.2:3456. Each rewrite adjusts the IP and TCP checksums by the
// difference of the changed words only (rewrite.ts); the payload is never read.
//
// Connection reuse follows IPVS conn_reuse_mode=1 (ip_vs_core.c is_new_conn_expected): a
// new SYN on the tuple of a connection in TIME_WAIT or CLOSE retires the old connection and
// is scheduled afresh, in the same pass (the kernel drops that SYN and waits for the
// client's retransmit a second later; we do not need to).
// Where the parts live: the batch in passes (pipeline.ts) calls validate and packetHash in
// pass 1 and handle in pass 4, with the packet's facts in packet.ts; a known connection's
// packet is rewritten by rewrite.ts, a new one scheduled by schedule.ts (persistence in
// persist.ts), an ICMP error translated by icmp-translate.ts; connections live and die in
// conn-life.ts and expire.ts, and report in events.ts.
import { connAddr, connLookup, linkAddr, tupleHash } from './conn';
import { ftpFillCport } from './ftp';
import { connRelease, destGone } from './conn-life';
import {
  CONN_EXPIRES, CONN_STATE, DROP_DEST_GONE, DROP_FRAGMENT, DROP_NO_CONN, DROP_SHORT_PACKET,
  EVENT_CONN_EXPIRED, EVENT_CONN_REUSED, INDEX_DIR_BIT, CTRL_NO_CPORT, LINK_N_CONTROL, INDEX_REF_MASK, LOCAL_ICMP,
  LOCAL_NO_SERVICE, LOCAL_PROTOCOL, PASS_NOT_IPV4, PASS_NO_MATCH, PASS_PROTOCOL, VERDICT_NONE,
} from './layout';
import { icmpQuoteHash, translateIcmp } from './icmp-translate';
import {
  drop, isOpeningSyn, local, pass, pkt, pktHash, pktIsTcp, pktL4, pktNow, pktProto, pktTcpFlags,
} from './packet';
import { forward } from './rewrite';
import { CTRL } from './regions';
import { openConnection } from './schedule';
import { isDestAddr, isVip, serviceFind } from './service';
import { TCP_S_CLOSE, TCP_S_TIME_WAIT } from './tcpstate';
import { timeDiff } from './timer';
import {
  IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ipv4Check, ipv4Daddr, ipv4HeaderLen, ipv4IsLaterFragment,
  ipv4MoreFragments, ipv4Protocol, ipv4Saddr, ipv4TotalLen, ipv4Version,
} from './wire/ipv4';
import { ICMP_NOT_AN_ERROR, ICMP_NOT_TRANSLATABLE, icmpErrorCheck } from './wire/icmp';
import { tcpCheck, tcpDport, tcpSport } from './wire/tcp';
import { UDP_HEADER_LEN, udpCheck } from './wire/udp';

/**
 * Validates the IPv4 and TCP/UDP headers of an untrusted packet. Returns the final verdict
 * for a packet that is not ours or not sound (drop, pass), or VERDICT_NONE when it needs its
 * connection looked up.
 */
export function validate(p: usize, avail: u32): u8 {
  if (avail == 0) return drop(DROP_SHORT_PACKET);
  if (ipv4Version(p) == 6) return pass(PASS_NOT_IPV4);
  const bad = ipv4Check(p, avail);
  if (bad) return drop(bad);
  const proto = ipv4Protocol(p);
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP) {
    // Another protocol to a VIP is the director's to answer (protocol unreachable), never to
    // route on: through a TUN it would loop back to the VIP. A later fragment of it is
    // dropped as any fragment to a VIP is (no reassembly, and one answer per datagram).
    if (!isVip(ipv4Daddr(p))) return pass(PASS_PROTOCOL);
    return ipv4IsLaterFragment(p) ? drop(DROP_FRAGMENT) : local(LOCAL_PROTOCOL);
  }
  if (ipv4IsLaterFragment(p)) {
    // No ports to look up without reassembly: drop what could be ours (to a VIP, or from a
    // real server, where passing it would leak the server's address) and let transit pass.
    return isVip(ipv4Daddr(p)) || isDestAddr(ipv4Saddr(p)) ? drop(DROP_FRAGMENT) : pass(PASS_NO_MATCH);
  }
  const hlen = ipv4HeaderLen(p);
  const l4avail = ipv4TotalLen(p) - hlen;
  const l4 = p + hlen;
  if (proto == IPPROTO_ICMP) {
    const r = icmpErrorCheck(l4, l4avail);
    // Echo requests and other queries, and errors about no flow of ours, to a VIP are the
    // director's own (it answers echo as icmp_echo does); elsewhere they are transit.
    if (r == ICMP_NOT_AN_ERROR || r == ICMP_NOT_TRANSLATABLE) return isVip(ipv4Daddr(p)) ? local(LOCAL_ICMP) : pass(PASS_PROTOCOL);
    return r ? drop(r) : VERDICT_NONE;
  }
  // A first fragment (MF set) holds only part of the datagram: its UDP length may exceed it.
  const badL4 = proto == IPPROTO_TCP ? tcpCheck(l4, l4avail)
    : (ipv4MoreFragments(p) && l4avail >= UDP_HEADER_LEN ? 0 : udpCheck(l4, l4avail));
  if (badL4) return drop(badL4);
  return VERDICT_NONE;
}

/**
 * The tuple hash a validated packet is looked up by: its own tuple, or for an ICMP error the
 * reverse of the quoted packet's (that packet left the director; its reverse came in).
 */
@inline export function packetHash(p: usize): u64 {
  const l4 = p + ipv4HeaderLen(p);
  if (ipv4Protocol(p) == IPPROTO_ICMP) return icmpQuoteHash(l4);
  // TCP and UDP ports share offsets 0 and 2.
  return tupleHash(ipv4Saddr(p), tcpSport(l4), ipv4Daddr(p), tcpDport(l4), ipv4Protocol(p));
}

/**
 * Handles the validated packet taken up by packetBegin: looks up its connection and rewrites
 * it, or opens one, or refuses it. Returns the verdict.
 */
export function handle(): u8 {
  const proto = pktProto;
  if (proto == IPPROTO_ICMP) return translateIcmp();
  const p = pkt;
  const l4 = pktL4;
  const now = pktNow;
  const isTcp = pktIsTcp;
  const tflags = pktTcpFlags;
  const saddr = ipv4Saddr(p);
  const daddr = ipv4Daddr(p);
  const sport = tcpSport(l4);
  const dport = tcpDport(l4);
  let entry = connLookup(pktHash, saddr, sport, daddr, dport, proto);
  // A passive FTP data connection waits for its client port (ftp.ts): only looked for while
  // one exists, so other traffic pays one load on a miss.
  if (entry == 0 && isTcp && load<u32>(CTRL + CTRL_NO_CPORT) != 0) entry = ftpFillCport(saddr, sport, daddr, dport);
  if (entry != 0) {
    const idx = (entry & INDEX_REF_MASK) - 1;
    const reply = (entry & INDEX_DIR_BIT) != 0;
    const c = connAddr(idx);
    const state = load<u8>(c + CONN_STATE);
    if (timeDiff(load<u32>(c + CONN_EXPIRES), now) <= 0 && load<u32>(linkAddr(idx) + LINK_N_CONTROL) == 0) {
      // Timed out but not yet reached by the wheel: it no longer exists for this packet (an
      // FTP control connection with live data connections still does: expire.ts).
      connRelease(idx, EVENT_CONN_EXPIRED, now);
    } else if (!reply && destGone(c)) {
      // expire_nodest_conn (ip_vs_in): the server was deleted, so the connection goes now.
      // A SYN opening a new connection on its tuple is scheduled afresh; anything else is
      // dropped, and the client's retransmission or new connection finds a live server.
      connRelease(idx, EVENT_CONN_EXPIRED, now);
      if (!(isTcp && isOpeningSyn(tflags))) return drop(DROP_DEST_GONE);
    } else if (isTcp && !reply && isOpeningSyn(tflags) && (state == TCP_S_TIME_WAIT || state == TCP_S_CLOSE)) {
      connRelease(idx, EVENT_CONN_REUSED, now);
    } else {
      return forward(idx, reply);
    }
  }
  const svc = serviceFind(proto, daddr, dport);
  // To a VIP on a port no service serves: refused as the host would (RST, port unreachable).
  if (svc < 0) return isVip(daddr) ? local(LOCAL_NO_SERVICE) : pass(PASS_NO_MATCH);
  if (isTcp && !isOpeningSyn(tflags)) return drop(DROP_NO_CONN);
  return openConnection(<u32>svc);
}
