// Connection state through the engine: the IPVS TCP state table (assembly/tcpstate.ts, from
// net/netfilter/ipvs/ip_vs_proto_tcp.c tcp_states, INPUT and OUTPUT parts, as a NAT director
// sees both directions), timeouts per state (tcp_timeouts / udp_timeouts), expiry by the timer
// wheel and by lookup, ActiveConn/InActConn, connection reuse (conn_reuse_mode 1), UDP, a full
// table, and the wheel at scale. Sequence tests: after every packet the connection's state and
// its time left are checked. The clock is fake: every `now` is chosen.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type ConnEvent, type EngineOptions } from '../host/engine/engine.js';
import type { ServiceSpec } from '../host/ipvsadm/rules.js';
import { CLIENT, RS2, RS3, SMALL, VIP, countersAddUp } from './support/dataplane.js';
import { checksumsValid, decode, l4Checksum, tcpPacket, udpPacket } from './support/packets.js';

const T0 = 5_000_000;
const S = 1000; // ms per second

const SVC: ServiceSpec = { protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'rr' };
const UDP_SVC: ServiceSpec = { protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr' };

/** One TCP service VIP:80 -> 172.16.0.2:8080 (and UDP VIP:53 -> 172.16.0.2:5353). */
function engine(options: EngineOptions = {}): Engine {
  const e = new Engine({ ...SMALL, ...options });
  e.addService(SVC);
  e.addDest(SVC, { daddr: RS2, dport: 8080, weight: 1 });
  e.addService(UDP_SVC);
  e.addDest(UDP_SVC, { daddr: RS2, dport: 5353, weight: 1 });
  return e;
}

/** Client -> VIP:80. */
function IN(flags: string, cport = 3456, payload = ''): Uint8Array {
  return tcpPacket({ src: CLIENT, dst: VIP, sport: cport, dport: 80, flags, payload });
}

/** Real server -> client; `from` is the real server the connection was given. */
function OUT(flags: string, cport = 3456, from = RS2, fromPort = 8080): Uint8Array {
  return tcpPacket({ src: from, dst: CLIENT, sport: fromPort, dport: cport, flags });
}

type Step = [dir: 'in' | 'out', flags: string, state: string, timeoutS: number];

/**
 * Sends each step's packet at t, t+1s, ... and checks, after each, that it was forwarded and
 * the connection is in `state` with exactly the state's timeout left. Returns the last time.
 */
function walk(e: Engine, steps: Step[], t: number, cport = 3456): number {
  steps.forEach(([dir, flags, state, timeoutS], i) => {
    const at = t + i * S;
    const r = e.processPacket(dir === 'in' ? IN(flags, cport) : OUT(flags, cport), at);
    const what = `step ${i + 1} (${dir} ${flags || 'no flags'})`;
    assert.is(r.verdict, 'forward', what);
    const c = e.connections(at).filter((x) => x.cport === cport);
    assert.is(c.length, 1, `${what}: one connection`);
    assert.is(c[0].state, state, `${what}: state`);
    assert.is(c[0].expiresIn, timeoutS * S, `${what}: expiresIn`);
  });
  return t + (steps.length - 1) * S;
}

const HANDSHAKE: Step[] = [
  ['in', 'S', 'SYN_RECV', 60],
  ['out', 'SA', 'SYN_RECV', 60],
  ['in', 'A', 'ESTABLISHED', 900],
];

function record(e: Engine): { created: ConnEvent[]; state: ConnEvent[]; expired: (ConnEvent & { why: string })[] } {
  const log = { created: [] as ConnEvent[], state: [] as ConnEvent[], expired: [] as (ConnEvent & { why: string })[] };
  e.on('conn-created', (x) => log.created.push(x));
  e.on('conn-state', (x) => log.state.push(x));
  e.on('conn-expired', (x) => log.expired.push(x));
  return log;
}

// ---- walks through the state table ----------------------------------------------------------

test('client closes: SYN_RECV, ESTABLISHED, CLOSE_WAIT, TIME_WAIT with their timeouts', () => {
  const e = engine();
  const log = record(e);
  walk(e, [
    ...HANDSHAKE,
    ['in', 'PA', 'ESTABLISHED', 900],
    ['out', 'PA', 'ESTABLISHED', 900],
    ['in', 'FA', 'CLOSE_WAIT', 60],
    ['out', 'A', 'CLOSE_WAIT', 60],
    ['out', 'FA', 'TIME_WAIT', 120],
    ['in', 'A', 'TIME_WAIT', 120],
  ], T0);
  assert.is(log.created.length, 1);
  assert.is(`${log.created[0].daddr}:${log.created[0].dport}`, `${RS2}:8080`);
  assert.equal(log.state.map((x) => `${x.oldState}>${x.state}`), [
    'NONE>SYN_RECV', 'SYN_RECV>ESTABLISHED', 'ESTABLISHED>CLOSE_WAIT', 'CLOSE_WAIT>TIME_WAIT',
  ]);
  assert.equal(log.state.map((x) => x.time), [T0, T0 + 2 * S, T0 + 5 * S, T0 + 7 * S]);
});

test('server closes: FIN out -> FIN_WAIT, FIN in -> TIME_WAIT', () => {
  walk(engine(), [
    ...HANDSHAKE,
    ['out', 'FA', 'FIN_WAIT', 120],
    ['in', 'A', 'FIN_WAIT', 120],
    ['in', 'FA', 'TIME_WAIT', 120],
    ['out', 'A', 'TIME_WAIT', 120],
  ], T0);
});

test('RST from the client -> CLOSE 10 s', () => {
  walk(engine(), [...HANDSHAKE, ['in', 'R', 'CLOSE', 10], ['in', 'A', 'CLOSE', 10]], T0);
});

test('RST from the server -> CLOSE 10 s', () => {
  walk(engine(), [...HANDSHAKE, ['out', 'RA', 'CLOSE', 10]], T0);
});

test('server refuses the SYN (RST out in SYN_RECV) -> CLOSE; a client RST in SYN_RECV stays SYN_RECV', () => {
  walk(engine(), [['in', 'S', 'SYN_RECV', 60], ['in', 'R', 'SYN_RECV', 60], ['out', 'RA', 'CLOSE', 10]], T0);
});

test('no SYN/FIN/ACK/RST flag -> CLOSE, either direction (set_tcp_state starts from CLOSE)', () => {
  walk(engine(), [...HANDSHAKE, ['in', '', 'CLOSE', 10]], T0, 1000);
  walk(engine(), [...HANDSHAKE, ['in', 'P', 'CLOSE', 10]], T0, 1001);
  walk(engine(), [...HANDSHAKE, ['out', 'U', 'CLOSE', 10]], T0, 1002);
});

test('the table\'s odd corners: a server SYN after CLOSE -> SYN_SENT 120 s, a client SYN then -> ESTABLISHED', () => {
  walk(engine(), [...HANDSHAKE, ['in', 'R', 'CLOSE', 10], ['out', 'S', 'SYN_SENT', 120], ['in', 'SA', 'ESTABLISHED', 900]], T0);
});

// ---- every timeout, to the millisecond ------------------------------------------------------

interface Expiry {
  state: string;
  timeoutS: number;
  reach: Step[];
  /** A client packet that leaves the state as it is (to refresh it). */
  keep: string;
}

const EXPIRIES: Expiry[] = [
  { state: 'SYN_RECV', timeoutS: 60, reach: [['in', 'S', 'SYN_RECV', 60]], keep: 'S' },
  { state: 'ESTABLISHED', timeoutS: 900, reach: HANDSHAKE, keep: 'A' },
  { state: 'CLOSE_WAIT', timeoutS: 60, reach: [...HANDSHAKE, ['in', 'FA', 'CLOSE_WAIT', 60]], keep: 'A' },
  { state: 'FIN_WAIT', timeoutS: 120, reach: [...HANDSHAKE, ['out', 'FA', 'FIN_WAIT', 120]], keep: 'A' },
  { state: 'TIME_WAIT', timeoutS: 120, reach: [...HANDSHAKE, ['out', 'FA', 'FIN_WAIT', 120], ['in', 'FA', 'TIME_WAIT', 120]], keep: 'A' },
  { state: 'CLOSE', timeoutS: 10, reach: [...HANDSHAKE, ['in', 'R', 'CLOSE', 10]], keep: 'A' },
  { state: 'SYN_SENT', timeoutS: 120, reach: [...HANDSHAKE, ['in', 'R', 'CLOSE', 10], ['out', 'S', 'SYN_SENT', 120]], keep: 'A' },
];

for (const x of EXPIRIES) {
  test(`${x.state}: present at t+${x.timeoutS}s-1ms, expired by the wheel at t+${x.timeoutS}s`, () => {
    const e = engine();
    const log = record(e);
    const t = walk(e, x.reach, T0);
    const T = x.timeoutS * S;
    const c = e.connections(t + T - 1);
    assert.is(c.length, 1);
    assert.is(c[0].expiresIn, 1);
    e.expire(t + T - 1);
    assert.is(e.counters().connsExpired, 0);
    assert.is(e.counters().liveConns, 1);
    assert.is(log.expired.length, 0);
    e.expire(t + T);
    assert.is(e.counters().connsExpired, 1);
    assert.is(e.counters().liveConns, 0);
    assert.equal(log.expired.map((ev) => [ev.why, ev.state, ev.time, ev.cport, ev.daddr]), [['timeout', x.state, t + T, 3456, RS2]]);
    assert.equal(e.connections(t + T), []);
    const [dest] = e.listServices()[0].dests;
    assert.equal([dest.activeConns, dest.inactConns], [0, 0]);
    const r = e.processPacket(IN('A'), t + T);
    assert.is(r.verdict, 'drop');
    assert.is(r.reason, 'no-conn');
  });

  test(`${x.state}: a packet at t+${x.timeoutS}s-1ms is forwarded and refreshes; by lookup it is gone one timeout later`, () => {
    const e = engine();
    const log = record(e);
    const t = walk(e, x.reach, T0);
    const T = x.timeoutS * S;
    const r = e.processPacket(IN(x.keep), t + T - 1);
    assert.is(r.verdict, 'forward');
    assert.is(r.newConnection, false);
    assert.equal(e.connections(t + T - 1).map((c) => [c.state, c.expiresIn]), [[x.state, T]]);
    assert.is(e.connections(t + T).length, 1, 'refreshed: still there at the old deadline');
    const late = t + T - 1 + T;
    assert.equal(e.connections(late - 1).map((c) => c.expiresIn), [1]);
    assert.equal(e.connections(late), []);
    // No expire() call in between: the lookup itself must see the connection as gone.
    const gone = e.processPacket(IN('A'), late);
    assert.is(gone.verdict, 'drop');
    assert.is(gone.reason, 'no-conn');
    assert.is(e.counters().connsExpired, 1);
    assert.equal(log.expired.map((ev) => [ev.why, ev.state]), [['timeout', x.state]]);
  });
}

test('expiry across the 2^32 ms wrap of engine time', () => {
  const e = engine();
  const t = 2 ** 32 - 30 * S;
  e.processPacket(IN('S'), t);
  assert.equal(e.connections(t + 60 * S - 1).map((c) => c.expiresIn), [1]);
  e.expire(t + 60 * S - 1);
  assert.is(e.counters().liveConns, 1);
  e.expire(t + 60 * S);
  assert.is(e.counters().liveConns, 0);
  assert.is(e.counters().connsExpired, 1);
});

// Engine time is any u32 origin (e.g. Date.now() >>> 0, above 2^31 half the time). Here the
// engine's very first call is processPacket at such a time.
for (const t of [2 ** 31 + 2, 2 ** 31 + 40_000, 3_000_000_000]) {
  test(`the wheel expires on time when the first packet arrives at engine time ${t} (via processPacket)`, () => {
    const e = engine();
    e.processPacket(IN('S'), t);
    e.expire(t + 60 * S - 1);
    assert.is(e.counters().connsExpired, 0);
    e.expire(t + 60 * S);
    assert.is(e.counters().connsExpired, 1, 'SYN_RECV connection expired by the wheel at t + 60 s');
    assert.is(e.counters().liveConns, 0);
  });
}

// ---- timeouts as ipvsadm --set ------------------------------------------------------------

test('setTimeouts({tcp, tcpfin, udp}) sets ESTABLISHED, FIN_WAIT and UDP; 0 leaves a value alone', () => {
  const e = engine();
  assert.equal(e.getTimeouts(), { tcp: 900, tcpfin: 120, udp: 300 });
  e.setTimeouts({ tcp: 100, tcpfin: 0, udp: 0 });
  assert.equal(e.getTimeouts(), { tcp: 100, tcpfin: 120, udp: 300 });
  const t = walk(e, [['in', 'S', 'SYN_RECV', 60], ['out', 'SA', 'SYN_RECV', 60], ['in', 'A', 'ESTABLISHED', 100]], T0);
  e.setTimeouts({ tcp: 0, tcpfin: 30, udp: 45 });
  assert.equal(e.getTimeouts(), { tcp: 100, tcpfin: 30, udp: 45 });
  // An existing connection takes a new timeout with its next packet, as cp->timeout in IPVS.
  assert.equal(e.connections(t).map((c) => c.expiresIn), [100 * S]);
  walk(e, [['in', 'PA', 'ESTABLISHED', 100], ['out', 'FA', 'FIN_WAIT', 30], ['in', 'FA', 'TIME_WAIT', 120]], t + S);
  e.processPacket(udpPacket({ src: CLIENT, dst: VIP, sport: 999, dport: 53, payload: 'q' }), T0 + 100 * S);
  assert.equal(e.connections(T0 + 100 * S).filter((c) => c.protocol === 'udp').map((c) => [c.state, c.expiresIn]), [['UDP', 45 * S]]);
  // The other states keep the kernel's defaults.
  walk(e, [['in', 'S', 'SYN_RECV', 60], ['in', 'R', 'SYN_RECV', 60], ['out', 'RA', 'CLOSE', 10]], T0 + 200 * S, 4000);
});

test('timeouts given to the constructor, 0 again meaning the default', () => {
  const e = engine({ timeouts: { tcp: 7, tcpfin: 0, udp: 11 } });
  assert.equal(e.getTimeouts(), { tcp: 7, tcpfin: 120, udp: 11 });
  walk(e, [...HANDSHAKE.slice(0, 2), ['in', 'A', 'ESTABLISHED', 7]], T0);
});

// ---- ActiveConn / InActConn ---------------------------------------------------------------

test('ActiveConn/InActConn: new is inactive, ESTABLISHED active, FIN back to inactive, zero after expiry', () => {
  const e = engine();
  const counts = () => {
    const d = e.listServices()[0].dests[0];
    return [d.activeConns, d.inactConns];
  };
  e.processPacket(IN('S', 1), T0);
  e.processPacket(IN('S', 2), T0);
  assert.equal(counts(), [0, 2]);
  e.processPacket(IN('A', 1), T0 + 1);
  assert.equal(counts(), [1, 1]);
  e.processPacket(IN('A', 2), T0 + 1);
  assert.equal(counts(), [2, 0]);
  e.processPacket(IN('FA', 1), T0 + 2); // CLOSE_WAIT
  assert.equal(counts(), [1, 1]);
  e.processPacket(IN('R', 2), T0 + 2); // CLOSE
  assert.equal(counts(), [0, 2]);
  e.expire(T0 + 2 + 10 * S); // CLOSE's 10 s
  assert.equal(counts(), [0, 1]);
  e.expire(T0 + 2 + 60 * S); // CLOSE_WAIT's 60 s
  assert.equal(counts(), [0, 0]);
  const d = e.listServices()[0].dests[0];
  assert.is(d.conns, 2, 'conns counts connections ever scheduled');
});

// ---- what opens a TCP connection ----------------------------------------------------------

test('only a SYN without ACK opens a connection: ACK, SYN+ACK, RST, FIN+ACK, PSH+ACK are dropped no-conn', () => {
  const e = engine();
  for (const flags of ['A', 'SA', 'R', 'RA', 'FA', 'PA']) {
    const r = e.processPacket(IN(flags, 7000), T0);
    assert.is(r.verdict, 'drop', flags);
    assert.is(r.reason, 'no-conn', flags);
  }
  assert.is(e.counters().drops['no-conn'], 6);
  assert.is(e.counters().connsCreated, 0);
  assert.equal(e.connections(T0), []);
});

// ---- connection reuse (conn_reuse_mode 1) --------------------------------------------------

/** Two real servers for VIP:80, weight 1 each, with `scheduler`. */
function twoServers(scheduler: string): Engine {
  const e = new Engine(SMALL);
  const svc: ServiceSpec = { ...SVC, scheduler };
  e.addService(svc);
  e.addDest(svc, { daddr: RS2, dport: 8080, weight: 1 });
  e.addDest(svc, { daddr: RS3, dport: 8080, weight: 1 });
  return e;
}

function reachTimeWait(e: Engine, t: number, daddr: string): number {
  const steps: [Uint8Array, string][] = [
    [IN('S'), 'SYN_RECV'], [OUT('SA', 3456, daddr), 'SYN_RECV'], [IN('A'), 'ESTABLISHED'],
    [OUT('FA', 3456, daddr), 'FIN_WAIT'], [IN('FA'), 'TIME_WAIT'],
  ];
  steps.forEach(([p, state], i) => {
    assert.is(e.processPacket(p, t + i).verdict, 'forward');
    assert.is(e.connections(t + i)[0].state, state);
  });
  return t + steps.length - 1;
}

for (const scheduler of ['wrr', 'rr']) {
  test(`reuse (${scheduler} 1:1): a SYN on a TIME_WAIT tuple is a new connection, scheduled afresh`, () => {
    const e = twoServers(scheduler);
    const log = record(e);
    const first = decode(e.processPacket(IN('S'), T0).packet).dst;
    const t = reachTimeWait(e, T0, first);
    const r = e.processPacket(IN('S'), t + 5 * S);
    assert.is(r.verdict, 'forward');
    assert.is(r.newConnection, true);
    const second = decode(r.packet).dst;
    assert.is.not(second, first, 'the new connection is scheduled, not stuck to the old server');
    assert.equal(e.connections(t + 5 * S).map((c) => [c.daddr, c.state, c.expiresIn]), [[second, 'SYN_RECV', 60 * S]]);
    const c = e.counters();
    assert.is(c.connsReused, 1);
    assert.is(c.connsCreated, 2);
    assert.is(c.liveConns, 1);
    assert.equal(log.expired.map((x) => [x.why, x.state, x.daddr]), [['reused', 'TIME_WAIT', first]]);
    assert.equal(log.created.map((x) => x.daddr), [first, second]);
    const counts = Object.fromEntries(e.listServices()[0].dests.map((d) => [d.daddr, [d.activeConns, d.inactConns]]));
    assert.equal(counts, { [first]: [0, 0], [second]: [0, 1] });
    // The old server's late packets for the old connection no longer match anything.
    const late = e.processPacket(OUT('A', 3456, first), t + 6 * S);
    assert.is(late.verdict, 'pass');
    assert.is(late.reason, 'no-match');
  });
}

test('reuse: a SYN on a CLOSE tuple (after RST) is a new connection on the other server', () => {
  const e = twoServers('rr');
  const log = record(e);
  const first = decode(e.processPacket(IN('S'), T0).packet).dst;
  e.processPacket(IN('A'), T0 + 1);
  e.processPacket(OUT('RA', 3456, first), T0 + 2);
  assert.is(e.connections(T0 + 2)[0].state, 'CLOSE');
  const r = e.processPacket(IN('S'), T0 + 3);
  assert.is(r.verdict, 'forward');
  assert.is(r.newConnection, true);
  assert.is.not(decode(r.packet).dst, first);
  assert.is(e.counters().connsReused, 1);
  assert.equal(log.expired.map((x) => [x.why, x.state]), [['reused', 'CLOSE']]);
});

test('reuse, repeated: the tuple alternates between the servers, never stuck', () => {
  const e = twoServers('wrr');
  const seen: string[] = [];
  let t = T0;
  for (let k = 0; k < 4; k++) {
    const r = e.processPacket(IN('S'), t);
    assert.is(r.newConnection, true, `round ${k}`);
    const d = decode(r.packet).dst;
    seen.push(d);
    t = reachTimeWait(e, t, d) + S; // the first SYN of reachTimeWait is a retransmit: same conn
  }
  assert.equal(seen, [seen[0], seen[1], seen[0], seen[1]]);
  assert.is.not(seen[0], seen[1]);
  assert.is(e.counters().connsReused, 3);
});

test('a SYN on an ESTABLISHED tuple is not a new connection (same server, still ESTABLISHED)', () => {
  const e = twoServers('rr');
  const first = decode(e.processPacket(IN('S'), T0).packet).dst;
  e.processPacket(IN('A'), T0 + 1);
  const r = e.processPacket(IN('S'), T0 + 2);
  assert.is(r.verdict, 'forward');
  assert.is(r.newConnection, false);
  assert.is(decode(r.packet).dst, first);
  assert.equal(e.connections(T0 + 2).map((c) => [c.daddr, c.state]), [[first, 'ESTABLISHED']]);
  assert.is(e.counters().connsCreated, 1);
  assert.is(e.counters().connsReused, 0);
});

test('a SYN on a FIN_WAIT tuple is not reused in mode 1 under NAT (same server, SYN_RECV)', () => {
  const e = twoServers('rr');
  const first = decode(e.processPacket(IN('S'), T0).packet).dst;
  e.processPacket(IN('A'), T0 + 1);
  e.processPacket(OUT('FA', 3456, first), T0 + 2);
  const r = e.processPacket(IN('S'), T0 + 3);
  assert.is(r.newConnection, false);
  assert.is(decode(r.packet).dst, first);
  assert.equal(e.connections(T0 + 3).map((c) => c.state), ['SYN_RECV']);
});

// ---- UDP ----------------------------------------------------------------------------------

function dns(zero: boolean, payload = 'query'): Uint8Array {
  return udpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 53, payload, zeroChecksum: zero });
}
function dnsReply(zero: boolean, payload = 'answer'): Uint8Array {
  return udpPacket({ src: RS2, dst: CLIENT, sport: 5353, dport: 3456, payload, zeroChecksum: zero });
}

