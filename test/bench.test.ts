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
  summarize, template,
} from '../scripts/bench-lib.js';
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

test.run();
