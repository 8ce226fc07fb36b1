// The testbed's client program, run inside the client namespace (servers.ts runClient). One
// subcommand per run, one JSON object on stdout, exit 0; a failure prints
// {"error": "..."} and exits 1. Every network wait has a timeout (--timeout MS, default 10 s,
// per request/datagram) and the whole run a deadline (--deadline MS, default 120 s).
//
//   http-get URL COUNT [--keepalive] [--concurrency C] [--from ADDR]
//       {"requests", "ok", "failed", "servers": {"rs1 198.18.1.2": n}, "peers": {"ip:port": n},
//        "connections", "responses": ["rs1 198.18.1.2", ...], "errors": [...], "ms"}
//   download URL [--from ADDR]         {"status", "bytes", "sha256", "server", "peer", "ms"}
//   upload URL BYTES [--seed S] [--from ADDR]
//       {"status", "bytes", "sha256", "received": {"sha256", "bytes", "server"}, "match", "peer", "ms"}
//   udp HOST PORT COUNT [--size N] [--new-port] [--from ADDR]
//       {"sent", "received", "lost", "bad", "servers": {"rs1": n}, "peers": {...}, "ms"}
// "peer" is the address the replies came from: through a NAT director, the VIP.
import { request, Agent, type IncomingMessage } from 'node:http';
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { Payload } from './payload.js';
import { intArg, parseArgs, usage } from './args.js';

const args = parseArgs(
  process.argv.slice(2),
  ['--concurrency', '--from', '--timeout', '--deadline', '--seed', '--size'],
  ['--keepalive', '--new-port'],
);
const [command, ...rest] = args.positional;
const timeoutMs = intArg(args.options.get('--timeout'), '--timeout', 1, 3_600_000, 10_000);
const deadlineMs = intArg(args.options.get('--deadline'), '--deadline', 1, 86_400_000, 120_000);
const from = args.options.get('--from');

function fail(message: string): never {
  process.stdout.write(`${JSON.stringify({ error: message })}\n`);
  process.exit(1);
}

const deadline = setTimeout(() => fail(`${command}: deadline of ${deadlineMs} ms passed`), deadlineMs);
deadline.unref();

interface Reply {
  res: IncomingMessage;
  body: Buffer;
  peer: string;
  localPort: number;
}

