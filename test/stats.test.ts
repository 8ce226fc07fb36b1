// Statistics (host/stats.ts and Engine.statistics/zeroStats, `wasmvs replay --stats/--rate`):
// totals per real server and per service against hand-counted traffic, rates against runs of
// the kernel's estimator (net/netfilter/ipvs/ip_vs_est.c) worked out by hand or transcribed
// with BigInt below, zeroing as `ipvsadm -Z`, and the tables as ipvsadm prints them.
//
// Addresses are the seed's: VIP 202.103.106.5, real servers 172.16.0.2 and 172.16.0.3,
// client 202.100.1.2. Packets come from the test kit (test/support/packets.ts) and the traffic
// generator (test/support/traffic.ts), never from engine code; byte counts are IP total
// lengths, as IPVS counts skb->len at the IP layer. Engine time is a fake clock; the
// estimator steps on the multiples of 2000 ms of engine time, so T0 below is one of them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine, type ServiceKey } from '../host/engine/engine.js';
import { WasmvsError } from '../host/errors.js';
import { replay } from '../host/replay/replay.js';
import {
  EST_INTERVAL_MS, Estimator, type ServiceStats, type Stats, type StatsRates,
  type StatsTotals,
} from '../host/engine/stats.js';
import { CLIENT, prng, randInt, RS2, RS3, VIP } from './support/dataplane.js';
import { decode, tcpPacket, udpPacket } from './support/packets.js';
import { LINKTYPE_RAW, pcapFile, records, tcpSession, udpExchange, type TimedPacket } from './support/traffic.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'build', 'host', 'cli', 'main.js');

const DNS: ServiceKey = { protocol: 'udp', vaddr: VIP, vport: 53 };
const HTTP: ServiceKey = { protocol: 'tcp', vaddr: VIP, vport: 80 };
const T0 = 1_000_000; // a multiple of 2000: a step of the estimator's grid
const STEP = EST_INTERVAL_MS;

// rr over [RS3, RS2] (IPVS lists the newest first): new DNS connections go RS3, RS2, RS3, ...
const RULES = `-A -u ${VIP}:53 -s rr
-a -u ${VIP}:53 -r ${RS2}:53 -m -w 1
-a -u ${VIP}:53 -r ${RS3}:53 -m -w 1
-A -t ${VIP}:80 -s rr
-a -t ${VIP}:80 -r ${RS3}:8000 -m -w 1
`;

function engine(options: ConstructorParameters<typeof Engine>[0] = {}): Engine {
  const e = new Engine({ connCapacity: 4096, slotCount: 16, eventCapacity: 64, ...options });
  e.restore(RULES);
  return e;
}

const TOTAL_KEYS = ['conns', 'inPkts', 'outPkts', 'inBytes', 'outBytes'] as const;
const RATE_KEYS = ['cps', 'inPps', 'outPps', 'inBps', 'outBps'] as const;

function totalsOf(s: StatsTotals): StatsTotals {
  return { conns: s.conns, inPkts: s.inPkts, outPkts: s.outPkts, inBytes: s.inBytes, outBytes: s.outBytes };
}
function ratesOf(s: StatsRates): StatsRates {
  return { cps: s.cps, inPps: s.inPps, outPps: s.outPps, inBps: s.inBps, outBps: s.outBps };
}
function totals(conns: number, inPkts: number, outPkts: number, inBytes: number, outBytes: number): StatsTotals {
  return { conns, inPkts, outPkts, inBytes, outBytes };
}
const NO_RATES: StatsRates = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

function service(e: Engine, key: ServiceKey): ServiceStats {
  const s = e.statistics().find((x) => x.protocol === key.protocol && x.vaddr === key.vaddr && x.vport === key.vport);
  assert.ok(s, `no statistics for ${key.protocol} ${key.vaddr}:${key.vport}`);
  return s as ServiceStats;
}
function dest(s: ServiceStats, daddr: string, dport: number): Stats {
  const d = s.dests.find((x) => x.daddr === daddr && x.dport === dport);
  assert.ok(d, `no real server ${daddr}:${dport} in ${s.protocol} ${s.vaddr}:${s.vport}`);
  return d as Stats;
}

// ---- packets: sizes by hand (IP 20 + UDP 8 or TCP 20 without options + payload) -----------

const query = (cport: number, payload: number): Uint8Array =>
  udpPacket({ src: CLIENT, dst: VIP, sport: cport, dport: 53, payload: new Uint8Array(payload) });
const answer = (server: string, cport: number, payload: number): Uint8Array =>
  udpPacket({ src: server, dst: CLIENT, sport: 53, dport: cport, payload: new Uint8Array(payload) });

/** A packet that must be forwarded; returns where it went (destination of the rewrite). */
function forward(e: Engine, packet: Uint8Array, now: number): string {
  const r = e.processPacket(packet, now);
  assert.is(r.verdict, 'forward', `reason ${r.reason}`);
  const d = decode(r.packet);
  return r.reply ? `${d.src}:${d.sport}` : `${d.dst}:${d.dport}`;
}

