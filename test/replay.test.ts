// Tests for `wasmvs replay` (host/cli.ts, host/replay.ts): the built command spawned as users
// run it, and the replay() function where that is simpler.
//
// Captures come from test/support/traffic.ts, which renders each session twice: as the
// director receives it and as a correct NAT director sends it. The expected OUT.pcap is the
// input with the "sent" rendering in place of every forwarded packet and the dropped ones left
// out; output files are read back with the generator's own pcap reader, and tshark, when
// installed, checks every checksum. Nothing here uses engine code to check engine output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { replay } from '../host/replay/replay.js';
import { decode, fromHex, hex, icmpPacket, IPPROTO_UDP, tcpPacket, udpPacket } from './support/packets.js';
import {
  LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_RAW, ROUTER_MAC, ftpExchange, httpExchange, linkFrame, parsePcap,
  pcapFile, tcpSession, timestamp, udpExchange, type Direction, type Endpoints, type PcapFileRecord,
  type TcpSessionOpts,
} from './support/traffic.js';
import { IN_CI, TSHARK } from './support/tools.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'build', 'host', 'cli', 'main.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

// The seed's golden example (/work/shared/seed/SUMMARY.md) in ipvsadm-save syntax.
const SEED_RULES = `-A -t 202.103.106.5:80 -s wrr
-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1
-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 2
-A -t 202.103.106.5:21 -s wrr
-a -t 202.103.106.5:21 -r 172.16.0.3:21 -m -w 1
`;

const UDP_RULES = `-A -u 202.103.106.5:53 -s rr
-a -u 202.103.106.5:53 -r 172.16.0.2:53 -m -w 1
-a -u 202.103.106.5:53 -r 172.16.0.3:53 -m -w 1
`;

const VIP = '202.103.106.5';
// 2023-11-14T22:13:20Z: captures carry wall-clock time, far beyond the engine's u32 ms clock.
const T0 = 1_700_000_000_000;
// A multiple of 2^32 ms (2023-11-24), where the engine's wrapping millisecond clock rolls over.
const WRAP = 396 * 2 ** 32;
const VLAN_B = 100;
const SECONDS = 1000;
const DAYS = 86_400 * SECONDS;

// ---- the scenario -------------------------------------------------------------------------

/** What becomes of a record: forward and pass reach OUT.pcap; drop and local do not. */
type Fate = 'forward' | 'pass' | 'drop' | 'local';

/** One input record and what the director must do with it. */
interface Row {
  what: string;
  time: number;
  frame: Uint8Array;
  /** Where the IP header starts in frame (the link-layer header is before it). */
  l3: number;
  fate: Fate;
  /** The frame OUT.pcap must hold for this record (for 'pass', the input frame). */
  expected?: Uint8Array;
  dir?: Direction;
  /** For tshark: which checksums the frame carries. */
  proto: 'tcp' | 'udp' | 'icmp' | 'arp';
}

function reachesOutput(r: Row): boolean {
  return r.fate === 'forward' || r.fate === 'pass';
}

function l3Offset(linkType: number, vlan?: number): number {
  if (linkType !== LINKTYPE_ETHERNET) return 0;
  return vlan === undefined ? 14 : 18;
}

function sessionRows(name: string, linkType: number, o: TcpSessionOpts, vlan?: number): Row[] {
  const received = tcpSession(o);
  const sent = tcpSession({ ...o, view: 'sent' });
  return received.map((p, i) => ({
    what: `${name} packet ${i} (${p.dir})`,
    time: p.time,
    frame: linkFrame(p, linkType, { vlan }),
    l3: l3Offset(linkType, vlan),
    fate: 'forward',
    expected: linkFrame(sent[i], linkType, { vlan }),
    dir: p.dir,
    proto: 'tcp',
  }));
}

function passRow(what: string, linkType: number, time: number, packet: Uint8Array, proto: Row['proto']): Row {
  const frame = linkFrame({ packet, dir: 'in' }, linkType);
  return { what, time, frame, l3: l3Offset(linkType), fate: 'pass', expected: frame, proto };
}

/** An ICMP echo request (id 0x1234, sequence 1, "wasmvs-test"), built by the packet kit. */
const icmpEcho = (src: string, dst: string): Uint8Array =>
  icmpPacket({ src, dst, type: 8, rest: 0x12340001, body: new TextEncoder().encode('wasmvs-test'), id: 0x77, ttl: 52 });

/** An ARP who-has for the VIP from the router, padded to 60 bytes. */
function arpRequest(): Uint8Array {
  const mac = ROUTER_MAC.replace(/:/g, '');
  const frame = new Uint8Array(60);
  frame.set(fromHex(`ffffffffffff ${mac} 0806  0001 0800 06 04 0001 ${mac} ca676a01 000000000000 ca676a05`));
  return frame;
}

const HTTP_A: Endpoints = { client: '202.100.1.2', cport: 3456, vip: VIP, vport: 80, server: '172.16.0.3', sport: 8000 };
const HTTP_B: Endpoints = { client: '202.100.1.7', cport: 51001, vip: VIP, vport: 80, server: '172.16.0.2', sport: 80 };
const HTTP_C: Endpoints = { client: '202.100.1.9', cport: 51002, vip: VIP, vport: 80, server: '172.16.0.3', sport: 8000 };
const FTP_D: Endpoints = { client: '202.100.1.11', cport: 52000, vip: VIP, vport: 21, server: '172.16.0.3', sport: 21 };
const HTTP_E: Endpoints = { client: '202.100.1.20', cport: 51003, vip: VIP, vport: 80, server: '172.16.0.2', sport: 80 };
const HTTP_F: Endpoints = { client: '202.100.1.21', cport: 51004, vip: VIP, vport: 80, server: '172.16.0.3', sport: 8000 };
const SCENARIO_END = T0 + 30 * SECONDS;

