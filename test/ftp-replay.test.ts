// Replay fixtures for the FTP helper: one capture per form, each built by the FTP oracle
// (test/support/ftp-traffic.ts) as the director receives it, replayed (host/replay), and the
// output checked three ways: frame by frame against the oracle's sent view, by tshark for
// every IP and TCP checksum, and by tshark's FTP dissector and TCP reassembly, which must
// follow the conversation as the client sees it (the VIP in each 227, ftp.passive.nat false,
// no "ACKed unseen segment" or "previous segment not captured", the text in order).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replay } from '../host/replay/replay.js';
import { ftpConversation, type FtpPacket, type FtpStep, reply227 } from './support/ftp-traffic.js';
import { hex, tcpPacket } from './support/packets.js';
import { IN_CI, TSHARK } from './support/tools.js';
import { LINKTYPE_ETHERNET, linkFrame, parsePcap, pcapFile, timestamp, type PcapFileRecord } from './support/traffic.js';

const VIP = '198.18.100.30';
const RIP = '198.19.0.5';
const CLIENT = '198.18.7.7';
const RULES = `-A -t ${VIP}:21 -s rr\n-a -t ${VIP}:21 -r ${RIP}:21 -m\n`;
const T0 = Date.UTC(2026, 0, 5, 12, 0, 0);
const ENDS = { client: CLIENT, cport: 40001, vip: VIP, vport: 21, server: RIP, sport: 21 };
const BANNER = { from: 'server', text: '220 wasmvs FTP\r\n' } as const;
const PASV = { from: 'client', text: 'PASV\r\n' } as const;
const USER: FtpStep[] = [
  { from: 'client', text: 'USER anonymous\r\n' }, { from: 'server', text: '331 Please specify the password.\r\n' },
  { from: 'client', text: 'PASS guest@\r\n' }, { from: 'server', text: '230 Login successful.\r\n' },
];

interface Fixture {
  name: string;
  steps: FtpStep[];
  serverIsn?: number;
  /** Data-connection packets (received, sent), sent right after the step with this index. */
  data?: { after: number; packets: Array<[Uint8Array, Uint8Array]> };
  /** What tshark's FTP dissector must find in the output: 227/229 ports, PORT/EPRT clients. */
  passive: string[];
  active: string[];
  /** Retransmissions in the fixture (tshark flags them, rightly). */
  retransmits?: boolean;
}

/** A passive data connection's handshake and a line of data from the server, both views. */
function passiveData(port: number, cport: number): Array<[Uint8Array, Uint8Array]> {
  const d = (src: string, sport: number, dst: string, dport: number, flags: string, seq: number, ack: number, payload?: string) =>
    tcpPacket({ src, sport, dst, dport, flags, seq, ack, ...(payload ? { payload } : {}) });
  return [
    [d(CLIENT, cport, VIP, port, 'S', 1000, 0), d(CLIENT, cport, RIP, port, 'S', 1000, 0)],
    [d(RIP, port, CLIENT, cport, 'SA', 5000, 1001), d(VIP, port, CLIENT, cport, 'SA', 5000, 1001)],
    [d(CLIENT, cport, VIP, port, 'A', 1001, 5001), d(CLIENT, cport, RIP, port, 'A', 1001, 5001)],
    [d(RIP, port, CLIENT, cport, 'PA', 5001, 1001, 'file contents\n'), d(VIP, port, CLIENT, cport, 'PA', 5001, 1001, 'file contents\n')],
  ];
}

/** The server's active data connection from RIP:20 (seen as VIP:20) to the client's port. */
function activeData(caddr: string, cport: number): Array<[Uint8Array, Uint8Array]> {
  const d = (src: string, sport: number, dst: string, dport: number, flags: string, seq: number, ack: number) => tcpPacket({ src, sport, dst, dport, flags, seq, ack });
  return [
    [d(RIP, 20, caddr, cport, 'S', 7000, 0), d(VIP, 20, caddr, cport, 'S', 7000, 0)],
    [d(caddr, cport, VIP, 20, 'SA', 3000, 7001), d(caddr, cport, RIP, 20, 'SA', 3000, 7001)],
    [d(RIP, 20, caddr, cport, 'A', 7001, 3001), d(VIP, 20, caddr, cport, 'A', 7001, 3001)],
  ];
}

