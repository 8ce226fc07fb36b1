// The reference engine's FTP helper: assembly/ftp.ts as a Node developer would write it, over
// strings and regular expressions instead of bytes in linear memory. Same behaviour, written
// apart, so the differential tests and the fuzz hold the data plane to it (ip_vs_ftp.c,
// ip_vs_app.c ip_vs_seq, nf_conntrack_seqadj.c for SACK; see assembly/ftp.ts for the why).
import type { FtpCounter } from '../../host/engine/abi.js';
import { fold, IP_CHECKSUM, IP_DADDR, IP_SADDR, sum16, TCP_CHECKSUM } from './wire.js';

/** The helper's state of one control connection (assembly/layout.ts APP_*). */
export interface FtpState {
  armed: boolean;
  /** init/delta/prev hold a rewrite (IP_VS_CONN_F_OUT_SEQ). */
  seqSet: boolean;
  init: number;
  delta: number;
  prev: number;
}

export const newFtpState = (): FtpState => ({ armed: false, seqSet: false, init: 0, delta: 0, prev: 0 });

/** What the helper asks of the engine. */
export interface FtpHost {
  /** A data connection of the control connection being handled (cport 0 with passive). */
  dataConn(caddr: number, cport: number, vport: number, daddr: number, dport: number, passive: boolean): void;
  /** Counts `what`; `report`: also an 'ftp' event. */
  note(what: FtpCounter, report: boolean): void;
}

/** The control connection's addresses the helper needs (host order numbers). */
export interface FtpConnView {
  caddr: number;
  vaddr: number;
  daddr: number;
  vport: number;
  dport: number;
  established: boolean;
}

const u32 = (x: number): number => x >>> 0;
/** a after b, modulo 2^32. */
const after = (a: number, b: number): boolean => ((b - a) | 0) < 0;
const latin1 = (b: Uint8Array): string => Array.from(b, (x) => String.fromCharCode(x)).join('');
const bytesOf = (s: string): Uint8Array => Uint8Array.from(s, (ch) => ch.charCodeAt(0));
const octets = (a: number): number[] => [a >>> 24, (a >>> 16) & 0xff, (a >>> 8) & 0xff, a & 0xff];

/** ASCII letters only (toUpperCase would turn 'ß' into 'SS'). */
const upper = (s: string): string => s.replace(/[a-z]/g, (ch) => String.fromCharCode(ch.charCodeAt(0) - 32));
/** "the fragment could start a line beginning with w", case-insensitive. */
const couldStart = (frag: string, w: string): boolean => upper(frag.slice(0, w.length)) === w.slice(0, frag.length);

const BYTE = '(\\d{1,3})';
const SIX = new RegExp(`^${BYTE},${BYTE},${BYTE},${BYTE},${BYTE},${BYTE}(?!\\d)`);

/** h1,h2,h3,h4,p1,p2 at the start of `s`: address, port, and the address text's length. */
function six(s: string): { addr: number; port: number; addrLen: number } | undefined {
  const m = SIX.exec(s);
  if (!m) return undefined;
  const n = m.slice(1, 7).map(Number);
  if (n.some((x) => x > 255)) return undefined;
  return { addr: u32((n[0] << 24) | (n[1] << 16) | (n[2] << 8) | n[3]), port: n[4] * 256 + n[5], addrLen: m.slice(1, 5).join(',').length };
}

function portAt(s: string, term: string): { port: number; rest: string } | undefined {
  const m = /^(\d{1,5})(.*)$/s.exec(s);
  if (!m || m[2][0] !== term) return undefined;
  const port = Number(m[1]);
  return port >= 1 && port <= 65535 ? { port, rest: m[2] } : undefined;
}

