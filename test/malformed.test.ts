// Malformed, refused and foreign packets: one numbered fixture per drop reason a packet can
// trigger (host/abi.ts DROP_REASONS, assembly/layout.ts DROP_*), the pass reasons, and
// packets that look odd but must still be processed. Each fixture goes through a ring slot of
// a fresh engine; the verdict, the reason, the reason's counter (+1 exactly, nothing else
// moved) and the untouched bytes are checked, then the engine must still forward valid
// traffic. A seeded mutation fuzz ends the file.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DROP_REASONS, LOCAL_REASONS, PASS_REASONS } from '../host/engine/abi.js';
import { registerScheduler } from '../host/schedulers/index.js';
import { Engine, type Counters, type Verdict } from '../host/engine/engine.js';
import type { ServiceSpec } from '../host/ipvsadm/rules.js';
import {
  CLIENT, HTTP, RS2, RS3, VIP, changedOffsets, countersAddUp, naiveSum, prng, randBytes, randInt,
} from './support/dataplane.js';
import {
  checksumsValid, decode, ethernetFrame, fromHex, hex, icmpPacket, ipChecksum, IPPROTO_ICMP,
  IPPROTO_TCP, IPPROTO_UDP, ipv4Packet, quotePacket, tcpPacket, udpPacket,
} from './support/packets.js';

const T0 = 7_000_000;
const CAPACITY = 4;
const VIP2 = '202.103.106.6';

/**
 * The seed's services on an engine with room for 4 connections, plus: TCP VIP:8080 with no
 * real server, TCP VIP:8081 whose only real server has weight 0, UDP VIP:53, and TCP
 * 202.103.106.6:80 sharing 172.16.0.3:8000 with VIP:80 (for tuple clashes). One connection
 * is open: CLIENT:1 -> VIP:80 -> 172.16.0.3:8000 (wrr's first pick).
 */
function engine(options: { debug?: boolean; connCapacity?: number } = {}): Engine {
  const e = new Engine({ connCapacity: CAPACITY, slotCount: 8, ...options });
  const svc = (protocol: 'tcp' | 'udp', vaddr: string, vport: number): ServiceSpec => ({ protocol, vaddr, vport, scheduler: 'wrr' });
  e.addService(HTTP);
  e.addDest(HTTP, { daddr: RS2, dport: 80, weight: 1 });
  e.addDest(HTTP, { daddr: RS3, dport: 8000, weight: 2 });
  e.addService(svc('tcp', VIP, 8080));
  e.addService(svc('tcp', VIP, 8081));
  e.addDest(svc('tcp', VIP, 8081), { daddr: RS2, dport: 8081, weight: 0 });
  e.addService(svc('udp', VIP, 53));
  e.addDest(svc('udp', VIP, 53), { daddr: RS2, dport: 53, weight: 1 });
  e.addService(svc('tcp', VIP2, 80));
  e.addDest(svc('tcp', VIP2, 80), { daddr: RS3, dport: 8000, weight: 1 });
  const first = e.processPacket(syn(1), T0 - 1);
  if (first.verdict !== 'forward' || decode(first.packet).dst !== RS3) throw new Error('set-up connection not opened as expected');
  return e;
}

// A plug-in scheduler that fails: its packet is dropped as scheduler-error, nothing else lost.
registerScheduler('throws', () => ({
  destsChanged() {},
  schedule() { throw new Error('plug-in failure'); },
}));

function syn(sport: number, dport = 80, dst = VIP): Uint8Array {
  return tcpPacket({ src: CLIENT, dst, sport, dport, flags: 'S', seq: 1 });
}

/** An ICMP error from `src` to `dst` quoting the IP header and `l4Bytes` of `pkt`. */
const icmpError = (src: string, dst: string, type: number, pkt: Uint8Array, l4Bytes: number): Uint8Array =>
  icmpPacket({ src, dst, type, body: quotePacket(pkt, l4Bytes) });

/** A copy with `edit` applied and the IPv4 header checksum recomputed (by the kit). */
function edited(p: Uint8Array, edit: (b: Uint8Array) => void, fixIpChecksum = true): Uint8Array {
  const b = p.slice();
  edit(b);
  if (fixIpChecksum) {
    b[10] = 0;
    b[11] = 0;
    const c = ipChecksum(b);
    b[10] = c >> 8;
    b[11] = c & 0xff;
  }
  return b;
}

