// The benchmark's core, kept apart from scripts/bench.ts (which only parses options, runs the
// figures and prints them) so that test/bench.test.ts can run it at toy size and keep it
// from rotting. Nothing here asserts or judges a timing.
//
// Traffic is the seed's golden example at scale: service TCP 202.103.106.5:80 (wrr) over
// 172.16.0.2:80 (weight 1) and 172.16.0.3:8000 (weight 2), clients 10.0.0.0/16. Packets are
// 60 bytes (20 IP + 20 TCP + 20 payload or SYN options), the size the toolchain probe used.
// Templates come from the test packet kit (test/support/packets.ts); a flow's packets are the
// template with its tuple stamped in and both checksums summed afresh (stamp() below; the
// smoke test checks it byte for byte against the kit building the same packet directly, as
// the kit is far too slow to build millions of packets: ~4 us each).
//
// Feeding the ring (why a copy, and why it is not in the engine figure): a rewritten packet is
// no longer addressed to the VIP (client -> VIP becomes client -> real server; real server ->
// client becomes VIP -> client), so the same slot contents cannot be processed twice, and a
// fixed handful of packets per slot would keep a few thousand flows hot in the cache, which is
// not what 1M live connections look like. So packets stream from a prebuilt pool (one 64-byte
// line per packet, random flows) into the slots, as a TUN reader would deliver them; each
// slot's descriptor is written once up front with writeSlot(), and per batch only the 15 data
// words of each packet are copied back in. Every batch is timed in two parts with
// process.hrtime.bigint(): the copy, and engine.process() alone (the JS wrapper, the WASM
// pass over the batch, the expiry step and the event drain). The engine figure is packets /
// sum of process() time; the copy is reported separately, and copy + process end to end too.
// Timing each call directly (~3 hrtime calls per 256 packets, ~0.5 ns per packet) is more
// exact than subtracting a separate copy-only baseline, which could not see how the copy
// and the engine share the cache. The copy leaves the batch's packets in L1/L2, as a reader
// writing into the ring just before process() would.
import { Engine } from '../host/engine/engine.js';
import { TunedEngine, wire16, wire32 } from './tuned-ts.js';
import { registerScheduler, type SchedDest } from '../host/schedulers/index.js';
import { tcpPacket, type TcpOpts } from '../test/support/packets.js';
import { prng } from '../test/support/dataplane.js';

// ---- traffic --------------------------------------------------------------------------------

export const VIP = '202.103.106.5';
export const VPORT = 80;
/** The seed's service 202.103.106.5:80 (ipvsadm-save text); `scheduler` replaces wrr. */
export function seedRules(scheduler = 'wrr'): string {
  return [
    `-A -t ${VIP}:${VPORT} -s ${scheduler}`,
    `-a -t ${VIP}:${VPORT} -r 172.16.0.2:80 -m -w 1`,
    `-a -t ${VIP}:${VPORT} -r 172.16.0.3:8000 -m -w 2`,
    '',
  ].join('\n');
}
/** The seed's real servers, in the order added (dest record i is DESTS[i] in a fresh engine). */
export const DESTS: ReadonlyArray<{ addr: number; port: number }> = [
  { addr: addr('172.16.0.2'), port: 80 },
  { addr: addr('172.16.0.3'), port: 8000 },
];

export const PACKET_BYTES = 60;
const PACKET_WORDS = PACKET_BYTES / 4;
/** Pool stride: one cache line per packet. */
const POOL_STRIDE_WORDS = 16;

