// DNS_CHECK (keepalived/check/check_dns.c): a query (type, default SOA; name, default the
// root) over UDP to the target; a response with our ID, QR set and RCODE 0 within
// connect_timeout is a success. A shorter message, another ID or a query is ignored and the
// wait goes on (dns_recv_thread); a non-zero RCODE, an ICMP error or the timeout is a failure.
import { randomInt } from 'node:crypto';
import type { DnsCheckConfig } from '../config.js';
import type { CheckResult } from '../state.js';
import { readHeader, writeQuery } from './dns-message.js';
import { seconds } from './tcp.js';
import { udpExchange } from './udp-exchange.js';

export function runDnsCheck(cfg: DnsCheckConfig, signal?: AbortSignal): Promise<CheckResult> {
  const id = randomInt(0x10000);
  return udpExchange({
    target: cfg.target,
    timeoutMs: cfg.connectTimeout,
    datagram: writeQuery(id, cfg.name, cfg.qtype),
    onTimeout: () => ({ ok: false, detail: `read timeout after ${seconds(cfg.connectTimeout)}` }),
    onReply: (msg) => {
      const h = readHeader(msg);
      if (!h || h.id !== id || !h.response) return undefined;
      return h.rcode === 0 ? { ok: true, detail: `${cfg.qtypeName} ${cfg.name || '.'} answered` } : { ok: false, detail: `read error occurred. (rcode = ${h.rcode})` };
    },
  }, signal);
}