test('UDP: one state, 300 s, refreshed by every packet either way', () => {
  const e = engine();
  const udp = () => e.connections().filter((c) => c.protocol === 'udp').map((c) => [c.state, c.expiresIn]);
  assert.is(e.processPacket(dns(false), T0).newConnection, true);
  assert.equal(udp(), [['UDP', 300 * S]]);
  assert.equal(e.connections(T0 + 100 * S).map((c) => c.expiresIn), [200 * S]);
  assert.is(e.processPacket(dnsReply(false), T0 + 100 * S).verdict, 'forward');
  assert.equal(udp(), [['UDP', 300 * S]]);
  assert.is(e.processPacket(dns(false), T0 + 399 * S).verdict, 'forward');
  assert.equal(udp(), [['UDP', 300 * S]]);
  assert.is(e.counters().connsCreated, 1);
  const last = T0 + 399 * S;
  e.expire(last + 300 * S - 1);
  assert.is(e.counters().liveConns, 1);
  e.expire(last + 300 * S);
  assert.is(e.counters().liveConns, 0);
  assert.is(e.counters().connsExpired, 1);
  const d = e.listServices()[1].dests[0];
  assert.equal([d.activeConns, d.inactConns, d.conns], [0, 0, 1]);
});

test('UDP counts as InActConn, never ActiveConn', () => {
  const e = engine();
  e.processPacket(dns(false), T0);
  e.processPacket(dnsReply(false), T0 + 1);
  const d = e.listServices()[1].dests[0];
  assert.equal([d.activeConns, d.inactConns], [0, 1]);
});

