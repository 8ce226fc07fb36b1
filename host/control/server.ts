// The gateway's control socket: a Unix socket, mode 0600 owned by root, so nobody else can
// connect; newline-delimited JSON (protocol.ts). It runs on the gateway's one thread, so a
// request is handled between two batches of packets: configuration never races the data
// plane and costs nothing per packet.
//
// Hostile or broken clients never disturb forwarding or other clients: a malformed line gets
// an error reply, an oversized one or a silent client is dropped, a client that goes away
// mid-reply is forgotten, and at most MAX_CLIENTS are served at once. Each fault is logged
// once per client. A client's requests are answered one at a time, each in its own turn of
// the event loop, and a client that sends faster than it is answered is paused: a flood of
// requests on one connection cannot hold the forwarding loop.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Engine } from '../engine/engine.js';
import { WasmvsError } from '../errors.js';
import type { Logger } from '../gateway/log.js';
import type { ListedService } from '../ipvsadm/format.js';
import {
  DEFAULT_LIMITS, METHODS, PROTOCOL_VERSION, type ControlLimits, type ControlReply, type GatewayInfo, type Method, type TableOptions,
} from './protocol.js';

/** Requests read ahead of the one being answered before the client is paused. */
const MAX_QUEUED_REQUESTS = 32;

/**
 * The services as a listing prints them, read from the engine in one synchronous step:
 * configuration, counters, thresholds and persistence templates per real server
 * (listServices) with totals and rates (statistics). PersistConn is always there (the data
 * plane counts templates per real server); the option is kept for the protocol's sake.
 */
export function engineTable(engine: Engine, _options: TableOptions = {}): ListedService[] {
  const key = (p: string, a: string, port: number) => `${p} ${a}:${port}`;
  const stats = new Map(engine.statistics().map((s) => [key(s.protocol, s.vaddr, s.vport), s]));
  return engine.listServices().map((s) => {
    const st = stats.get(key(s.protocol, s.vaddr, s.vport));
    const { dests, ...config } = s;
    const { dests: statDests, protocol: _p, vaddr: _a, vport: _v, ...totals } = st ?? { dests: [], protocol: s.protocol, vaddr: s.vaddr, vport: s.vport };
    return {
      ...config,
      ...totals,
      dests: dests.map((d) => {
        const ds = statDests.find((x) => x.daddr === d.daddr && x.dport === d.dport);
        const { daddr: _da, dport: _dp, ...dstats } = ds ?? { daddr: d.daddr, dport: d.dport };
        return { ...d, ...dstats };
      }),
    };
  });
}

export interface ControlTarget {
  engine: Engine;
  info(): GatewayInfo;
  /**
   * Each checked virtual server's health (keepalived checkers, host/health/): quorum, real
   * servers' state and each checker's last result. Absent or empty without health checks.
   */
  health?(): unknown[];
  /** Runs after a request that changed the configuration (the gateway syncs its host routes). */
  changed?(): Promise<void>;
}

/** True when something accepts connections on the socket at `path`. */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

export class ControlServer {
  readonly path: string;
  private readonly server: Server;
  private readonly clients = new Set<Socket>();
  private readonly target: ControlTarget;
  private readonly log: Logger;
  private readonly limits: ControlLimits;
  private nextClient = 1;

  private constructor(path: string, server: Server, target: ControlTarget, log: Logger, limits: ControlLimits) {
    this.path = path;
    this.server = server;
    this.target = target;
    this.log = log;
    this.limits = limits;
  }

