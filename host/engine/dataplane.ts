// The data-plane binding: one WASM instance over its shared linear memory. This is the only
// module besides abi.ts that knows the ABI's offsets and codes: the control block, the ring
// descriptors and slots, connection, dest and event records, counters and timeouts. The rest
// of the host works with what it returns (numbers, names, records) and never reads memory.
//
// The host owns policy and text; the data plane owns packets. Per batch the host makes one
// call (processRing), plus one call back per new connection (the schedule import). The data
// plane is single-writer: one thread at a time calls process, expire and the configuration
// calls (see abi.ts attach()).
import { randomFillSync } from 'node:crypto';
import { formatIPv4, IPPROTO_TCP, IPPROTO_UDP, type Protocol, protocolNumber, wire16, wire32 } from '../addr.js';
import { WasmvsError } from '../errors.js';
import {
  ABI, DROP_REASONS, type DropReason, FTP_COUNTERS, type FtpCounter, instantiate, LOCAL_REASONS, type LocalReason, PASS_REASONS,
  type PassReason, TCP_STATE_NAMES, UDP_STATE_NAME, type WasmExports, type WasmImports, wasmModule,
} from './abi.js';
import type { StatsTotals } from './stats.js';
import type { ConnInfo, ConnTuple, Counters, Reason, Timeouts, Verdict } from './types.js';
import type { WasmMemory } from './wasm-types.js';

export interface DataPlaneSizes {
  connCapacity: number;
  slotCount: number;
  slotSize: number;
  maxServices: number;
  maxDests: number;
  eventCapacity: number;
  /** FTP control connections the helper follows at once (0: no helper, ftpPorts empty). */
  ftpSessions: number;
}

/** A connection event record as the data plane wrote it. */
export interface DataPlaneEvent extends ConnTuple {
  kind: 'created' | 'state' | 'expired' | 'reused' | 'ftp';
  /** For kind 'ftp': what the helper met (FTP_COUNTERS). */
  ftp?: FtpCounter;
  state: string;
  oldState: string;
  /** Engine time, ms modulo 2^32. */
  time: number;
}

/** Which event kinds the host listens to (the data plane writes only those). */
export interface EventInterest {
  created: boolean;
  state: boolean;
  expired: boolean;
  ftp: boolean;
}

/** What the scratch slot holds after processScratch. */
export interface ScratchResult {
  verdict: Verdict;
  reason: Reason | undefined;
  packet: Uint8Array;
  newConnection: boolean;
  reply: boolean;
}

const VERDICTS: Record<number, Verdict | 'none'> = {
  [ABI.VERDICT_NONE]: 'none',
  [ABI.VERDICT_FORWARD]: 'forward',
  [ABI.VERDICT_PASS]: 'pass',
  [ABI.VERDICT_DROP]: 'drop',
  [ABI.VERDICT_LOCAL]: 'local',
};
const WASM_PAGE = 65536;
const PROBE_PAGES = 4;

/** What a ScheduleCall returns besides a dest index: no server available, the scheduler threw. */
export const SCHEDULE_NONE: number = ABI.SCHEDULE_NONE;
export const SCHEDULE_ERROR: number = ABI.SCHEDULE_ERROR;

/**
 * The data plane's one call per new connection: service table index and the packet's tuple
 * as the data plane holds it (wire order: addr.ts wire32/wire16 convert). Returns a dest
 * record index, SCHEDULE_NONE or SCHEDULE_ERROR; it must not throw (the exception would
 * unwind through the WASM call and lose the batch).
 */
export type ScheduleCall = WasmImports['schedule'];

export class DataPlane {
  readonly memory: WasmMemory;
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
  private readonly linkBase: number;
  private readonly eventBase: number;
  private readonly eventCapacity: number;
  private readonly counterBase: number;
  private readonly timeoutBase: number;