/** Lines of a payload: the complete ones (CR stripped) with offsets, and a cut-off tail. */
function lines(text: string): { lines: Array<{ at: number; line: string }>; tail: string } {
  const out: Array<{ at: number; line: string }> = [];
  let at = 0;
  for (;;) {
    const nl = text.indexOf('\n', at);
    if (nl < 0) return { lines: out, tail: text.slice(at) };
    out.push({ at, line: text.slice(at, nl).replace(/\r$/, '') });
    at = nl + 1;
  }
}

/**
 * The helper's part in forwarding a control connection's packet `pkt` (IPv4 at `l3`, its
 * addresses already rewritten; `room`: bytes of slot from l3 on). Returns the packet: the
 * same bytes changed in place, or new bytes when a 227 changed length.
 */
export function ftpPacket(host: FtpHost, c: FtpConnView, st: FtpState, reply: boolean, pkt: Uint8Array, l3: number, room: number): Uint8Array {
  const v = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  const hlen = (pkt[l3] & 0x0f) * 4;
  const total = v.getUint16(l3 + 2);
  const l4 = l3 + hlen;
  const doff = (pkt[l4 + 12] >> 4) * 4;
  const payload = latin1(pkt.subarray(l4 + doff, l3 + total));
  let touched = false;
  let text = payload;
  if (reply) {
    const seq = v.getUint32(l4 + 4);
    if (st.seqSet) {
      const fixed = u32(seq + (after(seq, st.init) ? st.delta : st.prev));
      if (fixed !== seq) { v.setUint32(l4 + 4, fixed); touched = true; }
    }
    const retransmit = st.seqSet && seq === st.init;
    if (c.established && payload.length > 0 && (st.armed || retransmit)) {
      const r = replies(host, c, st, payload, retransmit, total, room);
      text = r.text;
      if (r.rewrote) {
        touched = true;
        if (!retransmit && (!st.seqSet || after(seq, st.init))) {
          st.prev = st.delta;
          st.delta = u32(st.delta + r.grown);
          st.init = seq;
          st.seqSet = true;
        }
      }
    }
  } else {
    if (st.seqSet && (st.delta !== 0 || st.prev !== 0)) {
      touched = true;
      const toServer = (s: number): number => u32(s - (after(s, u32(st.init + st.prev)) ? st.delta : st.prev));
      v.setUint32(l4 + 8, toServer(v.getUint32(l4 + 8)));
      for (let o = l4 + 20; o < l4 + doff;) {
        const kind = pkt[o];
        if (kind === 0) break;
        if (kind === 1) { o++; continue; }
        if (o + 1 >= l4 + doff) break;
        const len = pkt[o + 1];
        if (len < 2 || o + len > l4 + doff) break;
        if (kind === 5) for (let b = o + 2; b + 4 <= o + len; b += 4) v.setUint32(b, toServer(v.getUint32(b)));
        o += len;
      }
    }
    if (c.established && payload.length > 0) commands(host, c, st, payload);
  }
  if (!touched) return pkt;
  let out = pkt;
  if (text !== payload) {
    const body = bytesOf(text);
    out = new Uint8Array(l4 + doff + body.length + (pkt.length - l3 - total));
    out.set(pkt.subarray(0, l4 + doff));
    out.set(body, l4 + doff);
    out = out.subarray(0, l4 + doff + body.length).slice(); // trailing padding goes
    const ov = new DataView(out.buffer);
    ov.setUint16(l3 + 2, out.length - l3);
    ov.setUint16(l3 + IP_CHECKSUM, 0);
    ov.setUint16(l3 + IP_CHECKSUM, ~fold(sum16(out, l3, hlen)) & 0xffff);
  }
  const ov = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const tcpLen = ov.getUint16(l3 + 2) - hlen;
  ov.setUint16(l4 + TCP_CHECKSUM, 0);
  const pseudo = sum16(out, l3 + IP_SADDR, 4) + sum16(out, l3 + IP_DADDR, 4) + 6 + tcpLen;
  ov.setUint16(l4 + TCP_CHECKSUM, ~fold(sum16(out, l4, tcpLen, pseudo)) & 0xffff);
  return out;
}

