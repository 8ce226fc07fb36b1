// The host's typed view of the data plane's ABI (assembly/index.ts and assembly/layout.ts).
// Written down once per side; test/abi.test.ts checks every constant here against the
// global of the same name the module exports, so the two cannot drift apart silently.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WasmvsError } from '../errors.js';
import type { WasmMemory, WasmModule } from './wasm-types.js';

export const ABI = {
  ABI_VERSION: 2,
  CTRL_MAGIC: 0x31535657,
  CTRL_SIZE: 256,
  CTRL_MAGIC_OFF: 0,
  CTRL_CONN_CAPACITY: 8,
  CTRL_INDEX_SIZE: 12,
  CTRL_SLOT_COUNT: 16,
  CTRL_SLOT_SIZE: 20,
  CTRL_MAX_SERVICES: 24,
  CTRL_MAX_DESTS: 28,
  CTRL_EVENT_CAPACITY: 32,
  CTRL_BUMP_NEXT: 40,
  CTRL_DESC_BASE: 44,
  CTRL_DATA_BASE: 48,
  CTRL_CONN_BASE: 52,
  CTRL_INDEX_BASE: 56,
  CTRL_DEST_BASE: 76,
  CTRL_EVENT_BASE: 80,
  CTRL_COUNTER_BASE: 84,
  CTRL_TIMEOUT_BASE: 88,
  CTRL_END: 92,
  CTRL_EVENT_WRITE: 96,
  CTRL_EVENT_READ: 100,
  CTRL_EVENT_MASK: 104,
  CTRL_LIVE_CONNS: 116,
  CTRL_RECORDS_USED: 120,
  CTRL_LINK_BASE: 124,
  CTRL_APP_BASE: 148,
  CTRL_FTP_PORTS: 152,
  CTRL_NO_CPORT: 156,
  CTRL_RESIZED: 160,
  CTRL_APP_KEYS: 164,
  CTRL_APP_MASK: 168,
  CTRL_APP_MAX: 172,
  CTRL_APP_COUNT: 176,
  LINK_SIZE: 16,
  LINK_CONTROL: 8,
  LINK_N_CONTROL: 12,
  APP_SIZE: 16,
  FTP_PORT_MAP_BYTES: 8192,

  DESC_SIZE: 16,
  DESC_LEN: 0,
  DESC_L3OFF: 4,
  DESC_FLAGS: 6,
  DESC_VERDICT: 7,
  DESC_REASON: 8,
  DESC_HASH_HI: 10,
  DESC_CONN: 12,
  DESC_F_CSUM_PARTIAL: 1,
  DESC_F_REPLY: 2,
  DESC_F_NEW_CONN: 4,

  VERDICT_NONE: 0,
  VERDICT_FORWARD: 1,
  VERDICT_PASS: 2,
  VERDICT_DROP: 3,
  VERDICT_REPLY: 4,
  VERDICT_LOCAL: 5,

  CONN_SIZE: 32,
  CONN_CADDR: 0,
  CONN_VADDR: 4,
  CONN_DADDR: 8,
  CONN_CPORT: 12,
  CONN_VPORT: 14,
  CONN_DPORT: 16,
  CONN_PROTO: 18,
  CONN_STATE: 19,
  CONN_FLAGS: 20,
  CONN_DEST: 22,
  CONN_EXPIRES: 24,
  CONN_F_HASHED: 1,
  CONN_F_INACTIVE: 2,
  CONN_F_TEMPLATE: 8,
  CONN_F_APP: 16,
  CONN_F_NO_CPORT: 32,
  CONN_F_ZOMBIE: 64,
  SVC_F_PERSISTENT: 2,
  SVC_F_ONE_PACKET: 4,
  TEMPLATE_PROTO_BIT: 0x80,
  MAX_CONN_CAPACITY: 0xffffff,

  DEST_SIZE: 80,
  DEST_PERSIST: 64,
  DEST_DADDR: 0,
  DEST_DPORT: 4,
  DEST_SERVICE: 8,
  DEST_FLAGS: 6,
  DEST_UPPER: 20,
  DEST_LOWER: 22,
  DEST_F_IN_USE: 1,
  DEST_F_AVAILABLE: 2,
  DEST_F_OVERLOAD: 4,
  CTRL_SETTINGS: 144,
  SETTING_EXPIRE_NODEST_CONN: 1,
  DEST_ACTIVE: 12,
  DEST_INACTIVE: 16,
  DEST_CONNS: 24,
  DEST_IN_PKTS: 32,
  DEST_OUT_PKTS: 40,
  DEST_IN_BYTES: 48,
  DEST_OUT_BYTES: 56,
  MAX_DESTS_LIMIT: 0xffff,

  EVENT_SIZE: 32,
  EVENT_TYPE: 0,
  EVENT_PROTO: 1,
  EVENT_OLD_STATE: 2,
  EVENT_NEW_STATE: 3,
  EVENT_CONN: 4,
  EVENT_CADDR: 8,
  EVENT_VADDR: 12,
  EVENT_DADDR: 16,
  EVENT_CPORT: 20,
  EVENT_VPORT: 22,
  EVENT_DPORT: 24,
  EVENT_DEST: 26,
  EVENT_TIME: 28,
  EVENT_CONN_NEW: 1,
  EVENT_CONN_STATE: 2,
  EVENT_CONN_EXPIRED: 3,
  EVENT_CONN_REUSED: 4,
  EVENT_FTP: 5,

  COUNTER_FORWARD_IN: 1,
  COUNTER_FORWARD_OUT: 2,
  COUNTER_PASS: 3,
  COUNTER_DROP: 4,
  COUNTER_CONN_NEW: 5,
  COUNTER_CONN_EXPIRED: 6,
  COUNTER_CONN_REUSED: 7,
  COUNTER_EVENTS_LOST: 8,
  COUNTER_LOCAL: 9,
  COUNTER_PASS_BASE: 12,
  COUNTER_DROP_BASE: 16,
  COUNTER_LOCAL_BASE: 40,
  COUNTER_FTP_BASE: 48,
  FTP_COUNTER_COUNT: 12,
  COUNTER_SLOTS: 64,

  TIMEOUT_UDP: 11,
  TIMEOUT_SLOTS: 16,

  // IPVS TCP states (ip_vs_proto_tcp.c), which also index the timeout table; UDP's one state.
  TCP_S_NONE: 0,
  TCP_S_ESTABLISHED: 1,
  TCP_S_SYN_SENT: 2,
  TCP_S_SYN_RECV: 3,
  TCP_S_FIN_WAIT: 4,
  TCP_S_TIME_WAIT: 5,
  TCP_S_CLOSE: 6,
  TCP_S_CLOSE_WAIT: 7,
  TCP_S_LAST_ACK: 8,
  TCP_S_LISTEN: 9,
  TCP_S_SYNACK: 10,
  TCP_S_COUNT: 11,
  UDP_S_NORMAL: 0,

  // What the schedule import returns besides a dest index (signed; the module exports them as i32).
  SCHEDULE_NONE: -1,
  SCHEDULE_ERROR: -2,
} as const;

