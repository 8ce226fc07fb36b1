// SipHash-1-3 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012; the 1-3
// variant as Rust's HashMap) over a connection tuple, keyed by a random 128-bit key per
// engine. A keyed PRF is what makes the connection table hash-flooding resistant: an
// attacker who cannot learn the key cannot aim many tuples at one probe run. (Linux moved
// conntrack from jhash to siphash for the same reason.)
//
// The tuple is two 64-bit message words, saddr|daddr and sport|dport|proto, followed by
// SipHash's final length block for a 16-byte message.

// One SipRound; state passed through globals to keep the inlined code allocation-free.
let v0: u64 = 0;
let v1: u64 = 0;
let v2: u64 = 0;
let v3: u64 = 0;

@inline function sipRound(): void {
  v0 += v1; v1 = rotl<u64>(v1, 13); v1 ^= v0; v0 = rotl<u64>(v0, 32);
  v2 += v3; v3 = rotl<u64>(v3, 16); v3 ^= v2;
  v0 += v3; v3 = rotl<u64>(v3, 21); v3 ^= v0;
  v2 += v1; v1 = rotl<u64>(v1, 17); v1 ^= v2; v2 = rotl<u64>(v2, 32);
}

/** SipHash-1-3 of the 16-byte message (m0, m1) under key (k0, k1). */
export function sipHash13(k0: u64, k1: u64, m0: u64, m1: u64): u64 {
  v0 = k0 ^ 0x736f6d6570736575;
  v1 = k1 ^ 0x646f72616e646f6d;
  v2 = k0 ^ 0x6c7967656e657261;
  v3 = k1 ^ 0x7465646279746573;
  v3 ^= m0; sipRound(); v0 ^= m0;
  v3 ^= m1; sipRound(); v0 ^= m1;
  const b: u64 = <u64>16 << 56;
  v3 ^= b; sipRound(); v0 ^= b;
  v2 ^= 0xff;
  sipRound(); sipRound(); sipRound();
  return v0 ^ v1 ^ v2 ^ v3;
}
