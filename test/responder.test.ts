// Tests for host/responder: the answers a host owning a VIP sends to packets no service serves.
//
// Inputs and expected answers are built with the test packet kit (test/support/packets.ts),
// which shares no code with the responder and recomputes every checksum the plain RFC 1071
// way; every answer's checksums are also verified in full (checksumsValid, and the exact bits
// against ipChecksum/l4Checksum). One fixture is literal hex, made with the kit and read by
// hand field by field, so a change in the kit cannot move both sides at once. When tshark is on
// PATH (CI installs it) a capture of answers goes through it with checksum validation on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Responder, type ResponderCounters } from '../host/responder/responder.js';
import { TokenBucket } from '../host/responder/ratelimit.js';
import { WasmvsError } from '../host/errors.js';
import {
  checksumsValid, decode, fromHex, hex, icmpPacket, ipChecksum, ipv4Packet, l4Checksum, tcpPacket, udpPacket,
  IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP,
} from './support/packets.js';
import { LINKTYPE_RAW, pcapFile } from './support/traffic.js';
import { IN_CI, TSHARK } from './support/tools.js';

const VIP = '198.18.0.10';
const CLIENT = '198.18.1.2';
const T0 = 5_000;
const OUT_LEN = 65_600;

/** A fresh out buffer pre-filled with 0xa5, so bytes the responder forgets to write show. */
function outBuffer(len = OUT_LEN): Uint8Array {
  return new Uint8Array(len).fill(0xa5);
}

/** One answer from a fresh responder (or the one given), as a copy of exactly its bytes. */
function answerOf(packet: Uint8Array, r = new Responder(), now = T0): Uint8Array {
  const out = outBuffer();
  const n = r.answer(packet, out, now);
  return out.slice(0, n);
}

/** Every checksum of an answer, recomputed in full: valid as a receiver checks, and the exact bits. */
function assertChecksums(reply: Uint8Array, what: string): void {
  const v = checksumsValid(reply);
  assert.ok(v.ip, `${what}: IP header checksum`);
  assert.ok(v.l4, `${what}: L4 checksum`);
  const d = decode(reply);
  assert.is(d.ipChecksum, ipChecksum(reply), `${what}: IP checksum bits`);
  const hlen = (reply[0] & 0x0f) * 4;
  const field = d.protocol === IPPROTO_TCP ? hlen + 16 : hlen + 2;
  assert.is(reply[field] * 256 + reply[field + 1], l4Checksum(reply), `${what}: L4 checksum bits`);
}

function assertCounters(r: Responder, want: Partial<ResponderCounters>, what: string): void {
  const zero: ResponderCounters = { tcpReset: 0, portUnreachable: 0, echoReply: 0, protocolUnreachable: 0, rateLimited: 0, notAnswered: 0 };
  assert.equal(r.counters(), { ...zero, ...want }, what);
}

/** The RST a correct host sends for a segment to VIP:22 from CLIENT:40000 (tcp_v4_send_reset). */
function expectedReset(o: { flags: 'R' | 'RA'; seq: number; ack: number; tos?: number }): Uint8Array {
  return tcpPacket({ src: VIP, dst: CLIENT, sport: 22, dport: 40000, flags: o.flags, seq: o.seq, ack: o.ack, window: 0, df: true, id: 0, ttl: 64, tos: o.tos ?? 0 });
}

const seg = (o: { flags: string; seq?: number; ack?: number; payload?: Uint8Array | string; tcpOptions?: Uint8Array; tos?: number; mf?: boolean }): Uint8Array =>
  tcpPacket({ src: CLIENT, dst: VIP, sport: 40000, dport: 22, id: 0x4242, ttl: 57, df: !o.mf, ...o });

const datagram = (payload: Uint8Array | string, extra: { tos?: number; mf?: boolean; options?: Uint8Array } = {}): Uint8Array =>
  udpPacket({ src: CLIENT, dst: VIP, sport: 41000, dport: 53, id: 0x1111, ttl: 57, payload, ...extra });