test('UDP checksum 0 ("none") stays 0 after NAT, both ways', () => {
  const e = engine();
  const q = e.processPacket(dns(true), T0);
  assert.is(q.verdict, 'forward');
  assert.is(decode(q.packet).l4Checksum, 0);
  assert.is(decode(q.packet).dst, RS2);
  const a = e.processPacket(dnsReply(true), T0 + 1);
  assert.is(a.verdict, 'forward');
  assert.is(decode(a.packet).l4Checksum, 0);
  assert.is(decode(a.packet).src, VIP);
  assert.equal(checksumsValid(a.packet), { ip: true, l4: true });
});

test('UDP nonzero checksum is adjusted correctly, both ways', () => {
  const e = engine();
  for (const [p, t] of [[dns(false, 'odd'), T0], [dnsReply(false, 'even'), T0 + 1], [dns(false, ''), T0 + 2]] as const) {
    const r = e.processPacket(p, t);
    assert.is(r.verdict, 'forward');
    assert.equal(checksumsValid(r.packet), { ip: true, l4: true });
    assert.is(decode(r.packet).l4Checksum, l4Checksum(r.packet));
  }
});

// ---- a full table --------------------------------------------------------------------------

test('table full: capacity 4 takes 4 connections, the 5th SYN is dropped, the 4 keep forwarding', () => {
  const e = engine({ connCapacity: 4 });
  for (let i = 0; i < 4; i++) assert.is(e.processPacket(IN('S', 100 + i), T0).verdict, 'forward');
  const fifth = e.processPacket(IN('S', 200), T0 + 1);
  assert.is(fifth.verdict, 'drop');
  assert.is(fifth.reason, 'table-full');
  assert.is(e.counters().drops['table-full'], 1);
  for (let i = 0; i < 4; i++) {
    assert.is(e.processPacket(IN('A', 100 + i), T0 + 2).verdict, 'forward', `client ${i}`);
    assert.is(e.processPacket(OUT('A', 100 + i), T0 + 2).verdict, 'forward', `server ${i}`);
  }
  // Connection 0 is reset: CLOSE, 10 s.
  e.processPacket(IN('R', 100), T0 + 3);
  e.expire(T0 + 3 + 10 * S);
  assert.is(e.counters().liveConns, 3);
  const sixth = e.processPacket(IN('S', 201), T0 + 3 + 10 * S);
  assert.is(sixth.verdict, 'forward');
  assert.is(e.counters().liveConns, 4);
  assert.is(e.processPacket(IN('S', 202), T0 + 4 + 10 * S).reason, 'table-full');
});

