// Mixed director traffic for the differential tests: a seeded, reactive generator of what a NAT
// director's wire carries on a bad day. Many clients open TCP connections (handshakes, data both
// ways, FIN/RST closes in both orders, client ports reused while the old connection sits in
// TIME_WAIT, packets with odd flag combinations), UDP request/response flows, ICMP errors about
// known and unknown connections from both sides, persistence (a -p -M service), thresholds
// (-x/-y), idle gaps past every timeout (and to the millisecond around them), configuration
// changes (weights incl. 0, real servers deleted and re-added, timeouts, expire_nodest_conn, a
// scheduler change), SYN bursts that fill the connection table, and malformed and mutated
// packets (truncations, bit flips in headers and payloads, bad checksums, fragments, IPv6,
// trailing bytes, Ethernet framing).
//
// Reactive: packets from a real server must come from the server the engine chose, so the
// generator is a generator function the driver resumes with the result of the step it yielded
// (the first engine's PacketResult for a packet step, undefined otherwise): a forwarded SYN's
// output names the real server, and the generator remembers it for the connection's replies.
// A run is deterministic from its seed and the results fed back; the driver records the steps
// it was given, so a recorded list replays without the generator.
//
// Packets come from the packet kit (./packets.ts); ICMP errors are assembled here from kit
// packets, as a router quotes them. Nothing here reads engine code.
import type { EngineOptions, PacketResult } from '../../host/engine/engine.js';
import { prng, randBytes, randInt } from './dataplane.js';
import { ethernetFrame, icmpPacket, ipChecksum, tcpPacket, udpPacket } from './packets.js';

// What both engines of a differential run implement: the subset of Engine's API the
// reference engine (test/reference/engine.ts) shares.
import type { EngineLike } from '../reference/engine-like.js';
export type { EngineLike };

export type Step =
  | { at: number; action: 'packet'; bytes: Uint8Array; l3Offset?: number; note?: string }
  | { at: number; action: 'config'; op: (e: EngineLike) => void; describe: string }
  | { at: number; action: 'expire' };

/** What the driver feeds back after each step: the first engine's result for a packet. */
export type StepFeedback = PacketResult | undefined;

export const VIP = '202.103.106.5';
const ROUTER_CLIENT_SIDE = '198.51.100.1';
const ROUTER_SERVER_SIDE = '172.16.0.254';

/**
 * The rules every differential run starts from (ipvsadm-save -n syntax). Deterministic
 * schedulers only (twos draws random numbers). :80 has a real server with thresholds, :443
 * is persistent per /24, :53 is UDP, :5060 is UDP with one-packet scheduling (-o), :21 uses
 * lc, :8080 has no real server. (Mid-run, config steps delete services and add them back, and
 * add and remove a whole extra service, tcp :8443: see EXTRA_SERVICE.)
 */
export const MIXED_RULES = [
  '-A -t 202.103.106.5:80 -s wrr',
  '-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1',
  '-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 2',
  '-a -t 202.103.106.5:80 -r 172.16.0.4:80 -m -w 3 -x 4 -y 2',
  '-A -t 202.103.106.5:443 -s wlc -p 120 -M 255.255.255.0',
  '-a -t 202.103.106.5:443 -r 172.16.0.5:443 -m -w 1',
  '-a -t 202.103.106.5:443 -r 172.16.0.6:443 -m -w 1',
  '-A -u 202.103.106.5:53 -s rr',
  '-a -u 202.103.106.5:53 -r 172.16.0.7:53 -m -w 1',
  '-a -u 202.103.106.5:53 -r 172.16.0.8:5353 -m -w 1',
  '-A -t 202.103.106.5:21 -s lc',
  '-a -t 202.103.106.5:21 -r 172.16.0.3:21 -m -w 1',
  '-A -t 202.103.106.5:8080 -s rr',
  '-A -u 202.103.106.5:5060 -s rr -o',
  '-a -u 202.103.106.5:5060 -r 172.16.0.7:5060 -m -w 1',
  '-a -u 202.103.106.5:5060 -r 172.16.0.9:5060 -m -w 2',
].join('\n') + '\n';

/** Timeouts short enough that idle gaps pass them often; a small table so bursts fill it. */
export const MIXED_OPTIONS: Pick<EngineOptions, 'connCapacity' | 'timeouts' | 'expireNodestConn'> = {
  connCapacity: 256,
  timeouts: { tcp: 120, tcpfin: 30, udp: 40 },
  expireNodestConn: false,
};

interface DestModel { daddr: string; dport: number; weight: number; x?: number; y?: number; present: boolean }
interface ServiceModel { protocol: 'tcp' | 'udp'; vport: number; scheduler: string; persistence?: number; netmask?: string; onePacket?: boolean; dests: DestModel[]; present: boolean }

/** The extra service config steps add and remove as a whole mid-run (absent at first). */
export const EXTRA_SERVICE = { protocol: 'tcp' as const, vport: 8443, scheduler: 'sh' };

