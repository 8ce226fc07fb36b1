// The reference engine (test/reference/engine.ts) against the WASM engine, side by side: the
// same packets at the same times through both, results compared byte for byte, and both
// compared with packets built independently by the packet kit. Fixtures are rebuilt here from
// the seed's worked example (/work/shared/seed/SUMMARY.md) with test/support/packets.ts; the
// expected packets are the kit's full recomputes, so neither engine's incremental checksum
// adjustment is trusted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type PacketResult } from '../host/engine/engine.js';
import type { ServiceSpec } from '../host/ipvsadm/rules.js';
import type { EngineLike } from './reference/engine-like.js';
import { ReferenceEngine } from './reference/engine.js';
import {
  checksumsValid, decode, fromHex, hex, icmpPacket, ipChecksum, quotePacket, type TcpOpts,
  tcpPacket, udpPacket,
} from './support/packets.js';

const T0 = 5_000_000;
const VIP = '202.103.106.5';
const CLIENT = '202.100.1.2';
const RS2 = '172.16.0.2';
const RS3 = '172.16.0.3';
const ROUTER = '198.51.100.1';
const HTTP: ServiceSpec = { protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'wrr' };
const FTP: ServiceSpec = { protocol: 'tcp', vaddr: VIP, vport: 21, scheduler: 'wrr' };
// The seed's table as ipvsadm-save text: .2 added first, so IPVS lists .3 first and wrr picks it.
const SEED_RULES = `
-A -t ${VIP}:80 -s wrr
-a -t ${VIP}:80 -r ${RS2}:80 -m -w 1
-a -t ${VIP}:80 -r ${RS3}:8000 -m -w 2
-A -t ${VIP}:21 -s wrr
-a -t ${VIP}:21 -r ${RS3}:21 -m -w 1
`;

// Both engines satisfy the one interface the differential tests use (a type-level check).
const typeCheck: EngineLike[] = [new Engine({ connCapacity: 16, slotCount: 4 }), new ReferenceEngine({ connCapacity: 16 })];
void typeCheck;

/** The WASM engine and the reference, configured alike. */
function pair(options: { connCapacity?: number; expireNodestConn?: boolean } = {}): [Engine, ReferenceEngine] {
  return [new Engine({ connCapacity: 1024, slotCount: 8, ...options }), new ReferenceEngine({ connCapacity: 1024, ...options })];
}

function both(engines: EngineLike[], f: (e: EngineLike) => void): void {
  for (const e of engines) f(e);
}

const show = (r: PacketResult) => ({ ...r, packet: hex(r.packet) });
const sortedConns = (e: EngineLike, now?: number) =>
  e.connections(now).map((c) => JSON.stringify(c)).sort();

/** Sends one packet through both engines; asserts identical results; returns the WASM one. */
function send(engines: [Engine, ReferenceEngine], packet: Uint8Array, now: number, what: string): PacketResult {
  const [wasm, ref] = engines.map((e) => e.processPacket(packet, now));
  assert.equal(show(ref), show(wasm), `${what}: results differ`);
  return wasm;
}

/** Connections, counters and per-dest figures agree. */
function sameState(engines: [Engine, ReferenceEngine], now: number, what: string): void {
  const [wasm, ref] = engines;
  assert.equal(sortedConns(ref, now), sortedConns(wasm, now), `${what}: connections`);
  assert.equal(ref.counters(), wasm.counters(), `${what}: counters`);
  assert.equal(ref.listServices(), wasm.listServices(), `${what}: services`);
}

// ---- the seed's golden conversation ------------------------------------------------------------

const SYN_OPTIONS = fromHex('020405b4 0402 080a 0001e240 00000000 01 030307');
const TS_OPTIONS = fromHex('0101 080a 0001e241 0badcafe');
const fromClient = (o: Partial<TcpOpts> & { flags: string }): TcpOpts =>
  ({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, ttl: 57, id: 0x1c46, tos: 0x10, df: true, window: 29200, ...o });
