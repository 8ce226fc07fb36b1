// The Node client of a running gateway's control socket: the engine's verbs, over the
// socket, so a Node service (or `wasmvs adm`) can steer a gateway it did not start. Errors
// come back as WasmvsErrors with the same codes as the in-process API.
import { connect, type Socket } from 'node:net';
import type { ConnInfo, Counters, DestKey, ServiceInfo, ServiceKey, Timeouts } from '../engine/engine.js';
import type { VirtualServerStatus } from '../health/manager.js';
import { WasmvsError, type ErrorCode } from '../errors.js';
import type { DestSpec, ServiceSpec } from '../ipvsadm/rules.js';
import type { ServiceStats } from '../engine/stats.js';
import type { ListedService } from '../ipvsadm/format.js';
import { DEFAULT_CONTROL_PATH, PROTOCOL_VERSION, type ControlReply, type GatewayInfo, type Method, type TableOptions } from './protocol.js';

export interface ControlClientOptions {
  /** Socket path (default: $WASMVS_CONTROL, else /run/wasmvs.sock). */
  path?: string;
  /** Milliseconds to wait for a reply (default 10000). */
  timeoutMs?: number;
}

/** The socket path a client uses: the option, else $WASMVS_CONTROL, else the default. */
export function controlPath(path?: string): string {
  return path ?? process.env.WASMVS_CONTROL ?? DEFAULT_CONTROL_PATH;
}

/** Connects to a gateway's control socket. */
export async function connectControl(options: ControlClientOptions = {}): Promise<ControlClient> {
  const path = controlPath(options.path);
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => { s.off('error', reject); resolve(s); });
    s.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? 'no gateway is listening there'
        : err.code === 'EACCES' ? 'permission denied (the control socket is root-only)' : err.message;
      reject(new WasmvsError('WASMVS_CONTROL', `cannot connect to control socket ${path}: ${why}`, { cause: err }));
    });
  });
  return new ControlClient(socket, path, options.timeoutMs ?? 10_000);
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class ControlClient {
  readonly path: string;
  private readonly socket: Socket;
  private readonly timeoutMs: number;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private buffer = '';
  private closedError: Error | undefined;

  constructor(socket: Socket, path: string, timeoutMs: number) {
    this.socket = socket;
    this.path = path;
    this.timeoutMs = timeoutMs;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    const gone = (err?: Error) => {
      this.closedError = new WasmvsError('WASMVS_CONTROL', `control socket ${path} closed${err ? `: ${err.message}` : ''}`);
      for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(this.closedError); }
      this.pending.clear();
    };
    socket.on('error', gone);
    socket.on('close', () => gone());
  }

  /** One request; resolves with its result or rejects with the gateway's WasmvsError. */
  call(method: Method, ...params: unknown[]): Promise<unknown> {
    if (this.closedError) return Promise.reject(this.closedError);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new WasmvsError('WASMVS_CONTROL', `no reply to ${method} from ${this.path} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(`${JSON.stringify({ version: PROTOCOL_VERSION, id, method, params })}\n`);
    });
  }

  addService(spec: Partial<ServiceSpec> & ServiceKey): Promise<void> { return this.call('addService', spec) as Promise<void>; }
  editService(spec: Partial<ServiceSpec> & ServiceKey): Promise<void> { return this.call('editService', spec) as Promise<void>; }
  delService(key: ServiceKey): Promise<void> { return this.call('delService', key) as Promise<void>; }
  clear(): Promise<void> { return this.call('clear') as Promise<void>; }
  addDest(key: ServiceKey, dest: Partial<DestSpec> & DestKeyLike): Promise<void> { return this.call('addDest', key, dest) as Promise<void>; }
  editDest(key: ServiceKey, dest: Partial<DestSpec> & DestKeyLike): Promise<void> { return this.call('editDest', key, dest) as Promise<void>; }
  delDest(key: ServiceKey, dest: DestKey): Promise<void> { return this.call('delDest', key, dest) as Promise<void>; }
  /** ipvsadm-restore: all or nothing. */
  restore(rules: string): Promise<void> { return this.call('restore', rules) as Promise<void>; }
  setTimeouts(t: Partial<Timeouts>): Promise<void> { return this.call('setTimeouts', t) as Promise<void>; }
  zeroStats(key?: ServiceKey): Promise<void> { return (key ? this.call('zeroStats', key) : this.call('zeroStats')) as Promise<void>; }
  save(): Promise<string> { return this.call('save') as Promise<string>; }
  listServices(): Promise<ServiceInfo[]> { return this.call('listServices') as Promise<ServiceInfo[]>; }
  connections(): Promise<ConnInfo[]> { return this.call('connections') as Promise<ConnInfo[]>; }
  statistics(): Promise<ServiceStats[]> { return this.call('statistics') as Promise<ServiceStats[]>; }
  getTimeouts(): Promise<Timeouts> { return this.call('getTimeouts') as Promise<Timeouts>; }
  counters(): Promise<Counters> { return this.call('counters') as Promise<Counters>; }
  /** Health of each checked virtual server (empty when the gateway runs no health checks). */
  health(): Promise<VirtualServerStatus[]> { return this.call('health') as Promise<VirtualServerStatus[]>; }
  info(): Promise<GatewayInfo> { return this.call('info') as Promise<GatewayInfo>; }
  /** The services as a listing prints them, taken in one step (see protocol.ts). */
  table(options?: TableOptions): Promise<ListedService[]> { return (options ? this.call('table', options) : this.call('table')) as Promise<ListedService[]>; }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      let reply: ControlReply;
      try {
        reply = JSON.parse(line) as ControlReply;
      } catch {
        continue; // not a reply of ours
      }
      const p = reply.id === null ? undefined : this.pending.get(reply.id);
      if (!p) continue;
      this.pending.delete(reply.id as number);
      clearTimeout(p.timer);
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new WasmvsError(reply.error.code as ErrorCode, reply.error.message));
    }
  }
}

/** A real server named by its address (the port defaults to the service's). */
type DestKeyLike = { daddr: string };
