// Maglev hashing, as net/netfilter/ipvs/ip_vs_mh.c (Eisenbud et al., "Maglev: A Fast and
// Reliable Software Network Load Balancer", NSDI '16, section 3.4). Each dest has a
// permutation of the M = 4093 lookup-table positions (primes[CONFIG_IP_VS_MH_TAB_INDEX - 8],
// default index 12): offset = h1(dest) % M, skip = h2(dest) % (M - 1) + 1, its j-th
// preference (offset + j * skip) % M. Dests take turns in list order, each claiming its next
// free preferred position `turns` times per round, until all M are taken; a new connection
// goes to entry h1(saddr) % M (with mh-port: h1 of sport + saddr).
//   The hashes are the kernel's: hsiphash() of a 4-byte host-order u32 (port + address,
// both host order), keyed with the fixed keys of generate_hash_secret(): hash1 =
// {2654435761, 2654435761}, hash2 = {2654446892, 2654446892}. They do not change per boot,
// so the table equals a 64-bit kernel's for the same dests in the same order (on 64-bit,
// hsiphash is SipHash-1-3, implemented below on 32-bit halves; a 32-bit kernel uses
// HalfSipHash-1-3 and builds a different table).
//   Weights: turns = (last_weight / gcd) >> rshift, at least 1 for a non-zero weight, where
// gcd is that of the positive last weights and rshift = max(0, fls(max / gcd) - 6) keeps the
// largest turn count under 64. last_weight is the latest non-zero weight, so quiescing a dest
// (weight 0) keeps the table as it was; the dest is then unavailable at its entries: no
// destination, or with mh-fallback (flag-1) the kernel tries entries
// h1(roffset + port + saddr) % M for roffset = (h + offset) % M, offset = 0, 1, ... M - 1.
//
// Worked example: dests A then B (weight 1 each) are listed [B, A]. Round 1: B claims
// offset_B, then A claims offset_A (or its next preference offset_A + skip_A if B took that
// position). Round 2: each claims its next free preference, and so on until all 4093 are
// taken: one each per round, B first, so B 2047 and A 2046. Weights 2 (B) and 1 (A): rounds
// of B B A, B 2729 and A 1364. Deleting A rebuilds with B alone: every entry B held stays B,
// so only A's clients move (with more dests a few others move too, about 1% for 10).
// A client 10.0.0.1 goes to entry hsiphash(0x0a000001, hash1) % 4093, whatever B and A are.
import { hashFlags, unavailable } from './common.js';
import type { SchedDest, Scheduler } from './types.js';

export const MH_TAB_SIZE = 4093;
const MH_TAB_BITS = 6; // CONFIG_IP_VS_MH_TAB_INDEX / 2

/** A SipHash key's initial state v0..v3 as 32-bit halves [hi, lo] (ready for the rounds). */
export type SipState = readonly [number, number, number, number, number, number, number, number];

/** The initial state for key (k0, k1), as lib/siphash.c PREAMBLE. */
export function sipKeyState(k0: bigint, k1: bigint): SipState {
  const c = [0x736f6d6570736575n ^ k0, 0x646f72616e646f6dn ^ k1, 0x6c7967656e657261n ^ k0, 0x7465646279746573n ^ k1];
  return c.flatMap((v) => [Number(v >> 32n), Number(v & 0xffffffffn)]) as unknown as SipState;
}

export const MH_HASH1 = sipKeyState(2654435761n, 2654435761n);
export const MH_HASH2 = sipKeyState(2654446892n, 2654446892n);

/**
 * hsiphash(&v, 4, key) on a 64-bit kernel: SipHash-1-3 of the 4 bytes of `v` (little-endian
 * in memory), truncated to u32. 64-bit words as hi/lo u32 pairs.
 */
