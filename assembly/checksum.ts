// Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//
// One's-complement sums do not care about byte order (RFC 1071 section 2(B)), so every
// word here is loaded little-endian straight from wire bytes and the result is stored back
// the same way: no byte swapping anywhere.
//
// Worked example (RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m')): NAT rewrites a destination
// address 202.103.106.5 -> 172.16.0.3. The header checksum changes by the difference of
// the two 32-bit words alone; the rest of the header, and for TCP/UDP the payload, is
// never read again. test/checksum.test.ts checks this against a full recompute.

/** Adds `len` bytes at `p` to `sum` as 16-bit words (odd trailing byte padded with 0). */
export function checksumSum(p: usize, len: u32, sum: u64): u64 {
  let i: u32 = 0;
  // 8 bytes at a time into a 64-bit accumulator: the four 16-bit lanes are summed later by
  // the fold, and the carries out of each 32-bit half cannot overflow for len < 2^32.
  for (; i + 8 <= len; i += 8) {
    const w = load<u64>(p + i);
    sum += (w & 0xffffffff) + (w >> 32);
  }
  for (; i + 2 <= len; i += 2) sum += <u64>load<u16>(p + i);
  if (i < len) sum += <u64>load<u8>(p + i);
  return sum;
}

/** Folds a wide one's-complement sum to 16 bits (not complemented). */
@inline export function checksumFold(sum: u64): u16 {
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  let s = <u32>sum;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return <u16>s;
}

/** Full checksum of `len` bytes: for generated packets and tests, never the NAT path. */
export function checksumCompute(p: usize, len: u32, initial: u64): u16 {
  return ~checksumFold(checksumSum(p, len, initial));
}

/** Sum of the 16-bit halves of a 32-bit word, complemented (the "~m" of RFC 1624). */
@inline function negWords32(x: u32): u32 { return ((~x) & 0xffff) + ((~x) >>> 16); }
@inline function words32(x: u32): u32 { return (x & 0xffff) + (x >>> 16); }

/** Checksum field value after one 32-bit word changes from `from` to `to` (RFC 1624 eqn. 3). */
@inline export function checksumReplace32(check: u16, from: u32, to: u32): u16 {
  const sum = <u64>(<u16>~check) + <u64>negWords32(from) + <u64>words32(to);
  return ~checksumFold(sum);
}

/** Checksum field value after a 32-bit and a 16-bit word change (address and port). */
@inline export function checksumReplace32And16(check: u16, from32: u32, to32: u32, from16: u16, to16: u16): u16 {
  const sum = <u64>(<u16>~check) + <u64>negWords32(from32) + <u64>words32(to32)
    + <u64>(<u16>~from16) + <u64>to16;
  return ~checksumFold(sum);
}

/**
 * Partial checksum (CHECKSUM_PARTIAL, vnet_hdr NEEDS_CSUM): the field holds the folded,
 * uncomplemented pseudo-header sum, which the kernel or NIC completes over the payload
 * later. An address change updates it without complementing: fold(S + ~old + new), as
 * the kernel's inet_proto_csum_replace4 with pseudohdr set. Ports are not in the sum.
 */
@inline export function checksumPartialReplace32(partial: u16, from: u32, to: u32): u16 {
  return checksumFold(<u64>partial + <u64>negWords32(from) + <u64>words32(to));
}
