// UDP_CHECK (keepalived/check/check_udp.c): a datagram (payload, default empty) to the target
// from a connected socket. Without require_reply the check passes unless an ICMP error
// (port unreachable: ECONNREFUSED on the connected socket) comes back within
// connect_timeout. With require_reply a reply must come within connect_timeout, be
// min_reply_length to max_reply_length bytes long and, when given, start with the reply
// bytes (compared over the shorter of the two, as check_udp_reply). The socket is closed on
// every path.
import { createSocket } from 'node:dgram';
import type { UdpCheckConfig } from '../config.js';
import type { CheckResult } from '../state.js';
import { describeError, seconds } from './tcp.js';

export function runUdpCheck(cfg: UdpCheckConfig, signal?: AbortSignal): Promise<CheckResult> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    let settled = false;
    const done = (r: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      try { socket.close(); } catch { /* already closed */ }
      resolve(r);
    };
    const onAbort = (): void => done({ ok: false, detail: 'aborted' });
    const timer = setTimeout(() => done(cfg.requireReply
      ? { ok: false, detail: `no reply within ${seconds(cfg.connectTimeout)}` }
      : { ok: true, detail: `no ICMP error within ${seconds(cfg.connectTimeout)}` }), cfg.connectTimeout);
    if (signal?.aborted) { onAbort(); return; }
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => done({ ok: false, detail: describeError(err) }));
    socket.on('message', (msg) => {
      if (!cfg.requireReply) { done({ ok: true, detail: `reply of ${msg.length} bytes` }); return; }
      if (msg.length < cfg.minReplyLength || msg.length > cfg.maxReplyLength) {
        done({ ok: false, detail: `reply of ${msg.length} bytes, not ${cfg.minReplyLength} to ${cfg.maxReplyLength}` });
        return;
      }
      if (cfg.reply !== undefined) {
        const want = Buffer.from(cfg.reply, 'hex');
        const n = Math.min(want.length, msg.length);
        if (!msg.subarray(0, n).equals(want.subarray(0, n))) { done({ ok: false, detail: 'reply data mismatch' }); return; }
      }
      done({ ok: true, detail: `reply of ${msg.length} bytes` });
    });
    const send = (): void => {
      socket.connect(cfg.target.port, cfg.target.ip, (err?: Error) => {
        if (err) { done({ ok: false, detail: describeError(err) }); return; }
        socket.send(cfg.payload === undefined ? Buffer.alloc(0) : Buffer.from(cfg.payload, 'hex'), (e) => { if (e) done({ ok: false, detail: describeError(e) }); });
      });
    };
    if (cfg.target.bindto !== undefined || cfg.target.bindPort !== undefined) socket.bind({ address: cfg.target.bindto, port: cfg.target.bindPort ?? 0 }, send);
    else send();
  });
}