const fromServer = (o: Partial<TcpOpts> & { flags: string }): TcpOpts =>
  ({ src: RS3, dst: CLIENT, sport: 8000, dport: 3456, ttl: 64, id: 0x7a01, df: true, window: 28960, ...o });

// {description, input, expected, verdict}: input as it reaches the director; expected built
// by the kit from the same fields with the seed's rewritten address and port.
const GOLDEN = [
  {
    description: '1. client SYN to VIP:80, wrr picks 172.16.0.3:8000',
    input: tcpPacket(fromClient({ flags: 'S', seq: 0x1000, tcpOptions: SYN_OPTIONS })),
    expected: tcpPacket({ ...fromClient({ flags: 'S', seq: 0x1000, tcpOptions: SYN_OPTIONS }), dst: RS3, dport: 8000 }),
    verdict: 'forward',
  },
  {
    description: '2. SYN+ACK from 172.16.0.3:8000 leaves from VIP:80',
    input: tcpPacket(fromServer({ flags: 'SA', seq: 0x9000, ack: 0x1001, tcpOptions: SYN_OPTIONS })),
    expected: tcpPacket({ ...fromServer({ flags: 'SA', seq: 0x9000, ack: 0x1001, tcpOptions: SYN_OPTIONS }), src: VIP, sport: 80 }),
    verdict: 'forward',
  },
  {
    description: '3. client ACK',
    input: tcpPacket(fromClient({ flags: 'A', seq: 0x1001, ack: 0x9001, tcpOptions: TS_OPTIONS })),
    expected: tcpPacket({ ...fromClient({ flags: 'A', seq: 0x1001, ack: 0x9001, tcpOptions: TS_OPTIONS }), dst: RS3, dport: 8000 }),
    verdict: 'forward',
  },
  {
    description: '4. client data, odd length',
    input: tcpPacket(fromClient({ flags: 'PA', seq: 0x1001, ack: 0x9001, payload: 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' })),
    expected: tcpPacket({ ...fromClient({ flags: 'PA', seq: 0x1001, ack: 0x9001, payload: 'GET / HTTP/1.0\r\nHost: x\r\n\r\n' }), dst: RS3, dport: 8000 }),
    verdict: 'forward',
  },
  {
    description: '5. server data back to the client from the VIP',
    input: tcpPacket(fromServer({ flags: 'PA', seq: 0x9001, ack: 0x101c, payload: 'HTTP/1.0 200 OK\r\n\r\nhello' })),
    expected: tcpPacket({ ...fromServer({ flags: 'PA', seq: 0x9001, ack: 0x101c, payload: 'HTTP/1.0 200 OK\r\n\r\nhello' }), src: VIP, sport: 80 }),
    verdict: 'forward',
  },
  {
    description: '6. client SYN to VIP:21 goes to 172.16.0.3:21',
    input: tcpPacket(fromClient({ flags: 'S', sport: 3457, dport: 21, seq: 77 })),
    expected: tcpPacket({ ...fromClient({ flags: 'S', sport: 3457, dport: 21, seq: 77 }), dst: RS3, dport: 21 }),
    verdict: 'forward',
  },
  {
    description: '7. SYN to VIP:443, no service there: the director\'s to refuse (local)',
    input: tcpPacket(fromClient({ flags: 'S', sport: 3458, dport: 443 })),
    expected: tcpPacket(fromClient({ flags: 'S', sport: 3458, dport: 443 })),
    verdict: 'local',
  },
  {
    description: '8. UDP to another host: not ours, passes unchanged',
    input: udpPacket({ src: CLIENT, dst: '198.51.100.9', sport: 53, dport: 53, payload: 'q' }),
    expected: udpPacket({ src: CLIENT, dst: '198.51.100.9', sport: 53, dport: 53, payload: 'q' }),
    verdict: 'pass',
  },
];

test('the seed conversation through both engines, byte for byte and against the kit', () => {
  const engines = pair();
  both(engines, (e) => e.restore(SEED_RULES));
  GOLDEN.forEach((f, i) => {
    const r = send(engines, f.input, T0 + i, f.description);
    assert.is(r.verdict, f.verdict, f.description);
    assert.is(hex(r.packet), hex(f.expected), f.description);
  });
  sameState(engines, T0 + GOLDEN.length, 'after the conversation');
  const c = engines[1].counters();
  assert.equal([c.forwardIn, c.forwardOut, c.locals['no-service'], c.passes['no-match'], c.liveConns], [4, 2, 1, 1, 2]);
});

test('mutated seed packets: both engines agree on every verdict, reason and byte', () => {
  const engines = pair();
  both(engines, (e) => e.restore(SEED_RULES));
  let seed = 0x2545f491;
  const rand = (n: number) => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; };
  let now = T0;
  for (let round = 0; round < 400; round++) {
    const base = GOLDEN[rand(GOLDEN.length)].input.slice();
    // One to three bytes changed anywhere (header fields, checksums, ports, flags), or cut short.
    for (let k = rand(3); k >= 0; k--) base[rand(base.length)] = rand(256);
    // Half of them with a correct IP header checksum again, so they reach the deeper checks.
    if (rand(2) === 0 && (base[0] & 0x0f) === 5) {
      base[10] = base[11] = 0;
      const sum = ipChecksum(base);
      base[10] = sum >> 8;
      base[11] = sum & 0xff;
    }
    const packet = rand(8) === 0 ? base.slice(0, rand(base.length) + 1) : base;
    now += rand(3000);
    send(engines, packet, now, `round ${round} (${hex(packet)})`);
  }
  sameState(engines, now, 'after the mutations');
});

// ---- TCP state and timeouts -------------------------------------------------------------------

test('TCP state walk: states, expiry times and counts agree after every step, then time out', () => {
  const engines = pair();
  both(engines, (e) => { e.addService(HTTP); e.addDest(HTTP, { daddr: RS3, dport: 8000, weight: 1 }); e.setTimeouts({ tcp: 600, tcpfin: 30 }); });
  const steps: Array<[string, Uint8Array, string, number]> = [
    // [what, packet, state after, expiresIn after (ms)]
    ['SYN in', tcpPacket(fromClient({ flags: 'S' })), 'SYN_RECV', 60_000],
    ['SYN+ACK out', tcpPacket(fromServer({ flags: 'SA' })), 'SYN_RECV', 60_000],
    ['ACK in', tcpPacket(fromClient({ flags: 'A' })), 'ESTABLISHED', 600_000],
    ['data out', tcpPacket(fromServer({ flags: 'PA', payload: 'x' })), 'ESTABLISHED', 600_000],
    ['FIN in', tcpPacket(fromClient({ flags: 'FA' })), 'CLOSE_WAIT', 60_000],
    ['FIN out', tcpPacket(fromServer({ flags: 'FA' })), 'TIME_WAIT', 120_000],
    ['last ACK in', tcpPacket(fromClient({ flags: 'A' })), 'TIME_WAIT', 120_000],
  ];
  let now = T0;
  for (const [what, packet, state, expiresIn] of steps) {
    now += 1000;
    const r = send(engines, packet, now, what);
    assert.is(r.verdict, 'forward', what);
    for (const e of engines) {
      const [c] = e.connections(now);
      assert.equal([c.state, c.expiresIn], [state, expiresIn], `${what} (${e.constructor.name})`);
    }
    sameState(engines, now, what);
  }
  // A new SYN on the TIME_WAIT tuple reuses it; then nothing until it has timed out.
  send(engines, tcpPacket(fromClient({ flags: 'S', seq: 9 })), now + 1, 'SYN on TIME_WAIT');
  assert.is(engines[1].counters().connsReused, 1);
  both(engines, (e) => e.expire(now + 1 + 60_000));
  sameState(engines, now + 1 + 60_000, 'SYN_RECV timed out');
  assert.is(engines[1].counters().liveConns, 0);
  assert.is(send(engines, tcpPacket(fromClient({ flags: 'A' })), now + 70_000, 'ACK after expiry').reason, 'no-conn');
});

test('UDP: one timeout, a zero checksum stays zero, ESTABLISHED never counted', () => {
  const engines = pair();
  const DNS: ServiceSpec = { protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr' };
  both(engines, (e) => { e.addService(DNS); e.addDest(DNS, { daddr: RS2, dport: 5353, weight: 1 }); });
  const q = udpPacket({ src: CLIENT, dst: VIP, sport: 4000, dport: 53, payload: 'query', zeroChecksum: true });
  const r = send(engines, q, T0, 'query without checksum');
  assert.is(hex(r.packet), hex(udpPacket({ src: CLIENT, dst: RS2, sport: 4000, dport: 5353, payload: 'query', zeroChecksum: true })));
  const a = udpPacket({ src: RS2, dst: CLIENT, sport: 5353, dport: 4000, payload: 'answer!' });
  assert.is(hex(send(engines, a, T0 + 10, 'answer').packet), hex(udpPacket({ src: VIP, dst: CLIENT, sport: 53, dport: 4000, payload: 'answer!' })));
  sameState(engines, T0 + 10, 'UDP connection');
  both(engines, (e) => e.expire(T0 + 10 + 300_000));
  sameState(engines, T0 + 10 + 300_000, 'UDP timed out');
  assert.is(engines[1].counters().connsExpired, 1);
});

test('dest life cycle: thresholds, quiescing, deletion with expire_nodest_conn, -o, all agree', () => {
  const engines = pair({ expireNodestConn: true });
  const WEB: ServiceSpec = { protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'wlc' };
  const DNS: ServiceSpec = { protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr', onePacket: true };
  both(engines, (e) => {
    e.addService(WEB);
    e.addDest(WEB, { daddr: RS2, dport: 80, weight: 1, upperThreshold: 2, lowerThreshold: 1 });
    e.addDest(WEB, { daddr: RS3, dport: 80, weight: 3 });
    e.addService(DNS);
    e.addDest(DNS, { daddr: RS2, dport: 53, weight: 1 });
  });
  let now = T0;
  const step = (what: string, packet: Uint8Array) => { now += 500; return send(engines, packet, now, what); };
  for (let i = 0; i < 8; i++) step(`SYN ${i}`, syn(`198.51.100.${i + 1}`, 2000 + i));
  sameState(engines, now, 'eight connections under wlc with a threshold');
  both(engines, (e) => e.editDest(WEB, { daddr: RS3, dport: 80, weight: 0 }));
  step('SYN to a quiesced/overloaded pair', syn('198.51.100.50', 3000));
  both(engines, (e) => e.delDest(WEB, { daddr: RS3, dport: 80 }));
  const gone = engines[1].connections(now).find((c) => c.daddr === RS3 && !c.template)!;
  assert.is(step('ACK on a deleted server\'s connection', tcpPacket({ src: gone.caddr, dst: VIP, sport: gone.cport, dport: 80, flags: 'A' })).reason, 'dest-gone');
  step('UDP -o datagram', udpPacket({ src: CLIENT, dst: VIP, sport: 7000, dport: 53, payload: 'a' }));
  step('its answer finds no connection', udpPacket({ src: RS2, dst: CLIENT, sport: 53, dport: 7000, payload: 'b' }));
  both(engines, (e) => e.addDest(WEB, { daddr: RS3, dport: 80, weight: 2 })); // revived from the trash
  sameState(engines, now, 'after the life cycle');
  both(engines, (e) => e.expire(now + 120_000));
  sameState(engines, now + 120_000, 'all timed out');
});

// ---- persistence ------------------------------------------------------------------------------

const P_HTTP: ServiceSpec = { protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'rr', persistence: 100, netmask: '255.255.255.0' };

function persistentPair(): [Engine, ReferenceEngine] {
  const engines = pair();
  both(engines, (e) => {
    e.addService(P_HTTP);
    e.addDest(P_HTTP, { daddr: RS2, dport: 80, weight: 1 });
    e.addDest(P_HTTP, { daddr: RS3, dport: 80, weight: 1 });
  });
  return engines;
}

const syn = (client: string, cport: number) => tcpPacket({ src: client, dst: VIP, sport: cport, dport: 80, flags: 'S' });

test('persistence -p 100 -M /24: a network sticks to its server; templates listed and expired alike', () => {
  const engines = persistentPair();
  const dst = (r: PacketResult) => decode(r.packet).dst;
  const first = dst(send(engines, syn('198.51.100.7', 1000), T0, 'first client'));
  assert.is(dst(send(engines, syn('198.51.100.77', 1000), T0 + 1, 'same /24')), first);
  assert.is.not(dst(send(engines, syn('198.51.101.7', 1000), T0 + 2, 'another /24')), first);
  sameState(engines, T0 + 2, 'three connections, two templates');
  assert.is(engines[1].connections(T0 + 2).filter((c) => c.template).length, 2);
  // Connections (SYN_RECV, 60 s) go; the templates live 100 s after their last use.
  both(engines, (e) => e.expire(T0 + 60_002));
  sameState(engines, T0 + 60_002, 'connections gone, templates kept');
  both(engines, (e) => e.expire(T0 + 100_002));
  sameState(engines, T0 + 100_002, 'templates gone');
  assert.equal(engines[1].connections(T0 + 100_002), []);
});

test('persistence: a template due while its connection lives is kept, however coarse the expiry steps', () => {
  // As IPVS (ip_vs_conn_expire: a template with n_control re-arms its timer), the template due
  // at +100 s still controls the connection, which lives to +110 s (its SYN+ACK came at +50 s),
  // so the template lives on and the client's next connection goes to the same server.
  // Expiry in one step from +50 s to +115 s must give the same answer as steps of a second.
  for (const step of [1000, 65_000]) {
    const engines = persistentPair();
    const r = send(engines, syn('198.51.100.7', 1000), T0, 'SYN');
    const server = decode(r.packet).dst;
    send(engines, tcpPacket({ src: server, dst: '198.51.100.7', sport: 80, dport: 1000, flags: 'SA' }), T0 + 50_000, 'SYN+ACK');
    for (let t = T0 + 50_000 + step; t <= T0 + 115_000; t += step) both(engines, (e) => e.expire(t));
    for (const e of engines) {
      const templates = e.connections(T0 + 115_000).filter((c) => c.template).map((c) => c.daddr);
      assert.equal(templates, [server], `${e.constructor.name}, expiry in steps of ${step} ms: the template is alive`);
    }
  }
});

test('persistence: a template of a deleted server does not follow its record to a new server', () => {
  // IPVS: the template holds its dest; once that dest is deleted, ip_vs_check_template retires
  // the template and the client is scheduled afresh among the service's servers.
  const engines = persistentPair();
  const OTHER: ServiceSpec = { protocol: 'tcp', vaddr: '202.103.106.6', vport: 80, scheduler: 'rr' };
  const first = decode(send(engines, syn('198.51.100.7', 1000), T0, 'SYN').packet).dst;
  send(engines, tcpPacket({ src: first, dst: '198.51.100.7', sport: 80, dport: 1000, flags: 'R' }), T0 + 1, 'RST: CLOSE, 10 s');
  both(engines, (e) => e.expire(T0 + 20_000)); // the connection is gone, the template lives to +100 s
  both(engines, (e) => {
    e.delDest(P_HTTP, { daddr: first, dport: 80 });
    e.addService(OTHER);
    e.addDest(OTHER, { daddr: '10.9.9.9', dport: 8080, weight: 1 }); // takes the deleted dest's record
  });
  const survivor = first === RS2 ? RS3 : RS2;
  for (const e of engines) {
    const d = decode(e.processPacket(syn('198.51.100.7', 1001), T0 + 21_000).packet);
    assert.equal(`${d.dst}:${d.dport}`, `${survivor}:80`, `${e.constructor.name}: scheduled among ${VIP}:80's servers`);
  }
});

// ---- ICMP ---------------------------------------------------------------------------------------

const icmpError = (src: string, dst: string, type: number, code: number, rest: number, quoted: Uint8Array): Uint8Array =>
  icmpPacket({ src, dst, type, code, rest, body: quoted, ttl: 60 });

const quote = quotePacket;

test('ICMP errors both ways: translated alike, checksums recomputed, timers untouched', () => {
  const engines = pair();
  both(engines, (e) => e.restore(SEED_RULES));
  send(engines, tcpPacket(fromClient({ flags: 'S', seq: 100 })), T0, 'SYN');
  send(engines, tcpPacket(fromServer({ flags: 'SA', seq: 500, ack: 101 })), T0, 'SYN+ACK');
  // Fragmentation needed about a reply we sent (VIP -> client): to the real server.
  const sentReply = tcpPacket({ ...fromServer({ flags: 'PA', seq: 501, ack: 101, payload: 'y'.repeat(1400) }), src: VIP, sport: 80 });
  const realReply = tcpPacket(fromServer({ flags: 'PA', seq: 501, ack: 101, payload: 'y'.repeat(1400) }));
  const r1 = send(engines, icmpError(ROUTER, VIP, 3, 4, 1400, quote(sentReply, 8)), T0 + 30_000, 'frag needed');
  assert.is(hex(r1.packet), hex(icmpError(ROUTER, RS3, 3, 4, 1400, quote(realReply, 8))));
  // Time exceeded about a request we sent (client -> real server), 20 bytes of TCP quoted.
  const sentReq = tcpPacket({ ...fromClient({ flags: 'A', seq: 101, ack: 501 }), dst: RS3, dport: 8000 });
  const r2 = send(engines, icmpError(ROUTER, CLIENT, 11, 0, 0, quote(sentReq, 20)), T0 + 30_000, 'time exceeded');
  assert.is(hex(r2.packet), hex(icmpError(VIP, CLIENT, 11, 0, 0, quote(tcpPacket(fromClient({ flags: 'A', seq: 101, ack: 501 })), 20))));
  assert.equal(checksumsValid(r2.packet), { ip: true, l4: true });
  assert.is(r2.reply, true);
  sameState(engines, T0 + 30_000, 'after two errors');
  assert.is(engines[1].connections(T0 + 30_000)[0].expiresIn, 30_000, 'the SYN_RECV timer is the SYN+ACK\'s');
  // About a connection that is not there: ours (from the VIP) is dropped, transit passes.
  const stray = tcpPacket({ src: VIP, dst: CLIENT, sport: 80, dport: 9999, flags: 'A' });
  assert.is(send(engines, icmpError(ROUTER, VIP, 3, 3, 0, quote(stray, 8)), T0 + 30_001, 'no conn').reason, 'icmp-no-conn');
  const transit = tcpPacket({ src: '192.0.2.1', dst: CLIENT, sport: 80, dport: 9999, flags: 'A' });
  assert.is(send(engines, icmpError(ROUTER, '192.0.2.1', 3, 3, 0, quote(transit, 8)), T0 + 30_001, 'transit').reason, 'no-match');
  sameState(engines, T0 + 30_001, 'after the strays');
});

test('the reference alone: the golden reply is translated as the seed says', () => {
  // A check of the oracle that does not go through the WASM engine.
  const e = new ReferenceEngine();
  e.addService(FTP);
  e.addDest(FTP, { daddr: RS3, dport: 21, weight: 1 });
  e.processPacket(tcpPacket(fromClient({ flags: 'S', sport: 3457, dport: 21 })), T0);
  const r = e.processPacket(tcpPacket(fromServer({ flags: 'SA', sport: 21, dport: 3457 })), T0 + 1);
  assert.is(hex(r.packet), hex(tcpPacket({ ...fromServer({ flags: 'SA', sport: 21, dport: 3457 }), src: VIP, sport: 21 })));
  assert.equal([r.verdict, r.reply, r.newConnection], ['forward', true, false]);
});

test.run();
