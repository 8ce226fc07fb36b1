// SipHash-1-3 (Aumasson & Bernstein, "SipHash: a fast short-input PRF", 2012; the 1-3
// variant as Rust's HashMap and CPython's bytes hash) over a connection tuple, keyed by a
// random 128-bit key per engine. A keyed PRF is what makes the connection table
// hash-flooding resistant: an attacker who cannot learn the key cannot aim many tuples at one
// probe run. (Linux moved conntrack from jhash to siphash for the same reason.)
//
// The tuple is a 13-byte message: saddr and daddr fill the first 64-bit block; sport, dport
// and proto ride in SipHash's final block beside the length byte. Five SipRounds in all: one
// per block (c = 1) and three to finish (d = 3), on locals: this runs once per packet, and
// WASM globals live in instance memory while locals live in registers.

/**
 * SipHash-1-3 of a message of 8 to 15 bytes: `m0` is its first 8 bytes (little-endian),
 * `tail` the rest (little-endian, zero above them), `len` the message length in bytes.
 */
export function sipHash13(k0: u64, k1: u64, m0: u64, tail: u64, len: u32): u64 {
  let v0 = k0 ^ 0x736f6d6570736575;
  let v1 = k1 ^ 0x646f72616e646f6d;
  let v2 = k0 ^ 0x6c7967656e657261;
  let v3 = k1 ^ 0x7465646279746573;
  const b: u64 = tail | (<u64>len << 56); // the final block: tail bytes and length
  // Five SipRounds: the first block, the final block (c = 1 each), then d = 3 to finish.
  let m = m0;
  for (let r = 0; r < 5; r++) {
    if (r < 2) v3 ^= m;
    else if (r == 2) v2 ^= 0xff;
    v0 += v1; v1 = rotl<u64>(v1, 13); v1 ^= v0; v0 = rotl<u64>(v0, 32);
    v2 += v3; v3 = rotl<u64>(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl<u64>(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl<u64>(v1, 17); v1 ^= v2; v2 = rotl<u64>(v2, 32);
    if (r < 2) { v0 ^= m; m = b; }
  }
  return v0 ^ v1 ^ v2 ^ v3;
}