const echo = (data: Uint8Array | string, extra: { type?: number; code?: number; tos?: number; mf?: boolean } = {}): Uint8Array =>
  icmpPacket({ src: CLIENT, dst: VIP, type: 8, rest: 0x4d2b0007, id: 0x2222, ttl: 57, body: typeof data === 'string' ? new TextEncoder().encode(data) : data, ...extra });

// ---- TCP ---------------------------------------------------------------------------------

test('RST to a SYN: literal bytes (RST|ACK, seq 0, ack SEG.SEQ+1, DF, id 0, TTL 64, window 0)', () => {
  const r = new Responder();
  const reply = answerOf(seg({ flags: 'S', seq: 0x01020304, tcpOptions: fromHex('020405b4 01030307') }), r);
  // Checksums worked by hand: IP ~fold(4500+0028+0000+4000+4006+c612+000a+c612+0102) = ad9f;
  // TCP over the pseudo-header (addresses, 0006, 0014) and the header = 8242.
  assert.is(hex(reply), hex(fromHex(`
    45 00 0028 0000 4000 40 06 ad9f c612000a c6120102
    0016 9c40 00000000 01020305 50 14 0000 8242 0000`)));
  assert.is(hex(reply), hex(expectedReset({ flags: 'RA', seq: 0, ack: 0x01020305 })));
  assertChecksums(reply, 'RST');
  assert.is(r.lastKind, 'tcp-reset');
  assertCounters(r, { tcpReset: 1 }, 'counters');
});

test('RST|ACK acknowledges SEG.SEQ + SEG.LEN: SYN and FIN count one each, payload without options, modulo 2^32', () => {
  const payload10 = new Uint8Array(10).fill(0x41);
  const cases: Array<{ what: string; flags: string; seq: number; payload?: Uint8Array; tcpOptions?: Uint8Array; ack: number }> = [
    { what: 'SYN', flags: 'S', seq: 1000, ack: 1001 },
    { what: 'SYN+FIN+10 bytes', flags: 'SF', seq: 1000, payload: payload10, ack: 1012 },
    { what: 'FIN+10 bytes', flags: 'F', seq: 1000, payload: payload10, ack: 1011 },
    { what: 'PSH+10 bytes, options', flags: 'P', seq: 1000, payload: payload10, tcpOptions: fromHex('0101080a 00000001 00000002'), ack: 1010 },
    { what: 'no flags, no data', flags: '', seq: 1000, ack: 1000 },
    { what: 'SYN at 2^32-1 wraps to 0', flags: 'S', seq: 0xffffffff, ack: 0 },
    { what: 'SYN+FIN+10 bytes across the wrap', flags: 'SF', seq: 0xfffffff8, payload: payload10, ack: 0x00000004 },
    { what: 'SYN with 1460 bytes across the wrap', flags: 'S', seq: 0xfffffc00, payload: new Uint8Array(1460), ack: 0x000001b5 },
  ];
  for (const c of cases) {
    const reply = answerOf(seg({ flags: c.flags, seq: c.seq, payload: c.payload, tcpOptions: c.tcpOptions }));
    assert.is(hex(reply), hex(expectedReset({ flags: 'RA', seq: 0, ack: c.ack })), c.what);
    assertChecksums(reply, c.what);
  }
});

test('segment with ACK: RST with seq = SEG.ACK and no ACK', () => {
  for (const [flags, ack] of [['A', 0x11223344], ['PA', 0xfffffffe], ['SA', 7], ['FA', 0], ['UA', 0x80000000]] as const) {
    const reply = answerOf(seg({ flags, seq: 0x55555555, ack, payload: flags === 'PA' ? 'GET / HTTP/1.0\r\n\r\n' : undefined }));
    assert.is(hex(reply), hex(expectedReset({ flags: 'R', seq: ack, ack: 0 })), flags);
    assert.is(decode(reply).flags, 'R', `${flags}: flags`);
    assertChecksums(reply, flags);
  }
});

