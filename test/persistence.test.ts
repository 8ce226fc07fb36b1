// Persistent services (-p, -M), as ip_vs_sched_persist and ip_vs_check_template: a client's
// new connections follow its template while the template lives; the template lives -p seconds
// after its last use and for as long as connections it scheduled are alive.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type ServiceKey } from '../host/engine.js';
import { RS2, RS3, SMALL, VIP } from './support/dataplane.js';
import { decode, tcpPacket, udpPacket } from './support/packets.js';

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

test.run();
