// One datagram exchange for the UDP-based checkers (UDP_CHECK, DNS_CHECK): a connected socket
// (bound to bindto/bind_port when given) sends one datagram and waits for replies until a
// verdict, the connect_timeout or an abort. An ICMP error (port unreachable arrives as
// ECONNREFUSED on a connected socket) fails the check. The socket is closed on every path.
import { createSocket } from 'node:dgram';
import type { CheckTarget } from '../config.js';
import type { CheckResult } from '../state.js';
import { describeError } from './tcp.js';

export interface UdpExchange {
  target: CheckTarget;
  /** Milliseconds to wait for a verdict. */
  timeoutMs: number;
  datagram: Buffer;
  /** A reply's verdict, or undefined to keep waiting (not ours, as dns_recv_thread). */
  onReply(msg: Buffer): CheckResult | undefined;
  /** The verdict when nothing decided within timeoutMs. */
  onTimeout(): CheckResult;
}

export function udpExchange(x: UdpExchange, signal?: AbortSignal): Promise<CheckResult> {
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
    const timer = setTimeout(() => done(x.onTimeout()), x.timeoutMs);
    if (signal?.aborted) { onAbort(); return; }
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => done({ ok: false, detail: describeError(err) }));
    socket.on('message', (msg) => {
      const verdict = x.onReply(msg);
      if (verdict) done(verdict);
    });
    const send = (): void => {
      socket.connect(x.target.port, x.target.ip, (err?: Error) => {
        if (err) { done({ ok: false, detail: describeError(err) }); return; }
        socket.send(x.datagram, (e) => { if (e) done({ ok: false, detail: describeError(e) }); });
      });
    };
    if (x.target.bindto !== undefined || x.target.bindPort !== undefined) socket.bind({ address: x.target.bindto, port: x.target.bindPort ?? 0 }, send);
    else send();
  });
}