test('a RST is never answered, with or without ACK', () => {
  const r = new Responder();
  const out = outBuffer();
  for (const flags of ['R', 'RA', 'SR', 'FRA']) assert.is(r.answer(seg({ flags, seq: 9, ack: 9 }), out, T0), 0, flags);
  assert.is(hex(out.subarray(0, 64)), 'a5'.repeat(64), 'out untouched');
  assert.is(r.lastKind, undefined);
  assertCounters(r, { notAnswered: 4 }, 'counters');
});

test('RST tos: the packet\'s DSCP, ECN cleared (tcp_v4_send_reset)', () => {
  const reply = answerOf(seg({ flags: 'S', seq: 1, tos: 0x2b }));
  assert.is(hex(reply), hex(expectedReset({ flags: 'RA', seq: 0, ack: 2, tos: 0x28 })));
});

// ---- UDP and other protocols: ICMP errors -------------------------------------------------

function expectedError(code: number, quote: Uint8Array, id: number, tos = 0xc0): Uint8Array {
  return icmpPacket({ src: VIP, dst: CLIENT, type: 3, code, rest: 0, body: quote, id, ttl: 64, tos });
}

test('UDP: port unreachable quoting the whole small datagram', () => {
  const r = new Responder();
  const dgram = datagram('query');
  const reply = answerOf(dgram, r);
  assert.is(reply.length, 28 + dgram.length);
  assert.is(hex(reply), hex(expectedError(3, dgram, 0)));
  assertChecksums(reply, 'port unreachable');
  assert.is(r.lastKind, 'port-unreachable');
  assertCounters(r, { portUnreachable: 1 }, 'counters');
});

test('quote length: the whole reply stays within 576 bytes, never more than the packet has', () => {
  // Total lengths around the boundary (548 = 576 - 20 - 8), and a large datagram.
  for (const total of [28, 29, 547, 548, 549, 1500, 9000]) {
    const dgram = datagram(new Uint8Array(total - 28).map((_, i) => i * 7));
    assert.is(dgram.length, total);
    const reply = answerOf(dgram);
    const quoted = Math.min(total, 548);
    assert.is(reply.length, 28 + quoted, `total ${total}: reply length`);
    assert.ok(reply.length <= 576, `total ${total}: within 576`);
    assert.is(hex(reply), hex(expectedError(3, dgram.subarray(0, quoted), 0)), `total ${total}: bytes`);
    assertChecksums(reply, `total ${total}`);
  }
});

test('link padding after the total length is neither quoted nor answered differently', () => {
  const dgram = datagram('x');
  const padded = new Uint8Array(60).fill(0xee);
  padded.set(dgram);
  assert.is(hex(answerOf(padded)), hex(answerOf(dgram)));
  assert.is(answerOf(padded).length, 28 + dgram.length);
});

test('any other protocol: protocol unreachable (GRE, SCTP, 255); IGMP is not answered', () => {
  for (const protocol of [47, 132, 255, 0]) {
    const r = new Responder();
    const pkt = ipv4Packet({ src: CLIENT, dst: VIP, protocol, payload: new Uint8Array(40).fill(protocol), id: 0x3333 });
    const reply = answerOf(pkt, r);
    assert.is(hex(reply), hex(expectedError(2, pkt, 0)), `protocol ${protocol}`);
    assertChecksums(reply, `protocol ${protocol}`);
    assert.is(r.lastKind, 'protocol-unreachable');
    assertCounters(r, { protocolUnreachable: 1 }, `protocol ${protocol} counters`);
  }
  const igmp = ipv4Packet({ src: CLIENT, dst: VIP, protocol: 2, payload: fromHex('1600fa04 c612000a') });
  assert.is(answerOf(igmp).length, 0, 'IGMP');
});

test('ICMP error tos: precedence Internetwork Control with the packet\'s TOS bits (icmp_send)', () => {
  const dgram = datagram('q', { tos: 0x2b });
  assert.is(hex(answerOf(dgram)), hex(expectedError(3, dgram, 0, 0xca)));
});