/**
 * The seed rules' day: six HTTP sessions to :80, which wrr 2:1 sends to .3:8000, .2:80,
 * .3:8000, .3:8000, .2:80, .3:8000 (ip_vs_wrr.c order for the seed, see
 * host/schedulers/wrr.ts), an FTP control session to :21, a SYN to :22 and its retransmission
 * (refused: no such service), and traffic that is not the director's business (passed
 * untouched). A last unrelated packet 30 s in moves the clock on, so the reset FTP connection
 * (CLOSE, 10 s) has expired by the end.
 *
 *   A   202.100.1.2:3456    HTTP, client closes       -> TIME_WAIT, then replaced by A2
 *   B   202.100.1.7:51001   HTTP, server closes, 802.1Q VLAN 100 on Ethernet -> TIME_WAIT
 *   C   202.100.1.9:51002   HTTP, 6000-byte response, left open -> ESTABLISHED
 *   D   202.100.1.11:52000  FTP login, client resets  -> CLOSE, expired at the end
 *   A2  202.100.1.2:3456    2 s later, same port: a SYN on A's TIME_WAIT tuple reuses it
 *                           (conn_reuse_mode 1) and is scheduled afresh -> TIME_WAIT
 *   E   202.100.1.20:51003  HTTP, client closes       -> TIME_WAIT
 *   F   202.100.1.21:51004  HTTP, client closes       -> TIME_WAIT
 */
function seedScenario(linkType: number): Row[] {
  const rows: Row[] = [
    ...sessionRows('A', linkType, { ...HTTP_A, startMs: T0, close: 'client' }),
    ...sessionRows('B', linkType, { ...HTTP_B, startMs: T0 + 5, close: 'server' }, linkType === LINKTYPE_ETHERNET ? VLAN_B : undefined),
    ...sessionRows('C', linkType, { ...HTTP_C, startMs: T0 + 10, close: 'none', messages: httpExchange(VIP, '/big', 6000) }),
    ...sessionRows('D', linkType, { ...FTP_D, startMs: T0 + 15, close: 'reset', messages: ftpExchange() }),
    ...sessionRows('A2', linkType, { ...HTTP_A, startMs: T0 + 2000, close: 'client', clientIsn: 0x600dcafe, serverIsn: 0x7e57ab1e }),
    ...sessionRows('E', linkType, { ...HTTP_E, startMs: T0 + 2100, close: 'client' }),
    ...sessionRows('F', linkType, { ...HTTP_F, startMs: T0 + 2200, close: 'client' }),
  ];
  const ssh = { src: '202.100.1.13', dst: VIP, sport: 53000, dport: 22, flags: 'S', seq: 0x5eed, df: true, ttl: 52 };
  for (const [i, time] of [T0 + 20, T0 + 1020].entries()) {
    const frame = linkFrame({ packet: tcpPacket({ ...ssh, id: 0x100 + i }), dir: 'in' }, linkType);
    rows.push({ what: `SYN to :22 #${i}`, time, frame, l3: l3Offset(linkType), fate: 'local', proto: 'tcp' });
  }
  if (linkType === LINKTYPE_ETHERNET) {
    rows.push({ what: 'ARP who-has the VIP', time: T0 + 1, frame: arpRequest(), l3: -1, fate: 'pass', expected: arpRequest(), proto: 'arp' });
  }
  rows.push(
    passRow('a real server\'s own DNS query', linkType, T0 + 2,
      udpPacket({ src: '172.16.0.2', dst: '172.16.0.53', sport: 41000, dport: 53, id: 0x55, payload: 'query' }), 'udp'),
    { what: 'ICMP echo to the VIP', time: T0 + 3, frame: linkFrame({ packet: icmpEcho('202.100.1.2', VIP), dir: 'in' }, linkType), l3: l3Offset(linkType), fate: 'local', proto: 'icmp' },
    passRow('ICMP echo between two other hosts', linkType, T0 + 3, icmpEcho('198.51.100.20', '203.0.113.80'), 'icmp'),
    passRow('TCP between two other hosts', linkType, T0 + 4,
      tcpPacket({ src: '198.51.100.20', dst: '203.0.113.80', sport: 44321, dport: 443, flags: 'S', seq: 1, id: 0x66 }), 'tcp'),
    passRow('NTP between two other hosts', linkType, SCENARIO_END,
      udpPacket({ src: '10.0.0.1', dst: '10.0.0.2', sport: 123, dport: 123, id: 0x99, payload: new Uint8Array(48) }), 'udp'),
  );
  // Stable: equal times keep the order above.
  return rows.map((r, i) => ({ r, i })).sort((a, b) => a.r.time - b.r.time || a.i - b.i).map((x) => x.r);
}

function inputRecords(rows: Row[], nanosecond: boolean): PcapFileRecord[] {
  return rows.map((r) => {
    const ts = timestamp(r.time, nanosecond);
    // Nanosecond files get a few odd nanoseconds, which must survive the replay exactly.
    if (nanosecond && ts.tsFrac + 7 < 1e9) ts.tsFrac += 7;
    return { ...ts, data: r.frame };
  });
}

