// The LVS part of keepalived.conf as wasmvs's model: virtual servers (each one or more IPVS
// services: a virtual_server_group expands to one per address), their real servers, a
// sorry server, and each real server's checkers with keepalived's defaults resolved.
//
// Keywords and defaults are keepalived's (keepalived/check/check_parser.c for the virtual and
// real server levels, check_api.c for the keywords every checker shares, check_tcp.c,
// check_http.c, check_udp.c, check_dns.c, check_misc.c for each checker; check_data.c
// alloc_vs/alloc_rs/validate_check_config for the defaults and how they are inherited):
//   delay_loop 60 s, connect_timeout 5 s, weight 1, retry 1 (DNS_CHECK 3, MISC_CHECK 0),
//   delay_before_retry 1 s (HTTP_GET/SSL_GET 3 s, DNS_CHECK delay_loop), warmup = delay_loop,
//   quorum 1, hysteresis 0, a bare persistence_timeout 360 s; a checker inherits retry,
//   connect_timeout, delay_loop, warmup and delay_before_retry from its real server, which
//   inherits them (and alpha, inhibit_on_failure, weight) from its virtual server.
// Where keepalived only warns and carries on, wasmvs refuses the file with its file and line:
// an unknown keyword (a typo such as `wieght` would otherwise silently change a server), a
// value out of range, a forwarding method other than NAT. Keywords keepalived knows that do
// not change what wasmvs does (smtp_alert, snmp_name ...) are noted once and ignored; blocks
// of other keepalived subsystems (global_defs, vrrp_*) are skipped with one note each.
import { readFileSync } from 'node:fs';
import { formatIPv4, parseIPv4, type Protocol } from '../addr.js';
import { checkServiceSpec, DEFAULT_PERSISTENCE, MAX_WEIGHT, type ServiceConfig } from '../engine/spec.js';
import { WasmvsError } from '../errors.js';
import { SCHED_FLAGS } from '../schedulers/common.js';
import { checkScheduler } from '../schedulers/index.js';
import { configError, parseKeepalivedFile, type Statement } from './lexer.js';

export type CheckerType = 'TCP_CHECK' | 'HTTP_GET' | 'SSL_GET' | 'UDP_CHECK' | 'DNS_CHECK' | 'MISC_CHECK';

/** Where a checker connects: the real server unless connect_ip/connect_port say otherwise. */
export interface CheckTarget {
  ip: string;
  port: number;
  /** bindto: the source address. */
  bindto?: string;
  /** bind_port: the source port. */
  bindPort?: number;
}

interface CheckerCommon {
  /** file:line of the checker's block, for logs. */
  where: string;
  retry: number;
  /** Milliseconds (as every time below). */
  delayBeforeRetry: number;
  delayLoop: number;
  warmup: number;
  alpha: boolean;
  logAllFailures: boolean;
}

export interface TcpCheckConfig extends CheckerCommon { type: 'TCP_CHECK'; target: CheckTarget; connectTimeout: number }

export interface HttpUrl {
  path: string;
  /** Accepted status codes as inclusive ranges (default 200-299). */
  statusCodes: Array<[number, number]>;
  /** MD5 of the body, lower-case hex. */
  digest?: string;
  /** A JavaScript regular expression source and flags (PCRE options mapped where JS has them). */
  regex?: { source: string; flags: string };
  /** The check passes when the regex does not match. */
  regexNoMatch?: boolean;
  /** The match must start at or after this body offset... */
  regexMinOffset?: number;
  /** ...and at or before this one. */
  regexMaxOffset?: number;
  virtualhost?: string;
}

export interface HttpCheckConfig extends CheckerCommon {
  type: 'HTTP_GET' | 'SSL_GET';
  target: CheckTarget;
  connectTimeout: number;
  urls: HttpUrl[];
  /** 1.0 (default), 1.1 (with Connection: close) or 1.0C (1.0 with Connection: close). */
  protocol: '1.0' | '1.1' | '1.0C';
  /** The Host header when neither the url nor this is set: real server's, then virtual server's. */
  virtualhost?: string;
  /** SSL_GET: the TLS server name to send (enable_sni, sni_name). */
  sni?: string;
  /** SSL_GET: the SSL block's files. */
  tls?: TlsFiles;
}

export interface TlsFiles { ca?: string; certificate?: string; key?: string; password?: string }

export interface UdpCheckConfig extends CheckerCommon {
  type: 'UDP_CHECK';
  target: CheckTarget;
  connectTimeout: number;
  /** Hex of the datagram sent (default: an empty datagram). */
  payload?: string;
  requireReply: boolean;
  /** Hex the reply must start with (compared over the shorter of the two). */
  reply?: string;
  minReplyLength: number;
  maxReplyLength: number;
}

export interface DnsCheckConfig extends CheckerCommon {
  type: 'DNS_CHECK';
  target: CheckTarget;
  connectTimeout: number;
  /** The query type number and its name (default SOA). */
  qtype: number;
  qtypeName: string;
  /** The query name (default the root, ""). */
  name: string;
}

export interface MiscCheckConfig extends CheckerCommon {
  type: 'MISC_CHECK';
  /** The program and its arguments (run without a shell). */
  command: string[];
  /** Milliseconds before SIGTERM (default the virtual server's delay_loop). */
  timeout: number;
  dynamic: boolean;
  user?: { name: string; uid: number; gid: number };
}

export type CheckerConfig = TcpCheckConfig | HttpCheckConfig | UdpCheckConfig | DnsCheckConfig | MiscCheckConfig;

export interface RealServerConfig {
  daddr: string;
  /** 0: the port of each service of the virtual server. */
  dport: number;
  /** The configured weight (keepalived's iweight). */
  weight: number;
  inhibit: boolean;
  alpha: boolean;
  upperThreshold: number;
  lowerThreshold: number;
  notifyUp?: string[];
  notifyDown?: string[];
  checkers: CheckerConfig[];
  where: string;
}

export interface SorryServerConfig { daddr: string; dport: number; inhibit: boolean }