test('ICMP answers number their IP id; RSTs keep id 0 with DF', () => {
  const r = new Responder();
  const ids: number[] = [];
  for (let i = 0; i < 4; i++) {
    const reply = answerOf(i === 2 ? seg({ flags: 'S', seq: 1 }) : i === 3 ? echo('abc') : datagram('q'), r);
    const d = decode(reply);
    ids.push(d.id);
    assert.is(d.df, d.protocol === IPPROTO_TCP, `answer ${i}: DF only on the RST`);
  }
  assert.equal(ids, [0, 1, 0, 2]);
});

test('IP options: the quote keeps them, the answer has none; a source route is never answered', () => {
  const recordRoute = fromHex('07 07 04 00000000 00'); // RR, room for one address, then EOL
  const dgram = datagram('q', { options: recordRoute });
  const reply = answerOf(dgram);
  assert.is(reply[0], 0x45, 'answer without options');
  assert.is(hex(reply), hex(expectedError(3, dgram, 0)));
  assertChecksums(reply, 'with RR');
  const r = new Responder();
  for (const type of [0x83, 0x89]) {
    const sr = fromHex(`01 ${type.toString(16)} 07 04 c6120101`); // NOP, LSRR/SSRR via 198.18.1.1
    assert.is(answerOf(datagram('q', { options: sr }), r).length, 0, `source route option ${type}`);
  }
  // Option length 1; a length past the header; a type in the last byte with no length after it.
  for (const bad of ['44 01 0000', '07 09 04 00 00000000', '01 01 01 07']) {
    assert.is(answerOf(datagram('q', { options: fromHex(bad) }), r).length, 0, `malformed options ${bad}`);
  }
  assertCounters(r, { notAnswered: 5 }, 'counters');
});

// ---- ICMP --------------------------------------------------------------------------------

test('echo request: echo reply with the same identifier, sequence and data (odd and large lengths)', () => {
  for (const data of ['', 'x', 'wasmvs-test', new Uint8Array(1472).map((_, i) => i), new Uint8Array(9001).map((_, i) => 255 - (i & 0xff))]) {
    const r = new Responder();
    const req = echo(data, { tos: 0x01 });
    const reply = answerOf(req, r);
    const body = req.subarray(28);
    const want = icmpPacket({ src: VIP, dst: CLIENT, type: 0, rest: 0x4d2b0007, body, id: 0, ttl: 64, tos: 0 });
    assert.is(hex(reply), hex(want), `${body.length} data bytes`);
    assertChecksums(reply, `${body.length} data bytes`);
    assert.is(r.lastKind, 'echo-reply');
    assertCounters(r, { echoReply: 1 }, 'counters');
  }
});

test('other ICMP is not answered: replies, errors, timestamp/info/mask requests, echo with code 1 or a bad checksum', () => {
  const r = new Responder();
  const unreach = icmpPacket({ src: CLIENT, dst: VIP, type: 3, code: 3, body: datagram('q').subarray(0, 28) });
  const cases: Array<[string, Uint8Array]> = [
    ['echo reply', echo('x', { type: 0 })],
    ['port unreachable', unreach],
    ['time exceeded', icmpPacket({ src: CLIENT, dst: VIP, type: 11, body: datagram('q').subarray(0, 28) })],
    ['timestamp request', icmpPacket({ src: CLIENT, dst: VIP, type: 13, body: new Uint8Array(12) })],
    ['information request', icmpPacket({ src: CLIENT, dst: VIP, type: 15 })],
    ['address mask request', icmpPacket({ src: CLIENT, dst: VIP, type: 17, body: new Uint8Array(4) })],
    ['echo code 1', echo('x', { code: 1 })],
  ];
  const bad = echo('corrupted');
  bad[bad.length - 1] ^= 0x01;
  cases.push(['echo with a bad ICMP checksum', bad]);
  cases.push(['ICMP shorter than its header', ipv4Packet({ src: CLIENT, dst: VIP, protocol: IPPROTO_ICMP, payload: fromHex('0800f7ff') })]);
  for (const [what, pkt] of cases) assert.is(answerOf(pkt, r).length, 0, what);
  assert.is(r.lastKind, undefined);
  assertCounters(r, { notAnswered: cases.length }, 'counters');
});

