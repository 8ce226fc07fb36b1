// Smoke test of the benchmark's core (scripts/bench-lib.ts) at toy size, so that `npm run
// bench` cannot rot unnoticed. It checks what the benchmark relies on (its generated packets
// are the kit's packets, every measured packet is forwarded and rewritten as NAT should, the
// statistics are right) and never judges a timing: timings only have to be numbers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DESTS, VIP, VPORT, type PacketKind, clientAddr, clientPort, establishFlows, establishedPool,
  formatAddr, formatTable, hostScheduleNs, importCallModule, kindOpts, memoryLatency,
  newConnectionsRun, newPool, poolPacket, recordOrderPool, runBatches, sequentialPool, stamp,
  summarize, template, establishTuned, chartSvg, quantile, flowOf,
} from '../scripts/bench-lib.js';
import { hashHi, hashLo, sipHash13 } from '../scripts/tuned-ts.js';
import { instantiate, wasmModule } from '../host/engine/abi.js';
import { checksumsValid, decode, hex, tcpPacket } from './support/packets.js';

const FLOWS = 256;

test('stamp() builds, byte for byte, the packet the kit builds for the same tuple', () => {
  const tuples: Array<[PacketKind, string, number, string, number]> = [
    ['syn', '10.0.0.1', 40000, VIP, VPORT],
    ['client', '10.0.255.7', 40063, VIP, VPORT],
    ['server', '172.16.0.3', 8000, '10.0.3.200', 40017],
    ['server', '255.255.255.255', 65535, '0.0.0.1', 1],
  ];
  for (const [kind, src, sport, dst, dport] of tuples) {
    const pool = newPool(1);
    const a = (s: string) => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    stamp(pool.bytes, 0, template(kind), a(src), sport, a(dst), dport);
    const built = poolPacket(pool, 0);
    assert.is(hex(built), hex(tcpPacket({ ...kindOpts(kind), src, dst, sport, dport })), `${kind} ${src}:${sport} -> ${dst}:${dport}`);
    assert.equal(checksumsValid(built), { ip: true, l4: true });
  }
});

test('flow tuples are distinct, so every SYN opens its own connection', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1 << 20; i += 997) seen.add(`${clientAddr(i)}:${clientPort(i)}`);
  for (let i = 0; i < 200; i++) seen.add(`${clientAddr(i)}:${clientPort(i)}`);
  assert.is(seen.size, Math.ceil((1 << 20) / 997) + 200 - 1); // i = 0 is in both loops
});

test('established flows: every measured packet is forwarded and rewritten as NAT does', () => {
  const syns = sequentialPool('syn', FLOWS);
  const clients = sequentialPool('client', FLOWS);
  const fe = establishFlows(FLOWS, FLOWS, syns, clients, { slotCount: 64 });
  assert.is(fe.engine.counters().liveConns, FLOWS);
  assert.ok(fe.engine.connections().every((c) => c.state === 'ESTABLISHED'));
  // Both real servers got flows, as wrr 1:2 gives them.
  assert.equal([...new Set(fe.destOf)].sort(), [0, 1]);

  const pool = establishedPool(FLOWS, fe.destOf, 500, 7);
  let checked = 0;
  const t = runBatches(fe.ring, pool, 0, 500, 48, (start, count) => {
    for (let j = 0; j < count; j++) {
      const sent = decode(poolPacket(pool, checked));
      const out = fe.ring.packet((start + j) % fe.ring.slotCount);
      const got = decode(out);
      assert.equal(checksumsValid(out), { ip: true, l4: true });
      if (sent.dst === VIP) { // client -> VIP becomes client -> real server
        assert.is(got.src, sent.src);
        assert.is(got.sport, sent.sport);
        assert.ok(DESTS.some((d) => formatAddr(d.addr) === got.dst && d.port === got.dport), `${got.dst}:${got.dport}`);
      } else { // real server -> client becomes VIP -> client
        assert.is(got.src, VIP);
        assert.is(got.sport, VPORT);
        assert.is(got.dst, sent.dst);
        assert.is(got.dport, sent.dport);
      }
      checked++;
    }
  });
  assert.is(checked, 500);
  assert.is(t.packets, 500);
  assert.is(t.forwarded, 500);
  for (const v of [t.engineNs, t.copyNs, t.wallNs]) assert.ok(Number.isFinite(v));
  const c = fe.engine.counters();
  assert.is(c.forwardIn + c.forwardOut, 2 * FLOWS + 500);
  assert.is(c.connsCreated, FLOWS);
});