function set16(b: Uint8Array, at: number, v: number): void {
  b[at] = v >> 8;
  b[at + 1] = v & 0xff;
}

interface Fixture {
  description: string;
  input: Uint8Array;
  /** Slot length, when not input.length. */
  length?: number;
  l3Offset?: number;
  /** Run before the fixture (time T0). */
  prepare?: (e: Engine) => void;
  verdict: Verdict;
  reason?: string;
  /** Expected bytes out; for drops and passes, the input unchanged. */
  expected?: Uint8Array;
}

const GOOD_TCP = tcpPacket({ src: CLIENT, dst: VIP, sport: 2000, dport: 80, flags: 'S', seq: 9, payload: 'abc' });
const GOOD_UDP = udpPacket({ src: CLIENT, dst: VIP, sport: 2000, dport: 53, payload: 'query' });
const BIG_UDP = udpPacket({ src: CLIENT, dst: VIP, sport: 2001, dport: 53, payload: 'x'.repeat(100) });
const IPV6 = fromHex(`
  6000 0000 0000 3b40
  20010db8000000000000000000000001
  20010db8000000000000000000000002
`); // version 6, payload length 0, next header 59 (none), hop limit 64

// Made by hand from kit packets: each breaks exactly one rule of the validation order in
// assembly/nat.ts handle() (slot, IPv4 header, fragment, L4 header, lookup), the IP header
// checksum recomputed wherever it is still defined, so only the named defect can fire.
const FIXTURES: Fixture[] = [
  { description: '1. bad-slot: l3Offset equal to the slot length', input: GOOD_TCP, l3Offset: GOOD_TCP.length, verdict: 'drop', reason: 'bad-slot' },
  { description: '2. bad-slot: l3Offset beyond the slot length', input: GOOD_TCP, length: 10, l3Offset: 14, verdict: 'drop', reason: 'bad-slot' },
  { description: '3. bad-slot: empty slot', input: GOOD_TCP, length: 0, verdict: 'drop', reason: 'bad-slot' },
  { description: '4. short-packet: 19 bytes of IPv4 header', input: GOOD_TCP, length: 19, verdict: 'drop', reason: 'short-packet' },
  { description: '5. short-packet: one byte 0x45 after a 14-byte link header', input: ethernetFrame(GOOD_TCP), length: 15, l3Offset: 14, verdict: 'drop', reason: 'short-packet' },
  { description: '6. bad-version: version 5', input: edited(GOOD_TCP, (b) => { b[0] = 0x55; }), verdict: 'drop', reason: 'bad-version' },
  { description: '7. bad-version: version 0', input: edited(GOOD_TCP, (b) => { b[0] = 0x05; }), verdict: 'drop', reason: 'bad-version' },
  { description: '8. bad-ihl: IHL 4', input: edited(GOOD_TCP, (b) => { b[0] = 0x44; }, false), verdict: 'drop', reason: 'bad-ihl' },
  { description: '9. bad-ihl: IHL 0', input: edited(GOOD_TCP, (b) => { b[0] = 0x40; }, false), verdict: 'drop', reason: 'bad-ihl' },
  { description: '10. truncated: IHL 15 (60-byte header) in a 43-byte packet', input: edited(GOOD_TCP, (b) => { b[0] = 0x4f; }, false), verdict: 'drop', reason: 'truncated' },
  { description: '11. truncated: total length 44, 43 bytes present', input: edited(GOOD_TCP, (b) => set16(b, 2, GOOD_TCP.length + 1)), verdict: 'drop', reason: 'truncated' },
  { description: '12. truncated: total length right, the slot cut short', input: GOOD_TCP, length: 30, verdict: 'drop', reason: 'truncated' },
  { description: '13. bad-total-length: total length 19 < header 20', input: edited(GOOD_TCP, (b) => set16(b, 2, 19)), verdict: 'drop', reason: 'bad-total-length' },
  { description: '14. bad-total-length: total length 0', input: edited(GOOD_TCP, (b) => set16(b, 2, 0)), verdict: 'drop', reason: 'bad-total-length' },
  { description: '15. bad-ip-checksum: one checksum bit flipped', input: edited(GOOD_TCP, (b) => { b[11] ^= 0x01; }, false), verdict: 'drop', reason: 'bad-ip-checksum' },
  { description: '16. bad-ip-checksum: TTL decremented, checksum left alone', input: edited(GOOD_TCP, (b) => { b[8]--; }, false), verdict: 'drop', reason: 'bad-ip-checksum' },
  {
    description: '17. fragment: a middle fragment (offset 185 x 8, MF) for VIP:80',
    input: ipv4Packet({ src: CLIENT, dst: VIP, protocol: IPPROTO_TCP, fragOffset: 185, mf: true, payload: Uint8Array.from({ length: 64 }, (_, i) => i) }),
    verdict: 'drop', reason: 'fragment',
  },
  {
    description: '18. fragment: a last fragment (offset 1, no MF) of UDP for VIP:53',
    input: ipv4Packet({ src: CLIENT, dst: VIP, protocol: IPPROTO_UDP, fragOffset: 1, payload: Uint8Array.from({ length: 9 }, (_, i) => i) }),
    verdict: 'drop', reason: 'fragment',
  },
  { description: '19. tcp-truncated: 19 bytes of TCP header', input: ipv4Packet({ src: CLIENT, dst: VIP, protocol: IPPROTO_TCP, payload: GOOD_TCP.subarray(20, 39) }), verdict: 'drop', reason: 'tcp-truncated' },
  { description: '20. tcp-truncated: no TCP bytes at all', input: ipv4Packet({ src: CLIENT, dst: VIP, protocol: IPPROTO_TCP, payload: new Uint8Array(0) }), verdict: 'drop', reason: 'tcp-truncated' },
  { description: '21. bad-tcp-doff: data offset 4 (16 bytes)', input: edited(GOOD_TCP, (b) => { b[32] = 0x40; }), verdict: 'drop', reason: 'bad-tcp-doff' },
  { description: '22. bad-tcp-doff: data offset 0', input: edited(GOOD_TCP, (b) => { b[32] = 0x00; }), verdict: 'drop', reason: 'bad-tcp-doff' },
  { description: '23. bad-tcp-doff: data offset 15 (60 bytes) in a 23-byte segment', input: edited(GOOD_TCP, (b) => { b[32] = 0xf0; }), verdict: 'drop', reason: 'bad-tcp-doff' },
  { description: '24. udp-truncated: 7 bytes of UDP header', input: ipv4Packet({ src: CLIENT, dst: VIP, protocol: IPPROTO_UDP, payload: GOOD_UDP.subarray(20, 27) }), verdict: 'drop', reason: 'udp-truncated' },
  { description: '25. bad-udp-length: length field 7', input: edited(GOOD_UDP, (b) => set16(b, 24, 7)), verdict: 'drop', reason: 'bad-udp-length' },
  { description: '26. bad-udp-length: length field one beyond the datagram', input: edited(GOOD_UDP, (b) => set16(b, 24, GOOD_UDP.length - 20 + 1)), verdict: 'drop', reason: 'bad-udp-length' },
  { description: '27. local no-service: SYN to VIP:22', input: syn(3000, 22), verdict: 'local', reason: 'no-service' },
  { description: '28. local no-service: UDP to VIP:80 (the service is TCP)', input: udpPacket({ src: CLIENT, dst: VIP, sport: 3000, dport: 80, payload: 'u' }), verdict: 'local', reason: 'no-service' },
  { description: '28b. local no-service: an ACK to VIP:22 (a host answers RST to it too)', input: tcpPacket({ src: CLIENT, dst: VIP, sport: 3000, dport: 22, flags: 'A' }), verdict: 'local', reason: 'no-service' },
  {
    description: '28c. scheduler-error: the service\'s scheduler throws for a SYN',
    prepare: (e) => e.editService({ protocol: 'tcp', vaddr: VIP, vport: 8080, scheduler: 'throws' }),
    input: syn(3000, 8080), verdict: 'drop', reason: 'scheduler-error',
  },
  { description: '29. no-conn: ACK to VIP:80 with no connection', input: tcpPacket({ src: CLIENT, dst: VIP, sport: 3000, dport: 80, flags: 'A' }), verdict: 'drop', reason: 'no-conn' },
  { description: '30. no-dest: SYN to a service with no real servers', input: syn(3000, 8080), verdict: 'drop', reason: 'no-dest' },
  { description: '31. no-dest: SYN to a service whose real servers all have weight 0', input: syn(3000, 8081), verdict: 'drop', reason: 'no-dest' },
  {
    description: '32. table-full: the 5th connection of a 4-connection table',
    prepare: (e) => { for (let i = 2; i <= CAPACITY; i++) e.processPacket(syn(i), T0); },
    input: syn(3000), verdict: 'drop', reason: 'table-full',
  },
  {
    // Same client endpoint, another VIP, the same real server: replies 172.16.0.3:8000 ->
    // CLIENT:1 could not tell the two connections apart.
    description: '33. tuple-clash: CLIENT:1 -> 202.103.106.6:80 -> 172.16.0.3:8000 while CLIENT:1 -> VIP:80 has that reply tuple',
    input: syn(1, 80, VIP2), verdict: 'drop', reason: 'tuple-clash',
  },
  {
    // expire_nodest_conn on: CLIENT:7 -> VIP:80 is open on 172.16.0.3:8000, which is then
    // deleted; the connection's next client packet expires it and is dropped.
    description: '33b. dest-gone: data for a connection whose real server was deleted (expire_nodest_conn)',
    prepare: (e) => {
      e.setExpireNodestConn(true);
      const first = e.processPacket(syn(7), T0);
      const to = decode(first.packet);
      e.delDest({ protocol: 'tcp', vaddr: VIP, vport: 80 }, { daddr: to.dst, dport: to.dport! });
    },
    input: tcpPacket({ src: CLIENT, dst: VIP, sport: 7, dport: 80, flags: 'A' }), verdict: 'drop', reason: 'dest-gone',
  },
  {
    description: '33c. icmp-truncated: time exceeded quoting only 4 bytes after the IP header (no ports)',
    input: icmpError('198.51.100.1', CLIENT, 11, tcpPacket({ src: CLIENT, dst: RS3, sport: 1, dport: 8000, flags: 'A' }), 4),
    verdict: 'drop', reason: 'icmp-truncated',
  },
  {
    description: '33d. bad-icmp-checksum: a quote byte flipped after the ICMP checksum was made',
    input: edited(icmpError('198.51.100.1', CLIENT, 11, tcpPacket({ src: CLIENT, dst: RS3, sport: 1, dport: 8000, flags: 'A' }), 8), (b) => { b[20 + 8 + 25] ^= 1; }),
    verdict: 'drop', reason: 'bad-icmp-checksum',
  },
  {
    description: '33e. icmp-no-conn: unreachable about VIP:80 -> a client with no connection',
    input: icmpError('198.51.100.1', VIP, 3, tcpPacket({ src: VIP, dst: '198.51.100.99', sport: 80, dport: 1111, flags: 'A' }), 8),
    verdict: 'drop', reason: 'icmp-no-conn',
  },
  { description: '34. not-ipv4: an IPv6 packet', input: IPV6, verdict: 'pass', reason: 'not-ipv4' },
  { description: '35. not-ipv4: an IPv6 packet after an Ethernet header', input: ethernetFrame(IPV6), l3Offset: 14, verdict: 'pass', reason: 'not-ipv4' },
  { description: '36. local icmp: ICMP echo request to the VIP', input: ipv4Packet({ src: CLIENT, dst: VIP, protocol: IPPROTO_ICMP, payload: fromHex('0800f7fe00000001') }), verdict: 'local', reason: 'icmp' },
  {
    description: '36b. local icmp: an ICMP error to the VIP quoting ICMP (nothing to translate)',
    input: icmpError('198.51.100.1', VIP, 3, ipv4Packet({ src: VIP, dst: CLIENT, protocol: IPPROTO_ICMP, payload: fromHex('0000ffff00000001') }), 8),
    verdict: 'local', reason: 'icmp',
  },
  { description: '36c. protocol: ICMP echo request to another address passes', input: ipv4Packet({ src: CLIENT, dst: '198.18.0.1', protocol: IPPROTO_ICMP, payload: fromHex('0800f7fe00000001') }), verdict: 'pass', reason: 'protocol' },
  { description: '37. local protocol: SCTP (132) to the VIP', input: ipv4Packet({ src: CLIENT, dst: VIP, protocol: 132, payload: new Uint8Array(12) }), verdict: 'local', reason: 'protocol' },
  { description: '37b. protocol: SCTP (132) to another address passes', input: ipv4Packet({ src: CLIENT, dst: '198.18.0.1', protocol: 132, payload: new Uint8Array(12) }), verdict: 'pass', reason: 'protocol' },
  { description: '37c. fragment: a later fragment of SCTP to the VIP', input: ipv4Packet({ src: CLIENT, dst: VIP, protocol: 132, fragOffset: 3, payload: new Uint8Array(12) }), verdict: 'drop', reason: 'fragment' },
  { description: '38. no-match: TCP SYN to another address', input: syn(3000, 80, '198.18.0.1'), verdict: 'pass', reason: 'no-match' },
  { description: '39. no-match: UDP to another address', input: udpPacket({ src: CLIENT, dst: '198.18.0.1', sport: 3000, dport: 53, payload: 'q' }), verdict: 'pass', reason: 'no-match' },
  {
    description: '40. a first fragment (MF, offset 0) is still processed: TCP SYN to VIP:80',
    input: tcpPacket({ src: CLIENT, dst: VIP, sport: 3001, dport: 80, flags: 'S', mf: true, payload: 'first part' }),
    expected: tcpPacket({ src: CLIENT, dst: RS2, sport: 3001, dport: 80, flags: 'S', mf: true, payload: 'first part' }),
    verdict: 'forward',
  },
  {
    description: '41. a first UDP fragment whose UDP length covers the whole datagram is processed',
    input: edited(BIG_UDP.subarray(0, 20 + 8 + 24), (b) => { set16(b, 2, 52); set16(b, 6, 0x2000); }),
    verdict: 'forward',
  },
  {
    description: '42. link padding after the IP total length is allowed and left alone',
    input: Uint8Array.from([...GOOD_UDP, 0, 0, 0, 0, 0, 0]),
    expected: Uint8Array.from([...udpPacket({ src: CLIENT, dst: RS2, sport: 2000, dport: 53, payload: 'query' }), 0, 0, 0, 0, 0, 0]),
    verdict: 'forward',
  },
  {
    description: '43. bad-slot wins over anything in the bytes: l3Offset 14 of a 14-byte slot',
    input: ethernetFrame(GOOD_TCP), length: 14, l3Offset: 14, verdict: 'drop', reason: 'bad-slot',
  },
];

