// Tests for the test packet kit (test/support/packets.ts), the oracle the NAT tests lean on.
// Its checksums are checked three ways: against a fixture verified by tshark, against a second
// summation written differently (below), and, when tshark is installed, by tshark itself.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LINKTYPE_RAW, PcapWriter } from '../host/replay/pcap.js';
import {
  IPPROTO_ICMP,
  checksumsValid,
  decode,
  ethernetFrame,
  fromHex,
  hex,
  ipChecksum,
  ipv4Packet,
  l4Checksum,
  tcpPacket,
  udpPacket,
} from './support/packets.js';
import { TSHARK } from './support/tools.js';

// A TCP SYN 202.100.1.2:3456 -> 202.103.106.5:80 with an MSS option. Written field by field by
// hand; the two checksums were computed with a separate Python script and confirmed "Good" by
// `tshark -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE`.
const SYN_FIXTURE = fromHex(`
  45 00 002c 04d2 4000 40 06 3627 ca640102 ca676a05
  0d80 0050 000003e8 00000000 60 02 7210 148b 0000 020405b4
`);
const SYN_IP_CHECKSUM = 0x3627;
const SYN_TCP_CHECKSUM = 0x148b;

const SYN_OPTS = {
  src: '202.100.1.2',
  dst: '202.103.106.5',
  sport: 3456,
  dport: 80,
  flags: 'S',
  seq: 1000,
  id: 1234,
  df: true,
  window: 29200,
  tcpOptions: fromHex('020405b4'),
};

// ---- a second summation, deliberately unlike the kit's ----------------------------------
// Sums the high and low bytes of the words separately and reduces modulo 65535, which equals
// the end-around-carry fold (with 0xffff standing for a non-zero multiple of 65535).
function altOnesSum(bytes: Uint8Array): number {
  let high = 0;
  let low = 0;
  bytes.forEach((b, i) => {
    if (i % 2 === 0) high += b;
    else low += b;
  });
  const total = high * 256 + low;
  const r = total % 0xffff;
  return r === 0 && total !== 0 ? 0xffff : r;
}

function altIpOk(pkt: Uint8Array): boolean {
  const ihl = (pkt[0] % 16) * 4;
  return altOnesSum(pkt.subarray(0, ihl)) === 0xffff;
}

function altL4Ok(pkt: Uint8Array): boolean {
  const ihl = (pkt[0] % 16) * 4;
  const total = pkt[2] * 256 + pkt[3];
  const seg = pkt.subarray(ihl, total);
  const pseudo = [...pkt.subarray(12, 20), 0, pkt[9], seg.length >> 8, seg.length % 256];
  return altOnesSum(Uint8Array.from([...pseudo, ...seg])) === 0xffff;
}

function flip(pkt: Uint8Array, at: number, mask: number): Uint8Array {
  const copy = pkt.slice();
  copy[at] ^= mask;
  return copy;
}