/**
 * The hand-counted traffic of the totals tests, all at T0..T0+9 ms (no estimator step):
 *   DNS conn 1001 -> RS3:53   3 queries of 30 B payload (IP 58), 2 answers of 100 B (IP 128)
 *   DNS conn 1002 -> RS2:53   1 query of 10 B (IP 38), 1 answer of 500 B (IP 528)
 *   DNS conn 1003 -> RS3:53   2 queries of 0 B (IP 28), no answer
 *   HTTP conn 2001 -> RS3:8000  in: SYN, ACK, 100 B request, FIN, last ACK (40+40+140+40+40)
 *                               out: SYN+ACK, 1000 B response, FIN (40+1040+40)
 * Per real server:
 *   DNS RS3:53    conns 2, in 3+2 = 5, out 2, in bytes 3*58 + 2*28 = 230, out 2*128 = 256
 *   DNS RS2:53    conns 1, in 1, out 1, in bytes 38, out 528
 *   HTTP RS3:8000 conns 1, in 5, out 3, in bytes 300, out 1120
 * DNS service: conns 3, in 6, out 3, in bytes 268, out bytes 784.
 */
function handCountedTraffic(e: Engine): void {
  const t = T0;
  assert.is(forward(e, query(1001, 30), t), `${RS3}:53`);
  assert.is(forward(e, query(1002, 10), t + 1), `${RS2}:53`);
  assert.is(forward(e, query(1003, 0), t + 1), `${RS3}:53`);
  forward(e, answer(RS3, 1001, 100), t + 2);
  forward(e, query(1001, 30), t + 3);
  forward(e, answer(RS2, 1002, 500), t + 3);
  forward(e, query(1003, 0), t + 4);
  forward(e, answer(RS3, 1001, 100), t + 4);
  forward(e, query(1001, 30), t + 5);
  const c = { src: CLIENT, dst: VIP, sport: 2001, dport: 80 };
  const s = { src: RS3, dst: CLIENT, sport: 8000, dport: 2001 };
  assert.is(forward(e, tcpPacket({ ...c, flags: 'S', seq: 100 }), t + 5), `${RS3}:8000`);
  forward(e, tcpPacket({ ...s, flags: 'SA', seq: 900, ack: 101 }), t + 6);
  forward(e, tcpPacket({ ...c, flags: 'A', seq: 101, ack: 901 }), t + 6);
  forward(e, tcpPacket({ ...c, flags: 'PA', seq: 101, ack: 901, payload: new Uint8Array(100) }), t + 7);
  forward(e, tcpPacket({ ...s, flags: 'PA', seq: 901, ack: 201, payload: new Uint8Array(1000) }), t + 7);
  forward(e, tcpPacket({ ...c, flags: 'FA', seq: 201, ack: 1901 }), t + 8);
  forward(e, tcpPacket({ ...s, flags: 'FA', seq: 1901, ack: 202 }), t + 8);
  forward(e, tcpPacket({ ...c, flags: 'A', seq: 202, ack: 1902 }), t + 9);
}

// ---- the oracle for rates: ip_vs_est.c with BigInt ----------------------------------------

type Delta = StatsTotals;

/**
 * ip_vs_chain_estimation over the increases of successive 2-second steps, then
 * ip_vs_read_estimator, transcribed with BigInt: u64 rates, s64 averages, and BigInt's `>>`
 * floors as the kernel's arithmetic shift of a negative s64 does. Shares nothing with
 * host/stats.ts (which uses floating-point numbers and Math.floor).
 */
function kernelRates(steps: readonly Delta[]): StatsRates {
  let cps = 0n;
  let inpps = 0n;
  let outpps = 0n;
  let inbps = 0n;
  let outbps = 0n;
  for (const d of steps) {
    cps += ((BigInt(d.conns) << 9n) - cps) >> 2n;
    inpps += ((BigInt(d.inPkts) << 9n) - inpps) >> 2n;
    outpps += ((BigInt(d.outPkts) << 9n) - outpps) >> 2n;
    inbps += ((BigInt(d.inBytes) << 4n) - inbps) >> 2n;
    outbps += ((BigInt(d.outBytes) << 4n) - outbps) >> 2n;
  }
  return {
    cps: Number((cps + 0x1ffn) >> 10n),
    inPps: Number((inpps + 0x1ffn) >> 10n),
    outPps: Number((outpps + 0x1ffn) >> 10n),
    inBps: Number((inbps + 0xfn) >> 5n),
    outBps: Number((outbps + 0xfn) >> 5n),
  };
}

// ---- the estimator ------------------------------------------------------------------------

// A steady 100 packets/s in and 1000 bytes/s out: every step sees 200 more packets and 2000
// more bytes. Packets: rate = 200 << 9 = 102400 (100 * 2^10); avg += (rate - avg) >> 2, so
// after k steps avg = 102400 * (1 - (3/4)^k) while 4^k divides 102400 (= 2^12 * 25, k <= 6);
// read (avg + 511) >> 10. Bytes: rate = 2000 << 4 = 32000 (1000 * 2^5); read (avg + 15) >> 5,
// and from k = 5 on the shift floors: 21875 + (10125 >> 2) = 21875 + 2531 = 24406.
const STEADY: Array<{ k: number; inpps: number; inPps: number; outbps: number; outBps: number }> = [
  { k: 1, inpps: 25600, inPps: 25, outbps: 8000, outBps: 250 }, //  25600 + 511 = 26111 -> 25
  { k: 2, inpps: 44800, inPps: 44, outbps: 14000, outBps: 437 }, // 25600 + (76800 >> 2)
  { k: 3, inpps: 59200, inPps: 58, outbps: 18500, outBps: 578 }, // 44800 + 14400
  { k: 4, inpps: 70000, inPps: 68, outbps: 21875, outBps: 684 }, // 59200 + 10800
  { k: 5, inpps: 78100, inPps: 76, outbps: 24406, outBps: 763 }, // 70000 + 8100
  { k: 6, inpps: 84175, inPps: 82, outbps: 26304, outBps: 822 }, // 78100 + 6075; 24406 + (7594 >> 2) = 24406 + 1898
];

