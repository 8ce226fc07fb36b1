// Everything the gateway changes on the host, done with iproute2 so operators can read and undo
// it with the tools they already use (`ip route`, `ip rule`, `ip neigh`, sysctl). Each change is
// one `ip` command run without a shell (execFile) and logged as one line that a person could
// paste; sysctls are written through /proc/sys after reading the old value.
//
// What the gateway adds (TUN wvs0, defaults):
//
//   ip link set dev wvs0 mtu M txqueuelen Q up
//   ip route add default dev wvs0 table 22358 proto 87          our table: "send it to the TUN"
//   ip rule add pref 22359 nop protocol 87                      anchor (see the loop guard)
//   ip rule add pref 22357 iif wvs0 goto 22359 protocol 87      loop guard
//   ip rule add pref 22357 iif lo ipproto icmp goto 22359 protocol 87   the host's own ICMP
//   ip rule add pref 22358 ipproto icmp lookup 22358 protocol 87  forwarded ICMP (below)
//   ip rule add pref 22358 from RIP lookup 22358 protocol 87    per real server (sync)
//     or, with realServerIfaces: ip rule add pref 22358 iif IFACE lookup 22358 protocol 87
//   ip route add VIP/32 dev wvs0 proto 87                       per VIP, main table (sync)
//   ip neigh add proxy VIP dev IFACE                            per VIP and arpIface (sync)
//   sysctls: net.ipv4.ip_forward=1; net.ipv6.conf.wvs0.disable_ipv6=1; rp_filter (below)
//
// Tags: routes and rules carry protocol 87 (0x57, "W"; unassigned in iproute2's rt_protos),
// our table is 22358 (0x5756, "WV"). Proxy neighbour entries, sysctls and link settings cannot
// carry a tag: a journal (JSON, one file per TUN in stateDir, default /run/wasmvs, which is
// tmpfs and so never outlives a reboot, like the changes it lists) records every change
// BEFORE it is made (a write-ahead undo log), with the sysctls' original values. teardown()
// undoes the log in reverse; recover() undoes a dead gateway's log and sweeps anything still
// carrying our tags for that TUN, so nothing of a SIGKILLed gateway remains.
//
// Why the loop guard is a goto and not "lookup main": replies the gateway writes back into the
// TUN re-enter the kernel with iif wvs0; with per-RIP rules a passed packet from a real server
// (source RIP) would match "from RIP lookup 22358" again and loop through the TUN forever. A
// `lookup main` guard would also stop the loop, but only while main has a route: on a miss the
// kernel falls through to the next rule (ours) and the packet loops again, and it would skip
// any policy rules the operator has after ours. `goto` jumps past our selection rules to the
// anchor and evaluation continues with the host's own rules (fib_rules.c: a goto needs a rule
// at exactly its target priority, hence the `nop` anchor). VRF (l3mdev rules at pref 1000) is
// not supported: the l3mdev rule would dispatch before ours.
//
// Why forwarded ICMP goes through the TUN whatever its source: an error about one of our
// connections can come from a router between the director and a real server (path MTU
// discovery: "fragmentation needed" quoting client -> RIP, sent to the client by a router
// whose address is no real server's). Kernel IPVS catches those in ip_vs_out_icmp on the
// forward path; here the engine translates them (quote, outer source to the VIP) and passes
// transit ICMP back unchanged. The host's own ICMP (iif lo) is left alone.
//
// Reverse-path filtering (net/ipv4/fib_frontend.c, __fib_validate_source; IN_DEV_RPFILTER is
// IN_DEV_MAXCONF, max(all, dev)). Packets the gateway writes into the TUN carry client (or
// real-server) sources that the kernel does not route via the TUN. The check does a reverse
// lookup; when its result does not use the TUN ("dev_match" false) then:
//   - a device with NO IPv4 address (`no_addr`, as a bare TUN) goes to `last_resort`, which
//     drops the packet for ANY non-zero rp_filter, loose (2) included;
//   - with an address, strict (1) drops and loose (2) accepts whenever a route exists.
// So "rp_filter 2 on the TUN" alone is NOT enough on an address-less TUN (measured here: with
// all=1 and wvs0=2 and no address every forwarded packet counted as IPReversePathFilter).
// What we do, changing as little as possible:
//   - max(all, wvs0) is 0: nothing;
//   - all is 0 (the TUN inherited a non-zero value from conf/default, as on RHEL): wvs0 := 0;
//   - all is 1 or 2: wvs0 := 2 (so max() is 2) and, if the TUN has no IPv4 address, give it
//     127.87.86.1/32 (scope host). 127/8 is already local through lo, a host-scope address is
//     never chosen as a source for other destinations, and packets to 127/8 arriving from the
//     TUN are martians: the address is inert except that it makes the loose check apply.
// `all` itself and other interfaces are never touched.
//
// Proxy ARP (net/ipv4/arp.c, arp_process): a request for a non-local target is answered from a
// pneigh entry when forwarding is on for the receiving interface (IN_DEV_FORWARD, which
// net.ipv4.ip_forward=1 sets on every interface) and the route to the target is unicast via
// ANOTHER device (our VIP route via the TUN). Broadcast requests are answered after the
// interface's proxy_delay (default up to 0.8 s, neigh.IFACE.proxy_delay), as for any proxy ARP.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIPv4, parseIPv4 } from '../addr.js';
import { WasmvsError } from '../errors.js';