/** Drop reasons by code, as assembly/layout.ts DROP_*; names are the stable strings users see. */
export const DROP_REASONS = [
  '', 'bad-slot', 'short-packet', 'bad-version', 'bad-ihl', 'truncated', 'bad-total-length',
  'bad-ip-checksum', 'fragment', 'tcp-truncated', 'bad-tcp-doff', 'udp-truncated',
  'bad-udp-length', 'no-conn', 'no-dest', 'table-full', 'tuple-clash', 'dest-gone',
  'icmp-truncated', 'bad-icmp-checksum', 'icmp-no-conn', 'scheduler-error',
] as const;
export type DropReason = Exclude<(typeof DROP_REASONS)[number], ''>;

/** Pass reasons by code, as PASS_*. */
export const PASS_REASONS = ['', 'not-ipv4', 'protocol', 'no-match'] as const;
export type PassReason = Exclude<(typeof PASS_REASONS)[number], ''>;

/** Local reasons by code, as LOCAL_*: addressed to a VIP, served by no service. */
export const LOCAL_REASONS = ['', 'no-service', 'icmp', 'protocol'] as const;
export type LocalReason = Exclude<(typeof LOCAL_REASONS)[number], ''>;

/** What the FTP helper counts, by code, as FTP_* (assembly/layout.ts, assembly/ftp.ts). */
export const FTP_COUNTERS = [
  '', 'passive', 'active', 'rewritten', 'retransmit', 'split-command', 'split-reply', 'no-room',
  'table-full', 'clash', 'bad-reply', 'sessions-full',
] as const;
export type FtpCounter = Exclude<(typeof FTP_COUNTERS)[number], ''>;

/** The exported constant of each drop/pass/local reason, for the ABI test. */
export const REASON_EXPORTS: Record<string, number> = {
  DROP_BAD_SLOT: 1, DROP_SHORT_PACKET: 2, DROP_BAD_VERSION: 3, DROP_BAD_IHL: 4,
  DROP_TRUNCATED: 5, DROP_BAD_TOTAL_LENGTH: 6, DROP_BAD_IP_CHECKSUM: 7, DROP_FRAGMENT: 8,
  DROP_TCP_TRUNCATED: 9, DROP_BAD_TCP_DOFF: 10, DROP_UDP_TRUNCATED: 11,
  DROP_BAD_UDP_LENGTH: 12, DROP_NO_CONN: 13, DROP_NO_DEST: 14,
  DROP_TABLE_FULL: 15, DROP_TUPLE_CLASH: 16, DROP_DEST_GONE: 17,
  DROP_ICMP_TRUNCATED: 18, DROP_BAD_ICMP_CHECKSUM: 19, DROP_ICMP_NO_CONN: 20,
  DROP_SCHEDULER_ERROR: 21, DROP_REASON_COUNT: 22,
  PASS_NOT_IPV4: 1, PASS_PROTOCOL: 2, PASS_NO_MATCH: 3,
  LOCAL_NO_SERVICE: 1, LOCAL_ICMP: 2, LOCAL_PROTOCOL: 3, LOCAL_REASON_COUNT: 4,
  FTP_PASSIVE: 1, FTP_ACTIVE: 2, FTP_REWRITTEN: 3, FTP_RETRANSMIT: 4, FTP_SPLIT_COMMAND: 5,
  FTP_SPLIT_REPLY: 6, FTP_NO_ROOM: 7, FTP_TABLE_FULL: 8, FTP_CLASH: 9, FTP_BAD_REPLY: 10,
  FTP_SESSIONS_FULL: 11,
};