function model(): ServiceModel[] {
  return [
    { protocol: 'tcp', vport: 80, scheduler: 'wrr', dests: [
      { daddr: '172.16.0.2', dport: 80, weight: 1, present: true },
      { daddr: '172.16.0.3', dport: 8000, weight: 2, present: true },
      { daddr: '172.16.0.4', dport: 80, weight: 3, x: 4, y: 2, present: true },
    ], present: true },
    { protocol: 'tcp', vport: 443, scheduler: 'wlc', persistence: 120, netmask: '255.255.255.0', dests: [
      { daddr: '172.16.0.5', dport: 443, weight: 1, present: true },
      { daddr: '172.16.0.6', dport: 443, weight: 1, present: true },
    ], present: true },
    { protocol: 'udp', vport: 53, scheduler: 'rr', dests: [
      { daddr: '172.16.0.7', dport: 53, weight: 1, present: true },
      { daddr: '172.16.0.8', dport: 5353, weight: 1, present: true },
    ], present: true },
    { protocol: 'tcp', vport: 21, scheduler: 'lc', dests: [{ daddr: '172.16.0.3', dport: 21, weight: 1, present: true }], present: true },
    { protocol: 'udp', vport: 5060, scheduler: 'rr', onePacket: true, dests: [
      { daddr: '172.16.0.7', dport: 5060, weight: 1, present: true },
      { daddr: '172.16.0.9', dport: 5060, weight: 2, present: true },
    ], present: true },
    // Not in MIXED_RULES: config steps add it (with its real servers) and delete it whole.
    { ...EXTRA_SERVICE, dests: [
      { daddr: '172.16.0.2', dport: 8443, weight: 1, present: true },
      { daddr: '172.16.0.10', dport: 443, weight: 2, present: true },
    ], present: false },
  ];
}

type Phase = 'syn' | 'synack' | 'ack' | 'est' | 'finC' | 'finS' | 'lastAckC' | 'lastAckS'
  // An active FTP data connection: the server opens it.
  | 'activeSyn' | 'activeSynAck' | 'activeAck';

interface Flow {
  proto: 'tcp' | 'udp';
  caddr: string;
  cport: number;
  vport: number;
  /** The real server the engine chose (from the forwarded first packet), if any. */
  daddr?: string;
  dport?: number;
  phase: Phase;
  cseq: number;
  sseq: number;
  /** An FTP control flow: how much longer the engine made the server's stream (227 rewrites),
   * so that the client acknowledges in its own sequence space, as a real one would. */
  shift?: number;
  /** Its last server segment, for a retransmission. */
  lastServer?: Uint8Array;
}

export interface TrafficOptions {
  seed: number;
  /** Steps to generate. */
  steps: number;
  /** Distinct client addresses (default 40, spread over a few /24s for persistence). */
  clients?: number;
  /** Engine time of the first step, ms (default 1,000,000). */
  startMs?: number;
  /** false: no traffic to the persistent service (:443), to look past a known disagreement there. */
  persistence?: boolean;
}

// Idle gaps: past CLOSE (10 s), tcpfin (30 s), udp (40 s), SYN_RECV (60 s), TIME_WAIT and tcp
// and persistence (120 s), well past all; and a few to the millisecond around them.
const GAPS_MS = [5_000, 15_000, 35_000, 45_000, 65_000, 125_000, 200_000, 1_000_000];
const EXACT_GAPS_MS = [10_000, 30_000, 40_000, 60_000, 120_000];

/**
 * The generator. Yields steps; resume it with the first engine's result of each step (see
 * StepFeedback). Ends after `steps` steps.
 */
