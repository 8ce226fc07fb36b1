// The engine: one data plane instance over shared WASM memory, its configuration (services
// and real servers with ipvsadm's semantics), scheduling, timers and events.
//
// The host owns policy and text; the data plane owns packets. Per batch the host makes one
// call (process), plus one call back per new connection (the scheduler). Everything else
// the host reads straight from linear memory: verdicts, counters, connection records, events.
import { randomFillSync } from 'node:crypto';
import { EventEmitter } from 'eventemitter3';
import {
  ABI, DROP_REASONS, type DropReason, instantiate, LOCAL_REASONS, type LocalReason, PASS_REASONS,
  type PassReason, TCP_STATE_NAMES, UDP_STATE_NAME, type WasmExports, wasmModule,
} from './abi.js';
import {
  checkPort, formatIPv4, IPPROTO_TCP, IPPROTO_UDP, parseIPv4, parseProtocol, type Protocol,
  protocolNumber, wire16, wire32,
} from '../addr.js';
import { WasmvsError } from '../errors.js';
import { emitRules, parseRules, type RuleSet } from '../ipvsadm/rules.js';
import { checkDestSpec, checkInt, checkServiceSpec, MAX_TIMEOUT_S, type DestConfig, type DestSpec, type ServiceConfig, type ServiceSpec } from './spec.js';
import { createScheduler, type SchedDest, type Scheduler } from '../schedulers/index.js';
import { EST_INTERVAL_MS, Estimator, Totals, totalsDecreased, type ServiceStats, type StatsRecord, type StatsServiceRecord } from './stats.js';

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
}

const DEFAULTS = {
  connCapacity: 1 << 20,
  slotCount: 1024,
  slotSize: 2048,
  maxServices: 256,
  maxDests: 4096,
  eventCapacity: 4096,
  expireBudget: 4096,
};
// The data plane compares wrapping u32 millisecond times by signed difference, which is sound
// for gaps under 2^31 ms. A clock that jumps further (an idle engine, a capture merged across
// weeks) is walked forward in steps of this size, expiring what fell due on the way.
const CLOCK_STEP_MS = 2 ** 30;
const VERDICTS: Record<number, Verdict | 'none'> = {
  [ABI.VERDICT_NONE]: 'none',
  [ABI.VERDICT_FORWARD]: 'forward',
  [ABI.VERDICT_PASS]: 'pass',
  [ABI.VERDICT_DROP]: 'drop',
  [ABI.VERDICT_LOCAL]: 'local',
};
const WASM_PAGE = 65536;
const PROBE_PAGES = 4;

interface DestState extends SchedDest {
  weight: number;
  /** As ip_vs_ctl.c dest->last_weight: the weight when added, then the last non-zero one. */
  lastWeight: number;
  service: ServiceState | undefined; // undefined once deleted (kept while it has connections)
  /** serviceId of the service it was added to: a deleted dest is revived only there. */
  serviceId: string;
  spec: DestConfig;
}

interface ServiceState {
  index: number;
  spec: ServiceConfig;
  scheduler: Scheduler;
  /** IPVS list order: newest first. */
  dests: DestState[];
}

function serviceId(protocol: Protocol, vaddr: number, vport: number): string {
  return `${protocol}:${vaddr}:${vport}`;
}

export class Engine extends EventEmitter<EngineEvents> {
  readonly memory: WebAssembly.Memory;
  readonly slotCount: number;
  readonly slotSize: number;
  readonly connCapacity: number;
  private readonly wasm: WasmExports;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly ctrl: number;
  private readonly descBase: number;
  private readonly dataBase: number;
  private readonly connBase: number;
  private readonly destBase: number;
  private readonly eventBase: number;
  private readonly eventCapacity: number;
  private readonly counterBase: number;
  private readonly timeoutBase: number;
  private readonly maxServices: number;
  private readonly maxDests: number;
  private readonly expireBudget: number;
  private readonly services = new Map<string, ServiceState>();
  private readonly servicesByIndex: (ServiceState | undefined)[] = [];
  private readonly destsByIndex: (DestState | undefined)[] = [];
  private lastNow = 0;
  private readonly scheduleErrors: WasmvsError[] = [];
  /** The last `now` as given (not wrapped), or undefined before the first. */
  private lastFullNow: number | undefined;

  constructor(options: EngineOptions = {}) {
    super();
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
    const timeouts = this.checkTimeouts(options.timeouts ?? {});

    const mod = wasmModule(options.debug ? 'debug' : 'release');
    const sizes = [o.connCapacity, o.slotCount, o.slotSize, o.maxServices, o.maxDests, o.eventCapacity] as const;
    // Plan the regions on a small probe memory, then create the real one at the right size:
    // shared memory cannot move, so it is made once, never grown.
    const probe = instantiate(mod, new WebAssembly.Memory({ initial: PROBE_PAGES, maximum: PROBE_PAGES, shared: true }), { schedule: () => -1 });
    const end = probe.layout(...sizes);
    if (end === 0) throw new WasmvsError('WASMVS_BAD_OPTION', 'the requested sizes do not fit in 4 GiB of WASM memory');
    const pages = Math.ceil(end / WASM_PAGE);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.wasm = instantiate(mod, this.memory, { schedule: (s, sa, sp, da, dp) => this.schedule(s, sa, sp, da, dp) });
    if (this.wasm.layout(...sizes) !== end) throw new WasmvsError('WASMVS_ABI_MISMATCH', 'layout differs between instances');
    const key = new Uint32Array(4);
    randomFillSync(key);
    this.wasm.init(key[0], key[1], key[2], key[3]);

    this.bytes = new Uint8Array(this.memory.buffer);
    this.view = new DataView(this.memory.buffer);
    this.ctrl = this.wasm.controlBlock();
    const ctrl32 = (off: number) => this.view.getUint32(this.ctrl + off, true);
    if (ctrl32(ABI.CTRL_MAGIC_OFF) !== ABI.CTRL_MAGIC) throw new WasmvsError('WASMVS_ABI_MISMATCH', 'control block magic not found');
    this.descBase = ctrl32(ABI.CTRL_DESC_BASE);
    this.dataBase = ctrl32(ABI.CTRL_DATA_BASE);
    this.connBase = ctrl32(ABI.CTRL_CONN_BASE);
    this.destBase = ctrl32(ABI.CTRL_DEST_BASE);
    this.eventBase = ctrl32(ABI.CTRL_EVENT_BASE);
    this.counterBase = ctrl32(ABI.CTRL_COUNTER_BASE);
    this.timeoutBase = ctrl32(ABI.CTRL_TIMEOUT_BASE);
    this.slotCount = o.slotCount;
    this.slotSize = o.slotSize;
    this.connCapacity = o.connCapacity;
    this.eventCapacity = o.eventCapacity;
    this.maxServices = o.maxServices;
    this.maxDests = o.maxDests;
    this.expireBudget = o.expireBudget;
    this.applyTimeouts(timeouts);
    this.setExpireNodestConn(options.expireNodestConn ?? false);
  }

