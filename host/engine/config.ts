// The configuration table: virtual services and their real servers with ipvsadm's semantics
// (-A/-E/-D/-C, -a/-e/-d, ipvsadm-restore and -save, --set), the records of deleted real
// servers whose connections live on, and the scheduler binding (the data plane's one call per
// new connection). Values are checked by spec.ts, the one validator the rules parser uses too;
// every change reaches the data plane through dataplane.ts.
import { checkPort, formatIPv4, parseIPv4, parseProtocol, type Protocol, wire16, wire32 } from '../addr.js';
import { WasmvsError } from '../errors.js';
import { emitRules, parseRules, type RuleSet } from '../ipvsadm/rules.js';
import { createScheduler, type SchedDest, type Scheduler } from '../schedulers/index.js';
import { SCHEDULE_ERROR, SCHEDULE_NONE, type DataPlane } from './dataplane.js';
import {
  checkDestSpec, checkInt, checkServiceSpec, MAX_TIMEOUT_S, type DestConfig, type DestSpec, type ServiceConfig,
  type ServiceSpec,
} from './spec.js';
import type { DestInfo, DestKey, ServiceInfo, ServiceKey, Timeouts } from './types.js';

export interface DestState extends SchedDest {
  weight: number;
  /** As ip_vs_ctl.c dest->last_weight: the weight when added, then the last non-zero one. */
  lastWeight: number;
  service: ServiceState | undefined; // undefined once deleted (kept while it has connections)
  /** serviceId of the service it was added to: a deleted dest is revived only there. */
  serviceId: string;
  spec: DestConfig;
}

export interface ServiceState {
  index: number;
  spec: ServiceConfig;
  scheduler: Scheduler;
  /** IPVS list order: newest first. */
  dests: DestState[];
}

function serviceId(protocol: Protocol, vaddr: number, vport: number): string {
  return `${protocol}:${vaddr}:${vport}`;
}

export interface ConfigurationHooks {
  /** Engine time for schedulers (ms, unwrapped). */
  now(): number;
  /** Called before a deleted server's record is reset for reuse (statistics carry its counts). */
  beforeDestReset(): void;
}

export class Configuration {
  readonly services = new Map<string, ServiceState>();
  /** By service table index (the data plane's). */
  readonly servicesByIndex: (ServiceState | undefined)[] = [];
  /** By dest record index, deleted servers with live connections included. */
  readonly destsByIndex: (DestState | undefined)[] = [];
  private readonly scheduleErrors: WasmvsError[] = [];

  constructor(
    private readonly dp: DataPlane,
    private readonly maxServices: number,
    private readonly maxDests: number,
    private readonly hooks: ConfigurationHooks,
  ) {}