function snapshot(c: Counters): Record<string, number> {
  const out: Record<string, number> = { packets: c.packets, forwardIn: c.forwardIn, forwardOut: c.forwardOut, pass: c.pass, drop: c.drop, local: c.local, connsCreated: c.connsCreated };
  for (const [k, v] of Object.entries(c.drops)) out[`drop:${k}`] = v;
  for (const [k, v] of Object.entries(c.passes)) out[`pass:${k}`] = v;
  for (const [k, v] of Object.entries(c.locals)) out[`local:${k}`] = v;
  return out;
}

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(after)) if (after[k] !== before[k]) out[k] = after[k] - before[k];
  return out;
}

test('every drop, pass and local reason a packet can trigger has a fixture', () => {
  const covered = new Set(FIXTURES.filter((f) => f.verdict === 'drop').map((f) => f.reason));
  assert.equal(DROP_REASONS.filter((r) => r !== '' && !covered.has(r)), []);
  const passes = new Set(FIXTURES.filter((f) => f.verdict === 'pass').map((f) => f.reason));
  assert.equal(PASS_REASONS.filter((r) => r !== '' && !passes.has(r)), []);
  const locals = new Set(FIXTURES.filter((f) => f.verdict === 'local').map((f) => f.reason));
  assert.equal(LOCAL_REASONS.filter((r) => r !== '' && !locals.has(r)), []);
});

