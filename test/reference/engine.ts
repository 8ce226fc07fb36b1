// The reference engine: IPVS NAT as a Node developer would write it plainly, one Map of
// connections keyed by the flow tuple as a string, a plain object per connection, a DataView
// over each packet. It is the oracle of the differential tests and the idiomatic baseline of
// the benchmarks, not the product path. Each part names the data-plane function it mirrors
// (assembly/nat.ts unless said otherwise). Policy is shared with the real engine: the same
// schedulers (host/schedulers), rules parser, addresses and errors.
//
// Deliberate differences from the data plane, none visible through EngineLike:
// - expiry has no per-call budget (the data plane handles at most 4096 records per call), so
//   the two can differ when more than that falls due at once;
// - expiry is a heap ordered by expiry time, as IPVS's per-connection timers fire; the data
//   plane's timer wheel reaches the same order (test/reference.test.ts holds the cases that
//   once differed: a template and its connection due in one long gap, and a template whose
//   dest record was reused).
import type {
  ConnInfo, Counters, DestInfo, DestKey, PacketResult, ServiceInfo, ServiceKey, Timeouts,
} from '../../host/engine/engine.js';
import { checkPort, formatIPv4, parseIPv4, parseProtocol, protocolNumber, type Protocol } from '../../host/addr.js';
import { WasmvsError } from '../../host/errors.js';
import { parseRules, type DestConfig, type DestSpec, type ServiceConfig, type ServiceSpec } from '../../host/ipvsadm/rules.js';
import { createScheduler, DEFAULT_SCHEDULER, checkScheduler, type SchedDest, type Scheduler } from '../../host/schedulers/index.js';
import type { EngineLike, EngineLikeOptions } from './engine-like.js';
import { ExpiryQueue } from './expiry.js';
import { ftpPacket, type FtpState, newFtpState } from './ftp.js';
import { FTP_COUNTERS, type FtpCounter } from '../../host/engine/abi.js';
import {
  DEFAULT_TIMEOUTS_MS, DROP_REASONS, drop, type Early, ICMP_CHECKSUM, ICMP_HEADER_LEN, icmpCheck, IP_CHECKSUM,
  IP_DADDR, IP_SADDR, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ipv4Check, l4Check, local, LOCAL_REASONS, pass, PASS_REASONS, readIp,
  replace32, replace32And16, S_CLOSE, S_ESTABLISHED, S_LISTEN, S_NONE, S_TIME_WAIT, sum16, fold, TCP_ACK, TCP_CHECKSUM,
  TCP_FIN, TCP_FLAGS, TCP_RST, TCP_STATE_NAMES, TCP_SYN, tcpNextState, TIMEOUT_UDP, UDP_CHECKSUM, type Ip,
} from './wire.js';

const SLOT_SIZE = 2048; // the Engine's default slot: processPacket refuses larger packets
const EXPIRE_NODEST_DROP = 'dest-gone';

/** A real server's data-plane record (service.ts destSet): counts and flags live here. */
interface DestRecord {
  daddr: number;
  dport: number;
  /** Index of the service it was added to (DEST_SERVICE). */
  service: number;
  available: boolean;
  overload: boolean;
  upper: number;
  lower: number;
  activeConns: number;
  inactConns: number;
  /** Persistence templates holding it (DEST_PERSIST): created, until freed. */
  templates: number;
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
}

/** The host's view of a dest (host/engine.ts DestState): a new one per addDest. */
interface DestState extends SchedDest {
  weight: number;
  lastWeight: number;
  service: ServiceState | undefined; // undefined once deleted
  serviceId: string;
  spec: DestConfig;
  rec: DestRecord;
}

interface ServiceState {
  index: number;
  spec: ServiceConfig;
  proto: number;
  vaddr: number;
  scheduler: Scheduler;
  /** IPVS list order: newest first. */
  dests: DestState[];
}

/** A connection, or a persistence template (template: caddr is the client network, cport 0). */
export interface Conn {
  template: boolean;
  proto: number;
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  daddr: number;
  dport: number;
  state: number;
  /** Counted in its dest's inactConns (else activeConns). */
  inactive: boolean;
  dest: DestRecord;
  expires: number;
  /** The expiry queue's time for it (<= expires: a later expiry re-arms lazily). */
  armed: number | undefined;
  /** In the Map (a packet or a new connection can find it). */
  hashed: boolean;
  freed: boolean;
  /** The template that scheduled it; for a template, how many connections it controls. */
  control: Conn | undefined;
  nControl: number;
  /** A template's own timeout in ms, as IPVS's cp->timeout (0 for a connection). */
  timeout: number;
  /** An FTP control connection's helper state (assembly/ftp.ts). */
  ftp?: FtpState;
  /** A passive FTP data connection whose client port is not known yet (indexed with 0). */
  noCport?: boolean;
  /** Released while it still controlled data connections: freed with the last of them. */
  zombie?: boolean;
}

const key = (proto: number, saddr: number, sport: number, daddr: number, dport: number) =>
  `${proto}:${saddr}:${sport}:${daddr}:${dport}`;
const serviceId = (protocol: Protocol, vaddr: number, vport: number) => `${protocol}:${vaddr}:${vport}`;
const isOpeningSyn = (flags: number) => (flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) === TCP_SYN;

