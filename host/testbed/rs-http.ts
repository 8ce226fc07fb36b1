// A real server's HTTP program for the testbed, run as `node rs-http.js --name rs1 --port 80`
// inside a real server's namespace (servers.ts starts it). Keep-alive on.
//   GET /            "rs1 198.18.1.2\n": the server's name and the address the request reached
//   GET /bytes/N     N bytes of the deterministic payload (payload.ts; ?seed=S)
//   POST /upload     {"sha256", "bytes"} of the body received
// Every response carries X-Server (the name) and X-Client (the peer address:port it saw: with
// NAT forwarding that is the client's own). Prints "ready <port>" once listening; exits 0 on
// SIGTERM/SIGINT after closing its sockets.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { Payload } from './payload.js';
import { intArg, parseArgs } from './args.js';

const MAX_BYTES = 2 ** 34; // 16 GiB per response: bounds a typo, not a benchmark

const args = parseArgs(process.argv.slice(2), ['--name', '--port', '--host'], []);
const name = args.options.get('--name') ?? 'rs';
const port = intArg(args.options.get('--port'), '--port', 0, 65535, 80);
const host = args.options.get('--host') ?? '0.0.0.0';

function headers(req: IncomingMessage, extra: Record<string, string | number>): Record<string, string | number> {
  return { 'X-Server': name, 'X-Client': `${req.socket.remoteAddress}:${req.socket.remotePort}`, ...extra };
}

function sendText(req: IncomingMessage, res: ServerResponse, status: number, text: string): void {
  const body = Buffer.from(text);
  res.writeHead(status, headers(req, { 'Content-Type': 'text/plain', 'Content-Length': body.length }));
  res.end(body);
}

function streamBytes(req: IncomingMessage, res: ServerResponse, length: number, seed: number): void {
  res.writeHead(200, headers(req, { 'Content-Type': 'application/octet-stream', 'Content-Length': length }));
  const payload = new Payload(seed);
  let left = length;
  const write = (): void => {
    // Fresh chunks: a buffer handed to write() must not be refilled while it is queued.
    while (left > 0) {
      const chunk = payload.fill(new Uint8Array(Math.min(left, 1 << 16)));
      left -= chunk.length;
      if (left === 0) {
        res.end(chunk);
        return;
      }
      if (!res.write(chunk)) {
        res.once('drain', write);
        return;
      }
    }
    res.end();
  };
  res.on('close', () => res.off('drain', write));
  write();
}

const server = createServer({ keepAlive: true }, (req, res) => {
  const url = new URL(req.url ?? '/', 'http://x');
  const bytes = /^\/bytes\/(\d+)$/.exec(url.pathname);
  if (req.method === 'GET' && url.pathname === '/') {
    sendText(req, res, 200, `${name} ${req.socket.localAddress}\n`);
  } else if (req.method === 'GET' && bytes) {
    const length = Number(bytes[1]);
    const seed = Number(url.searchParams.get('seed') ?? '0x9e3779b9');
    if (!Number.isSafeInteger(length) || length > MAX_BYTES || !Number.isInteger(seed)) {
      sendText(req, res, 400, `bad length or seed\n`);
    } else {
      streamBytes(req, res, length, seed);
    }
  } else if (req.method === 'POST' && url.pathname === '/upload') {
    const hash = createHash('sha256');
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      received += chunk.length;
    });
    req.on('end', () => {
      const body = JSON.stringify({ sha256: hash.digest('hex'), bytes: received, server: name });
      res.writeHead(200, headers(req, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }));
      res.end(body);
    });
  } else {
    sendText(req, res, 404, `no ${req.method} ${url.pathname} here\n`);
  }
});
server.keepAliveTimeout = 30_000;
server.on('clientError', (_err, socket) => socket.destroy());
server.on('error', (err) => {
  process.stderr.write(`rs-http ${name}: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, host, () => {
  const address = server.address();
  process.stdout.write(`ready ${typeof address === 'object' && address ? address.port : port}\n`);
});

function stop(): void {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