  /**
   * Listens on `path`. A stale socket file left by a dead gateway is replaced; one a live
   * gateway holds makes this refuse (WASMVS_CONTROL_IN_USE).
   */
  static async listen(path: string, target: ControlTarget, log: Logger, limits: Partial<ControlLimits> = {}): Promise<ControlServer> {
    const lim: ControlLimits = { ...DEFAULT_LIMITS, ...limits };
    let exists = false;
    try {
      const st = lstatSync(path);
      if (!st.isSocket()) throw new WasmvsError('WASMVS_FILE', `control path ${path} exists and is not a socket; remove it or choose another --control`);
      exists = true;
    } catch (err) {
      if (err instanceof WasmvsError) throw err;
    }
    if (exists) {
      if (await probe(path)) throw new WasmvsError('WASMVS_CONTROL_IN_USE', `control socket ${path} is held by a live gateway; stop it or choose another --control`);
      unlinkSync(path);
      log.info('control', `replaced the stale control socket ${path}`);
    }
    const server = createServer();
    const self = new ControlServer(path, server, target, log, lim);
    server.maxConnections = lim.maxClients;
    server.on('connection', (s) => self.serve(s));
    server.on('drop', () => log.warn('control', `more than ${lim.maxClients} control clients at once: one refused`));
    // The socket is created 0600 (no window in which another user could connect), then
    // chmod'ed again in case the umask was stricter than asked.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(path, () => { server.off('error', reject); resolve(); });
      });
    } catch (cause) {
      throw new WasmvsError('WASMVS_FILE', `cannot listen on control socket ${path}: ${(cause as Error).message}`, { cause });
    } finally {
      process.umask(umask);
    }
    chmodSync(path, 0o600);
    server.on('error', (err) => log.error('control', err.message));
    return self;
  }

  /** Stops listening, drops every client and removes the socket file. */
  async close(): Promise<void> {
    for (const s of this.clients) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    try { unlinkSync(this.path); } catch { /* already gone */ }
  }

  private serve(socket: Socket): void {
    const id = this.nextClient++;
    const { maxRequestBytes, idleTimeoutMs } = this.limits;
    this.clients.add(socket);
    let buffered: Buffer[] = [];
    let size = 0;
    const lines: string[] = [];
    let busy = false;
    const logged = new Set<string>();
    const fault = (kind: string, message: string) => {
      if (logged.has(kind)) return;
      logged.add(kind);
      this.log.warn('control', `client ${id}: ${message}`);
    };
    const tooBig = () => {
      fault('size', `request over ${maxRequestBytes} bytes, dropped`);
      this.send(socket, { version: PROTOCOL_VERSION, id: null, ok: false, error: { code: 'WASMVS_CONTROL_REQUEST', message: `request over ${maxRequestBytes} bytes` } });
      socket.end();
      socket.pause();
      buffered = [];
      lines.length = 0;
    };
    // Requests are answered in order, one at a time, each whole and each in its own turn of
    // the event loop (setImmediate), so that packets flow between two requests.
    const pump = () => {
      if (busy) return;
      const line = lines.shift();
      if (line === undefined) return;
      busy = true;
      setImmediate(() => {
        this.answer(socket, line, fault).finally(() => {
          busy = false;
          if (lines.length < MAX_QUEUED_REQUESTS && socket.isPaused() && !socket.destroyed && socket.writable) socket.resume();
          pump();
        });
      });
    };
    socket.setTimeout(idleTimeoutMs, () => { fault('idle', `nothing for ${idleTimeoutMs / 1000} s, dropped`); socket.destroy(); });
    socket.on('error', (err) => fault('error', `connection error (${err.message})`));
    socket.on('close', () => { this.clients.delete(socket); lines.length = 0; });
    socket.on('data', (chunk: Buffer) => {
      let start = 0;
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
        if (size + (nl - start) > maxRequestBytes) return tooBig();
        lines.push(Buffer.concat([...buffered, chunk.subarray(start, nl)]).toString('utf8'));
        buffered = [];
        size = 0;
        start = nl + 1;
      }
      const rest = chunk.subarray(start);
      size += rest.length;
      if (size > maxRequestBytes) return tooBig();
      if (rest.length > 0) buffered.push(rest);
      if (lines.length >= MAX_QUEUED_REQUESTS) socket.pause();
      pump();
    });
  }

  private async answer(socket: Socket, line: string, fault: (kind: string, message: string) => void): Promise<void> {
    if (socket.destroyed || line.trim() === '') return;
    let id: number | null = null;
    try {
      let req: unknown;
      try {
        req = JSON.parse(line);
      } catch {
        throw new WasmvsError('WASMVS_CONTROL_REQUEST', 'malformed JSON');
      }
      if (typeof req !== 'object' || req === null) throw new WasmvsError('WASMVS_CONTROL_REQUEST', 'a request is a JSON object');
      const r = req as { version?: unknown; id?: unknown; method?: unknown; params?: unknown };
      if (typeof r.id === 'number' && Number.isInteger(r.id)) id = r.id;
      if (r.version !== PROTOCOL_VERSION) throw new WasmvsError('WASMVS_CONTROL_REQUEST', `protocol version ${String(r.version)} is not ${PROTOCOL_VERSION}`);
      if (id === null) throw new WasmvsError('WASMVS_CONTROL_REQUEST', 'a request needs an integer id');
      if (typeof r.method !== 'string' || !Object.hasOwn(METHODS, r.method)) throw new WasmvsError('WASMVS_CONTROL_REQUEST', `unknown method ${JSON.stringify(r.method)}`);
      const params = r.params ?? [];
      if (!Array.isArray(params)) throw new WasmvsError('WASMVS_CONTROL_REQUEST', 'params must be an array');
      const method = r.method as Method;
      const [min, max] = METHODS[method].params;
      if (params.length < min || params.length > max) throw new WasmvsError('WASMVS_CONTROL_REQUEST', `${method} takes ${min === max ? min : `${min} to ${max}`} parameters, got ${params.length}`);
      if (method === 'restore' && typeof params[0] !== 'string') throw new WasmvsError('WASMVS_CONTROL_REQUEST', 'restore takes the rules as text');
      const result = this.call(method, params);
      if (METHODS[method].write && this.target.changed) await this.target.changed();
      this.send(socket, { version: PROTOCOL_VERSION, id, ok: true, result: result ?? null });
    } catch (err) {
      const known = err instanceof WasmvsError;
      if (!known || err.code === 'WASMVS_CONTROL_REQUEST') fault('request', `bad request (${(err as Error).message})`);
      this.send(socket, {
        version: PROTOCOL_VERSION, id, ok: false,
        error: known ? { code: err.code, message: err.message } : { code: 'WASMVS_CONTROL_REQUEST', message: `bad parameters: ${(err as Error).message}` },
      });
    }
  }

  private call(method: Method, params: unknown[]): unknown {
    const engine = this.target.engine;
    if (method === 'info') return this.target.info();
    if (method === 'health') return this.target.health?.() ?? [];
    if (method === 'table') {
      const o = params[0];
      if (o !== undefined && (typeof o !== 'object' || o === null)) throw new WasmvsError('WASMVS_CONTROL_REQUEST', 'table takes an options object');
      return engineTable(engine, o as TableOptions | undefined);
    }
    // The engine's own argument checks apply: a request is exactly an in-process call.
    const fn = (engine as unknown as Record<string, (...a: unknown[]) => unknown>)[method];
    return fn.apply(engine, params);
  }

  private send(socket: Socket, reply: ControlReply): void {
    if (socket.destroyed || !socket.writable) return; // the client went away: nothing to tell
    socket.write(`${JSON.stringify(reply)}\n`);
  }
}