export class ReferenceEngine implements EngineLike {
  readonly connCapacity: number;
  /** Both tuples of every live connection -> the connection and the direction. */
  private readonly flows = new Map<string, { conn: Conn; reply: boolean }>();
  /** Persistence templates by (proto, client network, vaddr, vport). */
  private readonly templates = new Map<string, Conn>();
  private readonly queue = new ExpiryQueue<Conn>();
  private records = 0; // connections and templates, as the data plane counts its records
  private liveConns = 0;
  private readonly timeouts = [...DEFAULT_TIMEOUTS_MS];
  private expireNodestConn = false;
  private readonly services = new Map<string, ServiceState>();
  private readonly servicesByIndex: (ServiceState | undefined)[] = [];
  private readonly vips = new Map<number, number>(); // vaddr -> services on it
  private readonly destsByIndex: (DestState | undefined)[] = [];
  private readonly destRecords: (DestRecord | undefined)[] = [];
  private readonly destAddrs = new Map<number, number>(); // daddr -> dest records holding it
  private readonly count = { forwardIn: 0, forwardOut: 0, connsCreated: 0, connsExpired: 0, connsReused: 0 };
  private readonly drops = new Map<string, number>();
  private readonly passes = new Map<string, number>();
  private readonly locals = new Map<string, number>();
  private readonly ftpPorts: Set<number>;
  private readonly ftpCounts = new Map<FtpCounter, number>();
  private noCportConns = 0;
  private readonly ftpSessions: number;
  private ftpBound = 0;
  /** The data plane's wheel hand: expiry has run up to here. */
  private hand: number | undefined;
  private lastNow = 0;
  private maxNow: number | undefined;

  constructor(options: EngineLikeOptions = {}) {
    this.connCapacity = options.connCapacity ?? 1 << 20;
    this.ftpPorts = new Set(options.ftpPorts ?? [21]);
    this.ftpSessions = options.ftpSessions ?? Math.min(this.connCapacity, 65536);
    this.setTimeouts(options.timeouts ?? {});
    this.setExpireNodestConn(options.expireNodestConn ?? false);
  }

  // ---- configuration (host/engine.ts) ---------------------------------------------------------

  restore(text: string): void {
    for (const rule of parseRules(text).services) {
      this.addService(rule);
      for (const d of rule.dests) this.addDest(rule, d);
    }
  }

  addService(spec: ServiceSpec): void {
    const s = normalizeService(spec);
    const vaddr = parseIPv4(s.vaddr);
    const id = serviceId(s.protocol, vaddr, s.vport);
    if (this.services.has(id)) throw new WasmvsError('WASMVS_SERVICE_EXISTS', `Service already exists: ${s.protocol} ${s.vaddr}:${s.vport}`);
    let index = this.servicesByIndex.findIndex((x) => x === undefined);
    if (index < 0) index = this.servicesByIndex.length;
    const svc: ServiceState = {
      index, spec: s, proto: protocolNumber(s.protocol), vaddr, dests: [],
      scheduler: createScheduler(s.scheduler, s.schedFlags ?? [], { now: this.maxNow ?? this.lastNow }),
    };
    this.services.set(id, svc);
    this.servicesByIndex[index] = svc;
    this.vips.set(vaddr, (this.vips.get(vaddr) ?? 0) + 1);
  }

  editService(spec: ServiceSpec): void {
    const s = normalizeService(spec);
    const svc = this.findService(s);
    if (s.scheduler !== svc.spec.scheduler || (s.schedFlags ?? []).join(',') !== (svc.spec.schedFlags ?? []).join(',')) {
      svc.scheduler = createScheduler(s.scheduler, s.schedFlags ?? [], { now: this.maxNow ?? this.lastNow });
      if (svc.dests.length > 0) svc.scheduler.destsChanged(svc.dests, { kind: 'add', dest: svc.dests[0] });
    }
    svc.spec = s;
  }

  delService(key: ServiceKey): void {
    const svc = this.findService(key);
    for (const d of svc.dests) this.retireDest(d);
    svc.dests = [];
    this.services.delete(serviceId(svc.spec.protocol, svc.vaddr, svc.spec.vport));
    this.servicesByIndex[svc.index] = undefined;
    const n = (this.vips.get(svc.vaddr) ?? 0) - 1;
    if (n > 0) this.vips.set(svc.vaddr, n);
    else this.vips.delete(svc.vaddr);
  }

  addDest(key: ServiceKey, dest: DestSpec): void {
    const svc = this.findService(key);
    const d = normalizeDest(dest, svc.spec.vport);
    const daddr = parseIPv4(d.daddr);
    if (svc.dests.some((x) => x.daddr === daddr && x.dport === d.dport)) throw new WasmvsError('WASMVS_DEST_EXISTS', `Destination already exists: ${d.daddr}:${d.dport}`);
    // allocDest: a deleted dest of the same server and service is revived with its record
    // (as IPVS's dest trash); else a free slot, or a deleted one whose connections are gone.
    const id = serviceId(svc.spec.protocol, svc.vaddr, svc.spec.vport);
    let index = -1;
    let reclaim = -1;
    for (let i = 0; i < this.destsByIndex.length && index < 0; i++) {
      const old = this.destsByIndex[i];
      if (!old) { if (reclaim < 0) reclaim = i; continue; }
      if (old.service) continue;
      if (old.serviceId === id && old.daddr === daddr && old.dport === d.dport) index = i;
      else if (reclaim < 0 && old.activeConns + old.inactConns === 0) reclaim = i;
    }
    if (index < 0 && reclaim >= 0) {
      index = reclaim;
      this.destReset(index);
    }
    if (index < 0) index = this.destsByIndex.length;
    const rec = this.destSet(index, svc.index, daddr, d.dport, d.upperThreshold ?? 0, d.lowerThreshold ?? 0);
    const state: DestState = {
      index, daddr, dport: d.dport, weight: d.weight, lastWeight: d.weight, service: svc, serviceId: id, spec: d, rec,
      get activeConns() { return rec.activeConns; },
      get inactConns() { return rec.inactConns; },
      get overloaded() { return rec.overload; },
    };
    this.destsByIndex[index] = state;
    svc.dests.unshift(state); // newest first, as list_add_rcu
    svc.scheduler.destsChanged(svc.dests, { kind: 'add', dest: state });
  }