// ---- never answered ----------------------------------------------------------------------

test('fragments: non-first never; a first fragment only where the answer needs no reassembly', () => {
  const r = new Responder();
  for (const protocol of [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, 47]) {
    for (const mf of [true, false]) {
      const pkt = ipv4Packet({ src: CLIENT, dst: VIP, protocol, payload: new Uint8Array(64), fragOffset: 185, mf });
      assert.is(r.answer(pkt, outBuffer(), T0), 0, `protocol ${protocol} offset 185 mf ${mf}`);
    }
  }
  assertCounters(r, { notAnswered: 8 }, 'non-first fragments');

  const firstUdp = datagram(new Uint8Array(1000), { mf: true }).subarray(0, 20 + 504);
  firstUdp[2] = 0x02; firstUdp[3] = 0x0c; // total length 524: the fragment, not the datagram
  firstUdp[10] = 0; firstUdp[11] = 0;
  const ck = ipChecksum(firstUdp);
  firstUdp[10] = ck >> 8; firstUdp[11] = ck & 0xff;
  const reply = answerOf(firstUdp);
  assert.is(hex(reply), hex(expectedError(3, firstUdp, 0)), 'first UDP fragment: port unreachable quoting it');
  assertChecksums(reply, 'first fragment quote');

  const ackFrag = seg({ flags: 'PA', seq: 1, ack: 0xabcdef01, payload: 'data', mf: true });
  assert.is(hex(answerOf(ackFrag)), hex(expectedReset({ flags: 'R', seq: 0xabcdef01, ack: 0 })), 'first fragment with ACK: RST');
  assert.is(answerOf(seg({ flags: 'S', seq: 1, payload: 'data', mf: true })).length, 0, 'first fragment without ACK: SEG.LEN unknown');
  assert.is(answerOf(echo('abcd', { mf: true })).length, 0, 'first fragment of an echo: data unknown');
});

test('sources that name no single host, multicast and broadcast destinations: never answered', () => {
  const r = new Responder();
  const sources = ['0.0.0.0', '0.1.2.3', '127.0.0.1', '127.255.255.254', '224.0.0.1', '239.255.255.250', '255.255.255.255'];
  for (const src of sources) {
    for (const make of [
      () => tcpPacket({ src, dst: VIP, sport: 1, dport: 22, flags: 'S' }),
      () => udpPacket({ src, dst: VIP, sport: 1, dport: 53, payload: 'q' }),
      () => icmpPacket({ src, dst: VIP, type: 8, rest: 1 }),
      () => ipv4Packet({ src, dst: VIP, protocol: 255, payload: new Uint8Array(8) }),
    ]) assert.is(r.answer(make(), outBuffer(), T0), 0, `source ${src}`);
  }
  for (const dst of ['224.0.0.5', '239.1.2.3', '255.255.255.255']) {
    assert.is(r.answer(tcpPacket({ src: CLIENT, dst, sport: 1, dport: 22, flags: 'S' }), outBuffer(), T0), 0, `destination ${dst}`);
    assert.is(r.answer(udpPacket({ src: CLIENT, dst, sport: 1, dport: 53, payload: 'q' }), outBuffer(), T0), 0, `destination ${dst}`);
    assert.is(r.answer(icmpPacket({ src: CLIENT, dst, type: 8, rest: 1 }), outBuffer(), T0), 0, `destination ${dst}`);
  }
  assertCounters(r, { notAnswered: sources.length * 4 + 9 }, 'counters');
  // 240/4 is unicast to Linux (since 2.6.25), and a host there is answered.
  const reply = answerOf(tcpPacket({ src: '240.0.0.1', dst: VIP, sport: 1, dport: 22, flags: 'S' }));
  assert.is(decode(reply).dst, '240.0.0.1');
});