  // ---- configuration: services -------------------------------------------------------------

  /** ipvsadm -A. */
  addService(spec: ServiceSpec): void {
    const s = checkServiceSpec(spec);
    if (this.services.has(serviceId(s.protocol, parseIPv4(s.vaddr), s.vport))) {
      throw new WasmvsError('WASMVS_SERVICE_EXISTS', `Service already exists: ${s.protocol} ${s.vaddr}:${s.vport}`);
    }
    const index = this.servicesByIndex.findIndex((x) => x === undefined);
    const at = index >= 0 ? index : this.servicesByIndex.length;
    if (at >= this.maxServices) throw new WasmvsError('WASMVS_SERVICE_LIMIT', `service table full (maxServices ${this.maxServices})`);
    this.commitService(at, s);
  }

  /** ipvsadm -E: change scheduler or persistence; existing connections keep their servers. */
  editService(spec: ServiceSpec): void {
    const s = checkServiceSpec(spec);
    const svc = this.findService(s);
    // A new scheduler, or new -b flags (sh and mh read them when built; their tables depend
    // only on the servers, so rebuilding is exact), starts from the current servers. The
    // same scheduler with the same flags keeps its state (lblc's cache, rr's position).
    if (s.scheduler !== svc.spec.scheduler || (s.schedFlags ?? []).join(',') !== (svc.spec.schedFlags ?? []).join(',')) {
      svc.scheduler = createScheduler(s.scheduler, s.schedFlags ?? [], { now: this.lastFullNow ?? this.lastNow });
      if (svc.dests.length > 0) svc.scheduler.destsChanged(svc.dests, { kind: 'add', dest: svc.dests[0] });
    }
    svc.spec = s;
    this.applyServiceOptions(svc);
  }

  /** ipvsadm -D: the service goes; its connections live on until they expire. */
  delService(key: ServiceKey): void {
    const svc = this.findService(key);
    for (const d of svc.dests) this.retireDest(d);
    svc.dests = [];
    this.checked('serviceClear', this.wasm.serviceClear(svc.index));
    this.services.delete(serviceId(svc.spec.protocol, parseIPv4(svc.spec.vaddr), svc.spec.vport));
    this.servicesByIndex[svc.index] = undefined;
  }

  /** ipvsadm -C. */
  clear(): void {
    for (const svc of [...this.services.values()]) this.delService(svc.spec);
  }

  // ---- configuration: real servers ---------------------------------------------------------

  /** ipvsadm -a. */
  addDest(key: ServiceKey, dest: DestSpec): void {
    const svc = this.findService(key);
    const d = checkDestSpec(dest, svc.spec.vport);
    if (this.findDest(svc, d)) throw new WasmvsError('WASMVS_DEST_EXISTS', `Destination already exists: ${d.daddr}:${d.dport}`);
    const index = this.allocDest(svc, d);
    this.commitDest(svc, index, d);
  }

  /** ipvsadm -e: change the weight. Weight 0 quiesces the server. */
  editDest(key: ServiceKey, dest: DestSpec): void {
    const svc = this.findService(key);
    const d = checkDestSpec(dest, svc.spec.vport);
    const state = this.findDest(svc, d);
    if (!state) throw new WasmvsError('WASMVS_NO_DEST', `No such destination: ${d.daddr}:${d.dport}`);
    state.weight = d.weight;
    if (d.weight > 0) state.lastWeight = d.weight;
    state.spec = d;
    this.checked('destSet', this.wasm.destSet(state.index, svc.index, wire32(state.daddr), wire16(state.dport), d.upperThreshold ?? 0, d.lowerThreshold ?? 0));
    svc.scheduler.destsChanged(svc.dests, { kind: 'edit', dest: state });
  }

  /** ipvsadm -d: no new connections; existing ones continue until they expire. */
  delDest(key: ServiceKey, dest: DestKey): void {
    const svc = this.findService(key);
    const daddr = parseIPv4(dest.daddr);
    const dport = checkPort(dest.dport, 'real server port');
    const state = svc.dests.find((x) => x.daddr === daddr && x.dport === (dport || svc.spec.vport));
    if (!state) throw new WasmvsError('WASMVS_NO_DEST', `No such destination: ${dest.daddr}:${dest.dport}`);
    svc.dests = svc.dests.filter((x) => x !== state);
    svc.scheduler.destsChanged(svc.dests, { kind: 'del', dest: state });
    this.retireDest(state);
  }