/** Routing table of our own: `default dev TUN`, selected by the real-server rules. */
export const HOSTNET_TABLE = 22358; // 0x5756, "WV"
/** Route and rule protocol number that tags everything we add (`proto 87`, `protocol 87`). */
export const HOSTNET_PROTO = 87; // 0x57, "W"
/** Priority of the loop guard; the selection rules take +1 and the goto anchor +2. */
export const HOSTNET_PRIORITY = 22357;
/** Address given to an address-less TUN so loose rp_filter can apply (see the header). */
export const TUN_RPF_ADDRESS = '127.87.86.1/32';
export const DEFAULT_STATE_DIR = '/run/wasmvs';

export interface HostNetworkOptions {
  /** TUN interface name; it must exist when setup() runs (the gateway opens it first). */
  tun: string;
  /** MTU set on the TUN. */
  mtu: number;
  /** txqueuelen set on the TUN (default 10000: the kernel's 500 drops bursts). */
  txqueuelen?: number;
  /** Select real servers' replies by incoming interface instead of by source address. */
  realServerIfaces?: string[];
  /** Answer ARP for the VIPs on these interfaces (proxy neighbour entries). */
  arpIfaces?: string[];
  /** Journal directory (default /run/wasmvs). */
  stateDir?: string;
  /** Our routing table (default 22358); a second gateway on one host needs its own. */
  table?: number;
  /** Loop-guard priority (default 22357; +1 and +2 are used too); per gateway, as table. */
  priority?: number;
  /** One line per change (the command, or the sysctl with its old value). */
  log?: (line: string) => void;
}

export interface RecoverOptions {
  tun: string;
  stateDir?: string;
  table?: number;
  priority?: number;
  log?: (line: string) => void;
}

// ---- journal ------------------------------------------------------------------------------

/** One undoable change, in the order made. */
type Entry =
  /** An `ip ... add ...` command; undone by the same command with `del`. key names it for sync. */
  | { t: 'ip'; argv: string[]; key?: string }
  /** A sysctl write; restored to `original` if it still holds `written`. */
  | { t: 'sysctl'; key: string; original: string; written: string; forwarding?: Record<string, string> }
  /** The TUN's link settings before setup. */
  | { t: 'link'; dev: string; mtu: number; txqlen: number; up: boolean };

interface Journal {
  version: 1;
  tun: string;
  pid: number;
  /** /proc/PID/stat starttime, so a recycled PID is not taken for the live owner. */
  startTime: string;
  table: number;
  priority: number;
  entries: Entry[];
}

const JOURNAL_VERSION = 1;

/**
 * One journal per TUN name and network namespace, `<tun>@netns-<inode>.json`: /run is shared
 * by every namespace of the host, and a TUN name is unique only within one, so gateways in two
 * namespaces (a test's director and the host's own) each keep their own. The inode of
 * /proc/self/ns/net names the namespace for as long as it exists (and /run does not outlive a
 * reboot). Where it cannot be read, one namespace is all we can tell apart: the plain name.
 */
function journalPath(stateDir: string, tun: string): string {
  let suffix = '';
  try {
    suffix = `@netns-${statSync('/proc/self/ns/net').ino}`;
  } catch {
    // no /proc
  }
  return join(stateDir, `${tun}${suffix}.json`);
}

function procStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command start at field 3 (state); starttime is field 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function readJournal(path: string): Journal | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WasmvsError('WASMVS_FILE', `${path}: ${(err as Error).message}`, { cause: err });
  }
  let j: Journal;
  try {
    j = JSON.parse(text) as Journal;
  } catch (err) {
    throw new WasmvsError('WASMVS_FILE', `${path}: not a wasmvs host journal (${(err as Error).message}); undo its changes by hand and delete it`, { cause: err });
  }
  if (j === null || typeof j !== 'object' || j.version !== JOURNAL_VERSION || !Array.isArray(j.entries)) {
    throw new WasmvsError('WASMVS_FILE', `${path}: not a version ${JOURNAL_VERSION} wasmvs host journal; undo its changes by hand and delete it`);
  }
  return j;
}

function writeJournal(path: string, j: Journal): void {
  try {
    const tmp = `${path}.tmp`;
    writeFileSync(tmp, JSON.stringify(j, null, 1) + '\n', { mode: 0o600 });
    renameSync(tmp, path); // atomic: a crash leaves the old or the new journal, never half
  } catch (err) {
    throw new WasmvsError('WASMVS_FILE', `${path}: ${(err as Error).message}`, { cause: err });
  }
}

