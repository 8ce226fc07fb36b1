// The Engine's control plane (host/engine.ts): configuration with ipvsadm's semantics and
// errors, restore/save, option checks, what happens to live connections when their dest or
// service goes, the ring API, events, counters and memory use.
//
// Addresses are the seed's (an LVS NAT example): VIP 202.103.106.5, real servers
// 172.16.0.2 and 172.16.0.3, client 202.100.1.2. Packets are built with the test kit
// (test/support/packets.ts), never with engine code, and exist only in memory.
// Engine time is a fake millisecond clock; tests pick the values.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine, type ConnEvent, type EngineOptions, type ServiceKey } from '../host/engine/engine.js';
import { WasmvsError, type ErrorCode } from '../host/errors.js';
import type { DestSpec, ServiceSpec } from '../host/ipvsadm/rules.js';
import { decode, hex, ipv4Packet, tcpPacket, udpPacket } from './support/packets.js';
import { SEED_RULES_TEXT } from './support/seed.js';

const VIP = '202.103.106.5';
const CLIENT = '202.100.1.2';
const RS1 = '172.16.0.2';
const RS2 = '172.16.0.3';
const HTTP: ServiceKey = { protocol: 'tcp', vaddr: VIP, vport: 80 };
const FTP: ServiceKey = { protocol: 'tcp', vaddr: VIP, vport: 21 };
const T0 = 1_000_000; // engine time of the first packet, ms

// The seed's rules, exactly as `ipvsadm-save -n` prints them.
const SEED = SEED_RULES_TEXT;

// One real server behind :80, so the scheduler's choice is never in question.
const SINGLE = '-A -t 202.103.106.5:80 -s rr\n-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 1\n';

// Small tables keep every engine cheap to build.
const SMALL: EngineOptions = { connCapacity: 1024, slotCount: 16, slotSize: 2048, eventCapacity: 64 };

function engine(rules = SEED, options: EngineOptions = {}): Engine {
  const e = new Engine({ ...SMALL, ...options });
  if (rules) e.restore(rules);
  return e;
}

/** Runs fn, which must throw a WasmvsError with `code` and a message matching `message`. */
function throwsCode(fn: () => unknown, code: ErrorCode, message: RegExp): WasmvsError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WasmvsError, `expected a WasmvsError, got ${String(err)}`);
    const e = err as WasmvsError;
    assert.is(e.code, code, e.message);
    assert.match(e.message, message);
    return e;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

const syn = (cport: number, vport = 80): Uint8Array =>
  tcpPacket({ src: CLIENT, dst: VIP, sport: cport, dport: vport, flags: 'S', seq: 1000 });
const fromClient = (cport: number, flags: string, vport = 80, payload = ''): Uint8Array =>
  tcpPacket({ src: CLIENT, dst: VIP, sport: cport, dport: vport, flags, seq: 1001, ack: 5001, payload });
const fromServer = (daddr: string, dport: number, cport: number, flags: string, payload = ''): Uint8Array =>
  tcpPacket({ src: daddr, dst: CLIENT, sport: dport, dport: cport, flags, seq: 5000, ack: 1001, payload });

let nextPort = 40000;
/** A SYN to VIP:80 from a client port not used before is forwarded (to one of `dests`, if given). */
function trafficFlows(e: Engine, now: number, dests?: string[]): void {
  const r = e.processPacket(syn(nextPort++), now);
  assert.is(r.verdict, 'forward', `reason ${r.reason}`);
  const d = decode(r.packet);
  assert.is(d.src, CLIENT);
  if (dests) assert.ok(dests.includes(`${d.dst}:${d.dport}`), `forwarded to ${d.dst}:${d.dport}`);
  else assert.is.not(d.dst, VIP);
}

/** The call must fail with `code`, leave save() and listServices() as they were, and traffic must flow. */
function rejected(e: Engine, fn: () => unknown, code: ErrorCode, message: RegExp): void {
  const saved = e.save();
  const listed = e.listServices();
  throwsCode(fn, code, message);
  assert.is(e.save(), saved, 'save() changed');
  assert.equal(e.listServices(), listed, 'listServices() changed');
  trafficFlows(e, T0);
}

/** SYN, SYN+ACK, ACK through the engine; returns where the connection went. */
function handshake(e: Engine, cport: number, now: number, vport = 80): { daddr: string; dport: number } {
  const r1 = e.processPacket(syn(cport, vport), now);
  assert.is(r1.verdict, 'forward', `SYN: ${r1.reason}`);
  assert.ok(r1.newConnection);
  const to = decode(r1.packet);
  const r2 = e.processPacket(fromServer(to.dst, to.dport!, cport, 'SA'), now);
  assert.is(r2.verdict, 'forward', `SYN+ACK: ${r2.reason}`);
  assert.ok(r2.reply);
  const r3 = e.processPacket(fromClient(cport, 'A', vport), now);
  assert.is(r3.verdict, 'forward', `ACK: ${r3.reason}`);
  return { daddr: to.dst, dport: to.dport! };
}

// ---- configuration errors ----------------------------------------------------------------

test('addService: a duplicate service is WASMVS_SERVICE_EXISTS', () => {
  const e = engine();
  rejected(e, () => e.addService({ ...HTTP, scheduler: 'rr' }), 'WASMVS_SERVICE_EXISTS', /already exists.*202\.103\.106\.5:80/);
  // Same address and port on the other protocol is another service.
  e.addService({ protocol: 'udp', vaddr: VIP, vport: 80, scheduler: 'rr' });
  assert.is(e.listServices().length, 3);
});

test('addDest/editDest/delDest on an unknown service are WASMVS_NO_SERVICE', () => {
  const e = engine();
  const nowhere: ServiceKey = { protocol: 'tcp', vaddr: VIP, vport: 8080 };
  const udp: ServiceKey = { protocol: 'udp', vaddr: VIP, vport: 80 };
  rejected(e, () => e.addDest(nowhere, { daddr: RS1, dport: 80, weight: 1 }), 'WASMVS_NO_SERVICE', /No such service.*8080/);
  rejected(e, () => e.addDest(udp, { daddr: RS1, dport: 80, weight: 1 }), 'WASMVS_NO_SERVICE', /No such service.*udp/);
  rejected(e, () => e.editDest(nowhere, { daddr: RS1, dport: 80, weight: 1 }), 'WASMVS_NO_SERVICE', /No such service/);
  rejected(e, () => e.delDest(nowhere, { daddr: RS1, dport: 80 }), 'WASMVS_NO_SERVICE', /No such service/);
  rejected(e, () => e.delService(nowhere), 'WASMVS_NO_SERVICE', /No such service/);
});