/** OUT.pcap must be the kept rows, in input order, with their input timestamps and link type. */
function assertReplayed(out: Uint8Array, rows: Row[], input: PcapFileRecord[], linkType: number, nanosecond: boolean): void {
  const file = parsePcap(out);
  assert.is(file.linkType, linkType, 'link type');
  assert.is(file.nanosecond, nanosecond, 'timestamp resolution');
  const kept = rows.map((r, i) => ({ r, rec: input[i] })).filter((x) => reachesOutput(x.r));
  // First the list of packets as one readable diff, so a missing or extra packet shows as such.
  assert.equal(
    file.records.map((rec) => describe(rec.data, l3Of(linkType, rec.data))),
    kept.map(({ r }) => describe(r.expected!, r.l3)),
    'one output record per forwarded or passed input record, in input order',
  );
  for (let i = 0; i < kept.length; i++) {
    const { r, rec } = kept[i];
    const got = file.records[i];
    assert.is(`${got.tsSec}.${got.tsFrac}`, `${rec.tsSec}.${rec.tsFrac}`, `${r.what}: timestamp`);
    assert.is(got.origLen, rec.data.length, `${r.what}: orig_len`);
    if (r.l3 >= 0) {
      const want = decode(r.expected!.subarray(r.l3));
      const have = decode(got.data.subarray(r.l3));
      assert.is(`${have.src}:${have.sport} -> ${have.dst}:${have.dport}`, `${want.src}:${want.sport} -> ${want.dst}:${want.dport}`, `${r.what}: addresses`);
      assert.is(hex(got.data.subarray(0, r.l3)), hex(rec.data.subarray(0, r.l3)), `${r.what}: link-layer header`);
    }
    assert.is(hex(got.data), hex(r.expected!), `${r.what}: bytes`);
  }
}

/** Where IPv4 starts in a frame: Ethernet II with at most one 802.1Q tag, or -1 (ARP ...). */
function l3Of(linkType: number, frame: Uint8Array): number {
  if (linkType !== LINKTYPE_ETHERNET) return 0;
  const type = (at: number) => (frame[at] << 8) | frame[at + 1];
  if (type(12) === 0x0800) return 14;
  return type(12) === 0x8100 && type(16) === 0x0800 ? 18 : -1;
}

/** "202.100.1.2:3456 > 172.16.0.3:8000 S" for a diff line. */
function describe(frame: Uint8Array, l3: number): string {
  if (l3 < 0) return `non-IP frame ${hex(frame.subarray(12, 14))}`;
  const d = decode(frame.subarray(l3));
  return d.sport === undefined ? `${d.src} > ${d.dst} proto ${d.protocol}` : `${d.src}:${d.sport} > ${d.dst}:${d.dport} ${d.flags ?? 'udp'}`;
}

interface ExpectedSummary {
  packets: number;
  verdicts: { forward: number; pass: number; drop: number; local: number };
  forwardIn: number;
  forwardOut: number;
}

function countRows(rows: Row[]): ExpectedSummary {
  const n = (f: (r: Row) => boolean) => rows.filter(f).length;
  return {
    packets: rows.length,
    verdicts: { forward: n((r) => r.fate === 'forward'), pass: n((r) => r.fate === 'pass'), drop: n((r) => r.fate === 'drop'), local: n((r) => r.fate === 'local') },
    forwardIn: n((r) => r.fate === 'forward' && r.dir === 'in'),
    forwardOut: n((r) => r.fate === 'forward' && r.dir === 'out'),
  };
}

/** Time of the last packet of a session, as the engine's whole-millisecond clock reads it from the file. */
function lastSeen(rows: Row[], prefix: string): number {
  const last = Math.max(...rows.filter((r) => r.what.startsWith(`${prefix} `)).map((r) => r.time));
  const ts = timestamp(last);
  return Math.floor(ts.tsSec * 1000 + ts.tsFrac / 1000);
}

// What the seed scenario leaves behind: 7 connections made, D expired, A replaced by A2.
const SEED_CONNECTIONS = { created: 7, expired: 1, reused: 1, live: 5 };

// IPVS state timeouts (ip_vs_proto_tcp.c tcp_timeouts), ms.
const TIME_WAIT_MS = 120 * SECONDS;
const ESTABLISHED_MS = 900 * SECONDS;

/** The live connections at the end of the seed scenario, as ipvsadm -L -n -c would list them. */
function seedConnections(rows: Row[]): Array<{ e: Endpoints; state: string; expiresIn: number }> {
  const end = Math.floor(SCENARIO_END);
  return [
    { e: HTTP_A, state: 'TIME_WAIT', expiresIn: lastSeen(rows, 'A2') + TIME_WAIT_MS - end },
    { e: HTTP_B, state: 'TIME_WAIT', expiresIn: lastSeen(rows, 'B') + TIME_WAIT_MS - end },
    { e: HTTP_C, state: 'ESTABLISHED', expiresIn: lastSeen(rows, 'C') + ESTABLISHED_MS - end },
    { e: HTTP_E, state: 'TIME_WAIT', expiresIn: lastSeen(rows, 'E') + TIME_WAIT_MS - end },
    { e: HTTP_F, state: 'TIME_WAIT', expiresIn: lastSeen(rows, 'F') + TIME_WAIT_MS - end },
  ];
}

