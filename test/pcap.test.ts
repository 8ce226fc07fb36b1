// Tests for host/pcap.ts. Hand-made files are written out byte by byte below, field by field,
// from pcap-savefile(5); tshark, when installed, checks that the writer's files are readable.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasmvsError, type ErrorCode } from '../host/errors.js';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_IPV4,
  LINKTYPE_RAW,
  PcapWriter,
  ipv4Offset,
  readPcap,
  recordTimeMs,
  type PcapRecord,
} from '../host/replay/pcap.js';
import { ethernetFrame, fromHex, hex, tcpPacket, udpPacket } from './support/packets.js';
import { TSHARK } from './support/tools.js';

const GLOBAL_HEADER_LEN = 24;
const RECORD_HEADER_LEN = 16;

// A minimal IPv4 header (20 bytes, protocol 253 "experimental"), enough for ipv4Offset and
// for a record's payload; the reader does not look inside frames.
const IP_HEADER = fromHex('4500 0014 0000 0000 40fd 0000 0a000001 0a000002');

// Big-endian, microsecond, RAW (101), snaplen 65535, one record at 1.999999 s.
const BIG_ENDIAN_FILE = fromHex(`
  a1b2c3d4 0002 0004 00000000 00000000 0000ffff 00000065
  00000001 000f423f 00000014 0000003c
  ${hex(IP_HEADER)}
`);