/** tshark's checksum verdicts per packet: [ip, tcp, udp, icmp]; 1 = good, 0 = bad, 3 = not present. */
function tsharkChecksumStatus(packets: Uint8Array[]): string[][] {
  const writer = new PcapWriter({ linkType: LINKTYPE_RAW, nanosecond: false, snapLen: 65535 });
  packets.forEach((data, i) => writer.add({ tsSec: 1, tsFrac: i, data }));
  const dir = mkdtempSync(join(tmpdir(), 'wasmvs-support-'));
  try {
    const file = join(dir, 'packets.pcap');
    writeFileSync(file, writer.toBytes());
    const out = execFileSync(TSHARK!, [
      '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
      '-r', file, '-T', 'fields', '-E', 'separator=,',
      '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status', '-e', 'udp.checksum.status', '-e', 'icmp.checksum.status',
    ], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.trim().split('\n').map((line) => line.split(','));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- fixture ----------------------------------------------------------------------------

test('tcpPacket builds the hand-written SYN fixture byte for byte', () => {
  assert.is(hex(tcpPacket(SYN_OPTS)), hex(SYN_FIXTURE));
});

test('fixture checksums agree with the second summation and with ipChecksum/l4Checksum', () => {
  assert.ok(altIpOk(SYN_FIXTURE));
  assert.ok(altL4Ok(SYN_FIXTURE));
  assert.is(ipChecksum(SYN_FIXTURE), SYN_IP_CHECKSUM);
  assert.is(l4Checksum(SYN_FIXTURE), SYN_TCP_CHECKSUM);
  assert.equal(checksumsValid(SYN_FIXTURE), { ip: true, l4: true });
});

test('ipChecksum and l4Checksum ignore the value already in the field', () => {
  const pkt = SYN_FIXTURE.slice();
  pkt[10] = 0xde;
  pkt[11] = 0xad;
  pkt[20 + 16] = 0xbe;
  pkt[20 + 17] = 0xef;
  assert.is(ipChecksum(pkt), SYN_IP_CHECKSUM);
  assert.is(l4Checksum(pkt), SYN_TCP_CHECKSUM);
  assert.equal(checksumsValid(pkt), { ip: false, l4: false });
});

// ---- decode -----------------------------------------------------------------------------

test('decode returns what tcpPacket was given', () => {
  const pkt = tcpPacket({
    src: '10.1.2.3', dst: '192.168.0.9', sport: 40000, dport: 443, flags: 'PA',
    seq: 0xfffffff0, ack: 0x80000001, window: 512, ttl: 3, id: 0xbeef, tos: 0x10, payload: 'GET / HTTP/1.1\r\n',
  });
  const d = decode(pkt);
  assert.equal(
    { src: d.src, dst: d.dst, protocol: d.protocol, sport: d.sport, dport: d.dport, flags: d.flags, ttl: d.ttl },
    { src: '10.1.2.3', dst: '192.168.0.9', protocol: 6, sport: 40000, dport: 443, flags: 'PA', ttl: 3 },
  );
  assert.equal(
    { seq: d.seq, ack: d.ack, window: d.window, id: d.id, tos: d.tos, df: d.df, mf: d.mf, fragOffset: d.fragOffset },
    { seq: 0xfffffff0, ack: 0x80000001, window: 512, id: 0xbeef, tos: 0x10, df: false, mf: false, fragOffset: 0 },
  );
  assert.is(d.totalLength, pkt.length);
  assert.is(d.ipChecksum, ipChecksum(pkt));
  assert.is(d.l4Checksum, l4Checksum(pkt));
  assert.is(new TextDecoder().decode(d.payload), 'GET / HTTP/1.1\r\n');
});

test('decode returns what udpPacket was given, and defaults are ttl 64, id 0', () => {
  const pkt = udpPacket({ src: '172.16.0.1', dst: '172.16.0.2', sport: 5353, dport: 53, payload: fromHex('c0ffee') });
  const d = decode(pkt);
  assert.equal(
    { src: d.src, dst: d.dst, protocol: d.protocol, sport: d.sport, dport: d.dport, ttl: d.ttl, id: d.id, flags: d.flags },
    { src: '172.16.0.1', dst: '172.16.0.2', protocol: 17, sport: 5353, dport: 53, ttl: 64, id: 0, flags: undefined },
  );
  assert.is(hex(d.payload), 'c0ffee');
  assert.is(pkt[20 + 4] * 256 + pkt[20 + 5], 8 + 3, 'UDP length field');
});

test('tcpPacket defaults: window 65535, seq/ack 0, data offset 5', () => {
  const d = decode(tcpPacket({ src: '1.1.1.1', dst: '2.2.2.2', sport: 1, dport: 2, flags: 'A' }));
  assert.equal([d.window, d.seq, d.ack, d.payload.length], [65535, 0, 0, 0]);
});

test('TCP flags round trip, spelled in bit order', () => {
  const cases: Array<[string, string]> = [['S', 'S'], ['SA', 'SA'], ['AS', 'SA'], ['A', 'A'], ['FA', 'FA'], ['R', 'R'], ['RA', 'RA'], ['PA', 'PA'], ['SAFRPUEC', 'FSRPAUEC'], ['', '']];
  for (const [given, spelled] of cases) {
    assert.is(decode(tcpPacket({ src: '1.1.1.1', dst: '2.2.2.2', sport: 1, dport: 2, flags: given })).flags, spelled, given);
  }
  assert.throws(() => tcpPacket({ src: '1.1.1.1', dst: '2.2.2.2', sport: 1, dport: 2, flags: 'X' }), /SAFRPUEC/);
});

test('decode ignores bytes past total length (Ethernet padding)', () => {
  const pkt = udpPacket({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, payload: 'x' });
  const padded = new Uint8Array(pkt.length + 17);
  padded.set(pkt);
  padded.fill(0xa5, pkt.length);
  assert.is(hex(decode(padded).payload), '78');
  assert.equal(checksumsValid(padded), { ip: true, l4: true });
});

test('IP options are carried, counted in IHL and covered by the header checksum', () => {
  const pkt = tcpPacket({ ...SYN_OPTS, options: fromHex('01010100') });
  assert.is(pkt[0], 0x46);
  assert.is(decode(pkt).sport, 3456);
  assert.equal(checksumsValid(pkt), { ip: true, l4: true });
  assert.ok(altIpOk(pkt) && altL4Ok(pkt));
  assert.throws(() => tcpPacket({ ...SYN_OPTS, options: fromHex('010101') }), /multiple of 4/);
});

test('a non-first fragment has no ports and nothing to check at L4', () => {
  const pkt = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 17, fragOffset: 185, payload: fromHex('0001020304') });
  const d = decode(pkt);
  assert.equal([d.fragOffset, d.mf, d.sport, d.dport, d.payload.length], [185, false, undefined, undefined, 5]);
  assert.equal(checksumsValid(pkt), { ip: true, l4: true });
});

test('ICMP built with ipv4Packet and l4Checksum validates', () => {
  const echo = fromHex('0800 0000 1234 0001 6162636465'); // echo request, checksum still 0
  const pkt = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', protocol: IPPROTO_ICMP, payload: echo });
  assert.is(checksumsValid(pkt).l4, false);
  const c = l4Checksum(pkt);
  pkt[20 + 2] = c >> 8;
  pkt[20 + 3] = c & 0xff;
  assert.equal(checksumsValid(pkt), { ip: true, l4: true });
  assert.is(altOnesSum(pkt.subarray(20)), 0xffff);
});

// ---- checksumsValid catches damage anywhere ---------------------------------------------

for (const [name, pkt] of [
  ['TCP with options and odd payload', tcpPacket({ ...SYN_OPTS, flags: 'PA', payload: 'seven b' })],
  ['UDP with odd payload', udpPacket({ src: '10.9.8.7', dst: '10.1.2.3', sport: 1234, dport: 53, payload: 'abc' })],
] as Array<[string, Uint8Array]>) {
  test(`checksumsValid detects any flipped byte: ${name}`, () => {
    assert.equal(checksumsValid(pkt), { ip: true, l4: true });
    const ihl = (pkt[0] & 0x0f) * 4;
    for (let at = 0; at < pkt.length; at++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const bad = flip(pkt, at, mask);
        const where = `byte ${at} ^ 0x${mask.toString(16)}`;
        if (at < ihl) {
          let result: { ip: boolean; l4: boolean } | undefined;
          try {
            result = checksumsValid(bad);
          } catch {
            // version, IHL or total length no longer make a packet: damage found another way
            continue;
          }
          assert.is(result.ip, false, where);
        } else {
          assert.is(checksumsValid(bad).ip, true, where);
          const udpChecksumNowZero = pkt[9] === 17 && bad[ihl + 6] === 0 && bad[ihl + 7] === 0;
          assert.is(checksumsValid(bad).l4, udpChecksumNowZero, where);
        }
      }
    }
  });
}