test('Estimator: a steady 100 packets/s in, 1000 bytes/s out, step by step as ip_vs_est.c', () => {
  const est = new Estimator(STEP);
  for (const s of STEADY) {
    est.update(s.k * STEP, totals(0, 200 * s.k, 0, 0, 2000 * s.k));
    assert.is(est.inpps, s.inpps, `scaled InPPS after ${s.k} steps`);
    assert.is(est.outbps, s.outbps, `scaled OutBPS after ${s.k} steps`);
    assert.equal(est.rates(), { ...NO_RATES, inPps: s.inPps, outBps: s.outBps }, `rates after ${s.k} steps`);
  }
});

test('Estimator: a steady rate converges to the exact figure and stays there', () => {
  // avg stops growing once (102400 - avg) >> 2 is 0, i.e. within 3 below 102400; read: 100.
  const est = new Estimator(STEP);
  for (let k = 1; k <= 80; k++) est.update(k * STEP, totals(50 * k, 200 * k, 200 * k, 2000 * k, 2000 * k));
  assert.ok(est.inpps > 102400 - 4 && est.inpps <= 102400, `scaled ${est.inpps}`);
  assert.equal(est.rates(), { cps: 25, inPps: 100, outPps: 100, inBps: 1000, outBps: 1000 });
});

test('Estimator: when traffic stops the averages decay, flooring like an arithmetic shift', () => {
  const est = new Estimator(STEP);
  for (let k = 1; k <= 4; k++) est.update(k * STEP, totals(0, 200 * k, 0, 0, 0));
  assert.is(est.inpps, 70000);
  // Rate 0: avg += (0 - avg) >> 2. 70000 - 17500 = 52500; 52500 - 13125 = 39375;
  // 39375 + (-39375 >> 2) = 39375 - 9844 = 29531 (the shift floors -9843.75 to -9844).
  const idle = totals(0, 800, 0, 0, 0);
  for (const [k, avg, read] of [[5, 52500, 51], [6, 39375, 38], [7, 29531, 29]]) {
    est.update(k * STEP, idle);
    assert.is(est.inpps, avg, `after ${k} steps`);
    assert.is(est.rates().inPps, read);
  }
});

test('Estimator: nothing happens between steps, and a gap runs the missed steps as the kernel timer would', () => {
  const often = new Estimator(STEP);
  const seldom = new Estimator(STEP);
  // 300 packets by t = 2000: both step once, however often fed before.
  for (const t of [0, 500, 1999]) often.update(t, totals(1, 100, 0, 0, 0));
  assert.equal([often.inpps, often.due], [0, STEP], 'no step before 2000');
  often.update(STEP, totals(3, 300, 0, 0, 0));
  seldom.update(STEP + 1999, totals(3, 300, 0, 0, 0));
  assert.equal([often.inpps, seldom.inpps], [38400, 38400]); // (300 << 9) >> 2
  // Then 40 more packets and silence until 9000: steps at 4000 (sees 40), 6000, 8000 (idle).
  for (const t of [4000, 6000, 8000]) often.update(t, totals(3, 340, 0, 0, 0));
  seldom.update(9000, totals(3, 340, 0, 0, 0));
  assert.equal(seldom, often);
  assert.is(seldom.due, 10000);
  // 38400 + ((40 << 9) - 38400 >> 2) = 38400 - 4480 = 33920; then 25440; then 19080.
  assert.is(seldom.inpps, 19080);
});

test('Estimator: a gap of a year ends at zero, on the grid, in bounded work', () => {
  const est = new Estimator(STEP);
  est.update(STEP, totals(10 ** 6, 10 ** 9, 10 ** 9, 2 ** 45, 2 ** 45));
  assert.ok(est.inbps > 0);
  const year = 365 * 86_400_000;
  const start = performance.now();
  est.update(year + 1234, totals(10 ** 6, 10 ** 9, 10 ** 9, 2 ** 45, 2 ** 45));
  assert.ok(performance.now() - start < 50, 'a year of idle steps must not be walked one by one');
  assert.equal(est.rates(), NO_RATES);
  assert.equal([est.cps, est.inpps, est.outpps, est.inbps, est.outbps], [0, 0, 0, 0, 0]);
  assert.is(est.due, year + STEP); // the next multiple of 2000 after year + 1234
});

test('Estimator: zero() clears the rates and takes the totals given as the reference', () => {
  const est = new Estimator(STEP);
  est.update(STEP, totals(10, 200, 200, 20000, 20000));
  assert.ok(est.rates().inPps > 0);
  est.zero(totals(0, 0, 0, 0, 0)); // as after zeroing the counters
  assert.equal(est.rates(), NO_RATES);
  est.update(2 * STEP, totals(1, 20, 0, 0, 0)); // only what came after the zeroing
  // cps: (1 << 9) >> 2 = 128, read (128 + 511) >> 10 = 0; in: (20 << 9) >> 2 = 2560, read 3071 >> 10 = 2.
  assert.equal(est.rates(), { ...NO_RATES, cps: 0, inPps: 2 });
});

