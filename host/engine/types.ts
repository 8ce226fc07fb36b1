// The engine's public types: options, keys, verdicts, what the observation calls return,
// and the events. host/engine/engine.ts re-exports every one of them.
import type { Protocol } from '../addr.js';
import type { WasmvsError } from '../errors.js';
import type { DropReason, FtpCounter, LocalReason, PassReason } from './abi.js';
import type { ServiceConfig } from './spec.js';

export interface Timeouts {
  /** ESTABLISHED, seconds (ipvsadm --set tcp). */
  tcp: number;
  /** FIN_WAIT, seconds (ipvsadm --set tcpfin). */
  tcpfin: number;
  /** UDP, seconds (ipvsadm --set udp). */
  udp: number;
}

export interface EngineOptions {
  /** Maximum live connections (default 2^20, at most 2^24 - 1). 64 bytes of table each. */
  connCapacity?: number;
  /** Ring slots (default 1024). */
  slotCount?: number;
  /** Bytes per slot, a multiple of 64 (default 2048; up to 65,600 for GSO super-packets). */
  slotSize?: number;
  /** Service table size (default 256). */
  maxServices?: number;
  /** Real-server table size (default 4096), deleted servers with connections included. */
  maxDests?: number;
  /** Event ring records, a power of two (default 4096). */
  eventCapacity?: number;
  /** Initial timeouts; as `ipvsadm --set`, 0 leaves a default alone. */
  timeouts?: Partial<Timeouts>;
  /** Expiry work per process() call, in connections (default 4096). */
  expireBudget?: number;
  /**
   * As net.ipv4.vs.expire_nodest_conn (default false): when a real server is deleted, the
   * next client packet of each of its connections expires the connection and is dropped
   * (a SYN is scheduled afresh). Off: the connections run on until they time out.
   */
  expireNodestConn?: boolean;
  /**
   * Virtual TCP ports the FTP helper binds to, as ip_vs_ftp's `ports` (default [21]): a
   * connection to one of them is an FTP control connection whose PORT/EPRT commands and
   * 227/229 replies open its data connections, and whose 227 replies carry the VIP's address.
   * Empty: no helper.
   */
  ftpPorts?: readonly number[];
  /**
   * FTP control connections the helper follows at once (default min(connCapacity, 65536)):
   * its own table, 20 bytes per slot and 2 to 4 slots per session, apart from the connection table. A control
   * connection beyond it is forwarded without the helper, counted (ftp 'sessions-full').
   */
  ftpSessions?: number;
  /** Use the debug WASM build (bounds assertions, slower). */
  debug?: boolean;
}

export interface ServiceKey {
  protocol: Protocol;
  vaddr: string;
  vport: number;
}

export interface DestKey {
  daddr: string;
  dport: number;
}

/**
 * What the engine decided for a packet: forward (rewritten, send it on), pass (not ours,
 * unchanged), drop (reason says why), local (addressed to a VIP but no service's: the
 * director answers it as a host would, see LocalReason).
 */
export type Verdict = 'forward' | 'pass' | 'drop' | 'local';

/** Why a packet was dropped, passed or kept local. */
export type Reason = DropReason | PassReason | LocalReason;

export interface PacketResult {
  verdict: Verdict;
  /** Why a packet was dropped, passed or kept local; undefined for forward. */
  reason?: Reason;
  /** The packet after processing (rewritten when forwarded), a copy. */
  packet: Uint8Array;
  /** True when this packet opened its connection. */
  newConnection: boolean;
  /** True when it travelled real server -> client. */
  reply: boolean;
}

export interface DestInfo {
  daddr: string;
  dport: number;
  weight: number;
  activeConns: number;
  inactConns: number;
  /** Persistence templates naming it (ipvsadm's PersistConn). */
  persistConns: number;
  /** -x, 0 = none. */
  upperThreshold: number;
  /** -y, 0 = none. */
  lowerThreshold: number;
  /** Connections scheduled to it since it was added. */
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
}

export interface ServiceInfo extends ServiceConfig {
  dests: DestInfo[];
}

/** A connection's addresses: client, virtual service, real server (dest). */
export interface ConnTuple {
  protocol: Protocol;
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
}

export interface ConnInfo extends ConnTuple {
  /** IPVS state name (TCP) or 'UDP'. */
  state: string;
  /** Milliseconds left before it expires (0 when already due). */
  expiresIn: number;
  /** A persistence template (-p): caddr is the client network, cport 0. */
  template?: true;
}

export interface ConnEvent extends ConnTuple {
  /** State after the event (for 'conn-state' the new state). */
  state: string;
  /** State before ('conn-state' only; otherwise equal to state). */
  oldState: string;
  /** Engine time of the event, ms (the `now` given to process, modulo 2^32). */
  time: number;
}

export interface EngineEvents {
  'conn-created': (e: ConnEvent) => void;
  'conn-state': (e: ConnEvent) => void;
  /** A connection left the table: timed out, or replaced by a new SYN on its tuple. */
  'conn-expired': (e: ConnEvent & { why: 'timeout' | 'reused' }) => void;
  /**
   * A scheduler threw (code WASMVS_SCHEDULER, the thrown value as `cause`). Its packet was
   * dropped and counted as scheduler-error; the rest of the batch was processed.
   */
  'error': (err: WasmvsError) => void;
  /**
   * The FTP helper met something it did not translate (a command or reply cut by a segment's
   * end, a 227 with no room to grow, no record or a clashing tuple for a data connection, an
   * unparsable 227/229), on the control connection `e` names. Counted in counters().ftp too.
   */
  'ftp': (e: FtpEvent) => void;
  /**
   * The configuration changed: a service or real server added, edited or deleted, the table
   * cleared or restored, the timeouts or expire_nodest_conn set. Once per call that succeeded, after the change (a
   * refused call changes nothing and says nothing). The gateway follows it with its host routes.
   */
  'config': () => void;
}

/** What the FTP helper reports: the control connection and what it met. */
export interface FtpEvent extends ConnTuple {
  what: FtpCounter;
  /** Engine time, ms modulo 2^32. */
  time: number;
}

export interface Counters {
  packets: number;
  forwardIn: number;
  forwardOut: number;
  pass: number;
  drop: number;
  /** Packets to a VIP that no service serves (verdict 'local'). */
  local: number;
  connsCreated: number;
  connsExpired: number;
  connsReused: number;
  eventsLost: number;
  liveConns: number;
  drops: Record<DropReason, number>;
  passes: Record<PassReason, number>;
  locals: Record<LocalReason, number>;
  /** What the FTP helper did and met (data connections opened, 227s rewritten, ...). */
  ftp: Record<FtpCounter, number>;
}