export function* mixedTraffic(o: TrafficOptions): Generator<Step, void, StepFeedback> {
  const rand = prng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const chance = (p: number) => rand() < p;
  const clients: string[] = [];
  const nClients = o.clients ?? 40;
  for (let i = 0; i < nClients; i++) clients.push(`203.0.${113 + (i % 4)}.${10 + Math.floor(i / 4)}`);
  const services = model();
  let now = o.startMs ?? 1_000_000;
  let produced = 0;
  const flows: Flow[] = [];
  /** (caddr, cport) pairs of closed TCP connections, likely still in TIME_WAIT. */
  const closed: { caddr: string; cport: number; vport: number }[] = [];
  /** Recent valid packets, the raw material of mutations. */
  const recent: Uint8Array[] = [];
  let nextPort = 1024 + randInt(rand, 0, 20000);
  let nodest = false;
  /** Where the IP header of the last packet step starts (an Ethernet-framed step: 14 or 18). */
  let lastL3 = 0;

  const remember = (p: Uint8Array) => {
    recent.push(p);
    if (recent.length > 64) recent.shift();
  };
  const newPort = () => {
    nextPort = nextPort >= 65535 ? 1024 : nextPort + 1;
    return nextPort;
  };
  const seq = () => randInt(rand, 0, 0xffffffff);
  // Now and then a packet of 1500-2000 bytes (IP total length; the engine's slot is 2048 bytes
  // and an Ethernet frame adds at most 18): payloads up to 1960 bytes behind 40 bytes of headers.
  const payload = () => randBytes(rand, chance(0.04) ? randInt(rand, 1460, 1960) : pick([0, 0, 1, 7, 100, 536, 1400]));

  function clientTcp(f: Flow, flags: string, data: Uint8Array = new Uint8Array(0), sack?: Uint8Array): Uint8Array {
    const p = tcpPacket({ src: f.caddr, dst: VIP, sport: f.cport, dport: f.vport, flags, seq: f.cseq >>> 0, ack: (f.sseq + (f.shift ?? 0)) >>> 0, payload: data, df: chance(0.5), id: randInt(rand, 0, 0xffff), ...(sack ? { tcpOptions: sack } : {}) });
    f.cseq = (f.cseq + data.length + (flags.includes('S') || flags.includes('F') ? 1 : 0)) >>> 0;
    return p;
  }
  function serverTcp(f: Flow, flags: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
    const p = tcpPacket({ src: f.daddr!, dst: f.caddr, sport: f.dport!, dport: f.cport, flags, seq: f.sseq >>> 0, ack: f.cseq >>> 0, payload: data, df: chance(0.5), id: randInt(rand, 0, 0xffff) });
    f.sseq = (f.sseq + data.length + (flags.includes('S') || flags.includes('F') ? 1 : 0)) >>> 0;
    return p;
  }

  /** Yields one packet step and returns the first engine's result. */
  function* packet(bytes: Uint8Array, note: string, valid = true): Generator<Step, StepFeedback, StepFeedback> {
    if (valid) remember(bytes);
    // Now and then the same packet inside an Ethernet frame (l3Offset 14), padded or tagged.
    if (valid && chance(0.05)) {
      const vlan = chance(0.3) ? randInt(rand, 1, 4094) : undefined;
      const frame = ethernetFrame(bytes, { pad: chance(0.5), vlan });
      produced++;
      lastL3 = vlan === undefined ? 14 : 18;
      return yield { at: now, action: 'packet', bytes: frame, l3Offset: vlan === undefined ? 14 : 18, note: `${note} (in an Ethernet frame)` };
    }
    produced++;
    lastL3 = 0;
    return yield { at: now, action: 'packet', bytes, note };
  }

  function* config(op: (e: EngineLike) => void, describe: string): Generator<Step, void, StepFeedback> {
    produced++;
    yield { at: now, action: 'config', op, describe };
  }

  /** The real server a forwarded client packet went to, from its rewritten destination. */
  function learn(f: Flow, r: StepFeedback, l3 = 0): void {
    if (!r || r.verdict !== 'forward' || r.reply || !r.newConnection) return;
    const p = r.packet;
    f.daddr = `${p[l3 + 16]}.${p[l3 + 17]}.${p[l3 + 18]}.${p[l3 + 19]}`;
    const ihl = (p[l3] & 0x0f) * 4;
    f.dport = p[l3 + ihl + 2] * 256 + p[l3 + ihl + 3];
  }

  function* clientPacket(f: Flow, bytes: Uint8Array, note: string): Generator<Step, void, StepFeedback> {
    const r = yield* packet(bytes, note);
    learn(f, r, lastL3);
  }

  function openTcp(): Flow {
    const svc = o.persistence === false ? pick([80, 80, 80, 21, 8080, 8443]) : pick([80, 80, 80, 443, 443, 21, 8080, 8443]);
    let caddr = pick(clients);
    let cport = newPort();
    let vport = svc;
    if (closed.length > 0 && chance(0.3)) {
      // Port reuse while the old connection is (probably) in TIME_WAIT.
      const c = closed.splice(randInt(rand, 0, closed.length - 1), 1)[0];
      caddr = c.caddr;
      cport = c.cport;
      vport = c.vport;
    }
    return { proto: 'tcp', caddr, cport, vport, phase: 'syn', cseq: seq(), sseq: seq() };
  }

  function close(f: Flow): void {
    flows.splice(flows.indexOf(f), 1);
    if (f.proto === 'tcp') {
      closed.push({ caddr: f.caddr, cport: f.cport, vport: f.vport });
      if (closed.length > 50) closed.shift();
    }
  }

  /** One step of a TCP flow's life, by phase. */
  function* advanceTcp(f: Flow): Generator<Step, void, StepFeedback> {
    const id = `${f.caddr}:${f.cport}->:${f.vport}`;
    const server = f.daddr !== undefined;
    switch (f.phase) {
      case 'syn':
        yield* clientPacket(f, clientTcp(f, 'S'), `${id} SYN`);
        f.phase = 'synack';
        return;
      case 'synack':
        if (!server || chance(0.1)) {
          // No server chose it (or the SYN-ACK was lost): the client retransmits, then gives up.
          if (chance(0.5)) { f.cseq = (f.cseq - 1) >>> 0; yield* clientPacket(f, clientTcp(f, 'S'), `${id} SYN again`); } else close(f);
          return;
        }
        yield* packet(serverTcp(f, 'SA'), `${id} SYN-ACK from ${f.daddr}:${f.dport}`);
        f.phase = 'ack';
        return;
      case 'ack':
        yield* clientPacket(f, clientTcp(f, 'A'), `${id} ACK`);
        f.phase = 'est';
        return;
      case 'activeSyn':
        yield* packet(serverTcp(f, 'S'), `${id} active FTP data SYN from ${f.daddr}:${f.dport}`);
        f.phase = 'activeSynAck';
        return;
      case 'activeSynAck':
        yield* clientPacket(f, clientTcp(f, 'SA'), `${id} active FTP data SYN-ACK`);
        f.phase = 'activeAck';
        return;
      case 'activeAck':
        yield* packet(serverTcp(f, 'A'), `${id} active FTP data ACK`);
        f.phase = 'est';
        return;
      case 'est': {
        if (f.vport === 21 && chance(0.9)) return yield* ftp(f, id);
        const r = rand();
        if (r < 0.35) yield* clientPacket(f, clientTcp(f, 'PA', payload()), `${id} client data`);
        else if (r < 0.7 && server) yield* packet(serverTcp(f, 'PA', payload()), `${id} server data`);
        else if (r < 0.8) { yield* clientPacket(f, clientTcp(f, 'FA'), `${id} client FIN`); f.phase = 'finC'; }
        else if (r < 0.88 && server) { yield* packet(serverTcp(f, 'FA'), `${id} server FIN`); f.phase = 'finS'; }
        else if (r < 0.93) { yield* clientPacket(f, clientTcp(f, chance(0.5) ? 'R' : 'RA'), `${id} client RST`); close(f); }
        else if (server) { yield* packet(serverTcp(f, 'R'), `${id} server RST`); close(f); }
        else yield* clientPacket(f, clientTcp(f, 'A'), `${id} client ACK`);
        return;
      }
      case 'finC':
        if (!server) { yield* clientPacket(f, clientTcp(f, 'A'), `${id} client ACK after FIN`); close(f); return; }
        if (chance(0.3)) { yield* packet(serverTcp(f, 'PA', payload()), `${id} server data after client FIN`); return; }
        yield* packet(serverTcp(f, 'FA'), `${id} server FIN`);
        f.phase = 'lastAckC';
        return;
      case 'finS':
        if (chance(0.3)) { yield* clientPacket(f, clientTcp(f, 'PA', payload()), `${id} client data after server FIN`); return; }
        yield* clientPacket(f, clientTcp(f, 'FA'), `${id} client FIN`);
        f.phase = 'lastAckS';
        return;
      case 'lastAckC':
        yield* clientPacket(f, clientTcp(f, 'A'), `${id} client last ACK`);
        close(f);
        return;
      case 'lastAckS':
        if (server) yield* packet(serverTcp(f, 'A'), `${id} server last ACK`);
        close(f);
        return;
    }
  }

  function* advanceUdp(f: Flow): Generator<Step, void, StepFeedback> {
    const id = `${f.caddr}:${f.cport}->udp:${f.vport}`;
    if (f.daddr === undefined || chance(0.5)) {
      const p = udpPacket({ src: f.caddr, dst: VIP, sport: f.cport, dport: f.vport, payload: payload(), zeroChecksum: chance(0.1) });
      yield* clientPacket(f, p, `${id} request`);
    } else {
      const p = udpPacket({ src: f.daddr, dst: f.caddr, sport: f.dport!, dport: f.cport, payload: payload(), zeroChecksum: chance(0.1) });
      yield* packet(p, `${id} response from ${f.daddr}:${f.dport}`);
    }
    if (chance(0.08)) close(f);
  }

  /**
   * An FTP control flow's step: commands (PASV, EPSV, EPSV ALL, PORT, EPRT, some in one
   * segment, some cut in two), replies (227 with and without parentheses, some after another
   * line, some cut, now and then with another address; 229), retransmissions of the server's
   * last segment, SACK blocks; the data connections they announce join the flows.
   */
  function* ftp(f: Flow, id: string): Generator<Step, void, StepFeedback> {
    // A few exchanges in a row, as a session runs them, before other flows get a turn.
    for (let k = randInt(rand, 1, 3); k > 0; k--) yield* ftpOne(f, id);
  }

  function* ftpOne(f: Flow, id: string): Generator<Step, void, StepFeedback> {
    const enc = (t: string) => new TextEncoder().encode(t);
    const port = randInt(rand, 1024, 65535);
    const server = f.daddr !== undefined;
    const r = rand();
    const serverSends = function* (text: string, note: string): Generator<Step, void, StepFeedback> {
      const cut = chance(0.1) ? randInt(rand, 1, text.length - 1) : text.length;
      for (const part of cut < text.length ? [text.slice(0, cut), text.slice(cut)] : [text]) {
        const bytes = serverTcp(f, 'PA', enc(part));
        f.lastServer = bytes;
        const res = yield* packet(bytes, `${id} ${note}${cut < text.length ? ' (cut)' : ''}`);
        if (res?.verdict === 'forward' && lastL3 === 0) f.shift = ((f.shift ?? 0) + res.packet.length - bytes.length) | 0;
      }
    };
    if (r < 0.22) {
      const cmd = pick(['PASV\r\n', 'EPSV\r\n', 'EPSV ALL\r\n', 'pasv\r\n', 'TYPE I\r\nPASV\r\n', 'EPSV 1\r\n', 'PAS', 'PASVX\r\n']);
      yield* clientPacket(f, clientTcp(f, 'PA', enc(cmd)), `${id} FTP ${JSON.stringify(cmd)}`);
    } else if (r < 0.4 && server) {
      const addr = chance(0.9) ? f.daddr! : pick(['172.16.0.2', '10.1.2.3', '172.16.200.200']);
      const six = `${addr.split('.').join(',')},${port >> 8},${port & 0xff}`;
      // Mostly right after the client's PASV, as a server answers it.
      if (chance(0.6)) yield* clientPacket(f, clientTcp(f, 'PA', enc('PASV\r\n')), `${id} FTP "PASV"`);
      const bad = chance(0.2);
      const text = `${chance(0.2) ? '200 Switching to Binary mode.\r\n' : ''}227 Entering Passive Mode ${bad ? '(1,2,3)' : chance(0.7) ? `(${six}).` : six}\r\n`;
      yield* serverSends(text, `FTP 227 for ${addr}:${port}`);
      if (chance(0.3) && f.lastServer) yield* packet(f.lastServer, `${id} FTP 227 retransmitted`);
      if (chance(0.6)) flows.push({ proto: 'tcp', caddr: f.caddr, cport: newPort(), vport: port, daddr: addr, dport: port, phase: 'syn', cseq: seq(), sseq: seq() });
    } else if (r < 0.5 && server) {
      yield* serverSends(`229 Entering Extended Passive Mode (|||${port}|)\r\n`, `FTP 229 for ${port}`);
      if (chance(0.6)) flows.push({ proto: 'tcp', caddr: f.caddr, cport: newPort(), vport: port, daddr: f.daddr, dport: port, phase: 'syn', cseq: seq(), sseq: seq() });
    } else if (r < 0.65) {
      const cmd = chance(0.6) ? `PORT ${f.caddr.split('.').join(',')},${port >> 8},${port & 0xff}\r\n` : `EPRT |1|${f.caddr}|${port}|\r\n`;
      const cut = chance(0.1) ? randInt(rand, 1, cmd.length - 1) : cmd.length;
      for (const part of cut < cmd.length ? [cmd.slice(0, cut), cmd.slice(cut)] : [cmd]) yield* clientPacket(f, clientTcp(f, 'PA', enc(part)), `${id} FTP ${JSON.stringify(part)}`);
      if (server && cut === cmd.length && chance(0.6)) flows.push({ proto: 'tcp', caddr: f.caddr, cport: port, vport: 20, daddr: f.daddr, dport: f.dport! - 1, phase: 'activeSyn', cseq: seq(), sseq: seq() });
    } else if (r < 0.75 && f.lastServer) {
      yield* packet(f.lastServer, `${id} FTP server segment retransmitted`);
    } else if (r < 0.85) {
      // SACK blocks around what the server sent (client space), as a client with a hole would.
      const base = (f.sseq + (f.shift ?? 0)) >>> 0;
      const blocks: Array<[number, number]> = [[base - randInt(rand, 1, 200), base - randInt(rand, 0, 1)], [base + 10, base + 30]];
      const n = randInt(rand, 1, 2);
      const opt = new Uint8Array(4 + 8 * n);
      opt.set([1, 1, 5, 2 + 8 * n]);
      const v = new DataView(opt.buffer);
      for (let i = 0; i < n; i++) { v.setUint32(4 + 8 * i, blocks[i][0] >>> 0); v.setUint32(8 + 8 * i, blocks[i][1] >>> 0); }
      yield* clientPacket(f, clientTcp(f, 'A', new Uint8Array(0), opt), `${id} FTP client ACK with SACK`);
    } else if (server) {
      yield* serverSends(pick(['150 Opening BINARY mode data connection.\r\n', '226 Transfer complete.\r\n', '227 Entering Passive Mode (x)\r\n', '22', '229 (|||0|)\r\n']), 'FTP reply');
    } else {
      yield* clientPacket(f, clientTcp(f, 'PA', enc('NOOP\r\n')), `${id} FTP NOOP`);
    }
  }

  /** A TCP packet of a flow with arbitrary flags, from either side: the state table's corners. */
  function* chaos(f: Flow): Generator<Step, void, StepFeedback> {
    const flags = pick(['S', 'SA', 'A', 'F', 'FA', 'R', 'RA', 'SF', 'SR', 'FR', 'PA', '', 'U', 'EC', 'SAFRPU']);
    if (f.daddr !== undefined && chance(0.5)) yield* packet(serverTcp(f, flags), `odd flags '${flags}' from the server`);
    else yield* clientPacket(f, clientTcp(f, flags), `odd flags '${flags}' from the client`);
  }

  const icmpError = (src: string, dst: string, type: number, code: number, rest: number, quoted: Uint8Array): Uint8Array =>
    icmpPacket({ src, dst, type, code, rest, body: quoted, ttl: 60 });

  /** ICMP errors about a flow, both directions, or about a connection nobody has. */
  function* icmp(f: Flow | undefined): Generator<Step, void, StepFeedback> {
    const quoteLen = pick([8, 8, 20, 28]);
    const mtu = pick([576, 1280, 1400, 1492]);
    const [type, code] = pick([[3, 4], [3, 4], [3, 4], [11, 0], [3, 3], [3, 1], [12, 0], [4, 0]] as const);
    const rest = type === 3 && code === 4 ? mtu : 0;
    const build = (o: { src: string; dst: string; sport: number; dport: number }, proto: 'tcp' | 'udp') => {
      const p = proto === 'tcp'
        ? tcpPacket({ ...o, flags: 'PA', seq: seq(), ack: seq(), df: true, payload: randBytes(rand, 40) })
        : udpPacket({ ...o, payload: randBytes(rand, 40) });
      return p.slice(0, 20 + Math.min(quoteLen, p.length - 20));
    };
    if (!f || f.daddr === undefined || chance(0.15)) {
      // About an unknown connection: either direction, random ports.
      const proto = chance(0.7) ? 'tcp' : 'udp';
      const caddr = pick(clients);
      if (chance(0.5)) {
        const q = build({ src: VIP, dst: caddr, sport: pick([80, 53, 9999]), dport: randInt(rand, 1024, 65535) }, proto);
        yield* packet(icmpError(ROUTER_CLIENT_SIDE, VIP, type, code, rest, q), `ICMP ${type}/${code} about an unknown connection, to the VIP`);
      } else {
        const q = build({ src: caddr, dst: pick(['172.16.0.2', '172.16.0.7']), sport: randInt(rand, 1024, 65535), dport: pick([80, 53]) }, proto);
        yield* packet(icmpError(pick([ROUTER_SERVER_SIDE, '172.16.0.2']), caddr, type, code, rest, q), `ICMP ${type}/${code} about an unknown connection, from the server side`);
      }
      return;
    }
    if (chance(0.5)) {
      // A router near the client about a reply the director sent (VIP -> client).
      const q = build({ src: VIP, dst: f.caddr, sport: f.vport, dport: f.cport }, f.proto);
      yield* packet(icmpError(ROUTER_CLIENT_SIDE, VIP, type, code, rest, q), `ICMP ${type}/${code} about ${f.caddr}:${f.cport}'s reply, to the VIP`);
    } else {
      // A router (or the server) behind the director about a request it forwarded.
      const q = build({ src: f.caddr, dst: f.daddr, sport: f.cport, dport: f.dport! }, f.proto);
      yield* packet(icmpError(chance(0.5) ? ROUTER_SERVER_SIDE : f.daddr, f.caddr, type, code, rest, q), `ICMP ${type}/${code} about ${f.caddr}:${f.cport}'s request, from the server side`);
    }
  }

  /** A recent valid packet, broken one way or another. */
  function mutate(): { bytes: Uint8Array; note: string } {
    const base = recent.length > 0 ? pick(recent) : tcpPacket({ src: pick(clients), dst: VIP, sport: 1, dport: 80, flags: 'S' });
    const p = base.slice();
    const ihl = (p[0] & 0x0f) * 4;
    const fixIp = () => {
      const hl = (p[0] & 0x0f) * 4; // as mutated
      if (hl >= 20 && p.length >= hl) { const s = ipChecksum(p); p[10] = s >> 8; p[11] = s & 0xff; }
    };
    switch (randInt(rand, 0, 12)) {
      case 0: {
        const n = randInt(rand, 0, p.length - 1);
        return { bytes: p.slice(0, n), note: `truncated to ${n} bytes` };
      }
      case 1: {
        const at = randInt(rand, 0, Math.min(p.length, 40) - 1);
        const bit = randInt(rand, 0, 7);
        p[at] ^= 1 << bit;
        return { bytes: p, note: `header bit ${bit} of byte ${at} flipped` };
      }
      case 2: {
        const at = randInt(rand, 0, Math.min(p.length, 40) - 1);
        const bit = randInt(rand, 0, 7);
        p[at] ^= 1 << bit;
        fixIp();
        return { bytes: p, note: `header bit ${bit} of byte ${at} flipped, IP checksum fixed` };
      }
      case 3: {
        const at = randInt(rand, 0, p.length - 1);
        p[at] ^= 1 << randInt(rand, 0, 7);
        return { bytes: p, note: `bit flipped in byte ${at}` };
      }
      case 4:
        p[11] ^= 0x01;
        return { bytes: p, note: 'bad IP checksum' };
      case 5: {
        const off = p[9] === 6 ? 16 : p[9] === 17 ? 6 : 2;
        if (ihl + off + 1 < p.length) p[ihl + off + 1] ^= 0x40;
        return { bytes: p, note: 'bad L4 checksum' };
      }
      case 6: {
        // A fragment: MF, or an offset, IP checksum fixed so the fragment check is what decides.
        const first = chance(0.5);
        p[6] = (p[6] & 0x40) | (first ? 0x20 : randInt(rand, 0, 0x1f));
        if (!first) p[7] = randInt(rand, 1, 255);
        fixIp();
        return { bytes: p, note: first ? 'first fragment (MF)' : 'later fragment' };
      }
      case 7: {
        const v6 = new Uint8Array(40 + randInt(rand, 0, 40));
        v6[0] = 0x60;
        v6[4] = 0; v6[5] = v6.length - 40;
        v6[6] = pick([6, 17, 58]);
        v6[7] = 64;
        return { bytes: v6, note: 'an IPv6 packet' };
      }
      case 8: {
        const extra = randBytes(rand, randInt(rand, 1, 3));
        const out = new Uint8Array(p.length + extra.length);
        out.set(p);
        out.set(extra, p.length);
        return { bytes: out, note: `${extra.length} trailing byte(s) past total length` };
      }
      case 9: {
        const len = p[2] * 256 + p[3] + pick([-9, -1, 1, 7, 300]);
        p[2] = (len >> 8) & 0xff;
        p[3] = len & 0xff;
        fixIp();
        return { bytes: p, note: `total length set to ${len & 0xffff}` };
      }
      case 10: {
        p[0] = (p[0] & 0xf0) | pick([0, 4, 6, 15]);
        return { bytes: p, note: `IHL set to ${p[0] & 0x0f}` };
      }
      case 11: {
        if (p[9] === 6 && p.length > ihl + 12) {
          p[ihl + 12] = (p[ihl + 12] & 0x0f) | (pick([0, 4, 6, 15]) << 4);
          return { bytes: p, note: `TCP data offset set to ${p[ihl + 12] >> 4}` };
        }
        if (p[9] === 17 && p.length > ihl + 5) {
          p[ihl + 4] = 0;
          p[ihl + 5] = pick([0, 7, 9, 255]);
          return { bytes: p, note: `UDP length set to ${p[ihl + 5]}` };
        }
        p[9] = pick([47, 50, 132]);
        fixIp();
        return { bytes: p, note: `protocol set to ${p[9]}` };
      }
      default: {
        const junk = randBytes(rand, randInt(rand, 0, 80));
        if (junk.length > 0 && chance(0.5)) junk[0] = 0x45;
        return { bytes: junk, note: `${junk.length} random bytes` };
      }
    }
  }

  /** A configuration change, chosen so it is valid against the model (mostly). */
  const destSpec = (x: DestModel) => ({ daddr: x.daddr, dport: x.dport, weight: x.weight, ...(x.x ? { upperThreshold: x.x } : {}), ...(x.y ? { lowerThreshold: x.y } : {}) });

  /** A whole service added (with the real servers the model has present), or deleted. */
  function* serviceChange(svc: ServiceModel): Generator<Step, void, StepFeedback> {
    const key = { protocol: svc.protocol, vaddr: VIP, vport: svc.vport };
    const name = `${svc.protocol} ${VIP}:${svc.vport}`;
    if (svc.present) {
      svc.present = false;
      yield* config((e) => e.delService(key), `delService ${name}`);
      return;
    }
    svc.present = true;
    const spec = {
      ...key, scheduler: svc.scheduler,
      ...(svc.persistence !== undefined ? { persistence: svc.persistence, netmask: svc.netmask } : {}),
      ...(svc.onePacket ? { onePacket: true } : {}),
    };
    yield* config((e) => e.addService(spec), `addService ${name} -s ${svc.scheduler}${svc.persistence !== undefined ? ` -p ${svc.persistence} -M ${svc.netmask}` : ''}${svc.onePacket ? ' -o' : ''}`);
    for (const d of svc.dests) {
      if (!d.present) continue;
      const s = destSpec(d);
      yield* config((e) => e.addDest(key, s), `addDest ${name} ${d.daddr}:${d.dport} weight ${d.weight} (service re-added)`);
    }
  }

  function* configChange(): Generator<Step, void, StepFeedback> {
    const allowed = o.persistence === false ? services.filter((x) => x.persistence === undefined) : services;
    // Now and then a whole service: the extra one added or removed, a rules one deleted, and
    // (leaning towards it, or the rules run out of services) a deleted one added back.
    const gone = allowed.filter((x) => !x.present && x.vport !== EXTRA_SERVICE.vport);
    if (gone.length > 0 && chance(0.25)) { yield* serviceChange(pick(gone)); return; }
    if (chance(0.1)) { yield* serviceChange(services.find((x) => x.vport === EXTRA_SERVICE.vport)!); return; }
    const live = allowed.filter((x) => x.present);
    if (chance(0.06)) { const v = live.filter((x) => x.vport !== EXTRA_SERVICE.vport); if (v.length > 0) { yield* serviceChange(pick(v)); return; } }
    if (live.length === 0) return;
    const svc = pick(live);
    const key = { protocol: svc.protocol, vaddr: VIP, vport: svc.vport };
    const d = pick(svc.dests);
    // Lean towards undoing a quiesced or deleted server, or the services soon have none left.
    const r = (!d.present || d.weight === 0) && chance(0.6) ? 0.6 : rand();
    const spec = destSpec;
    if ((r < 0.35 || (r < 0.75 && d.weight === 0)) && d.present) {
      d.weight = d.weight === 0 ? pick([1, 2, 3]) : pick([0, 0, 1, 2, 3, 5]);
      const s = spec(d);
      yield* config((e) => e.editDest(key, s), `editDest ${svc.protocol} ${VIP}:${svc.vport} ${d.daddr}:${d.dport} weight ${d.weight}`);
    } else if (r < 0.55 && d.present) {
      d.present = false;
      yield* config((e) => e.delDest(key, { daddr: d.daddr, dport: d.dport }), `delDest ${svc.protocol} ${VIP}:${svc.vport} ${d.daddr}:${d.dport}`);
    } else if (r < 0.75 && !d.present) {
      d.present = true;
      d.weight = pick([1, 2, 3]);
      const s = spec(d);
      yield* config((e) => e.addDest(key, s), `addDest ${svc.protocol} ${VIP}:${svc.vport} ${d.daddr}:${d.dport} weight ${d.weight}`);
    } else if (r < 0.82) {
      const t = { tcp: pick([0, 60, 120, 900]), tcpfin: pick([0, 10, 30, 120]), udp: pick([0, 20, 40, 300]) };
      yield* config((e) => e.setTimeouts(t), `setTimeouts tcp ${t.tcp} tcpfin ${t.tcpfin} udp ${t.udp}`);
    } else if (r < 0.88) {
      nodest = !nodest;
      const on = nodest;
      yield* config((e) => e.setExpireNodestConn(on), `setExpireNodestConn ${on}`);
    } else if (r < 0.94 && svc.vport === 80) {
      svc.scheduler = pick(['wrr', 'rr', 'wlc', 'lc', 'sh']);
      const s = { protocol: svc.protocol, vaddr: VIP, vport: svc.vport, scheduler: svc.scheduler };
      yield* config((e) => e.editService(s), `editService ${svc.protocol} ${VIP}:${svc.vport} -s ${svc.scheduler}`);
    } else if (d.present && d.x !== undefined) {
      d.x = pick([1, 2, 4]);
      d.y = pick([0, 1]);
      const s = spec(d);
      yield* config((e) => e.editDest(key, s), `editDest ${svc.protocol} ${VIP}:${svc.vport} ${d.daddr}:${d.dport} -x ${d.x} -y ${d.y}`);
    } else {
      // An operation the engines must both refuse: a real server that is not there.
      yield* config((e) => e.delDest(key, { daddr: '10.99.99.99', dport: 1 }), `delDest ${svc.protocol} ${VIP}:${svc.vport} 10.99.99.99:1 (absent)`);
    }
  }

  /** Time passes (the driver may walk it in expire() ticks: DifferentialOptions.idleTickMs). */
  function* idle(gap: number): Generator<Step, void, StepFeedback> {
    now += gap;
  }

  while (produced < o.steps) {
    now += pick([0, 0, 1, 1, 2, 5, 10, 20, 50]);
    const r = rand();
    if (r < 0.005) {
      const gap = pick(GAPS_MS);
      yield* idle(gap);
      // Most clients gave up during a long silence; the rest carry on into no-conn paths.
      if (gap > 60_000) for (const f of [...flows]) if (chance(0.7)) close(f);
      produced++;
      yield { at: now, action: 'expire' };
    } else if (r < 0.008) {
      // To the millisecond around a timeout since the last packet.
      yield* idle(pick(EXACT_GAPS_MS) + pick([-1, 0, 1]));
    } else if (r < 0.02) {
      yield* configChange();
    } else if (r < 0.13 || flows.length === 0) {
      if (chance(0.75)) {
        const f = openTcp();
        flows.push(f);
        yield* advanceTcp(f);
      } else {
        const f: Flow = { proto: 'udp', caddr: pick(clients), cport: newPort(), vport: pick([53, 53, 53, 5060, 5060, 54]), phase: 'est', cseq: 0, sseq: 0 };
        flows.push(f);
        yield* advanceUdp(f);
      }
    } else if (r < 0.72) {
      const f = pick(flows);
      if (f.proto === 'tcp') yield* advanceTcp(f); else yield* advanceUdp(f);
    } else if (r < 0.77) {
      const f = pick(flows);
      if (f.proto === 'tcp') yield* chaos(f); else yield* advanceUdp(f);
    } else if (r < 0.83) {
      yield* icmp(flows.length > 0 ? pick(flows) : undefined);
    } else if (r < 0.95) {
      const m = mutate();
      yield* packet(m.bytes, `mutated: ${m.note}`, false);
    } else if (r < 0.954) {
      // A SYN burst from many ports: fills the small table (table-full drops).
      const n = chance(0.5) ? randInt(rand, 150, 300) : randInt(rand, 10, 60);
      for (let i = 0; i < n && produced < o.steps; i++) {
        const f = openTcp();
        flows.push(f);
        yield* advanceTcp(f);
        if (chance(0.7)) close(f);
      }
    } else if (r < 0.97) {
      // Stray packets: a server talking about a connection nobody opened, a port with no service.
      const c = pick(clients);
      if (chance(0.5)) yield* packet(tcpPacket({ src: '172.16.0.2', dst: c, sport: 80, dport: randInt(rand, 1024, 65535), flags: pick(['SA', 'A', 'PA', 'R']) }), 'stray packet from a real server');
      else yield* packet(tcpPacket({ src: c, dst: VIP, sport: newPort(), dport: pick([22, 81, 8080]), flags: 'S' }), 'SYN to a port without service (or without real server)');
    } else {
      // Quiet time for a flow: a few more packets of others, then it may time out.
      const f = pick(flows);
      if (f.proto === 'tcp') yield* chaos(f); else yield* advanceUdp(f);
    }
    while (flows.length > 200) close(flows[0]);
  }
}
