// DNS_CHECK (keepalived/check/check_dns.c): a query (type, default SOA; name, default the
// root) over UDP to the target; a response with our ID, QR set and RCODE 0 within
// connect_timeout is a success. A shorter message, another ID or a query is ignored and the
// wait goes on (dns_recv_thread); a non-zero RCODE, an ICMP error or the timeout is a failure.
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import type { DnsCheckConfig } from '../config.js';
import type { CheckResult } from '../state.js';
import { readHeader, writeQuery } from './dns-message.js';
import { describeError, seconds } from './tcp.js';

export function runDnsCheck(cfg: DnsCheckConfig, signal?: AbortSignal): Promise<CheckResult> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const id = randomInt(0x10000);
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
    const timer = setTimeout(() => done({ ok: false, detail: `read timeout after ${seconds(cfg.connectTimeout)}` }), cfg.connectTimeout);
    if (signal?.aborted) { onAbort(); return; }
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (err) => done({ ok: false, detail: describeError(err) }));
    socket.on('message', (msg) => {
      const h = readHeader(msg);
      if (!h || h.id !== id || !h.response) return;
      done(h.rcode === 0 ? { ok: true, detail: `${cfg.qtypeName} ${cfg.name || '.'} answered` } : { ok: false, detail: `read error occurred. (rcode = ${h.rcode})` });
    });
    const send = (): void => {
      socket.connect(cfg.target.port, cfg.target.ip, (err?: Error) => {
        if (err) { done({ ok: false, detail: describeError(err) }); return; }
        socket.send(writeQuery(id, cfg.name, cfg.qtype), (e) => { if (e) done({ ok: false, detail: describeError(e) }); });
      });
    };
    if (cfg.target.bindto !== undefined || cfg.target.bindPort !== undefined) socket.bind({ address: cfg.target.bindto, port: cfg.target.bindPort ?? 0 }, send);
    else send();
  });
}
