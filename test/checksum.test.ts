// Checksums (assembly/checksum.ts) against independent oracles:
//   - every forwarded packet's incrementally adjusted IP and TCP/UDP checksums (RFC 1624) must
//     be valid by full recompute and equal the packet kit's RFC 1071 value;
//   - the WASM full-checksum export against a naive JS sum at odd offsets and lengths;
//   - partial checksums (virtio_net_hdr NEEDS_CSUM / CHECKSUM_PARTIAL): the field holds the
//     pseudo-header sum, which NAT must move to the new addresses without complementing and
//     without the ports.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { instantiate, wasmModule } from '../host/engine/abi.js';
import { Engine } from '../host/engine/engine.js';
import type { ServiceSpec } from '../host/ipvsadm/rules.js';
import {
  CLIENT, RS3, VIP, addrBytes, naiveSum, prng, randBytes, randInt, seedEngine,
} from './support/dataplane.js';
import {
  IPPROTO_TCP, IPPROTO_UDP, checksumsValid, decode, hex, ipChecksum, l4Checksum, tcpPacket,
  udpPacket,
} from './support/packets.js';

const T0 = 9_000_000;

function get16(b: Uint8Array, at: number): number {
  return b[at] * 256 + b[at + 1];
}

function put16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >> 8;
  b[at + 1] = v & 0xff;
}

function l4Offset(p: Uint8Array): number {
  return (p[0] & 0x0f) * 4;
}

function l4ChecksumField(p: Uint8Array): number {
  return l4Offset(p) + (p[9] === IPPROTO_TCP ? 16 : 6);
}

/**
 * The oracle: full recompute validates, and the fields equal the kit's values (TCP may carry
 * 0x0000 or 0xffff for a zero sum, both valid on the wire; UDP must use 0xffff, RFC 768).
 */
function assertChecksums(p: Uint8Array, what: string): void {
  assert.equal(checksumsValid(p), { ip: true, l4: true }, `${what}: full recompute`);
  assert.is(get16(p, 10), ipChecksum(p), `${what}: IP checksum`);
  const got = get16(p, l4ChecksumField(p));
  const want = l4Checksum(p);
  if (p[9] === IPPROTO_TCP && (want === 0 || want === 0xffff)) assert.ok(got === 0 || got === 0xffff, `${what}: TCP checksum ${got}`);
  else assert.is(got, want, `${what}: L4 checksum`);
}

function dotted(rand: () => number): string {
  return [randInt(rand, 1, 223), randInt(rand, 0, 255), randInt(rand, 0, 255), randInt(rand, 1, 254)].join('.');
}

// ---- incremental vs full, on generated fixtures -----------------------------------------

interface Flow {
  protocol: 'tcp' | 'udp';
  caddr: string; cport: number;
  vaddr: string; vport: number;
  daddr: string; dport: number;
  payloadLen: number;
  ipOptions?: Uint8Array;
}

// Made by a seeded PRNG (fixed seed, so the same every run): every payload length 0..41 (odd
// and even), TCP and UDP, without and with IP options (4..40 bytes), random addresses and
// ports; one service per flow, so each flow's VIP, port and real server are its own.
function flows(): Flow[] {
  const rand = prng(0xc0ffee);
  const used = new Set<string>();
  const fresh = () => {
    for (;;) {
      const a = dotted(rand);
      if (!used.has(a)) { used.add(a); return a; }
    }
  };
  const out: Flow[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    for (const withOptions of [false, true]) {
      for (let payloadLen = 0; payloadLen <= 41; payloadLen++) {
        out.push({
          protocol,
          caddr: fresh(), cport: randInt(rand, 1, 65535),
          vaddr: fresh(), vport: randInt(rand, 1, 65535),
          daddr: fresh(), dport: randInt(rand, 1, 65535),
          payloadLen,
          ipOptions: withOptions ? Uint8Array.from({ length: 4 * randInt(rand, 1, 10) }, () => 1) : undefined, // NOPs
        });
      }
    }
  }
  return out;
}