  editDest(key: ServiceKey, dest: DestSpec): void {
    const svc = this.findService(key);
    const d = normalizeDest(dest, svc.spec.vport);
    const daddr = parseIPv4(d.daddr);
    const state = svc.dests.find((x) => x.daddr === daddr && x.dport === d.dport);
    if (!state) throw new WasmvsError('WASMVS_NO_DEST', `No such destination: ${d.daddr}:${d.dport}`);
    state.weight = d.weight;
    if (d.weight > 0) state.lastWeight = d.weight;
    state.spec = d;
    this.destSet(state.index, svc.index, daddr, d.dport, d.upperThreshold ?? 0, d.lowerThreshold ?? 0);
    svc.scheduler.destsChanged(svc.dests, { kind: 'edit', dest: state });
  }

  delDest(key: ServiceKey, dest: DestKey): void {
    const svc = this.findService(key);
    const daddr = parseIPv4(dest.daddr);
    const dport = checkPort(dest.dport, 'real server port') || svc.spec.vport;
    const state = svc.dests.find((x) => x.daddr === daddr && x.dport === dport);
    if (!state) throw new WasmvsError('WASMVS_NO_DEST', `No such destination: ${dest.daddr}:${dest.dport}`);
    svc.dests = svc.dests.filter((x) => x !== state);
    svc.scheduler.destsChanged(svc.dests, { kind: 'del', dest: state });
    this.retireDest(state);
  }

  setTimeouts(t: Partial<Timeouts>): void {
    // As ipvsadm --set: 0 (or absent) leaves a value alone.
    if (t.tcp) this.timeouts[S_ESTABLISHED] = t.tcp * 1000;
    if (t.tcpfin) this.timeouts[4] = t.tcpfin * 1000;
    if (t.udp) this.timeouts[TIMEOUT_UDP] = t.udp * 1000;
  }

  setExpireNodestConn(on: boolean): void {
    this.expireNodestConn = on;
  }

  /** service.ts destSet: (re)defines a record; an edit keeps its counts and its overload
   * unless the upper threshold is gone or raised (__ip_vs_update_dest). */
  private destSet(index: number, service: number, daddr: number, dport: number, upper: number, lower: number): DestRecord {
    let rec = this.destRecords[index];
    if (rec) this.addrRef(rec.daddr, -1);
    else {
      rec = {
        daddr, dport, service, available: true, overload: false, upper: 0, lower: 0,
        activeConns: 0, inactConns: 0, templates: 0, conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0,
      };
      this.destRecords[index] = rec;
    }
    if (upper === 0 || upper > rec.upper) rec.overload = false;
    Object.assign(rec, { daddr, dport, service, upper, lower, available: true });
    this.addrRef(daddr, 1);
    return rec;
  }

  /** service.ts destReset: the record is forgotten. A fresh object replaces it, so a template
   * still holding the old one sees a dest that is gone, as IPVS's template holds its dest. */
  private destReset(index: number): void {
    const rec = this.destRecords[index];
    if (rec) this.addrRef(rec.daddr, -1);
    this.destRecords[index] = undefined;
    this.destsByIndex[index] = undefined;
  }

  private retireDest(d: DestState): void {
    d.service = undefined;
    d.rec.available = false; // destRetire: its address stays a real server's until reset
  }

  private addrRef(addr: number, delta: number): void {
    const n = (this.destAddrs.get(addr) ?? 0) + delta;
    if (n > 0) this.destAddrs.set(addr, n);
    else this.destAddrs.delete(addr);
  }

  private findService(k: ServiceKey): ServiceState {
    const protocol = parseProtocol(k.protocol);
    const svc = this.services.get(serviceId(protocol, parseIPv4(k.vaddr), k.vport));
    if (!svc) throw new WasmvsError('WASMVS_NO_SERVICE', `No such service: ${protocol} ${k.vaddr}:${k.vport}`);
    return svc;
  }

  /** service.ts serviceFind: the exact port, else a port-zero (persistent, all ports) service. */
  private serviceFind(proto: number, vaddr: number, vport: number): ServiceState | undefined {
    const protocol: Protocol = proto === IPPROTO_TCP ? 'tcp' : 'udp';
    return this.services.get(serviceId(protocol, vaddr, vport)) ?? (vport !== 0 ? this.services.get(serviceId(protocol, vaddr, 0)) : undefined);
  }

  // ---- the packet path -------------------------------------------------------------------------

  processPacket(packet: Uint8Array, now: number, l3Offset = 0): PacketResult {
    if (packet.length > SLOT_SIZE) throw new WasmvsError('WASMVS_RING_SLOT', `packet of ${packet.length} bytes does not fit a ${SLOT_SIZE}-byte slot`);
    const t = this.clock(now);
    this.expireDue(t); // host/engine.ts processPacket expires first
    const bytes = packet.slice();
    const out: Outcome = { verdict: 'drop', newConnection: false, reply: false };
    const early = this.validate(bytes, l3Offset);
    if (early) this.finish(out, early);
    else this.handle(bytes, new DataView(bytes.buffer), readIp(new DataView(bytes.buffer), l3Offset), t, out, l3Offset);
    return {
      verdict: out.verdict,
      ...(out.reason ? { reason: out.reason } : {}),
      packet: out.packet ?? bytes,
      newConnection: out.newConnection,
      reply: out.reply,
    } as PacketResult;
  }