test('packets that do not parse: 0, counted, no throw, out untouched', () => {
  const good = datagram('hello');
  const withIp = (edit: (p: Uint8Array) => void, fixChecksum = true): Uint8Array => {
    const p = good.slice();
    edit(p);
    if (fixChecksum && (p[0] & 0x0f) >= 5) {
      p[10] = 0; p[11] = 0;
      const c = ipChecksum(p);
      p[10] = c >> 8; p[11] = c & 0xff;
    }
    return p;
  };
  const tcpShort = tcpPacket({ src: CLIENT, dst: VIP, sport: 1, dport: 22, flags: 'S' });
  const cases: Array<[string, Uint8Array]> = [
    ['empty', new Uint8Array(0)],
    ['19 bytes', good.subarray(0, 19)],
    ['version 6', withIp((p) => { p[0] = 0x65; })],
    ['IHL 4', withIp((p) => { p[0] = 0x44; }, false)],
    ['IHL past total length', withIp((p) => { p[0] = 0x4f; }, false)],
    ['total length past the buffer', withIp((p) => { p[3] += 1; })],
    ['total length below the header', withIp((p) => { p[2] = 0; p[3] = 19; })],
    ['truncated buffer', good.subarray(0, good.length - 1)],
    ['bad IP header checksum', withIp((p) => { p[10] ^= 0x10; }, false)],
    ['UDP shorter than its header', withIp((p) => { p[2] = 0; p[3] = 27; })],
    ['UDP length past the datagram', withIp((p) => { p[25] += 1; })],
    ['UDP length below its header', withIp((p) => { p[24] = 0; p[25] = 7; })],
    ['TCP shorter than its header', (() => { const p = tcpShort.slice(0, 39); p[3] = 39; p[10] = 0; p[11] = 0; const c = ipChecksum(p); p[10] = c >> 8; p[11] = c & 0xff; return p; })()],
    ['TCP data offset 4', (() => { const p = tcpShort.slice(); p[32] = 0x40; return p; })()],
    ['TCP data offset past the segment', (() => { const p = tcpShort.slice(); p[32] = 0x60; return p; })()],
  ];
  const r = new Responder();
  for (const [what, pkt] of cases) {
    const out = outBuffer(128);
    assert.is(r.answer(pkt, out, T0), 0, what);
    assert.is(hex(out), 'a5'.repeat(128), `${what}: out untouched`);
  }
  assertCounters(r, { notAnswered: cases.length }, 'counters');
  assert.is(answerOf(good).length, 28 + good.length, 'the unedited datagram is answered');
});

test('an answer that does not fit out is not sent, takes no token, and is counted', () => {
  const r = new Responder({ burst: 1, ratePerSecond: 0 });
  const small = outBuffer(39);
  assert.is(r.answer(seg({ flags: 'S' }), small, T0), 0);
  assert.is(r.answer(datagram('q'), outBuffer(28 + 28), T0), 0);
  assert.is(r.answer(echo('0123456789'), outBuffer(37), T0), 0);
  assert.is(hex(small), 'a5'.repeat(39));
  assertCounters(r, { notAnswered: 3 }, 'not answered');
  assert.is(r.answer(echo('0123456789'), outBuffer(38), T0), 38, 'the token is still there');
});

// ---- rate limit --------------------------------------------------------------------------

test('token bucket: burst, refill, no more than the capacity after idle, clock stepping back', () => {
  const r = new Responder({ ratePerSecond: 10, burst: 3 });
  const pkt = seg({ flags: 'S', seq: 1 });
  const out = outBuffer(64);
  const step = (now: number): boolean => r.answer(pkt, out, now) > 0;
  // [now, answered?] in order: 3 at once, then one per 100 ms, half tokens carried over.
  const script: Array<[number, boolean]> = [
    [1000, true], [1000, true], [1000, true], [1000, false], [1050, false], [1099, false], [1100, true], [1100, false],
    [1150, false], [1200, true], [1249, false],
    // 1 h idle: the bucket is full again, and only full.
    [3_601_000, true], [3_601_000, true], [3_601_000, true], [3_601_000, false],
    // A clock stepping back mints nothing, and the later stamp holds until time passes it.
    [1000, false], [3_601_099, false], [3_601_100, true],
  ];
  let sent = 0;
  for (const [i, [now, want]] of script.entries()) {
    assert.is(step(now), want, `step ${i} at ${now}`);
    if (want) sent++;
    assertCounters(r, { tcpReset: sent, rateLimited: i + 1 - sent }, `counters after step ${i}`);
  }
});

