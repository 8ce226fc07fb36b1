// The connection index's keyed hash is SipHash-1-3 over the 13-byte tuple. Reference values
// come from CPython 3.11, whose bytes hash is SipHash-1-3 and whose key is all zeros under
// PYTHONHASHSEED=0:
//   PYTHONHASHSEED=0 python3 -c "print(hash(bytes(13)) & (2**64-1))"          -> 9044333259925996028
//   PYTHONHASHSEED=0 python3 -c "print(hash(bytes(range(13))) & (2**64-1))"   -> 11587535417075797517
//   PYTHONHASHSEED=0 python3 -c "print(hash(bytes(range(15))) & (2**64-1))"   -> 17514137373579004394
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { instantiate, wasmModule } from '../host/engine/abi.js';

const wasm = instantiate(wasmModule(), new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true }), { schedule: () => -1 });
const u64 = (x: bigint) => BigInt.asUintN(64, x);
const FIRST8 = 0x0706050403020100n; // bytes 00..07 as a little-endian word

test('13 zero bytes (the tuple size) under the zero key match the reference', () => {
  assert.is(u64(wasm.sipHash(0n, 0n, 0n, 0n, 13)), 9044333259925996028n);
});

test('bytes 00..0c: first block and a 5-byte tail match the reference', () => {
  assert.is(u64(wasm.sipHash(0n, 0n, FIRST8, 0x0c0b0a0908n, 13)), 11587535417075797517n);
});

test('bytes 00..0e: a 7-byte tail matches the reference', () => {
  assert.is(u64(wasm.sipHash(0n, 0n, FIRST8, 0x0e0d0c0b0a0908n, 15)), 17514137373579004394n);
});

test('the key changes every output (a different engine hashes differently)', () => {
  const tail = 0x0c0b0a0908n;
  const a = wasm.sipHash(1n, 0n, FIRST8, tail, 13);
  const b = wasm.sipHash(0n, 1n, FIRST8, tail, 13);
  const c = wasm.sipHash(0n, 0n, FIRST8, tail, 13);
  assert.not.equal(a, c);
  assert.not.equal(b, c);
  assert.not.equal(a, b);
});

test.run();
