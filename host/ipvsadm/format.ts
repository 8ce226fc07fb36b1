// Every table wasmvs prints as ipvsadm prints it (ipvsadm.c: print_title, print_service_entry,
// print_conn, print_largenum): the connection table (`-L -n -c`), totals (`-L -n --stats`) and
// rates (`-L -n --rate`). The replay command uses them now, `wasmvs adm` and the control socket
// later; the numbers come from the engine (host/engine/), the layout from here.
import { parseIPv4, protocolNumber } from '../addr.js';
import type { ConnInfo } from '../engine/engine.js';
import type { ServiceStats } from '../engine/stats.js';

/** The connection table as `ipvsadm -L -n -c` prints it. */
export function formatConnections(conns: readonly ConnInfo[]): string {
  const lines = ['IPVS connection entries', 'pro expire state       source             virtual            destination'];
  for (const c of conns) {
    const secs = Math.floor(c.expiresIn / 1000);
    const expire = `${String(Math.floor(secs / 60)).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}`;
    lines.push(`${c.protocol.toUpperCase().padEnd(3)} ${expire}  ${c.state.padEnd(11)} ${`${c.caddr}:${c.cport}`.padEnd(18)} ${`${c.vaddr}:${c.vport}`.padEnd(18)} ${c.daddr}:${c.dport}`);
  }
  return `${lines.join('\n')}\n`;
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

const SVC_NAME_WIDTH = 33; // ipvsadm: "%-33s", the name cut at 33 characters
const DEST_NAME_WIDTH = 28; // "  -> %-28s", cut at 28

/**
 * The table `ipvsadm -L -n --stats` (kind 'stats': totals) or `--rate` (kind 'rate') prints,
 * from its column titles on (the "IP Virtual Server version" banner describes a kernel and is
 * left out). Services and their real servers are sorted as ipvsadm sorts them: protocol,
 * address, port.
 */
export function formatStatsTable(services: readonly ServiceStats[], kind: 'stats' | 'rate', exact = false): string {
  const titles = kind === 'stats'
    ? ['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes']
    : ['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'];
  const lines = [
    `${'Prot LocalAddress:Port'.padEnd(SVC_NAME_WIDTH)} ${titles.map((t) => t.padStart(8)).join(' ')}`,
    '  -> RemoteAddress:Port',
  ];
  const num = (n: number) => formatLargeNum(n, exact);
  const sorted = [...services].sort((a, b) => protocolNumber(a.protocol) - protocolNumber(b.protocol)
    || parseIPv4(a.vaddr) - parseIPv4(b.vaddr) || a.vport - b.vport);
  for (const s of sorted) {
    const name = `${s.protocol.toUpperCase()}  ${s.vaddr}:${s.vport}`.slice(0, SVC_NAME_WIDTH).padEnd(SVC_NAME_WIDTH);
    lines.push(kind === 'stats'
      ? name + num(s.conns) + num(s.inPkts) + num(s.outPkts) + num(s.inBytes) + num(s.outBytes)
      : name + num(s.cps) + num(s.inPps) + num(s.outPps) + num(s.inBps) + num(s.outBps));
    const dests = [...s.dests].sort((a, b) => parseIPv4(a.daddr) - parseIPv4(b.daddr) || a.dport - b.dport);
    for (const d of dests) {
      const dname = `  -> ${`${d.daddr}:${d.dport}`.slice(0, DEST_NAME_WIDTH).padEnd(DEST_NAME_WIDTH)}`;
      // As ipvsadm: a real server's CPS and PPS are plain "%8u" columns, its BPS large numbers.
      lines.push(kind === 'stats'
        ? dname + num(d.conns) + num(d.inPkts) + num(d.outPkts) + num(d.inBytes) + num(d.outBytes)
        : `${dname} ${String(d.cps).padStart(8)} ${String(d.inPps).padStart(8)} ${String(d.outPps).padStart(8)}${num(d.inBps)}${num(d.outBps)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
