// Real-server programs and the client helper, started in the testbed's namespaces as separate
// node processes (`ip netns exec NS node <script>`).
//
// Locating the scripts: they sit beside this module, so `import.meta.url` names them in both
// layouts. From sources (host/testbed/servers.ts, run under tsx as the tests do) they are .ts
// files and the child needs tsx's loader: `node --import <absolute URL of tsx> rs-http.ts`,
// the URL resolved from here so the child's working directory does not matter. From the build
// (build/host/testbed/servers.js, `wasmvs demo` after `npm run build`) they are .js files run
// by plain node. Either way the child is `process.execPath`, the node running us.
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { WasmvsError } from '../errors.js';
import type { NsProcess, ServerNode, Testbed } from './topology.js';

export type ProgramName = 'rs-http' | 'rs-udp' | 'client';

const FROM_SOURCES = import.meta.url.endsWith('.ts');

/**
 * argv that runs the script at `rel` (relative to this folder, without its extension) with
 * `args`: [node, (--import tsx), script, ...args], the .ts under tsx from sources, the .js
 * from the build.
 */
export function scriptArgv(rel: string, args: readonly string[] = []): string[] {
  const script = fileURLToPath(new URL(`${rel}.${FROM_SOURCES ? 'ts' : 'js'}`, import.meta.url));
  if (!existsSync(script)) {
    throw new WasmvsError('WASMVS_FILE', `${script} is missing (run npm run build)`);
  }
  const loader: string[] = [];
  if (FROM_SOURCES) {
    let tsx: string;
    try {
      tsx = import.meta.resolve('tsx');
    } catch (e) {
      throw new WasmvsError('WASMVS_FILE', 'running the testbed from TypeScript sources needs tsx (npm install)', { cause: e });
    }
    loader.push('--import', tsx);
  }
  return [process.execPath, ...loader, script, ...args];
}

/** argv that runs testbed program `name` with `args`. */
export function programArgv(name: ProgramName, args: readonly string[] = []): string[] {
  return scriptArgv(`./${name}`, args);
}

/** {"rs1 198.18.1.2": n} (the client's `servers`, keyed by the page's text) as {rs1: n}. */
export function serverNames(servers: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(servers)) {
    const name = k.split(' ')[0];
    out[name] = (out[name] ?? 0) + n;
  }
  return out;
}

/** The addresses replies came from (the client's `peers`, "ip:port" keys), without ports. */
export function peerAddresses(peers: Record<string, number>): string[] {
  return [...new Set(Object.keys(peers).map((p) => p.split(':')[0]))];
}

export interface RealServer {
  node: ServerNode;
  /** HTTP programs by port. */
  http: Map<number, NsProcess>;
  /** UDP echo programs by port. */
  udp: Map<number, NsProcess>;
}

export interface StartServersOptions {
  /** HTTP ports each real server listens on (default [80]). */
  httpPorts?: readonly number[];
  /** UDP echo ports (default [5353]; [] for none). */
  udpPorts?: readonly number[];
  /** Real servers to start on (names rs1...; default all). */
  only?: readonly string[];
  /** How long each may take to print "ready" (default 15 s: node + tsx on a loaded machine). */
  readyTimeoutMs?: number;
}

/** Starts one program in `server`'s namespace and waits for its "ready <port>" line. */
export async function startProgram(tb: Testbed, server: ServerNode, program: 'rs-http' | 'rs-udp', port: number, readyTimeoutMs = 15000): Promise<NsProcess> {
  const proc = tb.spawn(server.ns, programArgv(program, ['--name', server.name, '--port', String(port)]));
  try {
    await proc.waitForLine(/^ready \d+$/, readyTimeoutMs);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  return proc;
}

/**
 * Starts the HTTP and UDP echo programs on every real server (in parallel) and resolves once
 * all are listening. On failure, what was started is stopped and the error thrown.
 */
export async function startRealServers(tb: Testbed, options: StartServersOptions = {}): Promise<RealServer[]> {
  const httpPorts = options.httpPorts ?? [80];
  const udpPorts = options.udpPorts ?? [5353];
  for (const p of [...httpPorts, ...udpPorts]) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new WasmvsError('WASMVS_BAD_PORT', `testbed server port ${String(p)} is not an integer from 1 to 65535`);
  }
  const nodes = tb.servers.filter((s) => !options.only || options.only.includes(s.name));
  const result: RealServer[] = nodes.map((node) => ({ node, http: new Map(), udp: new Map() }));
  const starts: Promise<void>[] = [];
  for (const rs of result) {
    for (const port of httpPorts) starts.push(startProgram(tb, rs.node, 'rs-http', port, options.readyTimeoutMs).then((p) => void rs.http.set(port, p)));
    for (const port of udpPorts) starts.push(startProgram(tb, rs.node, 'rs-udp', port, options.readyTimeoutMs).then((p) => void rs.udp.set(port, p)));
  }
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await stopRealServers(result);
    throw failed.reason;
  }
  return result;
}