test('addDest: a duplicate dest is WASMVS_DEST_EXISTS, also when the port is left to default to vport', () => {
  const e = engine();
  rejected(e, () => e.addDest(HTTP, { daddr: RS2, dport: 8000, weight: 5 }), 'WASMVS_DEST_EXISTS', /already exists.*172\.16\.0\.3:8000/);
  // ipvsadm -a -r 172.16.0.2 (no port) means the service's port, 80: that one exists.
  rejected(e, () => e.addDest(HTTP, { daddr: RS1, dport: 0, weight: 1 }), 'WASMVS_DEST_EXISTS', /172\.16\.0\.2:80/);
  // The same server on another port is another dest.
  e.addDest(HTTP, { daddr: RS1, dport: 8080, weight: 1 });
  assert.equal(e.listServices()[0].dests.map((d) => `${d.daddr}:${d.dport}`), ['172.16.0.2:8080', '172.16.0.3:8000', '172.16.0.2:80']);
});

test('editDest/delDest of an unknown dest are WASMVS_NO_DEST', () => {
  const e = engine();
  rejected(e, () => e.editDest(HTTP, { daddr: RS1, dport: 8000, weight: 3 }), 'WASMVS_NO_DEST', /No such destination.*172\.16\.0\.2:8000/);
  rejected(e, () => e.delDest(HTTP, { daddr: '172.16.0.9', dport: 80 }), 'WASMVS_NO_DEST', /No such destination.*172\.16\.0\.9:80/);
  // 172.16.0.3:21 is a dest of :21, not of :80.
  rejected(e, () => e.delDest(HTTP, { daddr: RS2, dport: 21 }), 'WASMVS_NO_DEST', /172\.16\.0\.3:21/);
});

test('weights outside 0..65535 or not integers are WASMVS_BAD_WEIGHT', () => {
  const e = engine();
  for (const weight of [-1, 65536, 1.5, Number.NaN]) {
    rejected(e, () => e.addDest(HTTP, { daddr: '172.16.0.9', dport: 80, weight }), 'WASMVS_BAD_WEIGHT', /weight must be an integer from 0 to 65535/);
    rejected(e, () => e.editDest(HTTP, { daddr: RS1, dport: 80, weight }), 'WASMVS_BAD_WEIGHT', /weight/);
  }
  // The bounds themselves are fine.
  e.addDest(HTTP, { daddr: '172.16.0.9', dport: 80, weight: 65535 });
  e.editDest(HTTP, { daddr: RS1, dport: 80, weight: 0 });
  assert.match(e.save(), /-r 172\.16\.0\.9:80 -m -w 65535\n/);
  assert.match(e.save(), /-r 172\.16\.0\.2:80 -m -w 0\n/);
});

test('bad addresses, ports and protocols are refused by name', () => {
  const e = engine();
  for (const vaddr of ['256.1.1.1', '202.103.106', 'vip', '::1', ' 202.103.106.5']) {
    rejected(e, () => e.addService({ protocol: 'tcp', vaddr, vport: 80, scheduler: 'rr' }), 'WASMVS_BAD_ADDRESS', /is not an IPv4 address/);
  }
  rejected(e, () => e.addDest(HTTP, { daddr: '172.16.0.300', dport: 80, weight: 1 }), 'WASMVS_BAD_ADDRESS', /172\.16\.0\.300/);
  for (const vport of [-1, 65536, 8.5]) {
    rejected(e, () => e.addService({ protocol: 'tcp', vaddr: VIP, vport, scheduler: 'rr' }), 'WASMVS_BAD_PORT', /virtual port/);
  }
  rejected(e, () => e.addDest(HTTP, { daddr: RS1, dport: 70000, weight: 1 }), 'WASMVS_BAD_PORT', /real server port 70000/);
  rejected(e, () => e.delDest(HTTP, { daddr: RS1, dport: -5 }), 'WASMVS_BAD_PORT', /port -5/);
  const sctp = { protocol: 'sctp', vaddr: VIP, vport: 80, scheduler: 'rr' } as unknown as ServiceSpec;
  rejected(e, () => e.addService(sctp), 'WASMVS_BAD_PROTOCOL', /"sctp" is not tcp or udp/);
  rejected(e, () => e.addDest(sctp, { daddr: RS1, dport: 80, weight: 1 }), 'WASMVS_BAD_PROTOCOL', /sctp/);
});

test('an unknown scheduler is WASMVS_UNKNOWN_SCHEDULER; a rule without -s means wlc, as ipvsadm', () => {
  const e = engine();
  rejected(e, () => e.addService({ protocol: 'tcp', vaddr: VIP, vport: 443, scheduler: 'nosuch' }), 'WASMVS_UNKNOWN_SCHEDULER', /"nosuch" not found/);
  e.restore('-A -t 202.103.106.5:443\n-a -t 202.103.106.5:443 -r 172.16.0.2:443 -m\n');
  assert.match(e.save(), /-A -t 202\.103\.106\.5:443 -s wlc\n/);
  const noScheduler = { protocol: 'tcp', vaddr: VIP, vport: 444 } as ServiceSpec;
  e.addService(noScheduler);
  assert.is(e.listServices().find((s) => s.vport === 444)?.scheduler, 'wlc');
});

test('port 0 needs persistence; persistence must be 1..2073600 seconds', () => {
  const e = engine();
  rejected(e, () => e.addService({ protocol: 'tcp', vaddr: VIP, vport: 0, scheduler: 'rr' }), 'WASMVS_BAD_PORT', /Zero port specified for non-persistent service/);
  rejected(e, () => e.restore('-A -t 202.103.106.6:0 -s rr\n'), 'WASMVS_BAD_PORT', /Zero port/);
  for (const persistence of [0, -1, 2073601, 1.5]) {
    rejected(e, () => e.addService({ protocol: 'tcp', vaddr: VIP, vport: 443, scheduler: 'rr', persistence }), 'WASMVS_BAD_PERSISTENCE', /persistence timeout must be an integer from 1 to 2073600/);
  }
  e.addService({ protocol: 'tcp', vaddr: VIP, vport: 0, scheduler: 'rr', persistence: 2073600 });
  e.addService({ protocol: 'tcp', vaddr: VIP, vport: 443, scheduler: 'rr', persistence: 1 });
  assert.match(e.save(), /-A -t 202\.103\.106\.5:0 -s rr -p 2073600\n-A -t 202\.103\.106\.5:443 -s rr -p 1\n$/);
});