function mmss(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

// ---- running the command ------------------------------------------------------------------

interface Run { status: number | null; stdout: string; stderr: string }

function wasmvs(args: string[], cwd = ROOT): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let tsharkNoted = false;

/**
 * tshark's verdict on every checksum of every frame: "frame ip tcp udp" per line, status 1 =
 * good, empty = the frame has no such header. Returns undefined (after a note) when tshark is
 * missing outside CI; in CI a missing tshark fails the test.
 */
function tsharkChecksums(file: string): string[] | undefined {
  if (!TSHARK) {
    if (IN_CI) assert.unreachable('tshark is not installed; CI must install it (.ci/run)');
    if (!tsharkNoted) console.log('  note: tshark not found; checksums of replayed captures are not verified by tshark');
    tsharkNoted = true;
    return undefined;
  }
  const r = spawnSync(TSHARK, [
    '-r', file, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
    '-T', 'fields', '-E', 'separator=/s', '-e', 'frame.number', '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status',
    '-e', 'udp.checksum.status',
  ], { encoding: 'utf8', timeout: 30_000 });
  assert.is(r.status, 0, `tshark failed: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '');
}

/** What tshark must say about each kept row: every checksum it has, good. */
function expectedChecksums(rows: Row[]): string[] {
  const kept = rows.filter(reachesOutput);
  return kept.map((r, i) => {
    const fields = r.proto === 'arp' ? ['', '', ''] : ['1', r.proto === 'tcp' ? '1' : '', r.proto === 'udp' ? '1' : ''];
    return [String(i + 1), ...fields].join(' ');
  });
}

// In-process runs use a small connection table (a few MB instead of 70) to keep the file fast;
// the spawned command covers the default engine.
const ENGINE = { connCapacity: 4096 };

let dir = '';
test.before(() => {
  assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" (npm test does)`);
});
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'wasmvs-replay-test-'));
});
test.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes the seed rules and an Ethernet/usec capture of the seed scenario into the temp dir. */
function seedFiles(linkType = LINKTYPE_ETHERNET): { rules: string; inPcap: string; outPcap: string; rows: Row[]; input: PcapFileRecord[] } {
  const rows = seedScenario(linkType);
  const input = inputRecords(rows, false);
  const files = { rules: join(dir, 'seed.rules'), inPcap: join(dir, 'in.pcap'), outPcap: join(dir, 'out.pcap') };
  writeFileSync(files.rules, SEED_RULES);
  writeFileSync(files.inPcap, pcapFile(input, { linkType }));
  return { ...files, rows, input };
}

// ---- the seed capture through the command -------------------------------------------------

test('seed rules over an Ethernet capture: OUT.pcap holds the forwarded and passed packets, rewritten, in input order; tshark finds every checksum valid', () => {
  const f = seedFiles();
  const r = wasmvs(['replay', '--rules', f.rules, f.inPcap, f.outPcap]);
  assert.is(r.stderr, '');
  assert.is(r.status, 0);
  const out = readFileSync(f.outPcap);
  assertReplayed(out, f.rows, f.input, LINKTYPE_ETHERNET, false);

  // The seed's worked example, spelled out: A's SYN leaves for 172.16.0.3:8000 and the reply
  // leaves from the VIP.
  const packets = parsePcap(out).records
    .filter((rec) => l3Of(LINKTYPE_ETHERNET, rec.data) >= 0)
    .map((rec) => decode(rec.data.subarray(l3Of(LINKTYPE_ETHERNET, rec.data))));
  const syn = packets.find((d) => d.src === '202.100.1.2' && d.flags === 'S')!;
  assert.is(`${syn.src}:${syn.sport} -> ${syn.dst}:${syn.dport}`, '202.100.1.2:3456 -> 172.16.0.3:8000');
  const synAck = packets.find((d) => d.dst === '202.100.1.2' && d.flags === 'SA')!;
  assert.is(`${synAck.src}:${synAck.sport} -> ${synAck.dst}:${synAck.dport}`, '202.103.106.5:80 -> 202.100.1.2:3456');

  const lines = tsharkChecksums(f.outPcap);
  if (lines) assert.equal(lines, expectedChecksums(f.rows));
});

test('text summary: verdict counts, drop reasons, connections created and expired, wrr 2:1 per real server', () => {
  const f = seedFiles();
  const want = countRows(f.rows);
  const r = wasmvs(['replay', '--rules', f.rules, f.inPcap, f.outPcap]);
  assert.is(r.status, 0);
  const line = (label: string, n: number) => new RegExp(`^\\s+${label.replace(/[()/]/g, '\\$&')}\\s+${n}\\b`, 'm');
  assert.match(r.stdout, line('total', want.packets));
  assert.match(r.stdout, line('forwarded', want.verdicts.forward));
  assert.match(r.stdout, `(client->server ${want.forwardIn}, server->client ${want.forwardOut})`);
  assert.match(r.stdout, line('passed', want.verdicts.pass));
  assert.match(r.stdout, line('dropped', 0));
  assert.match(r.stdout, line('local (VIP, no service)', 3));
  assert.not.match(r.stdout, /^drops by reason$/m);
  assert.match(r.stdout, /^local by reason\n\s+no-service\s+2\n\s+icmp\s+1$/m);
  assert.match(r.stdout, line('not-ipv4', 1));
  assert.match(r.stdout, line('protocol', 1));
  assert.match(r.stdout, line('no-match', 3));
  assert.match(r.stdout, line('created', SEED_CONNECTIONS.created));
  assert.match(r.stdout, line('expired', SEED_CONNECTIONS.expired));
  assert.match(r.stdout, line('reused (TIME_WAIT/CLOSE)', SEED_CONNECTIONS.reused));
  assert.match(r.stdout, line('live at end', SEED_CONNECTIONS.live));
  assert.match(r.stdout, /^new connections per real server$/m);
  assert.match(r.stdout, /^\s+TCP 202\.103\.106\.5:80 -> 172\.16\.0\.3:8000\s+4$/m);
  assert.match(r.stdout, /^\s+TCP 202\.103\.106\.5:80 -> 172\.16\.0\.2:80\s+2$/m);
  assert.match(r.stdout, /^\s+TCP 202\.103\.106\.5:21 -> 172\.16\.0\.3:21\s+1$/m);
  assert.not.match(r.stdout, 'IPVS connection entries', 'no table without --connections');
});