test('Estimator: a counter found below its reference was reset and counts from zero', () => {
  const est = new Estimator(STEP);
  est.update(STEP, totals(0, 1000, 0, 0, 0));
  est.update(2 * STEP, totals(0, 40, 0, 0, 0)); // reset, then 40: the increase is 40, not -960
  // 1000 << 9 >> 2 = 128000; 128000 + ((40 << 9) - 128000 >> 2) = 128000 - 26880 = 101120.
  assert.is(est.inpps, 101120);
});

test('Estimator: matches the BigInt transcription of ip_vs_est.c over random traffic, large counts included', () => {
  const rand = prng(0x57a75);
  const est = new Estimator(STEP);
  const deltas: Delta[] = [];
  const sum = totals(0, 0, 0, 0, 0);
  for (let k = 1; k <= 400; k++) {
    // Bursts, silences and 2^40-byte steps (~550 GB/s for 2 s): the averages stay exact.
    const quiet = rand() < 0.2;
    const d = quiet ? totals(0, 0, 0, 0, 0) : totals(randInt(rand, 0, 5000), randInt(rand, 0, 1e7), randInt(rand, 0, 1e7),
      rand() < 0.1 ? 2 ** 40 : randInt(rand, 0, 1e9), randInt(rand, 0, 1e9));
    deltas.push(d);
    for (const key of TOTAL_KEYS) sum[key] += d[key];
    est.update(k * STEP, sum);
    assert.equal(est.rates(), kernelRates(deltas), `after step ${k}`);
  }
});

// ---- totals in the engine -----------------------------------------------------------------

test('statistics(): totals per real server and per service, hand-counted (see handCountedTraffic)', () => {
  const e = engine();
  handCountedTraffic(e);
  const dns = service(e, DNS);
  const http = service(e, HTTP);
  assert.equal(totalsOf(dest(dns, RS3, 53)), totals(2, 5, 2, 230, 256));
  assert.equal(totalsOf(dest(dns, RS2, 53)), totals(1, 1, 1, 38, 528));
  assert.equal(totalsOf(dns), totals(3, 6, 3, 268, 784));
  assert.equal(totalsOf(dest(http, RS3, 8000)), totals(1, 5, 3, 300, 1120));
  assert.equal(totalsOf(http), totals(1, 5, 3, 300, 1120));
  // No 2-second step has passed since the traffic began: no rates yet.
  assert.equal(ratesOf(dns), NO_RATES);
  // Shape and order: service table order, real servers newest first (as listServices).
  assert.equal(e.statistics().map((s) => [s.protocol, s.vport, s.dests.map((d) => `${d.daddr}:${d.dport}`)]),
    [['udp', 53, [`${RS3}:53`, `${RS2}:53`]], ['tcp', 80, [`${RS3}:8000`]]]);
  // The same counters as listServices() reads.
  for (const s of e.listServices()) {
    for (const d of s.dests) {
      const st = dest(service(e, s), d.daddr, d.dport);
      assert.equal(totalsOf(st), totals(d.conns, d.inPkts, d.outPkts, d.inBytes, d.outBytes));
    }
  }
});

test('statistics(): a deleted real server whose connection lives keeps counting for its service, unlisted', () => {
  const e = engine();
  handCountedTraffic(e);
  e.delDest(DNS, { daddr: RS3, dport: 53 });
  // Conn 1001 runs on (expire_nodest_conn off): one more query (IP 58) and answer (IP 128).
  forward(e, query(1001, 30), T0 + 100);
  forward(e, answer(RS3, 1001, 100), T0 + 101);
  const dns = service(e, DNS);
  assert.equal(dns.dests.map((d) => `${d.daddr}:${d.dport}`), [`${RS2}:53`]);
  assert.equal(totalsOf(dest(dns, RS2, 53)), totals(1, 1, 1, 38, 528));
  // 3 conns; in 6 + 1; out 3 + 1; in bytes 268 + 58; out bytes 784 + 128.
  assert.equal(totalsOf(dns), totals(3, 7, 4, 326, 912));
  // And across a 2-second step, the service's rate includes it: the step at T0 + 2000 sees
  // 3 conns, 7 in, 4 out, 326 and 912 bytes since T0 (all after the grid point T0).
  e.expire(T0 + STEP);
  assert.equal(ratesOf(service(e, DNS)), kernelRates([totals(3, 7, 4, 326, 912)]));
});

