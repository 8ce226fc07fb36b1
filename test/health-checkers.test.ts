// Each checker (host/health/checkers/) against local servers on 127.0.0.1: what passes, what
// fails and why, the request bytes keepalived sends, and that every socket is closed (the
// servers count their open connections). No root needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DnsCheckConfig, HttpCheckConfig, HttpUrl, MiscCheckConfig, TcpCheckConfig, UdpCheckConfig } from '../host/health/config.js';
import { runTcpCheck } from '../host/health/checkers/tcp.js';
import { runHttpCheck } from '../host/health/checkers/http.js';
import { runUdpCheck } from '../host/health/checkers/udp.js';
import { runDnsCheck } from '../host/health/checkers/dns.js';
import { readHeader, writeQuery } from '../host/health/checkers/dns-message.js';
import { runMiscCheck } from '../host/health/checkers/misc.js';

const LO = '127.0.0.1';
const common = { where: 'test:1', retry: 1, delayBeforeRetry: 1000, delayLoop: 5000, warmup: 0, alpha: false, logAllFailures: false };

// A self-signed P-256 certificate for 127.0.0.1 tests (openssl req -x509 -newkey ec, CN=wasmvs-test).
const CERT = `-----BEGIN CERTIFICATE-----
MIIBgjCCASmgAwIBAgIUA/COqUiZqsrQaSVbmN8+PNwkZzgwCgYIKoZIzj0EAwIw
FjEUMBIGA1UEAwwLd2FzbXZzLXRlc3QwIBcNMjYxMjA0MTgyMjI2WhgPMjEyNjEx
MTAxODIyMjZaMBYxFDASBgNVBAMMC3dhc212cy10ZXN0MFkwEwYHKoZIzj0CAQYI
KoZIzj0DAQcDQgAEf0ROTkQ1sdDzFDc0Wcf4958jlvNUJcJs0LjjCCEWMIt5IGU7
lXwN921yXrVyrmAPFb8tFd8U/CX0tjQbabpPQ6NTMFEwHQYDVR0OBBYEFJoZ1H70
kfkXWcI0M7gv1G2mG64rMB8GA1UdIwQYMBaAFJoZ1H70kfkXWcI0M7gv1G2mG64r
MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgHpS/LujFWlcDID/g
9j/137yeRTJfw692rO0ktoodkKgCICRtXNa5f0bl88VryIJVj+kfiMhxThgbuQzy
XnBLOz0W
-----END CERTIFICATE-----
`;
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg2c+EcJ6wy+K4dFOV
f44NyeGKysnNr5VPu1Hem9BQ9TihRANCAAR/RE5ORDWx0PMUNzRZx/j3nyOW81Ql
wmzQuOMIIRYwi3kgZTuVfA33bXJetXKuYA8Vvy0V3xT8JfS2NBtpuk9D
-----END PRIVATE KEY-----
`;

/** A raw TCP (or TLS) server answering every request with `reply(request)`; counts open sockets. */
async function rawServer(reply: (req: string) => string | undefined, tls = false): Promise<{ port: number; open: () => number; requests: string[]; close: () => Promise<void>; sni: string[] }> {
  const sockets = new Set<Socket>();
  const requests: string[] = [];
  const sni: string[] = [];
  const onConn = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      requests.push(buf);
      const r = reply(buf);
      if (r !== undefined) s.end(r);
    });
  };
  const server: Server = tls
    ? createTlsServer({ cert: CERT, key: KEY, SNICallback: (name, cb) => { sni.push(name); cb(null, undefined); } }, onConn)
    : createServer(onConn);
  await new Promise<void>((r) => server.listen(0, LO, r));
  const port = (server.address() as { port: number }).port;
  return {
    port, requests, sni, open: () => sockets.size,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

const freePort = async (): Promise<number> => {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, LO, r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
};

const settle = (ms = 50): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('TCP_CHECK: connected is up and the socket is closed; refused is down; a silent address times out at connect_timeout', async () => {
  const srv = await rawServer(() => undefined);
  const cfg: TcpCheckConfig = { type: 'TCP_CHECK', ...common, target: { ip: LO, port: srv.port }, connectTimeout: 1000 };
  assert.equal(await runTcpCheck(cfg), { ok: true, detail: 'connected' });
  await settle();
  assert.is(srv.open(), 0);
  await srv.close();
  const refused = await runTcpCheck({ ...cfg, target: { ip: LO, port: await freePort() } });
  assert.equal(refused, { ok: false, detail: 'ECONNREFUSED' });
  // bindto: the source address is used (127.0.0.2 is loopback too).
  const srv2 = await rawServer(() => undefined);
  let peer = '';
  const s2 = createServer((s) => { peer = s.remoteAddress ?? ''; s.destroy(); });
  await new Promise<void>((r) => s2.listen(0, LO, r));
  const r2 = await runTcpCheck({ ...cfg, target: { ip: LO, port: (s2.address() as { port: number }).port, bindto: '127.0.0.2' } });
  assert.ok(r2.ok);
  await settle();
  assert.is(peer, '127.0.0.2');
  s2.close();
  await srv2.close();
});

test("HTTP_GET: keepalived's request bytes, status ranges, digest, regex, virtualhost; every url must pass", async () => {
  const body = 'hello, health\n';
  const md5 = createHash('md5').update(body).digest('hex');
  const srv = await rawServer((req) => {
    const path = req.split(' ')[1];
    if (path === '/ok') return `HTTP/1.0 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
    if (path === '/chunked') return `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nhello, \r\n7\r\nhealth\n\r\n0\r\n\r\n`;
    if (path === '/close') return `HTTP/1.0 200 OK\r\n\r\n${body}`;
    if (path === '/503') return 'HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n';
    if (path === '/redirect') return 'HTTP/1.0 302 Found\r\nContent-Length: 0\r\n\r\n';
    return undefined; // /hang: never answers
  });
  const url = (path: string, extra: Partial<HttpUrl> = {}): HttpUrl => ({ path, statusCodes: [[200, 299]], ...extra });
  const cfg = (urls: HttpUrl[], more: Partial<HttpCheckConfig> = {}): HttpCheckConfig => ({ type: 'HTTP_GET', ...common, target: { ip: LO, port: srv.port }, connectTimeout: 1000, urls, protocol: '1.0', ...more });
  assert.ok((await runHttpCheck(cfg([url('/ok')]))).ok);
  assert.is(srv.requests.at(-1), `GET /ok HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: ${LO}:${srv.port}\r\n\r\n`);
  await runHttpCheck(cfg([url('/ok', { virtualhost: 'www.example.com' })], { protocol: '1.1' }));
  assert.is(srv.requests.at(-1), 'GET /ok HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n');
  await runHttpCheck(cfg([url('/ok')], { protocol: '1.0C', virtualhost: 'vs.example.com' }));
  assert.is(srv.requests.at(-1), 'GET /ok HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: vs.example.com\r\n\r\n');
  assert.equal(await runHttpCheck(cfg([url('/503')])), { ok: false, detail: 'HTTP status code error to /503: 503' });
  assert.ok((await runHttpCheck(cfg([url('/503', { statusCodes: [[500, 503]] })]))).ok);
  assert.ok(!(await runHttpCheck(cfg([url('/redirect')]))).ok);
  assert.ok((await runHttpCheck(cfg([url('/redirect', { statusCodes: [[200, 200], [300, 302]] })]))).ok);
  assert.ok((await runHttpCheck(cfg([url('/ok', { digest: md5 })]))).ok);
  assert.ok((await runHttpCheck(cfg([url('/chunked', { digest: md5 })]))).ok, 'chunked body digested');
  assert.ok((await runHttpCheck(cfg([url('/close', { digest: md5 })]))).ok, 'body to the close');
  const bad = await runHttpCheck(cfg([url('/ok', { digest: '0'.repeat(32) })]));
  assert.equal(bad, { ok: false, detail: `MD5 digest error to /ok: ${md5}` });
  assert.ok((await runHttpCheck(cfg([url('/ok', { regex: { source: 'HEALTH', flags: 'i' } })]))).ok);
  assert.ok(!(await runHttpCheck(cfg([url('/ok', { regex: { source: 'HEALTH', flags: '' } })]))).ok);
  assert.ok((await runHttpCheck(cfg([url('/ok', { regex: { source: 'nope', flags: '' }, regexNoMatch: true })]))).ok);
  assert.ok(!(await runHttpCheck(cfg([url('/ok', { regex: { source: 'hello', flags: '' }, regexMinOffset: 1 })]))).ok, 'match before min offset');
  assert.ok(!(await runHttpCheck(cfg([url('/ok'), url('/503')]))).ok, 'all urls must pass');
  const t0 = Date.now();
  const hung = await runHttpCheck(cfg([url('/hang')], { connectTimeout: 300 }));
  assert.ok(!hung.ok && /read timeout/.test(hung.detail), hung.detail);
  assert.ok(Date.now() - t0 < 1500);
  await settle();
  assert.is(srv.open(), 0, 'every connection closed');
  await srv.close();
});