for (const f of FIXTURES) {
  test(f.description, () => {
    const e = engine();
    f.prepare?.(e);
    const length = f.length ?? f.input.length;
    e.slot(0).set(f.input);
    e.setSlot(0, length, f.l3Offset ?? 0);
    const before = snapshot(e.counters());
    const forwarded = e.process(0, 1, T0);
    assert.is(e.verdict(0), f.verdict);
    assert.is(e.reason(0), f.reason);
    assert.is(forwarded, f.verdict === 'forward' ? 1 : 0);
    const out = e.slot(0).subarray(0, f.input.length);
    const changes = delta(before, snapshot(e.counters()));
    if (f.verdict === 'forward') {
      assert.is(changes.packets, 1);
      assert.is(changes.forwardIn, 1);
      if (f.expected) assert.is(hex(out), hex(f.expected));
      else {
        const l3 = f.l3Offset ?? 0;
        assert.is(naiveSum(out.subarray(l3, l3 + 20)), 0xffff, 'IP header checksum still valid');
        assert.is(decode(out.subarray(l3)).dst, RS2);
      }
    } else {
      const kind = f.verdict;
      assert.equal(changes, { packets: 1, [kind]: 1, [`${kind}:${f.reason}`]: 1 });
      assert.is(hex(out), hex(f.expected ?? f.input), 'bytes untouched');
    }
    assert.is(countersAddUp(e.counters()), undefined);
    // Still working: the set-up connection forwards both ways, and (room left) a new one opens.
    const ack = e.processPacket(tcpPacket({ src: CLIENT, dst: VIP, sport: 1, dport: 80, flags: 'A' }), T0 + 1);
    assert.is(ack.verdict, 'forward', 'existing connection, client side');
    assert.is(decode(ack.packet).dst, RS3);
    const back = e.processPacket(tcpPacket({ src: RS3, dst: CLIENT, sport: 8000, dport: 1, flags: 'A' }), T0 + 1);
    assert.is(back.verdict, 'forward', 'existing connection, server side');
    if (e.counters().liveConns < CAPACITY) assert.is(e.processPacket(syn(4000), T0 + 2).verdict, 'forward', 'new connection');
  });
}