test('table full: a SYN arriving when a connection has just expired (no expire() call first) is accepted', () => {
  // connections() and lookups already treat the due connection as gone; a new one must fit.
  const e = engine({ connCapacity: 1 });
  assert.is(e.processPacket(IN('S', 100), T0).verdict, 'forward');
  assert.is(e.processPacket(IN('S', 101), T0 + 1).reason, 'table-full');
  assert.equal(e.connections(T0 + 60 * S), []);
  const r = e.processPacket(IN('S', 102), T0 + 60 * S);
  assert.is(r.verdict, 'forward', `got ${r.verdict} ${r.reason ?? ''}`);
});

test('table full: the first ring batch after an idle hour has room for a new connection', () => {
  const e2 = engine({ connCapacity: 1 });
  e2.writeSlot(0, IN('S', 100));
  e2.process(0, 1, T0);
  e2.writeSlot(0, IN('S', 103));
  e2.process(0, 1, T0 + 3600 * S);
  assert.is(e2.verdict(0), 'forward', `ring: got ${e2.verdict(0)} ${e2.reason(0) ?? ''}`);
});

test('an expired connection (not yet reaped) does not make a new one a tuple clash', () => {
  // CLIENT:3456 -> VIP:80 and CLIENT:3456 -> 202.103.106.6:80 share the real server
  // 172.16.0.2:8080, so their reply tuples are the same: fine once the first has expired.
  const e = engine();
  const other: ServiceSpec = { ...SVC, vaddr: '202.103.106.6' };
  e.addService(other);
  e.addDest(other, { daddr: RS2, dport: 8080, weight: 1 });
  assert.is(e.processPacket(IN('S'), T0).verdict, 'forward');
  const toOther = tcpPacket({ src: CLIENT, dst: '202.103.106.6', sport: 3456, dport: 80, flags: 'S' });
  assert.is(e.processPacket(toOther, T0 + 1).reason, 'tuple-clash', 'while the first lives');
  assert.equal(e.connections(T0 + 60 * S), []);
  const r = e.processPacket(toOther, T0 + 60 * S);
  assert.is(r.verdict, 'forward', `got ${r.verdict} ${r.reason ?? ''}`);
});

