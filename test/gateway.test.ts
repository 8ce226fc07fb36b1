// The gateway's loop over a FakeDevice (no root, no kernel): packets injected as if the
// kernel had routed them into the TUN come out of the device rewritten, answered or not at
// all; reloads apply differences; idle expiry runs with no traffic. The same loop runs over
// the TUN in test/gateway-e2e.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeDevice } from '../host/gateway/device.js';
import { Gateway } from '../host/gateway/gateway.js';
import { registerScheduler } from '../host/schedulers/index.js';
import { checksumsValid, decode, icmpPacket, ipv4Packet, tcpPacket, udpPacket } from './support/packets.js';
import { runCli } from './support/cli.js';
import { SEED_RULES_TEXT } from './support/seed.js';

const VIP = '202.103.106.5';
const CLIENT = '202.100.1.2';

async function started(rules = SEED_RULES_TEXT, headerLen = 0) {
  const device = new FakeDevice({ headerLen, batchSize: 16 });
  const gw = await Gateway.start({ rules, device });
  return { device, gw };
}

/** Waits until the device has written `n` packets in all (or fails after 2 s). */
async function written(device: FakeDevice, n: number): Promise<Uint8Array[]> {
  const until = Date.now() + 2000;
  while (device.written.length < n) {
    if (Date.now() > until) throw new Error(`only ${device.written.length} of ${n} packets written`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return device.written.slice(0, n);
}

/** Resolves when `fn` rejects with a message matching `re`; fails if it resolves. */
async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.match((err as Error).message, re);
    return;
  }
  assert.unreachable(`expected a rejection matching ${re}`);
}

const settle = () => new Promise((r) => setTimeout(r, 30));

test('a new connection is scheduled and rewritten both ways; checksums stay valid', async () => {
  const { device, gw } = await started();
  try {
    device.inject(tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, flags: 'S', seq: 1 }));
    const [syn] = await written(device, 1);
    const d = decode(syn);
    assert.equal(d.src, CLIENT);
    assert.ok(d.dst === '172.16.0.2' && d.dport === 80 || d.dst === '172.16.0.3' && d.dport === 8000, `${d.dst}:${d.dport}`);
    assert.equal(checksumsValid(syn), { ip: true, l4: true });
    device.inject(tcpPacket({ src: d.dst, dst: CLIENT, sport: d.dport as number, dport: 3456, flags: 'SA', seq: 9, ack: 2 }));
    const reply = decode((await written(device, 2))[1]);
    assert.equal([reply.src, reply.sport, reply.dst, reply.dport], [VIP, 80, CLIENT, 3456]);
    assert.equal(gw.engine.connections().length, 1);
  } finally {
    await gw.stop();
  }
});

test('300 new connections split 1:2 by wrr, in bursts larger than a batch', async () => {
  const { device, gw } = await started();
  try {
    for (let i = 0; i < 300; i++) device.inject(tcpPacket({ src: CLIENT, dst: VIP, sport: 10000 + i, dport: 80, flags: 'S' }));
    const out = await written(device, 300);
    const by = new Map<string, number>();
    for (const p of out) { const d = decode(p); by.set(d.dst, (by.get(d.dst) ?? 0) + 1); }
    assert.equal(by.get('172.16.0.2'), 100);
    assert.equal(by.get('172.16.0.3'), 200);
    assert.ok(gw.counters().batches >= 300 / 16, 'read in batches of at most the batch size');
  } finally {
    await gw.stop();
  }
});

