// The FTP helper (assembly/ftp.ts) through the engine, and through the reference engine
// (test/reference/ftp.ts) beside it: every command and reply form, the data connections they
// open, the sequence deltas, and where wasmvs goes beyond ip_vs_ftp. The expected packets come
// from test/support/ftp-traffic.ts, which builds both sides of each conversation from what the
// test says the client must see: neither engine's output is trusted to make the expectation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type FtpEvent } from '../host/engine/engine.js';
import { WasmvsError } from '../host/errors.js';
import type { EngineLike } from './reference/engine-like.js';
import { ReferenceEngine } from './reference/engine.js';
import { ftpConversation, type FtpConversationOpts, type FtpPacket, type FtpStep, reply227 } from './support/ftp-traffic.js';
import { checksumsValid, decode, hex, tcpPacket } from './support/packets.js';

const VIP = '198.18.100.30';
const RIP = '198.19.0.5'; //      "198,19,0,5": the VIP's text is 3 bytes longer
const CLIENT = '198.18.7.7';
const RULES = `-A -t ${VIP}:21 -s rr\n-a -t ${VIP}:21 -r ${RIP}:21 -m\n`;
const ENDS = { client: CLIENT, cport: 40001, vip: VIP, vport: 21, server: RIP, sport: 21 };
const T0 = 1_000_000;

type Maker = () => EngineLike;
const ENGINES: Array<[string, Maker]> = [
  ['wasm', () => new Engine({ connCapacity: 1024, slotCount: 8 })],
  ['reference', () => new ReferenceEngine({ connCapacity: 1024 })],
];

/** Runs `steps` (a whole conversation) through a fresh engine of each kind; every packet must
 * come out exactly as the oracle says, with valid checksums. Returns the engines, at `T0 + n`. */
function converse(steps: FtpStep[], opts: Partial<FtpConversationOpts> = {}, rules = RULES): { engines: Array<[string, EngineLike]>; packets: FtpPacket[]; end: number } {
  const packets = ftpConversation({ ...ENDS, steps, ...opts });
  const engines: Array<[string, EngineLike]> = [];
  for (const [name, make] of ENGINES) {
    const e = make();
    e.restore(rules);
    packets.forEach((p, i) => {
      const r = e.processPacket(p.received, T0 + i);
      const what = `${name}: packet ${i} (step ${p.step}, ${p.dir})`;
      assert.is(r.verdict, 'forward', what);
      assert.is(hex(r.packet), hex(p.sent), what);
      assert.equal(checksumsValid(r.packet), { ip: true, l4: true }, `${what}: checksums`);
    });
    engines.push([name, e]);
  }
  return { engines, packets, end: T0 + packets.length };
}

const conns = (e: EngineLike) => e.connections().map(({ expiresIn: _e, ...c }) => c);
const data = (e: EngineLike) => conns(e).filter((c) => c.vport !== 21);

const PASV = { from: 'client', text: 'PASV\r\n' } as const;
const BANNER = { from: 'server', text: '220 wasmvs FTP\r\n' } as const;
const PASV227 = { from: 'server', text: reply227(RIP, 50000), seen: reply227(VIP, 50000) } as const;

test('PASV then 227 (parentheses): the address becomes the VIP, later sequence numbers and ACKs shift by 3, a passive data connection waits with client port 0', () => {
  const { engines } = converse([
    BANNER, PASV, PASV227, { ack: 'client' },
    { from: 'client', text: 'RETR file\r\n' }, { from: 'server', text: '150 Opening BINARY mode\r\n' },
    { from: 'server', text: '226 Transfer complete\r\n' }, { ack: 'client' },
  ], { close: false });
  for (const [name, e] of engines) {
    assert.equal(data(e), [{ protocol: 'tcp', caddr: CLIENT, cport: 0, vaddr: VIP, vport: 50000, daddr: RIP, dport: 50000, state: 'LISTEN' }], name);
    assert.is(e.counters().ftp.passive, 1, name);
    assert.is(e.counters().ftp.rewritten, 1, name);
  }
});

