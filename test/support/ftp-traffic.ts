// FTP control conversations through a NAT director with an FTP helper, written down as the
// director receives them and as a correct director must send them: the oracle of the FTP
// replay fixtures and tests (test/ftp.test.ts).
//
// Shares no code with the engine. The test says, for every server message, what the client
// must see (`seen`: the 227 with the VIP's address); from that this module keeps the two
// sequence spaces of the server's stream apart, as a real client and server would have them:
// the server numbers what it sent, the client what it received. So the received view carries
// the client's acknowledgements (and SACK blocks) in the client's space and the server's
// sequence numbers in the server's; the sent view the reverse, mapped across.
//
// Worked example: the server sends "227 Entering Passive Mode (172,16,0,3,195,80)\r\n" at
// server sequence S; the client sees "(202,103,106,5,195,80)", two bytes longer, at S; the
// server's next segment at S + 47 reaches the client at S + 49, and the client's ACK of
// S + 49 + n reaches the server as S + 47 + n.
import { tcpPacket } from './packets.js';
import type { Endpoints } from './traffic.js';

/** The control connection's endpoints, as traffic.ts's. */
export type FtpEnds = Endpoints;

export type FtpStep =
  /** A message: one segment, or cut into several at `cut` (byte offsets, increasing). */
  | { from: 'client' | 'server'; text: string; seen?: string; cut?: number[] }
  /** The segments of an earlier step (its index in the script) sent again. */
  | { retransmit: number }
  /**
   * A pure ACK from the client: of everything received (default), or only up to the end of
   * step `upTo`; with SACK blocks, each from the start of step a to the end of step b.
   */
  | { ack: 'client'; upTo?: number; sack?: Array<[number, number]> }
  /** The server acknowledges what the client sent. */
  | { ack: 'server' };

export interface FtpPacket {
  /** Index of the script step that made it (-1: handshake or close). */
  step: number;
  dir: 'in' | 'out';
  /** What reaches the director. */
  received: Uint8Array;
  /** What the director must send. */
  sent: Uint8Array;
}

export interface FtpConversationOpts extends FtpEnds {
  steps: FtpStep[];
  clientIsn?: number;
  serverIsn?: number;
  /** Close with FINs from the client (default) or leave it open. */
  close?: boolean;
}

interface Range { s0: number; s1: number; c0: number; c1: number }

const MOD = 2 ** 32;
const enc = new TextEncoder();
const m32 = (x: number): number => ((x % MOD) + MOD) % MOD;

/** SACK option (RFC 2018): two NOPs, kind 5, 2 + 8n bytes of left/right edges. */
export function sackOption(blocks: Array<[number, number]>): Uint8Array {
  const out = new Uint8Array(4 + 8 * blocks.length);
  out[0] = 1; out[1] = 1; out[2] = 5; out[3] = 2 + 8 * blocks.length;
  const v = new DataView(out.buffer);
  blocks.forEach(([l, r], i) => { v.setUint32(4 + 8 * i, m32(l)); v.setUint32(8 + 8 * i, m32(r)); });
  return out;
}