  // ---- services ----------------------------------------------------------------------------

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
      svc.scheduler = createScheduler(s.scheduler, s.schedFlags ?? [], { now: this.hooks.now() });
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
    this.dp.serviceClear(svc.index);
    this.services.delete(serviceId(svc.spec.protocol, parseIPv4(svc.spec.vaddr), svc.spec.vport));
    this.servicesByIndex[svc.index] = undefined;
  }

  /** ipvsadm -C. */
  clear(): void {
    for (const svc of [...this.services.values()]) this.delService(svc.spec);
  }

  // ---- real servers --------------------------------------------------------------------------

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
    this.dp.destSet(state.index, svc.index, state.daddr, state.dport, d.upperThreshold ?? 0, d.lowerThreshold ?? 0);
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

  // ---- rule sets -----------------------------------------------------------------------------

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
      services: this.liveServices().map((s) => ({
        ...s.spec,
        dests: [...s.dests].reverse().map((d) => d.spec),
      })),
    });
  }

  // ---- observation ---------------------------------------------------------------------------

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
    return this.liveServices().map((s) => ({
      ...s.spec,
      dests: s.dests.map((d) => this.destInfo(d)),
    }));
  }

  /** Services in table order. */
  liveServices(): ServiceState[] {
    return this.servicesByIndex.filter((s): s is ServiceState => s !== undefined);
  }

  findService(key: ServiceKey): ServiceState {
    const protocol = parseProtocol(key.protocol);
    const vaddr = parseIPv4(key.vaddr);
    const svc = this.services.get(serviceId(protocol, vaddr, checkPort(key.vport, 'virtual port')));
    if (!svc) throw new WasmvsError('WASMVS_NO_SERVICE', `No such service: ${protocol} ${key.vaddr}:${key.vport}`);
    return svc;
  }

  /** The service a dest's counts belong to: its own, or for a deleted one the live service it was added to. */
  serviceOf(d: DestState): ServiceState | undefined {
    return d.service ?? this.services.get(d.serviceId);
  }

  // ---- settings (ipvsadm --set, sysctls) -----------------------------------------------------

  /** ipvsadm --set tcp tcpfin udp, in seconds; 0 leaves a value unchanged. */
  setTimeouts(timeouts: Partial<Timeouts>): void {
    this.dp.setTimeouts(checkTimeouts(timeouts));
  }

  getTimeouts(): Timeouts {
    return this.dp.getTimeouts();
  }

  /** net.ipv4.vs.expire_nodest_conn (see EngineOptions.expireNodestConn). */
  setExpireNodestConn(on: boolean): void {
    if (typeof on !== 'boolean') throw new WasmvsError('WASMVS_BAD_OPTION', `expireNodestConn must be true or false, got ${String(on)}`);
    this.dp.setExpireNodestConn(on);
  }

  // ---- the scheduler binding -----------------------------------------------------------------

  /**
   * The data plane's call for a new connection of service `index` (wire-order tuple). A
   * scheduler that throws must not unwind through the WASM call (the batch would be lost,
   * uncounted): its packet is dropped as scheduler-error and the error is kept for
   * takeScheduleErrors.
   */
  schedule(index: number, saddr: number, sport: number, daddr: number, dport: number): number {
    const svc = this.servicesByIndex[index];
    if (!svc) return SCHEDULE_NONE;
    try {
      const dest = svc.scheduler.schedule({
        saddr: wire32(saddr >>> 0), sport: wire16(sport), daddr: wire32(daddr >>> 0), dport: wire16(dport),
        now: this.hooks.now(),
      });
      return dest ? dest.index : SCHEDULE_NONE;
    } catch (cause) {
      const { protocol, vaddr, vport, scheduler } = svc.spec;
      const client = `${formatIPv4(wire32(saddr >>> 0))}:${wire16(sport)}`;
      // Bounded: a scheduler failing on every packet of a 1024-slot batch keeps 1024 at most.
      this.scheduleErrors.push(new WasmvsError('WASMVS_SCHEDULER',
        `scheduler ${scheduler} of ${protocol} ${vaddr}:${vport} threw for a connection from ${client}: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause }));
      return SCHEDULE_ERROR;
    }
  }

  /** The scheduler errors since the last call, oldest first. */
  takeScheduleErrors(): WasmvsError[] {
    return this.scheduleErrors.length === 0 ? [] : this.scheduleErrors.splice(0);
  }

  // ---- internals -----------------------------------------------------------------------------

  private findDest(svc: ServiceState, d: DestConfig): DestState | undefined {
    const daddr = parseIPv4(d.daddr);
    return svc.dests.find((x) => x.daddr === daddr && x.dport === d.dport);
  }

  private commitService(index: number, s: ServiceConfig): void {
    const vaddr = parseIPv4(s.vaddr);
    this.dp.serviceSet(index, s.protocol, vaddr, s.vport);
    const scheduler = createScheduler(s.scheduler, s.schedFlags ?? [], { now: this.hooks.now() });
    const svc: ServiceState = { index, spec: s, scheduler, dests: [] };
    this.services.set(serviceId(s.protocol, vaddr, s.vport), svc);
    this.servicesByIndex[index] = svc;
    this.applyServiceOptions(svc);
  }

  /** -p/-M/-o to the data plane: templates keyed by the client address under the netmask. */
  private applyServiceOptions(svc: ServiceState): void {
    const { persistence, netmask, onePacket } = svc.spec;
    const mask = netmask === undefined ? 0xffffffff : parseIPv4(netmask);
    this.dp.serviceConfigure(svc.index, persistence === undefined ? undefined : persistence * 1000, mask, onePacket === true);
  }

  /** No connection and no persistence template refers to the dest's record any more. */
  private unreferenced(d: DestState): boolean {
    return d.activeConns + d.inactConns === 0 && this.dp.destTemplates(d.index) === 0;
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
      this.hooks.beforeDestReset(); // a retired record's counts reach its service before the record goes
      this.dp.destReset(reclaim);
      this.destsByIndex[reclaim] = undefined;
      return reclaim;
    }
    if (this.destsByIndex.length >= this.maxDests) throw new WasmvsError('WASMVS_DEST_LIMIT', `real-server table full (maxDests ${this.maxDests})`);
    return this.destsByIndex.length;
  }

  private commitDest(svc: ServiceState, index: number, d: DestConfig): void {
    const daddr = parseIPv4(d.daddr);
    this.dp.destSet(index, svc.index, daddr, d.dport, d.upperThreshold ?? 0, d.lowerThreshold ?? 0);
    const dp = this.dp;
    const state: DestState = {
      index,
      daddr,
      dport: d.dport,
      weight: d.weight,
      lastWeight: d.weight,
      service: svc,
      serviceId: serviceId(svc.spec.protocol, parseIPv4(svc.spec.vaddr), svc.spec.vport),
      spec: d,
      // Live from the data plane's record: schedulers read them per new connection.
      get activeConns() { return dp.destActive(index); },
      get inactConns() { return dp.destInactive(index); },
      get overloaded() { return dp.destOverloaded(index); },
    };
    this.destsByIndex[index] = state;
    svc.dests.unshift(state); // newest first, as list_add_rcu
    svc.scheduler.destsChanged(svc.dests, { kind: 'add', dest: state });
  }

  /** Takes a dest out of scheduling; its record lives while connections use it. */
  private retireDest(d: DestState): void {
    d.service = undefined;
    this.dp.destRetire(d.index);
  }

  private destInfo(d: DestState): DestInfo {
    return {
      daddr: formatIPv4(d.daddr),
      dport: d.dport,
      weight: d.weight,
      activeConns: d.activeConns,
      inactConns: d.inactConns,
      persistConns: this.dp.destTemplates(d.index),
      upperThreshold: d.spec.upperThreshold ?? 0,
      lowerThreshold: d.spec.lowerThreshold ?? 0,
      ...this.dp.destTotals(d.index, { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 }),
    };
  }
}

/** Checks ipvsadm --set values (seconds, 0 = unchanged); throws naming the problem. */
export function checkTimeouts(t: Partial<Timeouts>): Partial<Timeouts> {
  for (const [name, value] of Object.entries(t)) {
    if (name !== 'tcp' && name !== 'tcpfin' && name !== 'udp') throw new WasmvsError('WASMVS_BAD_TIMEOUT', `unknown timeout "${name}" (tcp, tcpfin, udp)`);
    if (value !== undefined) checkInt(value, 0, MAX_TIMEOUT_S, `timeout ${name}`, 'WASMVS_BAD_TIMEOUT');
  }
  return t;
}