test('-o is for UDP only; -M needs -p and a contiguous mask', () => {
  const e = engine();
  const base: ServiceSpec = { protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr', persistence: 60 };
  rejected(e, () => e.addService({ ...base, protocol: 'tcp', onePacket: true }), 'WASMVS_BAD_OPTION', /only for UDP/);
  rejected(e, () => e.addService({ ...base, persistence: undefined, netmask: '255.255.255.0' }), 'WASMVS_BAD_OPTION', /needs -p/);
  rejected(e, () => e.addService({ ...base, netmask: '255.0.255.0' }), 'WASMVS_BAD_ADDRESS', /not a contiguous netmask/);
  e.addService({ ...base, netmask: '255.255.255.0' });
  assert.match(e.save(), /-A -u 202\.103\.106\.5:53 -s rr -p 60 -M 255\.255\.255\.0\n/);
});

test('-x/-y thresholds are checked as ipvsadm does and kept by save()', () => {
  const e = engine();
  const dest: DestSpec = { daddr: '172.16.0.9', dport: 80, weight: 1 };
  rejected(e, () => e.addDest(HTTP, { ...dest, upperThreshold: 5, lowerThreshold: 10 }), 'WASMVS_BAD_OPTION', /lower threshold 10 is higher than upper threshold 5/);
  rejected(e, () => e.addDest(HTTP, { ...dest, upperThreshold: 70000 }), 'WASMVS_BAD_OPTION', /upper threshold/);
  e.addDest(HTTP, { ...dest, upperThreshold: 10, lowerThreshold: 5 });
  assert.match(e.save(), /-r 172\.16\.0\.9:80 -m -w 1 -x 10 -y 5\n/);
});

test('the service table holds maxServices; a freed slot is used again', () => {
  const e = engine('', { maxServices: 2 });
  e.addService({ ...HTTP, scheduler: 'rr' });
  e.addService({ ...FTP, scheduler: 'rr' });
  e.addDest(HTTP, { daddr: RS1, dport: 80, weight: 1 });
  rejected(e, () => e.addService({ protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr' }), 'WASMVS_SERVICE_LIMIT', /service table full \(maxServices 2\)/);
  e.delService(FTP);
  e.addService({ protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr' });
  assert.equal(e.listServices().map((s) => `${s.protocol}:${s.vport}`), ['tcp:80', 'udp:53']);
});

test('the dest table holds maxDests, counting deleted dests whose connections live on', () => {
  const e = engine(SINGLE, { maxDests: 2 });
  const c = handshake(e, 3456, T0); // a live connection on 172.16.0.3:8000
  assert.equal(c, { daddr: RS2, dport: 8000 });
  e.addDest(HTTP, { daddr: RS1, dport: 80, weight: 1 });
  const saved = e.save();
  throwsCode(() => e.addDest(HTTP, { daddr: '172.16.0.4', dport: 80, weight: 1 }), 'WASMVS_DEST_LIMIT', /real-server table full \(maxDests 2\)/);
  assert.is(e.save(), saved);
  // A dest without connections frees its record at once...
  e.delDest(HTTP, { daddr: RS1, dport: 80 });
  e.addDest(HTTP, { daddr: '172.16.0.4', dport: 80, weight: 1 });
  // ...one with connections keeps it until they are gone.
  e.delDest(HTTP, { daddr: RS2, dport: 8000 });
  rejected(e, () => e.addDest(HTTP, { daddr: '172.16.0.5', dport: 80, weight: 1 }), 'WASMVS_DEST_LIMIT', /maxDests 2/);
  e.expire(T0 + 900_000); // ESTABLISHED times out after 900 s, SYN_RECV after 60 s
  assert.is(e.connections().length, 0);
  e.addDest(HTTP, { daddr: '172.16.0.5', dport: 80, weight: 1 });
  assert.equal(e.listServices()[0].dests.map((d) => d.daddr), ['172.16.0.5', '172.16.0.4']);
  throwsCode(() => e.addDest(HTTP, { daddr: '172.16.0.6', dport: 80, weight: 1 }), 'WASMVS_DEST_LIMIT', /maxDests 2/);
});

// ---- restore and save ----------------------------------------------------------------------

test('restore is all or nothing: a duplicate 4th service changes nothing', () => {
  const e = engine();
  const before = e.save();
  const fourth = (vip: string) => [
    '-A -t 10.0.0.1:80 -s rr', '-a -t 10.0.0.1:80 -r 172.16.1.1:80 -m -w 1',
    '-A -t 10.0.0.2:80 -s rr', '-a -t 10.0.0.2:80 -r 172.16.1.2:80 -m -w 1',
    '-A -t 10.0.0.3:80 -s wrr',
    `-A -t ${vip}:80 -s rr`,
  ].join('\n') + '\n';
  // Duplicate of a service earlier in the same file: the parser names the line.
  const inFile = throwsCode(() => e.restore(fourth('10.0.0.1')), 'WASMVS_SERVICE_EXISTS', /line 6: Service already exists: tcp 10\.0\.0\.1:80/);
  assert.is(inFile.line, 6);
  // Duplicate of a service the engine already has.
  rejected(e, () => e.restore(fourth(VIP)), 'WASMVS_SERVICE_EXISTS', /Service already exists: tcp 202\.103\.106\.5:80/);
  assert.is(e.save(), before);
  const r = e.processPacket(syn(3000), T0);
  assert.is(r.verdict, 'forward');
  assert.is(e.processPacket(tcpPacket({ src: CLIENT, dst: '10.0.0.1', sport: 3000, dport: 80, flags: 'S' }), T0).reason, 'no-match');
});

test('restore is all or nothing: dests, services, weights or schedulers that do not fit change nothing', () => {
  const e = engine(SEED, { maxDests: 4, maxServices: 4 });
  const tooManyDests = [
    '-A -t 10.0.0.1:80 -s rr', '-a -t 10.0.0.1:80 -r 172.16.1.1:80 -m -w 1',
    '-A -t 10.0.0.2:80 -s rr', '-a -t 10.0.0.2:80 -r 172.16.1.2:80 -m -w 1',
  ].join('\n') + '\n';
  rejected(e, () => e.restore(tooManyDests), 'WASMVS_DEST_LIMIT', /2 real servers do not fit \(maxDests 4\)/);
  const tooManyServices = '-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.2:80 -s rr\n-A -t 10.0.0.3:80 -s rr\n';
  rejected(e, () => e.restore(tooManyServices), 'WASMVS_SERVICE_LIMIT', /3 services do not fit: 2 free \(maxServices 4\)/);
  const badWeight = '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 172.16.1.1:80 -m -w 70000\n';
  const w = throwsCode(() => e.restore(badWeight), 'WASMVS_BAD_WEIGHT', /^line 2: /);
  assert.is(w.line, 2);
  rejected(e, () => e.restore('-A -t 10.0.0.1:80 -s rr\n-A -t 10.0.0.2:80 -s nosuch\n'), 'WASMVS_UNKNOWN_SCHEDULER', /nosuch/);
  rejected(e, () => e.restore('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 172.16.1.1:80 -m -w 1\n-a -t 10.0.0.1:80 -r 172.16.1.1:80 -m -w 2\n'), 'WASMVS_DEST_EXISTS', /172\.16\.1\.1:80/);
  // Exactly what fits is accepted.
  e.restore('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 172.16.1.1:80 -m -w 1\n-A -t 10.0.0.2:80 -s rr\n');
  assert.is(e.listServices().length, 4);
});

test('save() prints ipvsadm-save -n text, dests in the order added; restore(save()) reproduces it', () => {
  const e = engine();
  assert.is(e.save(), SEED);
  const fresh = new Engine(SMALL);
  assert.is(fresh.save(), '');
  fresh.restore(e.save());
  assert.is(fresh.save(), SEED);
  assert.equal(fresh.listServices().map((s) => s.dests.map((d) => `${d.daddr}:${d.dport}`)),
    [['172.16.0.3:8000', '172.16.0.2:80'], ['172.16.0.3:21']], 'listServices shows IPVS list order, newest first');

  // Edits show in save(); a deleted and re-added dest moves to the end; udp and -p survive.
  e.addDest(HTTP, { daddr: '172.16.0.4', dport: 0, weight: 7 });
  e.editDest(HTTP, { daddr: RS2, dport: 8000, weight: 3 });
  e.delDest(HTTP, { daddr: RS1, dport: 0 }); // port 0: the service's, 80
  e.addDest(HTTP, { daddr: RS1, dport: 80, weight: 1 });
  e.addService({ protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr', persistence: 600 });
  e.addDest({ protocol: 'udp', vaddr: VIP, vport: 53 }, { daddr: RS1, dport: 5353, weight: 0 });
  const expected = [
    '-A -t 202.103.106.5:80 -s wrr',
    '-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 3',
    '-a -t 202.103.106.5:80 -r 172.16.0.4:80 -m -w 7',
    '-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1',
    '-A -t 202.103.106.5:21 -s wrr',
    '-a -t 202.103.106.5:21 -r 172.16.0.3:21 -m -w 1',
    '-A -u 202.103.106.5:53 -s rr -p 600',
    '-a -u 202.103.106.5:53 -r 172.16.0.2:5353 -m -w 0',
  ].join('\n') + '\n';
  assert.is(e.save(), expected);
  const again = new Engine(SMALL);
  again.restore(e.save());
  assert.is(again.save(), expected);
  e.clear();
  assert.is(e.save(), '');
  assert.equal(e.listServices(), []);
});

// ---- engine options ------------------------------------------------------------------------

test('engine options out of range are WASMVS_BAD_OPTION, naming the option', () => {
  const cases: Array<[EngineOptions, RegExp]> = [
    [{ connCapacity: 0 }, /connCapacity must be an integer from 1 to 16777215, got 0/],
    [{ connCapacity: 2 ** 24 }, /connCapacity/],
    [{ connCapacity: 10.5 }, /connCapacity/],
    [{ slotCount: 0 }, /slotCount/],
    [{ slotSize: 100 }, /slotSize must be a multiple of 64, got 100/],
    [{ slotSize: 32 }, /slotSize/],
    [{ slotSize: 65536 + 128 }, /slotSize/],
    [{ maxServices: 0 }, /maxServices/],
    [{ maxDests: 0 }, /maxDests/],
    [{ maxDests: 65536 }, /maxDests/],
    [{ eventCapacity: 3 }, /eventCapacity must be a power of two, got 3/],
    [{ eventCapacity: 0 }, /eventCapacity/],
    [{ expireBudget: 0 }, /expireBudget/],
    [{ connCapacity: '10' as unknown as number }, /connCapacity/],
  ];
  for (const [options, message] of cases) {
    throwsCode(() => new Engine({ ...SMALL, ...options }), 'WASMVS_BAD_OPTION', message);
  }
  // Boundaries that are fine.
  new Engine({ ...SMALL, slotSize: 64, eventCapacity: 1, maxDests: 65535, connCapacity: 1 });
});

test('bad timeouts are WASMVS_BAD_TIMEOUT, in the constructor and in setTimeouts, which changes nothing then', () => {
  const cases: Array<[Record<string, number>, RegExp]> = [
    [{ tcp: -1 }, /timeout tcp must be an integer from 0 to 2073600, got -1/],
    [{ tcpfin: 1.5 }, /timeout tcpfin/],
    [{ udp: 2073601 }, /timeout udp/],
    [{ tcp_fin: 5 }, /unknown timeout "tcp_fin"/],
  ];
  for (const [timeouts, message] of cases) {
    throwsCode(() => new Engine({ ...SMALL, timeouts }), 'WASMVS_BAD_TIMEOUT', message);
  }
  const e = engine(SEED, { timeouts: { tcp: 1000, udp: 0 } });
  assert.equal(e.getTimeouts(), { tcp: 1000, tcpfin: 120, udp: 300 }, '0 leaves a default alone');
  for (const [timeouts, message] of cases) {
    rejected(e, () => e.setTimeouts({ tcpfin: 30, ...timeouts }), 'WASMVS_BAD_TIMEOUT', message);
    assert.equal(e.getTimeouts(), { tcp: 1000, tcpfin: 120, udp: 300 });
  }
  e.setTimeouts({ tcpfin: 30, udp: 0 });
  assert.equal(e.getTimeouts(), { tcp: 1000, tcpfin: 30, udp: 300 });
});

test('the tcp timeout set with setTimeouts is the ESTABLISHED timeout, to the millisecond', () => {
  const e = engine(SINGLE);
  e.setTimeouts({ tcp: 10 });
  handshake(e, 3456, T0);
  e.expire(T0 + 9_999);
  assert.equal(e.connections().map((c) => [c.state, c.expiresIn]), [['ESTABLISHED', 1]]);
  e.expire(T0 + 10_000);
  assert.equal(e.connections(), []);
});

// ---- live connections when their dest or service goes -----------------------------------

test('a deleted dest keeps its connections until they expire and gets no new ones', () => {
  const e = engine('-A -t 202.103.106.5:80 -s rr\n-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1\n-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 1\n');
  const gone = handshake(e, 3456, T0);
  const other = gone.daddr === RS1 ? `${RS2}:8000` : `${RS1}:80`;
  e.delDest(HTTP, gone);
  assert.equal(e.listServices()[0].dests.map((d) => `${d.daddr}:${d.dport}`), [other]);

  const t1 = T0 + 1000;
  const data = e.processPacket(fromClient(3456, 'PA', 80, 'GET / HTTP/1.0\r\n\r\n'), t1);
  assert.is(data.verdict, 'forward');
  assert.is(`${decode(data.packet).dst}:${decode(data.packet).dport}`, `${gone.daddr}:${gone.dport}`);
  const answer = e.processPacket(fromServer(gone.daddr, gone.dport, 3456, 'PA', 'HTTP/1.0 200 OK\r\n\r\n'), t1);
  assert.is(answer.verdict, 'forward');
  assert.is(`${decode(answer.packet).src}:${decode(answer.packet).sport}`, `${VIP}:80`);
  for (let i = 0; i < 6; i++) trafficFlows(e, t1, [other]);

  // ESTABLISHED: 900 s after the last packet, not a millisecond earlier.
  e.expire(t1 + 899_999);
  assert.ok(e.connections().some((c) => c.cport === 3456 && c.daddr === gone.daddr));
  e.expire(t1 + 900_000);
  assert.not.ok(e.connections().some((c) => c.cport === 3456));
  const late = e.processPacket(fromClient(3456, 'A'), t1 + 900_001);
  assert.is(late.verdict, 'drop');
  assert.is(late.reason, 'no-conn');
});

test('a deleted service keeps its connections both ways; new SYNs are refused; re-adding it works', () => {
  const e = engine();
  const c = handshake(e, 3456, T0);
  e.delService(HTTP);
  assert.equal(e.listServices().map((s) => s.vport), [21]);

  const fwd = e.processPacket(fromClient(3456, 'PA', 80, 'hello'), T0 + 1);
  assert.is(fwd.verdict, 'forward');
  assert.is(decode(fwd.packet).dst, c.daddr);
  const back = e.processPacket(fromServer(c.daddr, c.dport, 3456, 'PA', 'world'), T0 + 2);
  assert.is(back.verdict, 'forward');
  assert.is(`${decode(back.packet).src}:${decode(back.packet).sport}`, `${VIP}:80`);

  // The VIP still has :21, so :80 is the director's to refuse (local); :21 still works.
  const refused = e.processPacket(syn(3457), T0 + 3);
  assert.is(refused.verdict, 'local');
  assert.is(refused.reason, 'no-service');
  assert.is(e.processPacket(syn(3458, 21), T0 + 3).verdict, 'forward');

  // With no service left the address is no VIP of ours: its packets pass to the host's stack.
  e.delService(FTP);
  const passed = e.processPacket(syn(3459), T0 + 4);
  assert.is(passed.verdict, 'pass');
  assert.is(passed.reason, 'no-match');
  assert.is(e.processPacket(fromClient(3456, 'A'), T0 + 5).verdict, 'forward', 'the old connection still flows');

  e.addService({ ...HTTP, scheduler: 'rr' });
  e.addDest(HTTP, { daddr: '172.16.0.4', dport: 80, weight: 1 });
  const again = e.processPacket(syn(3460), T0 + 6);
  assert.is(again.verdict, 'forward');
  assert.is(decode(again.packet).dst, '172.16.0.4');
  assert.is(e.processPacket(fromServer(c.daddr, c.dport, 3456, 'A'), T0 + 7).verdict, 'forward', 'and still flows back');
});

test('a deleted dest with live connections, re-added to the same service, keeps its counters', () => {
  const e = engine(SINGLE);
  const s = syn(3456);
  e.processPacket(s, T0);
  const before = e.listServices()[0].dests[0];
  assert.equal([before.conns, before.inPkts, before.inBytes, before.inactConns], [1, 1, s.length, 1]);
  e.delDest(HTTP, { daddr: RS2, dport: 8000 });
  assert.equal(e.listServices()[0].dests, []);
  assert.is(e.processPacket(syn(3457), T0).reason, 'no-dest');
  e.addDest(HTTP, { daddr: RS2, dport: 8000, weight: 1 });
  assert.equal(e.listServices()[0].dests[0], before);
  // Packets of the old connection count on the same record.
  const sa = fromServer(RS2, 8000, 3456, 'SA');
  assert.is(e.processPacket(sa, T0 + 1).verdict, 'forward');
  const after = e.listServices()[0].dests[0];
  assert.equal([after.conns, after.inPkts, after.outPkts, after.outBytes, after.inactConns], [1, 1, 1, sa.length, 1]);
});

test('a dest added to a different service starts from zero, even where a deleted one had live connections', () => {
  // IPVS revives a deleted dest (ip_vs_trash_get_dest) only for the same service: same
  // protocol, vaddr and vport. Here service 10.0.0.1:80 goes, 10.0.0.2:80 takes its place
  // in the table, and gets the same real server.
  const e = engine('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 172.16.0.3:8000 -m -w 1\n');
  assert.is(e.processPacket(tcpPacket({ src: CLIENT, dst: '10.0.0.1', sport: 3456, dport: 80, flags: 'S' }), T0).verdict, 'forward');
  e.delService({ protocol: 'tcp', vaddr: '10.0.0.1', vport: 80 });
  const other: ServiceKey = { protocol: 'tcp', vaddr: '10.0.0.2', vport: 80 };
  e.addService({ ...other, scheduler: 'rr' });
  e.addDest(other, { daddr: RS2, dport: 8000, weight: 1 });
  assert.equal(e.listServices()[0].dests, [{
    daddr: RS2, dport: 8000, weight: 1, activeConns: 0, inactConns: 0, persistConns: 0, upperThreshold: 0, lowerThreshold: 0,
    conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0,
  }]);
});

test('weight 0 quiesces a dest: no new connections, existing ones continue', () => {
  const e = engine('-A -t 202.103.106.5:80 -s rr\n-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1\n-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 1\n');
  const c = handshake(e, 3456, T0);
  e.editDest(HTTP, { ...c, weight: 0 });
  const other = c.daddr === RS1 ? `${RS2}:8000` : `${RS1}:80`;
  for (let i = 0; i < 4; i++) trafficFlows(e, T0 + 1, [other]);
  assert.is(e.processPacket(fromClient(3456, 'PA', 80, 'x'), T0 + 2).verdict, 'forward');
  e.editDest(HTTP, { daddr: other.split(':')[0], dport: Number(other.split(':')[1]), weight: 0 });
  const none = e.processPacket(syn(3999), T0 + 3);
  assert.equal([none.verdict, none.reason], ['drop', 'no-dest']);
});

// ---- the ring ----------------------------------------------------------------------------

test('ring API: slot bounds and lengths are WASMVS_RING_SLOT', () => {
  const e = engine();
  const n = e.slotCount;
  for (const i of [-1, n, n + 1, 1.5]) rejected(e, () => e.slot(i), 'WASMVS_RING_SLOT', /slot .* is outside the ring \(0\.\.15\)/);
  rejected(e, () => e.setSlot(0, e.slotSize + 1), 'WASMVS_RING_SLOT', /length 2049 does not fit a 2048-byte slot/);
  rejected(e, () => e.setSlot(0, -1), 'WASMVS_RING_SLOT', /length -1/);
  rejected(e, () => e.setSlot(n + 1, 40), 'WASMVS_RING_SLOT', /outside the ring/);
  rejected(e, () => e.setSlot(0, 40, -1), 'WASMVS_RING_SLOT', /l3Offset -1/);
  rejected(e, () => e.writeSlot(0, new Uint8Array(e.slotSize + 1)), 'WASMVS_RING_SLOT', /packet of 2049 bytes does not fit a 2048-byte slot/);
  rejected(e, () => e.writeSlot(n, syn(1)), 'WASMVS_RING_SLOT', /outside the ring/);
  rejected(e, () => e.process(n, 1, T0), 'WASMVS_RING_SLOT', /slot 16 is outside the ring/);
  rejected(e, () => e.process(0, n + 1, T0), 'WASMVS_RING_SLOT', /count 17 must be 0\.\.16/);
  rejected(e, () => e.process(0, -1, T0), 'WASMVS_RING_SLOT', /count -1/);
  rejected(e, () => e.processPacket(new Uint8Array(e.slotSize + 1), T0), 'WASMVS_RING_SLOT', /does not fit/);
  assert.is(e.process(0, 0, T0), 0, 'an empty batch is fine');
});

test('ring API: reading a verdict, reason or length outside the ring is WASMVS_RING_SLOT', () => {
  // Otherwise these read whatever lies next to the descriptors in linear memory (or, far out,
  // throw a bare RangeError from the DataView).
  const e = engine();
  for (const i of [-1, e.slotCount + 1, 0.5, 2 ** 31]) {
    throwsCode(() => e.verdict(i), 'WASMVS_RING_SLOT', /outside the ring/);
    throwsCode(() => e.reason(i), 'WASMVS_RING_SLOT', /outside the ring/);
    throwsCode(() => e.slotLength(i), 'WASMVS_RING_SLOT', /outside the ring/);
  }
});

test('slot(i) is a zero-copy view: write through it, process, read the rewritten packet through it', () => {
  const e = engine(SINGLE);
  const view = e.slot(3);
  assert.is(view.buffer, e.memory.buffer);
  assert.is(view.length, e.slotSize);
  const pkt = tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, flags: 'S', seq: 77, payload: 'abc' });
  view.set(pkt);
  e.setSlot(3, pkt.length);
  assert.is(e.verdict(3), 'none');
  assert.is(e.process(3, 1, T0), 1);
  assert.is(e.verdict(3), 'forward');
  assert.is(e.reason(3), undefined);
  assert.is(e.slotLength(3), pkt.length);
  // The expected packet is built from scratch: checksums computed in full by the test kit.
  const expected = tcpPacket({ src: CLIENT, dst: RS2, sport: 3456, dport: 8000, flags: 'S', seq: 77, payload: 'abc' });
  assert.is(hex(view.subarray(0, pkt.length)), hex(expected));
  assert.is(hex(e.slot(3).subarray(0, pkt.length)), hex(expected), 'a second view sees the same bytes');
});

test('process() wraps around the ring and leaves other slots alone', () => {
  const e = engine(SINGLE);
  const last = e.slotCount - 1;
  e.writeSlot(last, syn(5000));
  e.writeSlot(0, syn(5001));
  e.writeSlot(1, syn(5002));
  assert.is(e.process(last, 2, T0), 2);
  assert.equal([e.verdict(last), e.verdict(0), e.verdict(1)], ['forward', 'forward', 'none']);
  assert.is(decode(e.slot(0).subarray(0, e.slotLength(0))).dst, RS2);
  assert.is(hex(e.slot(1).subarray(0, 40)), hex(syn(5002)), 'slot 1 untouched');
  // Verdicts and reasons of a mixed batch, slot by slot.
  e.writeSlot(2, syn(5003, 22));
  e.writeSlot(3, fromClient(5004, 'A'));
  e.writeSlot(4, tcpPacket({ src: CLIENT, dst: '10.9.9.9', sport: 5005, dport: 80, flags: 'S' }));
  assert.is(e.process(1, 4, T0), 1);
  assert.equal([1, 2, 3, 4].map((i) => [e.verdict(i), e.reason(i)]),
    [['forward', undefined], ['local', 'no-service'], ['drop', 'no-conn'], ['pass', 'no-match']]);
});

// ---- events ------------------------------------------------------------------------------

type Recorded = ConnEvent & { type: string; why?: string };

function record(e: Engine): Recorded[] {
  const seen: Recorded[] = [];
  e.on('conn-created', (ev) => seen.push({ type: 'created', ...ev }));
  e.on('conn-state', (ev) => seen.push({ type: 'state', ...ev }));
  e.on('conn-expired', (ev) => seen.push({ type: 'expired', ...ev }));
  return seen;
}

const TUPLE = { protocol: 'tcp', caddr: CLIENT, cport: 3456, vaddr: VIP, vport: 80, daddr: RS2, dport: 8000 } as const;

test('events follow a TCP connection: created, state changes, reused, timed out', () => {
  const e = engine(SINGLE);
  const seen = record(e);
  const ev = (type: string, oldState: string, state: string, time: number, why?: string): Recorded =>
    ({ type, ...TUPLE, state, oldState, time, ...(why ? { why } : {}) });

  e.processPacket(syn(3456), T0);
  e.processPacket(fromServer(RS2, 8000, 3456, 'SA'), T0 + 1); // SYN_RECV stays SYN_RECV: no event
  e.processPacket(fromClient(3456, 'A'), T0 + 2);
  e.processPacket(fromClient(3456, 'FA'), T0 + 3);
  e.processPacket(fromServer(RS2, 8000, 3456, 'FA'), T0 + 4);
  e.processPacket(fromClient(3456, 'A'), T0 + 5); // TIME_WAIT stays: no event
  assert.equal(seen, [
    ev('created', 'NONE', 'NONE', T0),
    ev('state', 'NONE', 'SYN_RECV', T0),
    ev('state', 'SYN_RECV', 'ESTABLISHED', T0 + 2),
    ev('state', 'ESTABLISHED', 'CLOSE_WAIT', T0 + 3),
    ev('state', 'CLOSE_WAIT', 'TIME_WAIT', T0 + 4),
  ]);

  // A new SYN on the tuple of a TIME_WAIT connection replaces it (conn_reuse_mode 1).
  seen.length = 0;
  const again = e.processPacket(syn(3456), T0 + 6);
  assert.ok(again.newConnection);
  assert.equal(seen, [
    ev('expired', 'TIME_WAIT', 'TIME_WAIT', T0 + 6, 'reused'),
    ev('created', 'NONE', 'NONE', T0 + 6),
    ev('state', 'NONE', 'SYN_RECV', T0 + 6),
  ]);

  // SYN_RECV times out after 60 s.
  seen.length = 0;
  e.expire(T0 + 6 + 59_999);
  assert.equal(seen, []);
  e.expire(T0 + 6 + 60_000);
  assert.equal(seen, [ev('expired', 'SYN_RECV', 'SYN_RECV', T0 + 6 + 60_000, 'timeout')]);
  assert.equal([e.counters().connsCreated, e.counters().connsReused, e.counters().connsExpired], [2, 1, 1]);
});

test('events of a UDP connection carry state UDP and expire after 300 s', () => {
  const e = engine('-A -u 202.103.106.5:53 -s rr\n-a -u 202.103.106.5:53 -r 172.16.0.3:5353 -m -w 1\n');
  const seen = record(e);
  const q = udpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 53, payload: 'q' });
  assert.is(e.processPacket(q, T0).verdict, 'forward');
  assert.is(e.processPacket(q, T0 + 10).verdict, 'forward');
  const tuple = { ...TUPLE, protocol: 'udp', vport: 53, dport: 5353 };
  assert.equal(seen, [{ type: 'created', ...tuple, state: 'UDP', oldState: 'UDP', time: T0 }]);
  e.expire(T0 + 10 + 299_999);
  assert.is(seen.length, 1);
  e.expire(T0 + 10 + 300_000);
  assert.equal(seen[1], { type: 'expired', ...tuple, state: 'UDP', oldState: 'UDP', time: T0 + 10 + 300_000, why: 'timeout' });
});

test('with no listener no event is recorded, so none is lost however small the ring', () => {
  const e = engine(SINGLE, { eventCapacity: 2 });
  for (let sent = 0; sent < 50; sent += e.slotCount) {
    const n = Math.min(e.slotCount, 50 - sent);
    for (let i = 0; i < n; i++) e.writeSlot(i, syn(6000 + sent + i));
    assert.is(e.process(0, n, T0), n);
  }
  e.expire(T0 + 60_000);
  const c = e.counters();
  assert.equal([c.connsCreated, c.connsExpired, c.eventsLost], [50, 50, 0]);
  // Nothing was queued for later either: a listener added now hears only new events.
  const seen = record(e);
  e.processPacket(syn(7000), T0 + 60_001);
  assert.equal(seen.map((x) => `${x.type}:${x.cport}`), ['created:7000', 'state:7000']);
});

test('with a listener and a ring of 2, eventsLost counts the overflow and the rest arrive in order', () => {
  const e = engine(SINGLE, { eventCapacity: 2 });
  const created: number[] = [];
  e.on('conn-created', (ev) => created.push(ev.cport));
  for (let i = 0; i < 10; i++) e.writeSlot(i, syn(6000 + i));
  assert.is(e.process(0, 10, T0), 10);
  assert.equal(created, [6000, 6001]);
  assert.is(e.counters().eventsLost, 8);
  // The ring drains every batch, so the next batch has room again.
  for (let i = 0; i < 3; i++) e.writeSlot(i, syn(6100 + i));
  e.process(0, 3, T0 + 1);
  assert.equal(created, [6000, 6001, 6100, 6101]);
  assert.is(e.counters().eventsLost, 9);
  for (let i = 0; i < 2; i++) e.writeSlot(i, syn(6200 + i));
  e.process(0, 2, T0 + 2);
  assert.equal(created.slice(4), [6200, 6201]);
  assert.is(e.counters().eventsLost, 9);
  // Two kinds of event share the ring: created + state per SYN.
  const states: string[] = [];
  e.on('conn-state', (ev) => states.push(`${ev.cport}:${ev.oldState}>${ev.state}`));
  for (let i = 0; i < 2; i++) e.writeSlot(i, syn(6300 + i));
  e.process(0, 2, T0 + 3);
  assert.equal(created.slice(6), [6300]);
  assert.equal(states, ['6300:NONE>SYN_RECV']);
  assert.is(e.counters().eventsLost, 11);
});

// ---- counters and memory -----------------------------------------------------------------

test('counters() and dest stats reflect a mixed batch exactly', () => {
  const e = engine(SINGLE);
  const s = syn(3456);
  const sa = fromServer(RS2, 8000, 3456, 'SA');
  const ack = fromClient(3456, 'A');
  const badSum = syn(3457);
  badSum[10] ^= 0xff; // the IP header checksum
  const ipv6 = new Uint8Array(40);
  ipv6[0] = 0x60;
  const batch = [
    s, // forward in, new connection
    sa, // forward out
    ack, // forward in
    syn(3458, 22), // local no-service
    fromClient(3459, 'A'), // drop no-conn
    tcpPacket({ src: CLIENT, dst: '10.9.9.9', sport: 3460, dport: 80, flags: 'S' }), // pass no-match
    ipv4Packet({ src: CLIENT, dst: VIP, protocol: 1, payload: new Uint8Array([8, 0, 0xf7, 0xff, 0, 0, 0, 0]) }), // local icmp (echo)
    ipv4Packet({ src: CLIENT, dst: '10.9.9.9', protocol: 1, payload: new Uint8Array([8, 0, 0xf7, 0xff, 0, 0, 0, 0]) }), // pass protocol
    badSum, // drop bad-ip-checksum
    ipv6, // pass not-ipv4
    udpPacket({ src: CLIENT, dst: VIP, sport: 3461, dport: 53 }), // local no-service
    new Uint8Array(10), // drop short-packet
  ];
  batch.forEach((p, i) => e.writeSlot(i, p));
  assert.is(e.process(0, batch.length, T0), 3);
  const c = e.counters();
  const zeroDrops = Object.fromEntries(Object.keys(c.drops).map((k) => [k, 0]));
  assert.equal(c, {
    packets: 12, forwardIn: 2, forwardOut: 1, pass: 3, drop: 3, local: 3,
    connsCreated: 1, connsExpired: 0, connsReused: 0, eventsLost: 0, liveConns: 1,
    drops: { ...zeroDrops, 'no-conn': 1, 'bad-ip-checksum': 1, 'short-packet': 1 },
    passes: { 'not-ipv4': 1, protocol: 1, 'no-match': 1 },
    locals: { 'no-service': 2, icmp: 1, protocol: 0 },
    ftp: { passive: 0, active: 0, rewritten: 0, retransmit: 0, 'split-command': 0, 'split-reply': 0, 'no-room': 0, 'table-full': 0, clash: 0, 'bad-reply': 0, 'sessions-full': 0 },
  });
  assert.equal(e.listServices()[0].dests[0], {
    daddr: RS2, dport: 8000, weight: 1, activeConns: 1, inactConns: 0, persistConns: 0, upperThreshold: 0, lowerThreshold: 0,
    conns: 1, inPkts: 2, outPkts: 1, inBytes: s.length + ack.length, outBytes: sa.length,
  });
  e.expire(T0 + 900_000);
  const after = e.counters();
  assert.equal([after.connsExpired, after.liveConns, after.packets], [1, 0, 12]);
  assert.equal([e.listServices()[0].dests[0].activeConns, e.listServices()[0].dests[0].inactConns], [0, 0]);
});

test('memoryUsage(): at most 64 bytes of connection table per connection', () => {
  const byDefault = new Engine({ slotCount: 16 });
  assert.ok(byDefault.memoryUsage().perConnection <= 64, `default: ${byDefault.memoryUsage().perConnection}`);
  assert.is(byDefault.connCapacity, 1 << 20);
  // The index is 4 slots per connection rounded up to a power of two, so sizes that are not
  // a power of two are the ones to try.
  const over: string[] = [];
  for (const connCapacity of [1, 3, 1000, 1025, 4096, 100_000]) {
    const u = new Engine({ ...SMALL, connCapacity }).memoryUsage();
    assert.ok(u.connTable <= u.total);
    if (u.perConnection > 64) over.push(`connCapacity ${connCapacity}: ${u.perConnection} bytes`);
  }
  assert.equal(over, []);
});

test("'config' follows every configuration change that succeeded, once per call; a refused call says nothing", () => {
  const engine = new Engine({ slotCount: 8, connCapacity: 64 });
  let n = 0;
  engine.on('config', () => { n++; });
  const calls: Array<[string, () => void]> = [
    ['restore', () => engine.restore(SINGLE)],
    ['addService', () => engine.addService({ protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'rr' })],
    ['addDest', () => engine.addDest({ protocol: 'udp', vaddr: VIP, vport: 53 }, { daddr: RS1, dport: 53, weight: 1 })],
    ['editDest', () => engine.editDest({ protocol: 'udp', vaddr: VIP, vport: 53 }, { daddr: RS1, dport: 53, weight: 3 })],
    ['editService', () => engine.editService({ protocol: 'udp', vaddr: VIP, vport: 53, scheduler: 'wrr' })],
    ['delDest', () => engine.delDest({ protocol: 'udp', vaddr: VIP, vport: 53 }, { daddr: RS1, dport: 53 })],
    ['delService', () => engine.delService({ protocol: 'udp', vaddr: VIP, vport: 53 })],
    ['setTimeouts', () => engine.setTimeouts({ tcp: 600 })],
    ['setExpireNodestConn', () => engine.setExpireNodestConn(true)],
    ['clear', () => engine.clear()],
  ];
  for (const [name, call] of calls) {
    const before = n;
    call();
    assert.is(n, before + 1, `${name}: one event`);
  }
  const before = n;
  assert.throws(() => engine.addDest({ protocol: 'tcp', vaddr: VIP, vport: 9 }, { daddr: RS1, dport: 9, weight: 1 }));
  assert.throws(() => engine.restore('-A -t 202.103.106.5:80 -s nosuch\n'));
  assert.is(n, before, 'refused calls emit nothing');
});

test.run();