// ---- seeded mutation fuzz -----------------------------------------------------------------

/** Valid packets of every kind the engine meets, before mutation. */
function bases(): { bytes: Uint8Array; l3: number }[] {
  const out: { bytes: Uint8Array; l3: number }[] = [];
  for (const flags of ['S', 'A', 'PA', 'FA', 'R', 'SA']) {
    out.push({ bytes: tcpPacket({ src: CLIENT, dst: VIP, sport: 1, dport: 80, flags, payload: 'GET /' }), l3: 0 });
    out.push({ bytes: tcpPacket({ src: RS3, dst: CLIENT, sport: 8000, dport: 1, flags, payload: 'HTTP' }), l3: 0 });
  }
  out.push({ bytes: tcpPacket({ src: CLIENT, dst: VIP, sport: 5, dport: 80, flags: 'S', options: fromHex('01010100'), tcpOptions: fromHex('020405b4') }), l3: 0 });
  out.push({ bytes: udpPacket({ src: CLIENT, dst: VIP, sport: 7, dport: 53, payload: 'q?' }), l3: 0 });
  out.push({ bytes: udpPacket({ src: RS2, dst: CLIENT, sport: 53, dport: 7, payload: 'a!', zeroChecksum: true }), l3: 0 });
  out.push({ bytes: ipv4Packet({ src: CLIENT, dst: VIP, protocol: IPPROTO_ICMP, payload: fromHex('0800f7fe00000001') }), l3: 0 });
  out.push({ bytes: ethernetFrame(tcpPacket({ src: CLIENT, dst: VIP, sport: 9, dport: 80, flags: 'S' })), l3: 14 });
  out.push({ bytes: ethernetFrame(udpPacket({ src: CLIENT, dst: VIP, sport: 9, dport: 53, payload: 'x' }), { vlan: 7 }), l3: 18 });
  out.push({ bytes: IPV6, l3: 0 });
  return out;
}