/** "a.b.c.d" -> u32, big-endian reading. */
export function addr(text: string): number {
  const o = text.split('.').map(Number);
  return ((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0;
}

export function formatAddr(a: number): string {
  return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

/** Flow i's client endpoint: 10.0.0.0/16 hosts with 64 source ports each. */
export function clientAddr(i: number): number { return (0x0a000001 + (i >>> 6)) >>> 0; }
export function clientPort(i: number): number { return 40000 + (i & 63); }

export type PacketKind = 'syn' | 'client' | 'server';

/** The kit options of each kind, tuple aside (the smoke test builds the same packets with them). */
export function kindOpts(kind: PacketKind): Omit<TcpOpts, 'src' | 'dst' | 'sport' | 'dport'> {
  const payload = new Uint8Array(20).fill(0x61);
  switch (kind) {
    // MSS 1460, SACK permitted, timestamps, NOP, window scale 7: a Linux SYN's 20 option bytes.
    case 'syn': return {
      flags: 'S', seq: 0x1000, window: 64240, df: true, id: 1,
      tcpOptions: Uint8Array.from([2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]),
    };
    case 'client': return { flags: 'PA', seq: 0x1001, ack: 0x2001, window: 502, df: true, id: 2, payload };
    case 'server': return { flags: 'PA', seq: 0x2001, ack: 0x1015, window: 509, df: true, id: 3, payload };
  }
}

export function template(kind: PacketKind): Uint8Array {
  const t = tcpPacket({ ...kindOpts(kind), src: '0.0.0.0', dst: '0.0.0.0', sport: 0, dport: 0 });
  if (t.length !== PACKET_BYTES || t[0] !== 0x45) throw new Error(`${kind} template is not a ${PACKET_BYTES}-byte IPv4 packet without options`);
  return t;
}

/** Sum of big-endian 16-bit words of b[from, to) (even length), unfolded. */
function wordSum(b: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (b[i] << 8) | b[i + 1];
  return s;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/**
 * Writes `tmpl` at b[at] with the tuple stamped in, and both checksums summed afresh
 * (RFC 1071; the template has no IP options and an even length).
 */
export function stamp(b: Uint8Array, at: number, tmpl: Uint8Array, saddr: number, sport: number, daddr: number, dport: number): void {
  b.set(tmpl, at);
  const put32 = (o: number, v: number) => { b[o] = v >>> 24; b[o + 1] = (v >>> 16) & 255; b[o + 2] = (v >>> 8) & 255; b[o + 3] = v & 255; };
  put32(at + 12, saddr);
  put32(at + 16, daddr);
  b[at + 20] = sport >>> 8; b[at + 21] = sport & 255;
  b[at + 22] = dport >>> 8; b[at + 23] = dport & 255;
  b[at + 10] = 0; b[at + 11] = 0;
  const ip = 0xffff - fold(wordSum(b, at, at + 20));
  b[at + 10] = ip >>> 8; b[at + 11] = ip & 255;
  b[at + 36] = 0; b[at + 37] = 0;
  const segLen = tmpl.length - 20;
  const pseudo = (saddr >>> 16) + (saddr & 0xffff) + (daddr >>> 16) + (daddr & 0xffff) + 6 + segLen;
  const tcp = 0xffff - fold(pseudo + wordSum(b, at + 20, at + tmpl.length));
  b[at + 36] = tcp >>> 8; b[at + 37] = tcp & 255;
}


/** Prebuilt packets, one 64-byte line each. */
export interface Pool {
  words: Uint32Array;
  bytes: Uint8Array;
  count: number;
}

export function newPool(count: number): Pool {
  const words = new Uint32Array(count * POOL_STRIDE_WORDS);
  return { words, bytes: new Uint8Array(words.buffer), count };
}

/** Packet k of a pool (a view). */
export function poolPacket(pool: Pool, k: number): Uint8Array {
  return pool.bytes.subarray(k * POOL_STRIDE_WORDS * 4, k * POOL_STRIDE_WORDS * 4 + PACKET_BYTES);
}

/** Flows [0, n) in order, one packet each, client -> VIP (`syn` or `client` kind). */
export function sequentialPool(kind: 'syn' | 'client', n: number): Pool {
  const pool = newPool(n);
  const t = template(kind);
  const vip = addr(VIP);
  for (let i = 0; i < n; i++) stamp(pool.bytes, i * POOL_STRIDE_WORDS * 4, t, clientAddr(i), clientPort(i), vip, VPORT);
  return pool;
}

/**
 * `count` packets of established flows chosen at random from [0, n) (seeded): even ones
 * client -> VIP, odd ones real server -> client (the server each flow was scheduled to).
 */
export function establishedPool(n: number, destOf: Uint8Array, count: number, seed: number): Pool {
  const pool = newPool(count);
  const cli = template('client');
  const srv = template('server');
  const vip = addr(VIP);
  const rand = prng(seed);
  for (let k = 0; k < count; k++) {
    const f = Math.floor(rand() * n);
    const at = k * POOL_STRIDE_WORDS * 4;
    if ((k & 1) === 0) stamp(pool.bytes, at, cli, clientAddr(f), clientPort(f), vip, VPORT);
    else {
      const d = DESTS[destOf[f]];
      stamp(pool.bytes, at, srv, d.addr, d.port, clientAddr(f), clientPort(f));
    }
  }
  return pool;
}

// ---- the ring -------------------------------------------------------------------------------

/** Engine time: milliseconds of the real clock (monotonic), starting at 1000. */
const EPOCH = process.hrtime.bigint();
export function clockMs(t: bigint = process.hrtime.bigint()): number {
  return Number(t - EPOCH) / 1e6 + 1000;
}

/** What a ring runs over: the WASM Engine, or the tuned TypeScript fast path (same ring shape). */
export interface RingTarget {
  readonly memory: { readonly buffer: ArrayBufferLike };
  readonly slotCount: number;
  slot(i: number): Uint8Array;
  writeSlot(i: number, packet: Uint8Array): void;
  process(start: number, count: number, now: number): number;
}

/** The engine's ring as 32-bit words; descriptors written once, data restored per batch. */
export class Ring {
  readonly mem: Uint32Array;
  readonly bytes: Uint8Array;
  readonly slotWord: Int32Array;
  readonly slotCount: number;
  /** Next slot to fill. */
  pos = 0;

  constructor(readonly engine: RingTarget, first: Pool) {
    this.mem = new Uint32Array(engine.memory.buffer);
    this.bytes = new Uint8Array(engine.memory.buffer);
    this.slotCount = engine.slotCount;
    this.slotWord = new Int32Array(this.slotCount);
    for (let i = 0; i < this.slotCount; i++) {
      const view = engine.slot(i);
      if (view.byteOffset % 4 !== 0) throw new Error(`slot ${i} is not 4-byte aligned`);
      this.slotWord[i] = view.byteOffset >>> 2;
      // Once up front: sets each descriptor (length 60, IPv4 at 0); the copy keeps it valid.
      engine.writeSlot(i, poolPacket(first, i % first.count));
    }
  }

  /** Copies pool packets [from, from + count) (wrapping) into the slots from this.pos. */
  fill(pool: Pool, from: number, count: number): void {
    const mem = this.mem;
    const src = pool.words;
    const slotWord = this.slotWord;
    const slots = this.slotCount;
    const poolCount = pool.count;
    let slot = this.pos;
    let k = from;
    for (let n = 0; n < count; n++) {
      const d = slotWord[slot];
      const s = k * POOL_STRIDE_WORDS;
      mem[d] = src[s]; mem[d + 1] = src[s + 1]; mem[d + 2] = src[s + 2]; mem[d + 3] = src[s + 3];
      mem[d + 4] = src[s + 4]; mem[d + 5] = src[s + 5]; mem[d + 6] = src[s + 6]; mem[d + 7] = src[s + 7];
      mem[d + 8] = src[s + 8]; mem[d + 9] = src[s + 9]; mem[d + 10] = src[s + 10]; mem[d + 11] = src[s + 11];
      mem[d + 12] = src[s + 12]; mem[d + 13] = src[s + 13]; mem[d + 14] = src[s + 14];
      if (++slot === slots) slot = 0;
      if (++k === poolCount) k = 0;
    }
  }

  /** Slot `i`'s packet bytes (a view). */
  packet(i: number): Uint8Array {
    const at = this.slotWord[i] * 4;
    return this.bytes.subarray(at, at + PACKET_BYTES);
  }
}
if (PACKET_WORDS !== 15) throw new Error('Ring.fill copies 15 words per packet');

export interface Timing {
  packets: number;
  forwarded: number;
  /** Sum of engine.process() time. */
  engineNs: number;
  /** Sum of ring-fill copy time. */
  copyNs: number;
  /** Wall time of the whole loop (copy, process, timers). */
  wallNs: number;
}

/**
 * Streams `packets` pool packets from `from` through the ring in batches of `batch`, timing
 * copy and process() separately. `onBatch(start, count)` runs after each process() (untimed).
 */
export function runBatches(ring: Ring, pool: Pool, from: number, packets: number, batch: number,
  onBatch?: (start: number, count: number) => void, batchNs?: number[]): Timing {
  const engine = ring.engine;
  let copyNs = 0n;
  let engineNs = 0n;
  let forwarded = 0;
  let k = from % pool.count;
  const begin = process.hrtime.bigint();
  for (let done = 0; done < packets;) {
    const count = Math.min(batch, packets - done);
    const start = ring.pos;
    const t0 = process.hrtime.bigint();
    ring.fill(pool, k, count);
    const now = clockMs(t0);
    const t1 = process.hrtime.bigint();
    forwarded += engine.process(start, count, now);
    const t2 = process.hrtime.bigint();
    copyNs += t1 - t0;
    engineNs += t2 - t1;
    if (batchNs) batchNs.push(Number(t2 - t1));
    if (onBatch) onBatch(start, count);
    ring.pos = (start + count) % ring.slotCount;
    k = (k + count) % pool.count;
    done += count;
  }
  const wallNs = Number(process.hrtime.bigint() - begin);
  return { packets, forwarded, engineNs: Number(engineNs), copyNs: Number(copyNs), wallNs };
}

/** Throws unless every packet was forwarded (a benchmark of drops would be meaningless). */
export function expectAllForwarded(engine: RingTarget, t: Timing, what: string): void {
  if (t.forwarded !== t.packets) {
    if (!(engine instanceof Engine)) throw new Error(`${what}: ${t.forwarded} of ${t.packets} packets forwarded`);
    const c = engine.counters();
    const reasons = Object.entries({ ...c.drops, ...c.passes }).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ');
    throw new Error(`${what}: ${t.forwarded} of ${t.packets} packets forwarded (${reasons || 'no drop or pass counted'})`);
  }
}

// ---- engines with live flows ----------------------------------------------------------------

export interface FlowEngine {
  engine: Engine;
  ring: Ring;
  /** Real server of flow i, an index into DESTS. */
  destOf: Uint8Array;
}

/**
 * An engine of capacity `capacity` holding flows [0, n) in ESTABLISHED: n SYNs through the
 * ring (the real server each got is read back from the rewritten SYN), then each client's
 * first data segment (SYN_RECV -> ESTABLISHED, as ip_vs_proto_tcp.c's INPUT ack column).
 * `syns` and `clients` are sequential pools of at least n packets.
 */
export function establishFlows(n: number, capacity: number, syns: Pool, clients: Pool, engineOpts: { slotCount?: number; slotSize?: number } = {}): FlowEngine {
  if (syns.count < n || clients.count < n) throw new Error(`pools hold ${syns.count}/${clients.count} packets, ${n} flows need more`);
  const engine = new Engine({ connCapacity: capacity, ...engineOpts });
  engine.restore(seedRules());
  const ring = new Ring(engine, syns);
  const destOf = new Uint8Array(n);
  const destByEndpoint = new Map(DESTS.map((d, i) => [d.addr * 65536 + d.port, i]));
  const batch = ring.slotCount;
  let flow = 0;
  const read = (start: number, count: number) => {
    for (let j = 0; j < count; j++) {
      const p = ring.packet((start + j) % ring.slotCount);
      const daddr = ((p[16] << 24) | (p[17] << 16) | (p[18] << 8) | p[19]) >>> 0;
      const d = destByEndpoint.get(daddr * 65536 + ((p[22] << 8) | p[23]));
      if (d === undefined) throw new Error(`flow ${flow}: SYN rewritten to ${formatAddr(daddr)}, not a real server`);
      destOf[flow++] = d;
    }
  };
  expectAllForwarded(engine, runBatches(ring, syns, 0, n, batch, read), `opening ${n} flows`);
  expectAllForwarded(engine, runBatches(ring, clients, 0, n, batch), `establishing ${n} flows`);
  const live = engine.counters().liveConns;
  if (live !== n) throw new Error(`${n} flows opened but ${live} connections live`);
  return { engine, ring, destOf };
}

// ---- the tuned TypeScript fast path (scripts/tuned-ts.ts) -------------------------------------

/** Flow index of a client endpoint (host order): the inverse of clientAddr/clientPort. */
export function flowOf(saddr: number, sport: number): number {
  return ((saddr - 0x0a000001) << 6) | (sport - 40000);
}

export interface TunedFlows { engine: TunedEngine; ring: Ring }

/**
 * A TunedEngine holding flows [0, n) in ESTABLISHED, built by the same insertions as
 * establishFlows: the same SYNs then client segments through its ring. Each flow goes to the
 * real server `destOf` says (the WASM engine's choice), so both engines rewrite alike.
 */
export function establishTuned(n: number, capacity: number, syns: Pool, clients: Pool, destOf: Uint8Array,
  opts: { slotCount?: number; key?: readonly [number, number, number, number] } = {}): TunedFlows {
  const engine = new TunedEngine({
    connCapacity: capacity, slotCount: opts.slotCount, key: opts.key,
    vaddr: wire32(addr(VIP)), vport: wire16(VPORT),
    dests: DESTS.map((d) => ({ addr: wire32(d.addr), port: wire16(d.port) })),
    schedule: (saddr, sport) => destOf[flowOf(saddr, sport)],
  });
  const ring = new Ring(engine, syns);
  expectAllForwarded(engine, runBatches(ring, syns, 0, n, ring.slotCount), `tuned: opening ${n} flows`);
  expectAllForwarded(engine, runBatches(ring, clients, 0, n, ring.slotCount), `tuned: establishing ${n} flows`);
  const c = engine.counters2();
  if (c.liveConns !== n || c.connsCreated !== n) throw new Error(`tuned: ${n} flows opened but ${c.liveConns} live`);
  return { engine, ring };
}

// ---- the idiomatic reference engine (test/reference/engine.ts) ---------------------------------

/** The part of the reference engine's API the benchmark uses (processPacket, its natural API). */
export interface PacketEngine {
  restore(rules: string): void;
  processPacket(packet: Uint8Array, now: number): { verdict: string; packet: Uint8Array };
  counters(): { liveConns: number };
}
export type PacketEngineCtor = new (options: { connCapacity?: number }) => PacketEngine;

export interface ReferenceFlows {
  engine: PacketEngine;
  /** Flows built (n, or fewer when the build ran out of time). */
  built: number;
  destOf: Uint8Array;
  buildMs: number;
}

/**
 * A reference engine holding flows [0, n) in ESTABLISHED: each SYN, then each client segment,
 * one processPacket call each (the real server read back from the rewritten SYN). Stops
 * opening flows after `capMs` (then `built` < n; the flows opened are established).
 */
export function establishReference(Ctor: PacketEngineCtor, n: number, syns: Pool, clients: Pool, capMs = Infinity): ReferenceFlows {
  const engine = new Ctor({ connCapacity: n });
  engine.restore(seedRules());
  const destOf = new Uint8Array(n);
  const destByEndpoint = new Map(DESTS.map((d, i) => [d.addr * 65536 + d.port, i]));
  const t0 = process.hrtime.bigint();
  let built = 0;
  for (; built < n; built++) {
    if ((built & 4095) === 0 && Number(process.hrtime.bigint() - t0) / 1e6 > capMs) break;
    const r = engine.processPacket(poolPacket(syns, built), clockMs());
    const p = r.packet;
    const d = destByEndpoint.get((((p[16] << 24) | (p[17] << 16) | (p[18] << 8) | p[19]) >>> 0) * 65536 + ((p[22] << 8) | p[23]));
    if (r.verdict !== 'forward' || d === undefined) throw new Error(`reference: SYN of flow ${built} not forwarded to a real server (${r.verdict})`);
    destOf[built] = d;
  }
  for (let f = 0; f < built; f++) {
    const r = engine.processPacket(poolPacket(clients, f), clockMs());
    if (r.verdict !== 'forward') throw new Error(`reference: first data segment of flow ${f}: ${r.verdict}`);
  }
  const live = engine.counters().liveConns;
  if (live !== built) throw new Error(`reference: ${built} flows opened but ${live} connections live`);
  return { engine, built, destOf: destOf.subarray(0, built), buildMs: Number(process.hrtime.bigint() - t0) / 1e6 };
}

/**
 * Streams `packets` pool packets from `from` through the reference engine, processPacket per
 * packet, timed per batch of `batch` (the subarray views are made before each batch's timer).
 */
export function runReference(engine: PacketEngine, pool: Pool, from: number, packets: number, batch: number, batchNs?: number[]): Timing {
  const views: Uint8Array[] = new Array(batch);
  let engineNs = 0;
  let forwarded = 0;
  let k = from % pool.count;
  const begin = process.hrtime.bigint();
  for (let done = 0; done < packets;) {
    const count = Math.min(batch, packets - done);
    for (let j = 0; j < count; j++) { views[j] = poolPacket(pool, k); if (++k === pool.count) k = 0; }
    const t0 = process.hrtime.bigint();
    const now = clockMs(t0);
    for (let j = 0; j < count; j++) if (engine.processPacket(views[j], now).verdict === 'forward') forwarded++;
    const ns = Number(process.hrtime.bigint() - t0);
    engineNs += ns;
    if (batchNs) batchNs.push(ns);
    done += count;
  }
  return { packets, forwarded, engineNs, copyNs: 0, wallNs: Number(process.hrtime.bigint() - begin) };
}

/** `count` SYNs of distinct flows into a fresh reference engine, processPacket each; timed. */
export function referenceNewConnections(Ctor: PacketEngineCtor, syns: Pool, count: number, capacity: number): Timing {
  const engine = new Ctor({ connCapacity: capacity });
  engine.restore(seedRules());
  const t = runReference(engine, syns, 0, count, 256);
  if (t.forwarded !== count || engine.counters().liveConns !== count) throw new Error(`reference: ${count} SYNs, ${t.forwarded} forwarded, ${engine.counters().liveConns} live`);
  return t;
}

/** Heap bytes in use after a full collection (needs node --expose-gc; NaN without it). */
export function heapAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return NaN;
  gc(); gc();
  return process.memoryUsage().heapUsed;
}

/** The q-quantile (0..1) of samples, nearest rank. */
export function quantile(samples: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(samples).sort();
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

// ---- chart ------------------------------------------------------------------------------------

export interface Series { name: string; color: string; points: Array<{ x: number; y: number }> }

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A hand-written SVG line chart, both axes logarithmic (x: live connections, y: packets/s),
 * one polyline with dots per series, a legend, grid lines at 1-2-5 steps.
 */
export function chartSvg(series: Series[], title: string, xLabel: string, yLabel: string): string {
  const W = 820, H = 460, L = 80, R = 230, T = 50, B = 60; // R: room for the legend
  const pts = series.flatMap((s) => s.points).filter((p) => p.y > 0);
  const xs = pts.map((p) => p.x), ys = pts.map((p) => p.y);
  const x0 = Math.log10(Math.min(...xs)), x1 = Math.log10(Math.max(...xs));
  const y0 = Math.floor(Math.log10(Math.min(...ys))), y1 = Math.ceil(Math.log10(Math.max(...ys)));
  const px = (x: number) => L + ((Math.log10(x) - x0) / (x1 - x0 || 1)) * (W - L - R);
  const py = (y: number) => T + (1 - (Math.log10(y) - y0) / (y1 - y0 || 1)) * (H - T - B);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${(L + W - R) / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`);
  const siY = (v: number) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}K` : `${v}`);
  for (let e = y0; e <= y1; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (Math.log10(v) > y1 + 1e-9) continue;
      const y = py(v).toFixed(1);
      out.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="${m === 1 ? '#bbb' : '#e6e6e6'}"/>`);
      out.push(`<text x="${L - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${siY(v)}</text>`);
    }
  }
  const xTicks = [...new Set(xs)].sort((a, b) => a - b);
  const siX = (v: number) => (v >= 1 << 20 ? `${v / (1 << 20)}M` : v >= 1024 ? `${v / 1024}K` : `${v}`);
  for (const v of xTicks) {
    const x = px(v).toFixed(1);
    out.push(`<line x1="${x}" y1="${T}" x2="${x}" y2="${H - B}" stroke="#e6e6e6"/>`);
    out.push(`<text x="${x}" y="${H - B + 18}" text-anchor="middle">${siX(v)}</text>`);
  }
  out.push(`<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/>`);
  out.push(`<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`);
  out.push(`<text x="${(L + W - R) / 2}" y="${H - 16}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(20 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const p = s.points.filter((q) => q.y > 0);
    if (p.length > 1) out.push(`<polyline fill="none" stroke="${s.color}" stroke-width="2.5" points="${p.map((q) => `${px(q.x).toFixed(1)},${py(q.y).toFixed(1)}`).join(' ')}"/>`);
    for (const q of p) out.push(`<circle cx="${px(q.x).toFixed(1)}" cy="${py(q.y).toFixed(1)}" r="4" fill="${s.color}"><title>${esc(`${s.name}: ${siX(q.x)} live, ${(q.y / 1e6).toFixed(2)} Mpps`)}</title></circle>`);
    const ly = T + 10 + i * 22;
    out.push(`<line x1="${W - R + 16}" y1="${ly}" x2="${W - R + 40}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"/>`);
    out.push(`<text x="${W - R + 46}" y="${ly}" dominant-baseline="middle">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---- new connections ------------------------------------------------------------------------

/** How the new connection's real server is chosen. */
export type SchedVariant =
  /** The seed's wrr, through the engine's scheduler seam: the production path. */
  | 'wrr'
  /** A registered scheduler returning the first dest: the seam without policy work. */
  | 'first'
  /** The engine's schedule import replaced by `() => 0`: only the WASM -> JS call remains. */
  | 'stub';

let firstRegistered = false;
function registerFirst(): void {
  if (firstRegistered) return;
  registerScheduler('benchfirst', () => {
    let dests: readonly SchedDest[] = [];
    return { destsChanged(next) { dests = next; }, schedule() { return dests[0]; } };
  });
  firstRegistered = true;
}

/**
 * A fresh engine of `capacity` (empty table), then `count` SYNs of distinct flows from
 * `syns` through the ring in batches. Creating the engine is not timed.
 */
export function newConnectionsRun(syns: Pool, count: number, capacity: number, batch: number, variant: SchedVariant): Timing {
  if (variant === 'first') registerFirst();
  return newConnections(syns, count, capacity, batch, variant === 'first' ? 'benchfirst' : 'wrr', variant === 'stub');
}

/**
 * As newConnectionsRun, through the named scheduler (`-s NAME` on the seed's service, no
 * -b flags): the new connections/s of each scheduler. For the ones that keep connection
 * counts (lc, wlc ...) the counts grow as the table fills, as they would in service; lblc and
 * lblcr hold one entry (the VIP); dh maps every flow to one server (the VIP's bucket).
 */
export function newConnectionsScheduler(syns: Pool, count: number, capacity: number, batch: number, scheduler: string): Timing {
  return newConnections(syns, count, capacity, batch, scheduler, false);
}

function newConnections(syns: Pool, count: number, capacity: number, batch: number, scheduler: string, stub: boolean): Timing {
  const engine = new Engine({ connCapacity: capacity });
  engine.restore(seedRules(scheduler));
  let stubCalls = 0;
  if (stub) {
    // Measurement only: the instance's import closure calls this.config.schedule (the body of
    // the import: host/engine/config.ts), so an own property shadows that method. Dest record
    // 0 is 172.16.0.2:80 in a fresh engine.
    (engine as unknown as { config: { schedule: () => number } }).config.schedule = () => { stubCalls++; return 0; };
  }
  const ring = new Ring(engine, syns);
  const t = runBatches(ring, syns, 0, count, batch);
  const what = stub ? 'stub' : scheduler;
  expectAllForwarded(engine, t, `${count} new connections (${what})`);
  if (stub && stubCalls !== count) throw new Error(`the stub scheduler ran ${stubCalls} times for ${count} SYNs: Engine no longer calls this.config.schedule, update the stub`);
  const c = engine.counters();
  if (c.connsCreated !== count || c.liveConns !== count) throw new Error(`${count} SYNs made ${c.connsCreated} connections, ${c.liveConns} live (${what})`);
  return t;
}

// ---- diagnostics: what bounds the 1M figure ---------------------------------------------------

/**
 * Flows [0, n) in record order, each as a client packet then a server packet: consecutive
 * packets use consecutive records, so record reads stream (the hardware prefetches them)
 * while the index slots stay random. Compared with random flows it splits the two misses.
 */
export function recordOrderPool(n: number, destOf: Uint8Array): Pool {
  const pool = newPool(2 * n);
  const cli = template('client');
  const srv = template('server');
  const vip = addr(VIP);
  for (let f = 0; f < n; f++) {
    const d = DESTS[destOf[f]];
    stamp(pool.bytes, 2 * f * POOL_STRIDE_WORDS * 4, cli, clientAddr(f), clientPort(f), vip, VPORT);
    stamp(pool.bytes, (2 * f + 1) * POOL_STRIDE_WORDS * 4, srv, d.addr, d.port, clientAddr(f), clientPort(f));
  }
  return pool;
}

/**
 * The machine's memory latency, from JS: `steps` loads at random 64-byte lines of a
 * `bytes`-sized buffer, dependent (each address read from the previous line: a pointer
 * chase, as the engine's index -> record chain) and independent (addresses known up front,
 * so the core overlaps the misses).
 */
export function memoryLatency(bytes: number, steps: number): { dependentNs: number; independentNs: number } {
  const lines = Math.floor(bytes / 64);
  const a = new Uint32Array(lines * 16);
  const rand = prng(0x1a7e);
  const order = new Uint32Array(lines);
  for (let i = 0; i < lines; i++) order[i] = i;
  for (let i = lines - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); const t = order[i]; order[i] = order[j]; order[j] = t; }
  for (let i = 0; i < lines; i++) a[order[i] * 16] = order[(i + 1) % lines] * 16; // one cycle through every line
  const at = new Uint32Array(steps);
  for (let i = 0; i < steps; i++) at[i] = Math.floor(rand() * lines) * 16;
  let p = 0;
  for (let i = 0; i < Math.min(steps, 100000); i++) p = a[p];
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < steps; i++) p = a[p];
  const t1 = process.hrtime.bigint();
  let sum = 0;
  for (let i = 0; i < steps; i++) sum += a[at[i]];
  const t2 = process.hrtime.bigint();
  if (p === 0.5 || sum === 0.5) throw new Error('unreachable: keeps the loads alive');
  return { dependentNs: Number(t1 - t0) / steps, independentNs: Number(t2 - t1) / steps };
}

/**
 * The host's scheduler path alone, in a JS loop: the engine's configuration's schedule(), the
 * body of the WASM import (tuple object, wire-order conversions, the service's scheduler). Returns
 * ns per call. A throwaway engine: its scheduler state moves.
 */
export function hostScheduleNs(scheduler: 'wrr' | 'first', calls: number): number {
  if (scheduler === 'first') registerFirst();
  const engine = new Engine({ connCapacity: 1024 });
  engine.restore(seedRules(scheduler === 'first' ? 'benchfirst' : 'wrr'));
  const sched = (engine as unknown as { config?: { schedule(s: number, sa: number, sp: number, da: number, dp: number): number } }).config;
  if (typeof sched?.schedule !== 'function') throw new Error('Engine has no config.schedule() method any more: update hostScheduleNs');
  let acc = 0;
  for (let i = 0; i < 100000; i++) acc += sched.schedule(0, 0x0100000a + i, 0x409c, 0x056a67ca, 0x5000);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) acc += sched.schedule(0, 0x0100000a + i, 0x409c, 0x056a67ca, 0x5000);
  const ns = Number(process.hrtime.bigint() - t0) / calls;
  if (acc < 0) throw new Error('the scheduler found no server');
  return ns;
}

// ---- the bare WASM -> JS call ---------------------------------------------------------------

/**
 * A 100-byte module whose `run(n)` calls its import `f(n, n, n, n, n)` (the schedule
 * import's signature: five i32 in, one out) n times, summing the results:
 *   (func (export "run") (param $n i32) (result i32) (local $acc i32)
 *     block loop
 *       local.get $n  i32.eqz  br_if 1
 *       local.get $acc  (local.get $n) x5  call $f  i32.add  local.set $acc
 *       local.get $n  i32.const 1  i32.sub  local.set $n  br 0
 *     end end  local.get $acc)
 */
export function importCallModule(f: (a: number, b: number, c: number, d: number, e: number) => number): (n: number) => number {
  const section = (id: number, body: number[]) => [id, body.length, ...body];
  const name = (s: string) => [s.length, ...Buffer.from(s)];
  const I32 = 0x7f;
  const code = [
    1, 1, I32, // one local of type i32
    0x02, 0x40, 0x03, 0x40,
    0x20, 0, 0x45, 0x0d, 1,
    0x20, 1, 0x20, 0, 0x20, 0, 0x20, 0, 0x20, 0, 0x20, 0, 0x10, 0, 0x6a, 0x21, 1,
    0x20, 0, 0x41, 1, 0x6b, 0x21, 0, 0x0c, 0,
    0x0b, 0x0b, 0x20, 1, 0x0b,
  ];
  const bytes = Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [2, 0x60, 5, I32, I32, I32, I32, I32, 1, I32, 0x60, 1, I32, 1, I32]),
    ...section(2, [1, ...name('env'), ...name('f'), 0, 0]),
    ...section(3, [1, 1]),
    ...section(7, [1, ...name('run'), 0, 1]),
    ...section(10, [1, code.length, ...code]),
  ]);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { f } });
  return instance.exports.run as (n: number) => number;
}

// ---- statistics and output ------------------------------------------------------------------

export interface Summary {
  median: number;
  min: number;
  max: number;
  runs: number;
  samples: number[];
}

export function summarize(samples: number[]): Summary {
  if (samples.length === 0) throw new Error('no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], runs: s.length, samples };
}

export interface Row {
  label: string;
  unit: string;
  /** A measured figure, or a single derived value (runs 0). */
  summary: Summary;
  note?: string;
}

function fmt(v: number): string {
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(0);
  if (a >= 100) return v.toFixed(1);
  if (a >= 10) return v.toFixed(2);
  return v.toFixed(3);
}

/** A plain-text table: label, unit, median, min..max, runs. */
export function formatTable(rows: Row[]): string {
  const cells = rows.map((r) => [
    r.label,
    r.unit,
    fmt(r.summary.median),
    r.summary.runs > 0 ? `${fmt(r.summary.min)}..${fmt(r.summary.max)}` : '',
    r.summary.runs > 0 ? String(r.summary.runs) : 'derived',
  ]);
  const head = ['figure', 'unit', 'median', 'min..max', 'runs'];
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i >= 2 ? x.padStart(width[i]) : x.padEnd(width[i]))).join('  ').trimEnd();
  return [line(head), line(width.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
