// HTTP_GET and SSL_GET (keepalived/check/check_http.c, check_ssl.c): for each url in turn, a
// GET over a new connection (TLS for SSL_GET), the request as keepalived writes it
//   GET <path> HTTP/1.<0|1>\r\nUser-Agent: KeepAliveClient\r\n[Connection: close\r\n]Host: <host>\r\n\r\n
// where Host is the url's virtualhost, the checker's, the real server's or the virtual
// server's, else the target address and port. The response passes when its status is in one
// of the url's status_code ranges (default 200-299), the MD5 of its body equals `digest`, and
// `regex` matches the body (or does not, with regex_no_match), each where given. All urls
// must pass. The body is read to its end (Content-Length, chunked, or the close); a body
// check buffers at most MAX_BODY bytes for the regex while the digest covers all of it.
//
// Time: connect_timeout bounds the connection (and TLS handshake) and then each wait for
// data, as keepalived's per-read timeouts do; the whole check is also bounded by `limit`.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { HttpCheckConfig, HttpUrl } from '../config.js';
import type { CheckResult } from '../state.js';
import { connectOptions, seconds, withSocket } from './tcp.js';

const MAX_HEADER = 64 * 1024;
const MAX_BODY = 1024 * 1024;

/** A response as read off the wire. */
interface Response { status: number; md5: string; body: Buffer; truncated: boolean }

/** Incremental HTTP/1.x response reader (status line, headers, body framing). */
class ResponseReader {
  private head = Buffer.alloc(0);
  private status = 0;
  private mode: 'head' | 'length' | 'chunked' | 'close' | 'done' = 'head';
  private left = 0;
  private chunkState: 'size' | 'data' | 'crlf' | 'trailer' = 'size';
  private line = '';
  private readonly md5 = createHash('md5');
  private readonly kept: Buffer[] = [];
  private keptBytes = 0;
  private truncated = false;
  error: string | undefined;

  /** Feeds bytes; true once the response is complete. */
  push(data: Buffer): boolean {
    if (this.mode === 'head') {
      this.head = Buffer.concat([this.head, data]);
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (this.head.length > MAX_HEADER) this.error = `response header over ${MAX_HEADER} bytes`;
        return false;
      }
      const lines = this.head.subarray(0, end).toString('latin1').split('\r\n');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
      if (!m) { this.error = `not an HTTP response: "${lines[0].slice(0, 60)}"`; return false; }
      this.status = Number(m[1]);
      const headers = new Map<string, string>();
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
      }
      const rest = this.head.subarray(end + 4);
      this.head = Buffer.alloc(0);
      if (/\bchunked\b/i.test(headers.get('transfer-encoding') ?? '')) this.mode = 'chunked';
      else if (headers.has('content-length')) {
        this.left = Number(headers.get('content-length'));
        if (!Number.isSafeInteger(this.left) || this.left < 0) { this.error = 'bad Content-Length'; return false; }
        this.mode = 'length';
      } else if (this.status === 204 || this.status === 304 || (this.status >= 100 && this.status < 200)) this.mode = 'done';
      else this.mode = 'close';
      if (this.mode === 'length' && this.left === 0) this.mode = 'done';
      return this.mode === 'done' || (rest.length > 0 && this.push(rest));
    }
    if (this.mode === 'length') {
      const take = data.subarray(0, this.left);
      this.body(take);
      this.left -= take.length;
      if (this.left === 0) this.mode = 'done';
      return this.mode === 'done';
    }
    if (this.mode === 'close') { this.body(data); return false; }
    if (this.mode === 'chunked') return this.chunked(data);
    return true;
  }

  private chunked(data: Buffer): boolean {
    let i = 0;
    while (i < data.length) {
      if (this.chunkState === 'data') {
        const take = data.subarray(i, i + this.left);
        this.body(take);
        this.left -= take.length;
        i += take.length;
        if (this.left === 0) this.chunkState = 'crlf';
        continue;
      }
      const nl = data.indexOf(0x0a, i);
      if (nl < 0) { this.line += data.subarray(i).toString('latin1'); if (this.line.length > 4096) this.error = 'chunk line too long'; return false; }
      const line = (this.line + data.subarray(i, nl).toString('latin1')).replace(/\r$/, '');
      this.line = '';
      i = nl + 1;
      if (this.chunkState === 'crlf') { this.chunkState = 'size'; continue; }
      if (this.chunkState === 'trailer') { if (line === '') { this.mode = 'done'; return true; } continue; }
      const size = parseInt(line.split(';')[0], 16);
      if (!Number.isFinite(size) || size < 0) { this.error = `bad chunk size "${line.slice(0, 20)}"`; return false; }
      if (size === 0) { this.chunkState = 'trailer'; continue; }
      this.left = size;
      this.chunkState = 'data';
    }
    return false;
  }

  private body(b: Buffer): void {
    this.md5.update(b);
    if (this.keptBytes < MAX_BODY) {
      const take = b.subarray(0, MAX_BODY - this.keptBytes);
      this.kept.push(take);
      this.keptBytes += take.length;
      if (take.length < b.length) this.truncated = true;
    } else if (b.length > 0) this.truncated = true;
  }

  /** The response at the connection's end: complete for 'close' framing, else truncated. */
  finish(closed: boolean): Response | undefined {
    if (this.mode !== 'done' && !(closed && this.mode === 'close')) return undefined;
    return { status: this.status, md5: this.md5.digest('hex'), body: Buffer.concat(this.kept), truncated: this.truncated };
  }
}

