// Offline replay: a pcap through the engine, both directions in file order, with the
// capture's timestamps as the engine clock. For operators testing rules and for testing the
// engine with independent tools (tshark, tcpdump).
//
// Packets travel through the ring as in the gateway: consecutive records with the same
// millisecond timestamp form one batch (one WASM call), so timeouts see the capture's time.
import type { DropReason, LocalReason, PassReason } from '../engine/abi.js';
import { Engine, type ConnInfo, type EngineOptions, type Timeouts } from '../engine/engine.js';
import { Responder, type ResponderCounters, type ResponderOptions } from '../responder/responder.js';
import { ipv4Offset, PcapWriter, readPcap, recordTimeMs, type PcapRecord } from './pcap.js';
import type { ServiceStats } from '../engine/stats.js';

export interface ReplayOptions {
  /** Rules in ipvsadm-save syntax. */
  rules: string;
  /** The capture (libpcap, link type Ethernet, RAW or IPv4). */
  input: Uint8Array;
  timeouts?: Partial<Timeouts>;
  engine?: Omit<EngineOptions, 'timeouts'>;
  /**
   * Answer packets addressed to a VIP that no service serves as the gateway does (RST, ICMP
   * unreachable, echo reply; rate-limited on the capture's clock) and return the answers as
   * a capture of their own (`replies`). The answers never go into `output`.
   */
  replies?: boolean | ResponderOptions;
}

export interface RealServerSummary {
  protocol: string;
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  newConnections: number;
}

export interface ReplaySummary {
  packets: number;
  /** local: to a VIP but no service's; left out of the output (a gateway answers them). */
  verdicts: { forward: number; pass: number; drop: number; local: number };
  forwardIn: number;
  forwardOut: number;
  /** Drop reasons that occurred. */
  drops: Partial<Record<DropReason, number>>;
  /** Pass reasons that occurred (frames without IPv4, such as ARP, count as not-ipv4). */
  passes: Partial<Record<PassReason, number>>;
  /** Local reasons that occurred. */
  locals: Partial<Record<LocalReason, number>>;
  connections: { created: number; expired: number; reused: number; live: number };
  realServers: RealServerSummary[];
}

export interface ReplayResult {
  /** The output capture: forwarded (rewritten) and passed packets, input order and link type. */
  output: Uint8Array;
  summary: ReplaySummary;
  /** The connection table after the last packet. */
  connections: ConnInfo[];
  /**
   * Totals and rates per service and real server after the last packet (engine.statistics()):
   * the capture's timestamps drive the estimator, so the rates are those of its last
   * 2-second steps, the same on every run.
   */
  statistics: ServiceStats[];
  /** Engine time of the last packet, ms. */
  endTime: number;
  /**
   * With options.replies: the answers, in the input's link type, each stamped with its
   * request's time (an Ethernet answer carries the request's link header, MACs swapped).
   */
  replies?: Uint8Array;
  /** With options.replies: what was answered, and what was not (rate limit, not answerable). */
  replyCounters?: ResponderCounters;
}

const ETH_ADDR_LEN = 6;

/**
 * The frame of an answer to `request` (whose IPv4 header is at `l3`): the request's link
 * header with the Ethernet source and destination swapped (VLAN tags kept), then the answer.
 */
function answerFrame(linkType: number, request: Uint8Array, l3: number, answer: Uint8Array): Uint8Array {
  const frame = new Uint8Array(l3 + answer.length);
  frame.set(request.subarray(0, l3));
  if (l3 >= 2 * ETH_ADDR_LEN && linkType === 1) {
    frame.set(request.subarray(ETH_ADDR_LEN, 2 * ETH_ADDR_LEN), 0);
    frame.set(request.subarray(0, ETH_ADDR_LEN), ETH_ADDR_LEN);
  }
  frame.set(answer, l3);
  return frame;
}

const REPLAY_SLOTS = 256;
const MAX_SNAPLEN = 262144; // libpcap's MAXIMUM_SNAPLEN
const REPLAY_SLOT_SIZE = 65536 + 64; // any frame a capture can hold (jumbo, GRO) fits
const REPLY_MAX = 65535; // an echo reply is as long as its request