test('the passive data connection: the client\'s SYN to VIP:port takes the client port and goes to RIP:port; replies come from VIP:port', () => {
  const { engines, end } = converse([BANNER, PASV, PASV227], { close: false });
  for (const [name, e] of engines) {
    const syn = e.processPacket(tcpPacket({ src: CLIENT, sport: 50123, dst: VIP, dport: 50000, flags: 'S', seq: 7 }), end);
    assert.is(syn.verdict, 'forward', name);
    assert.is(hex(syn.packet), hex(tcpPacket({ src: CLIENT, sport: 50123, dst: RIP, dport: 50000, flags: 'S', seq: 7 })), name);
    assert.not.ok(syn.newConnection, `${name}: no new connection was scheduled`);
    const synack = e.processPacket(tcpPacket({ src: RIP, sport: 50000, dst: CLIENT, dport: 50123, flags: 'SA', seq: 99, ack: 8 }), end + 1);
    assert.is(hex(synack.packet), hex(tcpPacket({ src: VIP, sport: 50000, dst: CLIENT, dport: 50123, flags: 'SA', seq: 99, ack: 8 })), name);
    assert.equal(data(e).map((c) => [c.cport, c.state]), [[50123, 'SYN_RECV']], name);
    // A second client port finds nothing now: the entry took the first.
    assert.is(e.processPacket(tcpPacket({ src: CLIENT, sport: 50124, dst: VIP, dport: 50000, flags: 'S' }), end + 2).verdict, 'local', name);
  }
});

test('227 without parentheses (RFC 1123 4.1.2.6) is rewritten too', () => {
  converse([BANNER, PASV, { from: 'server', text: reply227(RIP, 50001, false), seen: reply227(VIP, 50001, false) }, { ack: 'client' }, { from: 'client', text: 'NOOP\r\n' }, { from: 'server', text: '200 NOOP ok.\r\n' }]);
});

test('a 227 that shrinks (the VIP\'s text is shorter): negative delta, acknowledgements mapped back', () => {
  const rip = '198.19.200.200';
  const vip = '198.18.1.1';
  converse([
    BANNER, PASV, { from: 'server', text: reply227(rip, 40000), seen: reply227(vip, 40000) },
    // A late ACK of the banner, which ends where the 227 starts: IPVS's init_seq + delta test
    // would take the new delta for it, 4 bytes off.
    { ack: 'client', upTo: 0 }, { ack: 'client' },
    { from: 'client', text: 'LIST\r\n' }, { from: 'server', text: '150 Here comes the directory listing.\r\n' }, { ack: 'client' },
  ], { vip, server: rip }, `-A -t ${vip}:21 -s rr\n-a -t ${vip}:21 -r ${rip}:21 -m\n`);
});

test('EPSV arms; 229 keeps its text and opens a data connection to the control connection\'s server', () => {
  const { engines } = converse([
    BANNER, { from: 'client', text: 'EPSV\r\n' }, { from: 'server', text: '229 Entering Extended Passive Mode (|||50002|)\r\n' }, { ack: 'client' },
  ]);
  for (const [name, e] of engines) {
    assert.equal(data(e).map((c) => [c.cport, c.vport, c.daddr, c.dport, c.state]), [[0, 50002, RIP, 50002, 'LISTEN']], name);
    assert.is(e.counters().ftp.rewritten, 0, name);
  }
});

test('EPSV ALL arms (the 200 after it is no 227/229); the next EPSV\'s 229 opens a connection; EPSV 1 arms as well', () => {
  const { engines } = converse([
    BANNER, { from: 'client', text: 'EPSV ALL\r\n' }, { from: 'server', text: '200 EPSV ALL ok.\r\n' },
    { from: 'client', text: 'EPSV\r\n' }, { from: 'server', text: '229 Entering Extended Passive Mode (|||50003|)\r\n' },
    { from: 'client', text: 'epsv 1\r\n' }, { from: 'server', text: '229 Entering Extended Passive Mode (!!!50004!)\r\n' },
  ]);
  for (const [name, e] of engines) assert.equal(data(e).map((c) => c.vport).sort(), [50003, 50004], name);
});