test('every forwarded packet: incremental IP and L4 checksums equal a full recompute', () => {
  const rand = prng(0xfeed);
  const all = flows();
  const e = new Engine({ connCapacity: 1024, slotCount: 8, maxServices: 256 });
  for (const f of all) {
    const svc: ServiceSpec = { protocol: f.protocol, vaddr: f.vaddr, vport: f.vport, scheduler: 'rr' };
    e.addService(svc);
    e.addDest(svc, { daddr: f.daddr, dport: f.dport, weight: 1 });
  }
  let checked = 0;
  all.forEach((f, i) => {
    const fields = (src: string, sport: number, dst: string, dport: number, flags: string) => ({
      src, dst, sport, dport, flags, payload: randBytes(rand, f.payloadLen), options: f.ipOptions,
      ttl: randInt(rand, 1, 255), id: randInt(rand, 0, 0xffff), tos: randInt(rand, 0, 255),
      seq: randInt(rand, 0, 0xffffffff), ack: randInt(rand, 0, 0xffffffff), window: randInt(rand, 0, 0xffff),
    });
    const make = (o: ReturnType<typeof fields>) => (f.protocol === 'tcp' ? tcpPacket(o) : udpPacket(o));
    const what = `flow ${i} (${f.protocol}, ${f.payloadLen} bytes, ${f.ipOptions?.length ?? 0} option bytes)`;
    const req = fields(f.caddr, f.cport, f.vaddr, f.vport, 'S');
    const r1 = e.processPacket(make(req), T0 + i);
    assert.is(r1.verdict, 'forward', what);
    assertChecksums(r1.packet, `${what} request`);
    // The same fields with the real server's address and port, built from scratch by the kit.
    assert.is(hex(r1.packet), hex(make({ ...req, dst: f.daddr, dport: f.dport })), `${what} request bytes`);
    const rep = fields(f.daddr, f.dport, f.caddr, f.cport, 'SA');
    const r2 = e.processPacket(make(rep), T0 + i);
    assert.is(r2.verdict, 'forward', what);
    assertChecksums(r2.packet, `${what} reply`);
    assert.is(hex(r2.packet), hex(make({ ...rep, src: f.vaddr, sport: f.vport })), `${what} reply bytes`);
    checked += 2;
  });
  assert.is(checked, 336);
});

test('the generated fixtures cover odd and even lengths, both protocols, with and without options', () => {
  const all = flows();
  assert.is(all.length, 168);
  assert.ok(all.some((f) => f.payloadLen % 2 === 1 && f.ipOptions && f.protocol === 'udp'));
  assert.ok(all.some((f) => f.payloadLen === 0 && !f.ipOptions && f.protocol === 'tcp'));
});

/** `base` (even length) plus a word that makes the L4 sum of `build(payload)` exactly zero. */
function zeroSumPayload(base: Uint8Array, build: (payload: Uint8Array) => Uint8Array): Uint8Array {
  if (base.length % 2 !== 0) throw new Error('an odd base would put the adjusting word across two words');
  const probe = Uint8Array.from([...base, 0, 0]);
  const c = l4Checksum(build(probe));
  // With the word 0 the checksum is c (the kit shows a zero sum as 0xffff); adding c as a
  // word brings the one's-complement sum to 0xffff, i.e. a checksum of zero.
  const w = c === 0xffff ? 0 : c;
  return Uint8Array.from([...base, w >> 8, w & 0xff]);
}