  private finish(out: Outcome, e: Early): void {
    out.verdict = e.verdict;
    out.reason = e.reason;
    const counts = e.verdict === 'drop' ? this.drops : e.verdict === 'local' ? this.locals : this.passes;
    counts.set(e.reason, (counts.get(e.reason) ?? 0) + 1);
  }

  /** validate (and parseSlot's slot check): the final outcome of an unsound or foreign packet. */
  private validate(bytes: Uint8Array, l3: number): Early | undefined {
    if (l3 >= bytes.length) return drop('bad-slot');
    const v = new DataView(bytes.buffer);
    if (bytes[l3] >> 4 === 6) return pass('not-ipv4');
    const bad = ipv4Check(bytes, v, l3, bytes.length - l3);
    if (bad) return drop(bad);
    const ip = readIp(v, l3);
    if (ip.protocol !== IPPROTO_TCP && ip.protocol !== IPPROTO_UDP && ip.protocol !== IPPROTO_ICMP) {
      if (!this.vips.has(ip.daddr)) return pass('protocol');
      return ip.laterFragment ? drop('fragment') : local('protocol');
    }
    if (ip.laterFragment) {
      // No ports without reassembly: drop what could be ours, let transit pass.
      return this.vips.has(ip.daddr) || this.destAddrs.has(ip.saddr) ? drop('fragment') : pass('no-match');
    }
    const l4 = l3 + ip.hlen;
    if (ip.protocol === IPPROTO_ICMP) return icmpCheck(bytes, v, l4, ip.total - ip.hlen, this.vips.has(ip.daddr));
    const badL4 = l4Check(v, ip, l4, ip.total - ip.hlen);
    return badL4 ? drop(badL4) : undefined;
  }

  /** handle: look up the connection and forward, or open one, or refuse. */
  private handle(bytes: Uint8Array, v: DataView, ip: Ip, now: number, out: Outcome, l3: number): void {
    if (ip.protocol === IPPROTO_ICMP) return this.translateIcmp(bytes, v, ip, now, out);
    const l4 = ip.l3 + ip.hlen;
    const isTcp = ip.protocol === IPPROTO_TCP;
    const sport = v.getUint16(l4);
    const dport = v.getUint16(l4 + 2);
    const flags = isTcp ? v.getUint8(l4 + TCP_FLAGS) : 0;
    let found = this.flows.get(key(ip.protocol, ip.saddr, sport, ip.daddr, dport));
    if (!found && isTcp && this.noCportConns > 0) found = this.fillCport(ip.saddr, sport, ip.daddr, dport);
    if (found) {
      const c = found.conn;
      if (now - c.expires >= 0 && c.nControl === 0) {
        this.release(c, 'expired'); // due, not yet reached by expiry: gone for this packet
      } else if (!found.reply && this.expireNodestConn && !c.dest.available) {
        // expire_nodest_conn (ip_vs_in): the server was deleted; an opening SYN is scheduled afresh.
        this.release(c, 'expired');
        if (!(isTcp && isOpeningSyn(flags))) return this.finish(out, drop(EXPIRE_NODEST_DROP));
      } else if (isTcp && !found.reply && isOpeningSyn(flags) && (c.state === S_TIME_WAIT || c.state === S_CLOSE)) {
        this.release(c, 'reused'); // conn_reuse_mode=1
      } else {
        return this.forward(c, found.reply, bytes, v, ip, flags, now, out, l3);
      }
    }
    const svc = this.serviceFind(ip.protocol, ip.daddr, dport);
    if (!svc) return this.finish(out, this.vips.has(ip.daddr) ? local('no-service') : pass('no-match'));
    if (isTcp && !isOpeningSyn(flags)) return this.finish(out, drop('no-conn'));
    this.openConnection(svc, bytes, v, ip, sport, dport, flags, now, out);
  }

  /** forward: NAT rewrite, accounting, TCP state and timer. */
  private forward(c: Conn, reply: boolean, bytes: Uint8Array, v: DataView, ip: Ip, flags: number, now: number, out: Outcome, l3: number): void {
    const l4 = ip.l3 + ip.hlen;
    const isTcp = ip.protocol === IPPROTO_TCP;
    if (reply) {
      rewrite(v, ip.l3, l4, isTcp, false, c.daddr, c.vaddr, c.dport, c.vport);
      this.accountReply(c.dest, ip.total, out);
    } else {
      rewrite(v, ip.l3, l4, isTcp, true, c.vaddr, c.daddr, c.vport, c.dport);
      this.accountRequest(c.dest, ip.total);
    }
    if (c.ftp) out.packet = this.ftpHelper(c, reply, bytes, l3, now);
    if (isTcp) this.setState(c, tcpNextState(c.state, flags, reply));
    this.timerSet(c, now + this.timeouts[isTcp ? c.state : TIMEOUT_UDP]);
    out.verdict = 'forward';
  }

  private accountRequest(d: DestRecord, bytes: number): void {
    d.inPkts++; d.inBytes += bytes;
    this.count.forwardIn++;
  }

  private accountReply(d: DestRecord, bytes: number, out: Outcome): void {
    d.outPkts++; d.outBytes += bytes;
    this.count.forwardOut++;
    out.reply = true;
  }

  /** connSetState: ActiveConn counts ESTABLISHED only (set_tcp_state). */
  private setState(c: Conn, state: number): void {
    if (c.state === state) return;
    c.state = state;
    if (!c.inactive && state !== S_ESTABLISHED) {
      c.dest.activeConns--; c.dest.inactConns++; c.inactive = true;
    } else if (c.inactive && state === S_ESTABLISHED) {
      c.dest.activeConns++; c.dest.inactConns--; c.inactive = false;
    }
  }