test('changing an address breaks the L4 checksum too (pseudo-header)', () => {
  const pkt = tcpPacket(SYN_OPTS);
  const moved = flip(pkt, 19, 0x01);
  moved.set([0, 0], 10);
  const c = ipChecksum(moved);
  moved.set([c >> 8, c & 0xff], 10);
  assert.equal(checksumsValid(moved), { ip: true, l4: false });
});

// ---- UDP checksum zero ------------------------------------------------------------------

test('zeroChecksum sends 0, which counts as valid ("none")', () => {
  const pkt = udpPacket({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, payload: 'hi', zeroChecksum: true });
  assert.is(hex(pkt.subarray(26, 28)), '0000');
  assert.equal(checksumsValid(pkt), { ip: true, l4: true });
  assert.is.not(l4Checksum(pkt), 0, 'the real value is still computable');
});

test('a UDP checksum that computes to 0 is sent as 0xffff (RFC 768)', () => {
  // With a zero payload word the checksum is C; putting C in the payload instead makes the
  // words sum to 0xffff, so the checksum computes to 0.
  const base = { src: '10.0.0.1', dst: '10.0.0.2', sport: 1000, dport: 2000 };
  const first = udpPacket({ ...base, payload: fromHex('0000') });
  const c = l4Checksum(first);
  const pkt = udpPacket({ ...base, payload: Uint8Array.of(c >> 8, c & 0xff) });
  assert.is(hex(pkt.subarray(26, 28)), 'ffff');
  assert.is(l4Checksum(pkt), 0xffff);
  assert.equal(checksumsValid(pkt), { ip: true, l4: true });
  assert.ok(altL4Ok(pkt));
});

