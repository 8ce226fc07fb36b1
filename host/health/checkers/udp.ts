// UDP_CHECK (keepalived/check/check_udp.c): a datagram (payload, default empty) to the target
// from a connected socket. Without require_reply the check passes unless an ICMP error
// (port unreachable: ECONNREFUSED on the connected socket) comes back within
// connect_timeout. With require_reply a reply must come within connect_timeout, be
// min_reply_length to max_reply_length bytes long and, when given, start with the reply
// bytes (compared over the shorter of the two, as check_udp_reply). The socket is closed on
// every path.
import type { UdpCheckConfig } from '../config.js';
import type { CheckResult } from '../state.js';
import { seconds } from './tcp.js';
import { udpExchange } from './udp-exchange.js';

export function runUdpCheck(cfg: UdpCheckConfig, signal?: AbortSignal): Promise<CheckResult> {
  return udpExchange({
    target: cfg.target,
    timeoutMs: cfg.connectTimeout,
    datagram: cfg.payload === undefined ? Buffer.alloc(0) : Buffer.from(cfg.payload, 'hex'),
    onTimeout: () => (cfg.requireReply
      ? { ok: false, detail: `no reply within ${seconds(cfg.connectTimeout)}` }
      : { ok: true, detail: `no ICMP error within ${seconds(cfg.connectTimeout)}` }),
    onReply: (msg) => {
      if (!cfg.requireReply) return { ok: true, detail: `reply of ${msg.length} bytes` };
      if (msg.length < cfg.minReplyLength || msg.length > cfg.maxReplyLength) {
        return { ok: false, detail: `reply of ${msg.length} bytes, not ${cfg.minReplyLength} to ${cfg.maxReplyLength}` };
      }
      if (cfg.reply !== undefined) {
        const want = Buffer.from(cfg.reply, 'hex');
        const n = Math.min(want.length, msg.length);
        if (!msg.subarray(0, n).equals(want.subarray(0, n))) return { ok: false, detail: 'reply data mismatch' };
      }
      return { ok: true, detail: `reply of ${msg.length} bytes` };
    },
  }, signal);
}