  /** openConnection: capacity, persistence template, scheduler, tuple clash, record, forward. */
  private openConnection(svc: ServiceState, bytes: Uint8Array, v: DataView, ip: Ip, sport: number, dport: number, flags: number, now: number, out: Outcome): void {
    const { protocol: proto, saddr, daddr } = ip;
    const persistent = svc.spec.persistence !== undefined;
    // Table-full checks come before scheduling: the scheduler is asked exactly as often.
    if (this.connCapacity - this.records < 1) return this.finish(out, drop('table-full'));
    let dest: DestRecord | undefined;
    let template: Conn | undefined;
    const netmask = svc.spec.netmask === undefined ? 0xffffffff : parseIPv4(svc.spec.netmask);
    const tkey = key(proto, (saddr & netmask) >>> 0, 0, daddr, svc.spec.vport);
    if (persistent) {
      template = this.templateFind(tkey, now);
      if (template) dest = template.dest;
      // A client without a template needs a record for one as well as for the connection.
      else if (this.connCapacity - this.records < 2) return this.finish(out, drop('table-full'));
    }
    if (!dest) {
      let picked;
      try {
        picked = svc.scheduler.schedule({ saddr, sport, daddr, dport, now: this.maxNow ?? this.lastNow });
      } catch {
        // As host/engine/engine.ts schedule(): the packet is dropped, the batch goes on.
        return this.finish(out, drop('scheduler-error'));
      }
      const rec = picked ? this.destRecords[picked.index] : undefined;
      if (!rec || !rec.available) return this.finish(out, drop('no-dest'));
      dest = rec;
    }
    const rport = dest.dport || dport; // a real server without a port keeps the service's port
    // The reply tuple must be free too, or replies would reach another connection.
    const clash = this.flows.get(key(proto, dest.daddr, rport, saddr, sport));
    if (clash) {
      if (clash.conn.expires - now > 0) return this.finish(out, drop('tuple-clash'));
      this.release(clash.conn, 'expired');
    }
    const ptimeout = (svc.spec.persistence ?? 0) * 1000;
    if (persistent) {
      if (!template) template = this.templateCreate(tkey, proto, (saddr & netmask) >>> 0, daddr, svc.spec.vport, dest, now, ptimeout);
      else this.timerSet(template, now + template.timeout); // each use restarts it
    }
    const c: Conn = {
      template: false, proto, caddr: saddr, cport: sport, vaddr: daddr, vport: dport, daddr: dest.daddr, dport: rport,
      state: proto === IPPROTO_TCP ? S_NONE : 0, inactive: true, dest, expires: now, armed: undefined,
      hashed: true, freed: false, control: template, nControl: 0, timeout: 0,
    };
    if (template) template.nControl++;
    this.records++;
    this.flows.set(key(proto, saddr, sport, daddr, dport), { conn: c, reply: false });
    const replyKey = key(proto, c.daddr, c.dport, saddr, sport);
    if (!this.flows.has(replyKey)) this.flows.set(replyKey, { conn: c, reply: true });
    this.liveConns++;
    // New connections count as inactive until ESTABLISHED (UDP stays inactive).
    dest.inactConns++;
    updateOverload(dest, true);
    dest.conns++;
    this.count.connsCreated++;
    out.newConnection = true;
    // The FTP helper binds by the connection's virtual port (ip_vs_bind_app).
    if (proto === IPPROTO_TCP && this.ftpPorts.has(dport)) {
      if (this.ftpBound < this.ftpSessions) { c.ftp = newFtpState(); this.ftpBound++; } else this.ftpCounts.set('sessions-full', (this.ftpCounts.get('sessions-full') ?? 0) + 1);
    }
    this.forward(c, false, bytes, v, ip, flags, now, out, ip.l3);
    // One-packet scheduling (-o, UDP): the connection lives for this datagram only.
    if (proto === IPPROTO_UDP && svc.spec.onePacket) this.release(c, 'expired');
  }

  /** connRelease: out of the Map and the queue, off its dest's counts and its template's. */
  private release(c: Conn, why: 'expired' | 'reused'): void {
    if (c.template) return this.templateRelease(c);
    this.unhash(c);
    if (c.ftp) { c.ftp = undefined; this.ftpBound--; }
    if (c.noCport) { c.noCport = false; this.noCportConns--; }
    c.freed = true;
    if (c.inactive) c.dest.inactConns--;
    else c.dest.activeConns--;
    updateOverload(c.dest, false);
    if (why === 'reused') this.count.connsReused++;
    else this.count.connsExpired++;
    // Still controls FTP data connections: its record goes with the last of them.
    if (c.nControl > 0) { c.zombie = true; return; }
    this.records--;
    if (c.control) this.controlDetach(c.control);
  }

  /** controlDetach: a template already out of the Map, or a zombie, goes with its last one. */
  private controlDetach(t: Conn): void {
    t.nControl--;
    if (t.template) {
      if (t.nControl === 0 && !t.hashed) this.templateRelease(t);
    } else if (t.nControl === 0 && t.zombie) {
      t.zombie = false;
      this.records--;
      if (t.control) this.controlDetach(t.control);
    }
  }

  // ---- the FTP helper (assembly/ftp.ts; the parsing is ./ftp.ts) -------------------------------