test('--json prints exactly one JSON object with the summary', () => {
  const f = seedFiles();
  const want = countRows(f.rows);
  const r = wasmvs(['replay', '--rules', f.rules, '--json', f.inPcap, f.outPcap]);
  assert.is(r.status, 0);
  assert.is(r.stderr, '');
  assert.ok(r.stdout.endsWith('}\n') && r.stdout.indexOf('\n') === r.stdout.length - 1, `one line of JSON, got ${JSON.stringify(r.stdout.slice(0, 200))}`);
  const s = JSON.parse(r.stdout) as {
    packets: number; verdicts: { forward: number; pass: number; drop: number; local: number }; forwardIn: number; forwardOut: number;
    drops: Record<string, number>; passes: Record<string, number>; locals: Record<string, number>;
    connections: { created: number; expired: number; reused: number; live: number };
    realServers: Array<{ protocol: string; vaddr: string; vport: number; daddr: string; dport: number; newConnections: number }>;
    connectionTable?: unknown;
  };
  assert.is(s.packets, want.packets);
  assert.equal(s.verdicts, want.verdicts);
  assert.is(s.forwardIn, want.forwardIn);
  assert.is(s.forwardOut, want.forwardOut);
  assert.equal(s.drops, {});
  assert.equal(s.locals, { 'no-service': 2, icmp: 1 });
  assert.equal(s.passes, { 'not-ipv4': 1, protocol: 1, 'no-match': 3 });
  assert.equal(s.connections, SEED_CONNECTIONS);
  const perServer = Object.fromEntries(s.realServers.map((d) => [`${d.protocol} ${d.vaddr}:${d.vport} -> ${d.daddr}:${d.dport}`, d.newConnections]));
  assert.equal(perServer, {
    'tcp 202.103.106.5:80 -> 172.16.0.2:80': 2,
    'tcp 202.103.106.5:80 -> 172.16.0.3:8000': 4,
    'tcp 202.103.106.5:21 -> 172.16.0.3:21': 1,
  });
  assert.is(s.connectionTable, undefined, 'no table without --connections');
});

test('--connections prints the table as ipvsadm -L -n -c: states and mm:ss expiry at the last packet', () => {
  const f = seedFiles();
  const r = wasmvs(['replay', '--rules', f.rules, '--connections', f.inPcap, f.outPcap]);
  assert.is(r.status, 0);
  const table = r.stdout.slice(r.stdout.indexOf('IPVS connection entries\n'));
  const lines = table.split('\n').filter((l) => l !== '');
  assert.is(lines[0], 'IPVS connection entries');
  assert.match(lines[1], /^pro expire state\s+source\s+virtual\s+destination$/);
  const want = seedConnections(f.rows);
  assert.is(lines.length - 2, want.length, `one row per live connection:\n${table}`);
  for (const c of want) {
    const row = lines.find((l) => l.includes(` ${c.e.client}:${c.e.cport} `));
    assert.ok(row, `row for ${c.e.client}:${c.e.cport} in\n${table}`);
    const cols = row!.trim().split(/\s+/);
    assert.equal(cols, ['TCP', mmss(c.expiresIn), c.state, `${c.e.client}:${c.e.cport}`, `${c.e.vip}:${c.e.vport}`, `${c.e.server}:${c.e.sport}`]);
  }
  // ipvsadm's column layout: "TCP 01:30  TIME_WAIT   202.100.1.2:3456   202.103.106.5:80   172.16.0.3:8000".
  assert.match(lines.find((l) => l.includes('202.100.1.2:3456'))!, /^TCP \d\d:\d\d {2}TIME_WAIT {3}202\.100\.1\.2:3456 {3}202\.103\.106\.5:80 {3}172\.16\.0\.3:8000$/);
});

test('--json --connections adds the connection table to the one JSON object', () => {
  const f = seedFiles();
  const r = wasmvs(['replay', '--rules', f.rules, '--json', '--connections', f.inPcap, f.outPcap]);
  assert.is(r.status, 0);
  assert.is(r.stdout.trimEnd().split('\n').length, 1);
  const s = JSON.parse(r.stdout) as { connectionTable: Array<{ caddr: string; cport: number; daddr: string; dport: number; state: string; expiresIn: number }> };
  const got = s.connectionTable.map((c) => `${c.caddr}:${c.cport} ${c.daddr}:${c.dport} ${c.state} ${c.expiresIn}`).sort();
  const want = seedConnections(seedScenario(LINKTYPE_ETHERNET)).map((c) => `${c.e.client}:${c.e.cport} ${c.e.server}:${c.e.sport} ${c.state} ${c.expiresIn}`).sort();
  assert.equal(got, want);
});

// ---- link types and timestamp resolutions -------------------------------------------------

// Ethernet with microseconds is the spawned command's case above.
const CAPTURE_KINDS = [
  { name: 'Ethernet (1), nanoseconds', linkType: LINKTYPE_ETHERNET, nanosecond: true, bigEndian: false },
  { name: 'RAW (101), microseconds, big-endian file', linkType: LINKTYPE_RAW, nanosecond: false, bigEndian: true },
  { name: 'IPv4 (228), nanoseconds', linkType: LINKTYPE_IPV4, nanosecond: true, bigEndian: false },
];

for (const kind of CAPTURE_KINDS) {
  test(`replay() keeps link type and timestamps: ${kind.name}`, () => {
    const rows = seedScenario(kind.linkType);
    const input = inputRecords(rows, kind.nanosecond);
    const result = replay({ rules: SEED_RULES, input: pcapFile(input, kind), engine: ENGINE });
    assertReplayed(result.output, rows, input, kind.linkType, kind.nanosecond);
    const want = countRows(rows);
    assert.equal(result.summary.verdicts, want.verdicts);
    assert.equal(result.summary.connections, SEED_CONNECTIONS);
    const file = join(dir, 'out.pcap');
    writeFileSync(file, result.output);
    const lines = tsharkChecksums(file);
    if (lines) assert.equal(lines, expectedChecksums(rows));
  });
}