export function replay(options: ReplayOptions): ReplayResult {
  const capture = readPcap(options.input);
  const header = capture.header;
  const engine = new Engine({
    slotCount: REPLAY_SLOTS,
    slotSize: REPLAY_SLOT_SIZE,
    ...options.engine,
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
  });
  engine.restore(options.rules);
  // As libpcap's pcap_adjust_snapshot: a header snaplen of 0 or beyond the maximum means "all".
  const snapLen = header.snapLen === 0 || header.snapLen > MAX_SNAPLEN ? MAX_SNAPLEN : header.snapLen;
  const writer = new PcapWriter({ linkType: header.linkType, nanosecond: header.nanosecond, snapLen });
  const responder = options.replies ? new Responder(options.replies === true ? {} : options.replies) : undefined;
  const replyWriter = responder ? new PcapWriter({ linkType: header.linkType, nanosecond: header.nanosecond, snapLen }) : undefined;
  const answer = new Uint8Array(REPLY_MAX);
  let nonIpv4Frames = 0;
  let now = 0;

  // One batch: records sharing a millisecond, each in a slot; written out in order after.
  const batch: PcapRecord[] = [];
  const batchSlot: number[] = []; // slot per record, -1 = not IPv4, passed around the engine
  let batchTime = 0;
  const flush = (): void => {
    let used = 0;
    for (let i = 0; i < batch.length; i++) if (batchSlot[i] >= 0) used++;
    if (used > 0) engine.process(0, used, batchTime);
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i];
      const slot = batchSlot[i];
      if (slot < 0) {
        writer.add(r);
        continue;
      }
      const verdict = engine.verdict(slot);
      if (verdict === 'forward' || verdict === 'pass') {
        // The FTP helper may have resized a 227 reply: the slot's length says how long it is now.
        const len = engine.slotLength(slot);
        writer.add({ tsSec: r.tsSec, tsFrac: r.tsFrac, origLen: r.origLen + len - r.data.length, data: engine.slot(slot).subarray(0, len) });
      } else if (verdict === 'local' && responder && replyWriter) {
        const l3 = ipv4Offset(header.linkType, r.data);
        const n = responder.answer(engine.slot(slot).subarray(l3, r.data.length), answer, batchTime);
        if (n > 0) replyWriter.add({ tsSec: r.tsSec, tsFrac: r.tsFrac, data: answerFrame(header.linkType, r.data, l3, answer.subarray(0, n)) });
      }
    }
    batch.length = 0;
    batchSlot.length = 0;
  };

  let nextSlot = 0;
  for (const record of capture.records()) {
    const t = Math.floor(recordTimeMs(header, record));
    if (batch.length > 0 && (t !== batchTime || nextSlot === REPLAY_SLOTS)) {
      flush();
      nextSlot = 0;
    }
    batchTime = t;
    now = t;
    batch.push(record);
    const l3 = ipv4Offset(header.linkType, record.data);
    if (l3 < 0 || record.data.length > REPLAY_SLOT_SIZE) {
      nonIpv4Frames++;
      batchSlot.push(-1);
      continue;
    }
    engine.writeSlot(nextSlot, record.data, l3);
    batchSlot.push(nextSlot++);
  }
  if (batch.length > 0) flush();
  engine.expire(now);

  const c = engine.counters();
  const drops: Partial<Record<DropReason, number>> = {};
  for (const [k, v] of Object.entries(c.drops) as [DropReason, number][]) if (v) drops[k] = v;
  const passes: Partial<Record<PassReason, number>> = {};
  for (const [k, v] of Object.entries(c.passes) as [PassReason, number][]) if (v) passes[k] = v;
  const locals: Partial<Record<LocalReason, number>> = {};
  for (const [k, v] of Object.entries(c.locals) as [LocalReason, number][]) if (v) locals[k] = v;
  if (nonIpv4Frames) passes['not-ipv4'] = (passes['not-ipv4'] ?? 0) + nonIpv4Frames;
  const realServers: RealServerSummary[] = [];
  for (const s of engine.listServices()) {
    for (const d of [...s.dests].reverse()) {
      realServers.push({ protocol: s.protocol, vaddr: s.vaddr, vport: s.vport, daddr: d.daddr, dport: d.dport, newConnections: d.conns });
    }
  }
  return {
    output: writer.toBytes(),
    summary: {
      packets: c.packets + nonIpv4Frames,
      verdicts: { forward: c.forwardIn + c.forwardOut, pass: c.pass + nonIpv4Frames, drop: c.drop, local: c.local },
      forwardIn: c.forwardIn,
      forwardOut: c.forwardOut,
      drops,
      passes,
      locals,
      connections: { created: c.connsCreated, expired: c.connsExpired, reused: c.connsReused, live: c.liveConns },
      realServers,
    },
    connections: engine.connections(now),
    statistics: engine.statistics(),
    endTime: now,
    ...(responder && replyWriter ? { replies: replyWriter.toBytes(), replyCounters: responder.counters() } : {}),
  };
}

/** The summary as aligned text. */
export function formatSummary(s: ReplaySummary): string {
  const row = (label: string, n: number, extra = '') => `  ${label.padEnd(26)} ${String(n).padStart(10)}${extra}`;
  const lines = [
    'packets',
    row('total', s.packets),
    row('forwarded', s.verdicts.forward, `   (client->server ${s.forwardIn}, server->client ${s.forwardOut})`),
    row('passed', s.verdicts.pass),
    row('dropped', s.verdicts.drop),
    row('local (VIP, no service)', s.verdicts.local),
  ];
  const drops = Object.entries(s.drops);
  if (drops.length) lines.push('drops by reason', ...drops.map(([k, v]) => row(k, v)));
  const passes = Object.entries(s.passes);
  if (passes.length) lines.push('passes by reason', ...passes.map(([k, v]) => row(k, v)));
  const locals = Object.entries(s.locals);
  if (locals.length) lines.push('local by reason', ...locals.map(([k, v]) => row(k, v)));
  lines.push('connections', row('created', s.connections.created), row('expired', s.connections.expired),
    row('reused (TIME_WAIT/CLOSE)', s.connections.reused), row('live at end', s.connections.live));
  if (s.realServers.length) {
    lines.push('new connections per real server');
    for (const r of s.realServers) {
      lines.push(`  ${`${r.protocol.toUpperCase()} ${r.vaddr}:${r.vport} -> ${r.daddr}:${r.dport}`.padEnd(48)} ${String(r.newConnections).padStart(10)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