const FIXTURES: Fixture[] = [
  {
    name: 'PASV, 227 with parentheses, the data connection in the same millisecond as the 227',
    steps: [BANNER, ...USER, PASV, { from: 'server', text: reply227(RIP, 50000), seen: reply227(VIP, 50000) }, { ack: 'client' }, { from: 'client', text: 'RETR a\r\n' }, { from: 'server', text: '150 Opening.\r\n' }],
    data: { after: 6, packets: passiveData(50000, 50100) },
    passive: [`${VIP}:50000`], active: [],
  },
  {
    name: '227 without parentheses',
    steps: [BANNER, PASV, { from: 'server', text: reply227(RIP, 50001, false), seen: reply227(VIP, 50001, false) }, { ack: 'client' }, { from: 'client', text: 'QUIT\r\n' }],
    data: { after: 2, packets: passiveData(50001, 50101) },
    passive: [`${VIP}:50001`], active: [],
  },
  {
    name: 'EPSV arms, 229 unchanged',
    steps: [BANNER, { from: 'client', text: 'EPSV\r\n' }, { from: 'server', text: '229 Entering Extended Passive Mode (|||50002|)\r\n' }, { ack: 'client' }],
    data: { after: 2, packets: passiveData(50002, 50102) },
    passive: ['50002'], active: [],
  },
  {
    name: 'EPSV ALL, then EPSV',
    steps: [BANNER, { from: 'client', text: 'EPSV ALL\r\n' }, { from: 'server', text: '200 EPSV ALL ok.\r\n' }, { from: 'client', text: 'EPSV\r\n' }, { from: 'server', text: '229 Entering Extended Passive Mode (|||50003|)\r\n' }],
    data: { after: 4, packets: passiveData(50003, 50103) },
    passive: ['50003'], active: [],
  },
  {
    name: 'PORT',
    steps: [BANNER, { from: 'client', text: 'PORT 198,18,7,7,195,80\r\n' }, { from: 'server', text: '200 PORT command successful.\r\n' }],
    data: { after: 2, packets: activeData(CLIENT, 50000) },
    passive: [], active: [`${CLIENT}:50000`],
  },
  {
    name: 'EPRT',
    steps: [BANNER, { from: 'client', text: 'EPRT |1|198.18.7.7|50011|\r\n' }, { from: 'server', text: '200 EPRT command successful.\r\n' }],
    data: { after: 2, packets: activeData(CLIENT, 50011) },
    passive: [], active: [`${CLIENT}:50011`],
  },
  {
    name: 'a 227 without a preceding PASV is not rewritten',
    steps: [BANNER, { from: 'client', text: 'NOOP\r\n' }, { from: 'server', text: reply227(RIP, 50004) }, { ack: 'client' }],
    passive: [`${RIP}:50004`], active: [],
  },
  {
    name: 'two commands in a segment, two replies in a segment',
    steps: [BANNER, { from: 'client', text: 'TYPE I\r\nPASV\r\n' }, { from: 'server', text: `200 Switching to Binary mode.\r\n${reply227(RIP, 50005)}`, seen: `200 Switching to Binary mode.\r\n${reply227(VIP, 50005)}` }, { ack: 'client' }],
    // tshark's FTP dissector reads the first line of a segment only: the 227 is checked by
    // the frame comparison and the followed text.
    passive: [], active: [],
  },
  {
    name: 'split command and split reply pass unchanged',
    steps: [BANNER, { from: 'client', text: 'PORT 198,18,7,7,195,82\r\n', cut: [9] }, { from: 'server', text: '200 PORT command successful.\r\n' }, PASV, { from: 'server', text: reply227(RIP, 50006), cut: [31] }, { ack: 'client' }],
    passive: [], active: [],
  },
  {
    name: 'retransmissions before and after the change',
    steps: [BANNER, PASV, { from: 'server', text: reply227(RIP, 50007), seen: reply227(VIP, 50007) }, { from: 'server', text: '150 ok\r\n' }, { retransmit: 0 }, { retransmit: 2 }, { retransmit: 3 }, { ack: 'client', upTo: 0 }, { ack: 'client' }],
    // tshark does not dissect a retransmission again; the frame comparison checks that the
    // retransmitted 227 is the rewritten one.
    passive: [`${VIP}:50007`], active: [], retransmits: true,
  },
  {
    name: 'sequence numbers wrapping past 2^32',
    serverIsn: 2 ** 32 - 40,
    steps: [BANNER, ...USER, PASV, { from: 'server', text: reply227(RIP, 50008), seen: reply227(VIP, 50008) }, { ack: 'client' }, { from: 'client', text: 'LIST\r\n' }, { from: 'server', text: '150 Here comes the directory listing.\r\n' }, { ack: 'client' }],
    passive: [`${VIP}:50008`], active: [],
  },
  {
    name: 'SACK blocks',
    steps: [BANNER, PASV, { from: 'server', text: reply227(RIP, 50009), seen: reply227(VIP, 50009) }, { from: 'server', text: '150 one\r\n' }, { from: 'server', text: '226 two\r\n' }, { ack: 'client', upTo: 2, sack: [[4, 4]] }, { ack: 'client' }],
    passive: [`${VIP}:50009`], active: [],
  },
];