/** IPVS TCP state names by number (ip_vs_proto_tcp.c, ABI.TCP_S_*), then UDP's single state. */
export const TCP_STATE_NAMES = [
  'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE',
  'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK',
] as const;
export type TcpStateName = (typeof TCP_STATE_NAMES)[number];
export const UDP_STATE_NAME = 'UDP';

/** The module's exported functions. */
export interface WasmExports {
  controlBlock(): number;
  /** `ftpSessions`: FTP control connections the helper follows at once (0: no helper). */
  layout(connCapacity: number, slots: number, slotBytes: number, maxServices: number, maxDests: number, eventCapacity: number, ftpSessions: number): number;
  /** Binds (on 1) or unbinds the FTP helper to a virtual TCP port; 0 when laid out without it. */
  ftpPortSet(port: number, on: number): number;
  init(key0lo: number, key0hi: number, key1lo: number, key1hi: number): void;
  /**
   * Picks up the regions of a memory another instance initialised; 1 if valid. This is for
   * a reader (or one thread taking over): the data plane is single-writer, and process,
   * expire and every configuration call must come from one thread at a time.
   */
  attach(): number;
  process(start: number, count: number, now: number): number;
  processScratch(now: number): number;
  expire(now: number, budget: number): number;
  setTimeout(slot: number, ms: number): number;
  serviceSet(idx: number, proto: number, vaddr: number, vport: number): number;
  serviceClear(idx: number): number;
  serviceConfigure(idx: number, flags: number, timeoutMs: number, netmask: number): number;
  destSet(idx: number, service: number, daddr: number, dport: number, upper: number, lower: number): number;
  destRetire(idx: number): number;
  setSettings(bits: number): void;
  destReset(idx: number): number;
  /** Zeroes a dest's statistics (conns scheduled, packets, bytes); its connection counts stay. */
  destZeroStats(idx: number): number;
  /** Full Internet checksum of `len` bytes at `ptr`, field-ready (tests only). */
  checksum(ptr: number, len: number): number;
  /** SipHash-1-3 under key (k0, k1) of a `len`-byte message (8..15): first 8 bytes `m0`, the rest `tail`; a signed i64 (tests only). */
  sipHash(k0: bigint, k1: bigint, m0: bigint, tail: bigint, len: number): bigint;
}

export interface WasmImports {
  /**
   * One call per new connection: a dest index, ABI.SCHEDULE_NONE for none available, or
   * ABI.SCHEDULE_ERROR when the scheduler failed (the packet is dropped as scheduler-error).
   */
  schedule(service: number, saddr: number, sport: number, daddr: number, dport: number): number;
}

/** Finds build/wasm from host/engine/ (sources run by tsx) or build/host/engine/ (compiled). */
function wasmDir(): string {
  const host = dirname(dirname(fileURLToPath(import.meta.url)));
  return dirname(host).endsWith('build') ? join(host, '..', 'wasm') : join(host, '..', 'build', 'wasm');
}

const compiled = new Map<string, WasmModule>();

/** Compiles the release (or debug) build once per process. */
export function wasmModule(build: 'release' | 'debug' = 'release'): WasmModule {
  let mod = compiled.get(build);
  if (!mod) {
    const file = join(wasmDir(), `${build}.wasm`);
    try {
      mod = new WebAssembly.Module(readFileSync(file));
    } catch (cause) {
      throw new WasmvsError('WASMVS_WASM_LOAD', `cannot load ${file} (run "npm install" or "npm run build"): ${(cause as Error).message}`, { cause });
    }
    compiled.set(build, mod);
  }
  return mod;
}

/** Instantiates the module over `memory` with the host's imports. */
export function instantiate(mod: WasmModule, memory: WasmMemory, imports: WasmImports): WasmExports {
  try {
    const instance = new WebAssembly.Instance(mod, {
      env: {
        memory,
        schedule: imports.schedule,
        abort(msg: number, file: number, line: number, col: number): never {
          throw new WasmvsError('WASMVS_DATAPLANE_ASSERT', `data plane assertion failed at ${line}:${col} (message at ${msg}, file at ${file})`);
        },
      },
    });
    return instance.exports as unknown as WasmExports;
  } catch (cause) {
    if (cause instanceof WasmvsError) throw cause;
    throw new WasmvsError('WASMVS_WASM_LOAD', `cannot instantiate the data plane: ${(cause as Error).message}`, { cause });
  }
}
