// NAT forwarding (assembly/nat.ts) end to end through the Engine: the seed's worked example
// byte for byte (/work/shared/seed/SUMMARY.md; the Chinese original's four address tables:
// 202.100.1.2:3456 -> 202.103.106.5:80 leaves as -> 172.16.0.3:8000, and the reply
// 172.16.0.3:8000 -> 202.100.1.2:3456 leaves as 202.103.106.5:80 -> 202.100.1.2:3456),
// refusals, scheduling through the data plane, and the ring path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type Verdict } from '../host/engine/engine.js';
import type { ServiceSpec } from '../host/ipvsadm/rules.js';
import {
  CLIENT, HTTP, RS2, RS3, SMALL, VIP, addrBytes, changedOffsets, countersAddUp, seedEngine,
} from './support/dataplane.js';
import {
  checksumsValid, decode, ethernetFrame, fromHex, hex, ipv4Packet, tcpPacket, udpPacket,
  type TcpOpts,
} from './support/packets.js';

const T0 = 1_000_000; // engine milliseconds; any origin will do

// MSS 1460, SACK permitted, timestamps (123456, 0), NOP, window scale 7: 20 bytes.
const SYN_TCP_OPTIONS = fromHex('020405b4 0402 080a 0001e240 00000000 01 030307');
// NOP, NOP, timestamps: what a data segment carries.
const TS_OPTIONS = fromHex('0101 080a 0001e241 0badcafe');

/** Client -> VIP:80, with non-default TTL, ID, TOS and DF so a NAT that touched them would show. */
function fromClient(o: Partial<TcpOpts> & { flags: string }): TcpOpts {
  return { src: CLIENT, dst: VIP, sport: 3456, dport: 80, ttl: 57, id: 0x1c46, tos: 0x10, df: true, window: 29200, ...o };
}

/** Real server -> client, as 172.16.0.3:8000 sends it. */
function fromServer(o: Partial<TcpOpts> & { flags: string }): TcpOpts {
  return { src: RS3, dst: CLIENT, sport: 8000, dport: 3456, ttl: 64, id: 0x7a01, tos: 0x00, df: true, window: 28960, ...o };
}

interface Fixture {
  description: string;
  input: Uint8Array;
  expected: Uint8Array;
  verdict: Verdict;
  reply: boolean;
  newConnection: boolean;
}