function mutate(rand: () => number, base: { bytes: Uint8Array; l3: number }): { bytes: Uint8Array; l3: number } {
  let bytes: Uint8Array = base.bytes.slice();
  let l3 = base.l3;
  const kind = randInt(rand, 0, 5);
  if (kind === 0 || kind === 4) {
    // Flip a few bytes, mostly in the headers.
    for (let n = randInt(rand, 1, 4); n > 0; n--) bytes[randInt(rand, 0, Math.min(bytes.length - 1, l3 + 60))] = randInt(rand, 0, 255);
  }
  if (kind === 1 || kind === 4) bytes = bytes.slice(0, randInt(rand, 0, Math.min(100, bytes.length)));
  if (kind === 2) l3 = randInt(rand, 0, bytes.length + 4); // a wrong link-header length
  if (kind === 3) {
    // Random bytes of a random length 0..100, IPv4-looking half the time.
    bytes = randBytes(rand, randInt(rand, 0, 100));
    if (bytes.length > 0 && rand() < 0.5) bytes[0] = 0x45;
    l3 = 0;
  }
  if (kind === 5) {
    // A valid IPv4 header checksum over mutated transport bytes: reaches the L4 checks.
    const ihl = (bytes[l3] & 0x0f) * 4;
    for (let n = randInt(rand, 1, 3); n > 0; n--) {
      const at = l3 + ihl + randInt(rand, 0, 20);
      if (at < bytes.length) bytes[at] = randInt(rand, 0, 255);
    }
    if (rand() < 0.5) {
      const total = randInt(rand, 0, bytes.length - l3);
      bytes[l3 + 2] = total >> 8;
      bytes[l3 + 3] = total & 0xff;
      bytes[l3 + 10] = 0;
      bytes[l3 + 11] = 0;
      const c = 0xffff - naiveSum(bytes.subarray(l3, l3 + ihl));
      bytes[l3 + 10] = c >> 8;
      bytes[l3 + 11] = c & 0xff;
    }
  }
  return { bytes, l3 };
}