  private ftpHelper(c: Conn, reply: boolean, bytes: Uint8Array, l3: number, now: number): Uint8Array {
    return ftpPacket({
      dataConn: (caddr, cport, vport, daddr, dport, passive) => this.dataConn(c, caddr, cport, vport, daddr, dport, passive, now),
      note: (what) => { this.ftpCounts.set(what, (this.ftpCounts.get(what) ?? 0) + 1); },
    }, { caddr: c.caddr, vaddr: c.vaddr, daddr: c.daddr, vport: c.vport, dport: c.dport, established: c.state === S_ESTABLISHED },
    c.ftp!, reply, bytes, l3, SLOT_SIZE - l3);
  }

  /** dataConn: a data connection controlled by `ctrl`, state LISTEN; an existing one is kept. */
  private dataConn(ctrl: Conn, caddr: number, cport: number, vport: number, daddr: number, dport: number, passive: boolean, now: number): void {
    const note = (what: FtpCounter) => this.ftpCounts.set(what, (this.ftpCounts.get(what) ?? 0) + 1);
    if (this.connCapacity - this.records < 1) return void note('table-full');
    const seen = this.flows.get(key(IPPROTO_TCP, caddr, cport, ctrl.vaddr, vport));
    if (seen) {
      if (seen.conn.expires - now > 0) return void (seen.reply ? note('clash') : undefined);
      this.release(seen.conn, 'expired');
    }
    const clash = this.flows.get(key(IPPROTO_TCP, daddr, dport, caddr, cport));
    if (clash) {
      if (clash.conn.expires - now > 0) return void note('clash');
      this.release(clash.conn, 'expired');
    }
    const c: Conn = {
      template: false, proto: IPPROTO_TCP, caddr, cport, vaddr: ctrl.vaddr, vport, daddr, dport, state: S_LISTEN,
      inactive: true, dest: ctrl.dest, expires: now, armed: undefined, hashed: true, freed: false, control: ctrl,
      nControl: 0, timeout: 0, ...(passive ? { noCport: true } : {}),
    };
    this.hashConn(c);
    ctrl.nControl++;
    if (passive) this.noCportConns++;
    this.records++;
    c.dest.inactConns++;
    updateOverload(c.dest, true);
    this.count.connsCreated++;
    this.timerSet(c, now + this.timeouts[S_LISTEN]);
    note(passive ? 'passive' : 'active');
  }

  private hashConn(c: Conn): void {
    c.hashed = true;
    this.flows.set(key(c.proto, c.caddr, c.cport, c.vaddr, c.vport), { conn: c, reply: false });
    const replyKey = key(c.proto, c.daddr, c.dport, c.caddr, c.cport);
    if (!this.flows.has(replyKey)) this.flows.set(replyKey, { conn: c, reply: true });
    this.liveConns++;
  }

  /** ftpFillCport: the first packet of a passive data connection gives it its client port. */
  private fillCport(saddr: number, sport: number, daddr: number, dport: number): { conn: Conn; reply: boolean } | undefined {
    const f = this.flows.get(key(IPPROTO_TCP, saddr, 0, daddr, dport));
    if (!f || f.reply || !f.conn.noCport) return undefined;
    const c = f.conn;
    this.unhash(c);
    c.cport = sport;
    c.noCport = false;
    this.noCportConns--;
    this.hashConn(c);
    return { conn: c, reply: false };
  }

  private unhash(c: Conn): void {
    if (!c.hashed) return;
    c.hashed = false;
    if (c.template) {
      this.templates.delete(key(c.proto, c.caddr, 0, c.vaddr, c.vport));
      return;
    }
    const req = key(c.proto, c.caddr, c.cport, c.vaddr, c.vport);
    const rep = key(c.proto, c.daddr, c.dport, c.caddr, c.cport);
    if (this.flows.get(req)?.conn === c) this.flows.delete(req);
    if (this.flows.get(rep)?.conn === c) this.flows.delete(rep);
    this.liveConns--;
  }

  // ---- persistence templates (ip_vs_sched_persist, ip_vs_check_template) -----------------------

  private templateRelease(t: Conn): void {
    this.unhash(t);
    t.freed = true;
    t.dest.templates--;
    this.records--;
  }

  /** templateFind: the client's template, unless its server is gone, or it is due and idle. */
  private templateFind(tkey: string, now: number): Conn | undefined {
    const t = this.templates.get(tkey);
    if (!t) return undefined;
    if (!t.dest.available || (now - t.expires >= 0 && t.nControl === 0)) {
      this.unhash(t); // out of the way of a new template; freed with its last connection
      if (t.nControl === 0) this.templateRelease(t);
      return undefined;
    }
    return t;
  }

  private templateCreate(tkey: string, proto: number, caddr: number, vaddr: number, vport: number, dest: DestRecord, now: number, timeout: number): Conn {
    const t: Conn = {
      template: true, proto, caddr, cport: 0, vaddr, vport, daddr: dest.daddr, dport: dest.dport, state: 0,
      inactive: false, dest, expires: now + timeout, armed: undefined, hashed: true, freed: false, control: undefined,
      nControl: 0, timeout,
    };
    this.records++;
    dest.templates++;
    this.templates.set(tkey, t);
    this.timerSet(t, t.expires);
    return t;
  }

  // ---- ICMP errors (translateIcmp: ip_vs_in_icmp, ip_vs_out_icmp, ip_vs_nat_icmp) --------------