/** Client -> server: PASV/EPSV arm, PORT/EPRT make active data connections. */
function commands(host: FtpHost, c: FtpConnView, st: FtpState, payload: string): void {
  const { lines: ls, tail } = lines(payload);
  for (const { line } of ls) {
    const up = upper(line);
    if ((up.startsWith('PASV') || up.startsWith('EPSV')) && (line.length === 4 || line[4] === ' ')) {
      st.armed = true;
    } else if (up.startsWith('PORT ')) {
      const p = six(line.slice(5).replace(/^ +/, ''));
      if (p) { st.armed = false; active(host, c, p.addr, p.port); }
    } else if (up.startsWith('EPRT ') && line.length >= 8) {
      const d = line[5];
      const code = d.charCodeAt(0);
      if (code < 33 || code > 126 || line[6] !== '1' || line[7] !== d) continue;
      const rest = line.slice(8);
      const end = rest.indexOf(d);
      const dotted = end < 0 ? '' : rest.slice(0, end);
      const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(dotted);
      if (!m || m.slice(1).some((x) => Number(x) > 255)) continue;
      const p = portAt(rest.slice(end + 1), d);
      if (!p) continue;
      st.armed = false;
      const n = m.slice(1).map(Number);
      active(host, c, u32((n[0] << 24) | (n[1] << 16) | (n[2] << 8) | n[3]), p.port);
    }
  }
  if (tail.length > 0 && ['PORT ', 'EPRT ', 'PASV', 'EPSV'].some((w) => couldStart(tail, w))) host.note('split-command', true);
}

function active(host: FtpHost, c: FtpConnView, caddr: number, cport: number): void {
  host.dataConn(caddr, cport, (c.vport - 1) & 0xffff, c.daddr, (c.dport - 1) & 0xffff, false);
}

/** Server -> client: 227 rewritten to the VIP, 229 noted; both make passive data connections. */
function replies(host: FtpHost, c: FtpConnView, st: FtpState, payload: string, retransmit: boolean, total: number, room: number): { text: string; grown: number; rewrote: boolean } {
  const { lines: ls, tail } = lines(payload);
  let text = '';
  let pos = 0; // how much of the payload is in `text`
  let grown = 0;
  let rewrote = false;
  for (const { at, line } of ls) {
    const up = upper(line);
    if (up.startsWith('227 ')) {
      const first = line.slice(4).search(/\d/);
      const p = first < 0 ? undefined : six(line.slice(4 + first));
      if (!p) { host.note('bad-reply', true); continue; }
      if (!retransmit) st.armed = false;
      host.dataConn(c.caddr, 0, p.port, p.addr, p.port, true);
      const vip = octets(c.vaddr).join(',');
      const diff = vip.length - p.addrLen;
      const newTotal = total + grown + diff;
      if (diff > 0 && (newTotal > room || newTotal > 0xffff)) { host.note('no-room', true); continue; }
      const start = at + 4 + first;
      text += payload.slice(pos, start) + vip;
      pos = start + p.addrLen;
      grown += diff;
      rewrote = true;
      host.note('rewritten', false);
      if (retransmit) host.note('retransmit', false);
    } else if (up.startsWith('229 ')) {
      const q = line.indexOf('(', 4);
      const d = q >= 0 && q + 4 < line.length ? line[q + 1] : '\0';
      const code = d.charCodeAt(0);
      const p = code >= 33 && code <= 126 && line[q + 2] === d && line[q + 3] === d ? portAt(line.slice(q + 4), d) : undefined;
      if (!p) { host.note('bad-reply', true); continue; }
      if (!retransmit) st.armed = false;
      host.dataConn(c.caddr, 0, p.port, c.daddr, p.port, true);
    }
  }
  if (tail.length > 0 && (couldStart(tail, '227 ') || couldStart(tail, '229 '))) host.note('split-reply', true);
  return { text: text + payload.slice(pos), grown, rewrote };
}
