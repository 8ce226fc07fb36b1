// `wasmvs replay` with the rest of IPVS in its rules file: a non-default scheduler with -b
// flags, persistence with a netmask, thresholds, one-packet scheduling; and an ICMP error in
// the capture translated like a live one, its checksums verified by tshark.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LINKTYPE_RAW, PcapWriter, readPcap } from '../host/replay/pcap.js';
import { decode, icmpPacket, quotePacket, tcpPacket, udpPacket } from './support/packets.js';
import { IN_CI, TSHARK } from './support/tools.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'build', 'host', 'cli', 'main.js');
const VIP = '198.18.0.10';

const RULES = `# every kind of option the engine takes
-A -t ${VIP}:80 -s sh -b sh-port
-a -t ${VIP}:80 -r 198.19.0.1:8080 -m -w 1 -x 100 -y 50
-a -t ${VIP}:80 -r 198.19.0.2:8080 -m -w 1
-A -t ${VIP}:443 -s wlc -p 600 -M 255.255.255.0
-a -t ${VIP}:443 -r 198.19.0.1:443 -m -w 3
-a -t ${VIP}:443 -r 198.19.0.2:443 -m -w 1
-A -u ${VIP}:53 -s rr -o
-a -u ${VIP}:53 -r 198.19.0.1:53 -m
-a -u ${VIP}:53 -r 198.19.0.2:53 -m
`;

/** "Fragmentation needed" with next-hop `mtu`, quoting 8 bytes after the IP header. */
const icmpFragNeeded = (src: string, dst: string, mtu: number, quoted: Uint8Array): Uint8Array =>
  icmpPacket({ src, dst, type: 3, code: 4, rest: mtu, body: quotePacket(quoted, 8) });

test('replay takes schedulers with flags, persistence, thresholds and -o, and translates ICMP errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmvs-replay-ipvs-'));
  try {
    const w = new PcapWriter({ linkType: LINKTYPE_RAW, nanosecond: false, snapLen: 65535 });
    let t = 1_700_000_000;
    const add = (p: Uint8Array) => w.add({ tsSec: t++, tsFrac: 0, data: p });
    // Two clients of one /24 on the persistent :443 service: the same server.
    add(tcpPacket({ src: '198.51.100.7', dst: VIP, sport: 40000, dport: 443, flags: 'S' }));
    add(tcpPacket({ src: '198.51.100.8', dst: VIP, sport: 40001, dport: 443, flags: 'S' }));
    // :80 with sh: a client and its reply, then the client's SYN-ACK's path MTU problem.
    add(tcpPacket({ src: '198.51.100.20', dst: VIP, sport: 41000, dport: 80, flags: 'S' }));
    // Two datagrams of one UDP flow with -o: both scheduled, rr alternates.
    add(udpPacket({ src: '198.51.100.30', dst: VIP, sport: 5353, dport: 53, payload: 'q1' }));
    add(udpPacket({ src: '198.51.100.30', dst: VIP, sport: 5353, dport: 53, payload: 'q2' }));
    writeFileSync(join(dir, 'rules'), RULES);
    writeFileSync(join(dir, 'in.pcap'), w.toBytes());
    // First pass: learn which server sh chose for :80, to build the server's reply and the
    // router's ICMP error about the director's SNATed copy of it.
    let run = spawnSync(process.execPath, [CLI, 'replay', '--rules', join(dir, 'rules'), join(dir, 'in.pcap'), join(dir, 'out.pcap'), '--json'], { encoding: 'utf8' });
    assert.is(run.status, 0, run.stderr);
    const first = [...readPcap(readFileSync(join(dir, 'out.pcap'))).records()].map((r) => decode(r.data));
    assert.is(first.length, 5);
    assert.is(first[0].dst, first[1].dst, 'one template for the /24');
    assert.is.not(first[3].dst, first[4].dst, '-o schedules every datagram');
    const server80 = first[2].dst;
    const reply = tcpPacket({ src: server80, dst: '198.51.100.20', sport: 8080, dport: 41000, flags: 'SA' });
    add(reply);
    const asSent = tcpPacket({ src: VIP, dst: '198.51.100.20', sport: 80, dport: 41000, flags: 'SA' });
    add(icmpFragNeeded('198.51.100.1', VIP, 1280, asSent));
    writeFileSync(join(dir, 'in.pcap'), w.toBytes());
    run = spawnSync(process.execPath, [CLI, 'replay', '--rules', join(dir, 'rules'), join(dir, 'in.pcap'), join(dir, 'out.pcap'), '--json', '--connections'], { encoding: 'utf8' });
    assert.is(run.status, 0, run.stderr);
    const summary = JSON.parse(run.stdout);
    assert.is(summary.verdicts.forward, 7);
    assert.is(summary.verdicts.drop, 0);
    const out = [...readPcap(readFileSync(join(dir, 'out.pcap'))).records()].map((r) => r.data);
    assert.is(decode(out[5]).src, VIP, 'the SYN-ACK leaves from the VIP');
    const icmp = decode(out[6]);
    assert.is(icmp.dst, server80, 'the ICMP error goes to the real server');
    // The quote is cut after 8 bytes of TCP, too short for decode(): read its source by hand.
    const q = out[6].subarray(28);
    const quotedSource = `${q[12]}.${q[13]}.${q[14]}.${q[15]}:${(q[20] << 8) | q[21]}`;
    assert.is(quotedSource, `${server80}:8080`, 'its quote names the server');
    const templates = summary.connectionTable.filter((c: { template?: boolean }) => c.template);
    assert.equal(templates.map((c: { caddr: string; vport: number }) => `${c.caddr}:${c.vport}`), ['198.51.100.0:443']);
    if (TSHARK) {
      const fields = spawnSync(TSHARK, ['-r', join(dir, 'out.pcap'), '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE',
        '-o', 'udp.check_checksum:TRUE', '-T', 'fields', '-e', 'ip.checksum.status', '-e', 'icmp.checksum.status', '-e', 'tcp.checksum.status', '-e', 'udp.checksum.status'], { encoding: 'utf8' });
      assert.is(fields.status, 0, fields.stderr);
      const rows = fields.stdout.trim().split('\n');
      assert.is(rows.length, 7);
      // Every IP header checksum good (1); the ICMP error's own checksum good; the quoted IP
      // header's status is listed too (tshark dissects the quote).
      for (const row of rows) for (const status of row.split(/[\t,]/).filter(Boolean)) assert.is(status, '1', row);
    } else if (IN_CI) {
      assert.unreachable('tshark is required under CI');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