  private translateIcmp(bytes: Uint8Array, v: DataView, ip: Ip, now: number, out: Outcome): void {
    const m = ip.l3 + ip.hlen;
    const mlen = ip.total - ip.hlen;
    const q = readIp(v, m + ICMP_HEADER_LEN);
    const ql4 = q.l3 + q.hlen;
    const qsport = v.getUint16(ql4);
    const qdport = v.getUint16(ql4 + 2);
    // The quoted packet left the director; the packet it answered came in reversed.
    let found = this.flows.get(key(q.protocol, q.daddr, qdport, q.saddr, qsport));
    if (found && now - found.conn.expires >= 0) {
      this.release(found.conn, 'expired');
      found = undefined;
    }
    if (!found) {
      const ours = this.vips.has(q.saddr) || this.destAddrs.has(q.daddr);
      return this.finish(out, ours ? drop('icmp-no-conn') : pass('no-match'));
    }
    const c = found.conn;
    const isTcp = q.protocol === IPPROTO_TCP;
    // The quote holds at least the ports; the TCP checksum only if 18 bytes of TCP are quoted.
    const hasCheck = isTcp ? mlen - ICMP_HEADER_LEN - q.hlen >= TCP_CHECKSUM + 2 : true;
    if (found.reply) {
      // The quote is client -> real server as we sent it: back to the client, from the VIP.
      rewrite(v, q.l3, ql4, isTcp, true, c.daddr, c.vaddr, c.dport, c.vport, hasCheck);
      setAddr(v, ip.l3, IP_SADDR, c.vaddr);
      this.accountReply(c.dest, ip.total, out);
    } else {
      // The quote is VIP -> client as we sent it: to the real server.
      rewrite(v, q.l3, ql4, isTcp, false, c.vaddr, c.daddr, c.vport, c.dport, hasCheck);
      setAddr(v, ip.l3, IP_DADDR, c.daddr);
      this.accountRequest(c.dest, ip.total);
    }
    // The message changed: its checksum is recomputed in full. The timer is not touched.
    v.setUint16(m + ICMP_CHECKSUM, 0);
    v.setUint16(m + ICMP_CHECKSUM, ~fold(sum16(bytes, m, mlen)) & 0xffff);
    out.verdict = 'forward';
  }

  // ---- expiry (timer.ts wheelRun, nat.ts expireOne/templateExpire) ----------------------------

  /** timerSet: a later expiry is only stored (re-armed lazily); an earlier one re-arms now. */
  private timerSet(c: Conn, expires: number): void {
    c.expires = expires;
    if (c.armed === undefined || expires < c.armed) {
      c.armed = expires;
      this.queue.push(expires, c);
    }
  }

  /** Everything due by `now` goes, in expiry-time order as IPVS's per-connection timers fire:
   * connections released; at equal times templates after connections (a template whose last
   * connection ends as it falls due goes too); a template still controlling connections is
   * re-armed at its due time + its own timeout, and may fall due again before `now`. */
  private expireDue(now: number): void {
    if (this.hand !== undefined && now <= this.hand) return; // the wheel never turns back
    this.hand = now;
    for (;;) {
      const batch = this.queue.popUntil(now);
      if (batch.length === 0) return;
      const due: Conn[] = [];
      for (const { at, item } of batch) {
        if (item.freed || item.armed !== at) continue; // stale: released, or re-armed earlier
        item.armed = undefined;
        if (item.expires - now <= 0) due.push(item);
        else this.timerSet(item, item.expires);
      }
      // At equal times: connections, then FTP control connections that control some, then
      // templates (each goes with the last of the connections it controls).
      const rank = (c: Conn) => (c.template ? 2 : c.nControl > 0 ? 1 : 0);
      due.sort((a, b) => a.expires - b.expires || rank(a) - rank(b));
      // One tick at a time: a template re-armed within the gap must be seen in its turn.
      const tick = due.length > 0 ? due[0].expires : undefined;
      for (const c of due) {
        if (c.expires !== tick) { this.timerSet(c, c.expires); continue; }
        if (c.freed) continue; // a template that went with its last connection
        if (!c.template && c.nControl !== 0) this.timerSet(c, c.expires + this.timeouts[c.proto === IPPROTO_TCP ? c.state : TIMEOUT_UDP]);
        else if (!c.template) this.release(c, 'expired');
        else if (c.nControl !== 0) this.timerSet(c, c.expires + c.timeout);
        else this.templateRelease(c);
      }
    }
  }

  expire(now: number): void {
    this.expireDue(this.clock(now));
  }

  private clock(now: number): number {
    const t = Math.floor(now);
    this.lastNow = t;
    if (this.maxNow === undefined || t > this.maxNow) this.maxNow = t;
    return t;
  }

  // ---- observation ---------------------------------------------------------------------------

  connections(now?: number): ConnInfo[] {
    const t = now === undefined ? this.lastNow : this.clock(now);
    const out: ConnInfo[] = [];
    const info = (c: Conn, state: string, left: number): ConnInfo => ({
      protocol: c.proto === IPPROTO_TCP ? 'tcp' : 'udp',
      caddr: formatIPv4(c.caddr), cport: c.cport, vaddr: formatIPv4(c.vaddr), vport: c.vport,
      daddr: formatIPv4(c.daddr), dport: c.dport, state, expiresIn: Math.max(left, 0),
    });
    for (const { conn: c, reply } of this.flows.values()) {
      if (reply) continue;
      const left = c.expires - t;
      // An FTP control connection past its time lives on while its data connections do.
      if (left > 0 || c.nControl > 0) out.push(info(c, c.proto === IPPROTO_UDP ? 'UDP' : TCP_STATE_NAMES[c.state], left));
    }
    // ipvsadm shows a template as a connection in state NONE (UDP: UDP) with client port 0.
    for (const c of this.templates.values()) out.push({ ...info(c, c.proto === IPPROTO_UDP ? 'UDP' : 'NONE', c.expires - t), template: true });
    return out;
  }