  /**
   * Adds every service and real server of an ipvsadm-save text or parsed rule set, as
   * ipvsadm-restore does; all or nothing: a bad rule changes nothing.
   */
  restore(rules: string | RuleSet): void {
    const set = typeof rules === 'string' ? parseRules(rules) : rules;
    // Check everything against the current configuration before touching it.
    const ids = new Set<string>();
    let destCount = 0;
    for (const rule of set.services) {
      const s = checkServiceSpec(rule);
      const id = serviceId(s.protocol, parseIPv4(s.vaddr), s.vport);
      if (this.services.has(id) || ids.has(id)) throw new WasmvsError('WASMVS_SERVICE_EXISTS', `Service already exists: ${s.protocol} ${s.vaddr}:${s.vport}`);
      ids.add(id);
      const seen = new Set<string>();
      for (const dest of rule.dests) {
        const d = checkDestSpec(dest, s.vport);
        const did = `${d.daddr}:${d.dport}`;
        if (seen.has(did)) throw new WasmvsError('WASMVS_DEST_EXISTS', `Destination already exists: ${did} in ${s.protocol} ${s.vaddr}:${s.vport}`);
        seen.add(did);
        destCount++;
      }
    }
    const freeServices = this.maxServices - this.services.size;
    if (set.services.length > freeServices) throw new WasmvsError('WASMVS_SERVICE_LIMIT', `${set.services.length} services do not fit: ${freeServices} free (maxServices ${this.maxServices})`);
    if (destCount > this.reusableDestSlots()) throw new WasmvsError('WASMVS_DEST_LIMIT', `${destCount} real servers do not fit (maxDests ${this.maxDests})`);
    for (const rule of set.services) {
      this.addService(rule);
      for (const dest of rule.dests) this.addDest(rule, dest);
    }
  }

  /** The configuration as ipvsadm-save -n text (real servers in the order they were added). */
  save(): string {
    return emitRules({
      services: [...this.servicesByIndex].filter((s): s is ServiceState => s !== undefined).map((s) => ({
        ...s.spec,
        dests: [...s.dests].reverse().map((d) => d.spec),
      })),
    });
  }

  /**
   * The addresses the data plane still translates for: every configured VIP and real server,
   * and those of deleted real servers whose connections or persistence templates live on
   * (as after ipvsadm -d, they run until they expire). The gateway routes exactly these
   * into its TUN.
   */
  liveAddresses(): { vaddrs: string[]; daddrs: string[] } {
    const vaddrs = new Set<string>();
    const daddrs = new Set<string>();
    for (const s of this.services.values()) vaddrs.add(s.spec.vaddr);
    for (const d of this.destsByIndex) {
      if (!d || (!d.service && this.unreferenced(d))) continue;
      daddrs.add(formatIPv4(d.daddr));
      vaddrs.add(formatIPv4(Number(d.serviceId.split(':')[1])));
    }
    return { vaddrs: [...vaddrs].sort(), daddrs: [...daddrs].sort() };
  }

  /** Services with their real servers and counters (ipvsadm -L -n --stats). */
  listServices(): ServiceInfo[] {
    return this.servicesByIndex.filter((s): s is ServiceState => s !== undefined).map((s) => ({
      ...s.spec,
      dests: s.dests.map((d) => this.destInfo(d)),
    }));
  }

  /** ipvsadm --set tcp tcpfin udp, in seconds; 0 leaves a value unchanged. */
  setTimeouts(timeouts: Partial<Timeouts>): void {
    this.applyTimeouts(this.checkTimeouts(timeouts));
  }

  /** net.ipv4.vs.expire_nodest_conn (see EngineOptions.expireNodestConn). */
  setExpireNodestConn(on: boolean): void {
    if (typeof on !== 'boolean') throw new WasmvsError('WASMVS_BAD_OPTION', `expireNodestConn must be true or false, got ${String(on)}`);
    this.wasm.setSettings(on ? ABI.SETTING_EXPIRE_NODEST_CONN : 0);
  }

  getTimeouts(): Timeouts {
    const ms = (slot: number) => this.view.getUint32(this.timeoutBase + slot * 4, true);
    return { tcp: ms(ABI.TCP_S_ESTABLISHED) / 1000, tcpfin: ms(ABI.TCP_S_FIN_WAIT) / 1000, udp: ms(ABI.TIMEOUT_UDP) / 1000 };
  }

  // ---- data path -------------------------------------------------------------------------

  /** Slot `i`'s bytes, a view into WASM memory (write packets here, zero-copy). */
  slot(i: number): Uint8Array {
    this.checkSlot(i, this.slotCount);
    return this.bytes.subarray(this.dataBase + i * this.slotSize, this.dataBase + (i + 1) * this.slotSize);
  }

  /**
   * Describes the packet in slot `i`: `length` bytes from the slot start, the IPv4 header at
   * `l3Offset` (after a link header, if any). `csumPartial`: the L4 checksum holds a partial
   * pseudo-header sum (virtio_net_hdr NEEDS_CSUM).
   */
  setSlot(i: number, length: number, l3Offset = 0, csumPartial = false): void {
    this.checkSlot(i, this.slotCount + 1);
    if (!Number.isInteger(length) || length < 0 || length > this.slotSize) throw new WasmvsError('WASMVS_RING_SLOT', `length ${length} does not fit a ${this.slotSize}-byte slot`);
    if (!Number.isInteger(l3Offset) || l3Offset < 0 || l3Offset > 0xffff) throw new WasmvsError('WASMVS_RING_SLOT', `l3Offset ${l3Offset} is out of range`);
    const d = this.descBase + i * ABI.DESC_SIZE;
    this.view.setUint32(d + ABI.DESC_LEN, length, true);
    this.view.setUint16(d + ABI.DESC_L3OFF, l3Offset, true);
    this.bytes[d + ABI.DESC_FLAGS] = csumPartial ? ABI.DESC_F_CSUM_PARTIAL : 0;
    this.bytes[d + ABI.DESC_VERDICT] = ABI.VERDICT_NONE;
  }