test('UDP: a rewritten datagram whose checksum computes to zero is sent as 0xffff (RFC 768)', () => {
  const e = seedEngine();
  const dns: ServiceSpec = { protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr' };
  e.addService(dns);
  e.addDest(dns, { daddr: RS3, dport: 5353, weight: 1 });
  const opts = { src: CLIENT, dst: VIP, sport: 3456, dport: 53 };
  const payload = zeroSumPayload(Uint8Array.from([1, 2, 3, 4]), (p) => udpPacket({ ...opts, dst: RS3, dport: 5353, payload: p }));
  const expected = udpPacket({ ...opts, dst: RS3, dport: 5353, payload });
  assert.is(get16(expected, 26), 0xffff, 'fixture: the rewritten datagram sums to zero');
  const input = udpPacket({ ...opts, payload });
  assert.is.not(get16(input, 26), 0xffff);
  const r = e.processPacket(input, T0);
  assert.is(r.verdict, 'forward');
  assert.is(hex(r.packet), hex(expected));
});

test('UDP: a datagram arriving with checksum 0xffff (a zero sum) is adjusted, not taken for "none"', () => {
  const e = seedEngine();
  const dns: ServiceSpec = { protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr' };
  e.addService(dns);
  e.addDest(dns, { daddr: RS3, dport: 5353, weight: 1 });
  const opts = { src: CLIENT, dst: VIP, sport: 3456, dport: 53 };
  const payload = zeroSumPayload(Uint8Array.from([9, 8, 7, 6]), (p) => udpPacket({ ...opts, payload: p }));
  const input = udpPacket({ ...opts, payload });
  assert.is(get16(input, 26), 0xffff, 'fixture: the incoming datagram sums to zero');
  const r = e.processPacket(input, T0);
  assert.is(r.verdict, 'forward');
  assert.is(hex(r.packet), hex(udpPacket({ ...opts, dst: RS3, dport: 5353, payload })));
});

test('TCP: a rewritten segment whose checksum computes to zero stays valid', () => {
  const e = seedEngine();
  const opts = { src: CLIENT, dst: VIP, sport: 3456, dport: 80, flags: 'S' };
  // The seed's first :80 connection goes to 172.16.0.3:8000.
  const payload = zeroSumPayload(Uint8Array.from([5, 6]), (p) => tcpPacket({ ...opts, dst: RS3, dport: 8000, payload: p }));
  const r = e.processPacket(tcpPacket({ ...opts, payload }), T0);
  assert.is(r.verdict, 'forward');
  assert.is(decode(r.packet).dst, RS3);
  assertChecksums(r.packet, 'zero-sum TCP');
});

// ---- the WASM full checksum against a naive one ----------------------------------------------

test('WASM checksum(ptr, len) equals a naive sum at offsets 0..15 and lengths 0..300', () => {
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true });
  const wasm = instantiate(wasmModule(), memory, { schedule: () => -1 });
  const bytes = new Uint8Array(memory.buffer);
  const base = (wasm.controlBlock() + 4096 + 63) & ~63; // free memory: layout() was never called
  assert.ok(base + 16 + 300 + 64 < bytes.length);
  const rand = prng(0x5a5a);
  let calls = 0;
  for (let off = 0; off < 16; off++) {
    for (let len = 0; len <= 300; len++) {
      // Random bytes around the range too: reading one byte too many would change the sum.
      bytes.set(randBytes(rand, 16 + 300 + 64), base);
      const ptr = base + off;
      const want = 0xffff - naiveSum(bytes.subarray(ptr, ptr + len));
      const got = wasm.checksum(ptr, len);
      assert.ok(got >= 0 && got <= 0xffff, `off ${off} len ${len}: ${got} is not a 16-bit value`);
      // The export is field-ready: stored little-endian it gives the wire bytes.
      assert.equal([got & 0xff, got >> 8], [want >> 8, want & 0xff], `off ${off} len ${len}`);
      calls++;
    }
  }
  assert.is(calls, 16 * 301);
});

test('WASM checksum: all-zero and all-0xff inputs (the fold\'s edge cases)', () => {
  const memory = new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true });
  const wasm = instantiate(wasmModule(), memory, { schedule: () => -1 });
  const bytes = new Uint8Array(memory.buffer);
  const base = (wasm.controlBlock() + 4096 + 63) & ~63;
  for (const fill of [0x00, 0xff]) {
    for (const len of [0, 1, 2, 7, 8, 9, 64, 65, 4095, 65536]) {
      bytes.fill(fill, base, base + len);
      bytes.fill(0, base + len, base + len + 8);
      const want = 0xffff - naiveSum(bytes.subarray(base, base + len));
      const got = wasm.checksum(base, len);
      assert.equal([got & 0xff, got >> 8], [want >> 8, want & 0xff], `fill ${fill} len ${len}`);
    }
  }
});

// ---- partial checksums (CHECKSUM_PARTIAL) -----------------------------------------------

/** Folded, uncomplemented pseudo-header sum of an IPv4 packet (RFC 9293 3.1 / RFC 768). */
function pseudoSum(p: Uint8Array): number {
  const segLen = get16(p, 2) - l4Offset(p);
  return naiveSum(Uint8Array.from([...p.subarray(12, 20), 0, p[9], segLen >> 8, segLen & 0xff]));
}

/** As a sender with NEEDS_CSUM leaves it: the pseudo-header sum in the checksum field. */
function partial(p: Uint8Array): Uint8Array {
  const b = p.slice();
  put16(b, l4ChecksumField(b), pseudoSum(b));
  return b;
}

