// ICMP errors about connections, translated as IPVS does (ip_vs_in_icmp, ip_vs_out_icmp,
// ip_vs_nat_icmp), both directions, every checksum verified by an independent full recompute.
//
// How the fixtures are made: `quote(pkt, n)` takes the first n bytes after the IP header of a
// packet built with the kit, exactly as a router quotes it; `icmpError` wraps a quote in an
// ICMP error with the kit's full checksum. The expected output is built the same way from the
// packet as the other side saw it, so the engine's incremental adjustments are checked
// against full recomputes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine } from '../host/engine/engine.js';
import { CLIENT, RS3, seedEngine, VIP } from './support/dataplane.js';
import {
  checksumsValid, decode, hex, icmpPacket, ipChecksum, IPPROTO_ICMP, ipv4Packet, quotePacket,
  tcpPacket, udpPacket,
} from './support/packets.js';

const T0 = 3_000_000;
const ROUTER = '198.51.100.1';

const quote = quotePacket;

const icmpError = (src: string, dst: string, type: number, code: number, rest: number, quoted: Uint8Array): Uint8Array =>
  icmpPacket({ src, dst, type, code, rest, body: quoted, ttl: 60 });

/** The quoted packet inside an ICMP error packet. */
function quotedOf(pkt: Uint8Array): Uint8Array {
  return pkt.subarray(20 + 8);
}

function tcpEngine(): Engine {
  // The seed's wrr sends the first :80 connection to 172.16.0.3:8000.
  const e = seedEngine();
  const syn = e.processPacket(tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, flags: 'S', seq: 100 }), T0);
  assert.is(decode(syn.packet).dst, RS3);
  e.processPacket(tcpPacket({ src: RS3, dst: CLIENT, sport: 8000, dport: 3456, flags: 'SA', seq: 500, ack: 101 }), T0);
  return e;
}

test('fragmentation needed about a reply (client side) goes to the real server: path MTU discovery works', () => {
  const e = tcpEngine();
  // What the real server sent, and what the director sent on after SNAT.
  const fromServer = tcpPacket({ src: RS3, dst: CLIENT, sport: 8000, dport: 3456, flags: 'PA', seq: 501, ack: 101, df: true, payload: 'x'.repeat(1460) });
  const asSent = tcpPacket({ src: VIP, dst: CLIENT, sport: 80, dport: 3456, flags: 'PA', seq: 501, ack: 101, df: true, payload: 'x'.repeat(1460) });
  // A router on the client's side: "fragmentation needed, next-hop MTU 1400", quoting 8 bytes.
  const input = icmpError(ROUTER, VIP, 3, 4, 1400, quote(asSent, 8));
  const expected = icmpError(ROUTER, RS3, 3, 4, 1400, quote(fromServer, 8));
  const r = e.processPacket(input, T0 + 1);
  assert.is(r.verdict, 'forward');
  assert.is(r.reply, false);
  assert.is(hex(r.packet), hex(expected));
  assert.equal(checksumsValid(r.packet), { ip: true, l4: true });
  assert.is(ipChecksum(quotedOf(r.packet)), new DataView(quotedOf(r.packet).buffer, quotedOf(r.packet).byteOffset).getUint16(10));
  assert.is(new DataView(r.packet.buffer, r.packet.byteOffset).getUint16(20 + 6), 1400, 'the MTU is kept');
});

test('time exceeded about a request (real-server side) goes to the client from the VIP, TCP checksum in the quote adjusted', () => {
  const e = tcpEngine();
  const fromClient = tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, flags: 'A', seq: 101, ack: 501 });
  const asSent = tcpPacket({ src: CLIENT, dst: RS3, sport: 3456, dport: 8000, flags: 'A', seq: 101, ack: 501 });
  // A router between director and real server quotes the whole 20-byte TCP header.
  const input = icmpError(ROUTER, CLIENT, 11, 0, 0, quote(asSent, 20));
  // IPVS rewrites the outer source to the VIP even when a router sent the error.
  const expected = icmpError(VIP, CLIENT, 11, 0, 0, quote(fromClient, 20));
  const r = e.processPacket(input, T0 + 1);
  assert.is(r.verdict, 'forward');
  assert.is(r.reply, true);
  assert.is(hex(r.packet), hex(expected));
  assert.equal(checksumsValid(r.packet), { ip: true, l4: true });
  assert.equal(checksumsValid(quotedOf(r.packet)), { ip: true, l4: true }, 'the quoted segment is whole and its checksum valid');
});