/** One HTTP request with a timeout on connect, idle and the whole exchange. */
function fetchOnce(url: URL, agent: Agent | false, method = 'GET', body?: (req: ReturnType<typeof request>) => void, sink?: (chunk: Buffer) => void): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent,
        localAddress: from,
        headers: agent === false ? { Connection: 'close' } : {},
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => (sink ? sink(c) : chunks.push(c)));
        res.on('end', () => {
          clearTimeout(whole);
          resolve({ res, body: Buffer.concat(chunks), peer: `${req.socket?.remoteAddress}:${req.socket?.remotePort}`, localPort: req.socket?.localPort ?? 0 });
        });
        res.on('error', reject);
      },
    );
    const whole = setTimeout(() => req.destroy(new Error(`no complete reply within ${timeoutMs} ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`idle for ${timeoutMs} ms`)));
    req.on('error', (e) => {
      clearTimeout(whole);
      reject(e);
    });
    if (body) body(req);
    else req.end();
  });
}

function countInto(map: Record<string, number>, key: string): void {
  map[key] = (map[key] ?? 0) + 1;
}

async function httpGet(): Promise<object> {
  const [rawUrl, rawCount] = rest;
  if (!rawUrl) usage('http-get URL COUNT');
  const url = new URL(rawUrl);
  const count = intArg(rawCount, 'COUNT', 1, 10_000_000);
  const concurrency = intArg(args.options.get('--concurrency'), '--concurrency', 1, 1024, 1);
  const keepalive = args.switches.has('--keepalive');
  // Keep-alive: one socket per worker, reused; otherwise a new connection per request.
  const agent = keepalive ? new Agent({ keepAlive: true, maxSockets: concurrency }) : false;
  const servers: Record<string, number> = {};
  const peers: Record<string, number> = {};
  const responses: string[] = new Array(count);
  const errors: string[] = [];
  const localPorts = new Set<number>();
  let next = 0;
  let ok = 0;
  const started = Date.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        const r = await fetchOnce(url, agent);
        const text = r.body.toString().trim();
        responses[i] = text;
        localPorts.add(r.localPort);
        countInto(peers, r.peer);
        if (r.res.statusCode === 200) {
          ok++;
          countInto(servers, text);
        } else {
          errors.push(`request ${i}: status ${r.res.statusCode}`);
        }
      } catch (e) {
        responses[i] = '';
        errors.push(`request ${i}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (agent) agent.destroy();
  return { requests: count, ok, failed: count - ok, servers, peers, connections: localPorts.size, responses, errors: errors.slice(0, 20), ms: Date.now() - started };
}

async function download(): Promise<object> {
  const [rawUrl] = rest;
  if (!rawUrl) usage('download URL');
  const hash = createHash('sha256');
  let bytes = 0;
  const started = Date.now();
  const r = await fetchOnce(new URL(rawUrl), false, 'GET', undefined, (c) => {
    hash.update(c);
    bytes += c.length;
  });
  return { status: r.res.statusCode, bytes, sha256: hash.digest('hex'), server: r.res.headers['x-server'] ?? null, peer: r.peer, ms: Date.now() - started };
}

async function upload(): Promise<object> {
  const [rawUrl, rawBytes] = rest;
  if (!rawUrl) usage('upload URL BYTES');
  const length = intArg(rawBytes, 'BYTES', 0, 2 ** 40);
  const seed = intArg(args.options.get('--seed'), '--seed', 0, 0xffffffff, 0x9e3779b9);
  const hash = createHash('sha256');
  const payload = new Payload(seed);
  const started = Date.now();
  const r = await fetchOnce(new URL(rawUrl), false, 'POST', (req) => {
    req.setHeader('Content-Length', length);
    req.setHeader('Content-Type', 'application/octet-stream');
    let left = length;
    const write = (): void => {
      while (left > 0) {
        const chunk = payload.fill(new Uint8Array(Math.min(left, 1 << 16)));
        hash.update(chunk);
        left -= chunk.length;
        if (!req.write(chunk)) {
          req.once('drain', write);
          return;
        }
      }
      req.end();
    };
    write();
  });
  const sha256 = hash.digest('hex');
  let received: { sha256?: string; bytes?: number; server?: string } = {};
  try {
    received = JSON.parse(r.body.toString());
  } catch {
    fail(`upload: the server's answer is not JSON (status ${r.res.statusCode}): ${r.body.toString().slice(0, 200)}`);
  }
  return { status: r.res.statusCode, bytes: length, sha256, received, match: received.sha256 === sha256 && received.bytes === length, peer: r.peer, ms: Date.now() - started };
}

function bound(socket: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: from, port: 0 }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

async function udp(): Promise<object> {
  const [host, rawPort, rawCount] = rest;
  if (!host) usage('udp HOST PORT COUNT');
  const port = intArg(rawPort, 'PORT', 1, 65535);
  const count = intArg(rawCount, 'COUNT', 1, 10_000_000);
  const size = intArg(args.options.get('--size'), '--size', 1, 65000, 32);
  const newPort = args.switches.has('--new-port');
  const servers: Record<string, number> = {};
  const peers: Record<string, number> = {};
  let received = 0;
  let bad = 0;
  let socket: Socket | undefined;
  const started = Date.now();
  for (let i = 0; i < count; i++) {
    // A new source port per datagram makes each a new connection for the director.
    if (!socket || newPort) {
      socket?.close();
      socket = createSocket('udp4');
      await bound(socket);
    }
    const s = socket;
    const msg = Buffer.alloc(size, 0x61);
    msg.write(`${i}:`, 0);
    const reply = await new Promise<{ data: Buffer; peer: string } | undefined>((resolve) => {
      const timer = setTimeout(() => done(undefined), timeoutMs);
      const onMessage = (data: Buffer, rinfo: { address: string; port: number }): void => {
        // A late echo of an earlier datagram is not this one's answer.
        if (data.subarray(data.indexOf(10) + 1).equals(msg)) done({ data, peer: `${rinfo.address}:${rinfo.port}` });
      };
      const done = (v: { data: Buffer; peer: string } | undefined): void => {
        clearTimeout(timer);
        s.off('message', onMessage);
        resolve(v);
      };
      s.on('message', onMessage);
      s.send(msg, port, host);
    });
    if (!reply) continue;
    const nl = reply.data.indexOf(10);
    if (nl < 0) {
      bad++;
      continue;
    }
    received++;
    countInto(servers, reply.data.subarray(0, nl).toString());
    countInto(peers, reply.peer);
  }
  socket?.close();
  return { sent: count, received, lost: count - received, bad, servers, peers, ms: Date.now() - started };
}

const commands: Record<string, () => Promise<object>> = { 'http-get': httpGet, download, upload, udp };
const run = command === undefined ? undefined : commands[command];
if (!run) usage(`a subcommand is needed: ${Object.keys(commands).join(', ')}`);
try {
  const result = await run();
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} catch (e) {
  fail(`${command}: ${(e as Error).message}`);
}
