// Persistent services (-p, -M), as ip_vs_sched_persist and ip_vs_check_template: a client's
// new connections follow its template while the template lives; the template lives -p seconds
// after its last use and for as long as connections it scheduled are alive.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type ServiceKey } from '../host/engine/engine.js';
import { RS2, RS3, SMALL, VIP } from './support/dataplane.js';
import { decode, fromHex, tcpPacket, udpPacket } from './support/packets.js';
import { MIXED_OPTIONS, MIXED_RULES } from './support/mixed-traffic.js';
import { ReferenceEngine } from './reference/engine.js';
import type { EngineLike } from './reference/engine-like.js';

const T0 = 9_000_000;
const HTTP: ServiceKey = { protocol: 'tcp', vaddr: VIP, vport: 80 };
const A = `${RS3}:80`; // rr over [.3 (added last, listed first), .2]
const B = `${RS2}:80`;

function engine(persistence: number | undefined, netmask?: string): Engine {
  const e = new Engine(SMALL);
  e.addService({ ...HTTP, scheduler: 'rr', ...(persistence ? { persistence } : {}), ...(netmask ? { netmask } : {}) });
  e.addDest(HTTP, { daddr: RS2, dport: 80, weight: 1 });
  e.addDest(HTTP, { daddr: RS3, dport: 80, weight: 1 });
  return e;
}

/** Opens a connection from client:cport to the VIP; returns the real server or the drop reason. */
function open(e: Engine, client: string, cport: number, now: number, vport = 80): string {
  const r = e.processPacket(tcpPacket({ src: client, dst: VIP, sport: cport, dport: vport, flags: 'S' }), now);
  if (r.verdict !== 'forward') return `${r.verdict}:${r.reason}`;
  const d = decode(r.packet);
  return `${d.dst}:${d.dport}`;
}

test('without -p, rr alternates the same client\'s connections', () => {
  const e = engine(undefined);
  assert.equal([1, 2, 3, 4].map((p) => open(e, '198.51.100.7', p, T0)), [A, B, A, B]);
});

test('-p 300: a client\'s connections all go to its first server; another client is scheduled', () => {
  const e = engine(300);
  assert.equal([1, 2, 3].map((p) => open(e, '198.51.100.7', p, T0)), [A, A, A]);
  // The scheduler was asked once: the next client gets the next server.
  assert.is(open(e, '198.51.100.8', 1, T0), B);
  assert.is(open(e, '198.51.100.8', 2, T0), B);
  const templates = e.connections(T0).filter((c) => c.template);
  assert.equal(templates.map((t) => `${t.caddr}:${t.cport} ${t.vaddr}:${t.vport} ${t.daddr}:${t.dport} ${t.state} ${t.expiresIn}`).sort(), [
    `198.51.100.7:0 ${VIP}:80 ${A} NONE 300000`,
    `198.51.100.8:0 ${VIP}:80 ${B} NONE 300000`,
  ]);
  assert.is(e.counters().liveConns, 5, 'templates are not connections');
});

test('-M 255.255.255.0: the whole /24 shares one template', () => {
  const e = engine(300, '255.255.255.0');
  assert.is(open(e, '198.51.100.7', 1, T0), A);
  assert.is(open(e, '198.51.100.200', 1, T0), A);
  assert.is(open(e, '198.51.101.7', 1, T0), B, 'another /24');
  assert.is(e.connections(T0).filter((c) => c.template && c.caddr === '198.51.100.0').length, 1);
});

test('the template expires -p seconds after its last use once its connections are gone', () => {
  const e = engine(100);
  assert.is(open(e, '198.51.100.7', 1, T0), A); // SYN_RECV: gone at +60 s
  assert.is(open(e, '198.51.100.7', 2, T0 + 50_000), A); // uses the template: it lives to +150 s
  e.expire(T0 + 149_999);
  assert.is(e.connections(T0 + 149_999).filter((c) => c.template).length, 1);
  e.expire(T0 + 150_000);
  assert.is(e.connections(T0 + 150_000).length, 0);
  // A fresh schedule: rr moves on to .2.
  assert.is(open(e, '198.51.100.7', 3, T0 + 150_001), B);
});