  /** Plans, creates and initialises the memory for `sizes` (already checked by the caller). */
  constructor(sizes: DataPlaneSizes, debug: boolean, schedule: ScheduleCall) {
    const mod = wasmModule(debug ? 'debug' : 'release');
    const args = [sizes.connCapacity, sizes.slotCount, sizes.slotSize, sizes.maxServices, sizes.maxDests, sizes.eventCapacity, sizes.ftpSessions] as const;
    // Plan the regions on a small probe memory, then create the real one at the right size:
    // shared memory cannot move, so it is made once, never grown.
    const probe = instantiate(mod, new WebAssembly.Memory({ initial: PROBE_PAGES, maximum: PROBE_PAGES, shared: true }), { schedule: () => -1 });
    const end = probe.layout(...args);
    if (end === 0) throw new WasmvsError('WASMVS_BAD_OPTION', 'the requested sizes do not fit in 4 GiB of WASM memory');
    const pages = Math.ceil(end / WASM_PAGE);
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.memory = memory;
    this.wasm = instantiate(mod, memory, { schedule });
    if (this.wasm.layout(...args) !== end) throw new WasmvsError('WASMVS_ABI_MISMATCH', 'layout differs between instances');
    const key = new Uint32Array(4);
    randomFillSync(key);
    this.wasm.init(key[0], key[1], key[2], key[3]);

    this.bytes = new Uint8Array(memory.buffer);
    this.view = new DataView(memory.buffer);
    this.ctrl = this.wasm.controlBlock();
    const ctrl32 = (off: number) => this.view.getUint32(this.ctrl + off, true);
    if (ctrl32(ABI.CTRL_MAGIC_OFF) !== ABI.CTRL_MAGIC) throw new WasmvsError('WASMVS_ABI_MISMATCH', 'control block magic not found');
    this.descBase = ctrl32(ABI.CTRL_DESC_BASE);
    this.dataBase = ctrl32(ABI.CTRL_DATA_BASE);
    this.connBase = ctrl32(ABI.CTRL_CONN_BASE);
    this.linkBase = ctrl32(ABI.CTRL_LINK_BASE);
    this.destBase = ctrl32(ABI.CTRL_DEST_BASE);
    this.eventBase = ctrl32(ABI.CTRL_EVENT_BASE);
    this.counterBase = ctrl32(ABI.CTRL_COUNTER_BASE);
    this.timeoutBase = ctrl32(ABI.CTRL_TIMEOUT_BASE);
    this.slotCount = sizes.slotCount;
    this.slotSize = sizes.slotSize;
    this.connCapacity = sizes.connCapacity;
    this.eventCapacity = sizes.eventCapacity;
  }

  /** A u64 of linear memory as a number (two u32 halves: no BigInt per read; exact below 2^53). */
  private u64(at: number): number {
    return this.view.getUint32(at + 4, true) * 2 ** 32 + this.view.getUint32(at, true);
  }

  // ---- the ring --------------------------------------------------------------------------

  /** Slot `i`'s bytes, a view into linear memory. */
  slot(i: number): Uint8Array {
    this.checkSlot(i, this.slotCount);
    return this.bytes.subarray(this.dataBase + i * this.slotSize, this.dataBase + (i + 1) * this.slotSize);
  }

