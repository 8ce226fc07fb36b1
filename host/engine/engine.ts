// The engine: the public facade over one data plane instance (dataplane.ts), its
// configuration (config.ts: services and real servers with ipvsadm's semantics, scheduling),
// engine time (clock.ts), events (events.ts) and statistics (statistics.ts).
//
// The host owns policy and text; the data plane owns packets. Per batch the host makes one
// call (process), plus one call back per new connection (the scheduler). Everything else
// the host reads straight from linear memory: verdicts, counters, connection records, events.
import { EventEmitter } from 'eventemitter3';
import { WasmvsError } from '../errors.js';
import type { RuleSet } from '../ipvsadm/rules.js';
import { ABI } from './abi.js';
import { Clock } from './clock.js';
import { checkTimeouts, Configuration } from './config.js';
import { DataPlane } from './dataplane.js';
import { deliverEvents, setEventInterest } from './events.js';
import { checkInt, type DestSpec, type ServiceSpec } from './spec.js';
import type { ServiceStats } from './stats.js';
import { Statistics } from './statistics.js';
import type {
  ConnInfo, Counters, DestKey, EngineEvents, EngineOptions, PacketResult, Reason, ServiceInfo, ServiceKey,
  Timeouts, Verdict,
} from './types.js';
import type { WasmMemory } from './wasm-types.js';

export type {
  ConnEvent, ConnInfo, ConnTuple, Counters, DestInfo, DestKey, EngineEvents, EngineOptions, FtpEvent, PacketResult, Reason,
  ServiceInfo, ServiceKey, Timeouts, Verdict,
} from './types.js';
export type { WasmMemory } from './wasm-types.js';

const DEFAULTS = {
  connCapacity: 1 << 20,
  slotCount: 1024,
  slotSize: 2048,
  maxServices: 256,
  maxDests: 4096,
  eventCapacity: 4096,
  expireBudget: 4096,
};

/** FTP control connections the helper follows at once, by default (at most connCapacity). */
const DEFAULT_FTP_SESSIONS = 65536;

/** The FTP helper's ports (ip_vs_ftp `ports`): integers 1..65535, each once. */
export function checkFtpPorts(ports: unknown): number[] {
  if (!Array.isArray(ports)) throw new WasmvsError('WASMVS_BAD_OPTION', `ftpPorts must be an array of ports, got ${typeof ports}`);
  const seen = new Set<number>();
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new WasmvsError('WASMVS_BAD_OPTION', `ftpPorts: ${String(p)} is not a port (1..65535)`);
    if (seen.has(p)) throw new WasmvsError('WASMVS_BAD_OPTION', `ftpPorts: port ${p} is listed twice`);
    seen.add(p);
  }
  return [...seen];
}

/** Options with defaults applied, each checked; throws WASMVS_BAD_OPTION naming the problem. */
function checkOptions(options: EngineOptions): typeof DEFAULTS & { ftpPorts: number[]; ftpSessions: number } {
  const o = { ...DEFAULTS, ...options };
  checkInt(o.connCapacity, 1, ABI.MAX_CONN_CAPACITY, 'connCapacity', 'WASMVS_BAD_OPTION');
  checkInt(o.slotCount, 1, 1 << 20, 'slotCount', 'WASMVS_BAD_OPTION');
  checkInt(o.slotSize, 64, 65536 + 64, 'slotSize', 'WASMVS_BAD_OPTION');
  if (o.slotSize % 64 !== 0) throw new WasmvsError('WASMVS_BAD_OPTION', `slotSize must be a multiple of 64, got ${o.slotSize}`);
  checkInt(o.maxServices, 1, 65536, 'maxServices', 'WASMVS_BAD_OPTION');
  checkInt(o.maxDests, 1, ABI.MAX_DESTS_LIMIT, 'maxDests', 'WASMVS_BAD_OPTION');
  checkInt(o.eventCapacity, 1, 1 << 24, 'eventCapacity', 'WASMVS_BAD_OPTION');
  if ((o.eventCapacity & (o.eventCapacity - 1)) !== 0) throw new WasmvsError('WASMVS_BAD_OPTION', `eventCapacity must be a power of two, got ${o.eventCapacity}`);
  checkInt(o.expireBudget, 1, 2 ** 31, 'expireBudget', 'WASMVS_BAD_OPTION');
  const ftpPorts = checkFtpPorts(options.ftpPorts ?? [21]);
  const ftpSessions = options.ftpSessions ?? Math.min(o.connCapacity, DEFAULT_FTP_SESSIONS);
  checkInt(ftpSessions, 1, ABI.MAX_CONN_CAPACITY, 'ftpSessions', 'WASMVS_BAD_OPTION');
  return { ...o, ftpPorts, ftpSessions: ftpPorts.length > 0 ? ftpSessions : 0 };
}