// ---- the wheel at scale ------------------------------------------------------------------

/** Sends packets through the ring in batches, all at time `now`; returns forwards. */
function ring(e: Engine, packets: Uint8Array[], now: number): number {
  let forwarded = 0;
  for (let at = 0; at < packets.length; at += e.slotCount) {
    const n = Math.min(e.slotCount, packets.length - at);
    for (let i = 0; i < n; i++) e.writeSlot(i, packets[at + i]);
    forwarded += e.process(0, n, now);
  }
  return forwarded;
}

function client(i: number): { src: string; sport: number } {
  return { src: `10.${(i >> 14) & 0xff}.${(i >> 6) & 0xff}.${i & 0x3f}`, sport: 1024 + (i % 50000) };
}

test('20,000 connections created in the same millisecond all expire together', () => {
  const e = engine({ connCapacity: 32768, slotCount: 1024 });
  let expiredEvents = 0;
  e.on('conn-expired', () => { expiredEvents++; });
  const N = 20_000;
  const syns = Array.from({ length: N }, (_, i) => tcpPacket({ ...client(i), dst: VIP, dport: 80, flags: 'S' }));
  assert.is(ring(e, syns, T0), N);
  assert.is(e.counters().liveConns, N);
  e.expire(T0 + 60 * S - 1);
  assert.is(e.counters().connsExpired, 0);
  e.expire(T0 + 3600 * S);
  const c = e.counters();
  assert.is(c.connsExpired, N);
  assert.is(c.liveConns, 0);
  assert.is(c.eventsLost, 0);
  assert.is(expiredEvents, N);
  assert.equal(e.connections(), []);
  // The records are reusable: the same number fits again.
  assert.is(ring(e, syns, T0 + 3601 * S), N);
});