test('packets to a VIP that nothing serves are answered as a host would answer them', async () => {
  const { device, gw } = await started();
  try {
    device.inject(tcpPacket({ src: CLIENT, dst: VIP, sport: 4000, dport: 81, flags: 'S', seq: 100 }));
    device.inject(udpPacket({ src: CLIENT, dst: VIP, sport: 4001, dport: 53, payload: 'q' }));
    device.inject(icmpPacket({ src: CLIENT, dst: VIP, type: 8, code: 0, rest: 0x12340001, body: new Uint8Array([1, 2, 3]) }));
    device.inject(ipv4Packet({ src: CLIENT, dst: VIP, protocol: 255, payload: new Uint8Array(8) }));
    const out = (await written(device, 4)).map(decode);
    assert.equal(out[0].protocol, 6);
    assert.equal([out[0].src, out[0].sport, out[0].dst, out[0].dport, out[0].flags], [VIP, 81, CLIENT, 4000, 'RA']);
    for (const p of out.slice(1)) assert.equal([p.protocol, p.src, p.dst], [1, VIP, CLIENT]);
    const icmpTypeCode = (p: ReturnType<typeof decode>) => [p.payload[0], p.payload[1]];
    assert.equal(icmpTypeCode(out[1]), [3, 3], 'UDP: port unreachable');
    assert.equal(icmpTypeCode(out[2]), [0, 0], 'echo reply');
    assert.equal(icmpTypeCode(out[3]), [3, 2], 'protocol unreachable');
    for (const p of device.written) assert.equal(checksumsValid(p).ip, true);
    const r = gw.counters().replies;
    assert.equal([r.tcpReset, r.portUnreachable, r.echoReply, r.protocolUnreachable], [1, 1, 1, 1]);
  } finally {
    await gw.stop();
  }
});

test('transit packets pass unchanged; IPv6 is never written back into the kernel', async () => {
  const { device, gw } = await started();
  try {
    const transit = udpPacket({ src: '198.18.5.1', dst: '198.18.5.2', sport: 1, dport: 2, payload: 'x' });
    const v6 = new Uint8Array(40);
    v6[0] = 0x60;
    device.inject(v6);
    device.inject(transit);
    const [out] = await written(device, 1);
    assert.equal([...out], [...transit]);
    await settle();
    assert.equal(device.written.length, 1);
    assert.equal(gw.counters().notIpv4, 1);
  } finally {
    await gw.stop();
  }
});

test('offload: the virtio_net_hdr goes back with the packet and the partial checksum is adjusted', async () => {
  const { device, gw } = await started(SEED_RULES_TEXT, 10);
  try {
    const pkt = tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 21, flags: 'S' });
    const hdr = new Uint8Array(10);
    hdr[0] = 1; // NEEDS_CSUM
    new DataView(hdr.buffer).setUint16(6, 20, true); // csum_start: the TCP header
    new DataView(hdr.buffer).setUint16(8, 16, true); // csum_offset: TCP's checksum field
    device.inject(new Uint8Array([...hdr, ...pkt]));
    const [out] = await written(device, 1);
    assert.equal([...out.subarray(0, 10)], [...hdr]);
    const d = decode(out.subarray(10));
    assert.equal([d.dst, d.dport], ['172.16.0.3', 21]);
    // A header the engine cannot handle (an unknown GSO type) is dropped and counted.
    hdr[1] = 0x33;
    device.inject(new Uint8Array([...hdr, ...pkt]));
    await settle();
    assert.equal(device.written.length, 1);
    assert.equal(gw.counters().badVnetHeader, 1);
  } finally {
    await gw.stop();
  }
});

test('reload applies the difference; a bad rules text changes nothing', async () => {
  const { device, gw } = await started();
  try {
    device.inject(tcpPacket({ src: CLIENT, dst: VIP, sport: 5000, dport: 21, flags: 'S' }));
    await written(device, 1);
    const before = gw.engine.save();
    await rejects(() => gw.reload('-A -t 202.103.106.5:80 -s nosuch\n'), /scheduler/i);
    assert.equal(gw.engine.save(), before);
    const next = SEED_RULES_TEXT.replace('172.16.0.3:8000 -m -w 2', '172.16.0.3:8000 -m -w 0')
      + '-a -t 202.103.106.5:80 -r 172.16.0.4:80 -m -w 1\n';
    const changes = await gw.reload(next);
    assert.equal(changes.map((c) => c.op).sort(), ['add-dest', 'edit-dest']);
    // The FTP connection made before the reload lives on.
    assert.equal(gw.engine.connections().length, 1);
    for (let i = 0; i < 20; i++) device.inject(tcpPacket({ src: CLIENT, dst: VIP, sport: 6000 + i, dport: 80, flags: 'S' }));
    const out = (await written(device, 21)).slice(1).map(decode);
    assert.ok(out.every((d) => d.dst !== '172.16.0.3'), 'weight 0 takes no new connections');
    assert.ok(out.some((d) => d.dst === '172.16.0.4'), 'the new real server takes connections');
    assert.equal((await gw.reload(next)).length, 0);
  } finally {
    await gw.stop();
  }
});

