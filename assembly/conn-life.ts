// A connection's life: recorded for the first packet of a scheduled flow, moved through its
// states with its real server's ActiveConn/InActConn kept right, released when it expires,
// when a new SYN reuses its tuple, or when its server is gone (ip_vs_conn.c ip_vs_conn_new
// and ip_vs_conn_expire, ip_vs_proto_tcp.c set_tcp_state). Each step emits its event.
import {
  CONN_CADDR, CONN_CPORT, CONN_DADDR, CONN_DEST, CONN_DPORT, CONN_EXPIRES, CONN_FLAGS,
  CONN_F_HASHED, CONN_F_INACTIVE, CONN_F_TEMPLATE, CONN_PROTO, CONN_STATE, CONN_VADDR, CONN_VPORT,
  COUNTER_CONN_EXPIRED, COUNTER_CONN_NEW, COUNTER_CONN_REUSED, CTRL_SETTINGS, DEST_ACTIVE, DEST_CONNS,
  DEST_DADDR, DEST_FLAGS, DEST_F_AVAILABLE, DEST_INACTIVE, DESC_F_NEW_CONN, EVENT_CONN_NEW,
  EVENT_CONN_REUSED, EVENT_CONN_STATE, LINK_CONTROL, SETTING_EXPIRE_NODEST_CONN, CONN_F_APP,
  CONN_F_NO_CPORT, CONN_F_ZOMBIE, CTRL_NO_CPORT, LINK_N_CONTROL,
} from './layout';
import { ftpBind, ftpBinds, ftpUnbind } from './ftp';
import { connAddr, connAlloc, connFree, connHash, connUnhash, linkAddr } from './conn';
import { emit } from './events';
import { pkt, pktHash, pktIsTcp, pktL4, pktNow, pktProto, resultFlag } from './packet';
import { templateAttach, templateDetach, templateRelease } from './persist';
import { add32, add64, count, CTRL } from './regions';
import { destAddr, destUpdateOverload } from './service';
import { TCP_S_ESTABLISHED, TCP_S_NONE, UDP_S_NORMAL } from './tcpstate';
import { timerUnlink } from './timer';
import { ipv4Daddr, ipv4Saddr } from './wire/ipv4';
import { tcpDport, tcpSport } from './wire/tcp';

/**
 * Records the connection of the packet being handled (packet.ts), scheduled to real server
 * `dest` on port `rport`, by persistence template `template` (-1: none), and counts it. Its
 * timer is armed when its first packet is forwarded. Returns its record.
 */
@inline export function connNew(dest: u32, rport: u16, template: i32): u32 {
  const idx = <u32>connAlloc();
  const c = connAddr(idx);
  const d = destAddr(dest);
  if (template >= 0) templateAttach(idx, <u32>template);
  store<u32>(c + CONN_CADDR, ipv4Saddr(pkt));
  store<u32>(c + CONN_VADDR, ipv4Daddr(pkt));
  store<u32>(c + CONN_DADDR, load<u32>(d + DEST_DADDR));
  // TCP and UDP ports share offsets 0 and 2.
  store<u16>(c + CONN_CPORT, tcpSport(pktL4));
  store<u16>(c + CONN_VPORT, tcpDport(pktL4));
  store<u16>(c + CONN_DPORT, rport);
  store<u8>(c + CONN_PROTO, pktProto);
  store<u8>(c + CONN_STATE, pktIsTcp ? TCP_S_NONE : UDP_S_NORMAL);
  // New connections count as inactive until TCP reaches ESTABLISHED (ip_vs_ctl.c sets
  // IP_VS_CONN_F_INACTIVE in every dest's conn_flags); UDP stays inactive, as ipvsadm shows.
  store<u16>(c + CONN_FLAGS, CONN_F_INACTIVE);
  store<u16>(c + CONN_DEST, <u16>dest);
  // The FTP helper binds by the connection's virtual port, as ip_vs_bind_app (tcp_app_conn_bind).
  if (pktIsTcp && ftpBinds(tcpDport(pktL4)) && ftpBind(idx)) store<u16>(c + CONN_FLAGS, CONN_F_INACTIVE | CONN_F_APP);
  store<u32>(c + CONN_EXPIRES, pktNow);
  connHash(idx, pktHash);
  add32(d + DEST_INACTIVE, 1);
  destUpdateOverload(d, true);
  add64(d + DEST_CONNS, 1);
  count(COUNTER_CONN_NEW);
  resultFlag(DESC_F_NEW_CONN);
  emit(EVENT_CONN_NEW, idx, 0, load<u8>(c + CONN_STATE), pktNow);
  return idx;
}

