// A new connection: the first packet of a flow to a virtual service (a TCP SYN, any UDP
// datagram) is given a real server, by the service's persistence template when it has one
// (persist.ts), else by the host's scheduler, in one call per new connection and never per
// packet (ip_vs_core.c ip_vs_schedule, ip_vs_sched_persist). The connection is recorded
// (conn-life.ts) and the packet forwarded (rewrite.ts).
import { connAddr, connLookup, tupleHash } from './conn';
import { connNew, connRelease } from './conn-life';
import { recordsAvailable } from './expire';
import {
  CONN_DEST, CONN_EXPIRES, DEST_DPORT, DEST_DADDR, DEST_FLAGS, DEST_F_AVAILABLE, DROP_NO_DEST,
  DROP_SCHEDULER_ERROR, DROP_TABLE_FULL, DROP_TUPLE_CLASH, EVENT_CONN_EXPIRED, INDEX_REF_MASK,
  SCHEDULE_ERROR, SVC_FLAGS, SVC_F_ONE_PACKET, SVC_F_PERSISTENT, SVC_PTIMEOUT,
} from './layout';
import { drop, pkt, pktIsTcp, pktL4, pktNow, pktProto } from './packet';
import { templateCreate, templateFind, templateKey, templateTouch } from './persist';
import { maxDests } from './regions';
import { forward } from './rewrite';
import { destAddr, svcAddr } from './service';
import { timeDiff } from './timer';
import { ipv4Daddr, ipv4Saddr } from './wire/ipv4';
import { tcpDport, tcpSport } from './wire/tcp';

/** Asks the host's scheduler for a real server: one call per new connection, never per packet. */
@external('env', 'schedule')
declare function hostSchedule(service: u32, saddr: u32, sport: u32, daddr: u32, dport: u32): i32;

/**
 * Schedules and records a new connection of service `svc` for the packet being handled
 * (packet.ts), then forwards it. Returns the verdict.
 */
export function openConnection(svc: u32): u8 {
  const now = pktNow;
  const s = svcAddr(svc);
  const persistent = (load<u8>(s + SVC_FLAGS) & SVC_F_PERSISTENT) != 0;
  if (!recordsAvailable(1, now)) return drop(DROP_TABLE_FULL);
  const saddr = ipv4Saddr(pkt);
  const daddr = ipv4Daddr(pkt);
  // TCP and UDP ports share offsets 0 and 2.
  const sport = tcpSport(pktL4);
  const dport = tcpDport(pktL4);
  let dest: i32 = -1;
  let template: i32 = -1;
  if (persistent) {
    templateKey(s, saddr, daddr, pktProto);
    template = templateFind(now);
    if (template >= 0) dest = <i32>load<u16>(connAddr(<u32>template) + CONN_DEST);
    // A client without a template needs a record for one as well as for the connection.
    else if (!recordsAvailable(2, now)) return drop(DROP_TABLE_FULL);
  }
  if (dest < 0) {
    dest = hostSchedule(svc, saddr, sport, daddr, dport);
    if (dest == SCHEDULE_ERROR) return drop(DROP_SCHEDULER_ERROR);
    if (dest < 0 || <u32>dest >= maxDests) return drop(DROP_NO_DEST);
    if (!(load<u16>(destAddr(<u32>dest) + DEST_FLAGS) & DEST_F_AVAILABLE)) return drop(DROP_NO_DEST);
  }
  const d = destAddr(<u32>dest);
  const raddr = load<u32>(d + DEST_DADDR);
  let rport = load<u16>(d + DEST_DPORT);
  if (rport == 0) rport = dport; // a real server without a port keeps the service's port
  // The reply tuple must be free too, or replies would be matched to another connection.
  const hr = tupleHash(raddr, rport, saddr, sport, pktProto);
  const clash = connLookup(hr, raddr, rport, saddr, sport, pktProto);
  if (clash != 0) {
    const other = (clash & INDEX_REF_MASK) - 1;
    if (timeDiff(load<u32>(connAddr(other) + CONN_EXPIRES), now) > 0) return drop(DROP_TUPLE_CLASH);
    connRelease(other, EVENT_CONN_EXPIRED, now); // already due: it no longer exists
  }
  if (persistent) {
    if (template < 0) template = <i32>templateCreate(<u32>dest, load<u32>(s + SVC_PTIMEOUT), now);
    else templateTouch(<u32>template, now); // each use restarts it
  }
  const idx = connNew(<u32>dest, rport, template);
  const verdict = forward(idx, false);
  // One-packet scheduling (-o, UDP): the connection lives for this datagram only, as IPVS's
  // IP_VS_CONN_F_ONE_PACKET. Replies then find none and pass untranslated, as in IPVS.
  if (!pktIsTcp && (load<u8>(s + SVC_FLAGS) & SVC_F_ONE_PACKET)) connRelease(idx, EVENT_CONN_EXPIRED, now);
  return verdict;
}