/** The fixture's packets in capture order, both views: one millisecond apart, but the data
 * connection's first packet shares the millisecond of the step it follows (one batch). */
function render(f: Fixture): Array<{ time: number; dir: 'in' | 'out'; received: Uint8Array; sent: Uint8Array }> {
  const conv: FtpPacket[] = ftpConversation({ ...ENDS, steps: f.steps, ...(f.serverIsn === undefined ? {} : { serverIsn: f.serverIsn }) });
  const out: Array<{ time: number; dir: 'in' | 'out'; received: Uint8Array; sent: Uint8Array }> = [];
  let t = T0;
  let dataDone = f.data === undefined;
  for (let i = 0; i < conv.length; i++) {
    const p = conv[i];
    out.push({ time: t, dir: p.dir, received: p.received, sent: p.sent });
    const lastOfStep = conv[i + 1]?.step !== p.step;
    if (!dataDone && f.data && p.step === f.data.after && lastOfStep) {
      dataDone = true;
      f.data.packets.forEach(([received, sent], k) => {
        if (k > 0) t += 1;
        // The data packets' direction for the link header: from the client or the server side.
        const fromServer = received[12] === 198 && received[13] === 19;
        out.push({ time: t, dir: fromServer ? 'out' : 'in', received, sent });
      });
    }
    t += 1;
  }
  return out;
}

function tshark(args: string[]): string {
  const r = spawnSync(TSHARK!, args, { encoding: 'utf8', timeout: 30_000 });
  assert.is(r.status, 0, `tshark failed: ${r.stderr}`);
  return r.stdout;
}