// The seed's golden conversation, one engine, in order. Made with the packet kit: `input` is
// the packet as it reaches the director; `expected` is built separately from the same fields
// with only the seed's rewritten address and port changed, so both checksums in it are the
// kit's full recompute (RFC 1071), not the engine's incremental adjustment (RFC 1624).
const GOLDEN: Fixture[] = [
  {
    description: '1. client SYN with options to VIP:80, scheduled (wrr, first pick) to 172.16.0.3:8000',
    input: tcpPacket(fromClient({ flags: 'S', seq: 0x1000, tcpOptions: SYN_TCP_OPTIONS })),
    expected: tcpPacket({ ...fromClient({ flags: 'S', seq: 0x1000, tcpOptions: SYN_TCP_OPTIONS }), dst: RS3, dport: 8000 }),
    verdict: 'forward', reply: false, newConnection: true,
  },
  {
    description: '2. SYN+ACK 172.16.0.3:8000 -> client leaves as 202.103.106.5:80 -> client',
    input: tcpPacket(fromServer({ flags: 'SA', seq: 0x9000, ack: 0x1001, tcpOptions: SYN_TCP_OPTIONS })),
    expected: tcpPacket({ ...fromServer({ flags: 'SA', seq: 0x9000, ack: 0x1001, tcpOptions: SYN_TCP_OPTIONS }), src: VIP, sport: 80 }),
    verdict: 'forward', reply: true, newConnection: false,
  },
  {
    description: '3. client ACK',
    input: tcpPacket(fromClient({ flags: 'A', seq: 0x1001, ack: 0x9001, tcpOptions: TS_OPTIONS })),
    expected: tcpPacket({ ...fromClient({ flags: 'A', seq: 0x1001, ack: 0x9001, tcpOptions: TS_OPTIONS }), dst: RS3, dport: 8000 }),
    verdict: 'forward', reply: false, newConnection: false,
  },
  {
    description: '4. client data segment (odd length payload)',
    input: tcpPacket(fromClient({ flags: 'PA', seq: 0x1001, ack: 0x9001, tcpOptions: TS_OPTIONS, payload: 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' })),
    expected: tcpPacket({ ...fromClient({ flags: 'PA', seq: 0x1001, ack: 0x9001, tcpOptions: TS_OPTIONS, payload: 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' }), dst: RS3, dport: 8000 }),
    verdict: 'forward', reply: false, newConnection: false,
  },
  {
    description: '5. server data segment back to the client, source rewritten to the VIP',
    input: tcpPacket(fromServer({ flags: 'PA', seq: 0x9001, ack: 0x101c, payload: 'HTTP/1.0 200 OK\r\n\r\nhello' })),
    expected: tcpPacket({ ...fromServer({ flags: 'PA', seq: 0x9001, ack: 0x101c, payload: 'HTTP/1.0 200 OK\r\n\r\nhello' }), src: VIP, sport: 80 }),
    verdict: 'forward', reply: true, newConnection: false,
  },
  {
    description: '6. client SYN to VIP:21 goes to 172.16.0.3:21',
    input: tcpPacket(fromClient({ flags: 'S', sport: 3457, dport: 21, seq: 77 })),
    expected: tcpPacket({ ...fromClient({ flags: 'S', sport: 3457, dport: 21, seq: 77 }), dst: RS3, dport: 21 }),
    verdict: 'forward', reply: false, newConnection: true,
  },
  {
    description: '7. its SYN+ACK from 172.16.0.3:21 leaves as 202.103.106.5:21',
    input: tcpPacket(fromServer({ flags: 'SA', sport: 21, dport: 3457, seq: 5, ack: 78 })),
    expected: tcpPacket({ ...fromServer({ flags: 'SA', sport: 21, dport: 3457, seq: 5, ack: 78 }), src: VIP, sport: 21 }),
    verdict: 'forward', reply: true, newConnection: false,
  },
];

test('the seed conversation, byte for byte', () => {
  const e = seedEngine();
  GOLDEN.forEach((f, i) => {
    const r = e.processPacket(f.input, T0 + i);
    assert.is(r.verdict, f.verdict, f.description);
    assert.is(hex(r.packet), hex(f.expected), f.description);
    assert.is(r.reply, f.reply, `${f.description}: reply flag`);
    assert.is(r.newConnection, f.newConnection, `${f.description}: newConnection flag`);
  });
  const conns = e.connections(T0 + GOLDEN.length).map((c) => `${c.caddr}:${c.cport} ${c.vaddr}:${c.vport} ${c.daddr}:${c.dport}`).sort();
  assert.equal(conns, [
    '202.100.1.2:3456 202.103.106.5:80 172.16.0.3:8000',
    '202.100.1.2:3457 202.103.106.5:21 172.16.0.3:21',
  ]);
  const c = e.counters();
  assert.is(c.forwardIn, 4);
  assert.is(c.forwardOut, 3);
  assert.is(c.connsCreated, 2);
  // ipvsadm --stats per real server: packets and IP bytes each way.
  const bytes = (idx: number[]) => idx.reduce((n, i) => n + GOLDEN[i].input.length, 0);
  const stats = e.listServices().flatMap((s) => s.dests.map((d) => [`${s.vport}>${d.daddr}:${d.dport}`, d.conns, d.inPkts, d.outPkts, d.inBytes, d.outBytes]));
  assert.equal(stats, [
    ['80>172.16.0.3:8000', 1, 3, 2, bytes([0, 2, 3]), bytes([1, 4])],
    ['80>172.16.0.2:80', 0, 0, 0, 0, 0],
    ['21>172.16.0.3:21', 1, 1, 1, bytes([5]), bytes([6])],
  ]);
});

test('the fixtures themselves: valid checksums, and only the rewritten fields differ', () => {
  for (const f of GOLDEN) {
    assert.equal(checksumsValid(f.input), { ip: true, l4: true }, f.description);
    assert.equal(checksumsValid(f.expected), { ip: true, l4: true }, f.description);
    assert.is.not(hex(f.input), hex(f.expected), f.description);
  }
});

function synTo(sport: number, dport = 80, dst = VIP): Uint8Array {
  return tcpPacket({ src: CLIENT, dst, sport, dport, flags: 'S', seq: sport * 1000 });
}

function dest(p: Uint8Array): string {
  const d = decode(p);
  return `${d.dst}:${d.dport}`;
}

test('wrr 1:2 in the seed: new :80 connections go .3 .2 .3 .3 .2 .3 .3 .2 .3', () => {
  const e = seedEngine();
  const got = Array.from({ length: 9 }, (_, i) => dest(e.processPacket(synTo(40000 + i), T0).packet));
  const A = `${RS3}:8000`;
  const B = `${RS2}:80`;
  assert.equal(got, [A, B, A, A, B, A, A, B, A]);
});

test('wrr 1:2 over 3000 new connections gives exactly 2000 / 1000', () => {
  const e = seedEngine({ connCapacity: 4096 });
  const tally = new Map<string, number>();
  for (let i = 0; i < 3000; i++) {
    const r = e.processPacket(synTo(10000 + i), T0 + i);
    assert.is(r.verdict, 'forward');
    const d = dest(r.packet);
    tally.set(d, (tally.get(d) ?? 0) + 1);
  }
  assert.equal(Object.fromEntries(tally), { [`${RS3}:8000`]: 2000, [`${RS2}:80`]: 1000 });
  const http = e.listServices().find((s) => s.vport === 80)!;
  assert.equal(http.dests.map((d) => [d.daddr, d.conns, d.inactConns, d.activeConns]), [[RS3, 2000, 2000, 0], [RS2, 1000, 1000, 0]]);
});

test('weight 0 quiesces a server: no new connections, its existing one keeps forwarding', () => {
  const e = seedEngine();
  // Connection 1 goes to .3, connection 2 to .2 (the wrr order above).
  e.processPacket(synTo(5001), T0);
  const toRs2 = e.processPacket(synTo(5002), T0 + 1);
  assert.is(dest(toRs2.packet), `${RS2}:80`);
  e.editDest(HTTP, { daddr: RS2, dport: 80, weight: 0 });
  for (let i = 0; i < 30; i++) {
    assert.is(dest(e.processPacket(synTo(6000 + i), T0 + 2).packet), `${RS3}:8000`, `new connection ${i}`);
  }
  // The quiesced server's own connection: client data still reaches it, its replies still leave.
  const data = e.processPacket(tcpPacket({ src: CLIENT, dst: VIP, sport: 5002, dport: 80, flags: 'PA', payload: 'more' }), T0 + 3);
  assert.is(data.verdict, 'forward');
  assert.is(dest(data.packet), `${RS2}:80`);
  const back = e.processPacket(tcpPacket({ src: RS2, dst: CLIENT, sport: 80, dport: 5002, flags: 'PA', payload: 'ok' }), T0 + 4);
  assert.is(back.verdict, 'forward');
  assert.is(`${decode(back.packet).src}:${decode(back.packet).sport}`, `${VIP}:80`);
  // Weight back up: it is scheduled again.
  e.editDest(HTTP, { daddr: RS2, dport: 80, weight: 1 });
  const again = Array.from({ length: 6 }, (_, i) => dest(e.processPacket(synTo(7000 + i), T0 + 5).packet));
  assert.ok(again.includes(`${RS2}:80`), again.join(' '));
});

test('delDest: no new connections to it, its existing connection keeps forwarding both ways', () => {
  const e = seedEngine();
  e.processPacket(synTo(5001), T0); // -> .3
  assert.is(dest(e.processPacket(synTo(5002), T0).packet), `${RS2}:80`);
  e.delDest(HTTP, { daddr: RS2, dport: 80 });
  for (let i = 0; i < 10; i++) assert.is(dest(e.processPacket(synTo(6000 + i), T0 + 1).packet), `${RS3}:8000`);
  const data = e.processPacket(tcpPacket({ src: CLIENT, dst: VIP, sport: 5002, dport: 80, flags: 'A' }), T0 + 2);
  assert.is(dest(data.packet), `${RS2}:80`);
  const back = e.processPacket(tcpPacket({ src: RS2, dst: CLIENT, sport: 80, dport: 5002, flags: 'A' }), T0 + 2);
  assert.is(back.verdict, 'forward');
  assert.is(decode(back.packet).src, VIP);
  assert.equal(e.listServices()[0].dests.map((d) => d.daddr), [RS3]);
});

test('rr: newest dest first, weight 0 skipped (ip_vs_rr.c)', () => {
  const e = new Engine(SMALL);
  const svc: ServiceSpec = { protocol: 'tcp', vaddr: '10.9.0.1', vport: 443, scheduler: 'rr' };
  e.addService(svc);
  for (const a of ['10.9.1.1', '10.9.1.2', '10.9.1.3']) e.addDest(svc, { daddr: a, dport: 8443, weight: 1 });
  const pick = (n: number, base: number) => Array.from({ length: n }, (_, i) =>
    decode(e.processPacket(synTo(base + i, 443, '10.9.0.1'), T0).packet).dst);
  assert.equal(pick(6, 100), ['10.9.1.3', '10.9.1.2', '10.9.1.1', '10.9.1.3', '10.9.1.2', '10.9.1.1']);
  e.editDest(svc, { daddr: '10.9.1.2', dport: 8443, weight: 0 });
  assert.equal(pick(4, 200), ['10.9.1.3', '10.9.1.1', '10.9.1.3', '10.9.1.1']);
});

test('refused: SYN to VIP:22 and UDP to VIP:80 are local no-service (the director answers), unchanged', () => {
  const e = seedEngine();
  const cases = [
    tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 22, flags: 'S' }),
    udpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, payload: 'x' }),
  ];
  for (const p of cases) {
    const r = e.processPacket(p, T0);
    assert.is(r.verdict, 'local');
    assert.is(r.reason, 'no-service');
    assert.is(hex(r.packet), hex(p));
  }
  assert.is(e.counters().locals['no-service'], 2);
  assert.is(e.counters().local, 2);
  assert.is(e.counters().drop, 0);
  assert.is(e.counters().connsCreated, 0);
});

test('not for a VIP: passes unchanged (no-match), no connection', () => {
  const e = seedEngine();
  const p = tcpPacket({ src: CLIENT, dst: '202.103.106.6', sport: 3456, dport: 80, flags: 'S' });
  const r = e.processPacket(p, T0);
  assert.is(r.verdict, 'pass');
  assert.is(r.reason, 'no-match');
  assert.is(hex(r.packet), hex(p));
  assert.is(e.connections(T0).length, 0);
});

test('only addresses, ports and checksums change; TTL, ID, TOS, flags, options and payload do not', () => {
  const e = seedEngine();
  const payload = Uint8Array.from({ length: 301 }, (_, i) => (i * 37 + 11) & 0xff);
  const ipOptions = fromHex('01010100'); // NOP NOP NOP EOL: a 24-byte IP header
  const syn = tcpPacket({ ...fromClient({ flags: 'S', tcpOptions: SYN_TCP_OPTIONS }), options: ipOptions });
  const data = tcpPacket({ ...fromClient({ flags: 'PAU', seq: 1, ack: 2, tcpOptions: TS_OPTIONS, payload }), options: ipOptions, ttl: 3, id: 0xfffe, tos: 0xb8 });
  const reply = tcpPacket({ ...fromServer({ flags: 'FPA', payload: payload.subarray(0, 99) }), options: ipOptions, ttl: 1, id: 1, tos: 0x04 });
  const l4 = 24;
  const ipChecksum = [10, 11];
  const ports = (which: 'src' | 'dst') => (which === 'src' ? [l4, l4 + 1] : [l4 + 2, l4 + 3]);
  const tcpChecksum = [l4 + 16, l4 + 17];
  const addr = (which: 'src' | 'dst') => (which === 'src' ? [12, 13, 14, 15] : [16, 17, 18, 19]);
  for (const [p, side, to, t] of [[syn, 'dst', [...addrBytes(RS3), 0x1f, 0x40], 0], [data, 'dst', [...addrBytes(RS3), 0x1f, 0x40], 1], [reply, 'src', [...addrBytes(VIP), 0x00, 0x50], 2]] as const) {
    const r = e.processPacket(p, T0 + t);
    assert.is(r.verdict, 'forward');
    const allowed = new Set([...ipChecksum, ...addr(side), ...ports(side), ...tcpChecksum]);
    const changed = changedOffsets(p, r.packet);
    assert.equal(changed.filter((i) => !allowed.has(i)), [], `bytes outside addresses/ports/checksums changed: ${changed.join(',')}`);
    // And the rewritten field holds the new endpoint, bytes on the wire.
    const at = side === 'dst' ? 16 : 12;
    const portAt = side === 'dst' ? l4 + 2 : l4;
    assert.equal([...r.packet.subarray(at, at + 4), ...r.packet.subarray(portAt, portAt + 2)], [...to]);
    assert.equal(checksumsValid(r.packet), { ip: true, l4: true });
  }
});

test('ring path: many slots, one process() call, each verdict and rewritten packet', () => {
  const e = seedEngine();
  const A = { addr: RS3, port: 8000 };
  const B = { addr: RS2, port: 80 };
  const order = [A, B, A]; // wrr period over the seed's weights
  type Slot = { input: Uint8Array; l3: number; verdict: Verdict; reason?: string; expected: Uint8Array };
  const slots: Slot[] = [];
  let newConns = 0;
  for (let i = 0; i < 48; i++) {
    const opts = { src: CLIENT, dst: VIP, sport: 20000 + i, dport: 80, flags: 'S', seq: i, payload: 'x'.repeat(i % 7) };
    const input = tcpPacket(opts);
    if (i % 8 === 5) {
      // Not a VIP: passes untouched.
      const other = tcpPacket({ ...opts, dst: '198.18.0.9' });
      slots.push({ input: other, l3: 0, verdict: 'pass', reason: 'no-match', expected: other });
    } else if (i % 8 === 6) {
      const refused = tcpPacket({ ...opts, dport: 23 });
      slots.push({ input: refused, l3: 0, verdict: 'local', reason: 'no-service', expected: refused });
    } else if (i % 8 === 7) {
      // An Ethernet frame: the link header must come out byte-identical.
      const to = order[newConns++ % 3];
      const frame = ethernetFrame(input, { src: '02:aa:bb:cc:dd:01', dst: '02:aa:bb:cc:dd:02' });
      const out = ethernetFrame(tcpPacket({ ...opts, dst: to.addr, dport: to.port }), { src: '02:aa:bb:cc:dd:01', dst: '02:aa:bb:cc:dd:02' });
      slots.push({ input: frame, l3: 14, verdict: 'forward', expected: out });
    } else {
      const to = order[newConns++ % 3];
      slots.push({ input, l3: 0, verdict: 'forward', expected: tcpPacket({ ...opts, dst: to.addr, dport: to.port }) });
    }
  }
  slots.forEach((s, i) => e.writeSlot(i, s.input, s.l3));
  const forwarded = e.process(0, slots.length, T0);
  assert.is(forwarded, slots.filter((s) => s.verdict === 'forward').length);
  slots.forEach((s, i) => {
    assert.is(e.verdict(i), s.verdict, `slot ${i}`);
    assert.is(e.reason(i), s.reason, `slot ${i} reason`);
    assert.is(e.slotLength(i), s.input.length, `slot ${i} length`);
    assert.is(hex(e.slot(i).subarray(0, s.input.length)), hex(s.expected), `slot ${i} bytes`);
    if (s.l3 === 14) assert.is(hex(e.slot(i).subarray(0, 14)), hex(s.input.subarray(0, 14)), `slot ${i} Ethernet header`);
  });
  const c = e.counters();
  assert.is(c.packets, 48);
  assert.is(c.connsCreated, newConns);
  assert.is(countersAddUp(c), undefined);
});

test('ring path wraps: process(start, n) continues from slot 0 after the last slot', () => {
  const e = seedEngine({ slotCount: 8 });
  const idx = [6, 7, 0, 1];
  idx.forEach((slot, k) => e.writeSlot(slot, synTo(30000 + k)));
  e.writeSlot(2, synTo(39999)); // outside the batch: must stay unprocessed
  assert.is(e.process(6, 4, T0), 4);
  idx.forEach((slot) => assert.is(e.verdict(slot), 'forward', `slot ${slot}`));
  assert.is(e.verdict(2), 'none');
  assert.is(dest(e.slot(2).subarray(0, 40)), `${VIP}:80`);
});

test('UDP through the seed VIP with its own service: forward both ways, fields from the kit', () => {
  const e = seedEngine();
  const dns: ServiceSpec = { protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'wrr' };
  e.addService(dns);
  e.addDest(dns, { daddr: RS2, dport: 5353, weight: 1 });
  const q = { src: CLIENT, dst: VIP, sport: 3456, dport: 53, id: 9, payload: 'query' };
  const a = { src: RS2, dst: CLIENT, sport: 5353, dport: 3456, id: 10, payload: 'answer!' };
  const r1 = e.processPacket(udpPacket(q), T0);
  assert.is(hex(r1.packet), hex(udpPacket({ ...q, dst: RS2, dport: 5353 })));
  const r2 = e.processPacket(udpPacket(a), T0 + 1);
  assert.is(hex(r2.packet), hex(udpPacket({ ...a, src: VIP, sport: 53 })));
  assert.ok(r2.reply);
});

test('to the VIP, an ICMP echo is local icmp and another protocol local protocol; elsewhere they pass (protocol)', () => {
  const e = seedEngine();
  const icmp = ipv4Packet({ src: CLIENT, dst: VIP, protocol: 1, payload: fromHex('0800f7ff00000000') });
  const r = e.processPacket(icmp, T0);
  assert.is(r.verdict, 'local');
  assert.is(r.reason, 'icmp');
  assert.is(hex(r.packet), hex(icmp));
  const other = ipv4Packet({ src: CLIENT, dst: VIP, protocol: 255, payload: fromHex('00010203') });
  const o = e.processPacket(other, T0);
  assert.equal([o.verdict, o.reason, hex(o.packet)], ['local', 'protocol', hex(other)]);
  for (const protocol of [1, 255]) {
    const transit = ipv4Packet({ src: CLIENT, dst: '198.18.0.1', protocol, payload: fromHex('0800f7ff00000000') });
    const t = e.processPacket(transit, T0);
    assert.equal([t.verdict, t.reason], ['pass', 'protocol'], `protocol ${protocol}`);
  }
  assert.equal(e.counters().locals, { 'no-service': 0, icmp: 1, protocol: 1 });
});

test.run();
