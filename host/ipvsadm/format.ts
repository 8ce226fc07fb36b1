// Every table wasmvs prints as ipvsadm 1.31 prints it, one formatter per table, derived from
// ipvsadm.c's printf formats (list_all, print_title, print_service_entry, list_conn, print_conn,
// print_largenum, print_sched_flags, list_timeout):
//
//   -L [-n]                         services and real servers, with the three header lines
//   -L -n --stats | --rate          totals | rates (print_largenum's K/M/G/T)
//   -L -n --thresholds              Uthreshold, Lthreshold, ActiveConn, InActConn
//   -L -n --persistent-conn         Weight, PersistConn, ActiveConn, InActConn
//   -L -n --tun-info                Forward and TunnelInfo ("n/a": wasmvs only masquerades)
//   -L -n -c [--persistent-conn]    the connection table, expire as mm:ss
//   -L --timeout                    "Timeout (tcp tcpfin udp): ..."
//   -S [-n]                         save syntax (ipvsadm-save)
//
// `wasmvs adm` prints them from a gateway's control socket, `wasmvs replay` from its engine.
// Without -n, addresses and ports print as names (a Names the caller resolved beforehand, see
// names.ts); ipvsadm's column widths do not change with names, it cuts the service name at 33
// characters and the real server's at 28.
import { parseIPv4, protocolNumber, type Protocol } from '../addr.js';
import type { ConnInfo, Timeouts } from '../engine/engine.js';
import type { ServiceConfig } from '../engine/spec.js';
import type { ServiceStats, StatsRates, StatsTotals } from '../engine/stats.js';
import { schedFlagNames } from '../schedulers/common.js';

/** How addresses and ports print: numeric (-n), or names resolved in advance. */
export interface Names {
  host(addr: string): string;
  port(port: number, protocol: Protocol): string;
}

/** -n: addresses and ports as numbers. */
export const NUMERIC: Names = { host: (a) => a, port: (p) => String(p) };

/** The listing options that change a table (ipvsadm's FMT_ flags). */
export interface TableFormat {
  names?: Names;
  stats?: boolean;
  rate?: boolean;
  thresholds?: boolean;
  persistentConn?: boolean;
  tunInfo?: boolean;
  /** --nosort: services and real servers in table order instead of sorted. */
  nosort?: boolean;
  /** --exact: every digit of a large number. */
  exact?: boolean;
}

/** A real server as `-L` lists it. Fields a format does not print may be left out. */
export interface ListedDest extends Partial<StatsTotals>, Partial<StatsRates> {
  daddr: string;
  dport: number;
  weight?: number;
  activeConns?: number;
  inactConns?: number;
  upperThreshold?: number;
  lowerThreshold?: number;
  /** Persistence templates bound to it (ipvsadm's persistconns). */
  persistConns?: number;
}

/** A service as `-L` lists it: its configuration, totals and rates, and its real servers. */
export interface ListedService extends Partial<Omit<ServiceConfig, 'protocol' | 'vaddr' | 'vport'>>, Partial<StatsTotals>, Partial<StatsRates> {
  protocol: Protocol;
  vaddr: string;
  vport: number;
  dests: ListedDest[];
}

/** list_all's first line. `version` is wasmvs's, `size` the connection table's capacity. */
export function formatVersionLine(version: string, size: number): string {
  return `IP Virtual Server version ${version} (size=${size})\n`;
}

/** list_timeout(). */
export function formatTimeouts(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
}

/**
 * A counter as ipvsadm's print_largenum prints it: right-aligned in 9 columns; from 10^8 on,
 * in thousands (K), millions (M), billions (G) or trillions (T), truncated. `exact`
 * (ipvsadm --exact): every digit, one column wider than the number when it needs more than 8.
 */
export function formatLargeNum(n: number, exact = false): string {
  const digits = String(n);
  if (exact) return digits.padStart(digits.length <= 8 ? 9 : digits.length + 1);
  if (n < 1e8) return digits.padStart(9);
  if (n < 1e9) return `${String(Math.floor(n / 1e3)).padStart(8)}K`;
  if (n < 1e11) return `${String(Math.floor(n / 1e6)).padStart(8)}M`;
  if (n < 1e14) return `${String(Math.floor(n / 1e9)).padStart(8)}G`;
  return `${String(Math.floor(n / 1e12)).padStart(8)}T`;
}

const SVC_NAME_WIDTH = 33; // "%-33s", and svc_name[33] = '\0'
const DEST_NAME_WIDTH = 28; // "  -> %-28s", and dname[28] = '\0'