  /** Copies a packet into slot `i` and describes it. */
  writeSlot(i: number, packet: Uint8Array, l3Offset = 0, csumPartial = false): void {
    if (packet.length > this.slotSize) throw new WasmvsError('WASMVS_RING_SLOT', `packet of ${packet.length} bytes does not fit a ${this.slotSize}-byte slot`);
    this.bytes.set(packet, this.slotAddr(i));
    this.setSlot(i, packet.length, l3Offset, csumPartial);
  }

  /** The verdict written to slot `i` by the last process(). */
  verdict(i: number): Verdict | 'none' {
    this.checkSlot(i, this.slotCount);
    return this.verdictAt(i);
  }

  /** The drop, pass or local reason of slot `i`, if any. */
  reason(i: number): Reason | undefined {
    this.checkSlot(i, this.slotCount);
    return this.reasonAt(i);
  }

  /** Bytes in slot `i` (unchanged by NAT, which never resizes a packet). */
  slotLength(i: number): number {
    this.checkSlot(i, this.slotCount);
    return this.view.getUint32(this.descBase + i * ABI.DESC_SIZE + ABI.DESC_LEN, true);
  }

  private verdictAt(i: number): Verdict | 'none' {
    const v = this.bytes[this.descBase + i * ABI.DESC_SIZE + ABI.DESC_VERDICT];
    const verdict = VERDICTS[v];
    if (verdict === undefined) throw new WasmvsError('WASMVS_ABI_MISMATCH', `slot ${i} holds verdict ${v}, which the host does not know`);
    return verdict;
  }

  private reasonAt(i: number): Reason | undefined {
    const d = this.descBase + i * ABI.DESC_SIZE;
    const code = this.view.getUint16(d + ABI.DESC_REASON, true);
    if (code === 0) return undefined;
    const v = this.bytes[d + ABI.DESC_VERDICT];
    const names = v === ABI.VERDICT_DROP ? DROP_REASONS : v === ABI.VERDICT_LOCAL ? LOCAL_REASONS : PASS_REASONS;
    return names[code] || undefined;
  }

  /**
   * Processes `count` slots from `start` (wrapping) at engine time `now` (milliseconds, any
   * monotonic origin), after expiring the connections due by then (a bounded step), and
   * delivers the batch's events. One WASM call per batch. Returns how many packets were forwarded.
   */
  process(start: number, count: number, now: number): number {
    this.checkSlot(start, this.slotCount);
    if (!Number.isInteger(count) || count < 0 || count > this.slotCount) throw new WasmvsError('WASMVS_RING_SLOT', `count ${count} must be 0..${this.slotCount}`);
    const t = this.begin(now);
    // Expire first: connections due by `now` must not block this batch's new ones.
    this.wasm.expire(t, this.expireBudget);
    const forwarded = this.wasm.process(start, count, t);
    this.finish();
    return forwarded;
  }

  /** Convenience: one packet through the engine (copied in and out; not the fast path). */
  processPacket(packet: Uint8Array, now: number, l3Offset = 0): PacketResult {
    const scratch = this.slotCount;
    if (packet.length > this.slotSize) throw new WasmvsError('WASMVS_RING_SLOT', `packet of ${packet.length} bytes does not fit a ${this.slotSize}-byte slot`);
    const at = this.dataBase + scratch * this.slotSize;
    this.bytes.set(packet, at);
    this.setSlot(scratch, packet.length, l3Offset);
    const t = this.begin(now);
    this.wasm.expire(t, this.expireBudget);
    this.wasm.processScratch(t);
    this.finish();
    const flags = this.bytes[this.descBase + scratch * ABI.DESC_SIZE + ABI.DESC_FLAGS];
    const verdict = this.verdictAt(scratch) as Verdict;
    const reason = this.reasonAt(scratch);
    return {
      verdict,
      ...(reason ? { reason } : {}),
      packet: this.bytes.slice(at, at + packet.length),
      newConnection: (flags & ABI.DESC_F_NEW_CONN) !== 0,
      reply: (flags & ABI.DESC_F_REPLY) !== 0,
    };
  }

  /**
   * Expires connections due at `now`, in steps of the expiry budget, until caught up.
   * process() already does one step per batch; call this when no packets flow.
   */
  expire(now: number): void {
    const t = this.begin(now);
    while (this.wasm.expire(t, this.expireBudget) !== 0) this.drainEvents();
    this.finish();
  }

  /**
   * The opening of every call that moves engine time (process, processPacket, expire): the
   * clock, the estimator steps due before this call's packets count, the event mask.
   */
  private begin(now: number): number {
    const t = this.clock(now);
    if (now >= this.statsDue) this.statsTick(now);
    this.setEventMask();
    return t;
  }

  /** The close of such a call: its events, then its scheduler errors. */
  private finish(): void {
    this.drainEvents();
    this.emitScheduleErrors();
  }

  // ---- observation -------------------------------------------------------------------------

