// Real-server life cycle: connection thresholds (-x/-y, the OVERLOAD flag of
// ip_vs_bind_dest/ip_vs_unbind_dest), quiescence, deletion with expire_nodest_conn off and on.
// Sequence tests: the state is checked after every step.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine } from '../host/engine/engine.js';
import type { ServiceKey } from '../host/engine/engine.js';
import { CLIENT, RS2, RS3, SMALL, VIP } from './support/dataplane.js';
import { decode, tcpPacket } from './support/packets.js';

const T0 = 5_000_000;
const HTTP: ServiceKey = { protocol: 'tcp', vaddr: VIP, vport: 80 };

function syn(cport: number): Uint8Array {
  return tcpPacket({ src: CLIENT, dst: VIP, sport: cport, dport: 80, flags: 'S' });
}
function ack(cport: number): Uint8Array {
  return tcpPacket({ src: CLIENT, dst: VIP, sport: cport, dport: 80, flags: 'A' });
}

/** The real server a SYN from `cport` was sent to, as "addr:port", or the drop reason. */
function open(e: Engine, cport: number, now: number): string {
  const r = e.processPacket(syn(cport), now);
  if (r.verdict !== 'forward') return `${r.verdict}:${r.reason}`;
  const d = decode(r.packet);
  return `${d.dst}:${d.dport}`;
}

function dest(e: Engine, daddr: string) {
  const d = e.listServices()[0].dests.find((x) => x.daddr === daddr);
  if (!d) throw new Error(`no dest ${daddr}`);
  return d;
}

// Connections here stay in SYN_RECV (an input RST does not close that state in IPVS's table),
// so they leave the table by timing out, 60 s after their SYN: opening them 10 s apart makes
// them leave one at a time.
const SYN_RECV_MS = 60_000;

test('upper threshold: a server with -x 3 gets no 4th connection until it drops below -y 2', () => {
  // rr over [.3 (added last, listed first), .2]; .3 has -x 3 -y 2, .2 has no thresholds.
  const e = new Engine(SMALL);
  e.addService({ ...HTTP, scheduler: 'rr' });
  e.addDest(HTTP, { daddr: RS2, dport: 80, weight: 1 });
  e.addDest(HTTP, { daddr: RS3, dport: 80, weight: 1, upperThreshold: 3, lowerThreshold: 2 });
  const A = `${RS3}:80`;
  const B = `${RS2}:80`;
  // rr alternates .3 .2 .3 .2 .3 (at 0, 0, 10, 10, 20 s): .3 reaches 3 connections -> OVERLOAD.
  assert.equal([[1, 0], [2, 0], [3, 10], [4, 10], [5, 20]].map(([p, s]) => open(e, p, T0 + s * 1000)), [A, B, A, B, A]);
  assert.is(dest(e, RS3).inactConns, 3);
  assert.equal([6, 7, 8].map((p) => open(e, p, T0 + 20_000)), [B, B, B]);
  // At 60 s the first of .3's connections times out: 2 left, not below the lower threshold 2.
  e.expire(T0 + SYN_RECV_MS);
  assert.is(dest(e, RS3).inactConns, 2);
  assert.equal([9, 10].map((p) => open(e, p, T0 + SYN_RECV_MS)), [B, B]);
  // At 70 s the second goes: 1 < 2, the overload lifts and .3 is scheduled again.
  e.expire(T0 + 10_000 + SYN_RECV_MS);
  assert.is(dest(e, RS3).inactConns, 1);
  assert.equal(open(e, 11, T0 + 10_000 + SYN_RECV_MS), A);
});

test('upper threshold without a lower one lifts below three quarters of the upper', () => {
  const e = new Engine(SMALL);
  e.addService({ ...HTTP, scheduler: 'rr' });
  e.addDest(HTTP, { daddr: RS3, dport: 80, weight: 1, upperThreshold: 4 });
  for (let p = 1; p <= 4; p++) assert.is(open(e, p, T0 + (p - 1) * 10_000), `${RS3}:80`);
  assert.is(open(e, 5, T0 + 30_000), 'drop:no-dest', 'overloaded, and no other server');
  // At 60 s one goes: 3 * 4 = 12 is not < 4 * 3 = 12, still overloaded.
  e.expire(T0 + SYN_RECV_MS);
  assert.is(open(e, 6, T0 + SYN_RECV_MS), 'drop:no-dest');
  // At 70 s another: 2 * 4 = 8 < 12, lifted.
  e.expire(T0 + 10_000 + SYN_RECV_MS);
  assert.is(open(e, 7, T0 + 10_000 + SYN_RECV_MS), `${RS3}:80`);
});

