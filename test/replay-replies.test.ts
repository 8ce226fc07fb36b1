// `wasmvs replay --replies FILE`: packets addressed to the VIP that no service serves stay out
// of OUT.pcap and get the answers the gateway would send (host/responder/), in a capture of
// their own, in the input's link type (Ethernet answers carry the request's header with the
// MACs swapped). The rate limit runs on the capture's clock, so a replay is deterministic.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { replay } from '../host/replay/replay.js';
import { decode, icmpPacket, ipv4Packet, tcpPacket, udpPacket } from './support/packets.js';
import { SEED_RULES_TEXT } from './support/seed.js';
import { DIRECTOR_MAC, LINKTYPE_ETHERNET, LINKTYPE_RAW, linkFrame, parsePcap, pcapFile, ROUTER_MAC } from './support/traffic.js';
import { IN_CI, TSHARK } from './support/tools.js';

const VIP = '202.103.106.5';
const CLIENT = '202.100.1.2';

/** Four packets nothing serves, one that is served, at 1 ms steps. */
function requests(): Uint8Array[] {
  return [
    tcpPacket({ src: CLIENT, dst: VIP, sport: 4000, dport: 81, flags: 'S', seq: 7 }),
    udpPacket({ src: CLIENT, dst: VIP, sport: 4001, dport: 53, payload: 'query' }),
    icmpPacket({ src: CLIENT, dst: VIP, type: 8, code: 0, rest: 0x00420001, body: new Uint8Array([9, 8, 7]) }),
    ipv4Packet({ src: CLIENT, dst: VIP, protocol: 255, payload: new Uint8Array(16) }),
    tcpPacket({ src: CLIENT, dst: VIP, sport: 4002, dport: 80, flags: 'S' }),
  ];
}

function capture(linkType: number): Uint8Array {
  return pcapFile(requests().map((packet, i) => ({ tsSec: 1000, tsFrac: i * 1000, data: linkFrame({ packet, dir: 'in' }, linkType) })), { linkType });
}

for (const linkType of [LINKTYPE_RAW, LINKTYPE_ETHERNET]) {
  const l3 = linkType === LINKTYPE_ETHERNET ? 14 : 0;
  test(`link type ${linkType}: each unserved packet is answered, none reaches OUT.pcap`, () => {
    const r = replay({ rules: SEED_RULES_TEXT, input: capture(linkType), replies: true });
    assert.equal(r.summary.locals, { 'no-service': 2, icmp: 1, protocol: 1 });
    const out = parsePcap(r.output).records;
    assert.is(out.length, 1, 'only the served SYN is forwarded');
    const answers = parsePcap(r.replies as Uint8Array);
    assert.is(answers.linkType, linkType);
    assert.is(answers.records.length, 4);
    const d = answers.records.map((rec) => decode(rec.data.subarray(l3)));
    assert.equal([d[0].protocol, d[0].src, d[0].sport, d[0].dst, d[0].dport, d[0].flags], [6, VIP, 81, CLIENT, 4000, 'RA']);
    assert.equal([d[1].protocol, d[1].payload[0], d[1].payload[1]], [1, 3, 3]);
    assert.equal([d[2].protocol, d[2].payload[0], d[2].payload[1]], [1, 0, 0]);
    assert.equal([d[3].protocol, d[3].payload[0], d[3].payload[1]], [1, 3, 2]);
    for (const x of d) assert.equal([x.src, x.dst], [VIP, CLIENT]);
    assert.equal(answers.records.map((rec) => rec.tsFrac), [0, 1000, 2000, 3000], 'stamped with the request time');
    if (linkType === LINKTYPE_ETHERNET) {
      const mac = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
      for (const rec of answers.records) assert.equal([mac(rec.data.subarray(0, 6)), mac(rec.data.subarray(6, 12))], [ROUTER_MAC, DIRECTOR_MAC]);
    }
    assert.equal(r.replyCounters, { tcpReset: 1, portUnreachable: 1, echoReply: 1, protocolUnreachable: 1, rateLimited: 0, notAnswered: 0 });
  });
}

test('the rate limit runs on the capture clock: a flood in one millisecond gets the burst only', () => {
  const flood = Array.from({ length: 200 }, (_, i) => ({ tsSec: 5, tsFrac: 0, data: udpPacket({ src: CLIENT, dst: VIP, sport: 1000 + i, dport: 9, payload: 'x' }) }));
  const r = replay({ rules: SEED_RULES_TEXT, input: pcapFile(flood, { linkType: LINKTYPE_RAW }), replies: { ratePerSecond: 1000, burst: 50 } });
  assert.is(parsePcap(r.replies as Uint8Array).records.length, 50);
  assert.is(r.replyCounters?.rateLimited, 150);
});

test('without --replies nothing is answered and no replies capture is made', () => {
  const r = replay({ rules: SEED_RULES_TEXT, input: capture(LINKTYPE_RAW) });
  assert.is(r.replies, undefined);
  assert.is(r.summary.verdicts.local, 4);
});

test('the CLI writes --replies FILE, and tshark finds every answer\'s checksums good', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmvs-replies-'));
  try {
    writeFileSync(join(dir, 'lvs.rules'), SEED_RULES_TEXT);
    writeFileSync(join(dir, 'in.pcap'), capture(LINKTYPE_ETHERNET));
    const cli = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'host', 'cli', 'main.ts');
    const run = spawnSync(process.execPath, ['--import', 'tsx', cli, 'replay', '--rules', join(dir, 'lvs.rules'), join(dir, 'in.pcap'), join(dir, 'out.pcap'), '--replies', join(dir, 'replies.pcap')], { encoding: 'utf8', timeout: 30_000 });
    assert.is(run.status, 0, run.stderr);
    assert.match(run.stdout, /tcp-reset 1, port-unreachable 1, echo-reply 1, protocol-unreachable 1/);
    if (!TSHARK) {
      if (IN_CI) assert.unreachable('tshark is not installed; CI must install it (.ci/run)');
      return;
    }
    const t = spawnSync(TSHARK, ['-r', join(dir, 'replies.pcap'), '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE',
      '-T', 'fields', '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status', '-e', 'icmp.checksum.status'], { encoding: 'utf8', timeout: 30_000 });
    assert.is(t.status, 0, t.stderr);
    const rows = t.stdout.trim().split('\n').map((l) => l.split('\t'));
    assert.is(rows.length, 4);
    // An ICMP error quotes an IP header: its fields list the outer and the quoted header.
    const good = (field: string) => field !== '' && field.split(',').every((v) => v === '1');
    for (const [ip, tcp, icmp] of rows) {
      assert.ok(good(ip), `ip ${ip}`);
      assert.ok(good(tcp) || good(icmp), `tcp ${tcp} icmp ${icmp}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