function throwsCode(fn: () => unknown, code: ErrorCode, message?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, WasmvsError);
    assert.is((err as WasmvsError).code, code);
    if (message) assert.match((err as WasmvsError).message, message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

function all(bytes: Uint8Array): PcapRecord[] {
  return [...readPcap(bytes).records()];
}

/** A little-endian usec file with the given link type and frames, assembled by hand. */
function handMade(linkType: number, frames: Uint8Array[]): Uint8Array {
  const parts: number[] = [];
  const u16 = (v: number) => parts.push(v & 0xff, (v >> 8) & 0xff);
  const u32 = (v: number) => { u16(v & 0xffff); u16(Math.floor(v / 0x10000)); };
  u32(0xa1b2c3d4); u16(2); u16(4); u32(0); u32(0); u32(65535); u32(linkType);
  for (const f of frames) {
    u32(7); u32(0); u32(f.length); u32(f.length);
    parts.push(...f);
  }
  return Uint8Array.from(parts);
}


// ---- round trips ------------------------------------------------------------------------

test('writer and reader round trip, microseconds, Ethernet', () => {
  const w = new PcapWriter({ linkType: LINKTYPE_ETHERNET, nanosecond: false, snapLen: 65535 });
  const frames = [new Uint8Array(0), fromHex('ffffffffffff 020000000001 0806 0001'), new Uint8Array(1514).fill(0x5a)];
  w.add({ tsSec: 1_700_000_000, tsFrac: 0, data: frames[0] });
  w.add({ tsSec: 1_700_000_000, tsFrac: 999_999, data: frames[1], origLen: 60 });
  w.add({ tsSec: 1_700_000_001, tsFrac: 500, data: frames[2] });
  const bytes = w.toBytes();
  assert.is(bytes.length, GLOBAL_HEADER_LEN + 3 * RECORD_HEADER_LEN + 0 + 16 + 1514);
  assert.is(hex(bytes.subarray(0, 4)), 'd4c3b2a1', 'native little-endian usec magic');

  const { header, records } = readPcap(bytes);
  assert.equal(header, { linkType: 1, nanosecond: false, snapLen: 65535, bigEndian: false, versionMajor: 2, versionMinor: 4 });
  const got = [...records()];
  assert.is(got.length, 3);
  got.forEach((r, i) => assert.is(hex(r.data), hex(frames[i]), `record ${i + 1}`));
  assert.equal(got.map((r) => [r.tsSec, r.tsFrac, r.origLen]), [
    [1_700_000_000, 0, 0],
    [1_700_000_000, 999_999, 60],
    [1_700_000_001, 500, 1514],
  ]);
  assert.is(recordTimeMs(header, got[1]), 1_700_000_000_999.999);
  assert.is(recordTimeMs(header, got[2]), 1_700_000_001_000.5);
  assert.is([...records()].length, 3, 'records() can be iterated again');
});

test('writer and reader round trip, nanoseconds, RAW and IPv4 link types', () => {
  for (const linkType of [LINKTYPE_RAW, LINKTYPE_IPV4]) {
    const w = new PcapWriter({ linkType, nanosecond: true, snapLen: 262144 });
    w.add({ tsSec: 3, tsFrac: 999_999_999, data: IP_HEADER });
    w.add({ tsSec: 4, tsFrac: 1_500_000, data: IP_HEADER });
    const bytes = w.toBytes();
    assert.is(hex(bytes.subarray(0, 4)), '4d3cb2a1', 'native little-endian nsec magic');
    const { header, records } = readPcap(bytes);
    assert.is(header.linkType, linkType);
    assert.is(header.nanosecond, true);
    const got = [...records()];
    assert.equal(got.map((r) => [r.tsSec, r.tsFrac, hex(r.data)]), [[3, 999_999_999, hex(IP_HEADER)], [4, 1_500_000, hex(IP_HEADER)]]);
    assert.is(recordTimeMs(header, got[1]), 4001.5);
  }
});

test('writer cuts frames to snapLen and keeps origLen, as a capture would', () => {
  const w = new PcapWriter({ linkType: LINKTYPE_RAW, nanosecond: false, snapLen: 8 });
  w.add({ tsSec: 0, tsFrac: 0, data: IP_HEADER });
  const [r] = all(w.toBytes());
  assert.is(hex(r.data), hex(IP_HEADER.subarray(0, 8)));
  assert.is(r.origLen, 20);
});

test('writer grows past its first buffer, and earlier toBytes() views stay intact', () => {
  const w = new PcapWriter({ linkType: LINKTYPE_ETHERNET, nanosecond: false, snapLen: 65535 });
  w.add({ tsSec: 0, tsFrac: 0, data: Uint8Array.of(0) });
  const early = w.toBytes();
  const earlyHex = hex(early);
  const n = 500; // about 750 KB: several doublings
  for (let i = 1; i <= n; i++) w.add({ tsSec: i, tsFrac: 0, data: new Uint8Array(1500).fill(i & 0xff) });
  assert.is(hex(early), earlyHex);
  const got = all(w.toBytes());
  assert.is(got.length, n + 1);
  assert.ok(got.slice(1).every((r, i) => r.tsSec === i + 1 && r.data.length === 1500 && r.data.every((b) => b === ((i + 1) & 0xff))));
});

test('writer rejects timestamps and lengths that do not fit the format', () => {
  const w = new PcapWriter({ linkType: LINKTYPE_RAW, nanosecond: false, snapLen: 65535 });
  throwsCode(() => w.add({ tsSec: 0, tsFrac: 1_000_000, data: IP_HEADER }), 'WASMVS_PCAP_FORMAT', /record 1: tsFrac/);
  throwsCode(() => w.add({ tsSec: -1, tsFrac: 0, data: IP_HEADER }), 'WASMVS_PCAP_FORMAT', /tsSec/);
  throwsCode(() => w.add({ tsSec: 0, tsFrac: 0, data: IP_HEADER, origLen: 19 }), 'WASMVS_PCAP_FORMAT', /origLen/);
  throwsCode(() => new PcapWriter({ linkType: 113, nanosecond: false, snapLen: 65535 }), 'WASMVS_PCAP_LINKTYPE', /113/);
  assert.is(all(w.toBytes()).length, 0, 'nothing half-written');
});

// ---- hand-made files --------------------------------------------------------------------

test('reads a hand-made big-endian file', () => {
  const { header, records } = readPcap(BIG_ENDIAN_FILE);
  assert.equal(header, { linkType: 101, nanosecond: false, snapLen: 65535, bigEndian: true, versionMajor: 2, versionMinor: 4 });
  const got = [...records()];
  assert.is(got.length, 1);
  assert.equal([got[0].tsSec, got[0].tsFrac, got[0].origLen], [1, 999_999, 60]);
  assert.is(hex(got[0].data), hex(IP_HEADER));
  assert.is(recordTimeMs(header, got[0]), 1999.999);
});

test('reads a big-endian nanosecond file', () => {
  const bytes = BIG_ENDIAN_FILE.slice();
  bytes.set(fromHex('a1b23c4d'), 0);
  const { header, records } = readPcap(bytes);
  assert.equal([header.bigEndian, header.nanosecond], [true, true]);
  assert.is(recordTimeMs(header, [...records()][0]), 1000.999999);
});

test('a header with no records reads as an empty capture', () => {
  assert.equal(all(BIG_ENDIAN_FILE.subarray(0, GLOBAL_HEADER_LEN)), []);
});

test('FCS bits above the link type are ignored, as libpcap does', () => {
  const bytes = BIG_ENDIAN_FILE.slice();
  bytes.set(fromHex('14000001'), 20); // FCS length 4 bytes, LINKTYPE_ETHERNET
  assert.is(readPcap(bytes).header.linkType, LINKTYPE_ETHERNET);
});

test('honours byteOffset and byteLength of the input view; records are views, not copies', () => {
  const file = handMade(LINKTYPE_RAW, [IP_HEADER, IP_HEADER.subarray(0, 5)]);
  const backing = new Uint8Array(file.length + 37).fill(0xee);
  backing.set(file, 13);
  const view = backing.subarray(13, 13 + file.length);
  const got = all(view);
  assert.is(got.length, 2, 'the trailing 0xee bytes are not read as a record');
  assert.is(hex(got[0].data), hex(IP_HEADER));
  assert.is(hex(got[1].data), hex(IP_HEADER.subarray(0, 5)));
  assert.is(got[0].data.buffer, backing.buffer);
  assert.is(got[0].data.byteOffset, 13 + GLOBAL_HEADER_LEN + RECORD_HEADER_LEN);
});

// ---- rejections -------------------------------------------------------------------------

test('rejects pcapng with the editcap hint', () => {
  const shb = fromHex('0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000');
  throwsCode(() => readPcap(shb), 'WASMVS_PCAP_FORMAT', /pcapng is not supported; convert with: editcap -F pcap in\.pcapng out\.pcap/);
});

test('rejects a bad magic number, naming it', () => {
  throwsCode(() => readPcap(fromHex('7f454c46 02010100 00000000 00000000 00000000 00000000')), 'WASMVS_PCAP_FORMAT', /magic 0x7f454c46 at byte offset 0/);
});

test('rejects a truncated global header', () => {
  throwsCode(() => readPcap(new Uint8Array(0)), 'WASMVS_PCAP_FORMAT', /global header truncated/);
  throwsCode(() => readPcap(BIG_ENDIAN_FILE.subarray(0, 10)), 'WASMVS_PCAP_FORMAT', /global header truncated at byte offset 0: the file has 10 bytes/);
});

test('rejects an unsupported version', () => {
  const bytes = BIG_ENDIAN_FILE.slice();
  bytes.set([0, 1], 4);
  throwsCode(() => readPcap(bytes), 'WASMVS_PCAP_FORMAT', /version 1\.4/);
});

test('rejects unsupported link types, naming them', () => {
  throwsCode(() => readPcap(handMade(113, [])), 'WASMVS_PCAP_LINKTYPE', /link type 113 LINUX_SLL.*named interface/);
  throwsCode(() => readPcap(handMade(147, [])), 'WASMVS_PCAP_LINKTYPE', /link type 147 is not supported/);
});

test('a truncated record header names the record and its byte offset', () => {
  const file = handMade(LINKTYPE_RAW, [IP_HEADER, IP_HEADER]);
  const cut = file.subarray(0, file.length - 20 - 6); // second record: 10 of 16 header bytes
  const it = readPcap(cut).records();
  assert.is(hex(it.next().value!.data), hex(IP_HEADER), 'records before the damage still come out');
  const second = GLOBAL_HEADER_LEN + RECORD_HEADER_LEN + 20;
  throwsCode(() => it.next(), 'WASMVS_PCAP_FORMAT', new RegExp(`record 2 at byte offset ${second}: record header truncated \\(10 of 16 bytes\\)`));
});

test('a truncated frame names the record and its byte offset', () => {
  const file = handMade(LINKTYPE_RAW, [IP_HEADER]);
  throwsCode(() => all(file.subarray(0, file.length - 1)), 'WASMVS_PCAP_FORMAT', /record 1 at byte offset 24: frame truncated \(19 of 20 bytes\)/);
});

test('an absurd capture length is reported as corruption', () => {
  const file = handMade(LINKTYPE_RAW, [IP_HEADER]);
  file.set([0xff, 0xff, 0xff, 0x7f], GLOBAL_HEADER_LEN + 8);
  throwsCode(() => all(file), 'WASMVS_PCAP_FORMAT', /record 1 at byte offset 24: capture length 2147483647 exceeds 262144/);
});

test('cap_len above snaplen is accepted', () => {
  const file = handMade(LINKTYPE_RAW, [IP_HEADER]);
  file.set([8, 0, 0, 0], 16); // snaplen 8, record holds 20
  assert.is(all(file)[0].data.length, 20);
});

// ---- ipv4Offset -------------------------------------------------------------------------

const MACS = '020000000002 020000000001';

test('ipv4Offset: Ethernet, VLAN-tagged, double-tagged', () => {
  assert.is(ipv4Offset(LINKTYPE_ETHERNET, fromHex(`${MACS} 0800 ${hex(IP_HEADER)}`)), 14);
  assert.is(ipv4Offset(LINKTYPE_ETHERNET, fromHex(`${MACS} 8100 0064 0800 ${hex(IP_HEADER)}`)), 18);
  assert.is(ipv4Offset(LINKTYPE_ETHERNET, fromHex(`${MACS} 88a8 00c8 8100 0064 0800 ${hex(IP_HEADER)}`)), 22);
});

test('ipv4Offset: frames without IPv4 give -1', () => {
  const arp = fromHex(`ffffffffffff 020000000001 0806 0001 0800 0604 0001`);
  assert.is(ipv4Offset(LINKTYPE_ETHERNET, arp), -1);
  assert.is(ipv4Offset(LINKTYPE_ETHERNET, fromHex(`${MACS} 86dd 60000000`)), -1, 'IPv6');
  assert.is(ipv4Offset(LINKTYPE_ETHERNET, fromHex(`${MACS} 8100 0064 0806 0001`)), -1, 'tagged ARP');
  assert.is(ipv4Offset(LINKTYPE_ETHERNET, fromHex(`${MACS} 08`)), -1, 'cut inside the ethertype');
  assert.is(ipv4Offset(LINKTYPE_ETHERNET, fromHex(`${MACS} 8100 0064`)), -1, 'cut after a tag');
  assert.is(ipv4Offset(LINKTYPE_ETHERNET, new Uint8Array(0)), -1);
});

test('ipv4Offset: RAW looks at the version nibble, IPv4 (228) is always 0', () => {
  assert.is(ipv4Offset(LINKTYPE_RAW, IP_HEADER), 0);
  assert.is(ipv4Offset(LINKTYPE_RAW, fromHex('60000000 0000 3b40')), -1, 'IPv6');
  assert.is(ipv4Offset(LINKTYPE_RAW, new Uint8Array(0)), -1);
  assert.is(ipv4Offset(LINKTYPE_IPV4, IP_HEADER), 0);
  throwsCode(() => ipv4Offset(113, IP_HEADER), 'WASMVS_PCAP_LINKTYPE');
});

test('ipv4Offset honours the frame view', () => {
  const frame = fromHex(`${MACS} 0800 ${hex(IP_HEADER)}`);
  const backing = new Uint8Array(frame.length + 4);
  backing.set([0x60, 0, 0x86, 0xdd]); // junk that would read as IPv6 if the view were ignored
  backing.set(frame, 4);
  assert.is(ipv4Offset(LINKTYPE_ETHERNET, backing.subarray(4)), 14);
  assert.is(ipv4Offset(LINKTYPE_RAW, backing.subarray(4 + 14)), 0);
});

// ---- tshark -----------------------------------------------------------------------------

// CI installs tshark; there a missing tshark is a failure, locally it is a skip.
(TSHARK || process.env.CI ? test : test.skip)('tshark reads files from the writer', () => {
  assert.ok(TSHARK, 'tshark is not on PATH');
  const tcp = tcpPacket({ src: '202.100.1.2', dst: '202.103.106.5', sport: 3456, dport: 80, flags: 'S' });
  const udp = udpPacket({ src: '198.51.100.1', dst: '203.0.113.1', sport: 53, dport: 5353, payload: 'x' });
  const dir = mkdtempSync(join(tmpdir(), 'wasmvs-pcap-'));
  try {
    const cases: Array<[number, boolean, Uint8Array[], string[]]> = [
      [LINKTYPE_ETHERNET, false, [ethernetFrame(tcp), ethernetFrame(udp, { vlan: 7 })], ['202.100.1.2', '198.51.100.1']],
      [LINKTYPE_RAW, true, [udp, tcp], ['198.51.100.1', '202.100.1.2']],
      [LINKTYPE_IPV4, false, [tcp], ['202.100.1.2']],
    ];
    for (const [linkType, nanosecond, frames, sources] of cases) {
      const w = new PcapWriter({ linkType, nanosecond, snapLen: 65535 });
      frames.forEach((data, i) => w.add({ tsSec: 1_700_000_000 + i, tsFrac: 123, data }));
      const file = join(dir, `linktype-${linkType}.pcap`);
      writeFileSync(file, w.toBytes());
      const out = execFileSync(TSHARK!, ['-r', file, '-T', 'fields', '-e', 'ip.src'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      assert.equal(out.trim().split('\n'), sources, `link type ${linkType}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