test('a template outlives -p while a connection it scheduled is alive (n_control)', () => {
  const e = engine(10);
  const client = '198.51.100.7';
  assert.is(open(e, client, 1, T0), A);
  // Establish it: 900 s.
  e.processPacket(tcpPacket({ src: RS3, dst: client, sport: 80, dport: 1, flags: 'SA' }), T0);
  e.processPacket(tcpPacket({ src: client, dst: VIP, sport: 1, dport: 80, flags: 'A' }), T0);
  e.expire(T0 + 100_000); // ten template lifetimes later
  const t = e.connections(T0 + 100_000).filter((c) => c.template);
  assert.is(t.length, 1, 'the template is still there');
  assert.is(open(e, client, 2, T0 + 100_000), A, 'and still routes the client');
});

test('deleting the template\'s server invalidates it: the client is scheduled afresh', () => {
  const e = engine(300);
  assert.is(open(e, '198.51.100.7', 1, T0), A);
  e.delDest(HTTP, { daddr: RS3, dport: 80 });
  assert.is(open(e, '198.51.100.7', 2, T0 + 1), B);
  assert.is(open(e, '198.51.100.7', 3, T0 + 2), B, 'the new template holds');
});

test('a quiescent (weight 0) server keeps its persistent clients (persistence wins)', () => {
  const e = engine(300);
  assert.is(open(e, '198.51.100.7', 1, T0), A);
  e.editDest(HTTP, { daddr: RS3, dport: 80, weight: 0 });
  assert.is(open(e, '198.51.100.7', 2, T0 + 1), A);
  assert.is(open(e, '198.51.100.8', 1, T0 + 1), B, 'new clients avoid it');
});

test('a port-zero service (-p required) catches every port of the VIP, one template per client', () => {
  const e = new Engine(SMALL);
  const ANY: ServiceKey = { protocol: 'tcp', vaddr: VIP, vport: 0 };
  e.addService({ ...ANY, scheduler: 'rr', persistence: 300 });
  e.addDest(ANY, { daddr: RS2, dport: 0, weight: 1 });
  e.addDest(ANY, { daddr: RS3, dport: 0, weight: 1 });
  // The dest port is the packet's own port (a port-0 real server keeps the service port).
  assert.is(open(e, '198.51.100.7', 1, T0, 443), `${RS3}:443`);
  assert.is(open(e, '198.51.100.7', 2, T0, 22), `${RS3}:22`);
  assert.is(open(e, '198.51.100.8', 1, T0, 22), `${RS2}:22`);
  // A service of the exact port takes precedence over the port-zero one.
  e.addService({ ...HTTP, scheduler: 'rr' });
  e.addDest(HTTP, { daddr: '172.16.0.9', dport: 8080, weight: 1 });
  assert.is(open(e, '198.51.100.7', 3, T0, 80), '172.16.0.9:8080');
});

test('persistence is kept by save() and restore(), and editService can turn it off', () => {
  const e = engine(300, '255.255.255.0');
  const text = e.save();
  assert.match(text, /-A -t 202\.103\.106\.5:80 -s rr -p 300 -M 255\.255\.255\.0\n/);
  const copy = new Engine(SMALL);
  copy.restore(text);
  assert.is(copy.save(), text);
  e.editService({ ...HTTP, scheduler: 'rr' });
  assert.equal([1, 2].map((p) => open(e, '198.51.100.7', p, T0)), [A, B]);
});

test('a full table refuses a persistent connection that needs a template record too', () => {
  const e = new Engine({ ...SMALL, connCapacity: 3 });
  e.addService({ ...HTTP, scheduler: 'rr', persistence: 300 });
  e.addDest(HTTP, { daddr: RS3, dport: 80, weight: 1 });
  assert.is(open(e, '198.51.100.7', 1, T0), A); // template + connection: 2 records
  assert.is(open(e, '198.51.100.8', 1, T0), 'drop:table-full', 'needs 2, 1 left');
  assert.is(open(e, '198.51.100.7', 2, T0), A, 'its template exists: one record is enough');
  assert.is(open(e, '198.51.100.7', 3, T0), 'drop:table-full');
});

test('-o (one-packet scheduling, UDP): every datagram is scheduled and no connection is kept', () => {
  const e = new Engine(SMALL);
  const DNS: ServiceKey = { protocol: 'udp', vaddr: VIP, vport: 53 };
  e.addService({ ...DNS, scheduler: 'rr', onePacket: true });
  e.addDest(DNS, { daddr: RS2, dport: 53, weight: 1 });
  e.addDest(DNS, { daddr: RS3, dport: 53, weight: 1 });
  const sent = [1, 2, 3].map(() => {
    const r = e.processPacket(udpPacket({ src: '198.51.100.7', dst: VIP, sport: 5000, dport: 53, payload: 'q' }), T0);
    assert.is(r.verdict, 'forward');
    assert.is(r.newConnection, true);
    return decode(r.packet).dst;
  });
  assert.equal(sent, [RS3, RS2, RS3], 'the same client tuple, scheduled per datagram');
  assert.is(e.connections(T0).length, 0);
  const c = e.counters();
  assert.is(c.connsCreated, 3);
  assert.is(c.connsExpired, 3);
  assert.match(e.save(), /-A -u 202\.103\.106\.5:53 -s rr -o\n/);
});