test('a clock jump of hours expires exactly the due connections and keeps the rest', () => {
  const e = engine({ connCapacity: 8192, slotCount: 1024 });
  const H = 3600 * S;
  e.setTimeouts({ tcp: 4 * 3600 }); // ESTABLISHED 4 h, so some connections outlive the jump
  const pkt = (i: number, flags: string) => tcpPacket({ ...client(i), dst: VIP, dport: 80, flags });
  const idle = Array.from({ length: 1500 }, (_, i) => i); //           ESTABLISHED, never refreshed
  const busy = Array.from({ length: 1500 }, (_, i) => 1500 + i); //    ESTABLISHED, refreshed at +2 h
  const halfOpen = Array.from({ length: 1000 }, (_, i) => 3000 + i); // SYN_RECV, 60 s
  const all = [...idle, ...busy, ...halfOpen];
  ring(e, all.map((i) => pkt(i, 'S')), T0);
  ring(e, [...idle, ...busy].map((i) => pkt(i, 'A')), T0 + 1);
  assert.is(e.counters().liveConns, 4000);
  // +2 h in one step: only the half-open ones were due.
  ring(e, busy.map((i) => pkt(i, 'PA')), T0 + 2 * H);
  e.expire(T0 + 2 * H);
  assert.is(e.counters().connsExpired, 1000);
  assert.is(e.counters().liveConns, 3000);
  // +5 h: the idle ones (due at +4 h) go, the refreshed ones (due at +6 h) stay.
  e.expire(T0 + 5 * H);
  assert.is(e.counters().connsExpired, 2500);
  assert.is(e.counters().liveConns, 1500);
  const left = e.connections(T0 + 5 * H);
  assert.is(left.length, 1500);
  assert.ok(left.every((c) => c.state === 'ESTABLISHED' && c.expiresIn === H), 'the refreshed ones, 1 h left');
  const busyPorts = new Set(busy.map((i) => `${client(i).src}:${client(i).sport}`));
  assert.ok(left.every((c) => busyPorts.has(`${c.caddr}:${c.cport}`)));
  e.expire(T0 + 6 * H - 1);
  assert.is(e.counters().liveConns, 1500);
  e.expire(T0 + 6 * H);
  assert.is(e.counters().liveConns, 0);
  assert.is(e.counters().connsExpired, 4000);
  assert.is(countersAddUp(e.counters()), undefined);
});

test.run();