test('defaults are icmp_msgs_per_sec 1000 and icmp_msgs_burst 50; one bucket for every kind', () => {
  const r = new Responder();
  const kinds = [seg({ flags: 'S' }), datagram('q'), echo('e'), ipv4Packet({ src: CLIENT, dst: VIP, protocol: 255, payload: new Uint8Array(4) })];
  const out = outBuffer();
  let sent = 0;
  for (let i = 0; i < 60; i++) if (r.answer(kinds[i % 4], out, 0) > 0) sent++;
  assert.is(sent, 50, 'burst of 50 at one instant');
  assert.is(r.answer(kinds[0], out, 1), 40, 'one token per millisecond');
  assert.is(r.answer(kinds[1], out, 1), 0);
  assert.is(r.answer(kinds[2], out, 3), 29, 'two more by 3 ms');
  assert.is(r.answer(kinds[3], out, 3), 52);
  assert.is(r.answer(kinds[3], out, 3), 0);
  const c = r.counters();
  assert.is(c.tcpReset + c.portUnreachable + c.echoReply + c.protocolUnreachable, 53);
  assert.is(c.rateLimited, 12);
  assert.is(r.lastKind, 'protocol-unreachable', 'a rate-limited packet leaves lastKind as it was');
});

test('rate limit: a rate-limited ICMP answer does not use up an IP id', () => {
  const r = new Responder({ burst: 1, ratePerSecond: 1 });
  assert.is(decode(answerOf(datagram('a'), r, 0)).id, 0);
  assert.is(answerOf(datagram('b'), r, 10).length, 0);
  assert.is(decode(answerOf(datagram('c'), r, 1000)).id, 1);
});

test('TokenBucket alone: zero rate spends the burst once; zero burst never answers', () => {
  const once = new TokenBucket({ ratePerSecond: 0, burst: 2 });
  assert.equal([0, 1, 1e9].map((t) => once.take(t)), [true, true, false]);
  const never = new TokenBucket({ ratePerSecond: 1000, burst: 0 });
  assert.equal([0, 1000, 1e9].map((t) => never.take(t)), [false, false, false]);
  const b = new TokenBucket({ ratePerSecond: 3, burst: 2 });
  assert.equal([0, 0].map((t) => b.take(t)), [true, true]);
  // One token per 333.3 ms, no fraction lost between takes: 0.999 at 333 ms, 1.002 at 334;
  // the 0.002 left carries over, so 0.998 at 666 ms and 1.001 at 667.
  assert.equal([333, 334, 666, 667].map((t) => b.take(t)), [false, true, false, true]);
});

// ---- options -----------------------------------------------------------------------------

test('options are validated: WASMVS_BAD_OPTION naming the problem', () => {
  const bad: Array<[string, unknown]> = [
    ['ratePerSecond', -1], ['ratePerSecond', 1.5], ['ratePerSecond', Number.NaN], ['ratePerSecond', Infinity],
    ['ratePerSecond', '1000'], ['ratePerSecond', 2 ** 31], ['burst', -1], ['burst', 0.5], ['burst', null], ['burst', 2 ** 31],
  ];
  for (const [key, value] of bad) {
    try {
      new Responder({ [key]: value } as never);
      assert.unreachable(`${key} ${String(value)} accepted`);
    } catch (e) {
      assert.instance(e, WasmvsError, `${key} ${String(value)}`);
      assert.is((e as WasmvsError).code, 'WASMVS_BAD_OPTION');
      assert.match((e as Error).message, key);
    }
  }
  for (const options of [{ rate: 5 }, null, 7]) {
    try {
      new Responder(options as never);
      assert.unreachable(`${JSON.stringify(options)} accepted`);
    } catch (e) {
      assert.is((e as WasmvsError).code, 'WASMVS_BAD_OPTION', JSON.stringify(options));
    }
  }
  new Responder({ ratePerSecond: 0, burst: 0 });
  new Responder({ ratePerSecond: 2 ** 31 - 1, burst: 2 ** 31 - 1 });
  new Responder({ ratePerSecond: undefined });
});