// ---- odd lengths ------------------------------------------------------------------------

function oddLengthPackets(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let n = 0; n <= 9; n++) {
    const payload = Uint8Array.from({ length: n }, (_, i) => 0xf0 + i);
    out.push(tcpPacket({ src: '198.51.100.7', dst: '203.0.113.9', sport: 50000 + n, dport: 80, flags: 'PA', seq: n, payload }));
    out.push(udpPacket({ src: '198.51.100.7', dst: '203.0.113.9', sport: 50000 + n, dport: 53, payload }));
  }
  return out;
}

test('payload lengths 0..9: checksums valid by both summations, payload decoded intact', () => {
  for (const pkt of oddLengthPackets()) {
    const d = decode(pkt);
    assert.equal(checksumsValid(pkt), { ip: true, l4: true }, `${d.protocol} ${d.payload.length}`);
    assert.ok(altIpOk(pkt) && altL4Ok(pkt), `${d.protocol} ${d.payload.length}`);
    assert.is(hex(d.payload), hex(Uint8Array.from({ length: d.payload.length }, (_, i) => 0xf0 + i)));
  }
});

// ---- frames and hex ---------------------------------------------------------------------

test('ethernetFrame lays out MACs, an optional 802.1Q tag, and optional padding', () => {
  const pkt = udpPacket({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 });
  const plain = ethernetFrame(pkt, { src: 'aa:bb:cc:dd:ee:01', dst: 'aa:bb:cc:dd:ee:02' });
  assert.is(hex(plain.subarray(0, 14)), 'aabbccddee02' + 'aabbccddee01' + '0800');
  assert.is(hex(plain.subarray(14)), hex(pkt));
  const tagged = ethernetFrame(pkt, { vlan: 42 });
  assert.is(hex(tagged.subarray(12, 18)), '8100' + '002a' + '0800');
  assert.is(hex(tagged.subarray(18)), hex(pkt));
  const padded = ethernetFrame(pkt, { pad: true });
  assert.is(padded.length, 60);
  assert.is(hex(padded.subarray(14, 14 + pkt.length)), hex(pkt));
  assert.is(hex(decode(padded.subarray(14)).payload), '');
});

test('hex and fromHex round trip; fromHex ignores whitespace and rejects junk', () => {
  assert.is(hex(fromHex(' 00 0a\nFF\t7f ')), '000aff7f');
  assert.is(hex(new Uint8Array(0)), '');
  const big = new Uint8Array([9, 1, 2, 3, 9]);
  assert.is(hex(big.subarray(1, 4)), '010203', 'honours byteOffset');
  assert.throws(() => fromHex('abc'));
  assert.throws(() => fromHex('zz'));
});

test('builders reject values that do not fit their fields', () => {
  const base = { src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2 };
  assert.throws(() => udpPacket({ ...base, sport: 65536 }), /sport/);
  assert.throws(() => udpPacket({ ...base, ttl: 256 }), /ttl/);
  assert.throws(() => udpPacket({ ...base, src: '10.0.0.256' }), /IPv4 address/);
  assert.throws(() => tcpPacket({ ...base, flags: 'S', seq: 2 ** 32 }), /seq/);
  assert.throws(() => udpPacket({ ...base, payload: new Uint8Array(65535) }), /exceeds/);
});

// ---- tshark as a third opinion ----------------------------------------------------------

// CI installs tshark; there a missing tshark is a failure, locally it is a skip.
(TSHARK || process.env.CI ? test : test.skip)('tshark agrees every built packet has good checksums', () => {
  assert.ok(TSHARK, 'tshark is not on PATH');
  const zeroUdp = udpPacket({ src: '10.0.0.1', dst: '10.0.0.2', sport: 1, dport: 2, zeroChecksum: true });
  const packets = [SYN_FIXTURE, ...oddLengthPackets(), zeroUdp];
  const rows = tsharkChecksumStatus(packets);
  assert.is(rows.length, packets.length);
  rows.forEach((row, i) => {
    const [ip, tcp, udp] = row;
    assert.is(ip, '1', `packet ${i + 1} ip`);
    if (i === packets.length - 1) assert.is(udp, '3', 'zero UDP checksum is "not present"');
    else assert.is(tcp || udp, '1', `packet ${i + 1} l4`);
  });
});

test.run();