/** Offsets (from the slot start) that NAT may rewrite in a forwarded IPv4 packet at l3. */
function rewritable(bytes: Uint8Array, l3: number): Set<number> {
  const ihl = (bytes[l3] & 0x0f) * 4;
  const l4 = l3 + ihl;
  const l4ck = bytes[l3 + 9] === IPPROTO_TCP ? 16 : 6;
  return new Set([10, 11, 12, 13, 14, 15, 16, 17, 18, 19].map((o) => l3 + o).concat([0, 1, 2, 3, l4ck, l4ck + 1].map((o) => l4 + o)));
}

for (const build of ['release', 'debug'] as const) {
  test(`fuzz (${build} build): 4000 mutated packets through the ring, never a throw, every slot a verdict, counters add up`, () => {
    const rand = prng(build === 'release' ? 0x5eed : 0xdeb9);
    const e = engine({ debug: build === 'debug', connCapacity: 256 });
    const pool = bases();
    const verdicts: Record<string, number> = { forward: 0, pass: 0, drop: 0, local: 0 };
    const SLOTS = 8;
    let total = 1; // the set-up connection's SYN
    for (let batch = 0; batch < 500; batch++) {
      const inputs = Array.from({ length: SLOTS }, () => mutate(rand, pool[randInt(rand, 0, pool.length - 1)]));
      inputs.forEach((m, i) => {
        e.slot(i).fill(0xa5);
        e.slot(i).set(m.bytes);
        e.setSlot(i, m.bytes.length, m.l3);
      });
      e.process(0, SLOTS, T0 + batch * 50);
      total += SLOTS;
      inputs.forEach((m, i) => {
        const v = e.verdict(i);
        const where = `batch ${batch} slot ${i}: ${hex(m.bytes)} l3 ${m.l3}`;
        assert.ok(v === 'forward' || v === 'pass' || v === 'drop' || v === 'local', `${where}: verdict ${v}`);
        verdicts[v]++;
        if (v !== 'forward') assert.ok(e.reason(i) !== undefined, `${where}: ${v} without a reason`);
        const out = e.slot(i).subarray(0, m.bytes.length);
        const changed = changedOffsets(m.bytes, out);
        if (v === 'forward') {
          const ok = rewritable(m.bytes, m.l3);
          assert.equal(changed.filter((o) => !ok.has(o)), [], `${where}: bytes outside addresses/ports/checksums changed`);
          const ihl = (out[m.l3] & 0x0f) * 4;
          assert.is(naiveSum(out.subarray(m.l3, m.l3 + ihl)), 0xffff, `${where}: IP header checksum`);
        } else {
          assert.equal(changed, [], `${where}: a ${v} must not change bytes`);
        }
        assert.is(e.slot(i)[m.bytes.length], 0xa5, `${where}: byte after the packet`);
      });
    }
    const c = e.counters();
    assert.is(c.packets, total);
    assert.is(countersAddUp(c), undefined);
    assert.is(c.forwardIn + c.forwardOut, verdicts.forward + 1);
    assert.is(c.pass, verdicts.pass);
    assert.is(c.drop, verdicts.drop);
    assert.is(c.local, verdicts.local);
    // The mix reached every layer, not just the first check.
    for (const r of ['bad-slot', 'short-packet', 'bad-ip-checksum', 'truncated', 'no-conn']) assert.ok(c.drops[r as keyof typeof c.drops] > 0, `no ${r} drops`);
    assert.ok(verdicts.forward > 50, `only ${verdicts.forward} forwarded`);
    // And the engine still works.
    assert.is(e.processPacket(tcpPacket({ src: CLIENT, dst: VIP, sport: 1, dport: 80, flags: 'A' }), T0 + 500 * 50).verdict, 'forward');
    assert.equal(checksumsValid(e.processPacket(syn(60000), T0 + 500 * 50).packet), { ip: true, l4: true });
  });
}

test.run();