test('found by the fuzz: a retired template due in the same tick as its last connection is released once, not walked freed', () => {
  // Template 203.0.114.0/24 -> 172.16.0.6 controls two connections; .6 is deleted; a SYN from
  // the same /24 retires the template (still controlling one) and makes another. Much later,
  // in one 5-second expiry step, the old template falls due and its last connection expires:
  // releasing the template from that connection while the wheel held it as deferred walked a
  // freed record (an out-of-bounds trap). The engines must agree and nothing may throw.
  const steps: Array<[number, string, number?]> = [
    [5209943, '020000000002020000000001080045000028210400004006e84ccb007212ca676a0554da01bb554f294421ead9555002ffff6dfa0000000000000000', 14],
    [5226324, '45000028e036000040062922cb00720aca676a05569d01bb548e234b5347adcd5002ffff6d240000'],
    [5226324, '4500002810ce40004006b882cb007212ca676a0554da01bb554f294521ead9565010ffff6dea0000'],
    [5241454, 'delete 172.16.0.6'],
    [5288575, '45000028583000004006b124cb00720eca676a05554801bb44553cebe8d930585002ffff4cb10000'],
  ];
  const engines: EngineLike[] = [new Engine(MIXED_OPTIONS), new ReferenceEngine(MIXED_OPTIONS)];
  for (const e of engines) e.restore(MIXED_RULES);
  let last = 0;
  const tick = (until: number) => { for (let t = last + 5000; last && t < until; t += 5000) for (const e of engines) e.expire(t); };
  for (const [t, what, l3] of steps) {
    tick(t);
    last = t;
    for (const e of engines) {
      if (what.startsWith('delete')) e.delDest({ protocol: 'tcp', vaddr: VIP, vport: 443 }, { daddr: '172.16.0.6', dport: 443 });
      else e.processPacket(fromHex(what), t, l3 ?? 0);
    }
  }
  tick(6_289_869);
  const seen = engines.map((e) => e.connections(6_289_869).map((c) => `${c.caddr}:${c.cport}>${c.daddr}${c.template ? ' T' : ''}`).sort());
  assert.equal(seen[0], seen[1]);
});

test('a retired template and its last connection due in the same tick both go, and the table stays sound', () => {
  // -p 60: the template and the connection's SYN_RECV timeout fall in the same millisecond
  // bucket (the connection linked last, so taken first). Its server is deleted and a second
  // client of the same /24 retires the template while the first connection still holds it.
  // When the bucket comes, the connection goes, and with it the template, unlinked from the
  // bucket being run; then the freed records must serve new connections normally.
  const e = new Engine({ ...SMALL, connCapacity: 16 });
  e.addService({ ...HTTP, scheduler: 'rr', persistence: 60, netmask: '255.255.255.0' });
  e.addDest(HTTP, { daddr: RS2, dport: 80, weight: 1 });
  e.addDest(HTTP, { daddr: RS3, dport: 80, weight: 1 });
  assert.is(open(e, '198.51.100.7', 1, T0), A);
  e.delDest(HTTP, { daddr: RS3, dport: 80 });
  assert.is(open(e, '198.51.100.8', 1, T0 + 1), B, 'the retired template gives way to a new one');
  e.expire(T0 + 60_000);
  const left = e.connections(T0 + 60_000);
  assert.equal(left.map((c) => `${c.caddr}:${c.cport}${c.template ? ' T' : ''}`).sort(), ['198.51.100.0:0 T', '198.51.100.8:1']);
  // At T0 + 60_001 the last two fall due as well: every record is free and usable again.
  // One /24: its template and 15 connections fill the 16; the next is refused.
  for (let p = 2; p < 17; p++) assert.is(open(e, '198.51.101.9', p, T0 + 60_001), B, `connection ${p}`);
  assert.is(open(e, '198.51.101.9', 17, T0 + 60_001), 'drop:table-full');
  e.expire(T0 + 10 * 60_000);
  assert.equal(e.connections(T0 + 10 * 60_000), []);
  assert.is(e.counters().liveConns, 0);
});

test.run();