test('a 227 without a preceding PASV is not rewritten (as IPVS), and opens nothing', () => {
  const { engines } = converse([BANNER, { from: 'client', text: 'NOOP\r\n' }, { from: 'server', text: reply227(RIP, 50005) }, { ack: 'client' }]);
  for (const [name, e] of engines) {
    assert.equal(data(e), [], name);
    assert.is(e.counters().ftp.passive, 0, name);
  }
});

test('PORT: a connection for the server\'s active data connection, RIP:20 -> client seen as VIP:20, state LISTEN; the payload is untouched', () => {
  const { engines, end } = converse([BANNER, { from: 'client', text: 'PORT 198,18,7,7,195,80\r\n' }, { from: 'server', text: '200 PORT command successful.\r\n' }], { close: false });
  for (const [name, e] of engines) {
    assert.equal(data(e), [{ protocol: 'tcp', caddr: CLIENT, cport: 50000, vaddr: VIP, vport: 20, daddr: RIP, dport: 20, state: 'LISTEN' }], name);
    const syn = e.processPacket(tcpPacket({ src: RIP, sport: 20, dst: CLIENT, dport: 50000, flags: 'S', seq: 5 }), end);
    assert.is(hex(syn.packet), hex(tcpPacket({ src: VIP, sport: 20, dst: CLIENT, dport: 50000, flags: 'S', seq: 5 })), name);
    const synack = e.processPacket(tcpPacket({ src: CLIENT, sport: 50000, dst: VIP, dport: 20, flags: 'SA', seq: 9, ack: 6 }), end + 1);
    assert.is(hex(synack.packet), hex(tcpPacket({ src: CLIENT, sport: 50000, dst: RIP, dport: 20, flags: 'SA', seq: 9, ack: 6 })), name);
    assert.is(e.counters().ftp.active, 1, name);
  }
});

test('EPRT |1|addr|port| as PORT; EPRT |2| (IPv6) is not ours; lower-case commands count (RFC 959: case-insensitive)', () => {
  const { engines } = converse([
    BANNER, { from: 'client', text: 'EPRT |1|198.18.7.8|50010|\r\n' }, { from: 'server', text: '200 EPRT command successful.\r\n' },
    { from: 'client', text: 'EPRT |2|2001:db8::1|50011|\r\n' }, { from: 'server', text: '522 Bad network protocol.\r\n' },
    { from: 'client', text: 'port 198,18,7,9,195,90\r\n' }, { from: 'server', text: '200 ok\r\n' },
  ]);
  for (const [name, e] of engines) {
    assert.equal(data(e).map((c) => `${c.caddr}:${c.cport} ${c.vport} ${c.dport}`).sort(), ['198.18.7.8:50010 20 20', '198.18.7.9:50010 20 20'], name);
  }
});

test('two commands in one segment, and two replies in one: each line is looked at', () => {
  const { engines } = converse([
    BANNER, { from: 'client', text: 'TYPE I\r\nPASV\r\n' },
    { from: 'server', text: `200 Switching to Binary mode.\r\n${reply227(RIP, 50020)}`, seen: `200 Switching to Binary mode.\r\n${reply227(VIP, 50020)}` },
    { ack: 'client' }, { from: 'client', text: 'QUIT\r\n' }, { from: 'server', text: '221 Goodbye.\r\n' },
  ]);
  for (const [name, e] of engines) assert.equal(data(e).map((c) => c.vport), [50020], name);
});

test('a command cut by the segment\'s end is counted and reported, not acted on; the rest of it is not mistaken for a command', () => {
  const { engines } = converse([BANNER, { from: 'client', text: 'PORT 198,18,7,7,195,81\r\n', cut: [12] }, { from: 'server', text: '200 PORT command successful.\r\n' }]);
  for (const [name, e] of engines) {
    assert.equal(data(e), [], name);
    assert.is(e.counters().ftp['split-command'], 1, name);
  }
});

