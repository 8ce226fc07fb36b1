// Shared set-up for the data-plane behaviour tests (nat, tcpstate, malformed, checksum): the
// seed's rules (/work/shared/seed/SUMMARY.md), a seeded PRNG, and small byte and counter
// helpers. Only the public Engine API is used here; expected packets always come from the
// packet kit (./packets.ts), never from engine code.
import { Engine, type Counters, type EngineOptions } from '../../host/engine/engine.js';
import type { ServiceSpec } from '../../host/ipvsadm/rules.js';

export const VIP = '202.103.106.5';
export const CLIENT = '202.100.1.2';
export const RS2 = '172.16.0.2';
export const RS3 = '172.16.0.3';

/** The seed's two services (wrr, as its weights imply). */
export const HTTP: ServiceSpec = { protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'wrr' };
export const FTP: ServiceSpec = { protocol: 'tcp', vaddr: VIP, vport: 21, scheduler: 'wrr' };

/** Small defaults: the tests never need a million connections. */
export const SMALL: EngineOptions = { connCapacity: 1024, slotCount: 64 };

/**
 * The seed's table, real servers added in its row order: 172.16.0.2:80 (weight 1), then
 * 172.16.0.3:8000 (weight 2); IPVS lists the newest first, so wrr picks .3 .2 .3 .3 .2 .3 ...
 */
export function seedEngine(options: EngineOptions = {}): Engine {
  const e = new Engine({ ...SMALL, ...options });
  e.addService(HTTP);
  e.addDest(HTTP, { daddr: RS2, dport: 80, weight: 1 });
  e.addDest(HTTP, { daddr: RS3, dport: 8000, weight: 2 });
  e.addService(FTP);
  e.addDest(FTP, { daddr: RS3, dport: 21, weight: 1 });
  return e;
}

/** mulberry32: a tiny deterministic PRNG, uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [lo, hi], both included. */
export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

export function randBytes(rand: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = randInt(rand, 0, 255);
  return out;
}

/** Offsets at which two equally long byte arrays differ. */
export function changedOffsets(a: Uint8Array, b: Uint8Array): number[] {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) out.push(i);
  return out;
}

/** The four wire bytes of a dotted quad. */
export function addrBytes(text: string): number[] {
  return text.split('.').map(Number);
}

/** One's-complement sum of big-endian 16-bit words, folded, not complemented (RFC 1071). */
export function naiveSum(bytes: Uint8Array, initial = 0): number {
  let sum = initial;
  for (let i = 0; i < bytes.length; i += 2) sum += bytes[i] * 256 + (i + 1 < bytes.length ? bytes[i + 1] : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Sum of every drop (or pass) reason counter. */
export function reasonTotal(record: Record<string, number>): number {
  return Object.values(record).reduce((n, v) => n + v, 0);
}

/** The bookkeeping every counter snapshot must satisfy. */
export function countersAddUp(c: Counters): string | undefined {
  if (c.packets !== c.forwardIn + c.forwardOut + c.pass + c.drop + c.local) {
    return `packets ${c.packets} != forwardIn ${c.forwardIn} + forwardOut ${c.forwardOut} + pass ${c.pass} + drop ${c.drop} + local ${c.local}`;
  }
  if (reasonTotal(c.drops) !== c.drop) return `drop reasons sum to ${reasonTotal(c.drops)}, drop is ${c.drop}`;
  if (reasonTotal(c.passes) !== c.pass) return `pass reasons sum to ${reasonTotal(c.passes)}, pass is ${c.pass}`;
  if (reasonTotal(c.locals) !== c.local) return `local reasons sum to ${reasonTotal(c.locals)}, local is ${c.local}`;
  return undefined;
}