test('counters() returns a snapshot', () => {
  const r = new Responder();
  const before = r.counters();
  answerOf(seg({ flags: 'S' }), r);
  assert.is(before.tcpReset, 0);
  assert.is(r.counters().tcpReset, 1);
});

// ---- tshark ------------------------------------------------------------------------------

test('tshark finds every checksum of every kind of answer valid, with no warnings', () => {
  if (!TSHARK) {
    if (IN_CI) assert.unreachable('tshark is not installed; CI must install it (.ci/run)');
    console.log('  note: tshark not found; answers are not checked by tshark');
    return;
  }
  const r = new Responder();
  const inputs = [
    seg({ flags: 'S', seq: 0xfffffff0, payload: new Uint8Array(33) }),
    seg({ flags: 'PA', seq: 5, ack: 0x01020304, payload: 'GET /' }),
    datagram('query'),
    datagram(new Uint8Array(1400).fill(0x5a)),
    echo('wasmvs-test'),
    echo(new Uint8Array(1001).map((_, i) => i)),
    ipv4Packet({ src: CLIENT, dst: VIP, protocol: 255, payload: new Uint8Array(21) }),
  ];
  const answers = inputs.map((p) => answerOf(p, r));
  assert.ok(answers.every((a) => a.length > 0));
  const dir = mkdtempSync(join(tmpdir(), 'wasmvs-responder-test-'));
  try {
    const file = join(dir, 'answers.pcap');
    writeFileSync(file, pcapFile(answers.map((data, i) => ({ tsSec: 1, tsFrac: i, data })), { linkType: LINKTYPE_RAW }));
    const res = spawnSync(TSHARK, [
      '-r', file, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
      '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=f',
      '-e', 'frame.number', '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status', '-e', 'icmp.checksum.status',
      '-e', 'tcp.flags', '-e', 'icmp.type', '-e', 'icmp.code',
    ], { encoding: 'utf8', timeout: 30_000 });
    assert.is(res.status, 0, `tshark failed: ${res.stderr}`);
    // Status 1 = good; the first occurrence of each field is the answer's own header (an ICMP
    // error's quoted headers come after it).
    assert.equal(res.stdout.split('\n').filter((l) => l !== ''), [
      '1\t1\t1\t\t0x0014\t\t', '2\t1\t1\t\t0x0004\t\t', '3\t1\t\t1\t\t3\t3', '4\t1\t\t1\t\t3\t3',
      '5\t1\t\t1\t\t0\t0', '6\t1\t\t1\t\t0\t0', '7\t1\t\t1\t\t3\t2',
    ]);
    // Expert info: nothing at warning (0x600000) or above but the note tshark puts on every RST.
    const expert = spawnSync(TSHARK, [
      '-r', file, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
      '-T', 'fields', '-E', 'separator=/t', '-E', 'aggregator=|', '-e', 'frame.number', '-e', '_ws.expert.severity', '-e', '_ws.expert.message',
    ], { encoding: 'utf8', timeout: 30_000 });
    assert.is(expert.status, 0, `tshark failed: ${expert.stderr}`);
    for (const line of expert.stdout.split('\n').filter((l) => l !== '')) {
      const [frame, severities, messages] = line.split('\t');
      const sev = (severities ?? '').split('|').filter(Boolean).map(Number);
      const msg = (messages ?? '').split('|');
      sev.forEach((s, i) => {
        if (s >= 0x600000) assert.is(msg[i], 'Connection reset (RST)', `frame ${frame}: expert info at severity ${s.toString(16)}: ${msg[i]}`);
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