test('statistics(): a deleted server\'s record reused for another server: the service keeps what it counted', () => {
  // maxDests 3: the new server can only have the deleted one's record (else WASMVS_DEST_LIMIT).
  const e = engine({ maxDests: 3, timeouts: { udp: 5 } });
  handCountedTraffic(e);
  e.delDest(DNS, { daddr: RS3, dport: 53 });
  forward(e, query(1001, 30), T0 + 100);
  e.expire(T0 + 10_000); // every DNS connection times out (udp 5 s): RS3:53's record is free
  assert.is(e.connections().filter((c) => c.protocol === 'udp').length, 0);
  e.addDest(DNS, { daddr: '172.16.0.4', dport: 53, weight: 1 });
  const dns = service(e, DNS);
  assert.equal(totalsOf(dest(dns, '172.16.0.4', 53)), totals(0, 0, 0, 0, 0), 'the reused record starts at 0');
  assert.equal(totalsOf(dns), totals(3, 7, 3, 326, 784), 'RS3:53\'s counts stay with the service');
  // New traffic adds to it: conn 1004 goes to 172.16.0.4 (rr after RS3, RS2, RS3 -> the new
  // head), query IP 28 + 4 = 32 bytes.
  assert.is(forward(e, query(1004, 4), T0 + 10_100), '172.16.0.4:53');
  assert.equal(totalsOf(service(e, DNS)), totals(4, 8, 3, 358, 784));
});

test('statistics(): a real server re-added while its connection lives is revived with its counters, counted once', () => {
  const e = engine();
  handCountedTraffic(e);
  e.delDest(DNS, { daddr: RS3, dport: 53 });
  forward(e, query(1001, 30), T0 + 100);
  e.addDest(DNS, { daddr: RS3, dport: 53, weight: 1 });
  forward(e, answer(RS3, 1001, 100), T0 + 200);
  const dns = service(e, DNS);
  assert.equal(totalsOf(dest(dns, RS3, 53)), totals(2, 6, 3, 288, 384));
  assert.equal(totalsOf(dns), totals(3, 7, 4, 326, 912));
});

test('statistics(): a service deleted and re-created counts from zero; its revived server keeps its own totals', () => {
  // As IPVS: the new service's counters start at 0; a dest revived from the trash keeps its
  // stats. (The engine must have seen the old service: any statistics() call or 2 s step.)
  const e = engine();
  handCountedTraffic(e);
  assert.equal(totalsOf(service(e, DNS)), totals(3, 6, 3, 268, 784));
  e.delService(DNS);
  assert.ok(!e.statistics().some((s) => s.protocol === 'udp'));
  e.addService({ ...DNS, scheduler: 'rr' });
  e.addDest(DNS, { daddr: RS3, dport: 53, weight: 1 });
  forward(e, query(1001, 30), T0 + 100); // conn 1001 still lives, on the revived RS3:53
  forward(e, answer(RS2, 1002, 500), T0 + 101); // RS2 stays deleted: counts for no service
  const dns = service(e, DNS);
  assert.equal(totalsOf(dest(dns, RS3, 53)), totals(2, 6, 2, 288, 256));
  assert.equal(totalsOf(dns), totals(0, 1, 0, 58, 0));
});

// ---- rates in the engine ----------------------------------------------------------------------

// A steady 50 new DNS connections per second to one server: every 20 ms a query from a new
// client port (IP 100 bytes) and its answer (IP 200 bytes). Each 2-second step sees 100 conns,
// 100 in, 100 out, 10000 and 20000 bytes. Packets and conns: rate = 100 << 9 = 51200; after k
// steps avg = 51200 * (1 - (3/4)^k) (exact while 4^k divides 51200 = 2^11 * 25, k <= 5):
// 12800, 22400, 29600, 35000, 39050, read (avg + 511) >> 10. In bytes: rate 10000 << 4 =
// 160000: 40000, 70000, 92500, 109375, 122031 (109375 + (50625 >> 2) = 109375 + 12656), read
// (avg + 15) >> 5; out bytes: rate 320000: 80000, 140000, 185000, 218750, 244062.
const FIFTY: Array<StatsRates & { k: number }> = [
  { k: 1, cps: 12, inPps: 12, outPps: 12, inBps: 1250, outBps: 2500 }, //  12800 + 511 = 13311 -> 12; 40015 >> 5 = 1250
  { k: 2, cps: 22, inPps: 22, outPps: 22, inBps: 2187, outBps: 4375 }, //  22911 -> 22; 70015 -> 2187; 140015 -> 4375
  { k: 3, cps: 29, inPps: 29, outPps: 29, inBps: 2891, outBps: 5781 }, //  30111 -> 29; 92515 -> 2891; 185015 -> 5781
  { k: 4, cps: 34, inPps: 34, outPps: 34, inBps: 3418, outBps: 6836 }, //  35511 -> 34; 109390 -> 3418; 218765 -> 6836
  { k: 5, cps: 38, inPps: 38, outPps: 38, inBps: 3813, outBps: 7627 }, //  39561 -> 38; 122046 -> 3813; 244077 -> 7627
];
const ONE_DNS = `-A -u ${VIP}:53 -s rr\n-a -u ${VIP}:53 -r ${RS2}:53 -m -w 1\n`;

/** Interval k (1-based) of the steady traffic: packets at T0 + 2000(k-1) + 20i. */
function fiftyPerSecond(e: Engine, k: number, extraCalls = false): void {
  for (let i = 0; i < 100; i++) {
    const t = T0 + STEP * (k - 1) + 20 * i;
    const cport = 10_000 + 100 * k + i;
    forward(e, query(cport, 72), t);
    forward(e, answer(RS2, cport, 172), t);
    if (extraCalls && i % 7 === 3) {
      e.expire(t + 13);
      e.statistics();
    }
  }
}