test('a 227 cut by the segment\'s end passes as it is, counted and reported as an ftp event (never half rewritten)', () => {
  const events: FtpEvent[] = [];
  const e = new Engine({ connCapacity: 64, slotCount: 4 });
  e.restore(RULES);
  e.on('ftp', (ev) => events.push(ev));
  const text = reply227(RIP, 50030);
  ftpConversation({ ...ENDS, steps: [BANNER, PASV, { from: 'server', text, cut: [30] }, { ack: 'client' }] }).forEach((p, i) => {
    assert.is(hex(e.processPacket(p.received, T0 + i).packet), hex(p.sent), `packet ${i}`);
  });
  assert.is(e.counters().ftp['split-reply'], 1);
  assert.equal(events.map(({ time: _t, ...ev }) => ev), [{ protocol: 'tcp', caddr: CLIENT, cport: 40001, vaddr: VIP, vport: 21, daddr: RIP, dport: 21, what: 'split-reply' }]);
  // The reference agrees.
  converse([BANNER, PASV, { from: 'server', text, cut: [30] }, { ack: 'client' }]);
});

test('retransmissions: data from before the 227 gets the old delta, the 227 itself is rewritten again (beyond IPVS), later data the new delta; a late ACK maps back', () => {
  const { engines } = converse([
    BANNER, PASV, /* 2 */ PASV227, /* 3 */ { from: 'server', text: '150 Here it comes.\r\n' },
    { retransmit: 0 }, { retransmit: 2 }, { retransmit: 3 },
    { ack: 'client', upTo: 0 }, { ack: 'client', upTo: 2 }, { ack: 'client' },
  ]);
  for (const [name, e] of engines) {
    assert.is(e.counters().ftp.rewritten, 2, name);
    assert.is(e.counters().ftp.retransmit, 1, name);
    assert.is(e.counters().ftp.passive, 1, `${name}: the retransmission opens nothing new`);
  }
});

test('two rewrites in one session: previous_delta carries the first one\'s shift for its retransmissions', () => {
  converse([
    BANNER, PASV, /* 2 */ PASV227, { ack: 'client' },
    { from: 'client', text: 'PASV\r\n' }, /* 5 */ { from: 'server', text: reply227(RIP, 50040), seen: reply227(VIP, 50040) },
    { retransmit: 5 }, { ack: 'client', upTo: 2 }, { ack: 'client' }, { from: 'server', text: '226 Done.\r\n' },
  ]);
});

test('sequence numbers that wrap past 2^32 during the session: deltas stay modular', () => {
  for (const serverIsn of [2 ** 32 - 40, 2 ** 32 - 1, 2 ** 32 - 70]) {
    converse([BANNER, PASV, PASV227, { retransmit: 2 }, { ack: 'client', upTo: 0 }, { from: 'server', text: '150 ok\r\n' }, { ack: 'client' }], { serverIsn, clientIsn: 2 ** 32 - 3 });
  }
});

test('SACK blocks in the client\'s ACKs are mapped like the ACK (beyond IPVS: conntrack seqadj does)', () => {
  converse([
    BANNER, PASV, /* 2 */ PASV227, /* 3 */ { from: 'server', text: '150 one\r\n' }, /* 4 */ { from: 'server', text: '226 two\r\n' },
    { ack: 'client', upTo: 2, sack: [[4, 4]] }, { ack: 'client', upTo: 0, sack: [[3, 4], [2, 2]] }, { ack: 'client' },
  ]);
});

test('a 227 that cannot grow in its slot is passed unmangled and counted; the session goes on unshifted', () => {
  const e = new Engine({ connCapacity: 64, slotCount: 4, slotSize: 128 });
  e.restore(RULES);
  // 40 bytes of headers and 87 of payload: 127, and the VIP's text is 3 bytes longer.
  const base = `227 Entering Passive Mode (${RIP.split('.').join(',')},195,80)\r\n`;
  const text = `227 Entering Passive Mode${'.'.repeat(87 - base.length)} (${RIP.split('.').join(',')},195,80)\r\n`;
  const packets = ftpConversation({ ...ENDS, steps: [BANNER, PASV, { from: 'server', text }, { ack: 'client' }, { from: 'server', text: '150 ok\r\n' }] });
  assert.ok(packets.some((p) => p.received.length === 127), 'the fixture needs a 227 of 127 bytes');
  packets.forEach((p, i) => assert.is(hex(e.processPacket(p.received, T0 + i).packet), hex(p.sent), `packet ${i}`));
  assert.is(e.counters().ftp['no-room'], 1);
  assert.is(e.counters().ftp.passive, 1, 'the data connection is there for a client that ignores the 227\'s address');
});