test('SSL_GET: TLS to the real server (certificate not checked without ca), SNI with enable_sni', async () => {
  const srv = await rawServer(() => 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok', true);
  const cfg: HttpCheckConfig = { type: 'SSL_GET', ...common, target: { ip: LO, port: srv.port }, connectTimeout: 2000, urls: [{ path: '/', statusCodes: [[200, 299]], regex: { source: '^ok$', flags: '' } }], protocol: '1.0', sni: 'www.example.com' };
  const r = await runHttpCheck(cfg);
  assert.ok(r.ok, r.detail);
  assert.equal(srv.sni, ['www.example.com']);
  // Plain HTTP to a TLS port fails.
  const plain = await runHttpCheck({ ...cfg, type: 'HTTP_GET', connectTimeout: 500 });
  assert.ok(!plain.ok);
  await settle();
  assert.is(srv.open(), 0);
  await srv.close();
});

async function udpServer(onMessage: (msg: Buffer, reply: (b: Buffer) => void) => void): Promise<{ port: number; close: () => void }> {
  const s: UdpSocket = createSocket('udp4');
  s.on('message', (msg, rinfo) => onMessage(msg, (b) => s.send(b, rinfo.port, rinfo.address)));
  await new Promise<void>((r) => s.bind(0, LO, r));
  return { port: s.address().port, close: () => s.close() };
}

test('UDP_CHECK: no reply needed unless require_reply; port unreachable fails; reply length and bytes checked', async () => {
  const echo = await udpServer((m, reply) => reply(Buffer.concat([Buffer.from([0xca, 0xfe]), m])));
  const silent = await udpServer(() => {});
  const cfg = (port: number, more: Partial<UdpCheckConfig> = {}): UdpCheckConfig => ({ type: 'UDP_CHECK', ...common, target: { ip: LO, port }, connectTimeout: 300, requireReply: false, minReplyLength: 0, maxReplyLength: 255, ...more });
  assert.ok((await runUdpCheck(cfg(silent.port))).ok, 'silence without require_reply is a pass');
  const unreachable = await runUdpCheck(cfg(await freePort()));
  assert.equal(unreachable, { ok: false, detail: 'ECONNREFUSED' });
  assert.ok(!(await runUdpCheck(cfg(silent.port, { requireReply: true }))).ok);
  assert.ok((await runUdpCheck(cfg(echo.port, { requireReply: true, payload: '0102', reply: 'cafe01' }))).ok);
  assert.equal(await runUdpCheck(cfg(echo.port, { requireReply: true, payload: '0102', reply: 'beef' })), { ok: false, detail: 'reply data mismatch' });
  assert.ok(!(await runUdpCheck(cfg(echo.port, { requireReply: true, payload: '0102', maxReplyLength: 3 }))).ok, 'reply of 4 bytes over max 3');
  assert.ok(!(await runUdpCheck(cfg(echo.port, { requireReply: true, minReplyLength: 5 }))).ok);
  echo.close();
  silent.close();
});

test('DNS message: the query bytes (RFC 1035 4.1) and the header reader', () => {
  const q = writeQuery(0x1234, 'www.example.com', 1);
  assert.is(q.toString('hex'), '123401000001000000000000' + '03777777076578616d706c6503636f6d00' + '0001' + '0001');
  assert.is(writeQuery(7, '', 6).toString('hex'), '000701000001000000000000' + '00' + '0006' + '0001');
  assert.equal(readHeader(Buffer.from('1234818300010000000000000000', 'hex')), { id: 0x1234, response: true, rcode: 3, qdcount: 1 });
  assert.is(readHeader(Buffer.alloc(11)), undefined);
  assert.throws(() => writeQuery(1, `${'a'.repeat(64)}.com`, 1), /1 to 63 bytes/);
});

test('DNS_CHECK: an answer with our id and RCODE 0 passes; NXDOMAIN fails; a wrong id is ignored until the timeout', async () => {
  let mode: 'ok' | 'nx' | 'wrong-id' = 'ok';
  let asked = '';
  const dns = await udpServer((m, reply) => {
    asked = m.subarray(12).toString('hex');
    const r = Buffer.from(m);
    r[2] = 0x81;
    r[3] = mode === 'nx' ? 0x83 : 0x80;
    if (mode === 'wrong-id') r[0] ^= 0xff;
    reply(r);
  });
  const cfg: DnsCheckConfig = { type: 'DNS_CHECK', ...common, target: { ip: LO, port: dns.port }, connectTimeout: 300, qtype: 6, qtypeName: 'SOA', name: '' };
  assert.ok((await runDnsCheck(cfg)).ok);
  assert.is(asked, '0000060001');
  mode = 'nx';
  assert.equal(await runDnsCheck(cfg), { ok: false, detail: 'read error occurred. (rcode = 3)' });
  mode = 'wrong-id';
  assert.ok(/timeout/.test((await runDnsCheck(cfg)).detail));
  dns.close();
});

test('MISC_CHECK: exit 0 up, 1 down, misc_dynamic codes; past misc_timeout SIGTERM then SIGKILL, a failure', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmvs-misc-'));
  try {
    const script = join(dir, 'check.sh');
    writeFileSync(script, '#!/bin/sh\nexit "$1"\n');
    chmodSync(script, 0o755);
    const cfg = (args: string[], more: Partial<MiscCheckConfig> = {}): MiscCheckConfig => ({ type: 'MISC_CHECK', ...common, retry: 0, command: [script, ...args], timeout: 2000, dynamic: false, ...more });
    assert.equal(await runMiscCheck(cfg(['0'])), { ok: true, detail: 'exited with status 0', exitCode: 0 });
    assert.equal(await runMiscCheck(cfg(['1'])), { ok: false, detail: 'exited with status 1', exitCode: 1 });
    assert.ok(!(await runMiscCheck(cfg(['7']))).ok, 'without misc_dynamic 7 is a failure');
    assert.equal(await runMiscCheck(cfg(['7'], { dynamic: true })), { ok: true, detail: 'exited with status 7', exitCode: 7 });
    assert.ok(!(await runMiscCheck(cfg(['1'], { dynamic: true }))).ok);
    const missing = await runMiscCheck({ ...cfg([]), command: [join(dir, 'nope')] });
    assert.ok(!missing.ok && /cannot run/.test(missing.detail), missing.detail);
    // A script ignoring SIGTERM: killed 2 s later; its child (same group) dies with it.
    const stubborn = join(dir, 'stubborn.sh');
    const marker = join(dir, 'child-alive');
    writeFileSync(stubborn, `#!/bin/sh\ntrap '' TERM\n(sleep 30; touch ${marker}) &\necho $! > ${dir}/child.pid\nwhile :; do sleep 0.1; done\n`);
    chmodSync(stubborn, 0o755);
    const t0 = Date.now();
    const r = await runMiscCheck({ ...cfg([]), command: [stubborn], timeout: 300 });
    const took = Date.now() - t0;
    assert.equal([r.ok, r.timedOut, r.detail], [false, true, 'timed out after 0.3 s']);
    assert.ok(took >= 2200 && took < 4000, `took ${took} ms`);
    const childPid = Number(readFileSync(join(dir, 'child.pid'), 'utf8'));
    await settle(100);
    // Gone, or a zombie waiting for a reaper (kill(pid, 0) succeeds on those).
    const state = (() => { try { return readFileSync(`/proc/${childPid}/stat`, 'utf8').split(') ')[1]?.[0]; } catch { return 'gone'; } })();
    assert.ok(state === 'gone' || state === 'Z', `the script's child is gone too (state ${state})`);
    assert.ok(!existsSync(marker));
    // A script that ends on SIGTERM is not waited for.
    const polite = join(dir, 'polite.sh');
    writeFileSync(polite, '#!/bin/sh\nexec sleep 30\n');
    chmodSync(polite, 0o755);
    const t1 = Date.now();
    const p = await runMiscCheck({ ...cfg([]), command: [polite], timeout: 200 });
    assert.ok(p.timedOut && Date.now() - t1 < 1500);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an aborted check resolves at once and closes its socket', async () => {
  const srv = await rawServer(() => undefined);
  const ac = new AbortController();
  const pending = runHttpCheck({ type: 'HTTP_GET', ...common, target: { ip: LO, port: srv.port }, connectTimeout: 5000, urls: [{ path: '/hang', statusCodes: [[200, 299]] }], protocol: '1.0' }, ac.signal);
  await settle(100);
  ac.abort();
  assert.equal(await pending, { ok: false, detail: 'aborted' });
  await settle();
  assert.is(srv.open(), 0);
  await srv.close();
});

test.run();