// ---- validation ---------------------------------------------------------------------------

// IFNAMSIZ is 16 with the NUL; the kernel refuses "/", ":" is an alias label, whitespace
// would not survive a log line (dev_valid_name in net/core/dev.c).
const IFNAME = /^[A-Za-z0-9_.@+-]{1,15}$/;

function checkIfname(name: unknown, what: string): string {
  if (typeof name !== 'string' || !IFNAME.test(name) || name === '.' || name === '..') {
    throw new WasmvsError('WASMVS_BAD_OPTION', `${what} ${JSON.stringify(name)} is not an interface name (1-15 characters, no "/", ":" or spaces)`);
  }
  return name;
}

function checkUint(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new WasmvsError('WASMVS_BAD_OPTION', `${what} ${String(value)} is not an integer from ${min} to ${max}`);
  }
  return value;
}

/** Dotted quads, canonical form, deduplicated, in first-seen order. */
function canonicalAddresses(list: unknown, what: string): string[] {
  if (!Array.isArray(list)) throw new WasmvsError('WASMVS_BAD_OPTION', `${what} must be an array of IPv4 addresses`);
  const out = new Set<string>();
  for (const a of list) {
    if (typeof a !== 'string') throw new WasmvsError('WASMVS_BAD_ADDRESS', `${what}: ${JSON.stringify(a)} is not an IPv4 address`);
    out.add(formatIPv4(parseIPv4(a)));
  }
  return [...out];
}

// ---- running ip and sysctl ----------------------------------------------------------------

interface IpResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** stderr of ip when what we delete is already gone (device removed, entry absent). */
const ALREADY_GONE = /No such process|No such file or directory|Cannot find device|Address not found|Cannot assign requested address|does not exist/;

function ipError(argv: string[], r: IpResult): WasmvsError {
  return new WasmvsError('WASMVS_HOST_NET', `ip ${argv.join(' ')}: ${r.stderr.trim() || 'failed'}`);
}

function ipSync(argv: string[]): IpResult {
  try {
    const stdout = execFileSync('ip', argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
    return { ok: true, stdout, stderr: '' };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string; stdout?: string };
    if (e.code === 'ENOENT') return { ok: false, stdout: '', stderr: 'ip (iproute2) is not installed' };
    return { ok: false, stdout: String(e.stdout ?? ''), stderr: String(e.stderr ?? '') || e.message };
  }
}

function ipAsync(argv: string[]): Promise<IpResult> {
  return new Promise((resolve) => {
    execFile('ip', argv, { encoding: 'utf8', timeout: 10_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve({ ok: true, stdout, stderr });
      const code = (err as NodeJS.ErrnoException).code;
      resolve({ ok: false, stdout, stderr: code === 'ENOENT' ? 'ip (iproute2) is not installed' : stderr || err.message });
    });
  });
}

async function ipJson<T>(argv: string[]): Promise<T[]> {
  const r = await ipAsync(['-j', ...argv]);
  if (!r.ok) {
    // A table that never had a route (the local table of a namespace with lo down) is empty.
    if (/FIB table does not exist/.test(r.stderr)) return [];
    throw ipError(['-j', ...argv], r);
  }
  const text = r.stdout.trim();
  return text === '' ? [] : (JSON.parse(text) as T[]);
}

/** "net.ipv4.conf.eth0.rp_filter" -> its /proc/sys path (dots in a name are "/" in sysctl keys). */
function sysctlPath(key: string): string {
  return '/proc/sys/' + key.split('.').map((part) => part.replaceAll('/', '.')).join('/');
}

function confKey(family: 'ipv4' | 'ipv6', dev: string, leaf: string): string {
  return `net.${family}.conf.${dev.replaceAll('.', '/')}.${leaf}`;
}