test('NEEDS_CSUM slots (vnet_hdr partial checksums): the pseudo-header sum follows the new length', () => {
  const e = new Engine({ connCapacity: 64, slotCount: 4 });
  e.restore(RULES);
  const packets = ftpConversation({ ...ENDS, steps: [BANNER, PASV, PASV227, { ack: 'client' }, { from: 'server', text: '150 ok\r\n' }] });
  /** The checksum field as a NIC would get it: the folded pseudo-header sum, uncomplemented. */
  const partial = (pkt: Uint8Array): Uint8Array => {
    const out = pkt.slice();
    const v = new DataView(out.buffer);
    const hlen = (out[0] & 15) * 4;
    let s = v.getUint16(12) + v.getUint16(14) + v.getUint16(16) + v.getUint16(18) + 6 + (v.getUint16(2) - hlen);
    while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
    v.setUint16(hlen + 16, s);
    return out;
  };
  packets.forEach((p, i) => {
    e.writeSlot(0, partial(p.received), 0, true);
    e.process(0, 1, T0 + i);
    assert.is(e.verdict(0), 'forward');
    assert.is(hex(e.slot(0).subarray(0, e.slotLength(0))), hex(partial(p.sent)), `packet ${i} (step ${p.step})`);
  });
});

test('the control connection lives while its data connection does (n_control), then expires; the data connection expires as any', () => {
  for (const [name, make] of ENGINES) {
    const e = make();
    e.restore(RULES);
    const packets = ftpConversation({ ...ENDS, steps: [BANNER, PASV, PASV227, { ack: 'client' }] });
    packets.forEach((p, i) => e.processPacket(p.received, T0 + i));
    const t = T0 + packets.length;
    // The data connection opens and is established (900 s); the control connection closed
    // (TIME_WAIT, 120 s).
    e.processPacket(tcpPacket({ src: CLIENT, sport: 50200, dst: VIP, dport: 50000, flags: 'S', seq: 1 }), t);
    e.processPacket(tcpPacket({ src: RIP, sport: 50000, dst: CLIENT, dport: 50200, flags: 'SA', seq: 1, ack: 2 }), t);
    e.processPacket(tcpPacket({ src: CLIENT, sport: 50200, dst: VIP, dport: 50000, flags: 'A', seq: 2, ack: 2 }), t);
    const states = (now: number) => { e.expire(now); return e.connections(now).map((c) => `${c.vport} ${c.state}`).sort(); };
    assert.equal(states(t + 1000), ['21 TIME_WAIT', '50000 ESTABLISHED'], name);
    assert.equal(states(t + 300_000), ['21 TIME_WAIT', '50000 ESTABLISHED'], `${name}: 5 min on, the control connection is still there`);
    assert.equal(states(t + 901_000), ['21 TIME_WAIT'], `${name}: the data connection is gone, the control connection has its last period`);
    assert.equal(states(t + 1_030_000), [], `${name}: both gone`);
    assert.is(e.counters().liveConns, 0, name);
  }
});

test('found by the fuzz: a control connection and its data connection due in the same millisecond go together (the controller after)', () => {
  for (const [name, make] of ENGINES) {
    const e = make();
    e.restore(RULES);
    e.setTimeouts({ tcp: 120 });
    const packets = ftpConversation({ ...ENDS, steps: [BANNER], close: false });
    packets.forEach((p, i) => e.processPacket(p.received, T0 + i));
    const t = T0 + packets.length;
    // PORT as the last packet: the control connection (ESTABLISHED, 120 s) and the data
    // connection (LISTEN, 120 s) fall due at the same millisecond.
    e.processPacket(ftpConversation({ ...ENDS, steps: [BANNER, { from: 'client', text: 'PORT 198,18,7,7,197,197\r\n' }], close: false }).at(-1)!.received, t);
    assert.is(e.connections(t).length, 2, name);
    e.expire(t + 200_000);
    assert.equal(e.connections(t + 200_000), [], name);
    assert.is(e.counters().liveConns, 0, name);
  }
});

