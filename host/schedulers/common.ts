// Pieces several IPVS schedulers share, each as the kernel has it once in include/net/ip_vs.h
// or repeats in every module.
import { WasmvsError } from '../errors.js';
import type { SchedDest } from './types.js';

/**
 * ip_vs_dest_conn_overhead(): (activeconns << 8) + inactconns, "the overhead of processing
 * active connections is 256 times higher than that of inactive connections". Computed
 * exactly here (the kernel's int would wrap past 2^23 active connections).
 */
export function connOverhead(d: SchedDest): number {
  return d.activeConns * 256 + d.inactConns;
}

/**
 * The golden-ratio multiplicative hash of sh, dh, lblc and lblcr:
 * (ntohl(addr) * 2654435761UL) & mask. Only the low bits survive the mask, so 32-bit
 * multiplication gives the kernel's 64-bit result. `x` is the big-endian reading.
 */
export function goldenHash(x: number, mask: number): number {
  return Math.imul(x, 0x9e3779b1) & mask;
}

/** ip_vs_sh.c / ip_vs_mh.c is_unavailable(): quiescent or over its upper threshold. */
export function unavailable(d: SchedDest): boolean {
  return d.weight <= 0 || d.overloaded;
}

// ipvsadm's -b names. flag-1 and flag-2 are IP_VS_SVC_F_SCHED1/2, which sh and mh read as
// their fallback and port flags; sh-* and mh-* are ipvsadm's aliases, refused with any other
// scheduler (ipvsadm.c parse_sched_flags). flag-3 (SCHED3) no scheduler reads.
// This is the one list: the rules file and `wasmvs adm` (host/ipvsadm/command.ts) check against it.
export const SCHED_FLAGS: readonly string[] = ['flag-1', 'flag-2', 'flag-3', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port'];

/** The scheduler an alias flag belongs to (sh-* to sh, mh-* to mh), undefined for flag-N. */
export function schedFlagOwner(flag: string): 'sh' | 'mh' | undefined {
  return flag.startsWith('sh-') ? 'sh' : flag.startsWith('mh-') ? 'mh' : undefined;
}

/** IP_VS_SVC_F_SCHED1..3 as 1, 2, 3: the bit a flag name sets. */
export function schedFlagBit(flag: string): 1 | 2 | 3 {
  return flag === 'flag-3' ? 3 : flag === 'flag-2' || flag.endsWith('-port') ? 2 : 1;
}

/**
 * The flags as ipvsadm prints them (print_sched_flags): by bit, in bit order, under the
 * scheduler's names (sh-fallback, sh-port for sh; mh-* for mh; flag-N otherwise). ipvsadm
 * prints nothing for flag-3 under sh or mh, losing it from a save; it is kept here as flag-3.
 */
export function schedFlagNames(scheduler: string, flags: readonly string[]): string[] {
  const bits = new Set(flags.map(schedFlagBit));
  const names = scheduler === 'sh' || scheduler === 'mh'
    ? [`${scheduler}-fallback`, `${scheduler}-port`, 'flag-3']
    : ['flag-1', 'flag-2', 'flag-3'];
  return ([1, 2, 3] as const).filter((b) => bits.has(b)).map((b) => names[b - 1]);
}

/** Throws WASMVS_BAD_OPTION unless every flag is one ipvsadm would pass to `scheduler`. */
export function checkSchedFlags(scheduler: string, flags: readonly string[]): void {
  if (!Array.isArray(flags)) throw new WasmvsError('WASMVS_BAD_OPTION', `scheduler flags must be an array of names, got ${String(flags)}`);
  for (const flag of flags) {
    if (!SCHED_FLAGS.includes(flag)) {
      throw new WasmvsError('WASMVS_BAD_OPTION', `invalid scheduler flag "${String(flag)}"; known flags are ${SCHED_FLAGS.join(', ')}`);
    }
    const owner = schedFlagOwner(flag);
    if (owner !== undefined && owner !== scheduler) {
      throw new WasmvsError('WASMVS_BAD_OPTION', `incompatible scheduler flag "${flag}": it applies only to the ${owner} scheduler, not ${scheduler}`);
    }
  }
}

/** The two flags sh and mh read: SCHED1 = fallback, SCHED2 = port (`prefix` is 'sh' or 'mh'). */
export function hashFlags(prefix: 'sh' | 'mh', flags: readonly string[]): { fallback: boolean; port: boolean } {
  checkSchedFlags(prefix, flags);
  return {
    fallback: flags.includes(`${prefix}-fallback`) || flags.includes('flag-1'),
    port: flags.includes(`${prefix}-port`) || flags.includes('flag-2'),
  };
}

/**
 * ip_vs_wlc_schedule(), also __ip_vs_lblc_schedule() and __ip_vs_lblcr_schedule(): the first
 * dest neither overloaded nor quiescent starts; a later non-overloaded one replaces it if
 * strictly less loaded by overhead / weight, tested as loh * dw > doh * lw.
 */
export function weightedLeastConn(dests: readonly SchedDest[]): SchedDest | undefined {
  const n = dests.length;
  let i = 0;
  while (i < n && (dests[i].overloaded || dests[i].weight <= 0)) i++;
  if (i === n) return undefined;
  let least = dests[i];
  let loh = connOverhead(least);
  for (i++; i < n; i++) {
    const d = dests[i];
    if (d.overloaded) continue;
    const doh = connOverhead(d);
    if (loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}