test('replay(): a VLAN-tagged frame keeps its 802.1Q tag and Ethernet header byte for byte', () => {
  const rows = seedScenario(LINKTYPE_ETHERNET);
  const input = inputRecords(rows, false);
  const out = parsePcap(replay({ rules: SEED_RULES, input: pcapFile(input, { linkType: LINKTYPE_ETHERNET }), engine: ENGINE }).output).records;
  const kept = rows.filter(reachesOutput);
  const tagged = kept.map((r, i) => ({ r, rec: out[i] })).filter((x) => x.r.what.startsWith('B '));
  assert.ok(tagged.length >= 10, 'session B is all there');
  for (const { r, rec } of tagged) {
    // dst MAC, src MAC, TPID 0x8100, TCI (VLAN 100), ethertype IPv4.
    assert.is(hex(rec.data.subarray(0, 18)), hex(r.frame.subarray(0, 18)), r.what);
    assert.is(hex(rec.data.subarray(12, 18)), `8100${VLAN_B.toString(16).padStart(4, '0')}0800`, r.what);
  }
});

// ---- the capture's clock drives the timeouts ----------------------------------------------

/** A handshake whose final ACK comes `gapMs` after the SYN-ACK (rttMs is that gap). */
function lateAckRows(startMs: number, gapMs: number): Row[] {
  const rows = sessionRows('late', LINKTYPE_RAW, { ...HTTP_A, startMs, rttMs: gapMs, messages: [], close: 'none' });
  assert.equal(rows.map((r) => decode(r.frame).flags), ['S', 'SA', 'A']);
  return rows;
}

const LATE_ACK_CASES = [
  { name: 'ACK 59 s after the SYN-ACK: SYN_RECV (60 s) still holds, forwarded', gap: 59 * SECONDS, start: T0, expired: 0 },
  { name: 'ACK 61 s after the SYN-ACK: the connection expired, dropped as no-conn', gap: 61 * SECONDS, start: T0, expired: 1 },
  { name: 'across the 2^32 ms clock wrap, 59 s: forwarded', gap: 59 * SECONDS, start: WRAP - 30 * SECONDS, expired: 0 },
  { name: 'across the 2^32 ms clock wrap, 61 s: dropped as no-conn', gap: 61 * SECONDS, start: WRAP - 30 * SECONDS, expired: 1 },
  // Captures merged from different days (mergecap) hold gaps the engine's wrapping 32-bit
  // millisecond clock cannot tell apart from short ones: 2^31 ms and more reads as negative,
  // 2^32 ms as nothing at all. The connection was gone 60 s after its SYN-ACK either way.
  { name: 'ACK 30 days later (a gap over 2^31 ms): dropped as no-conn', gap: 30 * DAYS, start: T0, expired: 1 },
  { name: 'ACK 2^32 ms + 30 s later (the 32-bit clock comes round to 30 s): dropped as no-conn', gap: 2 ** 32 + 30 * SECONDS, start: T0, expired: 1 },
];

for (const c of LATE_ACK_CASES) {
  test(`pcap clock: ${c.name}`, () => {
    const rows = lateAckRows(c.start, c.gap);
    if (c.expired) rows[2].fate = 'drop';
    const input = inputRecords(rows, false);
    const result = replay({ rules: SEED_RULES, input: pcapFile(input, { linkType: LINKTYPE_RAW }), engine: ENGINE });
    assertReplayed(result.output, rows, input, LINKTYPE_RAW, false);
    assert.equal(result.summary.drops, c.expired ? { 'no-conn': 1 } : {});
    assert.equal(result.summary.connections, { created: 1, expired: c.expired, reused: 0, live: 1 - c.expired });
    assert.equal(result.connections.map((x) => x.state), c.expired ? [] : ['ESTABLISHED']);
  });
}