test('rates: a steady 50 connections/s, after each 2-second step, equal the kernel\'s run worked by hand', () => {
  const e = new Engine({ connCapacity: 4096, slotCount: 16 });
  e.restore(ONE_DNS);
  for (const want of FIFTY) {
    fiftyPerSecond(e, want.k);
    e.expire(T0 + STEP * want.k); // runs the step at the end of interval k
    const s = service(e, DNS);
    const { k, ...rates } = want;
    assert.equal(ratesOf(s), rates, `service after ${k} steps`);
    assert.equal(ratesOf(dest(s, RS2, 53)), rates, `real server after ${k} steps`);
    assert.equal(totalsOf(s), totals(100 * k, 100 * k, 100 * k, 10000 * k, 20000 * k));
    assert.equal(ratesOf(s), kernelRates(Array(k).fill(totals(100, 100, 100, 10000, 20000))));
  }
  // Then silence for 6 s: three idle steps. In PPS 39050 -> 39050 - 9763 = 29287 (the shift
  // floors -9762.5) -> 29287 - 7322 = 21965 -> 21965 - 5492 = 16473: read 29, 21, 16.
  e.expire(T0 + STEP * 8);
  assert.is(service(e, DNS).inPps, 16);
  assert.equal(ratesOf(service(e, DNS)), kernelRates([...Array(5).fill(totals(100, 100, 100, 10000, 20000)), ...Array(3).fill(totals(0, 0, 0, 0, 0))]));
});

test('rates: the same traffic gives the same rates however often the engine is called', () => {
  const plain = new Engine({ connCapacity: 4096, slotCount: 16 });
  const busy = new Engine({ connCapacity: 4096, slotCount: 16 });
  plain.restore(ONE_DNS);
  busy.restore(ONE_DNS);
  for (let k = 1; k <= 3; k++) {
    fiftyPerSecond(plain, k);
    fiftyPerSecond(busy, k, true);
  }
  plain.expire(T0 + 7 * STEP + 999);
  busy.expire(T0 + 7 * STEP + 999);
  const want = kernelRates([...Array(3).fill(totals(100, 100, 100, 10000, 20000)), ...Array(4).fill(totals(0, 0, 0, 0, 0))]);
  assert.equal(ratesOf(service(plain, DNS)), want);
  assert.equal(busy.statistics(), plain.statistics());
});

test('rates: the step at T sees the traffic before T, even when the batch that runs it comes later', () => {
  const e = new Engine({ connCapacity: 4096, slotCount: 128 });
  e.restore(ONE_DNS);
  const batch = (cport: number, now: number): void => {
    for (let i = 0; i < 100; i++) e.writeSlot(i, query(cport + i, 0));
    assert.is(e.process(0, 100, now), 100);
  };
  e.expire(T0); // the engine is running: its clock is at T0
  batch(20_000, T0 + 1000); // 100 new connections before T0 + 2000
  batch(30_000, T0 + 2500); // the next batch comes at T0 + 2500: its 100 belong to the next step
  const s = service(e, DNS);
  assert.is(s.inPkts, 200);
  // The step at T0 + 2000 saw 100 packets: (100 << 9) >> 2 = 12800, read 13311 >> 10 = 12
  // (had it counted the late batch too: 25600, read 25).
  assert.is(s.inPps, 12);
  assert.is(s.cps, 12);
});

// ---- zeroing ------------------------------------------------------------------------------

test('zeroStats(service): that service and its real servers to zero, totals and rates; the other untouched', () => {
  const e = engine();
  handCountedTraffic(e);
  e.expire(T0 + STEP); // one step: rates for both services
  const before = service(e, HTTP);
  assert.ok(before.inPps > 0 && service(e, DNS).inPps > 0);
  e.zeroStats(DNS);
  const dns = service(e, DNS);
  assert.equal(totalsOf(dns), totals(0, 0, 0, 0, 0));
  assert.equal(ratesOf(dns), NO_RATES);
  for (const d of dns.dests) assert.equal({ ...totalsOf(d), ...ratesOf(d) }, { ...totals(0, 0, 0, 0, 0), ...NO_RATES }, d.daddr);
  assert.equal(service(e, HTTP), before);
  // listServices() reads the same (zeroed) records; connection counts are state, not stats.
  const listed = e.listServices().find((s) => s.protocol === 'udp');
  assert.equal(listed?.dests.map((d) => [d.conns, d.inPkts, d.outBytes]), [[0, 0, 0], [0, 0, 0]]);
  assert.equal(listed?.dests.map((d) => d.activeConns + d.inactConns), [2, 1]);
  // Afterwards traffic counts from zero, and the next step sees only it: one answer, IP 128.
  forward(e, answer(RS3, 1001, 100), T0 + STEP + 10);
  e.expire(T0 + 2 * STEP);
  const after = service(e, DNS);
  assert.equal(totalsOf(after), totals(0, 0, 1, 0, 128));
  assert.equal(ratesOf(after), kernelRates([totals(0, 0, 1, 0, 128)])); // OutBPS (128 << 4) >> 2 = 512 -> 16
  assert.is(after.outBps, 16);
});