function readSysctl(key: string): string | undefined {
  try {
    return readFileSync(sysctlPath(key), 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WasmvsError('WASMVS_HOST_NET', `sysctl ${key}: ${(err as Error).message}`, { cause: err });
  }
}

function writeSysctl(key: string, value: string): void {
  try {
    writeFileSync(sysctlPath(key), value + '\n');
  } catch (err) {
    throw new WasmvsError('WASMVS_HOST_NET', `sysctl -w ${key}=${value}: ${(err as Error).message}`, { cause: err });
  }
}

/** conf/<dev>/forwarding of every interface (plus all, default), which ip_forward rewrites. */
function readForwarding(): Record<string, string> {
  const out: Record<string, string> = {};
  let names: string[];
  try {
    names = readdirSync('/proc/sys/net/ipv4/conf');
  } catch {
    return out;
  }
  for (const name of names) {
    const v = readSysctl(confKey('ipv4', name, 'forwarding'));
    if (v !== undefined) out[name] = v;
  }
  return out;
}

// ---- undo, as a coroutine so teardown() and teardownSync() share one implementation --------

/** An undo step yields the ip command it needs and receives its result. */
type Undo = Generator<string[], void, IpResult>;

function delArgv(addArgv: string[]): string[] {
  const i = addArgv.indexOf('add');
  return [...addArgv.slice(0, i), 'del', ...addArgv.slice(i + 1)];
}

/** Undoes one entry; returns (through the generator) nothing, throws on a real failure. */
function* undoEntry(entry: Entry, log: (line: string) => void): Undo {
  switch (entry.t) {
    case 'ip': {
      const argv = delArgv(entry.argv);
      const r = yield argv;
      if (r.ok) log(`ip ${argv.join(' ')}`);
      else if (ALREADY_GONE.test(r.stderr)) log(`ip ${argv.join(' ')}  # already gone`);
      else throw ipError(argv, r);
      return;
    }
    case 'link': {
      const argv = ['link', 'set', 'dev', entry.dev, 'mtu', String(entry.mtu), 'txqueuelen', String(entry.txqlen), entry.up ? 'up' : 'down'];
      const r = yield argv;
      if (r.ok) log(`ip ${argv.join(' ')}`);
      else if (ALREADY_GONE.test(r.stderr)) log(`ip ${argv.join(' ')}  # device already gone`);
      else throw ipError(argv, r);
      return;
    }
    case 'sysctl': {
      restoreSysctl(entry, log);
      return;
    }
  }
}

function restoreSysctl(entry: Extract<Entry, { t: 'sysctl' }>, log: (line: string) => void): void {
  const now = readSysctl(entry.key);
  if (now === undefined) {
    log(`sysctl ${entry.key}: gone with its device, nothing to restore`);
    return;
  }
  if (now !== entry.written) {
    // Someone changed it after us: theirs wins, as an operator would expect.
    log(`sysctl ${entry.key} is ${now}, not the ${entry.written} we set: left as is`);
    return;
  }
  if (now !== entry.original) {
    writeSysctl(entry.key, entry.original);
    log(`sysctl -w ${entry.key}=${entry.original}`);
  }
  // Writing ip_forward rewrites every interface's forwarding (devinet.c inet_forward_change):
  // put back the per-interface values it had before we turned forwarding on.
  for (const [dev, value] of Object.entries(entry.forwarding ?? {})) {
    const key = confKey('ipv4', dev, 'forwarding');
    const cur = readSysctl(key);
    if (cur !== undefined && cur !== value) {
      writeSysctl(key, value);
      log(`sysctl -w ${key}=${value}`);
    }
  }
}

async function runAsync(gen: Undo): Promise<void> {
  let step = gen.next();
  while (!step.done) step = gen.next(await ipAsync(step.value));
}

/**
 * Undoes a journal's entries newest first, dropping each from the journal once undone. A
 * failure is remembered and the rest still undone; the failed entries stay in the journal
 * (so a later recover() retries them) and the first failure is thrown at the end.
 */
function* undoAll(j: Journal, save: () => void, log: (line: string) => void): Generator<string[], WasmvsError | undefined, IpResult> {
  let first: WasmvsError | undefined;
  const kept: Entry[] = [];
  while (j.entries.length > 0) {
    const entry = j.entries[j.entries.length - 1];
    try {
      yield* undoEntry(entry, log);
    } catch (err) {
      first ??= err instanceof WasmvsError ? err : new WasmvsError('WASMVS_HOST_NET', String(err), { cause: err });
      kept.unshift(entry);
    }
    j.entries.pop();
    save();
  }
  j.entries.push(...kept);
  save();
  return first;
}

// ---- the host network of one gateway ------------------------------------------------------

export class HostNetwork {
  private readonly tun: string;
  private readonly mtu: number;
  private readonly txqueuelen: number;
  private readonly realServerIfaces: string[];
  private readonly arpIfaces: string[];
  private readonly stateDir: string;
  private readonly table: number;
  private readonly priority: number;
  private readonly log: (line: string) => void;
  private journal: Journal | undefined;
  private readonly path: string;
  /** One change at a time: sync() and teardown() never interleave their commands. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: HostNetworkOptions) {
    if (options === null || typeof options !== 'object') throw new WasmvsError('WASMVS_BAD_OPTION', 'HostNetwork needs an options object');
    this.tun = checkIfname(options.tun, 'TUN name');
    this.mtu = checkUint(options.mtu, 'MTU', 68, 65535);
    this.txqueuelen = checkUint(options.txqueuelen ?? 10_000, 'txqueuelen', 1, 0xffffffff);
    this.realServerIfaces = [...new Set((options.realServerIfaces ?? []).map((n) => checkIfname(n, '--real-server-iface')))];
    this.arpIfaces = [...new Set((options.arpIfaces ?? []).map((n) => checkIfname(n, '--arp-iface')))];
    for (const n of [...this.realServerIfaces, ...this.arpIfaces]) {
      if (n === this.tun) throw new WasmvsError('WASMVS_BAD_OPTION', `interface ${n} is the gateway's own TUN`);
    }
    this.table = checkUint(options.table ?? HOSTNET_TABLE, 'routing table', 1, 0xfffffffe);
    if ([0, 253, 254, 255].includes(this.table)) throw new WasmvsError('WASMVS_BAD_OPTION', `routing table ${this.table} is reserved (unspec, default, main, local)`);
    this.priority = checkUint(options.priority ?? HOSTNET_PRIORITY, 'rule priority', 1, 32763);
    this.stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
    this.log = options.log ?? (() => {});
    this.path = journalPath(this.stateDir, this.tun);
  }

  /**
   * Undoes what a dead gateway of this TUN left: its journal's entries (sysctls restored) and
   * anything still carrying our tags for this TUN and table. Refuses (WASMVS_TUN) when the
   * journal belongs to a live process.
   */
  static async recover(options: RecoverOptions): Promise<void> {
    const tun = checkIfname(options.tun, 'TUN name');
    const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
    const log = options.log ?? (() => {});
    const path = journalPath(stateDir, tun);
    const j = readJournal(path);
    const table = j?.table ?? checkUint(options.table ?? HOSTNET_TABLE, 'routing table', 1, 0xfffffffe);
    const priority = j?.priority ?? checkUint(options.priority ?? HOSTNET_PRIORITY, 'rule priority', 1, 32763);
    if (j) {
      if (j.pid !== process.pid && procStartTime(j.pid) === j.startTime) {
        throw new WasmvsError('WASMVS_TUN', `TUN ${tun} is in use by a live gateway (pid ${j.pid}, journal ${path})`);
      }
      log(`recovering the host changes of a stopped gateway (pid ${j.pid}) from ${path}`);
      const err = await runAsyncResult(undoAll(j, () => writeJournal(path, j), log));
      if (err) throw err;
    }
    await sweepTags(tun, table, priority, log);
    if (j) removeFile(path);
  }

  /** Link up with MTU and txqueuelen, sysctls, our table's default route, the loop guard. */
  setup(): Promise<void> {
    return this.serial(() => this.doSetup());
  }

  /**
   * Throws WASMVS_VIP_LOCAL, before anything changes, for a VIP that is a local address of
   * the host (an interface address or inside a `local` route of the local table): the kernel
   * would deliver its traffic locally instead of routing it into the TUN.
   */
  async checkVips(vips: string[]): Promise<void> {
    const list = canonicalAddresses(vips, 'VIPs');
    if (list.length === 0) return;
    const local: { prefix: number; len: number; where: string }[] = [];
    for (const link of await ipJson<{ ifname: string; addr_info?: { local?: string; prefixlen?: number }[] }>(['-4', 'addr', 'show'])) {
      for (const a of link.addr_info ?? []) {
        if (a.local) local.push({ prefix: parseIPv4(a.local), len: 32, where: `an address of ${link.ifname}` });
      }
    }
    for (const r of await ipJson<{ dst: string; dev?: string }>(['-4', 'route', 'show', 'table', 'local', 'type', 'local'])) {
      const [addr, len] = r.dst.split('/');
      local.push({ prefix: parseIPv4(addr), len: len === undefined ? 32 : Number(len), where: `in the local route "local ${r.dst}${r.dev ? ` dev ${r.dev}` : ''}"` });
    }
    for (const vip of list) {
      const v = parseIPv4(vip);
      for (const l of local) {
        const mask = l.len === 0 ? 0 : (0xffffffff << (32 - l.len)) >>> 0;
        if (((v & mask) >>> 0) === ((l.prefix & mask) >>> 0)) {
          throw new WasmvsError('WASMVS_VIP_LOCAL', `VIP ${vip} is a local address of this host (${l.where}): the kernel would deliver its traffic locally instead of routing it into ${this.tun}`);
        }
      }
    }
  }

  /**
   * Makes the VIP routes, proxy neighbour entries and real-server rules match the given
   * configuration: adds what is new, removes what went. Bad addresses or a local VIP change
   * nothing; an ip failure midway undoes this call's changes and throws.
   */
  sync(config: { vips: string[]; rips: string[] }): Promise<void> {
    const vips = canonicalAddresses(config?.vips, 'VIPs');
    const rips = canonicalAddresses(config?.rips, 'real servers');
    return this.serial(() => this.doSync(vips, rips));
  }

  /** Removes everything setup() and sync() added and restores the sysctls. Idempotent. */
  teardown(): Promise<void> {
    return this.serial(async () => {
      const j = this.journal;
      if (!j) return;
      const err = await runAsyncResult(undoAll(j, () => this.save(), this.log));
      this.finishTeardown(err);
    });
  }

  /** teardown() for process 'exit' handlers: same work, synchronously. */
  teardownSync(): void {
    const j = this.journal;
    if (!j) return;
    const gen = undoAll(j, () => this.save(), this.log);
    let step = gen.next();
    while (!step.done) step = gen.next(ipSync(step.value));
    this.finishTeardown(step.value);
  }

  // ---- internals ----

  private finishTeardown(err: WasmvsError | undefined): void {
    if (err) throw err; // the journal keeps what could not be undone, for recover()
    removeFile(this.path);
    this.journal = undefined;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  private save(): void {
    if (this.journal) writeJournal(this.path, this.journal);
  }

  /** Journals an `ip ... add` first, then runs it; on failure the entry leaves the journal. */
  private async add(argv: string[], key?: string): Promise<void> {
    const j = this.journal as Journal;
    const entry: Entry = key === undefined ? { t: 'ip', argv } : { t: 'ip', argv, key };
    j.entries.push(entry);
    this.save();
    const r = await ipAsync(argv);
    if (!r.ok) {
      j.entries.splice(j.entries.indexOf(entry), 1);
      this.save();
      throw ipError(argv, r);
    }
    this.log(`ip ${argv.join(' ')}`);
  }

  /** Writes a sysctl, journaling its original value first. */
  private setSysctl(key: string, value: string, why: string, extra?: { forwarding?: Record<string, string> }): void {
    const original = readSysctl(key);
    if (original === undefined) throw new WasmvsError('WASMVS_HOST_NET', `sysctl ${key}: no such setting (${sysctlPath(key)} does not exist)`);
    if (original === value) return;
    const entry: Entry = { t: 'sysctl', key, original, written: value, ...extra };
    const j = this.journal as Journal;
    j.entries.push(entry);
    this.save();
    try {
      writeSysctl(key, value);
    } catch (err) {
      j.entries.splice(j.entries.indexOf(entry), 1);
      this.save();
      throw err;
    }
    this.log(`sysctl -w ${key}=${value}  # was ${original}: ${why}`);
  }

  private async linkInfo(dev: string): Promise<{ mtu: number; txqlen: number; up: boolean; ipv4: boolean }> {
    const r = await ipAsync(['-j', 'addr', 'show', 'dev', dev]);
    if (!r.ok) {
      if (/does not exist|Cannot find device/.test(r.stderr)) throw new WasmvsError('WASMVS_HOST_NET', `interface ${dev} does not exist`);
      throw ipError(['-j', 'addr', 'show', 'dev', dev], r);
    }
    const [l] = JSON.parse(r.stdout) as { mtu: number; txqlen: number; flags: string[]; addr_info?: { family: string }[] }[];
    return { mtu: l.mtu, txqlen: l.txqlen, up: l.flags.includes('UP'), ipv4: (l.addr_info ?? []).some((a) => a.family === 'inet') };
  }

  private async doSetup(): Promise<void> {
    if (this.journal) throw new WasmvsError('WASMVS_HOST_NET', `host network of ${this.tun} is already set up`);
    if (existsSync(this.path)) {
      throw new WasmvsError('WASMVS_HOST_NET', `${this.path} lists host changes of an earlier gateway of ${this.tun}: run HostNetwork.recover() first`);
    }
    const tunInfo = await this.linkInfo(this.tun);
    for (const dev of [...this.realServerIfaces, ...this.arpIfaces]) {
      try {
        await this.linkInfo(dev);
      } catch (err) {
        throw new WasmvsError('WASMVS_BAD_OPTION', `${this.arpIfaces.includes(dev) ? '--arp-iface' : '--real-server-iface'} ${dev}: no such interface`, { cause: err });
      }
    }
    try {
      mkdirSync(this.stateDir, { recursive: true, mode: 0o755 });
    } catch (err) {
      throw new WasmvsError('WASMVS_FILE', `${this.stateDir}: ${(err as Error).message}`, { cause: err });
    }
    this.journal = {
      version: JOURNAL_VERSION, tun: this.tun, pid: process.pid, startTime: procStartTime(process.pid) ?? '',
      table: this.table, priority: this.priority, entries: [],
    };
    this.save();
    try {
      const tun = this.tun;
      // The engine is IPv4 only: without this the TUN gets a link-local address when it goes
      // up and the kernel sends router solicitations and MLD reports into the gateway.
      if (readSysctl(confKey('ipv6', tun, 'disable_ipv6')) !== undefined) {
        this.setSysctl(confKey('ipv6', tun, 'disable_ipv6'), '1', 'the gateway forwards IPv4 only');
      }
      const link: Entry = { t: 'link', dev: tun, mtu: tunInfo.mtu, txqlen: tunInfo.txqlen, up: tunInfo.up };
      this.journal.entries.push(link);
      this.save();
      const linkArgv = ['link', 'set', 'dev', tun, 'mtu', String(this.mtu), 'txqueuelen', String(this.txqueuelen), 'up'];
      const lr = await ipAsync(linkArgv);
      if (!lr.ok) throw ipError(linkArgv, lr);
      this.log(`ip ${linkArgv.join(' ')}`);

      if (readSysctl('net.ipv4.ip_forward') !== '1') {
        this.setSysctl('net.ipv4.ip_forward', '1', 'the gateway routes VIP traffic through the TUN', { forwarding: readForwarding() });
      }
      await this.setupRpFilter(tunInfo.ipv4);

      const P = String(HOSTNET_PROTO);
      const T = String(this.table);
      await this.add(['route', 'add', 'default', 'dev', tun, 'table', T, 'proto', P]);
      await this.add(['rule', 'add', 'pref', String(this.priority + 2), 'nop', 'protocol', P]);
      await this.add(['rule', 'add', 'pref', String(this.priority), 'iif', tun, 'goto', String(this.priority + 2), 'protocol', P]);
      await this.add(['rule', 'add', 'pref', String(this.priority), 'iif', 'lo', 'ipproto', 'icmp', 'goto', String(this.priority + 2), 'protocol', P]);
      await this.add(['rule', 'add', 'pref', String(this.priority + 1), 'ipproto', 'icmp', 'lookup', T, 'protocol', P]);
      for (const dev of this.realServerIfaces) {
        await this.add(['rule', 'add', 'pref', String(this.priority + 1), 'iif', dev, 'lookup', T, 'protocol', P], `rsif:${dev}`);
      }
    } catch (err) {
      // A failed setup undoes what it did, then reports the first failure.
      const undoErr = await runAsyncResult(undoAll(this.journal, () => this.save(), this.log)).catch((e: unknown) => e);
      if (!undoErr) {
        removeFile(this.path);
        this.journal = undefined;
      }
      throw err;
    }
  }

  private async setupRpFilter(hasIPv4: boolean): Promise<void> {
    const allKey = 'net.ipv4.conf.all.rp_filter';
    const devKey = confKey('ipv4', this.tun, 'rp_filter');
    const all = Number(readSysctl(allKey) ?? '0');
    const dev = Number(readSysctl(devKey) ?? '0');
    if (Math.max(all, dev) === 0) return;
    if (all === 0) {
      this.setSysctl(devKey, '0', `reverse-path filtering would drop the client-sourced packets the gateway writes back (max(all=0, ${this.tun}))`);
      return;
    }
    if (Math.max(all, dev) !== 2) {
      this.setSysctl(devKey, '2', `net.ipv4.conf.all.rp_filter is ${all} and the kernel uses max(all, ${this.tun}): loose mode on the TUN alone`);
    }
    if (!hasIPv4) {
      // fib_frontend.c: on a device without an IPv4 address every non-zero rp_filter drops
      // a packet whose reverse route is not via that device.
      await this.add(['addr', 'add', TUN_RPF_ADDRESS, 'dev', this.tun, 'scope', 'host'], 'rpf-addr');
    }
  }

  private keyed(prefix: string): Map<string, Extract<Entry, { t: 'ip' }>> {
    const out = new Map<string, Extract<Entry, { t: 'ip' }>>();
    for (const e of this.journal?.entries ?? []) if (e.t === 'ip' && e.key?.startsWith(prefix)) out.set(e.key, e);
    return out;
  }

  private async doSync(vips: string[], rips: string[]): Promise<void> {
    if (!this.journal) throw new WasmvsError('WASMVS_HOST_NET', `host network of ${this.tun} is not set up (call setup() first)`);
    const P = String(HOSTNET_PROTO);
    const T = String(this.table);
    const wanted = new Map<string, string[]>();
    for (const vip of vips) wanted.set(`vip:${vip}`, ['route', 'add', `${vip}/32`, 'dev', this.tun, 'proto', P]);
    for (const vip of vips) for (const dev of this.arpIfaces) wanted.set(`neigh:${vip}@${dev}`, ['neigh', 'add', 'proxy', vip, 'dev', dev]);
    if (this.realServerIfaces.length === 0) {
      for (const rip of rips) wanted.set(`rip:${rip}`, ['rule', 'add', 'pref', String(this.priority + 1), 'from', rip, 'lookup', T, 'protocol', P]);
    }
    const have = new Map([...this.keyed('vip:'), ...this.keyed('neigh:'), ...this.keyed('rip:')]);
    const newVips = vips.filter((v) => !have.has(`vip:${v}`));
    await this.checkVips(newVips); // throws before anything changes

    // Removals first, proxy entries before their route; then additions, routes before the
    // proxy entries that need them (arp.c answers only for a target routed via another device).
    const order = (k: string) => (k.startsWith('neigh:') ? 0 : k.startsWith('vip:') ? 1 : 2);
    const removals = [...have.keys()].filter((k) => !wanted.has(k)).sort((a, b) => order(a) - order(b));
    const additions = [...wanted.keys()].filter((k) => !have.has(k)).sort((a, b) => order(b) - order(a));
    const done: { key: string; entry: Extract<Entry, { t: 'ip' }>; removed: boolean }[] = [];
    const j = this.journal;
    try {
      for (const key of removals) {
        const entry = have.get(key)!;
        await runAsync(undoEntry(entry, this.log));
        j.entries.splice(j.entries.indexOf(entry), 1);
        this.save();
        done.push({ key, entry, removed: true });
      }
      for (const key of additions) {
        await this.add(wanted.get(key)!, key);
        done.push({ key, entry: j.entries[j.entries.length - 1] as Extract<Entry, { t: 'ip' }>, removed: false });
      }
    } catch (err) {
      // Put back this call's changes, newest first, so the host matches the old configuration.
      for (const d of done.reverse()) {
        try {
          if (d.removed) await this.add(d.entry.argv, d.key);
          else {
            await runAsync(undoEntry(d.entry, this.log));
            j.entries.splice(j.entries.indexOf(d.entry), 1);
            this.save();
          }
        } catch {
          // the journal still lists whatever could not be put back; teardown() retries it
        }
      }
      throw err;
    }
  }
}

async function runAsyncResult(gen: Generator<string[], WasmvsError | undefined, IpResult>): Promise<WasmvsError | undefined> {
  let step = gen.next();
  while (!step.done) step = gen.next(await ipAsync(step.value));
  return step.value;
}

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new WasmvsError('WASMVS_FILE', `${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Removes rules and routes that carry our protocol tag for this TUN, table and priorities,
 * whether or not a journal listed them (a journal lost or written by an older version).
 */
async function sweepTags(tun: string, table: number, priority: number, log: (line: string) => void): Promise<void> {
  const P = String(HOSTNET_PROTO);
  const rules = await ipJson<{ priority: number; iif?: string; src?: string; srclen?: number; ipproto?: string; table?: string; goto?: number; nop?: null; protocol?: string }>(['-4', 'rule', 'show']);
  const mine = rules.filter((r) => r.protocol === P && (
    (r.priority === priority && (r.iif === tun || (r.iif === 'lo' && r.ipproto === 'icmp')) && r.goto === priority + 2) ||
    (r.priority === priority + 1 && r.table === String(table)) ||
    (r.priority === priority + 2 && 'nop' in r)));
  // Selection rules first, the anchor last, so a goto never points past a missing target.
  mine.sort((a, b) => rank(a.priority) - rank(b.priority));
  function rank(p: number): number {
    return p === priority + 1 ? 0 : p === priority ? 1 : 2;
  }
  for (const r of mine) {
    const argv = ['rule', 'del', 'pref', String(r.priority)];
    if (r.iif) argv.push('iif', r.iif);
    if (r.src && r.src !== 'all') argv.push('from', r.srclen !== undefined && r.srclen !== 32 ? `${r.src}/${r.srclen}` : r.src);
    if (r.ipproto) argv.push('ipproto', r.ipproto);
    if (r.goto !== undefined) argv.push('goto', String(r.goto));
    else if ('nop' in r) argv.push('nop');
    else argv.push('lookup', String(table));
    argv.push('protocol', P);
    const res = await ipAsync(argv);
    if (!res.ok && !ALREADY_GONE.test(res.stderr)) throw ipError(argv, res);
    log(`ip ${argv.join(' ')}  # tagged, left by a stopped gateway`);
  }
  // The rp_filter address cannot carry a tag in iproute2 6.1; on our TUN it can only be ours.
  const addr = await ipAsync(['-j', '-4', 'addr', 'show', 'dev', tun]);
  if (addr.ok && addr.stdout.trim()) {
    const [link] = JSON.parse(addr.stdout) as { addr_info?: { local?: string; prefixlen?: number }[] }[];
    if ((link?.addr_info ?? []).some((a) => `${a.local}/${a.prefixlen}` === TUN_RPF_ADDRESS)) {
      const argv = ['addr', 'del', TUN_RPF_ADDRESS, 'dev', tun];
      const res = await ipAsync(argv);
      if (!res.ok && !ALREADY_GONE.test(res.stderr)) throw ipError(argv, res);
      log(`ip ${argv.join(' ')}  # left by a stopped gateway`);
    }
  }
  const routes = await ipJson<{ dst: string; dev?: string; table?: string }>(['-4', 'route', 'show', 'table', 'all', 'proto', P]);
  for (const r of routes) {
    if (r.dev !== tun) continue;
    const argv = ['route', 'del', r.dst, 'dev', tun, 'table', r.table ?? 'main', 'proto', P];
    const res = await ipAsync(argv);
    if (!res.ok && !ALREADY_GONE.test(res.stderr)) throw ipError(argv, res);
    log(`ip ${argv.join(' ')}  # tagged, left by a stopped gateway`);
  }
}
