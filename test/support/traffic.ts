// Traffic generator: realistic TCP sessions and UDP exchanges as a NAT director's wire carries
// them, and libpcap files to hold them. For the replay tests and the benchmark.
//
// Shares no code with the engine (packets come from the test packet kit, pcap files are written
// and read here, field by field from pcap-savefile(5)), so it can serve as an oracle.
//
// A session is described once and rendered in one of two views:
//   'received'  what reaches the director: client -> VIP:vport, and RIP:rport -> client
//   'sent'      what the director sends after NAT: client -> RIP:rport, VIP:vport -> client
// Both views hold the same packets in the same order, differing only in the rewritten
// addresses and ports (and so in the checksums), so zipping the two gives, packet by packet,
// what a correct NAT director must emit.
//
// Timing model: the director sits next to the real servers (round trip `lanMs`) and far from
// the client (round trip `rttMs`). A packet's time is when the director sees it; a reply to
// something the client sent shows up `lanMs` later, a reply to something the server sent
// `rttMs` later. Times are milliseconds since the epoch and may have a fraction; pcap files
// resolve them to the microsecond (or nanosecond, within double precision).
//
// Worked example (the seed): tcpSession({ client: '202.100.1.2', cport: 3456,
// vip: '202.103.106.5', vport: 80, server: '172.16.0.3', sport: 8000, startMs: T }) gives
// SYN in at T, SYN-ACK out at T+0.2, ACK and GET in at T+20.2, the response out at T+20.4 in
// three segments (the client acknowledging the second at T+40.4), the client's FIN at T+40.4,
// the server's FIN at T+40.6 and the last ACK at T+60.6.
import { ethernetFrame, tcpPacket, udpPacket } from './packets.js';

/** 'in': client -> director (addressed to the VIP); 'out': real server -> client. */
export type Direction = 'in' | 'out';
export type View = 'received' | 'sent';

export interface TimedPacket {
  /** When the director sees it: milliseconds since the epoch, possibly fractional. */
  time: number;
  /** An IPv4 packet. */
  packet: Uint8Array;
  dir: Direction;
}

export interface Endpoints {
  client: string;
  cport: number;
  vip: string;
  vport: number;
  /** The real server that serves the connection (the one the scheduler is expected to pick). */
  server: string;
  sport: number;
}

export interface Message {
  from: 'client' | 'server';
  data: Uint8Array | string;
}

export interface TcpSessionOpts extends Endpoints {
  startMs: number;
  /** Default: an HTTP GET and a 3000-byte response. */
  messages?: Message[];
  /**
   * Who closes: 'client' (FIN from the client, as an HTTP/1.1 client does), 'server' (FIN from
   * the server first), 'reset' (the client sends RST), 'none' (the session stays open).
   */
  close?: 'client' | 'server' | 'reset' | 'none';
  rttMs?: number;
  lanMs?: number;
  mss?: number;
  clientIsn?: number;
  serverIsn?: number;
  view?: View;
}

export interface UdpExchangeOpts extends Endpoints {
  startMs: number;
  request?: Uint8Array | string;
  /** null: the server does not answer. */
  response?: Uint8Array | string | null;
  /** Request/response pairs, `intervalMs` apart (default 1). */
  count?: number;
  intervalMs?: number;
  lanMs?: number;
  view?: View;
}

const DEFAULT_RTT_MS = 20;
const DEFAULT_LAN_MS = 0.2;
const DEFAULT_MSS = 1460;
// Back-to-back segments of one burst, as a 10 Gb/s link spaces full-size frames (~1.2 us),
// rounded to something pcap microseconds show.
const BURST_GAP_MS = 0.002;
const CLIENT_TTL = 52; // a Linux client some 12 hops away
const SERVER_TTL = 64;
const CLIENT_WINDOW = 64240;
const SERVER_WINDOW = 65160;
const MSS_OPTION_KIND = 2;
const MSS_OPTION_LEN = 4;
const DEFAULT_CLIENT_ISN = 0x1a2b3c4d;
const DEFAULT_SERVER_ISN = 0x9e3779b9;
const SEQ_MOD = 0x100000000;