export class Engine extends EventEmitter<EngineEvents> {
  /** The shared linear memory: ring slots, descriptors, tables (see assembly/layout.ts). */
  readonly memory: WasmMemory;
  readonly slotCount: number;
  readonly slotSize: number;
  readonly connCapacity: number;
  /** The virtual TCP ports the FTP helper binds to (EngineOptions.ftpPorts). */
  readonly ftpPorts: readonly number[];
  private readonly dp: DataPlane;
  private readonly config: Configuration;
  private readonly clock = new Clock();
  private readonly stats: Statistics;
  private readonly expireBudget: number;

  constructor(options: EngineOptions = {}) {
    super();
    const o = checkOptions(options);
    const timeouts = checkTimeouts(options.timeouts ?? {});
    this.dp = new DataPlane(o, options.debug ?? false, (s, sa, sp, da, dp) => this.config.schedule(s, sa, sp, da, dp));
    this.dp.setFtpPorts(o.ftpPorts);
    this.ftpPorts = o.ftpPorts;
    this.config = new Configuration(this.dp, o.maxServices, o.maxDests, {
      now: () => this.clock.now,
      beforeDestReset: () => this.stats.sync(),
    });
    this.stats = new Statistics(this.dp, this.config);
    this.memory = this.dp.memory;
    this.slotCount = o.slotCount;
    this.slotSize = o.slotSize;
    this.connCapacity = o.connCapacity;
    this.expireBudget = o.expireBudget;
    this.dp.setTimeouts(timeouts);
    this.setExpireNodestConn(options.expireNodestConn ?? false);
  }

  // ---- configuration (config.ts) -----------------------------------------------------------

  /** ipvsadm -A. */
  addService(spec: ServiceSpec): void { this.config.addService(spec); this.emit('config'); }
  /** ipvsadm -E: change scheduler or persistence; existing connections keep their servers. */
  editService(spec: ServiceSpec): void { this.config.editService(spec); this.emit('config'); }
  /** ipvsadm -D: the service goes; its connections live on until they expire. */
  delService(key: ServiceKey): void { this.config.delService(key); this.emit('config'); }
  /** ipvsadm -C. */
  clear(): void { this.config.clear(); this.emit('config'); }
  /** ipvsadm -a. */
  addDest(key: ServiceKey, dest: DestSpec): void { this.config.addDest(key, dest); this.emit('config'); }
  /** ipvsadm -e: change the weight. Weight 0 quiesces the server. */
  editDest(key: ServiceKey, dest: DestSpec): void { this.config.editDest(key, dest); this.emit('config'); }
  /** ipvsadm -d: no new connections; existing ones continue until they expire. */
  delDest(key: ServiceKey, dest: DestKey): void { this.config.delDest(key, dest); this.emit('config'); }

  /**
   * Adds every service and real server of an ipvsadm-save text or parsed rule set, as
   * ipvsadm-restore does; all or nothing: a bad rule changes nothing.
   */
  restore(rules: string | RuleSet): void { this.config.restore(rules); this.emit('config'); }

  /** The configuration as ipvsadm-save -n text (real servers in the order they were added). */
  save(): string { return this.config.save(); }

  /**
   * The addresses the data plane still translates for: every configured VIP and real server,
   * and those of deleted real servers whose connections or persistence templates live on
   * (as after ipvsadm -d, they run until they expire). The gateway routes exactly these
   * into its TUN.
   */
  liveAddresses(): { vaddrs: string[]; daddrs: string[] } { return this.config.liveAddresses(); }

  /** Services with their real servers and counters (ipvsadm -L -n --stats). */
  listServices(): ServiceInfo[] { return this.config.listServices(); }

  /** ipvsadm --set tcp tcpfin udp, in seconds; 0 leaves a value unchanged. */
  setTimeouts(timeouts: Partial<Timeouts>): void { this.config.setTimeouts(timeouts); this.emit('config'); }

  /** net.ipv4.vs.expire_nodest_conn (see EngineOptions.expireNodestConn). */
  setExpireNodestConn(on: boolean): void { this.config.setExpireNodestConn(on); this.emit('config'); }

  getTimeouts(): Timeouts { return this.config.getTimeouts(); }

  // ---- data path (the ring: dataplane.ts) --------------------------------------------------

  /** Slot `i`'s bytes, a view into WASM memory (write packets here, zero-copy). */
  slot(i: number): Uint8Array { return this.dp.slot(i); }

  /**
   * Describes the packet in slot `i`: `length` bytes from the slot start, the IPv4 header at
   * `l3Offset` (after a link header, if any). `csumPartial`: the L4 checksum holds a partial
   * pseudo-header sum (virtio_net_hdr NEEDS_CSUM).
   */
  setSlot(i: number, length: number, l3Offset = 0, csumPartial = false): void {
    this.dp.setSlot(i, length, l3Offset, csumPartial);
  }

  /** Copies a packet into slot `i` and describes it. */
  writeSlot(i: number, packet: Uint8Array, l3Offset = 0, csumPartial = false): void {
    this.dp.writeSlot(i, packet, l3Offset, csumPartial);
  }