test('the record-order pool pairs each flow\'s client packet with its server packet', () => {
  const destOf = Uint8Array.from({ length: 8 }, (_, i) => i % 2);
  const pool = recordOrderPool(8, destOf);
  assert.is(pool.count, 16);
  const c = decode(poolPacket(pool, 10));
  const s = decode(poolPacket(pool, 11));
  assert.equal([c.src, c.sport, c.dst, c.dport], [formatAddr(clientAddr(5)), clientPort(5), VIP, VPORT]);
  assert.equal([s.src, s.sport, s.dst, s.dport], [formatAddr(DESTS[1].addr), DESTS[1].port, formatAddr(clientAddr(5)), clientPort(5)]);
});

test('new connections: each scheduler variant opens one connection per SYN', () => {
  const syns = sequentialPool('syn', 600);
  for (const variant of ['wrr', 'first', 'stub'] as const) {
    const t = newConnectionsRun(syns, 600, 1024, 100, variant); // throws unless all 600 open
    assert.is(t.forwarded, 600, variant);
  }
});

test('the bare-call module calls its import once per iteration with its argument', () => {
  const args: number[][] = [];
  const run = importCallModule((a, b, c, d, e) => { args.push([a, b, c, d, e]); return a; });
  assert.is(run(3), 3 + 2 + 1);
  assert.equal(args, [[3, 3, 3, 3, 3], [2, 2, 2, 2, 2], [1, 1, 1, 1, 1]]);
  assert.is(run(0), 0);
});

test('diagnostic probes return numbers', () => {
  const l = memoryLatency(1 << 16, 1000);
  assert.ok(Number.isFinite(l.dependentNs) && Number.isFinite(l.independentNs));
  assert.ok(Number.isFinite(hostScheduleNs('wrr', 1000)));
  assert.ok(Number.isFinite(hostScheduleNs('first', 1000)));
});

test('summarize() gives median, range and count; formatTable() prints every row', () => {
  assert.equal(summarize([5, 1, 3]), { median: 3, min: 1, max: 5, runs: 3, samples: [5, 1, 3] });
  assert.is(summarize([4, 1, 3, 2]).median, 2.5);
  assert.throws(() => summarize([]));
  const table = formatTable([
    { label: 'measured', unit: 'Mpps', summary: summarize([1, 2, 3, 4, 5]) },
    { label: 'computed', unit: 'B', summary: { median: 64, min: 64, max: 64, runs: 0, samples: [] } },
  ]).split('\n');
  assert.is(table.length, 4);
  assert.match(table[0], /^figure\s+unit\s+median\s+min\.\.max\s+runs$/);
  assert.match(table[2], /^measured\s+Mpps\s+3\.000\s+1\.000\.\.5\.000\s+5$/);
  assert.match(table[3], /^computed\s+B\s+64\.00\s+derived$/);
});

test('tuned TS fast path: same flows, same input -> the same bytes as the WASM engine', () => {
  const syns = sequentialPool('syn', FLOWS);
  const clients = sequentialPool('client', FLOWS);
  const fe = establishFlows(FLOWS, FLOWS, syns, clients, { slotCount: 64 });
  // Its own key, so its index differs; the insertions are the same.
  const tuned = establishTuned(FLOWS, FLOWS, syns, clients, fe.destOf, { slotCount: 64, key: [1, 2, 3, 4] });
  const c = tuned.engine.counters2();
  assert.equal([c.liveConns, c.connsCreated, c.forwardIn, c.forwardOut], [FLOWS, FLOWS, 2 * FLOWS, 0]);
  const pool = establishedPool(FLOWS, fe.destOf, 700, 11);
  const wasmOut: string[] = [];
  const tunedOut: string[] = [];
  runBatches(fe.ring, pool, 0, 700, 50, (start, count) => {
    for (let j = 0; j < count; j++) wasmOut.push(hex(fe.ring.packet((start + j) % fe.ring.slotCount)));
  });
  const t = runBatches(tuned.ring, pool, 0, 700, 50, (start, count) => {
    for (let j = 0; j < count; j++) tunedOut.push(hex(tuned.ring.packet((start + j) % tuned.ring.slotCount)));
  });
  assert.is(t.forwarded, 700);
  assert.is(tunedOut.length, 700);
  for (let k = 0; k < 700; k++) {
    assert.is(tunedOut[k], wasmOut[k], `packet ${k}`);
    assert.ok(tunedOut[k] !== hex(poolPacket(pool, k)), `packet ${k} was rewritten`);
  }
  const after = tuned.engine.counters2();
  assert.is(after.forwardIn + after.forwardOut, 2 * FLOWS + 700);
});