export async function stopRealServers(servers: readonly RealServer[]): Promise<void> {
  await Promise.all(servers.flatMap((s) => [...s.http.values(), ...s.udp.values()].map((p) => p.stop())));
}

/** What the client program prints for each subcommand (see client.ts). */
export interface HttpGetResult {
  requests: number;
  ok: number;
  failed: number;
  servers: Record<string, number>;
  peers: Record<string, number>;
  connections: number;
  responses: string[];
  errors: string[];
  ms: number;
}
export interface DownloadResult {
  status: number;
  bytes: number;
  sha256: string;
  server: string | null;
  peer: string;
  ms: number;
}
export interface UploadResult {
  status: number;
  bytes: number;
  sha256: string;
  received: { sha256?: string; bytes?: number; server?: string };
  match: boolean;
  peer: string;
  ms: number;
}
export interface UdpResult {
  sent: number;
  received: number;
  lost: number;
  bad: number;
  servers: Record<string, number>;
  peers: Record<string, number>;
  ms: number;
}

export interface ClientOptions {
  /** Source address (default the client's first, 198.18.0.2). */
  from?: string;
  /** Per request / datagram (default 10 s). */
  timeoutMs?: number;
  /** The whole run (default 120 s); the process is killed a little after it. */
  deadlineMs?: number;
}

/**
 * Runs the client program in the client namespace and returns its JSON. A run that reports
 * {"error"} or exits non-zero rejects with its message.
 */
export async function runClient<T = unknown>(tb: Testbed, args: readonly string[], options: ClientOptions = {}): Promise<T> {
  const deadline = options.deadlineMs ?? 120_000;
  const extra = ['--deadline', String(deadline)];
  if (options.from) extra.push('--from', options.from);
  if (options.timeoutMs) extra.push('--timeout', String(options.timeoutMs));
  let stdout: string;
  try {
    stdout = await tb.exec(tb.client.ns, programArgv('client', [...args, ...extra]), { timeoutMs: deadline + 10_000 });
  } catch (e) {
    const out = (e as { stdout?: string }).stdout ?? '';
    const parsed = out.trim() ? safeJson(out) : undefined;
    if (parsed && typeof parsed === 'object' && 'error' in parsed) throw new Error(`client ${args.join(' ')}: ${String(parsed.error)}`);
    throw e;
  }
  const parsed = safeJson(stdout);
  if (parsed === undefined) throw new Error(`client ${args.join(' ')}: output is not JSON: ${stdout.slice(0, 300)}`);
  return parsed as T;
}

function safeJson(text: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(text.trim().split('\n').pop() ?? '') as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export const clientGet = (tb: Testbed, url: string, count: number, opts: ClientOptions & { keepalive?: boolean; concurrency?: number } = {}): Promise<HttpGetResult> =>
  runClient(tb, ['http-get', url, String(count), ...(opts.keepalive ? ['--keepalive'] : []), ...(opts.concurrency ? ['--concurrency', String(opts.concurrency)] : [])], opts);
export const clientDownload = (tb: Testbed, url: string, opts: ClientOptions = {}): Promise<DownloadResult> => runClient(tb, ['download', url], opts);
export const clientUpload = (tb: Testbed, url: string, bytes: number, opts: ClientOptions = {}): Promise<UploadResult> => runClient(tb, ['upload', url, String(bytes)], opts);
export const clientUdp = (tb: Testbed, host: string, port: number, count: number, opts: ClientOptions & { newPort?: boolean; size?: number } = {}): Promise<UdpResult> =>
  runClient(tb, ['udp', host, String(port), String(count), ...(opts.newPort ? ['--new-port'] : []), ...(opts.size ? ['--size', String(opts.size)] : [])], opts);