  /** The verdict written to slot `i` by the last process(). */
  verdict(i: number): Verdict | 'none' { return this.dp.verdict(i); }

  /** The drop, pass or local reason of slot `i`, if any. */
  reason(i: number): Reason | undefined { return this.dp.reason(i); }

  /**
   * Bytes in slot `i` after process(): as written, except for an FTP control connection's
   * 227 reply that the helper rewrote to a longer or shorter one.
   */
  slotLength(i: number): number { return this.dp.slotLength(i); }

  /**
   * Processes `count` slots from `start` (wrapping) at engine time `now` (milliseconds, any
   * monotonic origin), after expiring the connections due by then (a bounded step), and
   * delivers the batch's events. One WASM call per batch. Returns how many packets were forwarded.
   */
  process(start: number, count: number, now: number): number {
    this.dp.checkBatch(start, count);
    const t = this.begin(now);
    // Expire first: connections due by `now` must not block this batch's new ones.
    this.dp.expire(t, this.expireBudget);
    const forwarded = this.dp.processRing(start, count, t);
    const resized = this.dp.resizedCount();
    this.lastBatchResized = resized !== this.resizedSeen;
    this.resizedSeen = resized;
    this.finish();
    return forwarded;
  }

  /**
   * Whether the last process() changed the length of a packet (the FTP helper rewrote a 227
   * to a longer or shorter one). A host that keeps its own array of lengths then refreshes it
   * with slotLengths; otherwise every length is as it was written.
   */
  lastBatchResized = false;
  private resizedSeen = 0;

  /** Copies the lengths of slots start..start+count-1 (wrapping) into sizes[start..]. */
  slotLengths(sizes: Uint32Array, count: number, start = 0): void {
    for (let k = 0, i = start; k < count; k++, i = i + 1 === this.slotCount ? 0 : i + 1) sizes[i] = this.dp.slotLength(i);
  }

  /** Convenience: one packet through the engine (copied in and out; not the fast path). */
  processPacket(packet: Uint8Array, now: number, l3Offset = 0): PacketResult {
    this.dp.writeScratch(packet, l3Offset);
    const t = this.begin(now);
    this.dp.expire(t, this.expireBudget);
    this.dp.processScratch(t);
    this.finish();
    const { reason, ...result } = this.dp.scratchResult();
    return { verdict: result.verdict, ...(reason ? { reason } : {}), packet: result.packet, newConnection: result.newConnection, reply: result.reply };
  }

  /**
   * Expires connections due at `now`, in steps of the expiry budget, until caught up.
   * process() already does one step per batch; call this when no packets flow.
   */
  expire(now: number): void {
    const t = this.begin(now);
    this.catchUp(t);
    this.finish();
  }

  // ---- observation -------------------------------------------------------------------------

  /** Live connections (ipvsadm -L -n -c), at engine time `now` (default: the last one seen). */
  connections(now?: number): ConnInfo[] {
    return this.dp.connections(now === undefined ? this.clock.wrapped : this.advance(now));
  }

  counters(): Counters { return this.dp.counters(); }

  /** Bytes of linear memory this engine uses, and of it the connection table. */
  memoryUsage(): { total: number; connTable: number; perConnection: number; ftpTable: number } { return this.dp.memoryUsage(); }

  // ---- statistics (statistics.ts) ------------------------------------------------------------

  /**
   * Totals and rates per service and per real server (ipvsadm -L -n --stats and --rate), in
   * service table order, each with its current real servers (newest first, as listServices).
   * Totals are live; rates are as of the last 2-second step (run by process or expire).
   */
  statistics(): ServiceStats[] { return this.stats.statistics(); }

  /**
   * ipvsadm -Z: totals and rates to zero, of one service and its real servers (deleted ones
   * still counting for it included), or of every service.
   */
  zeroStats(key?: ServiceKey): void {
    this.stats.zero(key === undefined ? undefined : this.config.findService(key));
  }

  // ---- internals -----------------------------------------------------------------------------

  /** Moves engine time to `now`; a jump of 2^30 ms or more expires what fell due on the way. */
  private advance(now: number): number {
    return this.clock.advance(now, (at) => this.catchUp(at));
  }

  /** Expires everything due at wrapped time `t`, delivering events between budget steps. */
  private catchUp(t: number): void {
    while (this.dp.expire(t, this.expireBudget)) deliverEvents(this.dp, this);
    deliverEvents(this.dp, this);
  }

  /**
   * The opening of every call that moves engine time (process, processPacket, expire): the
   * clock, the estimator steps due before this call's packets count, the event mask.
   */
  private begin(now: number): number {
    const t = this.advance(now);
    if (now >= this.stats.due) this.stats.tick(now);
    setEventInterest(this.dp, this);
    return t;
  }

  /** The close of such a call: its events, then its scheduler errors as 'error' events. */
  private finish(): void {
    deliverEvents(this.dp, this);
    for (const err of this.config.takeScheduleErrors()) this.emit('error', err);
  }
}