  /** Live connections (ipvsadm -L -n -c), at engine time `now` (default: the last one seen). */
  connections(now?: number): ConnInfo[] {
    const t = now === undefined ? this.lastNow : this.clock(now);
    const used = this.view.getUint32(this.ctrl + ABI.CTRL_BUMP_NEXT, true);
    const out: ConnInfo[] = [];
    for (let i = 0; i < used; i++) {
      const c = this.connBase + i * ABI.CONN_SIZE;
      if (!(this.view.getUint16(c + ABI.CONN_FLAGS, true) & ABI.CONN_F_HASHED)) continue;
      const template = (this.view.getUint16(c + ABI.CONN_FLAGS, true) & ABI.CONN_F_TEMPLATE) !== 0;
      const proto = this.bytes[c + ABI.CONN_PROTO] & ~ABI.TEMPLATE_PROTO_BIT;
      const left = (this.view.getUint32(c + ABI.CONN_EXPIRES, true) - t) | 0;
      // Due: gone for every packet already, the wheel frees it next. A template past its time
      // lives on while it controls connections, with its timer restarted.
      if (left <= 0 && !template) continue;
      out.push({
        ...this.readTuple(proto, c + ABI.CONN_CADDR),
        // ipvsadm shows a template as a connection in state NONE (UDP: UDP) with client port 0.
        state: template ? (proto === IPPROTO_UDP ? UDP_STATE_NAME : 'NONE') : this.stateName(proto, this.bytes[c + ABI.CONN_STATE]),
        expiresIn: Math.max(left, 0),
        ...(template ? { template: true } : {}),
      });
    }
    return out;
  }

  counters(): Counters {
    const c = (i: number) => Number(this.view.getBigUint64(this.counterBase + i * 8, true));
    const drops = {} as Record<DropReason, number>;
    DROP_REASONS.forEach((name, code) => { if (name) drops[name] = c(ABI.COUNTER_DROP_BASE + code); });
    const passes = {} as Record<PassReason, number>;
    PASS_REASONS.forEach((name, code) => { if (name) passes[name] = c(ABI.COUNTER_PASS_BASE + code); });
    const locals = {} as Record<LocalReason, number>;
    LOCAL_REASONS.forEach((name, code) => { if (name) locals[name] = c(ABI.COUNTER_LOCAL_BASE + code); });
    return {
      packets: c(ABI.COUNTER_FORWARD_IN) + c(ABI.COUNTER_FORWARD_OUT) + c(ABI.COUNTER_PASS) + c(ABI.COUNTER_DROP) + c(ABI.COUNTER_LOCAL),
      forwardIn: c(ABI.COUNTER_FORWARD_IN),
      forwardOut: c(ABI.COUNTER_FORWARD_OUT),
      pass: c(ABI.COUNTER_PASS),
      drop: c(ABI.COUNTER_DROP),
      local: c(ABI.COUNTER_LOCAL),
      connsCreated: c(ABI.COUNTER_CONN_NEW),
      connsExpired: c(ABI.COUNTER_CONN_EXPIRED),
      connsReused: c(ABI.COUNTER_CONN_REUSED),
      eventsLost: c(ABI.COUNTER_EVENTS_LOST),
      liveConns: this.view.getUint32(this.ctrl + ABI.CTRL_LIVE_CONNS, true),
      drops,
      passes,
      locals,
    };
  }

  /** Bytes of linear memory this engine uses, and of it the connection table. */
  memoryUsage(): { total: number; connTable: number; perConnection: number } {
    const indexSlots = this.view.getUint32(this.ctrl + ABI.CTRL_INDEX_SIZE, true);
    const connTable = this.connCapacity * (ABI.CONN_SIZE + ABI.LINK_SIZE) + indexSlots * 4;
    return { total: this.memory.buffer.byteLength, connTable, perConnection: connTable / this.connCapacity };
  }

  // ---- statistics (ipvsadm -L -n --stats / --rate, ipvsadm -Z) -----------------------------
  // Totals live in the dest records, counted per packet by the data plane. A service's are the
  // sum over the records of its real servers, deleted ones still alive included, plus what
  // records since reused had counted for it (the kernel's service counters never lose a
  // server's packets). Rates: an Estimator (host/stats.ts) per service and per record, all
  // stepped on one 2-second grid of engine time (multiples of EST_INTERVAL_MS). The step runs
  // at the start of process/processPacket/expire, before the call's packets count, so the
  // step at T sees exactly the traffic before T however late the call that runs it.

  private readonly statDests: (StatsRecord<DestState, ServiceState> | undefined)[] = [];
  private readonly statServices: (StatsServiceRecord<ServiceState> | undefined)[] = [];
  private readonly statScratch = new Totals();
  /** Engine time of the next estimation step, shared by every estimator. */
  private statsDue = EST_INTERVAL_MS;

  /**
   * Totals and rates per service and per real server (ipvsadm -L -n --stats and --rate), in
   * service table order, each with its current real servers (newest first, as listServices).
   * Totals are live; rates are as of the last 2-second step (run by process or expire).
   */
  statistics(): ServiceStats[] {
    this.statsSync();
    this.statsSum();
    const out: ServiceStats[] = [];
    for (const e of this.statServices) {
      if (!e) continue;
      const s = e.service;
      out.push({
        protocol: s.spec.protocol, vaddr: s.spec.vaddr, vport: s.spec.vport, ...e.sum, ...e.est.rates(),
        dests: s.dests.map((d) => {
          const r = this.statDests[d.index] as StatsRecord<DestState, ServiceState>;
          return { daddr: formatIPv4(d.daddr), dport: d.dport, ...r.seen, ...r.est.rates() };
        }),
      });
    }
    return out;
  }

  /**
   * ipvsadm -Z: totals and rates to zero, of one service and its real servers (deleted ones
   * still counting for it included), or of every service.
   */
  zeroStats(key?: ServiceKey): void {
    const only = key === undefined ? undefined : this.findService(key);
    this.statsSync();
    for (const r of this.statDests) {
      if (!r || !r.service || (only ? r.service !== only : !this.statServiceOf(r.service))) continue;
      this.checked('destZeroStats', this.wasm.destZeroStats(r.dest.index));
      r.seen.clear();
      r.base.clear();
      r.est.zero(r.seen);
    }
    for (const e of this.statServices) {
      if (!e || (only && e.service !== only)) continue;
      e.carry.clear();
      e.sum.clear();
      e.est.zero(e.sum);
    }
  }

