// What a service and a real server (dest) are, their limits, and THE validator: the API
// (Engine.addService ...) and the rules parser (host/ipvsadm/rules.ts) both check values
// here, so the same bad value gives the same code and message from either. Checks follow the
// kernel's (net/netfilter/ipvs/ip_vs_ctl.c ip_vs_add_service, ip_vs_add_dest) and ipvsadm's
// wording where it has one.
import { checkPort, formatIPv4, parseIPv4, parseProtocol, type Protocol } from '../addr.js';
import { WasmvsError, type ErrorCode } from '../errors.js';
import { checkScheduler, DEFAULT_SCHEDULER } from '../schedulers/index.js';

export { DEFAULT_SCHEDULER };
/** process_options() sets dest.weight = 1 before parsing. */
export const DEFAULT_WEIGHT = 1;
/** IPVS_SVC_PERSISTENT_TIMEOUT (6*60 in ipvsadm 1.31 libipvs/libipvs.h; its man page says 300), for a bare -p. */
export const DEFAULT_PERSISTENCE = 360;
/** 24 days: expiry times are wrapping u32 milliseconds. */
export const MAX_TIMEOUT_S = 2073600;
export const MAX_WEIGHT = 65535;
export const MAX_THRESHOLD = 65535;

/** A virtual service as given (-A/-E); defaults as ipvsadm's: scheduler wlc, no persistence. */
export interface ServiceSpec {
  protocol: Protocol;
  vaddr: string;
  /** 0 only with persistence: the service then matches every port. */
  vport: number;
  /** Default 'wlc' (ipvsadm's DEF_SCHED). */
  scheduler?: string;
  /** -p seconds, 1 to 2073600. */
  persistence?: number;
  /** -M, the persistence granularity (needs persistence). */
  netmask?: string;
  /** -b flags. */
  schedFlags?: string[];
  /** -o, UDP only. */
  onePacket?: boolean;
}

/** A real server as given (-a/-e); defaults: the service's port, weight 1, no thresholds. */
export interface DestSpec {
  daddr: string;
  /** Default (or 0): the service's port. */
  dport?: number;
  /** 0 to 65535, default 1; 0 quiesces. */
  weight?: number;
  /** -x: no new connections at this many (0 = none). */
  upperThreshold?: number;
  /** -y: accept again below this many (0 = none). */
  lowerThreshold?: number;
}

/** A checked service: defaults applied, addresses normalised. */
export interface ServiceConfig extends ServiceSpec { scheduler: string }
/** A checked real server: defaults applied, addresses normalised. */
export interface DestConfig extends DestSpec { dport: number; weight: number }

export function checkInt(value: unknown, min: number, max: number, what: string, code: ErrorCode): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new WasmvsError(code, `${what} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** A netmask, contiguous: the inverted mask is 0...01...1, one less than a power of two. */
export function checkNetmask(text: string): number {
  const mask = parseIPv4(text);
  const inverted = ~mask >>> 0;
  if ((inverted & (inverted + 1)) !== 0) throw new WasmvsError('WASMVS_BAD_ADDRESS', `illegal virtual server persistent mask "${text}": not a contiguous netmask`);
  return mask;
}

/** Validates and normalises a service; throws naming the problem. */
export function checkServiceSpec(spec: ServiceSpec): ServiceConfig {
  const protocol = parseProtocol(spec.protocol);
  const vaddr = formatIPv4(parseIPv4(spec.vaddr));
  const vport = checkPort(spec.vport, 'virtual port');
  const scheduler = spec.scheduler ?? DEFAULT_SCHEDULER;
  // Before anything reaches the data plane: the name, and the -b flags it understands.
  checkScheduler(scheduler, spec.schedFlags ?? []);
  if (spec.persistence !== undefined) checkInt(spec.persistence, 1, MAX_TIMEOUT_S, 'persistence timeout', 'WASMVS_BAD_PERSISTENCE');
  // A port-0 service matches every port, which only makes sense when clients stick to one dest.
  if (vport === 0 && spec.persistence === undefined) throw new WasmvsError('WASMVS_BAD_PORT', 'Zero port specified for non-persistent service');
  if (spec.onePacket && protocol !== 'udp') throw new WasmvsError('WASMVS_BAD_OPTION', 'One-Packet Scheduling is only for UDP virtual services');
  const out: ServiceConfig = { protocol, vaddr, vport, scheduler };
  if (spec.persistence !== undefined) out.persistence = spec.persistence;
  if (spec.netmask !== undefined) {
    // ipvsadm accepts -M alone and the kernel ignores it; refusing it keeps save (which, like
    // ipvsadm-save, prints -M only after -p) a faithful inverse of restore.
    if (spec.persistence === undefined) throw new WasmvsError('WASMVS_BAD_OPTION', '-M (netmask) is the persistence granularity and needs -p (persistence)');
    const mask = checkNetmask(spec.netmask);
    if (mask !== 0xffffffff) out.netmask = formatIPv4(mask);
  }
  if (spec.schedFlags !== undefined && spec.schedFlags.length > 0) out.schedFlags = [...spec.schedFlags];
  if (spec.onePacket) out.onePacket = true;
  return out;
}

/** Validates and normalises a real server of a service on `vport`; throws naming the problem. */
export function checkDestSpec(dest: DestSpec, vport: number): DestConfig {
  const daddr = formatIPv4(parseIPv4(dest.daddr));
  const dport = checkPort(dest.dport ?? 0, 'real server port') || vport;
  const weight = checkInt(dest.weight ?? DEFAULT_WEIGHT, 0, MAX_WEIGHT, 'weight', 'WASMVS_BAD_WEIGHT');
  const upper = checkInt(dest.upperThreshold ?? 0, 0, MAX_THRESHOLD, 'upper threshold (-x)', 'WASMVS_BAD_OPTION');
  const lower = checkInt(dest.lowerThreshold ?? 0, 0, MAX_THRESHOLD, 'lower threshold (-y)', 'WASMVS_BAD_OPTION');
  // As ip_vs_add_dest/ip_vs_edit_dest: a lower threshold above the upper one is refused, even
  // when the upper one is 0.
  if (lower > upper) throw new WasmvsError('WASMVS_BAD_OPTION', `lower threshold ${lower} is higher than upper threshold ${upper}`);
  const out: DestConfig = { daddr, dport, weight };
  if (upper) out.upperThreshold = upper;
  if (lower) out.lowerThreshold = lower;
  return out;
}