export interface VirtualServerConfig {
  /** As keepalived names it in logs: [198.18.100.10]:tcp:80, or the group's name. */
  name: string;
  /** Identity across reloads (protocol and address, or the group). */
  id: string;
  /** The IPVS services (one, or one per address/port of a group). */
  services: ServiceConfig[];
  delayLoop: number;
  quorum: number;
  hysteresis: number;
  quorumUp?: string[];
  quorumDown?: string[];
  omega: boolean;
  sorry?: SorryServerConfig;
  realServers: RealServerConfig[];
  where: string;
}

export interface KeepalivedConfig {
  virtualServers: VirtualServerConfig[];
  /** Every file read (main first). */
  files: string[];
  /** One line each for the log: skipped blocks, ignored keywords, keepalived's own corrections. */
  notes: string[];
}

const S = 1000;
const DEFAULT_DELAY_LOOP = 60 * S;
const DEFAULT_CONNECT_TIMEOUT = 5 * S;
const DEFAULT_RETRY = 1;
const DEFAULT_DELAY_BEFORE_RETRY = 1 * S;
/** HTTP_GET/SSL_GET override the checker default (check_http.c http_get_handler). */
const HTTP_DELAY_BEFORE_RETRY = 3 * S;
/** check_dns.h DNS_DEFAULT_RETRY; its delay_before_retry defaults to delay_loop. */
const DNS_RETRY = 3;
/** check_udp.c: a reply of 0 to 255 bytes is accepted unless told otherwise. */
const UDP_MAX_REPLY = 255;

/** Top-level blocks of keepalived's other subsystems: skipped whole. */
const SKIPPED_BLOCKS = new Set([
  'global_defs', 'vrrp_script', 'vrrp_instance', 'vrrp_sync_group', 'vrrp_track_process', 'vrrp_track_file',
  'static_ipaddress', 'static_routes', 'static_rules', 'linkbeat_interfaces', 'bfd_instance', 'garp_group',
  'track_file', 'track_process', 'net_namespace', 'instance', 'use_pid_dir', 'linkbeat_use_polling',
]);

/** keepalived's DNS_CHECK types (check_dns.c DNS_TYPE). */
const DNS_TYPES: Record<string, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, RRSIG: 46, DNSKEY: 48 };

/** PCRE options (check_http.c regex_options) JavaScript has an equivalent for. */
const REGEX_FLAGS: Record<string, string> = { caseless: 'i', multiline: 'm', dotall: 's', utf: 'u' };

const at = (s: Statement): string => `${s.file}:${s.line}`;

/** A quoted script line as its words, quotes inside it honoured (set_script_params_array). */
function splitWords(s: Statement, text: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === ' ' || c === '\t') { if (word !== undefined) out.push(word); word = undefined; continue; }
    if (c === '"' || c === "'") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) throw configError(s.file, s.line, `unterminated ${c} quote in ${s.keyword}`);
      word = (word ?? '') + text.slice(i + 1, end);
      i = end;
      continue;
    }
    word = (word ?? '') + c;
  }
  if (word !== undefined) out.push(word);
  return out;
}

class Interpreter {
  readonly notes: string[] = [];
  private readonly noted = new Set<string>();
  private readonly groups = new Map<string, { entries: Array<{ vaddr: string; vport: number }>; where: string }>();
  private tls: TlsFiles | undefined;

  note(s: Statement, message: string, once?: string): void {
    if (once !== undefined) {
      if (this.noted.has(once)) return;
      this.noted.add(once);
    }
    this.notes.push(`${at(s)}: ${message}`);
  }

  fail(s: Statement, message: string): never {
    throw configError(s.file, s.line, message);
  }

  // ---- values ----------------------------------------------------------------------------

  arg(s: Statement, n = 1, what = 'a value'): string {
    if (s.args.length < n) this.fail(s, `${s.keyword} needs ${what}`);
    return s.args[n - 1];
  }

  exactArgs(s: Statement, count: number, what: string): void {
    if (s.args.length !== count) this.fail(s, `${s.keyword} takes ${what} (got ${s.args.length === 0 ? 'nothing' : `"${s.args.join(' ')}"`})`);
  }

