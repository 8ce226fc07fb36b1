// TCP_CHECK (keepalived/check/check_tcp.c): a TCP connection to the target within
// connect_timeout is a success; it is closed at once. Refused, unreachable or timed out is a
// failure. The socket is destroyed on every path (success, error, timeout, abort).
import { connect, type Socket } from 'node:net';
import type { TcpCheckConfig, CheckTarget } from '../config.js';
import type { CheckResult } from '../state.js';

/** Options for net.connect from a target (bindto, bind_port). */
export function connectOptions(t: CheckTarget): { host: string; port: number; localAddress?: string; localPort?: number } {
  const o: { host: string; port: number; localAddress?: string; localPort?: number } = { host: t.ip, port: t.port };
  if (t.bindto !== undefined) o.localAddress = t.bindto;
  if (t.bindPort !== undefined) o.localPort = t.bindPort;
  return o;
}

/** An error as a short detail: "ECONNREFUSED", "timeout after 5 s". */
export function describeError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code ?? e.message ?? String(err);
}

export const seconds = (ms: number): string => `${Number((ms / 1000).toFixed(3))} s`;

/**
 * Opens a connection with `connect` and resolves once `onConnect` settles the result; a
 * timeout, error or abort resolves a failure. Never rejects; the socket is always destroyed.
 */
export function withSocket(
  open: () => Socket,
  connectTimeout: number,
  signal: AbortSignal | undefined,
  onConnect: (socket: Socket, done: (r: CheckResult) => void) => void,
  connectEvent = 'connect',
): Promise<CheckResult> {
  return new Promise((resolve) => {
    let settled = false;
    let socket: Socket | undefined;
    const done = (r: CheckResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket?.destroy();
      resolve(r);
    };
    const onAbort = (): void => done({ ok: false, detail: 'aborted' });
    const timer = setTimeout(() => done({ ok: false, detail: `connection timeout after ${seconds(connectTimeout)}` }), connectTimeout);
    if (signal?.aborted) { onAbort(); return; }
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      socket = open();
    } catch (err) {
      done({ ok: false, detail: describeError(err) });
      return;
    }
    socket.on('error', (err) => done({ ok: false, detail: describeError(err) }));
    socket.on('close', () => done({ ok: false, detail: 'connection closed' }));
    socket.once(connectEvent, () => {
      if (settled) return;
      clearTimeout(timer);
      onConnect(socket as Socket, done);
    });
  });
}

export function runTcpCheck(cfg: TcpCheckConfig, signal?: AbortSignal): Promise<CheckResult> {
  return withSocket(() => connect(connectOptions(cfg.target)), cfg.connectTimeout, signal, (_s, done) => done({ ok: true, detail: 'connected' }));
}