test('port unreachable from the real server about a UDP request goes to the client; the quoted UDP checksum is adjusted', () => {
  const e = new Engine({ connCapacity: 64, slotCount: 8 });
  e.restore('-A -u 202.103.106.5:53 -s rr\n-a -u 202.103.106.5:53 -r 172.16.0.3:5353 -m -w 1\n');
  const fromClient = udpPacket({ src: CLIENT, dst: VIP, sport: 5000, dport: 53, payload: 'query' });
  const r1 = e.processPacket(fromClient, T0);
  assert.is(r1.verdict, 'forward');
  const asSent = udpPacket({ src: CLIENT, dst: RS3, sport: 5000, dport: 5353, payload: 'query' });
  assert.is(hex(r1.packet), hex(asSent));
  const input = icmpError(RS3, CLIENT, 3, 3, 0, quote(asSent, 8 + 5));
  const expected = icmpError(VIP, CLIENT, 3, 3, 0, quote(fromClient, 8 + 5));
  const r = e.processPacket(input, T0 + 1);
  assert.is(r.verdict, 'forward');
  assert.is(hex(r.packet), hex(expected));
  assert.equal(checksumsValid(quotedOf(r.packet)), { ip: true, l4: true });
});

test('parameter problem and source quench are translated too; echo and a quote of ICMP to the VIP are local', () => {
  const e = tcpEngine();
  const asSent = tcpPacket({ src: CLIENT, dst: RS3, sport: 3456, dport: 8000, flags: 'A', seq: 101, ack: 501 });
  for (const type of [12, 4]) {
    const r = e.processPacket(icmpError(RS3, CLIENT, type, 0, 0, quote(asSent, 8)), T0 + 1);
    assert.is(r.verdict, 'forward', `type ${type}`);
    assert.is(decode(r.packet).src, VIP);
  }
  const echo = icmpPacket({ src: CLIENT, dst: VIP, type: 8, rest: 0x00010001 });
  const re = e.processPacket(echo, T0 + 1);
  assert.is(re.verdict, 'local');
  assert.is(re.reason, 'icmp');
  assert.is(hex(re.packet), hex(echo));
  const aboutPing = icmpError(ROUTER, VIP, 11, 0, 0, quote(echo, 8));
  const rp = e.processPacket(aboutPing, T0 + 1);
  assert.is(rp.verdict, 'local');
  assert.is(rp.reason, 'icmp');
  // Not to a VIP: transit, passed unchanged.
  const transit = icmpPacket({ src: CLIENT, dst: ROUTER, type: 8, rest: 0x00010001 });
  assert.is(e.processPacket(transit, T0 + 1).reason, 'protocol');
});

test('errors about our traffic with no connection are dropped; about transit traffic they pass', () => {
  const e = tcpEngine();
  const noConn = tcpPacket({ src: VIP, dst: '198.51.100.99', sport: 80, dport: 1111, flags: 'A' });
  const r1 = e.processPacket(icmpError(ROUTER, VIP, 3, 1, 0, quote(noConn, 8)), T0 + 1);
  assert.is(r1.verdict, 'drop');
  assert.is(r1.reason, 'icmp-no-conn');
  const toServer = tcpPacket({ src: '198.51.100.99', dst: RS3, sport: 1111, dport: 8000, flags: 'A' });
  const r2 = e.processPacket(icmpError(ROUTER, '198.51.100.99', 3, 1, 0, quote(toServer, 8)), T0 + 1);
  assert.is(r2.reason, 'icmp-no-conn');
  const transit = tcpPacket({ src: '198.51.100.5', dst: '198.51.100.6', sport: 1, dport: 2, flags: 'A' });
  const input = icmpError(ROUTER, '198.51.100.5', 3, 1, 0, quote(transit, 8));
  const r3 = e.processPacket(input, T0 + 1);
  assert.is(r3.verdict, 'pass');
  assert.is(r3.reason, 'no-match');
  assert.is(hex(r3.packet), hex(input));
  assert.is(e.counters().drops['icmp-no-conn'], 2);
});

test('malformed ICMP errors are dropped with their own reasons and change nothing', () => {
  const e = tcpEngine();
  const asSent = tcpPacket({ src: CLIENT, dst: RS3, sport: 3456, dport: 8000, flags: 'A' });
  const good = icmpError(ROUTER, CLIENT, 11, 0, 0, quote(asSent, 8));
  const badSum = good.slice();
  badSum[20 + 8 + 12] ^= 0x40; // a byte of the quote, so the ICMP checksum no longer holds
  badSum[10] = 0; badSum[11] = 0;
  const ipSum = ipChecksum(badSum);
  badSum[10] = ipSum >> 8; badSum[11] = ipSum & 0xff;
  assert.is(e.processPacket(badSum, T0 + 1).reason, 'bad-icmp-checksum');
  const short = icmpError(ROUTER, CLIENT, 11, 0, 0, quote(asSent, 4)); // the ports cut short
  assert.is(e.processPacket(short, T0 + 1).reason, 'icmp-truncated');
  const tiny = ipv4Packet({ src: ROUTER, dst: CLIENT, protocol: IPPROTO_ICMP, payload: new Uint8Array([11, 0, 0]) });
  assert.is(e.processPacket(tiny, T0 + 1).reason, 'icmp-truncated');
  const c = e.counters();
  assert.is(c.drops['bad-icmp-checksum'], 1);
  assert.is(c.drops['icmp-truncated'], 2);
  // The connection was not touched: its next packet still forwards.
  assert.is(e.processPacket(tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, flags: 'A' }), T0 + 2).verdict, 'forward');
});

test.run();