/** printf("%-Ns") of a number or string: left-aligned, never cut. */
const left = (v: number | string | undefined, width: number): string => String(v ?? 0).padEnd(width);
/** printf("%Nllu"). */
const right = (v: number | undefined, width: number): string => String(v ?? 0).padStart(width);

/** ipvs_cmp_services: protocol, address, port (compared as unsigned numbers). */
function sortServices<T extends { protocol: Protocol; vaddr: string; vport: number }>(services: readonly T[]): T[] {
  return [...services].sort((a, b) => protocolNumber(a.protocol) - protocolNumber(b.protocol)
    || parseIPv4(a.vaddr) - parseIPv4(b.vaddr) || a.vport - b.vport);
}

/** ipvs_cmp_dests: address, port. */
function sortDests<T extends { daddr: string; dport: number }>(dests: readonly T[]): T[] {
  return [...dests].sort((a, b) => parseIPv4(a.daddr) - parseIPv4(b.daddr) || a.dport - b.dport);
}

/** print_title(): the two column-title lines of a service table. */
function title(f: TableFormat): string {
  const prot = 'Prot LocalAddress:Port'.padEnd(SVC_NAME_WIDTH);
  if (f.stats) return `${prot} ${['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((t) => t.padStart(8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  if (f.rate) return `${prot} ${['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'].map((t) => t.padStart(8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  if (f.thresholds) return `${prot} ${['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((t) => t.padEnd(10)).join(' ')}\n  -> RemoteAddress:Port\n`;
  if (f.persistentConn) return `${prot} ${'Weight'.padEnd(9)} ${'PersistConn'.padEnd(11)} ${'ActiveConn'.padEnd(10)} ${'InActConn'.padEnd(10)}\n  -> RemoteAddress:Port\n`;
  if (f.tunInfo) return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n';
  return 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
}

function serviceEntry(s: ListedService, f: TableFormat): string {
  const names = f.names ?? NUMERIC;
  const num = (n: number | undefined) => formatLargeNum(n ?? 0, f.exact);
  const svcName = `${s.protocol.toUpperCase().padEnd(4)} ${names.host(s.vaddr)}:${names.port(s.vport, s.protocol)}`.slice(0, SVC_NAME_WIDTH);
  let out: string;
  if (f.stats) {
    out = svcName.padEnd(SVC_NAME_WIDTH) + num(s.conns) + num(s.inPkts) + num(s.outPkts) + num(s.inBytes) + num(s.outBytes);
  } else if (f.rate) {
    out = svcName.padEnd(SVC_NAME_WIDTH) + num(s.cps) + num(s.inPps) + num(s.outPps) + num(s.inBps) + num(s.outBps);
  } else {
    const scheduler = s.scheduler ?? 'wlc';
    out = `${svcName} ${scheduler}`;
    const flags = schedFlagNames(scheduler, s.schedFlags ?? []);
    if (flags.length > 0) out += ` (${flags.join(',')})`;
    if (s.persistence !== undefined) {
      out += ` persistent ${s.persistence}`;
      if (s.netmask !== undefined && s.netmask !== '255.255.255.255') out += ` mask ${s.netmask}`;
    }
    if (s.onePacket) out += ' ops';
  }
  out += '\n';
  for (const d of f.nosort ? s.dests : sortDests(s.dests)) {
    const dname = `${names.host(d.daddr)}:${names.port(d.dport, s.protocol)}`.slice(0, DEST_NAME_WIDTH);
    const arrow = `  -> ${left(dname, DEST_NAME_WIDTH)}`;
    if (f.stats) out += arrow + num(d.conns) + num(d.inPkts) + num(d.outPkts) + num(d.inBytes) + num(d.outBytes);
    // A real server's CPS and PPS are plain "%8llu" columns, its BPS large numbers.
    else if (f.rate) out += `${arrow} ${right(d.cps, 8)} ${right(d.inPps, 8)} ${right(d.outPps, 8)}${num(d.inBps)}${num(d.outBps)}`;
    else if (f.thresholds) out += `${arrow} ${left(d.upperThreshold, 10)} ${left(d.lowerThreshold, 10)} ${left(d.activeConns, 10)} ${left(d.inactConns, 10)}`;
    else if (f.persistentConn) out += `${arrow} ${left(d.weight, 9)} ${left(d.persistConns, 11)} ${left(d.activeConns, 10)} ${left(d.inactConns, 10)}`;
    else if (f.tunInfo) out += `${arrow} ${left('Masq', 7)} ${left('n/a', 13)} ${left(d.weight, 6)} ${left(d.activeConns, 10)} ${left(d.inactConns, 10)}`;
    else out += `${arrow} ${left('Masq', 7)} ${left(d.weight, 6)} ${left(d.activeConns, 10)} ${left(d.inactConns, 10)}`;
    out += '\n';
  }
  return out;
}

/**
 * A service table from its column titles on (list_service for `-L -t SERVICE`; list_all adds
 * formatVersionLine before it). Sorted as ipvsadm sorts unless `nosort`.
 */
export function formatServices(services: readonly ListedService[], format: TableFormat = {}): string {
  let out = title(format);
  for (const s of format.nosort ? services : sortServices(services)) out += serviceEntry(s, format);
  return out;
}

/**
 * The table `ipvsadm -L -n --stats` (kind 'stats': totals) or `--rate` (kind 'rate') prints,
 * from its column titles on (the "IP Virtual Server version" banner is formatVersionLine's).
 * Services and their real servers are sorted as ipvsadm sorts them: protocol, address, port.
 */
export function formatStatsTable(services: readonly ServiceStats[], kind: 'stats' | 'rate', exact = false, format: TableFormat = {}): string {
  return formatServices(services, { ...format, exact, stats: kind === 'stats', rate: kind === 'rate' });
}

/**
 * `ipvsadm -S` (print_service_entry with FMT_RULE): ipvsadm-save syntax, `-n` for numbers.
 * Unlike ipvsadm, a real server's -x/-y are saved too (ipvsadm -R reads them), so that a save
 * and restore keeps the thresholds.
 */
export function formatSave(services: readonly ListedService[], format: Pick<TableFormat, 'names' | 'nosort'> = {}): string {
  const names = format.names ?? NUMERIC;
  let out = '';
  for (const s of format.nosort ? services : sortServices(services)) {
    const svc = `${s.protocol === 'tcp' ? '-t' : '-u'} ${names.host(s.vaddr)}:${names.port(s.vport, s.protocol)}`;
    const scheduler = s.scheduler ?? 'wlc';
    out += `-A ${svc} -s ${scheduler}`;
    if (s.persistence !== undefined) {
      out += ` -p ${s.persistence}`;
      if (s.netmask !== undefined && s.netmask !== '255.255.255.255') out += ` -M ${s.netmask}`;
    }
    if (s.onePacket) out += ' -o';
    const flags = schedFlagNames(scheduler, s.schedFlags ?? []);
    if (flags.length > 0) out += ` -b ${flags.join(',')}`;
    out += '\n';
    for (const d of format.nosort ? s.dests : sortDests(s.dests)) {
      out += `-a ${svc} -r ${names.host(d.daddr)}:${names.port(d.dport, s.protocol)} -m -w ${d.weight ?? 1}`;
      if (d.upperThreshold) out += ` -x ${d.upperThreshold}`;
      if (d.lowerThreshold) out += ` -y ${d.lowerThreshold}`;
      out += '\n';
    }
  }
  return out;
}

/**
 * The connection table as `ipvsadm -L -n -c` prints it (list_conn, print_conn:
 * "%-3s %-6s %-11s %-18s %-18s %s", expire "%02d:%02d" of whole seconds). Persistence templates
 * are listed as the kernel lists them, client port 0. `persistentConn` adds the pe name and
 * pe_data titles (wasmvs has no persistence engines, so no line carries them).
 */
export function formatConnections(conns: readonly ConnInfo[], format: Pick<TableFormat, 'names' | 'persistentConn'> = {}): string {
  const names = format.names ?? NUMERIC;
  let out = 'IPVS connection entries\n';
  out += format.persistentConn
    ? `pro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} ${left('destination', 18)} ${left('pe name', 16)} pe_data\n`
    : `pro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} destination\n`;
  for (const c of conns) {
    const secs = Math.floor(c.expiresIn / 1000);
    const expire = `${String(Math.floor(secs / 60)).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}`;
    const at = (addr: string, port: number) => `${names.host(addr)}:${names.port(port, c.protocol)}`;
    out += `${left(c.protocol.toUpperCase(), 3)} ${left(expire, 6)} ${left(c.state, 11)} ${left(at(c.caddr, c.cport), 18)} ${left(at(c.vaddr, c.vport), 18)} ${at(c.daddr, c.dport)}\n`;
  }
  return out;
}