test('CLI: a client ACK 61 s after its SYN is dropped (no-conn) and the connection counted expired', () => {
  const rows = lateAckRows(T0, 61 * SECONDS);
  const files = { rules: join(dir, 'seed.rules'), inPcap: join(dir, 'in.pcap'), outPcap: join(dir, 'out.pcap') };
  writeFileSync(files.rules, SEED_RULES);
  writeFileSync(files.inPcap, pcapFile(inputRecords(rows, false), { linkType: LINKTYPE_RAW }));
  const r = wasmvs(['replay', '--rules', files.rules, '--json', files.inPcap, files.outPcap]);
  assert.is(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { verdicts: { forward: number; drop: number }; drops: Record<string, number>; connections: { created: number; expired: number; live: number } };
  assert.equal(s.verdicts, { forward: 2, pass: 0, drop: 1, local: 0 });
  assert.equal(s.drops, { 'no-conn': 1 });
  assert.is(s.connections.expired, 1);
  assert.is(s.connections.live, 0);
  assert.equal(parsePcap(readFileSync(files.outPcap)).records.map((rec) => decode(rec.data).flags), ['S', 'SA']);
});

/** Two UDP requests from one client port 30 s apart, no answers. */
function udpRows(): Row[] {
  const e: Endpoints = { client: '202.100.1.2', cport: 33000, vip: VIP, vport: 53, server: '0.0.0.0', sport: 53 };
  return udpExchange({ ...e, startMs: T0, count: 2, intervalMs: 30 * SECONDS, response: null }).map((p, i) => ({
    what: `UDP request ${i}`, time: p.time, frame: p.packet, l3: 0, fate: 'forward', dir: p.dir, proto: 'udp',
  }));
}

for (const c of [
  { set: '900,120,300', same: true, created: 1, expired: 0, why: 'UDP 300 s: the second request rides the first connection' },
  { set: '0,0,10', same: false, created: 2, expired: 1, why: 'UDP 10 s: the first connection expired, rr picks the other server' },
]) {
  test(`--set ${c.set}: ${c.why}`, () => {
    const rows = udpRows();
    const files = { rules: join(dir, 'udp.rules'), inPcap: join(dir, 'in.pcap'), outPcap: join(dir, 'out.pcap') };
    writeFileSync(files.rules, UDP_RULES);
    writeFileSync(files.inPcap, pcapFile(inputRecords(rows, false), { linkType: LINKTYPE_IPV4 }));
    const r = wasmvs(['replay', '--rules', files.rules, '--json', '--set', c.set, files.inPcap, files.outPcap]);
    assert.is(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout) as { connections: { created: number; expired: number; live: number } };
    assert.equal(s.connections, { created: c.created, expired: c.expired, reused: 0, live: 1 });
    const out = parsePcap(readFileSync(files.outPcap)).records.map((rec) => decode(rec.data));
    assert.is(out.length, 2);
    for (const d of out) {
      assert.is(d.protocol, IPPROTO_UDP);
      assert.ok(['172.16.0.2:53', '172.16.0.3:53'].includes(`${d.dst}:${d.dport}`), `rewritten to a real server, got ${d.dst}:${d.dport}`);
      assert.is(`${d.src}:${d.sport}`, '202.100.1.2:33000');
    }
    assert.is(out[0].dst === out[1].dst, c.same, `servers ${out[0].dst} and ${out[1].dst}`);
  });
}

test('--set 10,0,0: the first number is the TCP (ESTABLISHED) timeout', () => {
  // A session whose client goes quiet for 11 s after the handshake, then sends its request.
  const rows = sessionRows('idle', LINKTYPE_RAW, { ...HTTP_A, startMs: T0, close: 'client' })
    .map((r, i) => (i >= 3 ? { ...r, time: r.time + 11 * SECONDS } : r));
  const late = rows.slice(3);
  const files = { rules: join(dir, 'seed.rules'), inPcap: join(dir, 'in.pcap'), outPcap: join(dir, 'out.pcap') };
  writeFileSync(files.rules, SEED_RULES);
  writeFileSync(files.inPcap, pcapFile(inputRecords(rows, false), { linkType: LINKTYPE_RAW }));
  const r = wasmvs(['replay', '--rules', files.rules, '--json', '--set', '10,0,0', files.inPcap, files.outPcap]);
  assert.is(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { drops: Record<string, number>; passes: Record<string, number>; connections: { created: number; expired: number } };
  assert.is(s.connections.expired, 1);
  // The client's late segments find no connection; the server's, not from a VIP, are not ours.
  assert.equal(s.drops, { 'no-conn': late.filter((x) => x.dir === 'in').length });
  assert.equal(s.passes, { 'no-match': late.filter((x) => x.dir === 'out').length });

  // With the default 900 s the same capture goes through whole (the test's control).
  const whole = replay({ rules: SEED_RULES, input: readFileSync(files.inPcap), engine: ENGINE });
  assert.equal(whole.summary.verdicts, { forward: rows.length, pass: 0, drop: 0, local: 0 });
});

test('replay(): a capture whose header says snaplen 0 or 2^32-1 (libpcap reads both as the maximum) replays whole', () => {
  // libpcap's pcap_adjust_snapshot() (pcap.c) replaces a snapshot length of 0 or above
  // INT_MAX by the link type's maximum, so tcpdump and tshark read such files; some capture
  // tools write them. The reader accepts them too; the output must not fail on them.
  const rows = seedScenario(LINKTYPE_ETHERNET);
  const input = inputRecords(rows, false);
  for (const snapLen of [0, 0xffffffff]) {
    let result: ReturnType<typeof replay> | undefined;
    try {
      result = replay({ rules: SEED_RULES, input: pcapFile(input, { linkType: LINKTYPE_ETHERNET, snapLen }), engine: ENGINE });
    } catch (err) {
      assert.unreachable(`snaplen ${snapLen}: ${(err as Error).message}`);
    }
    assertReplayed(result!.output, rows, input, LINKTYPE_ETHERNET, false);
  }
});

// ---- errors ------------------------------------------------------------------------------

test('unreadable rules file: exit 1, the file and the system error named, no OUT.pcap', () => {
  const f = seedFiles();
  const missing = join(dir, 'missing.rules');
  const r = wasmvs(['replay', '--rules', missing, f.inPcap, f.outPcap]);
  assert.is(r.status, 1);
  assert.is(r.stdout, '');
  assert.is(r.stderr, `wasmvs: WASMVS_FILE: cannot read rules file ${missing}: ENOENT\n`);
  assert.not.ok(existsSync(f.outPcap));
});

test('a bad rules line: exit 1, the message names the line, no OUT.pcap', () => {
  const f = seedFiles();
  writeFileSync(f.rules, SEED_RULES.replace('172.16.0.3:8000', '172.16.0.300:8000'));
  const r = wasmvs(['replay', '--rules', f.rules, f.inPcap, f.outPcap]);
  assert.is(r.status, 1);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /^wasmvs: WASMVS_BAD_ADDRESS: line 3: .*172\.16\.0\.300/);
  assert.not.ok(existsSync(f.outPcap));

  writeFileSync(f.rules, `${SEED_RULES}# the FTP data port\n-a -t 202.103.106.5:20 -r 172.16.0.3:20 -m\n`);
  const r2 = wasmvs(['replay', '--rules', f.rules, f.inPcap, f.outPcap]);
  assert.is(r2.status, 1);
  assert.match(r2.stderr, /^wasmvs: WASMVS_NO_SERVICE: line 7: /);
  assert.not.ok(existsSync(f.outPcap));
});

test('unreadable or corrupt capture: exit 1 with a clear message, no OUT.pcap', () => {
  const f = seedFiles();
  const good = readFileSync(f.inPcap);
  const cases: Array<{ name: string; bytes?: Uint8Array; stderr: RegExp }> = [
    { name: 'missing', stderr: /^wasmvs: WASMVS_FILE: cannot read capture .*missing\.pcap: ENOENT\n$/ },
    { name: 'text', bytes: new TextEncoder().encode('this is not a capture at all\n'), stderr: /^wasmvs: WASMVS_PCAP_FORMAT: not a pcap file: magic 0x74686973 at byte offset 0/ },
    { name: 'short', bytes: good.subarray(0, 10), stderr: /^wasmvs: WASMVS_PCAP_FORMAT: global header truncated/ },
    { name: 'cut', bytes: good.subarray(0, good.length - 5), stderr: new RegExp(`^wasmvs: WASMVS_PCAP_FORMAT: record ${f.rows.length} at byte offset \\d+: frame truncated`) },
    { name: 'linux-sll', bytes: pcapFile([], { linkType: 113 }), stderr: /^wasmvs: WASMVS_PCAP_LINKTYPE: link type 113 LINUX_SLL .*capture on a named interface/ },
  ];
  for (const c of cases) {
    const file = join(dir, `${c.name}.pcap`);
    if (c.bytes) writeFileSync(file, c.bytes);
    const r = wasmvs(['replay', '--rules', f.rules, file, f.outPcap]);
    assert.is(r.status, 1, c.name);
    assert.match(r.stderr, c.stderr, c.name);
    assert.is(r.stderr.split('\n').length, 2, `${c.name}: one line on stderr, no stack trace`);
    assert.not.ok(existsSync(f.outPcap), c.name);
  }
});

test('pcapng input: exit 1, the message suggests editcap', () => {
  const f = seedFiles();
  // A Section Header Block (pcapng spec §4.1): type, length 28, byte-order magic, version 1.0,
  // section length -1 (unknown), length again.
  const shb = fromHex('0a0d0d0a 1c000000 4d3c2b1a 0100 0000 ffffffffffffffff 1c000000');
  const file = join(dir, 'in.pcapng');
  writeFileSync(file, shb);
  const r = wasmvs(['replay', '--rules', f.rules, file, f.outPcap]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /pcapng is not supported; convert with: editcap -F pcap /);
  assert.not.ok(existsSync(f.outPcap));
});

test('usage errors exit 2 with the usage text on stderr', () => {
  const f = seedFiles();
  const cases: Array<{ args: string[]; says: RegExp }> = [
    { args: ['replay', f.inPcap, f.outPcap], says: /replay needs --rules FILE/ },
    { args: ['replay', '--rules', f.rules, f.inPcap], says: /needs IN\.pcap and OUT\.pcap \(got 1 file names\)/ },
    { args: ['replay', '--rules', f.rules, f.inPcap, f.outPcap, join(dir, 'third.pcap')], says: /got 3 file names/ },
    { args: ['replay', '--rules', f.rules, '--bogus', f.inPcap, f.outPcap], says: /Unknown option '--bogus'/ },
    { args: ['replay', '--rules', f.rules, '--set', '900,120', f.inPcap, f.outPcap], says: /--set takes three whole numbers/ },
    { args: ['replay', '--rules', f.rules, '--set', '1,2,x', f.inPcap, f.outPcap], says: /--set takes three whole numbers/ },
    { args: ['replay', '--rules'], says: /argument missing|--rules/ },
    { args: ['frobnicate'], says: /unknown command "frobnicate"/ },
  ];
  for (const c of cases) {
    const r = wasmvs(c.args);
    assert.is(r.status, 2, c.args.join(' '));
    assert.match(r.stderr, /^wasmvs: /, c.args.join(' '));
    assert.match(r.stderr, c.says, c.args.join(' '));
    assert.match(r.stderr, /Usage: wasmvs <command>/, c.args.join(' '));
    assert.is(r.stdout, '', c.args.join(' '));
    assert.not.ok(existsSync(f.outPcap), c.args.join(' '));
  }
  const bare = wasmvs([]);
  assert.is(bare.status, 2, 'no command');
  assert.match(bare.stdout, /Usage: wasmvs <command>/);
});

test('--help and --version exit 0', () => {
  for (const args of [['--help'], ['-h'], ['help'], ['replay', '--help']]) {
    const r = wasmvs(args);
    assert.is(r.status, 0, args.join(' '));
    assert.match(r.stdout, /^Usage: wasmvs <command> \[options\]/, args.join(' '));
    assert.match(r.stdout, /replay --rules FILE IN\.pcap OUT\.pcap/);
    assert.is(r.stderr, '');
  }
  for (const flag of ['--version', '-V']) {
    const r = wasmvs([flag]);
    assert.is(r.status, 0, flag);
    assert.is(r.stdout, `wasmvs ${VERSION}\n`);
  }
  // From another directory, as an installed bin runs.
  assert.is(wasmvs(['--version'], dir).stdout, `wasmvs ${VERSION}\n`);
});

test('npx wasmvs --help works from the package directory', () => {
  const r = spawnSync('npx', ['wasmvs', '--help'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    // Never reach for the registry: only the package's own bin may answer.
    env: { ...process.env, npm_config_offline: 'true', npm_config_yes: 'false', npm_config_update_notifier: 'false' },
  });
  assert.is(r.error, undefined);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: wasmvs <command> \[options\]/);
});

test.run();