  /** Describes the packet in slot `i` (slotCount: the scratch slot). */
  setSlot(i: number, length: number, l3Offset: number, csumPartial: boolean): void {
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
  writeSlot(i: number, packet: Uint8Array, l3Offset: number, csumPartial: boolean): void {
    this.checkFits(packet);
    this.checkSlot(i, this.slotCount);
    this.bytes.set(packet, this.dataBase + i * this.slotSize);
    this.setSlot(i, packet.length, l3Offset, csumPartial);
  }

  /** Copies a packet into the scratch slot (index slotCount, outside the ring). */
  writeScratch(packet: Uint8Array, l3Offset: number): void {
    this.checkFits(packet);
    this.bytes.set(packet, this.dataBase + this.slotCount * this.slotSize);
    this.setSlot(this.slotCount, packet.length, l3Offset, false);
  }

  private checkFits(packet: Uint8Array): void {
    if (packet.length > this.slotSize) throw new WasmvsError('WASMVS_RING_SLOT', `packet of ${packet.length} bytes does not fit a ${this.slotSize}-byte slot`);
  }

  verdict(i: number): Verdict | 'none' {
    this.checkSlot(i, this.slotCount);
    return this.verdictAt(i);
  }

  reason(i: number): Reason | undefined {
    this.checkSlot(i, this.slotCount);
    return this.reasonAt(i);
  }

  slotLength(i: number): number {
    this.checkSlot(i, this.slotCount);
    return this.view.getUint32(this.descBase + i * ABI.DESC_SIZE + ABI.DESC_LEN, true);
  }

  /** Checks a batch's bounds before any engine time moves. */
  checkBatch(start: number, count: number): void {
    this.checkSlot(start, this.slotCount);
    if (!Number.isInteger(count) || count < 0 || count > this.slotCount) throw new WasmvsError('WASMVS_RING_SLOT', `count ${count} must be 0..${this.slotCount}`);
  }

  /** One WASM call for `count` slots from `start` at wrapped time `t`. Returns forwards. */
  processRing(start: number, count: number, t: number): number {
    return this.wasm.process(start, count, t);
  }

  /** Packets the FTP helper resized, ever (wraps at 2^32). */
  resizedCount(): number {
    return this.view.getUint32(this.ctrl + ABI.CTRL_RESIZED, true);
  }

  /** Processes the scratch slot (written with writeSlot(slotCount, ...)) at wrapped time `t`. */
  processScratch(t: number): void {
    this.wasm.processScratch(t);
  }

  /** The scratch slot's result: verdict, reason, the packet (a copy of its bytes now), flags. */
  scratchResult(): ScratchResult {
    const scratch = this.slotCount;
    const at = this.dataBase + scratch * this.slotSize;
    // The FTP helper may have resized the packet: the descriptor holds its length now.
    const length = this.view.getUint32(this.descBase + scratch * ABI.DESC_SIZE + ABI.DESC_LEN, true);
    const flags = this.bytes[this.descBase + scratch * ABI.DESC_SIZE + ABI.DESC_FLAGS];
    return {
      verdict: this.verdictAt(scratch) as Verdict,
      reason: this.reasonAt(scratch),
      packet: this.bytes.slice(at, at + length),
      newConnection: (flags & ABI.DESC_F_NEW_CONN) !== 0,
      reply: (flags & ABI.DESC_F_REPLY) !== 0,
    };
  }

  /** Expires what is due at wrapped time `t`, at most `budget` records. True when more remain. */
  expire(t: number, budget: number): boolean {
    return this.wasm.expire(t, budget) !== 0;
  }

  private checkSlot(i: number, limit: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= limit) throw new WasmvsError('WASMVS_RING_SLOT', `slot ${i} is outside the ring (0..${limit - 1})`);
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

  // ---- events ------------------------------------------------------------------------------

  /** The event types the data plane writes records for. */
  setEventInterest(want: EventInterest): void {
    const mask = (want.created ? 1 << ABI.EVENT_CONN_NEW : 0)
      | (want.state ? 1 << ABI.EVENT_CONN_STATE : 0)
      | (want.expired ? (1 << ABI.EVENT_CONN_EXPIRED) | (1 << ABI.EVENT_CONN_REUSED) : 0)
      | (want.ftp ? 1 << ABI.EVENT_FTP : 0);
    this.view.setUint32(this.ctrl + ABI.CTRL_EVENT_MASK, mask, true);
  }

  /**
   * Hands every event record written since the last drain to `deliver`, oldest first. Each
   * record is consumed before it is delivered: a throwing listener must not make the engine
   * replay the event.
   */
  drainEvents(deliver: (e: DataPlaneEvent) => void): void {
    const write = this.view.getUint32(this.ctrl + ABI.CTRL_EVENT_WRITE, true);
    let read = this.view.getUint32(this.ctrl + ABI.CTRL_EVENT_READ, true);
    while (read !== write) {
      const e = this.eventBase + (read & (this.eventCapacity - 1)) * ABI.EVENT_SIZE;
      read = (read + 1) >>> 0;
      this.view.setUint32(this.ctrl + ABI.CTRL_EVENT_READ, read, true);
      const type = this.bytes[e + ABI.EVENT_TYPE];
      const proto = this.bytes[e + ABI.EVENT_PROTO];
      if (type === ABI.EVENT_FTP) {
        // The helper's report: the control connection, and what it met in EVENT_NEW_STATE.
        deliver({
          kind: 'ftp', ftp: (FTP_COUNTERS[this.bytes[e + ABI.EVENT_NEW_STATE]] || 'bad-reply') as FtpCounter,
          ...this.readTuple(proto, e + ABI.EVENT_CADDR),
          state: 'ESTABLISHED', oldState: 'ESTABLISHED',
          time: this.view.getUint32(e + ABI.EVENT_TIME, true),
        });
        continue;
      }
      deliver({
        kind: type === ABI.EVENT_CONN_NEW ? 'created' : type === ABI.EVENT_CONN_STATE ? 'state' : type === ABI.EVENT_CONN_REUSED ? 'reused' : 'expired',
        ...this.readTuple(proto, e + ABI.EVENT_CADDR),
        state: this.stateName(proto, this.bytes[e + ABI.EVENT_NEW_STATE]),
        oldState: this.stateName(proto, this.bytes[e + ABI.EVENT_OLD_STATE]),
        time: this.view.getUint32(e + ABI.EVENT_TIME, true),
      });
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

  // ---- configuration calls -----------------------------------------------------------------
  // Addresses are host-order numbers (addr.ts parseIPv4) and ports plain numbers here; the
  // data plane keeps them in wire order.

  serviceSet(index: number, protocol: Protocol, vaddr: number, vport: number): void {
    this.checked('serviceSet', this.wasm.serviceSet(index, protocolNumber(protocol), wire32(vaddr), wire16(vport)));
  }

  serviceClear(index: number): void {
    this.checked('serviceClear', this.wasm.serviceClear(index));
  }

  /** -p (persistence ms, undefined: none), -M (host-order mask), -o. */
  serviceConfigure(index: number, persistenceMs: number | undefined, netmask: number, onePacket: boolean): void {
    const flags = (persistenceMs !== undefined ? ABI.SVC_F_PERSISTENT : 0) | (onePacket ? ABI.SVC_F_ONE_PACKET : 0);
    this.checked('serviceConfigure', this.wasm.serviceConfigure(index, flags, persistenceMs ?? 0, wire32(netmask)));
  }

  destSet(index: number, service: number, daddr: number, dport: number, upper: number, lower: number): void {
    this.checked('destSet', this.wasm.destSet(index, service, wire32(daddr), wire16(dport), upper, lower));
  }

  destRetire(index: number): void {
    this.checked('destRetire', this.wasm.destRetire(index));
  }

  destReset(index: number): void {
    this.checked('destReset', this.wasm.destReset(index));
  }

  destZeroStats(index: number): void {
    this.checked('destZeroStats', this.wasm.destZeroStats(index));
  }

  /** Timeouts in seconds; 0 or undefined leaves one unchanged. */
  setTimeouts(t: Partial<Timeouts>): void {
    if (t.tcp) this.checked('setTimeout', this.wasm.setTimeout(ABI.TCP_S_ESTABLISHED, t.tcp * 1000), 1);
    if (t.tcpfin) this.checked('setTimeout', this.wasm.setTimeout(ABI.TCP_S_FIN_WAIT, t.tcpfin * 1000), 1);
    if (t.udp) this.checked('setTimeout', this.wasm.setTimeout(ABI.TIMEOUT_UDP, t.udp * 1000), 1);
  }

  getTimeouts(): Timeouts {
    const ms = (slot: number) => this.view.getUint32(this.timeoutBase + slot * 4, true);
    return { tcp: ms(ABI.TCP_S_ESTABLISHED) / 1000, tcpfin: ms(ABI.TCP_S_FIN_WAIT) / 1000, udp: ms(ABI.TIMEOUT_UDP) / 1000 };
  }

  /** Binds the FTP helper to these virtual TCP ports (the engine was laid out with it). */
  setFtpPorts(ports: readonly number[]): void {
    for (const port of ports) this.checked('ftpPortSet', this.wasm.ftpPortSet(port, 1), 1);
  }

  setExpireNodestConn(on: boolean): void {
    this.wasm.setSettings(on ? ABI.SETTING_EXPIRE_NODEST_CONN : 0);
  }

  /** A configuration call's result: anything but `ok` is a host bug, reported as one. */
  private checked(call: string, rc: number, ok = 0): void {
    if (rc !== ok) throw new WasmvsError('WASMVS_DATAPLANE', `data plane refused ${call} (code ${rc})`);
  }

  // ---- dest records ------------------------------------------------------------------------

  /** ESTABLISHED TCP connections of dest record `index` (ActiveConn). */
  destActive(index: number): number {
    return this.view.getUint32(this.destBase + index * ABI.DEST_SIZE + ABI.DEST_ACTIVE, true);
  }

  /** Its other connections (InActConn). */
  destInactive(index: number): number {
    return this.view.getUint32(this.destBase + index * ABI.DEST_SIZE + ABI.DEST_INACTIVE, true);
  }

  /** Its OVERLOAD flag (-x/-y thresholds). */
  destOverloaded(index: number): boolean {
    return (this.view.getUint16(this.destBase + index * ABI.DEST_SIZE + ABI.DEST_FLAGS, true) & ABI.DEST_F_OVERLOAD) !== 0;
  }

  /** Persistence templates naming it. */
  destTemplates(index: number): number {
    return this.view.getUint32(this.destBase + index * ABI.DEST_SIZE + ABI.DEST_PERSIST, true);
  }

  /** Its statistics counters (connections scheduled, packets and bytes each way), into `into`. */
  destTotals<T extends StatsTotals>(index: number, into: T): T {
    const at = this.destBase + index * ABI.DEST_SIZE;
    into.conns = this.u64(at + ABI.DEST_CONNS);
    into.inPkts = this.u64(at + ABI.DEST_IN_PKTS);
    into.outPkts = this.u64(at + ABI.DEST_OUT_PKTS);
    into.inBytes = this.u64(at + ABI.DEST_IN_BYTES);
    into.outBytes = this.u64(at + ABI.DEST_OUT_BYTES);
    return into;
  }

  // ---- observation -------------------------------------------------------------------------

  /** Live connections and templates at wrapped time `t` (ipvsadm -L -n -c). */
  connections(t: number): ConnInfo[] {
    const used = this.view.getUint32(this.ctrl + ABI.CTRL_BUMP_NEXT, true);
    const out: ConnInfo[] = [];
    for (let i = 0; i < used; i++) {
      const c = this.connBase + i * ABI.CONN_SIZE;
      const flags = this.view.getUint16(c + ABI.CONN_FLAGS, true);
      if (!(flags & ABI.CONN_F_HASHED)) continue;
      const template = (flags & ABI.CONN_F_TEMPLATE) !== 0;
      const proto = this.bytes[c + ABI.CONN_PROTO] & ~ABI.TEMPLATE_PROTO_BIT;
      const left = (this.view.getUint32(c + ABI.CONN_EXPIRES, true) - t) | 0;
      // Due: gone for every packet already, the wheel frees it next. A template past its time
      // lives on while it controls connections, with its timer restarted, and so does an FTP
      // control connection while its data connections live.
      if (left <= 0 && !template && this.view.getUint32(this.linkBase + i * ABI.LINK_SIZE + ABI.LINK_N_CONTROL, true) === 0) continue;
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
    const c = (i: number) => this.u64(this.counterBase + i * 8);
    const drops = {} as Record<DropReason, number>;
    DROP_REASONS.forEach((name, code) => { if (name) drops[name] = c(ABI.COUNTER_DROP_BASE + code); });
    const passes = {} as Record<PassReason, number>;
    PASS_REASONS.forEach((name, code) => { if (name) passes[name] = c(ABI.COUNTER_PASS_BASE + code); });
    const locals = {} as Record<LocalReason, number>;
    LOCAL_REASONS.forEach((name, code) => { if (name) locals[name] = c(ABI.COUNTER_LOCAL_BASE + code); });
    const ftp = {} as Record<FtpCounter, number>;
    FTP_COUNTERS.forEach((name, code) => { if (name) ftp[name] = c(ABI.COUNTER_FTP_BASE + code); });
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
      ftp,
    };
  }

  /** Bytes of linear memory in use, of it the connection table, and the FTP helper's table. */
  memoryUsage(): { total: number; connTable: number; perConnection: number; ftpTable: number } {
    const indexSlots = this.view.getUint32(this.ctrl + ABI.CTRL_INDEX_SIZE, true);
    const connTable = this.connCapacity * (ABI.CONN_SIZE + ABI.LINK_SIZE) + indexSlots * 4;
    const appBase = this.view.getUint32(this.ctrl + ABI.CTRL_APP_BASE, true);
    const ftpTable = appBase === 0 ? 0 : (this.view.getUint32(this.ctrl + ABI.CTRL_APP_MASK, true) + 1) * (4 + ABI.APP_SIZE) + ABI.FTP_PORT_MAP_BYTES;
    return { total: this.memory.buffer.byteLength, connTable, perConnection: connTable / this.connCapacity, ftpTable };
  }

}