test('tuned TS fast path: a packet off its path is not forwarded', () => {
  const syns = sequentialPool('syn', 8);
  const clients = sequentialPool('client', 8);
  const tuned = establishTuned(8, 8, syns, clients, new Uint8Array(8), { slotCount: 16 });
  const unknown = sequentialPool('client', 9); // flow 8 was never opened
  tuned.engine.writeSlot(0, poolPacket(unknown, 8));
  assert.is(tuned.engine.process(0, 1, 5000), 0);
  const bad = poolPacket(sequentialPool('client', 1), 0).slice();
  bad[10] ^= 1; // IP checksum
  tuned.engine.writeSlot(1, bad);
  assert.is(tuned.engine.process(1, 1, 5000), 0);
  assert.is(tuned.engine.reason(1), 7); // bad-ip-checksum, as the WASM's code
});

test('tuned TS SipHash-1-3 on 32-bit halves matches CPython\'s and the WASM\'s', () => {
  const u64 = (h: number, l: number) => (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0);
  // PYTHONHASHSEED=0 python3 -c "print(hash(bytes(13)) & (2**64-1))" (see test/siphash.test.ts)
  sipHash13(0, 0, 0, 0, 0, 0, 13 << 24, 0);
  assert.is(u64(hashHi, hashLo), 9044333259925996028n);
  sipHash13(0, 0, 0, 0, 0x07060504, 0x03020100, 0x0c | (13 << 24), 0x0b0a0908);
  assert.is(u64(hashHi, hashLo), 11587535417075797517n);
  const wasm = instantiate(wasmModule(), new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true }), { schedule: () => -1 });
  let x = 0x9e3779b9;
  const r = () => (x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) | 0);
  for (let i = 0; i < 200; i++) {
    const w = [r(), r(), r(), r(), r(), r(), r() & 0xff, r()];
    sipHash13(w[0], w[1], w[2], w[3], w[4], w[5], w[6] | (13 << 24), w[7]);
    const want = BigInt.asUintN(64, wasm.sipHash(u64(w[0], w[1]), u64(w[2], w[3]), u64(w[4], w[5]), u64(w[6], w[7]), 13));
    assert.is(u64(hashHi, hashLo), want, `case ${i}`);
  }
});

test('flowOf() inverts clientAddr/clientPort', () => {
  for (const i of [0, 1, 63, 64, 4097, (1 << 22) - 1]) assert.is(flowOf(clientAddr(i), clientPort(i)), i);
});

test('quantile() is nearest-rank; chartSvg() draws one line per series with axes', () => {
  const s = Array.from({ length: 1000 }, (_, i) => i + 1);
  assert.is(quantile(s, 0.5), 500);
  assert.is(quantile(s, 0.999), 999);
  assert.is(quantile([3, 1, 2], 1), 3);
  const svg = chartSvg([
    { name: 'A', color: 'red', points: [{ x: 1024, y: 2e7 }, { x: 1 << 20, y: 1e7 }] },
    { name: 'B<1>', color: 'blue', points: [{ x: 1024, y: 1e6 }, { x: 1 << 20, y: 3e5 }] },
  ], 'title', 'live connections', 'packets/s');
  assert.is(svg.match(/<polyline/g)?.length, 2);
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.includes('>1M</text>') && svg.includes('>1K</text>') && svg.includes('>10M</text>'));
  assert.ok(svg.includes('B&lt;1&gt;'));
});

test.run();