test('a control connection released while its data connection lives (a new SYN on its tuple): the data connection runs on; records come back', () => {
  for (const [name, make] of ENGINES) {
    const e = make();
    e.restore(RULES);
    const packets = ftpConversation({ ...ENDS, steps: [BANNER, PASV, PASV227, { ack: 'client' }] });
    packets.forEach((p, i) => e.processPacket(p.received, T0 + i));
    let t = T0 + packets.length;
    e.processPacket(tcpPacket({ src: CLIENT, sport: 50300, dst: VIP, dport: 50000, flags: 'S', seq: 1 }), t);
    // The control connection's tuple is reused (it is in TIME_WAIT).
    const again = e.processPacket(tcpPacket({ src: CLIENT, sport: 40001, dst: VIP, dport: 21, flags: 'S', seq: 100 }), ++t);
    assert.ok(again.newConnection, name);
    assert.is(e.counters().connsReused, 1, name);
    const r = e.processPacket(tcpPacket({ src: RIP, sport: 50000, dst: CLIENT, dport: 50300, flags: 'SA', seq: 1, ack: 2 }), ++t);
    assert.is(r.verdict, 'forward', name);
    e.expire(t + 1_000_000);
    assert.equal(e.connections(t + 1_000_000), [], name);
  }
});

test('a persistent FTP service (-p) and a port-zero one: data connections follow their control connection, which its template schedules; all go in order', () => {
  for (const [rules, template] of [
    [`-A -t ${VIP}:21 -s rr -p 60\n-a -t ${VIP}:21 -r ${RIP}:21 -m\n`, '0 21 21 NONE template'],
    // A port-zero service's template has port 0 (one for all ports, as IPVS).
    [`-A -t ${VIP}:0 -s rr -p 60\n-a -t ${VIP}:0 -r ${RIP}:0 -m\n`, '0 0 0 NONE template'],
  ]) {
    const { engines, end } = converse([BANNER, PASV, PASV227, { ack: 'client' }, { from: 'client', text: 'PORT 198,18,7,7,195,90\r\n' }, { from: 'server', text: '200 ok\r\n' }], { close: false }, rules);
    for (const [name, e] of engines) {
      const rows = () => e.connections().map((c) => `${c.cport} ${c.vport} ${c.dport} ${c.state}${c.template ? ' template' : ''}`).sort();
      assert.equal(rows(), [template, '0 50000 50000 LISTEN', '40001 21 21 ESTABLISHED', '50010 20 20 LISTEN'].sort(), `${name}: ${rules}`);
      // The passive data connection opens: not scheduled, so the template is not asked again.
      const syn = e.processPacket(tcpPacket({ src: CLIENT, sport: 50400, dst: VIP, dport: 50000, flags: 'S', seq: 1 }), end);
      assert.is(hex(syn.packet), hex(tcpPacket({ src: CLIENT, sport: 50400, dst: RIP, dport: 50000, flags: 'S', seq: 1 })), name);
      for (const at of [end + 1_000, end + 200_000, end + 1_000_000, end + 2_000_000]) e.expire(at);
      assert.equal(e.connections(end + 2_000_000), [], `${name}: everything went in the end`);
      assert.is(e.counters().liveConns, 0, name);
    }
  }
});