  /** The estimation steps due by `now`; called when now >= statsDue, before packets count. */
  private statsTick(now: number): void {
    const t = Math.floor(now);
    this.statsSync();
    this.statsSum();
    for (const r of this.statDests) if (r) r.est.update(t, r.seen);
    for (const e of this.statServices) if (e) e.est.update(t, e.sum);
    this.statsDue += (Math.floor((t - this.statsDue) / EST_INTERVAL_MS) + 1) * EST_INTERVAL_MS;
  }

  /** Brings the bookkeeping up to date with the service and dest tables; reads every record. */
  private statsSync(): void {
    for (let i = 0; i < Math.max(this.servicesByIndex.length, this.statServices.length); i++) {
      const s = this.servicesByIndex[i];
      if (this.statServices[i] && this.statServices[i]?.service !== s) this.statServices[i] = undefined;
      if (s && !this.statServices[i]) this.statServices[i] = { service: s, est: new Estimator(this.statsDue), carry: new Totals(), sum: new Totals() };
    }
    for (let i = 0; i < Math.max(this.destsByIndex.length, this.statDests.length); i++) {
      const d = this.destsByIndex[i];
      let r = this.statDests[i];
      if (r && r.dest !== d) {
        // Another dest holds the record: the same server re-added to its service (counters
        // kept, as IPVS revives a dest from its trash), or a reuse for another server, which
        // destReset zeroed; its service keeps what the old one counted.
        const revived = d !== undefined && d.serviceId === r.dest.serviceId && d.daddr === r.dest.daddr
          && d.dport === r.dest.dport && !totalsDecreased(this.statsRead(i, this.statScratch), r.seen);
        if (revived) {
          r.dest = d;
        } else {
          const e = r.service && this.statServiceOf(r.service);
          if (e) e.carry.addDifference(r.seen, r.base);
          r = this.statDests[i] = undefined;
        }
      }
      if (!d) continue;
      if (!r) {
        r = { dest: d, service: d.service ?? this.services.get(d.serviceId), est: new Estimator(this.statsDue), seen: new Totals(), base: new Totals() };
        this.statDests[i] = r;
      } else if (d.service && d.service !== r.service) {
        // Revived into a re-created service: only what it counts from now on is that one's.
        r.service = d.service;
        r.base.set(r.seen);
      }
      this.statsRead(i, r.seen);
    }
  }

  /** Every live service's totals: what it carries plus its records' counts since joining it. */
  private statsSum(): void {
    for (const e of this.statServices) if (e) e.sum.set(e.carry);
    for (const r of this.statDests) {
      if (!r || !r.service) continue;
      const e = this.statServiceOf(r.service);
      if (e) e.sum.addDifference(r.seen, r.base);
    }
  }

  private statServiceOf(s: ServiceState): StatsServiceRecord<ServiceState> | undefined {
    const e = this.statServices[s.index];
    return e && e.service === s ? e : undefined;
  }

  /** Dest record `index`'s counters (u64, read as two halves: no BigInt per read). */
  private statsRead(index: number, into: Totals): Totals {
    const at = this.destBase + index * ABI.DEST_SIZE;
    const u64 = (off: number) => this.view.getUint32(at + off + 4, true) * 2 ** 32 + this.view.getUint32(at + off, true);
    into.conns = u64(ABI.DEST_CONNS);
    into.inPkts = u64(ABI.DEST_IN_PKTS);
    into.outPkts = u64(ABI.DEST_OUT_PKTS);
    into.inBytes = u64(ABI.DEST_IN_BYTES);
    into.outBytes = u64(ABI.DEST_OUT_BYTES);
    return into;
  }

  // ---- internals ---------------------------------------------------------------------------

  private clock(now: number): number {
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new WasmvsError('WASMVS_BAD_OPTION', `now must be a finite number of milliseconds, got ${String(now)}`);
    const full = Math.floor(now);
    if (this.lastFullNow !== undefined) {
      for (let at = this.lastFullNow + CLOCK_STEP_MS; at < full; at += CLOCK_STEP_MS) {
        while (this.wasm.expire(at >>> 0, this.expireBudget) !== 0) this.drainEvents();
        this.drainEvents();
      }
    }
    if (this.lastFullNow === undefined || full > this.lastFullNow) this.lastFullNow = full;
    this.lastNow = full >>> 0;
    return this.lastNow;
  }

  private slotAddr(i: number): number {
    this.checkSlot(i, this.slotCount);
    return this.dataBase + i * this.slotSize;
  }