/** Moves a connection to `state`, keeping the dest's ActiveConn/InActConn right (set_tcp_state). */
export function connSetState(idx: u32, state: u8, now: u32): void {
  const c = connAddr(idx);
  const old = load<u8>(c + CONN_STATE);
  if (old == state) return;
  store<u8>(c + CONN_STATE, state);
  const d = destAddr(load<u16>(c + CONN_DEST));
  const flags = load<u16>(c + CONN_FLAGS);
  if (!(flags & CONN_F_INACTIVE) && state != TCP_S_ESTABLISHED) {
    add32(d + DEST_ACTIVE, -1); add32(d + DEST_INACTIVE, 1);
    store<u16>(c + CONN_FLAGS, flags | CONN_F_INACTIVE);
  } else if ((flags & CONN_F_INACTIVE) && state == TCP_S_ESTABLISHED) {
    add32(d + DEST_ACTIVE, 1); add32(d + DEST_INACTIVE, -1);
    store<u16>(c + CONN_FLAGS, flags & ~CONN_F_INACTIVE);
  }
  emit(EVENT_CONN_STATE, idx, old, state, now);
}

/**
 * One of the connections that `t` controls is gone: a template (persist.ts) or an FTP control
 * connection (its data connections, ftp.ts). A control connection released while it still
 * controlled some (a zombie) is freed with the last of them.
 */
export function controlDetach(t: u32): void {
  const c = connAddr(t);
  const flags = load<u16>(c + CONN_FLAGS);
  if (flags & CONN_F_TEMPLATE) { templateDetach(t); return; }
  const link = linkAddr(t);
  const n = load<u32>(link + LINK_N_CONTROL) - 1;
  store<u32>(link + LINK_N_CONTROL, n);
  if (n == 0 && (flags & CONN_F_ZOMBIE)) {
    const control = load<u32>(link + LINK_CONTROL);
    connFree(t);
    if (control != 0) controlDetach(control - 1);
  }
}

/**
 * Retires a connection (`why`: EVENT_CONN_EXPIRED or EVENT_CONN_REUSED): out of the index
 * and the wheel, off its dest's counts and its controller's, record freed. A template record
 * is freed as a template. A connection that still controls others (FTP data connections)
 * keeps its record, unreachable, until the last of them goes: theirs point at it.
 */
export function connRelease(idx: u32, why: u8, now: u32): void {
  const c = connAddr(idx);
  const flags = load<u16>(c + CONN_FLAGS);
  if (flags & CONN_F_TEMPLATE) {
    templateRelease(idx);
    return;
  }
  if (flags & CONN_F_HASHED) connUnhash(idx);
  if (flags & CONN_F_APP) ftpUnbind(idx);
  if (flags & CONN_F_NO_CPORT) store<u32>(CTRL + CTRL_NO_CPORT, load<u32>(CTRL + CTRL_NO_CPORT) - 1);
  timerUnlink(idx);
  const d = destAddr(load<u16>(c + CONN_DEST));
  add32(d + ((flags & CONN_F_INACTIVE) ? DEST_INACTIVE : DEST_ACTIVE), -1);
  destUpdateOverload(d, false);
  count(why == EVENT_CONN_REUSED ? COUNTER_CONN_REUSED : COUNTER_CONN_EXPIRED);
  const state = load<u8>(c + CONN_STATE);
  emit(why, idx, state, state, now);
  if (load<u32>(linkAddr(idx) + LINK_N_CONTROL) != 0) {
    store<u16>(c + CONN_FLAGS, CONN_F_ZOMBIE);
    return;
  }
  const control = load<u32>(linkAddr(idx) + LINK_CONTROL);
  connFree(idx);
  if (control != 0) controlDetach(control - 1);
}

/** The connection's real server was deleted and expire_nodest_conn is on. */
@inline export function destGone(c: usize): bool {
  return (load<u32>(CTRL + CTRL_SETTINGS) & SETTING_EXPIRE_NODEST_CONN) != 0
    && (load<u16>(destAddr(load<u16>(c + CONN_DEST)) + DEST_FLAGS) & DEST_F_AVAILABLE) == 0;
}