/** The conversation: handshake, the steps, and (unless close is false) the client's close. */
export function ftpConversation(o: FtpConversationOpts): FtpPacket[] {
  let cSeq = m32(o.clientIsn ?? 0x1234_5678);
  let sSeq = m32(o.serverIsn ?? 0x8765_4321); // server space
  let sSeqC = sSeq; //                            the same point in the client's space
  const out: FtpPacket[] = [];
  const ranges: Range[][] = [];
  const stepPackets: FtpPacket[][] = [];

  const fromClient = (step: number, flags: string, seq: number, ackC: number, ackS: number, payload?: Uint8Array, tcpOptions?: [Uint8Array, Uint8Array]): FtpPacket => {
    const base = { sport: o.cport, flags, seq, ...(payload ? { payload } : {}) };
    return {
      step,
      dir: 'in',
      received: tcpPacket({ ...base, src: o.client, dst: o.vip, dport: o.vport, ack: m32(ackC), ...(tcpOptions ? { tcpOptions: tcpOptions[0] } : {}) }),
      sent: tcpPacket({ ...base, src: o.client, dst: o.server, dport: o.sport, ack: m32(ackS), ...(tcpOptions ? { tcpOptions: tcpOptions[1] } : {}) }),
    };
  };
  const fromServer = (step: number, flags: string, seqS: number, seqC: number, payload?: Uint8Array, seen?: Uint8Array): FtpPacket => ({
    step,
    dir: 'out',
    received: tcpPacket({ src: o.server, sport: o.sport, dst: o.client, dport: o.cport, flags, seq: m32(seqS), ack: cSeq, ...(payload ? { payload } : {}) }),
    sent: tcpPacket({ src: o.vip, sport: o.vport, dst: o.client, dport: o.cport, flags, seq: m32(seqC), ack: cSeq, ...(seen ? { payload: seen } : {}) }),
  });

  out.push(fromClient(-1, 'S', cSeq, 0, 0));
  cSeq = m32(cSeq + 1);
  out.push(fromServer(-1, 'SA', sSeq, sSeqC));
  sSeq = m32(sSeq + 1); sSeqC = m32(sSeqC + 1);
  out.push(fromClient(-1, 'A', cSeq, sSeqC, sSeq));

  o.steps.forEach((st, i) => {
    const made: FtpPacket[] = [];
    const rs: Range[] = [];
    if ('text' in st) {
      const text = enc.encode(st.text);
      const seen = enc.encode(st.seen ?? st.text);
      const cuts = [0, ...(st.cut ?? []), text.length];
      if (st.cut && seen.length !== text.length) throw new Error('a cut message is expected to pass unchanged');
      for (let k = 0; k + 1 < cuts.length; k++) {
        const last = k + 2 === cuts.length;
        const part = text.subarray(cuts[k], cuts[k + 1]);
        const partSeen = cuts.length === 2 ? seen : seen.subarray(cuts[k], cuts[k + 1]);
        if (st.from === 'client') {
          made.push(fromClient(i, last ? 'PA' : 'A', cSeq, sSeqC, sSeq, part));
          cSeq = m32(cSeq + part.length);
        } else {
          made.push(fromServer(i, last ? 'PA' : 'A', sSeq, sSeqC, part, partSeen));
          rs.push({ s0: sSeq, s1: m32(sSeq + part.length), c0: sSeqC, c1: m32(sSeqC + partSeen.length) });
          sSeq = m32(sSeq + part.length); sSeqC = m32(sSeqC + partSeen.length);
        }
      }
    } else if ('retransmit' in st) {
      for (const p of stepPackets[st.retransmit]) made.push({ ...p, step: i });
    } else if (st.ack === 'client') {
      const upTo = st.upTo === undefined ? undefined : ranges[st.upTo].at(-1);
      const ackC = upTo ? upTo.c1 : sSeqC;
      const ackS = upTo ? upTo.s1 : sSeq;
      const sack = st.sack?.map(([a, b]) => ({ c: [ranges[a][0].c0, ranges[b].at(-1)!.c1] as [number, number], s: [ranges[a][0].s0, ranges[b].at(-1)!.s1] as [number, number] }));
      made.push(fromClient(i, 'A', cSeq, ackC, ackS, undefined, sack ? [sackOption(sack.map((x) => x.c)), sackOption(sack.map((x) => x.s))] : undefined));
    } else {
      made.push(fromServer(i, 'A', sSeq, sSeqC));
    }
    ranges.push(rs);
    stepPackets.push(made);
    out.push(...made);
  });

  if (o.close !== false) {
    out.push(fromClient(-1, 'FA', cSeq, sSeqC, sSeq));
    cSeq = m32(cSeq + 1);
    out.push(fromServer(-1, 'FA', sSeq, sSeqC));
    sSeq = m32(sSeq + 1); sSeqC = m32(sSeqC + 1);
    out.push(fromClient(-1, 'A', cSeq, sSeqC, sSeq));
  }
  return out;
}

/** "a.b.c.d" as the comma form of PORT and 227: "a,b,c,d". */
export function commas(addr: string): string {
  return addr.split('.').join(',');
}

/** A 227 reply for `addr`:`port`, with or without parentheses. */
export function reply227(addr: string, port: number, parens = true): string {
  const six = `${commas(addr)},${port >> 8},${port & 0xff}`;
  return parens ? `227 Entering Passive Mode (${six}).\r\n` : `227 Entering Passive Mode ${six}\r\n`;
}