/** What the NIC does later: sum the segment from the L4 header on, field included. */
function complete(p: Uint8Array): Uint8Array {
  const b = p.slice();
  const l4 = l4Offset(b);
  put16(b, l4ChecksumField(b), 0xffff - naiveSum(b.subarray(l4, get16(b, 2))));
  return b;
}

test('partial checksums: the field moves to the new pseudo-header sum (ports excluded), IP header complete', () => {
  const e = seedEngine();
  const dns: ServiceSpec = { protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr' };
  e.addService(dns);
  e.addDest(dns, { daddr: RS3, dport: 5353, weight: 1 });
  const cases = [
    { what: 'TCP SYN in', p: tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, flags: 'S', payload: 'x' }), to: [RS3, 8000] },
    { what: 'TCP SYN+ACK out', p: tcpPacket({ src: RS3, dst: CLIENT, sport: 8000, dport: 3456, flags: 'SA', payload: 'odd' }), to: [VIP, 80] },
    { what: 'TCP data in', p: tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, flags: 'PA', payload: 'GET / HTTP/1.1\r\n' }), to: [RS3, 8000] },
    { what: 'UDP in', p: udpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 53, payload: 'query' }), to: [RS3, 5353] },
    { what: 'UDP out', p: udpPacket({ src: RS3, dst: CLIENT, sport: 5353, dport: 3456, payload: 'answer' }), to: [VIP, 53] },
  ] as const;
  cases.forEach((c, i) => {
    const input = partial(c.p);
    e.writeSlot(i, input, 0, true);
  });
  // A full-checksum packet in the same batch: the flag is per slot.
  const full = tcpPacket({ src: CLIENT, dst: VIP, sport: 3457, dport: 80, flags: 'S' });
  e.writeSlot(cases.length, full);
  e.process(0, cases.length + 1, T0);
  cases.forEach((c, i) => {
    assert.is(e.verdict(i), 'forward', c.what);
    const out = e.slot(i).slice(0, c.p.length);
    const d = decode(out);
    const [addr, port] = c.to;
    if (c.what.endsWith('in')) assert.equal([d.dst, d.dport], [addr, port], c.what);
    else assert.equal([d.src, d.sport], [addr, port], c.what);
    assert.is(get16(out, l4ChecksumField(out)), pseudoSum(out), `${c.what}: pseudo-header sum over the new addresses`);
    assert.is(checksumsValid(out).ip, true, `${c.what}: IP header checksum complete`);
    assert.is(get16(out, 10), ipChecksum(out), `${c.what}: IP header checksum value`);
    // Completed as the NIC would, the packet is valid and equals the kit's packet.
    const done = complete(out);
    assert.equal(checksumsValid(done), { ip: true, l4: true }, `${c.what}: completed`);
    const expectedBytes = c.what.endsWith('in')
      ? rewrite(c.p, 16, addr, 2, port)
      : rewrite(c.p, 12, addr, 0, port);
    assert.is(hex(done.subarray(0, 20)), hex(expectedBytes.subarray(0, 20)), `${c.what}: IP header`);
    assert.is(get16(done, l4ChecksumField(done)) % 0xffff, l4Checksum(expectedBytes) % 0xffff, `${c.what}: completed L4 checksum`);
  });
  const outFull = e.slot(cases.length).slice(0, full.length);
  assert.equal(checksumsValid(outFull), { ip: true, l4: true }, 'full-checksum slot in the same batch');
});

/** The kit's packet with one address and port replaced, checksums recomputed from scratch. */
function rewrite(p: Uint8Array, addrAt: number, addr: string | number, portAt: number, port: string | number): Uint8Array {
  const d = decode(p);
  const src = addrAt === 12 ? String(addr) : d.src;
  const dst = addrAt === 16 ? String(addr) : d.dst;
  const sport = portAt === 0 ? Number(port) : d.sport!;
  const dport = portAt === 2 ? Number(port) : d.dport!;
  const out = d.protocol === IPPROTO_UDP
    ? udpPacket({ src, dst, sport, dport, payload: d.payload })
    : tcpPacket({ src, dst, sport, dport, flags: d.flags!, seq: d.seq, ack: d.ack, window: d.window, payload: d.payload });
  assert.equal([...out.subarray(addrAt, addrAt + 4)], addrBytes(String(addr)));
  return out;
}

test.run();