test('zeroStats(): every service to zero', () => {
  const e = engine();
  handCountedTraffic(e);
  e.expire(T0 + STEP);
  e.zeroStats();
  for (const s of e.statistics()) {
    assert.equal({ ...totalsOf(s), ...ratesOf(s) }, { ...totals(0, 0, 0, 0, 0), ...NO_RATES }, `${s.protocol}:${s.vport}`);
    for (const d of s.dests) assert.equal({ ...totalsOf(d), ...ratesOf(d) }, { ...totals(0, 0, 0, 0, 0), ...NO_RATES });
  }
  // A step after the zeroing without traffic stays at zero (the reference moved to 0 too).
  e.expire(T0 + 2 * STEP);
  for (const s of e.statistics()) assert.equal(ratesOf(s), NO_RATES);
});

test('zeroStats(service) with a deleted real server still carrying a connection: it counts from zero too', () => {
  const e = engine();
  handCountedTraffic(e);
  e.delDest(DNS, { daddr: RS3, dport: 53 });
  e.zeroStats(DNS);
  assert.equal(totalsOf(service(e, DNS)), totals(0, 0, 0, 0, 0));
  forward(e, query(1001, 30), T0 + 100); // conn 1001, on the deleted RS3:53
  assert.equal(totalsOf(service(e, DNS)), totals(0, 1, 0, 58, 0));
});

test('zeroStats(unknown service): WASMVS_NO_SERVICE, nothing zeroed', () => {
  const e = engine();
  handCountedTraffic(e);
  const before = e.statistics();
  try {
    e.zeroStats({ protocol: 'udp', vaddr: VIP, vport: 54 });
    assert.unreachable('expected WASMVS_NO_SERVICE');
  } catch (err) {
    assert.ok(err instanceof WasmvsError, String(err));
    assert.is((err as WasmvsError).code, 'WASMVS_NO_SERVICE');
  }
  assert.equal(e.statistics(), before);
});

// ---- wasmvs replay --stats / --rate -------------------------------------------------------

const T_CAPTURE = 1_700_000_000_000; // 2023-11-14T22:13:20Z, a multiple of 2000 ms
const A = { client: CLIENT, cport: 5300, vip: VIP, vport: 53, server: RS3, sport: 53 };
const B = { client: CLIENT, cport: 5301, vip: VIP, vport: 53, server: RS2, sport: 53 };
const W = { client: CLIENT, cport: 40000, vip: VIP, vport: 80, server: RS3, sport: 8000 };

/**
 * The capture: DNS client A (-> RS3, rr's first pick) 250 query/answer pairs 20 ms apart from
 * T; client B (-> RS2) 100 pairs from T + 1000; an HTTP session (-> RS3:8000) at T + 500.
 * Queries carry 17 bytes (IP 45), answers 18 (IP 46). The last packet is at T + 4980.2, so
 * the replay ends with the steps at T + 2000 and T + 4000.
 */
function captureSessions(): Record<'a' | 'b' | 'w', TimedPacket[]> {
  return {
    a: udpExchange({ ...A, startMs: T_CAPTURE, count: 250, intervalMs: 20 }),
    b: udpExchange({ ...B, startMs: T_CAPTURE + 1000, count: 100, intervalMs: 20 }),
    w: tcpSession({ ...W, startMs: T_CAPTURE + 500 }),
  };
}

/** Totals of packets (first one opens the connection), and their increases per 2-second step. */
function expectFrom(packets: TimedPacket[], steps: number): { totals: StatsTotals; deltas: Delta[] } {
  const all = totals(1, 0, 0, 0, 0);
  const deltas: Delta[] = Array.from({ length: steps }, () => totals(0, 0, 0, 0, 0));
  packets.forEach((p, i) => {
    const step = Math.floor((Math.floor(p.time) - T_CAPTURE) / STEP); // 0: seen by the step at T + 2000
    const d = step < steps ? deltas[step] : totals(0, 0, 0, 0, 0);
    if (i === 0) d.conns++;
    if (p.dir === 'in') { all.inPkts++; all.inBytes += p.packet.length; d.inPkts++; d.inBytes += p.packet.length; }
    else { all.outPkts++; all.outBytes += p.packet.length; d.outPkts++; d.outBytes += p.packet.length; }
  });
  return { totals: all, deltas };
}

function sumDeltas(...lists: Delta[][]): Delta[] {
  return lists[0].map((_, k) => {
    const s = totals(0, 0, 0, 0, 0);
    for (const l of lists) for (const key of TOTAL_KEYS) s[key] += l[k][key];
    return s;
  });
}

function expectedStatistics(): ServiceStats[] {
  const { a, b, w } = captureSessions();
  const ea = expectFrom(a, 2);
  const eb = expectFrom(b, 2);
  const ew = expectFrom(w, 2);
  // Hand count for the DNS side: A 250 x 45 in, 250 x 46 out; B 100 x 45, 100 x 46.
  assert.equal(ea.totals, totals(1, 250, 250, 11250, 11500));
  assert.equal(eb.totals, totals(1, 100, 100, 4500, 4600));
  // Step 1 (T .. T + 2000): A 100 pairs, B 50; step 2: A 100, B 50.
  assert.equal(ea.deltas, [totals(1, 100, 100, 4500, 4600), totals(0, 100, 100, 4500, 4600)]);
  assert.equal(eb.deltas, [totals(1, 50, 50, 2250, 2300), totals(0, 50, 50, 2250, 2300)]);
  const dnsTotals = totals(2, 350, 350, 15750, 16100);
  return [
    {
      protocol: 'udp', vaddr: VIP, vport: 53, ...dnsTotals, ...kernelRates(sumDeltas(ea.deltas, eb.deltas)),
      dests: [ // newest first: RS3 was added after RS2
        { daddr: RS3, dport: 53, ...ea.totals, ...kernelRates(ea.deltas) },
        { daddr: RS2, dport: 53, ...eb.totals, ...kernelRates(eb.deltas) },
      ],
    },
    {
      protocol: 'tcp', vaddr: VIP, vport: 80, ...ew.totals, ...kernelRates(ew.deltas),
      dests: [{ daddr: RS3, dport: 8000, ...ew.totals, ...kernelRates(ew.deltas) }],
    },
  ];
}