test('raising the upper threshold with editDest lifts the overload at once, as __ip_vs_update_dest', () => {
  const e = new Engine(SMALL);
  e.addService({ ...HTTP, scheduler: 'rr' });
  e.addDest(HTTP, { daddr: RS3, dport: 80, weight: 1, upperThreshold: 1 });
  assert.is(open(e, 1, T0), `${RS3}:80`);
  assert.is(open(e, 2, T0), 'drop:no-dest');
  e.editDest(HTTP, { daddr: RS3, dport: 80, weight: 1, upperThreshold: 5 });
  assert.is(open(e, 3, T0), `${RS3}:80`);
});

function deletedServerEngine(expireNodestConn: boolean): { e: Engine; gone: string; other: string } {
  const e = new Engine({ ...SMALL, expireNodestConn });
  e.addService({ ...HTTP, scheduler: 'rr' });
  e.addDest(HTTP, { daddr: RS2, dport: 80, weight: 1 });
  e.addDest(HTTP, { daddr: RS3, dport: 80, weight: 1 });
  const gone = open(e, 1000, T0); // rr: .3 first
  assert.is(gone, `${RS3}:80`);
  e.processPacket(tcpPacket({ src: RS3, dst: CLIENT, sport: 80, dport: 1000, flags: 'SA' }), T0);
  e.processPacket(ack(1000), T0);
  e.delDest(HTTP, { daddr: RS3, dport: 80 });
  return { e, gone, other: `${RS2}:80` };
}

test('expire_nodest_conn off (the default): a deleted server\'s connection runs on both ways', () => {
  const { e, gone } = deletedServerEngine(false);
  const r = e.processPacket(ack(1000), T0 + 1000);
  assert.is(r.verdict, 'forward');
  assert.is(`${decode(r.packet).dst}:${decode(r.packet).dport}`, gone);
  const back = e.processPacket(tcpPacket({ src: RS3, dst: CLIENT, sport: 80, dport: 1000, flags: 'A' }), T0 + 1001);
  assert.is(back.verdict, 'forward');
  assert.is(decode(back.packet).src, VIP);
  assert.is(e.connections(T0 + 1001).length, 1);
  assert.is(e.counters().drops['dest-gone'], 0);
});

test('expire_nodest_conn on: the next client packet expires the connection and is dropped; a new SYN goes elsewhere', () => {
  const { e, other } = deletedServerEngine(true);
  const expired: string[] = [];
  e.on('conn-expired', (c) => expired.push(`${c.cport}:${c.why}`));
  // The real server's packets are still translated (ip_vs_out does not check availability).
  const back = e.processPacket(tcpPacket({ src: RS3, dst: CLIENT, sport: 80, dport: 1000, flags: 'A' }), T0 + 1000);
  assert.is(back.verdict, 'forward');
  // The client's next packet: the connection is expired now and the packet dropped.
  const r = e.processPacket(ack(1000), T0 + 1001);
  assert.is(r.verdict, 'drop');
  assert.is(r.reason, 'dest-gone');
  assert.equal(expired, ['1000:timeout']);
  assert.is(e.connections(T0 + 1001).length, 0);
  assert.is(e.counters().drops['dest-gone'], 1);
  // The client's retransmitted SYN on the same tuple is scheduled on the remaining server.
  assert.is(open(e, 1000, T0 + 1002), other);
});

test('expire_nodest_conn on: a SYN on a deleted server\'s tuple is scheduled afresh in the same pass', () => {
  const { e, other } = deletedServerEngine(true);
  assert.is(open(e, 1000, T0 + 5), other);
  assert.is(e.counters().drops['dest-gone'], 0);
});

test('setExpireNodestConn rejects a non-boolean and changes nothing', () => {
  const { e } = deletedServerEngine(false);
  assert.throws(() => e.setExpireNodestConn('yes' as unknown as boolean), /expireNodestConn must be true or false/);
  assert.is(e.processPacket(ack(1000), T0 + 1).verdict, 'forward');
});

test('editService changes the scheduler for new connections only; existing ones keep their servers', () => {
  const e = new Engine(SMALL);
  e.addService({ ...HTTP, scheduler: 'rr' });
  e.addDest(HTTP, { daddr: RS2, dport: 80, weight: 1 });
  e.addDest(HTTP, { daddr: RS3, dport: 80, weight: 1 });
  assert.equal([1, 2].map((p) => open(e, p, T0)), [`${RS3}:80`, `${RS2}:80`]);
  // fo: every new connection to the first of the highest weight, the list's first (.3).
  e.editService({ ...HTTP, scheduler: 'fo' });
  assert.equal([3, 4].map((p) => open(e, p, T0 + 1)), [`${RS3}:80`, `${RS3}:80`]);
  // Connection 2 still goes to .2, both ways.
  const r = e.processPacket(ack(2), T0 + 2);
  assert.is(`${decode(r.packet).dst}:${decode(r.packet).dport}`, `${RS2}:80`);
  assert.match(e.save(), /-A -t 202\.103\.106\.5:80 -s fo\n/);
});

test.run();