test('ftpPorts: [] switches the helper off; [2121] binds it to 2121 only; bad lists are refused with WASMVS_BAD_OPTION', () => {
  const run = (ftpPorts: number[], vport: number): number => {
    const e = new Engine({ connCapacity: 64, slotCount: 4, ftpPorts });
    e.restore(`-A -t ${VIP}:${vport} -s rr\n-a -t ${VIP}:${vport} -r ${RIP}:${vport} -m\n`);
    ftpConversation({ ...ENDS, vport, sport: vport, steps: [BANNER, PASV, { from: 'server', text: reply227(RIP, 50000) }] }).forEach((p, i) => e.processPacket(p.received, T0 + i));
    return e.counters().ftp.rewritten;
  };
  assert.is(run([], 21), 0);
  assert.is(run([2121], 21), 0);
  assert.is(run([2121], 2121), 1);
  assert.is(run([21, 2121], 2121), 1);
  // The helper's table is its own: the connection table costs the same with or without it.
  const off = new Engine({ connCapacity: 64, ftpPorts: [] }).memoryUsage();
  const on = new Engine({ connCapacity: 64 }).memoryUsage();
  assert.is(off.perConnection, on.perConnection);
  assert.is(off.ftpTable, 0);
  assert.is(on.ftpTable, 128 * 20 + 8192, '64 sessions: 128 slots of key and state, and the port bitmap');
  assert.is(new Engine({ connCapacity: 1 << 20 }).memoryUsage().ftpTable, 131072 * 20 + 8192, 'at most 65,536 sessions by default');
  for (const [ports, message] of [[[0], 'ftpPorts: 0 is not a port (1..65535)'], [[65536], 'ftpPorts: 65536 is not a port (1..65535)'], [[21, 21], 'ftpPorts: port 21 is listed twice'], [[2.5], 'ftpPorts: 2.5 is not a port (1..65535)']] as const) {
    try {
      new Engine({ connCapacity: 64, ftpPorts: ports as unknown as number[] });
      assert.unreachable(`accepted ${JSON.stringify(ports)}`);
    } catch (err) {
      assert.instance(err, WasmvsError);
      assert.is((err as WasmvsError).code, 'WASMVS_BAD_OPTION');
      assert.is((err as Error).message, message);
    }
  }
});

test('ftpSessions: a control connection beyond the helper\'s table is forwarded without it (counted, reported); a freed place is taken again', () => {
  for (const [name, e] of [['wasm', new Engine({ connCapacity: 64, slotCount: 4, ftpSessions: 1 })], ['reference', new ReferenceEngine({ connCapacity: 64, ftpSessions: 1 })]] as Array<[string, EngineLike]>) {
    e.restore(RULES);
    const run = (cport: number, at: number, rewritten: boolean) => {
      const steps: FtpStep[] = [BANNER, PASV, rewritten ? PASV227 : { from: 'server', text: reply227(RIP, 50000) }];
      ftpConversation({ ...ENDS, cport, steps, close: false }).forEach((p, i) => {
        assert.is(hex(e.processPacket(p.received, at + i).packet), hex(p.sent), `${name}: client port ${cport}, packet ${i}`);
      });
    };
    run(40001, T0, true);
    run(40002, T0 + 100, false);
    assert.is(e.counters().ftp['sessions-full'], 1, name);
    // The first control connection resets; once it is gone (after its data connection, which
    // keeps it: LISTEN, 120 s), its place in the table is free for the next one.
    e.processPacket(tcpPacket({ src: CLIENT, sport: 40001, dst: VIP, dport: 21, flags: 'R', seq: 0 }), T0 + 200);
    e.expire(T0 + 200_000);
    assert.equal(e.connections(T0 + 200_000).map((c) => c.cport), [40002], name);
    run(40003, T0 + 200_100, true);
  }
  try {
    new Engine({ connCapacity: 64, ftpSessions: 0 });
    assert.unreachable('ftpSessions 0 accepted');
  } catch (err) {
    assert.is((err as WasmvsError).code, 'WASMVS_BAD_OPTION');
  }
});

test('decoded output of a rewritten 227: the client reads the VIP and the same port', () => {
  const { packets } = converse([BANNER, PASV, PASV227], { close: false });
  const e = new Engine({ connCapacity: 64, slotCount: 4 });
  e.restore(RULES);
  const out = packets.map((p, i) => e.processPacket(p.received, T0 + i).packet);
  const text = new TextDecoder().decode(decode(out[out.length - 1]).payload);
  assert.is(text, `227 Entering Passive Mode (198,18,100,30,195,80).\r\n`);
});

test.run();