export function hsiphash32(key: SipState, v: number): number {
  // Every half stays an unsigned 32-bit value (>>> 0 after each xor), so that the carry test
  // of an addition (sum < addend) holds.
  let v0h = key[0], v0l = key[1], v1h = key[2], v1l = key[3];
  let v2h = key[4], v2l = key[5], v3h = key[6], v3l = key[7];
  const bh = 0x04000000; // b = len << 56 | v
  const bl = v >>> 0;
  v3h = (v3h ^ bh) >>> 0; v3l = (v3l ^ bl) >>> 0;
  for (let round = 0; round < 4; round++) {
    if (round === 1) { v0h = (v0h ^ bh) >>> 0; v0l = (v0l ^ bl) >>> 0; v2l = (v2l ^ 0xff) >>> 0; }
    let t: number;
    // v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
    t = (v0l + v1l) >>> 0; v0h = (v0h + v1h + (t < v0l ? 1 : 0)) >>> 0; v0l = t;
    t = v1h; v1h = ((v1h << 13) | (v1l >>> 19)) >>> 0; v1l = ((v1l << 13) | (t >>> 19)) >>> 0;
    v1h = (v1h ^ v0h) >>> 0; v1l = (v1l ^ v0l) >>> 0;
    t = v0h; v0h = v0l; v0l = t;
    // v2 += v3; v3 = rotl(v3, 16); v3 ^= v2
    t = (v2l + v3l) >>> 0; v2h = (v2h + v3h + (t < v2l ? 1 : 0)) >>> 0; v2l = t;
    t = v3h; v3h = ((v3h << 16) | (v3l >>> 16)) >>> 0; v3l = ((v3l << 16) | (t >>> 16)) >>> 0;
    v3h = (v3h ^ v2h) >>> 0; v3l = (v3l ^ v2l) >>> 0;
    // v0 += v3; v3 = rotl(v3, 21); v3 ^= v0
    t = (v0l + v3l) >>> 0; v0h = (v0h + v3h + (t < v0l ? 1 : 0)) >>> 0; v0l = t;
    t = v3h; v3h = ((v3h << 21) | (v3l >>> 11)) >>> 0; v3l = ((v3l << 21) | (t >>> 11)) >>> 0;
    v3h = (v3h ^ v0h) >>> 0; v3l = (v3l ^ v0l) >>> 0;
    // v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    t = (v2l + v1l) >>> 0; v2h = (v2h + v1h + (t < v2l ? 1 : 0)) >>> 0; v2l = t;
    t = v1h; v1h = ((v1h << 17) | (v1l >>> 15)) >>> 0; v1l = ((v1l << 17) | (t >>> 15)) >>> 0;
    v1h = (v1h ^ v2h) >>> 0; v1l = (v1l ^ v2l) >>> 0;
    t = v2h; v2h = v2l; v2l = t;
  }
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Builds the lookup table as ip_vs_mh_reassign() (permutate, then populate). */
export function mhPopulate(dests: readonly SchedDest[], lastWeight: (d: SchedDest) => number, table: Array<SchedDest | undefined>): void {
  const M = MH_TAB_SIZE;
  let g = 0;
  let max = 0;
  for (const d of dests) {
    const w = lastWeight(d);
    if (w > 0) g = g > 0 ? gcd(w, g) : w;
    if (w > max) max = w;
  }
  if (g < 1) { table.fill(undefined); return; } // ip_vs_mh_reset
  const shift = Math.max(0, 32 - Math.clz32(Math.floor(max / g)) - MH_TAB_BITS);
  const n = dests.length;
  const perm = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const turns = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const d = dests[i];
    const v = (d.dport + d.daddr) >>> 0;
    perm[i] = hsiphash32(MH_HASH1, v) % M;
    skip[i] = (hsiphash32(MH_HASH2, v) % (M - 1)) + 1;
    const lw = lastWeight(d);
    turns[i] = (Math.floor(lw / g) >>> shift) || (lw !== 0 ? 1 : 0);
  }
  const taken = new Uint8Array(M);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      for (let t = 0; t < turns[i]; t++) {
        let c = perm[i];
        while (taken[c]) {
          c += skip[i];
          if (c >= M) c -= M;
        }
        perm[i] = c;
        taken[c] = 1;
        table[c] = dests[i];
        if (++filled === M) return;
      }
    }
  }
}

export function createMaglevHashing(flags: readonly string[] = []): Scheduler {
  const { fallback, port } = hashFlags('mh', flags);
  const table: Array<SchedDest | undefined> = new Array(MH_TAB_SIZE).fill(undefined);
  // last_weight for engines that do not provide SchedDest.lastWeight.
  const tracked = new WeakMap<SchedDest, number>();
  const lastWeight = (d: SchedDest) => d.lastWeight ?? tracked.get(d) ?? d.weight;

  return {
    destsChanged(dests, change) {
      const d = change.dest;
      if (change.kind === 'add' || (change.kind === 'edit' && d.weight !== 0)) tracked.set(d, d.weight);
      // ip_vs_mh_reassign refuses more dests than positions (-EINVAL) and keeps the table.
      if (dests.length > MH_TAB_SIZE) return;
      mhPopulate(dests, lastWeight, table);
    },
    schedule(packet) {
      const key = ((port ? packet.sport : 0) + packet.saddr) >>> 0;
      const ihash = hsiphash32(MH_HASH1, key) % MH_TAB_SIZE;
      const dest = table[ihash];
      if (dest === undefined) return undefined;
      if (!unavailable(dest)) return dest;
      if (!fallback) return undefined;
      // ip_vs_mh_get_fallback
      for (let offset = 0; offset < MH_TAB_SIZE; offset++) {
        const roffset = (offset + ihash) % MH_TAB_SIZE;
        const d = table[hsiphash32(MH_HASH1, (roffset + key) >>> 0) % MH_TAB_SIZE];
        if (d === undefined) break;
        if (!unavailable(d)) return d;
      }
      return undefined;
    },
  };
}