/** A deterministic HTTP response of exactly `bytes` bytes. */
export function httpResponse(bytes: number): Uint8Array {
  const head = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: `;
  // The header length depends on the digits of the body length; settle it in two steps.
  let body = Math.max(0, bytes - head.length - 4 - String(bytes).length);
  let text = `${head}${body}\r\n\r\n`;
  body = Math.max(0, bytes - text.length);
  text = `${head}${body}\r\n\r\n`;
  const out = new Uint8Array(Math.max(bytes, text.length));
  out.set(new TextEncoder().encode(text));
  for (let i = text.length; i < out.length; i++) out[i] = 0x61 + ((i - text.length) % 26); // a-z
  return out;
}

export function httpExchange(host: string, path = '/', responseBytes = 3000): Message[] {
  return [
    { from: 'client', data: `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: wasmvs-test\r\nAccept: */*\r\n\r\n` },
    { from: 'server', data: httpResponse(responseBytes) },
  ];
}

/** An FTP control session that logs in anonymously and quits (the server speaks first). */
export function ftpExchange(): Message[] {
  return [
    { from: 'server', data: '220 wasmvs test FTP server ready\r\n' },
    { from: 'client', data: 'USER anonymous\r\n' },
    { from: 'server', data: '331 Please specify the password.\r\n' },
    { from: 'client', data: 'PASS guest@\r\n' },
    { from: 'server', data: '230 Login successful.\r\n' },
    { from: 'client', data: 'QUIT\r\n' },
    { from: 'server', data: '221 Goodbye.\r\n' },
  ];
}

interface Segment {
  time: number;
  dir: Direction;
  flags: string;
  seq: number;
  ack: number;
  payload?: Uint8Array;
  syn?: boolean;
}

function bytesOf(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? new TextEncoder().encode(data) : data;
}

function mssOption(mss: number): Uint8Array {
  return Uint8Array.of(MSS_OPTION_KIND, MSS_OPTION_LEN, mss >> 8, mss & 0xff);
}

/** Rounds a time in ms to whole microseconds, so sums of fractions do not drift. */
function toMicroseconds(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Stable merge of packet lists by time (equal times keep argument order, then list order). */
export function merge(...lists: TimedPacket[][]): TimedPacket[] {
  return lists.flat().map((p, i) => ({ p, i })).sort((a, b) => a.p.time - b.p.time || a.i - b.i).map((x) => x.p);
}

/** Addresses of a packet in `dir` under `view`. */
function addressing(e: Endpoints, dir: Direction, view: View): { src: string; sport: number; dst: string; dport: number } {
  if (dir === 'in') {
    return view === 'received'
      ? { src: e.client, sport: e.cport, dst: e.vip, dport: e.vport }
      : { src: e.client, sport: e.cport, dst: e.server, dport: e.sport };
  }
  return view === 'received'
    ? { src: e.server, sport: e.sport, dst: e.client, dport: e.cport }
    : { src: e.vip, sport: e.vport, dst: e.client, dport: e.cport };
}

/**
 * One TCP connection through the director: three-way handshake, the messages (each cut into
 * MSS-sized segments, the receiver acknowledging every second segment and the last, unless its
 * own next segment carries the ACK), then the close. Sequence numbers, IP IDs and checksums
 * are consistent, so tshark follows the stream without complaint.
 */
export function tcpSession(o: TcpSessionOpts): TimedPacket[] {
  const rtt = o.rttMs ?? DEFAULT_RTT_MS;
  const lan = o.lanMs ?? DEFAULT_LAN_MS;
  const mss = o.mss ?? DEFAULT_MSS;
  const view = o.view ?? 'received';
  const messages = o.messages ?? httpExchange(o.vip);
  const close = o.close ?? 'client';
  // Next sequence number each side sends; what each side has received (its ACK number).
  let cSeq = (o.clientIsn ?? DEFAULT_CLIENT_ISN) >>> 0;
  let sSeq = (o.serverIsn ?? DEFAULT_SERVER_ISN) >>> 0;
  const segs: Segment[] = [];
  const add = (s: Segment): void => { segs.push(s); };
  const next = (seq: number, n: number): number => (seq + n) % SEQ_MOD;

  let t = o.startMs;
  add({ time: t, dir: 'in', flags: 'S', seq: cSeq, ack: 0, syn: true });
  cSeq = next(cSeq, 1);
  t += lan;
  add({ time: t, dir: 'out', flags: 'SA', seq: sSeq, ack: cSeq, syn: true });
  sSeq = next(sSeq, 1);
  t += rtt;
  add({ time: t, dir: 'in', flags: 'A', seq: cSeq, ack: sSeq });
  // Who spoke last, so the next sender knows how long the other side's data took to arrive.
  let last: 'client' | 'server' = 'client';
  let pendingAck = false; // the last message's receiver still owes a pure ACK

  const ackFrom = (receiver: 'client' | 'server', time: number): void => {
    if (receiver === 'client') add({ time, dir: 'in', flags: 'A', seq: cSeq, ack: sSeq });
    else add({ time, dir: 'out', flags: 'A', seq: sSeq, ack: cSeq });
  };

  for (let m = 0; m < messages.length; m++) {
    const { from } = messages[m];
    const data = bytesOf(messages[m].data);
    const receiver = from === 'client' ? 'server' : 'client';
    // The sender answers what it last received; a client replying to the server needs a round
    // trip to the client, the server replying to the client one to the server.
    // Two messages in a row from one side: the other side's ACK is not carried by a reply.
    if (pendingAck && last === from) ackFrom(receiver, t + (from === 'client' ? lan : rtt));
    pendingAck = false;
    if (m > 0 || from === 'server') t += last === from ? BURST_GAP_MS : from === 'client' ? rtt : lan;
    else t += BURST_GAP_MS; // the request rides right behind the handshake's ACK
    const dir: Direction = from === 'client' ? 'in' : 'out';
    const count = Math.max(1, Math.ceil(data.length / mss));
    for (let i = 0; i < count; i++) {
      const payload = data.subarray(i * mss, Math.min(data.length, (i + 1) * mss));
      const lastSeg = i === count - 1;
      if (from === 'client') {
        add({ time: t, dir, flags: lastSeg ? 'PA' : 'A', seq: cSeq, ack: sSeq, payload });
        cSeq = next(cSeq, payload.length);
      } else {
        add({ time: t, dir, flags: lastSeg ? 'PA' : 'A', seq: sSeq, ack: cSeq, payload });
        sSeq = next(sSeq, payload.length);
      }
      // Delayed ACK: every second full segment is acknowledged at once (RFC 9293 §3.8.6.3).
      if (i % 2 === 1 && !lastSeg) ackFrom(receiver, t + (from === 'client' ? lan : rtt));
      if (!lastSeg) t += BURST_GAP_MS;
    }
    last = from;
    pendingAck = true;
  }

  const clientFin = (): void => {
    add({ time: t, dir: 'in', flags: 'FA', seq: cSeq, ack: sSeq });
    cSeq = next(cSeq, 1);
  };
  const serverFin = (): void => {
    add({ time: t, dir: 'out', flags: 'FA', seq: sSeq, ack: cSeq });
    sSeq = next(sSeq, 1);
  };
  switch (close) {
    case 'client':
      t += last === 'client' ? BURST_GAP_MS : rtt;
      clientFin();
      t += lan;
      serverFin();
      t += rtt;
      add({ time: t, dir: 'in', flags: 'A', seq: cSeq, ack: sSeq });
      break;
    case 'server':
      t += last === 'server' ? BURST_GAP_MS : lan;
      serverFin();
      t += rtt;
      clientFin();
      t += lan;
      add({ time: t, dir: 'out', flags: 'A', seq: sSeq, ack: cSeq });
      break;
    case 'reset':
      t += last === 'client' ? BURST_GAP_MS : rtt;
      add({ time: t, dir: 'in', flags: 'RA', seq: cSeq, ack: sSeq });
      break;
    case 'none':
      if (pendingAck) ackFrom(last === 'client' ? 'server' : 'client', t + (last === 'client' ? lan : rtt));
      break;
  }

  // IP IDs count up per sender in time order, as Linux does for a connection with DF set.
  const ordered = segs.map((s, i) => ({ s, i })).sort((a, b) => a.s.time - b.s.time || a.i - b.i).map((x) => x.s);
  const ids = { in: 0x4d2, out: 0x1f40 };
  return ordered.map((s) => {
    const a = addressing(o, s.dir, view);
    const packet = tcpPacket({
      ...a,
      flags: s.flags,
      seq: s.seq,
      ack: s.ack,
      id: ids[s.dir]++ & 0xffff,
      df: true,
      ttl: s.dir === 'in' ? CLIENT_TTL : SERVER_TTL,
      window: s.dir === 'in' ? CLIENT_WINDOW : SERVER_WINDOW,
      ...(s.syn ? { tcpOptions: mssOption(mss) } : {}),
      ...(s.payload ? { payload: s.payload } : {}),
    });
    return { time: toMicroseconds(s.time), packet, dir: s.dir };
  });
}

/** UDP request/response pairs on one client port (a DNS-like exchange). */
export function udpExchange(o: UdpExchangeOpts): TimedPacket[] {
  const view = o.view ?? 'received';
  const lan = o.lanMs ?? DEFAULT_LAN_MS;
  const request = bytesOf(o.request ?? 'wasmvs-test query');
  const response = o.response === null ? null : bytesOf(o.response ?? 'wasmvs-test answer');
  const out: TimedPacket[] = [];
  for (let i = 0; i < (o.count ?? 1); i++) {
    const t = toMicroseconds(o.startMs + i * (o.intervalMs ?? 1));
    out.push({ time: t, dir: 'in', packet: udpPacket({ ...addressing(o, 'in', view), id: 0x2000 + i, ttl: CLIENT_TTL, payload: request }) });
    if (response) {
      out.push({ time: toMicroseconds(t + lan), dir: 'out', packet: udpPacket({ ...addressing(o, 'out', view), id: 0x3000 + i, ttl: SERVER_TTL, payload: response }) });
    }
  }
  return out;
}

// ---- link layer -----------------------------------------------------------------------------

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_IPV4 = 228;

// Locally administered MACs: the upstream router, the director, the real servers' side.
export const ROUTER_MAC = '02:00:00:00:01:01';
export const DIRECTOR_MAC = '02:00:00:00:01:02';
export const SERVER_MAC = '02:00:00:00:02:01';

/**
 * The frame a capture on the director would hold for this packet: as is for RAW and IPv4,
 * Ethernet II from the router (inbound) or the server side (outbound) to the director,
 * padded to the 60-byte minimum, optionally 802.1Q-tagged.
 */
export function linkFrame(p: Pick<TimedPacket, 'packet' | 'dir'>, linkType: number, eth: { vlan?: number } = {}): Uint8Array {
  if (linkType !== LINKTYPE_ETHERNET) return p.packet;
  return ethernetFrame(p.packet, {
    src: p.dir === 'in' ? ROUTER_MAC : SERVER_MAC,
    dst: DIRECTOR_MAC,
    pad: true,
    ...(eth.vlan === undefined ? {} : { vlan: eth.vlan }),
  });
}

// ---- pcap files -------------------------------------------------------------------------------

export interface PcapFileRecord {
  tsSec: number;
  tsFrac: number;
  origLen?: number;
  data: Uint8Array;
}

export interface PcapFileOpts {
  linkType: number;
  nanosecond?: boolean;
  /** Written big-endian (as a SPARC or a PowerPC capture would be). Default little-endian. */
  bigEndian?: boolean;
  snapLen?: number;
}

export interface PcapFile {
  linkType: number;
  nanosecond: boolean;
  bigEndian: boolean;
  snapLen: number;
  records: Array<Required<PcapFileRecord>>;
}

const PCAP_MAGIC_USEC = 0xa1b2c3d4;
const PCAP_MAGIC_NSEC = 0xa1b23c4d;
const PCAP_HEADER_LEN = 24;
const PCAP_RECORD_HEADER_LEN = 16;
const DEFAULT_SNAPLEN = 262144;

/** The pcap timestamp of a time in milliseconds. */
export function timestamp(timeMs: number, nanosecond = false): { tsSec: number; tsFrac: number } {
  const perSec = nanosecond ? 1e9 : 1e6;
  let tsSec = Math.floor(timeMs / 1000);
  let tsFrac = Math.round((timeMs - tsSec * 1000) * (perSec / 1000));
  if (tsFrac >= perSec) {
    tsSec++;
    tsFrac -= perSec;
  }
  return { tsSec, tsFrac };
}

/** Records for these packets, framed for the link type; `frame` overrides the framing. */
export function records(packets: TimedPacket[], opts: { linkType: number; nanosecond?: boolean; frame?: (p: TimedPacket) => Uint8Array }): PcapFileRecord[] {
  return packets.map((p) => ({ ...timestamp(p.time, opts.nanosecond), data: opts.frame ? opts.frame(p) : linkFrame(p, opts.linkType) }));
}

/** A libpcap file (pcap-savefile(5)), version 2.4. */
export function pcapFile(recs: PcapFileRecord[], opts: PcapFileOpts): Uint8Array {
  const snapLen = opts.snapLen ?? DEFAULT_SNAPLEN;
  const total = PCAP_HEADER_LEN + recs.reduce((n, r) => n + PCAP_RECORD_HEADER_LEN + r.data.length, 0);
  const out = new Uint8Array(total);
  const v = new DataView(out.buffer);
  const le = !opts.bigEndian;
  v.setUint32(0, opts.nanosecond ? PCAP_MAGIC_NSEC : PCAP_MAGIC_USEC, le);
  v.setUint16(4, 2, le);
  v.setUint16(6, 4, le);
  v.setInt32(8, 0, le); // thiszone
  v.setUint32(12, 0, le); // sigfigs
  v.setUint32(16, snapLen, le);
  v.setUint32(20, opts.linkType, le);
  let at = PCAP_HEADER_LEN;
  for (const r of recs) {
    v.setUint32(at, r.tsSec, le);
    v.setUint32(at + 4, r.tsFrac, le);
    v.setUint32(at + 8, r.data.length, le);
    v.setUint32(at + 12, r.origLen ?? r.data.length, le);
    out.set(r.data, at + PCAP_RECORD_HEADER_LEN);
    at += PCAP_RECORD_HEADER_LEN + r.data.length;
  }
  return out;
}

/** Reads a libpcap file; throws on anything that is not a well-formed one. */
export function parsePcap(bytes: Uint8Array): PcapFile {
  if (bytes.length < PCAP_HEADER_LEN) throw new Error(`pcap of ${bytes.length} bytes is shorter than its header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let le: boolean;
  let magic = v.getUint32(0, true);
  if (magic === PCAP_MAGIC_USEC || magic === PCAP_MAGIC_NSEC) {
    le = true;
  } else {
    magic = v.getUint32(0, false);
    if (magic !== PCAP_MAGIC_USEC && magic !== PCAP_MAGIC_NSEC) throw new Error(`bad pcap magic 0x${magic.toString(16)}`);
    le = false;
  }
  const file: PcapFile = {
    linkType: v.getUint32(20, le),
    nanosecond: magic === PCAP_MAGIC_NSEC,
    bigEndian: !le,
    snapLen: v.getUint32(16, le),
    records: [],
  };
  if (v.getUint16(4, le) !== 2 || v.getUint16(6, le) !== 4) throw new Error('pcap version is not 2.4');
  let at = PCAP_HEADER_LEN;
  while (at < bytes.length) {
    if (bytes.length - at < PCAP_RECORD_HEADER_LEN) throw new Error(`record header at ${at} truncated`);
    const capLen = v.getUint32(at + 8, le);
    if (at + PCAP_RECORD_HEADER_LEN + capLen > bytes.length) throw new Error(`record at ${at} truncated`);
    file.records.push({
      tsSec: v.getUint32(at, le),
      tsFrac: v.getUint32(at + 4, le),
      origLen: v.getUint32(at + 12, le),
      data: bytes.slice(at + PCAP_RECORD_HEADER_LEN, at + PCAP_RECORD_HEADER_LEN + capLen),
    });
    at += PCAP_RECORD_HEADER_LEN + capLen;
  }
  return file;
}