const dir = mkdtempSync(join(tmpdir(), 'wasmvs-ftp-replay-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

for (const f of FIXTURES) {
  test(`replay: ${f.name}: output frame by frame as the oracle, every checksum valid (tshark), the conversation followed`, () => {
    const pkts = render(f);
    const rec = (data: Uint8Array, time: number): PcapFileRecord => ({ ...timestamp(time), data });
    const input = pcapFile(pkts.map((p) => rec(linkFrame({ packet: p.received, dir: p.dir }, LINKTYPE_ETHERNET), p.time)), { linkType: LINKTYPE_ETHERNET });
    const r = replay({ rules: RULES, input });
    const got = [...parsePcap(r.output).records];
    assert.is(got.length, pkts.length, 'every packet forwarded');
    got.forEach((g, i) => assert.is(hex(g.data), hex(linkFrame({ packet: pkts[i].sent, dir: pkts[i].dir }, LINKTYPE_ETHERNET)), `frame ${i + 1}`));

    if (!TSHARK) {
      if (IN_CI) assert.unreachable('tshark is not installed; CI must install it (.ci/run)');
      return;
    }
    // The output holds what the director sent: client -> RIP and VIP -> client, two legs of one
    // conversation under different addresses. Each leg is put back together with the input's
    // other half, so that tshark sees a whole TCP conversation per leg: the client's (what it
    // sent and what it got) and the server's.
    const base = join(dir, f.name.replace(/[^a-z0-9]+/gi, '-'));
    const frames = (pick: (i: number) => Uint8Array) => pcapFile(pkts.map((p, i) => rec(pick(i), p.time)), { linkType: LINKTYPE_ETHERNET });
    const inFrame = (i: number) => linkFrame({ packet: pkts[i].received, dir: pkts[i].dir }, LINKTYPE_ETHERNET);
    const clientSide = (i: number) => (pkts[i].received[12] === 198 && pkts[i].received[13] === 19) === false;
    writeFileSync(`${base}.client.pcap`, frames((i) => (clientSide(i) ? inFrame(i) : got[i].data)));
    writeFileSync(`${base}.server.pcap`, frames((i) => (clientSide(i) ? got[i].data : inFrame(i))));

    // One tshark run per leg: every checksum (the two legs hold every output frame between
    // them), TCP analysis, and on the client's leg the FTP dissector and the followed stream.
    const run = (leg: string, extra: string[]) => {
      const out = tshark(['-r', `${base}.${leg}.pcap`, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE',
        '-T', 'fields', '-E', 'separator=/t', '-E', 'occurrence=a', '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status',
        '-e', 'tcp.analysis.ack_lost_segment', '-e', 'tcp.analysis.lost_segment', '-e', 'tcp.analysis.retransmission', '-e', 'tcp.analysis.out_of_order',
        ...extra]);
      const cut = out.indexOf('\n====');
      const rows = (cut < 0 ? out : out.slice(0, cut)).split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
      assert.is(rows.length, pkts.length, `${leg} leg: every frame`);
      rows.forEach((row, i) => {
        assert.equal(row.slice(0, 2), ['1', '1'], `${leg} leg, frame ${i + 1}: IP and TCP checksums good`);
        assert.is(row[2], '', `${leg} leg, frame ${i + 1}: no ACK of an unseen segment`);
        assert.is(row[3], '', `${leg} leg, frame ${i + 1}: no segment missing before it`);
        if (!f.retransmits) assert.is(row[4] + row[5], '', `${leg} leg, frame ${i + 1}: no retransmission`);
      });
      return { rows: rows.map((r) => r.slice(6)), rest: cut < 0 ? '' : out.slice(cut) };
    };
    run('server', []);
    // The client's leg, as the client saw it: the FTP dissector reads the VIP in every 227.
    const client = run('client', ['-e', 'ftp.passive.ip', '-e', 'ftp.passive.port', '-e', 'ftp.passive.nat', '-e', 'ftp.epsv.port',
      '-e', 'ftp.active.cip', '-e', 'ftp.active.port', '-e', 'ftp.eprt.ip', '-e', 'ftp.eprt.port', '-e', 'ftp.active.nat', '-z', 'follow,tcp,ascii,0']);
    const ftp = client.rows;
    const passive = ftp.flatMap((row) => (row[1] ? [`${row[0]}:${row[1]}`] : row[3] ? [row[3]] : []));
    assert.equal(passive, f.passive, 'the 227/229 replies tshark reads');
    for (const row of ftp) if (row[0]) assert.is(row[2], row[0] === VIP ? '' : '1', `ftp.passive.nat for ${row[0]}: set exactly when the 227 does not name its sender`);
    const active = ftp.flatMap((row) => (row[5] ? [`${row[4]}:${row[5]}`] : row[7] ? [`${row[6]}:${row[7]}`] : []));
    assert.equal(active, f.active, 'the PORT/EPRT commands tshark reads');
    for (const row of ftp) assert.is(row[8] ?? '', '', 'ftp.active.nat: the client names itself');
    // TCP reassembly of the client's control connection: the text in order, as the client saw it.
    // (Its output: each chunk's length on a line of its own, then the chunk, the server's
    // indented by a tab; chunks are joined back here, so a line cut into segments is whole.)
    const follow = client.rest.split('\n')
      .filter((l) => !/^\t?\d+$/.test(l) && !/^(=+|Follow:|Filter:|Node \d:)/.test(l)).join('').replace(/\t/g, '');
    const expected = f.steps.filter((st): st is Extract<FtpStep, { text: string }> => 'text' in st).map((st) => st.seen ?? st.text);
    let at = 0;
    for (const e of expected) {
      for (const line of e.split('\r\n').filter((l) => l !== '')) {
        const k = follow.indexOf(line, at);
        assert.ok(k >= 0, `follow: "${line}" in order`);
        at = k + line.length;
      }
    }
  });
}

test.run();