test('a scheduler that throws loses only its packet; forwarding goes on', async () => {
  registerScheduler('gw-throws', () => ({ destsChanged() {}, schedule() { throw new Error('plug-in bug'); } }));
  const { device, gw } = await started('-A -u 202.103.106.5:53 -s gw-throws\n-a -u 202.103.106.5:53 -r 172.16.0.2 -m\n-A -u 202.103.106.5:54 -s rr\n-a -u 202.103.106.5:54 -r 172.16.0.2 -m\n');
  const errors: Error[] = [];
  gw.on('error', (e) => errors.push(e));
  try {
    device.inject(udpPacket({ src: CLIENT, dst: VIP, sport: 1, dport: 53, payload: 'a' }));
    device.inject(udpPacket({ src: CLIENT, dst: VIP, sport: 1, dport: 54, payload: 'b' }));
    const [out] = await written(device, 1);
    assert.equal(decode(out).dport, 54);
    assert.ok(errors.length >= 1 && /plug-in bug/.test(errors[0].message));
  } finally {
    await gw.stop();
  }
});

test('idle expiry runs with no packets flowing', async () => {
  const { device, gw } = await started('-A -u 202.103.106.5:53 -s rr\n-a -u 202.103.106.5:53 -r 172.16.0.2 -m\n');
  try {
    gw.engine.setTimeouts({ udp: 1 });
    const expired: string[] = [];
    gw.engine.on('conn-expired', (c) => expired.push(c.why));
    device.inject(udpPacket({ src: CLIENT, dst: VIP, sport: 7, dport: 53, payload: 'a' }));
    await written(device, 1);
    assert.equal(gw.engine.counters().liveConns, 1);
    await new Promise((r) => setTimeout(r, 2300));
    assert.equal(expired, ['timeout']);
    assert.equal(gw.engine.counters().liveConns, 0);
  } finally {
    await gw.stop();
  }
});

test('stop() returns promptly while the loop waits, and twice is harmless', async () => {
  const { gw } = await started();
  const t0 = Date.now();
  await gw.stop();
  await gw.stop();
  assert.ok(Date.now() - t0 < 1000, `stop took ${Date.now() - t0} ms`);
});

test('start refuses bad rules with the line at fault and opens nothing', async () => {
  const device = new FakeDevice();
  await rejects(() => Gateway.start({ rules: '-A -t 202.103.106.5:80 -s wrr\n-a -t 1.2.3:80 -r 172.16.0.2 -m\n', device }), /line 2/);
  await rejects(() => Gateway.start({ device } as never), /exactly one of rulesFile or rules/);
});

test('napiThread: false over a FakeDevice (no TUN), even asked for; a bad value is refused before anything starts; the CLI refuses both flags', async () => {
  const gw = await Gateway.start({ rules: SEED_RULES_TEXT, device: new FakeDevice(), napiThread: true });
  try {
    assert.is(gw.counters().napiThread, false, 'only a TUN has NAPI');
  } finally {
    await gw.stop();
  }
  try {
    await Gateway.start({ rules: SEED_RULES_TEXT, device: new FakeDevice(), napiThread: 1 as unknown as boolean });
    assert.unreachable('napiThread 1 accepted');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'WASMVS_BAD_OPTION');
    assert.match((err as Error).message, /napiThread must be true or false, got 1/);
  }
  const both = runCli(['gateway', '--rules', '/nonexistent/lvs.rules', '--napi-thread', '--no-napi-thread']);
  assert.is(both.status, 2);
  assert.match(both.stderr, /--napi-thread and --no-napi-thread exclude each other/);
});

test.run();