  private checkSlot(i: number, limit: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= limit) throw new WasmvsError('WASMVS_RING_SLOT', `slot ${i} is outside the ring (0..${limit - 1})`);
  }

  /**
   * The data plane's call for a new connection of service `index` (wire-order tuple). A
   * scheduler that throws must not unwind through the WASM call (the batch would be lost,
   * uncounted): its packet is dropped as scheduler-error and the error is reported once the
   * batch is done (emitScheduleErrors).
   */
  private schedule(index: number, saddr: number, sport: number, daddr: number, dport: number): number {
    const svc = this.servicesByIndex[index];
    if (!svc) return ABI.SCHEDULE_NONE;
    try {
      const dest = svc.scheduler.schedule({
        saddr: wire32(saddr >>> 0), sport: wire16(sport), daddr: wire32(daddr >>> 0), dport: wire16(dport),
        now: this.lastFullNow ?? this.lastNow,
      });
      return dest ? dest.index : ABI.SCHEDULE_NONE;
    } catch (cause) {
      const { protocol, vaddr, vport, scheduler } = svc.spec;
      const client = `${formatIPv4(wire32(saddr >>> 0))}:${wire16(sport)}`;
      // Bounded: a scheduler failing on every packet of a 1024-slot batch keeps 1024 at most.
      this.scheduleErrors.push(new WasmvsError('WASMVS_SCHEDULER',
        `scheduler ${scheduler} of ${protocol} ${vaddr}:${vport} threw for a connection from ${client}: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause }));
      return ABI.SCHEDULE_ERROR;
    }
  }

  /** Delivers the scheduler errors of the call just made, as 'error' events. */
  private emitScheduleErrors(): void {
    if (this.scheduleErrors.length === 0) return;
    const errors = this.scheduleErrors.splice(0);
    for (const err of errors) this.emit('error', err);
  }

  /** A data plane configuration call's result: anything but `ok` is a host bug, reported as one. */
  private checked(call: string, rc: number, ok = 0): void {
    if (rc !== ok) throw new WasmvsError('WASMVS_DATAPLANE', `data plane refused ${call} (code ${rc})`);
  }

  private setEventMask(): void {
    const mask = (this.listenerCount('conn-created') ? 1 << ABI.EVENT_CONN_NEW : 0)
      | (this.listenerCount('conn-state') ? 1 << ABI.EVENT_CONN_STATE : 0)
      | (this.listenerCount('conn-expired') ? (1 << ABI.EVENT_CONN_EXPIRED) | (1 << ABI.EVENT_CONN_REUSED) : 0);
    this.view.setUint32(this.ctrl + ABI.CTRL_EVENT_MASK, mask, true);
  }

  private drainEvents(): void {
    const write = this.view.getUint32(this.ctrl + ABI.CTRL_EVENT_WRITE, true);
    let read = this.view.getUint32(this.ctrl + ABI.CTRL_EVENT_READ, true);
    while (read !== write) {
      const e = this.eventBase + (read & (this.eventCapacity - 1)) * ABI.EVENT_SIZE;
      read = (read + 1) >>> 0;
      // Advance first: a throwing listener must not make the engine replay the event.
      this.view.setUint32(this.ctrl + ABI.CTRL_EVENT_READ, read, true);
      const type = this.bytes[e + ABI.EVENT_TYPE];
      const proto = this.bytes[e + ABI.EVENT_PROTO];
      const event: ConnEvent = {
        ...this.readTuple(proto, e + ABI.EVENT_CADDR),
        state: this.stateName(proto, this.bytes[e + ABI.EVENT_NEW_STATE]),
        oldState: this.stateName(proto, this.bytes[e + ABI.EVENT_OLD_STATE]),
        time: this.view.getUint32(e + ABI.EVENT_TIME, true),
      };
      if (type === ABI.EVENT_CONN_NEW) this.emit('conn-created', event);
      else if (type === ABI.EVENT_CONN_STATE) this.emit('conn-state', event);
      else this.emit('conn-expired', { ...event, why: type === ABI.EVENT_CONN_REUSED ? 'reused' : 'timeout' });
    }
  }

  /**
   * The tuple at `at`: caddr, vaddr, daddr, then cport, vport, dport, in wire order: the same
   * shape in a connection record (from CONN_CADDR) and in an event record (from EVENT_CADDR).
   */
  private readTuple(proto: number, at: number): ConnTuple {
    return {
      protocol: proto === IPPROTO_TCP ? 'tcp' : 'udp',
      caddr: formatIPv4(this.view.getUint32(at + ABI.CONN_CADDR, false)),
      cport: this.view.getUint16(at + ABI.CONN_CPORT, false),
      vaddr: formatIPv4(this.view.getUint32(at + ABI.CONN_VADDR, false)),
      vport: this.view.getUint16(at + ABI.CONN_VPORT, false),
      daddr: formatIPv4(this.view.getUint32(at + ABI.CONN_DADDR, false)),
      dport: this.view.getUint16(at + ABI.CONN_DPORT, false),
    };
  }

  private stateName(proto: number, state: number): string {
    return proto === IPPROTO_UDP ? UDP_STATE_NAME : (TCP_STATE_NAMES[state] ?? `STATE_${state}`);
  }

  private checkTimeouts(t: Partial<Timeouts>): Partial<Timeouts> {
    for (const [name, value] of Object.entries(t)) {
      if (name !== 'tcp' && name !== 'tcpfin' && name !== 'udp') throw new WasmvsError('WASMVS_BAD_TIMEOUT', `unknown timeout "${name}" (tcp, tcpfin, udp)`);
      if (value !== undefined) checkInt(value, 0, MAX_TIMEOUT_S, `timeout ${name}`, 'WASMVS_BAD_TIMEOUT');
    }
    return t;
  }

  private applyTimeouts(t: Partial<Timeouts>): void {
    if (t.tcp) this.checked('setTimeout', this.wasm.setTimeout(ABI.TCP_S_ESTABLISHED, t.tcp * 1000), 1);
    if (t.tcpfin) this.checked('setTimeout', this.wasm.setTimeout(ABI.TCP_S_FIN_WAIT, t.tcpfin * 1000), 1);
    if (t.udp) this.checked('setTimeout', this.wasm.setTimeout(ABI.TIMEOUT_UDP, t.udp * 1000), 1);
  }

  private findService(key: ServiceKey): ServiceState {
    const protocol = parseProtocol(key.protocol);
    const vaddr = parseIPv4(key.vaddr);
    const svc = this.services.get(serviceId(protocol, vaddr, checkPort(key.vport, 'virtual port')));
    if (!svc) throw new WasmvsError('WASMVS_NO_SERVICE', `No such service: ${protocol} ${key.vaddr}:${key.vport}`);
    return svc;
  }

  private findDest(svc: ServiceState, d: DestConfig): DestState | undefined {
    const daddr = parseIPv4(d.daddr);
    return svc.dests.find((x) => x.daddr === daddr && x.dport === d.dport);
  }

  private commitService(index: number, s: ServiceConfig): void {
    const vaddr = parseIPv4(s.vaddr);
    this.checked('serviceSet', this.wasm.serviceSet(index, protocolNumber(s.protocol), wire32(vaddr), wire16(s.vport)));
    const scheduler = createScheduler(s.scheduler, s.schedFlags ?? [], { now: this.lastFullNow ?? this.lastNow });
    const svc: ServiceState = { index, spec: s, scheduler, dests: [] };
    this.services.set(serviceId(s.protocol, vaddr, s.vport), svc);
    this.servicesByIndex[index] = svc;
    this.applyServiceOptions(svc);
  }

  /** -p/-M/-o to the data plane: templates keyed by the client address under the netmask. */
  private applyServiceOptions(svc: ServiceState): void {
    const { persistence, netmask, onePacket } = svc.spec;
    const mask = netmask === undefined ? 0xffffffff : parseIPv4(netmask);
    const flags = (persistence !== undefined ? ABI.SVC_F_PERSISTENT : 0) | (onePacket ? ABI.SVC_F_ONE_PACKET : 0);
    this.checked('serviceConfigure', this.wasm.serviceConfigure(svc.index, flags, persistence === undefined ? 0 : persistence * 1000, wire32(mask)));
  }

  /** No connection and no persistence template refers to the dest's record any more. */
  private unreferenced(d: DestState): boolean {
    return d.activeConns + d.inactConns === 0 && this.view.getUint32(this.destBase + d.index * ABI.DEST_SIZE + ABI.DEST_PERSIST, true) === 0;
  }

  /** Dest slots free now or reclaimable (deleted, nothing referring to them). */
  private reusableDestSlots(): number {
    let n = this.maxDests - this.destsByIndex.length;
    for (let i = 0; i < this.destsByIndex.length; i++) {
      const d = this.destsByIndex[i];
      if (!d || (!d.service && this.unreferenced(d))) n++;
    }
    return n;
  }

  /**
   * A dest record for (svc, d): a deleted one for the same server is revived with its
   * connections (as IPVS's dest trash); else a free one, or a deleted one whose connections
   * are all gone.
   */
  private allocDest(svc: ServiceState, d: DestConfig): number {
    const daddr = parseIPv4(d.daddr);
    const id = serviceId(svc.spec.protocol, parseIPv4(svc.spec.vaddr), svc.spec.vport);
    let reclaim = -1;
    for (let i = 0; i < this.destsByIndex.length; i++) {
      const old = this.destsByIndex[i];
      if (!old) { if (reclaim < 0) reclaim = i; continue; }
      if (old.service) continue;
      // As ip_vs_trash_get_dest: the same server of the same service (protocol, vaddr, vport).
      if (old.serviceId === id && old.daddr === daddr && old.dport === d.dport) return i;
      if (reclaim < 0 && this.unreferenced(old)) reclaim = i;
    }
    if (reclaim >= 0) {
      this.statsSync(); // a retired record's counts reach its service before the record goes
      this.checked('destReset', this.wasm.destReset(reclaim));
      this.destsByIndex[reclaim] = undefined;
      return reclaim;
    }
    if (this.destsByIndex.length >= this.maxDests) throw new WasmvsError('WASMVS_DEST_LIMIT', `real-server table full (maxDests ${this.maxDests})`);
    return this.destsByIndex.length;
  }

  private commitDest(svc: ServiceState, index: number, d: DestConfig): void {
    const daddr = parseIPv4(d.daddr);
    this.checked('destSet', this.wasm.destSet(index, svc.index, wire32(daddr), wire16(d.dport), d.upperThreshold ?? 0, d.lowerThreshold ?? 0));
    const view = this.view;
    const base = this.destBase + index * ABI.DEST_SIZE;
    const state: DestState = {
      index,
      daddr,
      dport: d.dport,
      weight: d.weight,
      lastWeight: d.weight,
      service: svc,
      serviceId: serviceId(svc.spec.protocol, parseIPv4(svc.spec.vaddr), svc.spec.vport),
      spec: d,
      get activeConns() { return view.getUint32(base + ABI.DEST_ACTIVE, true); },
      get inactConns() { return view.getUint32(base + ABI.DEST_INACTIVE, true); },
      get overloaded() { return (view.getUint16(base + ABI.DEST_FLAGS, true) & ABI.DEST_F_OVERLOAD) !== 0; },
    };
    this.destsByIndex[index] = state;
    svc.dests.unshift(state); // newest first, as list_add_rcu
    svc.scheduler.destsChanged(svc.dests, { kind: 'add', dest: state });
  }

  /** Takes a dest out of scheduling; its record lives while connections use it. */
  private retireDest(d: DestState): void {
    d.service = undefined;
    this.checked('destRetire', this.wasm.destRetire(d.index));
  }

  private destInfo(d: DestState): DestInfo {
    const base = this.destBase + d.index * ABI.DEST_SIZE;
    const u64 = (off: number) => Number(this.view.getBigUint64(base + off, true));
    return {
      daddr: formatIPv4(d.daddr),
      dport: d.dport,
      weight: d.weight,
      activeConns: d.activeConns,
      inactConns: d.inactConns,
      conns: u64(ABI.DEST_CONNS),
      inPkts: u64(ABI.DEST_IN_PKTS),
      outPkts: u64(ABI.DEST_OUT_PKTS),
      inBytes: u64(ABI.DEST_IN_BYTES),
      outBytes: u64(ABI.DEST_OUT_BYTES),
    };
  }
}