let dir = '';
test.before.each(() => {
  dir = mkdtempSync(join(tmpdir(), 'wasmvs-stats-test-'));
});
test.after.each(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeCapture(): { rules: string; inPcap: string; outPcap: string } {
  const { a, b, w } = captureSessions();
  const packets = [...a, ...b, ...w].sort((x, y) => x.time - y.time);
  const files = { rules: join(dir, 'lvs.rules'), inPcap: join(dir, 'in.pcap'), outPcap: join(dir, 'out.pcap') };
  writeFileSync(files.rules, RULES);
  writeFileSync(files.inPcap, pcapFile(records(packets, { linkType: LINKTYPE_RAW }), { linkType: LINKTYPE_RAW }));
  return files;
}

function wasmvs(args: string[]): { status: number | null; stdout: string; stderr: string } {
  assert.ok(existsSync(CLI), `${CLI} is missing: run "npm run build" (npm test does)`);
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('replay --stats --json: "statistics" holds hand-counted totals and the kernel estimator\'s rates over the capture', () => {
  const f = writeCapture();
  const r = wasmvs(['replay', '--rules', f.rules, '--stats', '--json', f.inPcap, f.outPcap]);
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim().split('\n').length, 1, 'one JSON object');
  const out = JSON.parse(r.stdout) as { statistics: ServiceStats[]; packets: number; verdicts: { forward: number } };
  assert.is(out.verdicts.forward, out.packets, 'every packet forwarded (rr picked as expected)');
  const want = expectedStatistics();
  assert.equal(out.statistics, want);
  // The DNS rates worked by hand: RS2 saw 50 queries per step: rate 50 << 9 = 25600,
  // avg 6400 then 6400 + (19200 >> 2) = 11200: (11200 + 511) >> 10 = 11 packets/s.
  assert.is(want[0].dests[1].inPps, 11);
});

test('replay --stats --rate: the ipvsadm tables follow the summary; --json alone has no statistics', () => {
  const f = writeCapture();
  const r = wasmvs(['replay', '--rules', f.rules, '--stats', '--rate', f.inPcap, f.outPcap]);
  assert.is(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  const at = lines.indexOf('Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes');
  assert.ok(at > 0, 'the --stats table');
  assert.match(lines.slice(0, at).join('\n'), /^packets\n/, 'after the summary');
  const [dns, http] = expectedStatistics();
  // Rows as print_service_entry prints them: "%-33s" then 9-column numbers (all below 10^8).
  const row = (name: string, n: number[]) => name + n.map((x) => String(x).padStart(9)).join('');
  const svc = (s: ServiceStats) => `${s.protocol.toUpperCase()}  ${s.vaddr}:${s.vport}`.padEnd(33);
  const rs = (d: { daddr: string; dport: number }) => `  -> ${`${d.daddr}:${d.dport}`.padEnd(28)}`;
  const t = (s: Stats) => TOTAL_KEYS.map((k) => s[k]);
  const q = (s: Stats) => RATE_KEYS.map((k) => s[k]);
  assert.equal(lines.slice(at + 1, at + 7), [
    '  -> RemoteAddress:Port',
    row(svc(http), t(http)),
    row(rs(http.dests[0]), t(http.dests[0])),
    row(svc(dns), t(dns)),
    row(rs(dns.dests[1]), t(dns.dests[1])), // 172.16.0.2 sorts before 172.16.0.3
    row(rs(dns.dests[0]), t(dns.dests[0])),
  ]);
  assert.equal(lines.slice(at + 7, at + 14), [
    'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS',
    '  -> RemoteAddress:Port',
    row(svc(http), q(http)),
    row(rs(http.dests[0]), q(http.dests[0])),
    row(svc(dns), q(dns)),
    row(rs(dns.dests[1]), q(dns.dests[1])),
    row(rs(dns.dests[0]), q(dns.dests[0])),
  ]);
  assert.equal(lines.slice(at + 14), ['']);
  const json = wasmvs(['replay', '--rules', f.rules, '--json', f.inPcap, f.outPcap]);
  assert.is(json.status, 0, json.stderr);
  assert.not.ok('statistics' in (JSON.parse(json.stdout) as object));
});

test('replay(): statistics are the same on every run (the capture drives the clock)', () => {
  const f = writeCapture();
  const input = readFileSync(f.inPcap);
  const one = replay({ rules: RULES, input, engine: { connCapacity: 4096 } });
  const two = replay({ rules: RULES, input, engine: { connCapacity: 4096 } });
  assert.equal(one.statistics, expectedStatistics());
  assert.equal(two.statistics, one.statistics);
});

test.run();
