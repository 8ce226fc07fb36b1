// The connection index's keyed hash is SipHash-1-3. Reference values come from CPython 3.11,
// whose bytes hash is SipHash-1-3 and whose key is all zeros under PYTHONHASHSEED=0:
//   PYTHONHASHSEED=0 python3 -c "print(hash(bytes(16)) & (2**64-1))"            -> 8556445246977061536
//   PYTHONHASHSEED=0 python3 -c "print(hash(bytes(range(16))) & (2**64-1))"     -> 9904005486622393783
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { instantiate, wasmModule } from '../host/abi.js';

const wasm = instantiate(wasmModule(), new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true }), { schedule: () => -1 });
const u64 = (x: bigint) => BigInt.asUintN(64, x);

test('SipHash-1-3 of 16 zero bytes under the zero key matches the reference', () => {
  assert.is(u64(wasm.sipHash(0n, 0n, 0n, 0n)), 8556445246977061536n);
});

test('SipHash-1-3 of bytes 00..0f (two little-endian words) matches the reference', () => {
  assert.is(u64(wasm.sipHash(0n, 0n, 0x0706050403020100n, 0x0f0e0d0c0b0a0908n)), 9904005486622393783n);
});

test('the key changes every output (a different engine hashes differently)', () => {
  const m0 = 0x0706050403020100n;
  const m1 = 0x0f0e0d0c0b0a0908n;
  const a = wasm.sipHash(1n, 0n, m0, m1);
  const b = wasm.sipHash(0n, 1n, m0, m1);
  const c = wasm.sipHash(0n, 0n, m0, m1);
  assert.not.equal(a, c);
  assert.not.equal(b, c);
  assert.not.equal(a, b);
});

test.run();