  uint(s: Statement, min: number, max: number, n = 1): number {
    const text = this.arg(s, n, `a whole number from ${min} to ${max}`);
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) this.fail(s, `${s.keyword} takes a whole number from ${min} to ${max} (got "${text}")`);
    return Number(text);
  }

  /** <TIMER>: seconds with an optional fraction (microsecond resolution), as milliseconds. */
  timer(s: Statement, allowZero: boolean): number {
    this.exactArgs(s, 1, 'a time in seconds');
    const text = s.args[0];
    if (!/^\d+(\.\d{1,6})?$/.test(text) || (!allowZero && Number(text) === 0)) this.fail(s, `${s.keyword} takes a time in seconds${allowZero ? '' : ' above 0'} (got "${text}")`);
    return Number(text) * S;
  }

  /** A keyword with an optional <BOOL>: bare means true. */
  flag(s: Statement): boolean {
    if (s.args.length === 0) return true;
    this.exactArgs(s, 1, 'at most one of on|off|true|false|yes|no');
    const v = s.args[0].toLowerCase();
    if (['on', 'true', 'yes'].includes(v)) return true;
    if (['off', 'false', 'no'].includes(v)) return false;
    return this.fail(s, `${s.keyword} takes on|off|true|false|yes|no (got "${s.args[0]}")`);
  }

  bare(s: Statement): void {
    if (s.args.length > 0) this.fail(s, `${s.keyword} takes no value (got "${s.args.join(' ')}")`);
  }

  ipv4(s: Statement, text: string, what: string): string {
    try {
      return formatIPv4(parseIPv4(text));
    } catch {
      if (text.includes(':')) this.fail(s, `${what} ${text}: IPv6 is not supported by wasmvs`);
      return this.fail(s, `${what} "${text}" is not an IPv4 address`);
    }
  }

  port(s: Statement, text: string | undefined, what: string): number {
    if (text === undefined) return 0;
    if (!/^\d+$/.test(text) || Number(text) > 65535) this.fail(s, `${what} "${text}" is not a port from 0 to 65535`);
    return Number(text);
  }

  /** A script: one quoted word is split on blanks (set_script_params_array); several words are the argv. */
  command(s: Statement): string[] {
    if (s.args.length === 0) this.fail(s, `${s.keyword} needs a script`);
    const argv = s.args.length === 1 ? splitWords(s, s.args[0]) : [...s.args];
    if (argv[0] === '') this.fail(s, `${s.keyword} needs a script`);
    return argv;
  }

  block(s: Statement): Statement[] {
    if (!s.block) this.fail(s, `${s.keyword} needs a { ... } block`);
    return s.block;
  }

  noBlock(s: Statement): void {
    if (s.block) this.fail(s, `${s.keyword} takes no { ... } block`);
  }

  ignored(s: Statement, why: string): void {
    this.note(s, `${s.keyword} ignored: ${why}`, `${s.keyword}`);
  }

  refused(s: Statement, why: string): never {
    throw new WasmvsError('WASMVS_UNSUPPORTED', `${at(s)}: ${s.keyword} is not supported by wasmvs: ${why}`);
  }

  // ---- levels ----------------------------------------------------------------------------

  top(statements: Statement[]): VirtualServerConfig[] {
    const out: VirtualServerConfig[] = [];
    // Groups first: a virtual_server may name a group defined further down, as keepalived
    // links them after reading the whole file (link_vsg_to_vs).
    // The SSL block is global (check_data->ssl): it applies wherever it is written.
    for (const s of statements) if (s.keyword === 'virtual_server_group') this.group(s);
    for (const s of statements) if (s.keyword === 'SSL') this.ssl(s);
    for (const s of statements) {
      switch (s.keyword) {
        case 'virtual_server_group': case 'SSL': break;
        case 'virtual_server': out.push(this.virtualServer(s)); break;
        default:
          if (SKIPPED_BLOCKS.has(s.keyword) || s.keyword.startsWith('vrrp_')) {
            this.note(s, `${s.keyword} skipped: wasmvs reads only the LVS part (virtual_server)`, `skip ${s.keyword}`);
          } else this.fail(s, `unknown keyword "${s.keyword}"`);
      }
    }
    const ids = new Set<string>();
    for (const vs of out) {
      for (const svc of vs.services) {
        const id = `${svc.protocol} ${svc.vaddr}:${svc.vport}`;
        if (ids.has(id)) throw new WasmvsError('WASMVS_KEEPALIVED_CONFIG', `${vs.where}: virtual server ${id} is defined twice`);
        ids.add(id);
      }
    }
    return out;
  }

  ssl(s: Statement): void {
    this.tls = {};
    for (const k of this.block(s)) {
      this.noBlock(k);
      switch (k.keyword) {
        case 'password': this.exactArgs(k, 1, 'one password'); this.tls.password = k.args[0]; break;
        case 'ca': this.exactArgs(k, 1, 'one file'); this.tls.ca = k.args[0]; break;
        case 'certificate': this.exactArgs(k, 1, 'one file'); this.tls.certificate = k.args[0]; break;
        case 'key': this.exactArgs(k, 1, 'one file'); this.tls.key = k.args[0]; break;
        default: this.fail(k, `unknown keyword "${k.keyword}" in SSL`);
      }
    }
    for (const file of [this.tls.ca, this.tls.certificate, this.tls.key]) {
      if (file !== undefined) {
        try { readFileSync(file); } catch (e) { this.fail(s, `SSL file ${file}: ${(e as Error).message}`); }
      }
    }
  }

  group(s: Statement): void {
    const name = this.arg(s, 1, 'a group name');
    if (s.args.length > 1) this.fail(s, 'virtual_server_group takes one name');
    if (this.groups.has(name)) this.fail(s, `virtual_server_group ${name} is defined twice`);
    const entries: Array<{ vaddr: string; vport: number }> = [];
    for (const e of this.block(s)) {
      this.noBlock(e);
      if (e.keyword === 'fwmark') this.refused(e, 'firewall-mark services (wasmvs serves protocol, address and port)');
      if (e.args.length > 1) this.fail(e, 'a group entry is an address or range and a port');
      // 198.18.100.10-20 80: the last byte ranges up to 20 (alloc_vsg_entry), or a CIDR block.
      const m = /^([0-9.]+)(?:-(\d+)|\/(\d+))?$/.exec(e.keyword);
      if (!m) this.fail(e, `group entry "${e.keyword}" is not an IPv4 address, range (A.B.C.D-E) or block (A.B.C.D/N)`);
      const first = parseIPv4(this.ipv4(e, m[1], 'group address'));
      let last = first;
      if (m[2] !== undefined) {
        const end = Number(m[2]);
        if (end > 255 || end < (first & 0xff)) this.fail(e, `range end ${m[2]} is below ${first & 0xff} or above 255`);
        last = ((first & ~0xff) | end) >>> 0;
      } else if (m[3] !== undefined) {
        const bits = Number(m[3]);
        if (bits < 24 || bits > 32) this.fail(e, `block /${bits}: wasmvs takes /24 to /32 here (at most 256 services)`);
        const mask = bits === 32 ? 0xffffffff : (~((1 << (32 - bits)) - 1)) >>> 0;
        if ((first & ~mask) !== 0) this.fail(e, `${m[1]}/${bits} has host bits set`);
        last = (first | ~mask) >>> 0;
      }
      const vport = this.port(e, e.args[0], 'group port');
      for (let a = first; a <= last; a++) entries.push({ vaddr: formatIPv4(a >>> 0), vport });
    }
    if (entries.length === 0) this.fail(s, `virtual server group ${name} has no entries`);
    this.groups.set(name, { entries, where: at(s) });
  }

  virtualServer(s: Statement): VirtualServerConfig {
    let addresses: Array<{ vaddr: string; vport: number }>;
    let name: string;
    let groupName: string | undefined;
    if (s.args[0] === 'fwmark') this.refused(s, 'firewall-mark services (wasmvs serves protocol, address and port)');
    if (s.args[0] === 'group') {
      this.exactArgs(s, 2, 'group NAME');
      groupName = s.args[1];
      const g = this.groups.get(groupName);
      if (!g) this.fail(s, `virtual_server_group ${groupName} is not defined`);
      addresses = g.entries;
      name = groupName;
    } else {
      if (s.args.length < 1 || s.args.length > 2) this.fail(s, 'virtual_server takes an address and a port, "group NAME" or "fwmark N"');
      const vaddr = this.ipv4(s, s.args[0], 'virtual server address');
      const vport = this.port(s, s.args[1], 'virtual server port');
      addresses = [{ vaddr, vport }];
      name = `[${vaddr}]:${vport}`;
    }
    const vs = {
      delayLoop: DEFAULT_DELAY_LOOP, connectTimeout: DEFAULT_CONNECT_TIMEOUT, retry: undefined as number | undefined,
      delayBeforeRetry: undefined as number | undefined, warmup: undefined as number | undefined, inhibit: false, alpha: false, omega: false,
      scheduler: undefined as string | undefined, flags: [] as string[], onePacket: false, persistence: undefined as number | undefined,
      netmask: undefined as string | undefined, protocol: undefined as Protocol | undefined, quorum: 1, hysteresis: 0,
      quorumUp: undefined as string[] | undefined, quorumDown: undefined as string[] | undefined, weight: 1, virtualhost: undefined as string | undefined,
      sorry: undefined as SorryServerConfig | undefined,
    };
    const rsStatements: Statement[] = [];
    for (const k of this.block(s)) {
      if (k.keyword !== 'real_server') this.noBlock(k);
      switch (k.keyword) {
        case 'ip_family': this.exactArgs(k, 1, 'inet or inet6'); if (k.args[0] !== 'inet') this.refused(k, 'IPv6'); break;
        case 'delay_loop': vs.delayLoop = this.timer(k, false); break;
        case 'connect_timeout': vs.connectTimeout = this.timer(k, false); break;
        case 'retry': vs.retry = this.uint(k, 1, 0xffffffff); break;
        case 'delay_before_retry': vs.delayBeforeRetry = this.timer(k, true); break;
        case 'warmup': vs.warmup = this.timer(k, true); break;
        case 'inhibit_on_failure': this.bare(k); vs.inhibit = true; break;
        case 'lb_algo': case 'lvs_sched':
          this.exactArgs(k, 1, 'a scheduler name');
          try { checkScheduler(k.args[0]); } catch (err) { throw new WasmvsError((err as WasmvsError).code, `${at(k)}: ${(err as Error).message}`, { cause: err }); }
          vs.scheduler = k.args[0];
          break;
        case 'ops': this.bare(k); vs.onePacket = true; break;
        case 'hashed': this.bare(k); this.ignored(k, 'a legacy IPVS flag with no effect'); break;
        case 'flag-1': case 'flag-2': case 'flag-3': case 'sh-port': case 'sh-fallback': case 'mh-port': case 'mh-fallback':
          this.bare(k);
          if (!SCHED_FLAGS.includes(k.keyword)) this.fail(k, `unknown scheduler flag ${k.keyword}`);
          if (!vs.flags.includes(k.keyword)) vs.flags.push(k.keyword);
          break;
        case 'lb_kind': case 'lvs_method': this.forwarding(k); break;
        case 'sorry_server_lvs_method': this.forwarding(k); break;
        case 'persistence_engine': this.refused(k, 'persistence engines (SIP)');
        // A bare persistence_timeout is IPVS_SVC_PERSISTENT_TIMEOUT (pto_handler).
        case 'persistence_timeout': vs.persistence = k.args.length === 0 ? DEFAULT_PERSISTENCE : this.uint(k, 1, 2073600); break;
        case 'persistence_granularity':
          this.exactArgs(k, 1, 'a netmask');
          vs.netmask = this.ipv4(k, k.args[0], 'persistence_granularity');
          // pgr_handler: a granularity implies persistence.
          vs.persistence ??= DEFAULT_PERSISTENCE;
          break;
        case 'protocol': {
          this.exactArgs(k, 1, 'TCP or UDP');
          const p = k.args[0].toUpperCase();
          if (p === 'SCTP') this.refused(k, 'SCTP services');
          if (p !== 'TCP' && p !== 'UDP') this.fail(k, `unknown protocol "${k.args[0]}" (TCP or UDP)`);
          vs.protocol = p === 'TCP' ? 'tcp' : 'udp';
          break;
        }
        case 'ha_suspend': this.bare(k); this.ignored(k, 'the gateway owns its VIPs; checkers always run'); break;
        case 'smtp_alert': this.flag(k); this.ignored(k, 'wasmvs sends no mail; every transition is logged'); break;
        case 'snmp_name': this.ignored(k, 'wasmvs has no SNMP agent'); break;
        case 'virtualhost': this.exactArgs(k, 1, 'one host name'); vs.virtualhost = k.args[0]; break;
        case 'alpha': this.bare(k); vs.alpha = true; break;
        case 'omega': this.bare(k); vs.omega = true; break;
        case 'quorum_up': vs.quorumUp = this.command(k); break;
        case 'quorum_down': vs.quorumDown = this.command(k); break;
        case 'quorum': vs.quorum = this.uint(k, 1, 0xffffffff); break;
        case 'hysteresis': vs.hysteresis = this.uint(k, 0, 0xffffffff); break;
        case 'weight': vs.weight = this.uint(k, 1, MAX_WEIGHT); break;
        case 'sorry_server': {
          if (k.args.length < 1 || k.args.length > 2) this.fail(k, 'sorry_server takes an address and a port');
          vs.sorry = { daddr: this.ipv4(k, k.args[0], 'sorry server address'), dport: this.port(k, k.args[1], 'sorry server port'), inhibit: vs.sorry?.inhibit ?? false };
          break;
        }
        case 'sorry_server_inhibit':
          this.bare(k);
          if (!vs.sorry) this.fail(k, 'sorry_server_inhibit before or without sorry_server');
          vs.sorry.inhibit = true;
          break;
        case 'real_server': rsStatements.push(k); break;
        default: this.fail(k, `unknown keyword "${k.keyword}" in virtual_server`);
      }
    }
    if (vs.protocol === undefined) {
      // validate_check_config: the kernel would take protocol 0 as UDP, so keepalived says so.
      this.note(s, `virtual server ${name}: no protocol set - defaulting to UDP`);
      vs.protocol = 'udp';
    }
    if (vs.onePacket && vs.protocol !== 'udp') this.fail(s, 'ops (one-packet scheduling) is only for UDP virtual servers');
    name = groupName === undefined ? `[${addresses[0].vaddr}]:${vs.protocol}:${addresses[0].vport}` : groupName;
    if (vs.persistence === undefined && addresses.some((a) => a.vport === 0)) {
      this.note(s, `virtual server ${name}: zero port only valid for persistent services - setting`);
      vs.persistence = DEFAULT_PERSISTENCE;
    }
    if (vs.scheduler === undefined) this.note(s, `virtual server ${name}: no scheduler set, setting default 'wlc'`);
    const services = addresses.map(({ vaddr, vport }) => {
      try {
        return checkServiceSpec({
          protocol: vs.protocol as Protocol, vaddr, vport, scheduler: vs.scheduler ?? 'wlc', persistence: vs.persistence,
          netmask: vs.netmask, schedFlags: vs.flags.length > 0 ? vs.flags : undefined, onePacket: vs.onePacket || undefined,
        });
      } catch (err) {
        if (err instanceof WasmvsError) throw new WasmvsError(err.code, `${at(s)}: ${err.message}`, { cause: err });
        throw err;
      }
    });
    const realServers = rsStatements.map((r) => this.realServer(r, vs, addresses));
    if (realServers.length === 0) this.fail(s, `virtual server ${name} has no real servers`);
    for (let i = 0; i < realServers.length; i++) {
      for (let j = 0; j < i; j++) {
        if (realServers[i].daddr === realServers[j].daddr && realServers[i].dport === realServers[j].dport) {
          this.fail(rsStatements[i], `real server ${realServers[i].daddr}:${realServers[i].dport} is already defined at ${realServers[j].where}`);
        }
      }
      if (vs.sorry && realServers[i].daddr === vs.sorry.daddr && (realServers[i].dport || addresses[0].vport) === (vs.sorry.dport || addresses[0].vport)) {
        this.refused(rsStatements[i], 'a real server that is also the sorry server');
      }
    }
    // validate_check_config: a quorum above the total weight could never be reached, and a
    // hysteresis at or above the quorum would make it meaningless; keepalived corrects both.
    const total = realServers.reduce((n, r) => n + r.weight, 0);
    if (vs.quorum > total) {
      this.note(s, `Warning - quorum ${vs.quorum} for ${name} exceeds total weight of real servers ${total}, reducing quorum to ${total}`);
      vs.quorum = total;
    }
    if (vs.hysteresis >= vs.quorum && vs.hysteresis > 0) {
      const h = Math.max(0, vs.quorum - 1);
      this.note(s, `Virtual server ${name}: hysteresis ${vs.hysteresis} >= quorum ${vs.quorum}; setting hysteresis to ${h}`);
      vs.hysteresis = h;
    }
    const sorry = vs.sorry ? { ...vs.sorry } : undefined;
    return {
      name, id: groupName === undefined ? `${vs.protocol} ${addresses[0].vaddr}:${addresses[0].vport}` : `${vs.protocol} group ${groupName}`,
      services, delayLoop: vs.delayLoop, quorum: vs.quorum, hysteresis: vs.hysteresis, quorumUp: vs.quorumUp, quorumDown: vs.quorumDown,
      omega: vs.omega, sorry, realServers, where: at(s),
    };
  }

  forwarding(k: Statement): void {
    if (k.args.length < 1) this.fail(k, `${k.keyword} needs NAT, DR or TUN`);
    const m = k.args[0];
    if (m === 'DR' || m === 'TUN') this.refused(k, `${m} forwarding (wasmvs forwards by NAT, masquerading, only)`);
    if (m !== 'NAT') this.fail(k, `unknown forwarding method "${m}" (NAT, DR or TUN)`);
    if (k.args.length > 1) this.fail(k, `${k.keyword} NAT takes no options`);
  }

  realServer(s: Statement, vs: {
    delayLoop: number; connectTimeout: number; retry?: number; delayBeforeRetry?: number; warmup?: number; inhibit: boolean; alpha: boolean; weight: number; virtualhost?: string;
  }, addresses: Array<{ vaddr: string; vport: number }>): RealServerConfig {
    if (s.args.length < 1 || s.args.length > 2) this.fail(s, 'real_server takes an address and a port');
    const daddr = this.ipv4(s, s.args[0], 'real server address');
    const dport = this.port(s, s.args[1], 'real server port');
    const rs = {
      weight: vs.weight, inhibit: vs.inhibit, alpha: vs.alpha, upper: 0, lower: 0, notifyUp: undefined as string[] | undefined, notifyDown: undefined as string[] | undefined,
      retry: vs.retry, delayBeforeRetry: vs.delayBeforeRetry, warmup: vs.warmup, connectTimeout: vs.connectTimeout, delayLoop: vs.delayLoop, virtualhost: vs.virtualhost,
    };
    const checkerStatements: Statement[] = [];
    for (const k of this.block(s)) {
      if (!k.keyword.endsWith('_CHECK') && k.keyword !== 'HTTP_GET' && k.keyword !== 'SSL_GET') this.noBlock(k);
      switch (k.keyword) {
        case 'weight': rs.weight = this.uint(k, 0, MAX_WEIGHT); break;
        case 'lvs_method': this.forwarding(k); break;
        case 'uthreshold': rs.upper = this.uint(k, 0, 65535); break;
        case 'lthreshold': rs.lower = this.uint(k, 0, 65535); break;
        case 'inhibit_on_failure': rs.inhibit = this.flag(k); break;
        case 'notify_up': rs.notifyUp = this.command(k); break;
        case 'notify_down': rs.notifyDown = this.command(k); break;
        case 'alpha': rs.alpha = this.flag(k); break;
        case 'retry': rs.retry = this.uint(k, 1, 0xffffffff); break;
        case 'delay_before_retry': rs.delayBeforeRetry = this.timer(k, true); break;
        case 'warmup': rs.warmup = this.timer(k, true); break;
        case 'connect_timeout': rs.connectTimeout = this.timer(k, false); break;
        case 'delay_loop': rs.delayLoop = this.timer(k, false); break;
        case 'smtp_alert': this.flag(k); this.ignored(k, 'wasmvs sends no mail; every transition is logged'); break;
        case 'snmp_name': this.ignored(k, 'wasmvs has no SNMP agent'); break;
        case 'virtualhost': this.exactArgs(k, 1, 'one host name'); rs.virtualhost = k.args[0]; break;
        case 'TCP_CHECK': case 'HTTP_GET': case 'SSL_GET': case 'UDP_CHECK': case 'DNS_CHECK': case 'MISC_CHECK': checkerStatements.push(k); break;
        case 'PING_CHECK': this.refused(k, 'ICMP echo needs a raw socket, which Node.js does not offer; use TCP_CHECK or MISC_CHECK with ping(8)');
        case 'FILE_CHECK': case 'track_file': this.refused(k, 'tracked files; use MISC_CHECK with a script that tests the file');
        case 'SMTP_CHECK': this.refused(k, 'SMTP checks; use TCP_CHECK or MISC_CHECK');
        case 'BFD_CHECK': case 'track_bfd': this.refused(k, 'BFD');
        default: this.fail(k, `unknown keyword "${k.keyword}" in real_server`);
      }
    }
    const where = at(s);
    if (rs.lower > rs.upper && rs.upper > 0) this.fail(s, `lthreshold ${rs.lower} is higher than uthreshold ${rs.upper}`);
    const checkers = checkerStatements.map((c) => this.checker(c, { ...rs, daddr, dport, addresses }));
    return {
      daddr, dport, weight: rs.weight, inhibit: rs.inhibit, alpha: rs.alpha, upperThreshold: rs.upper, lowerThreshold: rs.lower,
      notifyUp: rs.notifyUp, notifyDown: rs.notifyDown, checkers, where,
    };
  }

  checker(s: Statement, rs: {
    daddr: string; dport: number; addresses: Array<{ vaddr: string; vport: number }>; retry?: number; delayBeforeRetry?: number; warmup?: number;
    connectTimeout: number; delayLoop: number; alpha: boolean; virtualhost?: string;
  }): CheckerConfig {
    const type = s.keyword as CheckerType;
    const c = {
      retry: undefined as number | undefined, delayBeforeRetry: undefined as number | undefined, warmup: undefined as number | undefined,
      delayLoop: undefined as number | undefined, alpha: undefined as boolean | undefined, logAllFailures: false,
      ip: rs.daddr, port: undefined as number | undefined, bindto: undefined as string | undefined, bindPort: undefined as number | undefined,
      connectTimeout: undefined as number | undefined,
    };
    const http = { urls: [] as HttpUrl[], protocol: '1.0' as HttpCheckConfig['protocol'], virtualhost: undefined as string | undefined, sni: undefined as string | undefined, sniOn: false };
    const udp = { payload: undefined as string | undefined, requireReply: false, reply: undefined as string | undefined, min: 0, max: UDP_MAX_REPLY };
    const dns = { qtype: DNS_TYPES.SOA, qtypeName: 'SOA', name: undefined as string | undefined };
    const misc = { command: undefined as string[] | undefined, timeout: 0, dynamic: false, user: undefined as MiscCheckConfig['user'] };
    const connection = type !== 'MISC_CHECK';
    for (const k of s.block ?? []) {
      if (k.keyword !== 'url') this.noBlock(k);
      // The keywords every checker shares (install_checker_common_keywords).
      switch (k.keyword) {
        case 'retry': c.retry = this.uint(k, 0, 0xffffffff); continue;
        case 'delay_before_retry': c.delayBeforeRetry = this.timer(k, true); continue;
        case 'warmup': c.warmup = this.timer(k, true); continue;
        case 'delay_loop': c.delayLoop = this.timer(k, false); continue;
        case 'alpha': c.alpha = this.flag(k); continue;
        case 'log_all_failures': c.logAllFailures = this.flag(k); continue;
      }
      if (connection) {
        switch (k.keyword) {
          case 'connect_ip': this.exactArgs(k, 1, 'one address'); c.ip = this.ipv4(k, k.args[0], 'connect_ip'); continue;
          case 'connect_port': c.port = this.uint(k, 1, 65535); continue;
          case 'bindto': this.exactArgs(k, 1, 'one address'); c.bindto = this.ipv4(k, k.args[0], 'bindto'); continue;
          case 'bind_port': c.bindPort = this.uint(k, 1, 65535); continue;
          case 'connect_timeout': c.connectTimeout = this.timer(k, false); continue;
          case 'bind_if': this.refused(k, 'binding a checker to an interface (bindto an address instead)');
          case 'fwmark': this.refused(k, 'marking checker packets');
        }
      }
      switch (`${type === 'SSL_GET' ? 'HTTP_GET' : type} ${k.keyword}`) {
        case 'HTTP_GET nb_get_retry':
          this.note(k, 'nb_get_retry is deprecated - please use \'retry\'');
          c.retry = this.uint(k, 0, 0xffffffff);
          continue;
        case 'HTTP_GET virtualhost': this.exactArgs(k, 1, 'one host name'); http.virtualhost = k.args[0]; continue;
        case 'HTTP_GET http_protocol': {
          this.exactArgs(k, 1, '1.0, 1.0C or 1.1');
          const v = k.args[0] === '1.0c' ? '1.0C' : k.args[0];
          if (v !== '1.0' && v !== '1.1' && v !== '1.0C') this.fail(k, `http_protocol is 1.0, 1.0C or 1.1 (got "${k.args[0]}")`);
          http.protocol = v;
          continue;
        }
        case 'HTTP_GET enable_sni': http.sniOn = this.flag(k); continue;
        case 'HTTP_GET sni_name': this.exactArgs(k, 1, 'one name'); http.sni = k.args[0]; http.sniOn = true; continue;
        case 'HTTP_GET fast_recovery': this.flag(k); this.ignored(k, 'checks already run at delay_loop after a failure'); continue;
        case 'HTTP_GET tls_compliant': if (type !== 'SSL_GET') break; this.flag(k); this.ignored(k, 'Node.js TLS always closes with close_notify'); continue;
        case 'HTTP_GET url': http.urls.push(this.url(k, type)); continue;
        case 'UDP_CHECK payload': udp.payload = this.hex(k, k.args.join('')); continue;
        case 'UDP_CHECK require_reply': udp.requireReply = true; if (k.args.length > 0) udp.reply = this.hex(k, k.args.join('')); continue;
        case 'UDP_CHECK min_reply_length': udp.min = this.uint(k, 0, 65535); continue;
        case 'UDP_CHECK max_reply_length': udp.max = this.uint(k, 0, 65535); continue;
        case 'DNS_CHECK type': {
          this.exactArgs(k, 1, 'a query type');
          const t = DNS_TYPES[k.args[0].toUpperCase()];
          if (t === undefined) this.fail(k, `unknown DNS_CHECK type "${k.args[0]}" (${Object.keys(DNS_TYPES).join(', ')})`);
          dns.qtype = t;
          dns.qtypeName = k.args[0].toUpperCase();
          continue;
        }
        case 'DNS_CHECK name': {
          this.exactArgs(k, 1, 'one name');
          const n = k.args[0];
          // dns_name_handler: no empty label (a leading dot other than the root, or "..").
          if ((n.startsWith('.') && n !== '.') || n.includes('..')) this.fail(k, `DNS_CHECK name '${n}' has empty label`);
          if (n.split('.').some((l) => Buffer.byteLength(l) > 63)) this.fail(k, `DNS_CHECK name '${n}' has a label longer than 63 bytes`);
          dns.name = n;
          continue;
        }
        case 'MISC_CHECK misc_path': misc.command = this.command(k); continue;
        case 'MISC_CHECK misc_timeout': misc.timeout = this.uint(k, 0, 0x7fffffff / S) * S; continue;
        case 'MISC_CHECK misc_dynamic': this.bare(k); misc.dynamic = true; continue;
        case 'MISC_CHECK user': misc.user = this.user(k); continue;
      }
      this.fail(k, `unknown keyword "${k.keyword}" in ${type}`);
    }
    // Inheritance as validate_check_config: checker, then real server, then the type's default.
    const defaultRetry = type === 'DNS_CHECK' ? DNS_RETRY : type === 'MISC_CHECK' ? 0 : DEFAULT_RETRY;
    const typeDelayBeforeRetry = type === 'HTTP_GET' || type === 'SSL_GET' ? HTTP_DELAY_BEFORE_RETRY : type === 'DNS_CHECK' ? 0 : DEFAULT_DELAY_BEFORE_RETRY;
    const delayLoop = c.delayLoop ?? rs.delayLoop;
    const common: CheckerCommon = {
      where: at(s),
      retry: c.retry ?? rs.retry ?? defaultRetry,
      delayLoop,
      warmup: c.warmup ?? rs.warmup ?? delayLoop,
      delayBeforeRetry: c.delayBeforeRetry ?? rs.delayBeforeRetry ?? (typeDelayBeforeRetry || delayLoop),
      alpha: c.alpha ?? rs.alpha,
      logAllFailures: c.logAllFailures,
    };
    if (type === 'MISC_CHECK') {
      if (!misc.command) this.fail(s, 'MISC_CHECK needs misc_path');
      return { type, ...common, command: misc.command, timeout: misc.timeout || rs.delayLoop, dynamic: misc.dynamic, user: misc.user };
    }
    let port = c.port ?? rs.dport;
    if (port === 0) {
      const ports = [...new Set(rs.addresses.map((a) => a.vport))];
      if (ports.length !== 1 || ports[0] === 0) this.fail(s, `${type} needs connect_port: the real server has no port of its own`);
      port = ports[0];
    }
    const target: CheckTarget = { ip: c.ip, port };
    if (c.bindto !== undefined) target.bindto = c.bindto;
    if (c.bindPort !== undefined) target.bindPort = c.bindPort;
    const connectTimeout = c.connectTimeout ?? rs.connectTimeout;
    switch (type) {
      case 'TCP_CHECK': return { type, ...common, target, connectTimeout };
      case 'HTTP_GET': case 'SSL_GET': {
        if (http.urls.length === 0) this.fail(s, `${type} checker has no urls specified`);
        const out: HttpCheckConfig = { type, ...common, target, connectTimeout, urls: http.urls, protocol: http.protocol };
        const vhost = http.virtualhost ?? rs.virtualhost;
        if (vhost !== undefined) out.virtualhost = vhost;
        if (type === 'SSL_GET') {
          if (http.sniOn) out.sni = http.sni ?? vhost ?? c.ip;
          if (this.tls) out.tls = { ...this.tls };
        }
        return out;
      }
      case 'UDP_CHECK': {
        if (udp.min > udp.max) this.fail(s, `UDP_CHECK min_reply_length ${udp.min} > max_reply_length ${udp.max} - would always fail`);
        const out: UdpCheckConfig = { type, ...common, target, connectTimeout, requireReply: udp.requireReply, minReplyLength: udp.min, maxReplyLength: udp.max };
        if (udp.payload !== undefined) out.payload = udp.payload;
        if (udp.reply !== undefined) out.reply = udp.reply;
        return out;
      }
      case 'DNS_CHECK': return { type, ...common, target, connectTimeout, qtype: dns.qtype, qtypeName: dns.qtypeName, name: dns.name ?? '' };
    }
    return this.fail(s, `unknown checker ${type}`);
  }

  url(s: Statement, type: CheckerType): HttpUrl {
    const url: Partial<HttpUrl> & { statusCodes: Array<[number, number]> } = { statusCodes: [] };
    let regexFlags = '';
    let regex: string | undefined;
    for (const k of this.block(s)) {
      this.noBlock(k);
      switch (k.keyword) {
        case 'path': this.exactArgs(k, 1, 'one path'); url.path = k.args[0]; break;
        case 'digest': {
          this.exactArgs(k, 1, '32 hex digits');
          if (!/^[0-9a-fA-F]{32}$/.test(k.args[0])) this.fail(k, `digest '${k.args[0]}' must be 32 hex digits (an MD5)`);
          if (url.digest) this.fail(k, `digest '${k.args[0]}' is a duplicate`);
          url.digest = k.args[0].toLowerCase();
          break;
        }
        case 'status_code':
          if (k.args.length === 0) this.fail(k, 'status_code needs codes or ranges (200 or 200-299)');
          for (const a of k.args) {
            const m = /^(\d{3})(?:-(\d{3}))?$/.exec(a);
            const lo = m ? Number(m[1]) : NaN;
            const hi = m ? Number(m[2] ?? m[1]) : NaN;
            // HTTP_STATUS_CODE_MIN/MAX (check_http.h).
            if (!m || lo < 100 || hi > 599 || lo > hi) this.fail(k, `Invalid HTTP_GET status code '${a}' (100 to 599, or a range LOW-HIGH)`);
            url.statusCodes.push([lo, hi]);
          }
          break;
        case 'virtualhost': this.exactArgs(k, 1, 'one host name'); url.virtualhost = k.args[0]; break;
        case 'regex': this.exactArgs(k, 1, 'one (quoted) pattern'); if (regex !== undefined) this.fail(k, 'a second regex in one url'); regex = k.args[0]; break;
        case 'regex_no_match': this.bare(k); url.regexNoMatch = true; break;
        case 'regex_options':
          for (const o of k.args) {
            const f = REGEX_FLAGS[o];
            if (f === undefined) this.refused(k, `regex option ${o} (wasmvs maps ${Object.keys(REGEX_FLAGS).join(', ')} to JavaScript flags)`);
            if (!regexFlags.includes(f)) regexFlags += f;
          }
          break;
        case 'regex_min_offset': url.regexMinOffset = this.uint(k, 0, 0x7fffffff); break;
        case 'regex_max_offset': url.regexMaxOffset = this.uint(k, 0, 0x7fffffff); break;
        case 'regex_stack': this.ignored(k, 'JavaScript regular expressions need no JIT stack'); break;
        case 'tls_compliant': if (type !== 'SSL_GET') this.fail(k, `unknown keyword "tls_compliant" in url of ${type}`); this.flag(k); this.ignored(k, 'Node.js TLS always closes with close_notify'); break;
        default: this.fail(k, `unknown keyword "${k.keyword}" in url`);
      }
    }
    if (url.path === undefined) this.fail(s, 'url has no path');
    if (regex !== undefined) {
      try { new RegExp(regex, regexFlags); } catch (e) { this.fail(s, `invalid regex '${regex}': ${(e as Error).message}`); }
      url.regex = { source: regex, flags: regexFlags };
    } else if (url.regexNoMatch || url.regexMinOffset !== undefined || url.regexMaxOffset !== undefined) this.fail(s, 'regex_no_match and regex offsets need a regex');
    // url_check: without status_code, 200 to 299 (HTTP_DEFAULT_STATUS_CODE_MIN/MAX).
    if (url.statusCodes.length === 0) url.statusCodes.push([200, 299]);
    return url as HttpUrl;
  }

  /** read_hex_str: hex digits, blanks allowed between them. */
  hex(s: Statement, text: string): string {
    const clean = text.replace(/\s+/g, '');
    if (clean === '' || !/^([0-9a-fA-F]{2})+$/.test(clean)) this.fail(s, `${s.keyword} takes hex bytes (got "${text}")`);
    return clean.toLowerCase();
  }

  /** `user NAME [GROUP]` as set_script_uid_gid, looked up in /etc/passwd and /etc/group. */
  user(s: Statement): MiscCheckConfig['user'] {
    if (s.args.length < 1 || s.args.length > 2) this.fail(s, 'user takes a user name and optionally a group name');
    const table = (file: string): string[][] => { try { return readFileSync(file, 'utf8').split('\n').map((l) => l.split(':')); } catch { return []; } };
    const pw = table('/etc/passwd').find((f) => f[0] === s.args[0] || (/^\d+$/.test(s.args[0]) && f[2] === s.args[0]));
    if (!pw || pw.length < 4) this.fail(s, `no user "${s.args[0]}" in /etc/passwd`);
    let gid = Number(pw[3]);
    if (s.args[1] !== undefined) {
      const gr = table('/etc/group').find((f) => f[0] === s.args[1] || (/^\d+$/.test(s.args[1]) && f[2] === s.args[1]));
      if (!gr || gr.length < 3) this.fail(s, `no group "${s.args[1]}" in /etc/group`);
      gid = Number(gr[2]);
    }
    return { name: pw[0], uid: Number(pw[2]), gid };
  }
}

/** Interprets parsed statements (see lexer.ts); throws naming the file and line at fault. */
export function interpretKeepalived(statements: Statement[], files: string[] = [], notes: string[] = []): KeepalivedConfig {
  const it = new Interpreter();
  const virtualServers = it.top(statements);
  if (virtualServers.length === 0) throw new WasmvsError('WASMVS_KEEPALIVED_CONFIG', `${files[0] ?? 'keepalived configuration'}: no virtual_server: nothing to balance`);
  return { virtualServers, files, notes: [...notes, ...it.notes] };
}

/** Reads a keepalived.conf (with its includes) into the model. */
export function loadKeepalived(file: string): KeepalivedConfig {
  const parsed = parseKeepalivedFile(file);
  return interpretKeepalived(parsed.statements, parsed.files, parsed.notes);
}

/** `[198.18.1.2]:tcp:80` as keepalived's FMT_RS. */
export function formatRealServer(rs: { daddr: string; dport: number }, vs: VirtualServerConfig): string {
  return `[${rs.daddr}]:${vs.services[0].protocol}:${rs.dport || vs.services[0].vport}`;
}