/** The Host header's value (check_http.c http_request_thread). */
export function hostHeader(cfg: HttpCheckConfig, url: HttpUrl): string {
  return url.virtualhost ?? cfg.virtualhost ?? `${cfg.target.ip}:${cfg.target.port}`;
}

export function requestText(cfg: HttpCheckConfig, url: HttpUrl): string {
  const minor = cfg.protocol === '1.1' ? 1 : 0;
  const close = cfg.protocol === '1.1' || cfg.protocol === '1.0C' ? 'Connection: close\r\n' : '';
  return `GET ${url.path} HTTP/1.${minor}\r\nUser-Agent: KeepAliveClient\r\n${close}Host: ${hostHeader(cfg, url)}\r\n\r\n`;
}

/** Whether a response satisfies a url; the detail says why not. */
export function judge(url: HttpUrl, r: Response): CheckResult {
  if (!url.statusCodes.some(([lo, hi]) => r.status >= lo && r.status <= hi)) return { ok: false, detail: `HTTP status code error to ${url.path}: ${r.status}` };
  if (url.digest !== undefined && r.md5 !== url.digest) return { ok: false, detail: `MD5 digest error to ${url.path}: ${r.md5}` };
  if (url.regex) {
    const text = r.body.toString('latin1');
    const re = new RegExp(url.regex.source, url.regex.flags.includes('g') ? url.regex.flags : `${url.regex.flags}g`);
    let matched = false;
    for (const m of text.matchAll(re)) {
      if (url.regexMinOffset !== undefined && m.index < url.regexMinOffset) continue;
      if (url.regexMaxOffset !== undefined && m.index > url.regexMaxOffset) break;
      matched = true;
      break;
    }
    if (matched === (url.regexNoMatch ?? false)) return { ok: false, detail: `regex ${url.regexNoMatch ? 'matched' : 'did not match'} on ${url.path}${r.truncated ? ` (first ${MAX_BODY} bytes)` : ''}` };
  }
  return { ok: true, detail: `HTTP status ${r.status} from ${url.path}` };
}

function tlsOptions(cfg: HttpCheckConfig): Record<string, unknown> {
  const o: Record<string, unknown> = {
    // A health check reaches a real server by address: its certificate is not checked for a
    // name, and is verified at all only against the SSL block's `ca`.
    rejectUnauthorized: cfg.tls?.ca !== undefined,
    checkServerIdentity: () => undefined,
  };
  if (cfg.sni !== undefined && !/^[0-9.]+$/.test(cfg.sni)) o.servername = cfg.sni;
  if (cfg.tls?.ca) o.ca = readFileSync(cfg.tls.ca);
  if (cfg.tls?.certificate) o.cert = readFileSync(cfg.tls.certificate);
  if (cfg.tls?.key) o.key = readFileSync(cfg.tls.key);
  if (cfg.tls?.password) o.passphrase = cfg.tls.password;
  return o;
}

/** One url over one connection. */
function fetchUrl(cfg: HttpCheckConfig, url: HttpUrl, signal: AbortSignal | undefined): Promise<CheckResult> {
  const ssl = cfg.type === 'SSL_GET';
  const open = (): Socket => (ssl ? tlsConnect({ ...connectOptions(cfg.target), ...tlsOptions(cfg) }) : netConnect(connectOptions(cfg.target)));
  return withSocket(open, cfg.connectTimeout, signal, (socket, done) => {
    const reader = new ResponseReader();
    socket.setTimeout(cfg.connectTimeout, () => done({ ok: false, detail: `read timeout after ${seconds(cfg.connectTimeout)} from ${url.path}` }));
    socket.removeAllListeners('close');
    socket.on('data', (chunk: Buffer) => {
      if (reader.push(chunk)) { const r = reader.finish(false); if (r) done(judge(url, r)); return; }
      if (reader.error) done({ ok: false, detail: reader.error });
    });
    socket.on('end', () => {
      const r = reader.finish(true);
      done(r ? judge(url, r) : { ok: false, detail: `connection closed before the whole response to ${url.path}` });
    });
    socket.on('close', () => done({ ok: false, detail: `connection closed before the whole response to ${url.path}` }));
    socket.write(requestText(cfg, url));
  }, ssl ? 'secureConnect' : 'connect');
}

export async function runHttpCheck(cfg: HttpCheckConfig, signal?: AbortSignal): Promise<CheckResult> {
  let last: CheckResult = { ok: false, detail: 'no url' };
  for (const url of cfg.urls) {
    last = await fetchUrl(cfg, url, signal);
    if (!last.ok) return last;
  }
  return last;
}