  counters(): Counters {
    const drops = Object.fromEntries(DROP_REASONS.filter((n) => n).map((n) => [n, this.drops.get(n) ?? 0])) as Counters['drops'];
    const passes = Object.fromEntries(PASS_REASONS.filter((n) => n).map((n) => [n, this.passes.get(n) ?? 0])) as Counters['passes'];
    const drop = Object.values(drops).reduce((a, b) => a + b, 0);
    const pass = Object.values(passes).reduce((a, b) => a + b, 0);
    const locals = Object.fromEntries(LOCAL_REASONS.filter((n) => n).map((n) => [n, this.locals.get(n) ?? 0])) as Counters['locals'];
    const localCount = Object.values(locals).reduce((a, b) => a + b, 0);
    return {
      packets: this.count.forwardIn + this.count.forwardOut + pass + drop + localCount,
      ...this.count,
      pass,
      drop,
      local: localCount,
      eventsLost: 0,
      liveConns: this.liveConns,
      drops,
      passes,
      locals,
      ftp: Object.fromEntries(FTP_COUNTERS.filter((n): n is FtpCounter => n !== '').map((n) => [n, this.ftpCounts.get(n) ?? 0])) as Counters['ftp'],
    };
  }

  listServices(): ServiceInfo[] {
    return this.servicesByIndex.filter((s): s is ServiceState => s !== undefined).map((s) => ({
      ...s.spec,
      dests: s.dests.map((d): DestInfo => ({
        daddr: formatIPv4(d.daddr), dport: d.dport, weight: d.weight,
        activeConns: d.rec.activeConns, inactConns: d.rec.inactConns, persistConns: d.rec.templates,
        upperThreshold: d.spec.upperThreshold ?? 0, lowerThreshold: d.spec.lowerThreshold ?? 0, conns: d.rec.conns,
        inPkts: d.rec.inPkts, outPkts: d.rec.outPkts, inBytes: d.rec.inBytes, outBytes: d.rec.outBytes,
      })),
    }));
  }
}

interface Outcome {
  /** The packet when the FTP helper resized it (new bytes). */
  packet?: Uint8Array;
  verdict: PacketResult['verdict'];
  reason?: PacketResult['reason'];
  newConnection: boolean;
  reply: boolean;
}

/** destUpdateOverload: set at the upper threshold on bind; lifted on unbind below the lower
 * one, or without one below three quarters of the upper (ip_vs_bind_dest/ip_vs_unbind_dest). */
function updateOverload(d: DestRecord, bound: boolean): void {
  const total = d.activeConns + d.inactConns;
  if (bound) {
    if (d.upper !== 0 && total >= d.upper) d.overload = true;
  } else if (d.overload) {
    if (d.lower !== 0 ? total < d.lower : d.upper !== 0 ? total * 4 < d.upper * 3 : true) d.overload = false;
  }
}

function setAddr(v: DataView, l3: number, at: number, to: number): void {
  const from = v.getUint32(l3 + at);
  v.setUint32(l3 + at, to);
  v.setUint16(l3 + IP_CHECKSUM, replace32(v.getUint16(l3 + IP_CHECKSUM), from, to));
}

/** rewrite: one address and one port, both checksums adjusted by difference (RFC 1624). */
function rewrite(v: DataView, l3: number, l4: number, isTcp: boolean, toDest: boolean,
  fromAddr: number, toAddr: number, fromPort: number, toPort: number, hasL4Checksum = true): void {
  setAddr(v, l3, toDest ? IP_DADDR : IP_SADDR, toAddr);
  v.setUint16(l4 + (toDest ? 2 : 0), toPort);
  if (!hasL4Checksum) return; // a quote in an ICMP error may stop before it
  const at = l4 + (isTcp ? TCP_CHECKSUM : UDP_CHECKSUM);
  const check = v.getUint16(at);
  if (isTcp) v.setUint16(at, replace32And16(check, fromAddr, toAddr, fromPort, toPort));
  else if (check !== 0) { // UDP checksum 0 means "none" and stays 0; a computed 0 is sent as ones
    const updated = replace32And16(check, fromAddr, toAddr, fromPort, toPort);
    v.setUint16(at, updated === 0 ? 0xffff : updated);
  }
}

/** host/engine/spec.ts checkServiceSpec, the normal form listServices shows (no validation beyond it). */
function normalizeService(spec: ServiceSpec): ServiceConfig {
  const protocol = parseProtocol(spec.protocol);
  const scheduler = spec.scheduler ?? DEFAULT_SCHEDULER;
  checkScheduler(scheduler, spec.schedFlags ?? []);
  const out: ServiceConfig = { protocol, vaddr: formatIPv4(parseIPv4(spec.vaddr)), vport: checkPort(spec.vport, 'virtual port'), scheduler };
  if (spec.persistence !== undefined) out.persistence = spec.persistence;
  if (spec.netmask !== undefined && parseIPv4(spec.netmask) !== 0xffffffff) out.netmask = formatIPv4(parseIPv4(spec.netmask));
  if (spec.schedFlags !== undefined && spec.schedFlags.length > 0) out.schedFlags = [...spec.schedFlags];
  if (spec.onePacket) out.onePacket = true;
  return out;
}

function normalizeDest(dest: DestSpec, vport: number): DestConfig {
  const out: DestConfig = { daddr: formatIPv4(parseIPv4(dest.daddr)), dport: checkPort(dest.dport ?? 0, 'real server port') || vport, weight: dest.weight ?? 1 };
  if (dest.upperThreshold) out.upperThreshold = dest.upperThreshold;
  if (dest.lowerThreshold) out.lowerThreshold = dest.lowerThreshold;
  return out;
}
