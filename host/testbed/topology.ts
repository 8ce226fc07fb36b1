// A network-namespace testbed: a client, a director and real servers joined by veth pairs,
// every address in 198.18.0.0/15 (RFC 2544's benchmarking range), nothing on the host's own
// interfaces, routes or sysctls. `wasmvs demo`, the end-to-end tests and the gateway benchmark
// all build it; the gateway itself runs in the director namespace and routes the VIPs into its
// TUN (the testbed gives the VIPs no link and leaves ip_forward off there).
//
//   client ns                 director ns                               real-server nss
//   eth0 198.18.0.2/24  ===  client0 198.18.0.1/24
//        198.18.0.3/24                 rsbr 198.18.1.1/24 (bridge) ---- rs1: eth0 198.18.1.2/24
//   198.18.0.0/15 via .0.1               |  ports: rs1 rs2 rs3 rta  ---- rs2: eth0 198.18.1.3/24
//                                        |                          ---- rs3: eth0 198.18.1.4/24
//
// With `narrow: { server: K, mtu: M }` real server K sits instead behind two routers joined by
// an M-byte link, every other link staying at 1500 (director routes 198.18.3.0/24 via .1.254):
//
//   rsbr --- rta eth0 198.18.1.254 | eth1 198.18.2.1 ==MTU M== rtb eth0 198.18.2.2 | eth1 198.18.3.1 --- rsK eth0 198.18.3.(K+1)
//
// Why two routers: each end of the narrow link is the one that emits "fragmentation needed"
// (ICMP type 3 code 4, RFC 1191) for packets entering it, so neither end may be the director or
// the real server. Were the real server itself on the narrow link, its TCP would advertise an
// MSS of M-40 and no ICMP would ever be sent; were the director on it, the director's kernel
// would emit the ICMP after the NAT rewrite, quoting an address the client never used.
//   - Client -> real server (uploads): rta emits the ICMP, source 198.18.1.254, destination the
//     client's address, quoting client:port -> RIP:rport (the packet after DNAT). It reaches the
//     director from the real-server LAN (rsbr) with a source that is no real server: a gateway
//     selecting real-server replies by source address does not see it; one selecting by
//     incoming interface (rsbr) does, and must translate it (ip_vs_nat_icmp's outbound case)
//     into VIP:vport for the client's socket to learn the MTU.
//   - Real server -> client (downloads): rtb emits the ICMP, source 198.18.3.1, to the real
//     server's own address quoting its own packet; it never crosses the director.
// Once a host has learned the narrow MTU toward a peer (a route exception, 10 minutes), it
// also advertises the smaller MSS to that peer (Linux derives advmss from the route's MTU): a
// real server that has learned it from a download makes the next upload from that client send
// small segments and no ICMP is emitted. Test uploads first, use the other client address, or
// call flushPathMtu() between cases.
//
// Namespaces are named wvs<pid>-<n>-<role> (pid of the creating process, n its testbed count):
// Testbed.sweep() removes those of dead creators and nothing else. Cleanup runs on destroy(),
// and from process handlers on exit, SIGINT, SIGTERM and uncaught errors (synchronously).
import { execFile, execFileSync, spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { EventEmitter } from 'node:events';
import { WasmvsError } from '../errors.js';

/** The VIP the demo and the tests use; it belongs to no link (the gateway routes it). */
export const TESTBED_VIP = '198.18.100.10';
/** A second VIP for tests that need two. */
export const TESTBED_VIP2 = '198.18.100.11';
export const CLIENT_ADDRESSES = ['198.18.0.2', '198.18.0.3'] as const;
export const DIRECTOR_CLIENT_ADDRESS = '198.18.0.1';
export const DIRECTOR_SERVER_ADDRESS = '198.18.1.1';
export const MAX_SERVERS = 3;
const ROUTER_A_LAN = '198.18.1.254';
const ROUTER_A_NARROW = '198.18.2.1';
const ROUTER_B_NARROW = '198.18.2.2';
const ROUTER_B_FAR = '198.18.3.1';

// Only the roles a testbed creates, so a like-named namespace of another tool is never swept.
const NS_PATTERN = /^wvs(\d+)-(\d+)-(client|director|rta|rtb|rs[1-9])$/;
const KILL_GRACE_MS = 2000;
const COMMAND_TIMEOUT_MS = 15000;

export interface TestbedOptions {
  /** Real servers, 1 to 3 (default 2). */
  servers?: number;
  /** Put one real server (1-based) behind two routers joined by a link of this MTU. */
  narrow?: { server: number; mtu: number };
  /** false: ethtool -K tx off tso off gso off on the director's links, so receivers verify
   *  every checksum (veth otherwise trusts CHECKSUM_PARTIAL). Default true (left as created). */
  offloads?: boolean;
  /** Log every command run (to this function), e.g. for `wasmvs demo --verbose`. */
  log?: (line: string) => void;
}

export interface ServerNode {
  /** rs1, rs2, rs3 */
  name: string;
  ns: string;
  address: string;
  /** The real server's own interface (its MTU is 1500 even behind the narrow link). */
  iface: 'eth0';
  /** The MTU of the narrowest link on its path to the director. */
  pathMtu: number;
}

export interface ExecOptions {
  /** Milliseconds before the command is killed (default 15 s). */
  timeoutMs?: number;
  /** Bytes written to the command's stdin. */
  input?: string | Uint8Array;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Lines kept per stream for waitForLine and error messages (default 2000). */
  keepLines?: number;
}

/** A command run in a namespace that failed: its argv, exit status and stderr. */
export class TestbedCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly stderr: string,
    readonly stdout: string,
  ) {
    const why = signal ? `killed by ${signal}` : `exit status ${exitCode}`;
    super(`${argv.join(' ')}: ${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
    this.name = 'TestbedCommandError';
  }
}

/** Lines of one stream of a spawned process. */
export class LineReader extends EventEmitter {
  readonly lines: string[] = [];
  /** Lines dropped from the front once `keep` is exceeded. */
  dropped = 0;
  constructor(private readonly keep: number) {
    super();
  }
  /** @internal */
  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.keep) {
      this.lines.shift();
      this.dropped++;
    }
    this.emit('line', line);
  }
  text(): string {
    return this.lines.join('\n');
  }
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A process this testbed started in one of its namespaces. */
export class NsProcess {
  readonly pid: number;
  readonly stdout: LineReader;
  readonly stderr: LineReader;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>;
  exit: ProcessExit | undefined;

  constructor(
    readonly ns: string,
    readonly argv: readonly string[],
    private readonly child: ChildProcess,
    keepLines: number,
  ) {
    if (child.pid === undefined) throw new Error('no pid'); // callers check before
    this.pid = child.pid;
    this.stdout = new LineReader(keepLines);
    this.stderr = new LineReader(keepLines);
    createInterface({ input: child.stdout!, crlfDelay: Infinity }).on('line', (l) => this.stdout.push(l));
    createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', (l) => this.stderr.push(l));
    this.exited = new Promise((resolve) => {
      // 'close' comes after both streams ended, so every line has been read by then.
      child.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The process's stdin (spawned with a pipe). */
  get stdin(): NodeJS.WritableStream {
    return this.child.stdin!;
  }

  /**
   * Sends a signal to this process (by its PID; `ip netns exec` execs the program in place, so
   * the PID is the program's) and to its process group, which it leads: helpers it forked die
   * with it. Returns false when it had already exited.
   */
  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (!this.running) return false;
    return signalGroup(this.pid, signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs = KILL_GRACE_MS): Promise<ProcessExit> {
    if (!this.running) return this.exit!;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  /**
   * Resolves with the first line of `stream` (stdout by default), already printed or still to
   * come, that matches `pattern`. Rejects after `timeoutMs`, or as soon as the process exits
   * without printing one, naming the process and quoting its stderr.
   */
  waitForLine(pattern: RegExp, timeoutMs = 10000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpMatchArray> {
    const reader = this[stream];
    for (const line of reader.lines) {
      const m = line.match(pattern);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (): void => {
        done = true;
        clearTimeout(timer);
        reader.off('line', onLine);
      };
      const onLine = (line: string): void => {
        const m = line.match(pattern);
        if (m && !done) {
          finish();
          resolve(m);
        }
      };
      const fail = (why: string): void => {
        if (done) return;
        finish();
        const err = this.stderr.text().trim();
        reject(new Error(`${this.describe()}: ${why} waiting for ${pattern}${err ? `; stderr: ${err.slice(-2000)}` : ''}`));
      };
      const timer = setTimeout(() => fail(`no line within ${timeoutMs} ms`), timeoutMs);
      reader.on('line', onLine);
      void this.exited.then((e) => fail(`exited (${e.signal ?? `status ${e.code}`})`));
    });
  }

  describe(): string {
    return `[${this.ns}] ${this.argv.join(' ')} (pid ${this.pid})`;
  }
}

/**
 * Signals the group the process leads (which includes the process itself), or the process
 * alone when it has no group of its own. Once, never both: a program that treats a second
 * SIGTERM as "exit now" (the gateway) must see one signal per kill().
 */
function signalGroup(pid: number, signal: NodeJS.Signals): boolean {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, signal);
      return true;
    } catch {
      // ESRCH: gone already (or no group of that id)
    }
  }
  return false;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Root, as the testbed needs (CAP_NET_ADMIN and CAP_SYS_ADMIN for `ip netns`). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

function run(argv: readonly string[], opts: ExecOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      {
        encoding: 'utf8',
        timeout: opts.timeoutMs ?? COMMAND_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: 64 << 20,
        env: opts.env,
        cwd: opts.cwd,
      },
      (error, stdout, stderr) => {
        if (error) {
          const e = error as NodeJS.ErrnoException & { code?: unknown; signal?: NodeJS.Signals | null };
          const code = typeof e.code === 'number' ? e.code : null;
          const detail = stderr || (typeof e.code === 'string' ? `${e.code} ${e.message}` : '');
          reject(new TestbedCommandError(argv, code, e.signal ?? null, detail, stdout));
        } else {
          resolve(stdout);
        }
      },
    );
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

function runSync(argv: readonly string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: COMMAND_TIMEOUT_MS,
  });
}

function listNamespaces(): string[] {
  let out: string;
  try {
    out = runSync(['ip', 'netns', 'list']);
  } catch {
    return [];
  }
  // "name (id: 3)" or just "name"
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

/** Kills (SIGKILL, by PID) whatever still runs in namespace `ns`, then deletes it. Sync. */
function removeNamespaceSync(ns: string): void {
  // A namespace whose mount is deleted lives on while a process is inside it, with its veths.
  for (let attempt = 0; attempt < 3; attempt++) {
    let pids: number[] = [];
    try {
      pids = runSync(['ip', 'netns', 'pids', ns])
        .split(/\s+/)
        .filter(Boolean)
        .map(Number)
        .filter((p) => Number.isInteger(p) && p > 1 && p !== process.pid);
    } catch {
      break; // no such namespace
    }
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // exited meanwhile
      }
    }
    sleepSync(50);
  }
  try {
    runSync(['ip', 'netns', 'delete', ns]);
  } catch {
    // already gone
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// --- process-wide cleanup ------------------------------------------------------------------

const live = new Set<Testbed>();
let handlersInstalled = false;
let testbedCount = 0;

function destroyAllSync(): void {
  for (const tb of [...live]) tb.destroySync();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', destroyAllSync);
  // The monitor variant runs before Node's own handling without replacing it: the error is
  // still printed and the exit status is still 1 (a plain 'uncaughtException' listener would
  // swallow the crash). 'exit' then finds nothing left to do.
  process.on('uncaughtExceptionMonitor', destroyAllSync);
  // Not SIGHUP: a gateway run in this process reloads on it.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const handler = (): void => {
      // When somebody else also listens (the demo stopping its gateway first), the cleanup
      // order and the exit are theirs: they call destroy(), and 'exit' stays our backstop.
      if (process.listenerCount(signal) > 1) return;
      destroyAllSync();
      // Alone: re-raise, so the status says "killed by SIGINT" as a shell expects.
      process.off(signal, handler);
      process.kill(process.pid, signal);
    };
    process.on(signal, handler);
  }
}

// --- the testbed ---------------------------------------------------------------------------

export class Testbed {
  /** wvs<pid>-<n>: every namespace of this testbed is `${prefix}-<role>`. */
  readonly prefix: string;
  readonly client: { ns: string; iface: 'eth0'; addresses: readonly string[] };
  readonly director: {
    ns: string;
    /** Leg to the client net (198.18.0.1/24). */
    clientIface: 'client0';
    clientAddress: string;
    /** Bridge over the real-server legs (198.18.1.1/24). */
    serverIface: 'rsbr';
    serverAddress: string;
    /** Every link of the director (the ones offloads:false turns off). */
    ifaces: readonly string[];
  };
  readonly servers: readonly ServerNode[];
  /** Router namespaces (rta, rtb) when a server sits behind the narrow link. */
  readonly routers: readonly string[];
  readonly vip = TESTBED_VIP;
  readonly options: Readonly<Required<Pick<TestbedOptions, 'servers' | 'offloads'>>> & Pick<TestbedOptions, 'narrow'>;

  private readonly namespaces: string[] = [];
  private readonly processes = new Set<NsProcess>();
  private readonly log: (line: string) => void;
  private destroyed = false;

  private constructor(options: TestbedOptions) {
    const servers = options.servers ?? 2;
    if (!Number.isInteger(servers) || servers < 1 || servers > MAX_SERVERS) {
      throw new WasmvsError('WASMVS_BAD_OPTION', `testbed servers must be an integer from 1 to ${MAX_SERVERS}, not ${String(options.servers)}`);
    }
    const narrow = options.narrow;
    if (narrow !== undefined) {
      if (!Number.isInteger(narrow.server) || narrow.server < 1 || narrow.server > servers) {
        throw new WasmvsError('WASMVS_BAD_OPTION', `testbed narrow.server must name one of the ${servers} real servers (1-${servers}), not ${String(narrow.server)}`);
      }
      // 576 is the least an IPv4 host must accept (RFC 791); 1500 would not be narrow.
      if (!Number.isInteger(narrow.mtu) || narrow.mtu < 576 || narrow.mtu >= 1500) {
        throw new WasmvsError('WASMVS_BAD_OPTION', `testbed narrow.mtu must be an integer from 576 to 1499, not ${String(narrow.mtu)}`);
      }
    }
    if (options.offloads !== undefined && typeof options.offloads !== 'boolean') {
      throw new WasmvsError('WASMVS_BAD_OPTION', 'testbed offloads must be true or false');
    }
    this.options = { servers, offloads: options.offloads ?? true, narrow };
    this.log = options.log ?? (() => {});
    this.prefix = `wvs${process.pid}-${testbedCount++}`;
    const p = this.prefix;
    this.client = { ns: `${p}-client`, iface: 'eth0', addresses: CLIENT_ADDRESSES };
    const serverList: ServerNode[] = [];
    for (let i = 1; i <= servers; i++) {
      const behind = narrow?.server === i;
      serverList.push({
        name: `rs${i}`,
        ns: `${p}-rs${i}`,
        address: behind ? `198.18.3.${i + 1}` : `198.18.1.${i + 1}`,
        iface: 'eth0',
        pathMtu: behind ? narrow!.mtu : 1500,
      });
    }
    this.servers = serverList;
    this.routers = narrow ? [`${p}-rta`, `${p}-rtb`] : [];
    const directorIfaces = ['client0', 'rsbr', ...serverList.filter((s) => s.pathMtu === 1500).map((s) => s.name)];
    if (narrow) directorIfaces.push('rta');
    this.director = {
      ns: `${p}-director`,
      clientIface: 'client0',
      clientAddress: DIRECTOR_CLIENT_ADDRESS,
      serverIface: 'rsbr',
      serverAddress: DIRECTOR_SERVER_ADDRESS,
      ifaces: directorIfaces,
    };
  }

  /**
   * Builds the topology (as root). On any failure everything made so far is removed and the
   * error is thrown: a WasmvsError WASMVS_NOT_ROOT or WASMVS_BAD_OPTION before anything is
   * made, WASMVS_HOST_NET naming the `ip`/`ethtool` command that failed.
   */
  static async create(options: TestbedOptions = {}): Promise<Testbed> {
    const tb = new Testbed(options);
    if (!isRoot()) {
      throw new WasmvsError('WASMVS_NOT_ROOT', 'the testbed needs root: it creates network namespaces and veth pairs');
    }
    installHandlers();
    // What a SIGKILLed earlier run left behind goes first, as keepalived cleans up at start.
    Testbed.sweep();
    live.add(tb);
    try {
      await tb.build();
    } catch (e) {
      await tb.destroy();
      if (e instanceof TestbedCommandError) {
        throw new WasmvsError('WASMVS_HOST_NET', `testbed setup failed: ${e.message}`, { cause: e });
      }
      throw e;
    }
    return tb;
  }

  /** Every namespace of this testbed. */
  get allNamespaces(): string[] {
    return [this.client.ns, this.director.ns, ...this.routers, ...this.servers.map((s) => s.ns)];
  }

  private async ip(ns: string, ...args: string[]): Promise<void> {
    const argv = ['ip', '-n', ns, ...args];
    this.log(argv.join(' '));
    await run(argv);
  }

  private async sysctl(ns: string, setting: string, optional = false): Promise<void> {
    const argv = ['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', setting];
    this.log(argv.join(' '));
    try {
      await run(argv);
    } catch (e) {
      if (!optional) throw e;
    }
  }

  private async addNamespace(ns: string): Promise<void> {
    const argv = ['ip', 'netns', 'add', ns];
    this.log(argv.join(' '));
    await run(argv);
    this.namespaces.push(ns);
    await this.ip(ns, 'link', 'set', 'lo', 'up');
    // Only 198.18.0.0/15 addresses: no IPv6 link-local ones on our links (nor router
    // solicitations and MLD reports in captures). Set before any link exists; the sysctl is
    // absent when IPv6 is not built in, which is fine.
    await this.sysctl(ns, 'net.ipv6.conf.all.disable_ipv6=1', true);
    await this.sysctl(ns, 'net.ipv6.conf.default.disable_ipv6=1', true);
  }

  /** A veth pair created directly in its two namespaces (nothing ever appears on the host). */
  private async veth(nsA: string, nameA: string, nsB: string, nameB: string, mtu?: number): Promise<void> {
    const m = mtu === undefined ? [] : ['mtu', String(mtu)];
    await this.ip(nsA, 'link', 'add', nameA, ...m, 'type', 'veth', 'peer', 'name', nameB, ...m, 'netns', nsB);
  }

  private async build(): Promise<void> {
    const { client, director, servers, options } = this;
    for (const ns of this.allNamespaces) await this.addNamespace(ns);

    // Client net.
    await this.veth(director.ns, 'client0', client.ns, 'eth0');
    await this.ip(director.ns, 'addr', 'add', `${director.clientAddress}/24`, 'dev', 'client0');
    await this.ip(director.ns, 'link', 'set', 'client0', 'up');
    for (const a of client.addresses) await this.ip(client.ns, 'addr', 'add', `${a}/24`, 'dev', 'eth0');
    await this.ip(client.ns, 'link', 'set', 'eth0', 'up');
    // The whole /15 (VIPs included) via the director; the client's own /24 stays connected.
    await this.ip(client.ns, 'route', 'add', '198.18.0.0/15', 'via', director.clientAddress, 'src', client.addresses[0]!);

    // Real-server LAN: a bridge in the director, one port per directly attached server.
    await this.ip(director.ns, 'link', 'add', 'rsbr', 'type', 'bridge', 'forward_delay', '0', 'stp_state', '0');
    await this.ip(director.ns, 'addr', 'add', `${director.serverAddress}/24`, 'dev', 'rsbr');
    await this.ip(director.ns, 'link', 'set', 'rsbr', 'up');
    for (const s of servers) {
      if (s.pathMtu !== 1500) continue;
      await this.veth(director.ns, s.name, s.ns, 'eth0');
      await this.ip(director.ns, 'link', 'set', s.name, 'master', 'rsbr');
      await this.ip(director.ns, 'link', 'set', s.name, 'up');
      await this.ip(s.ns, 'addr', 'add', `${s.address}/24`, 'dev', 'eth0');
      await this.ip(s.ns, 'link', 'set', 'eth0', 'up');
      await this.ip(s.ns, 'route', 'add', 'default', 'via', director.serverAddress);
    }

    if (options.narrow) {
      const [rta, rtb] = this.routers as [string, string];
      const s = servers[options.narrow.server - 1]!;
      const mtu = options.narrow.mtu;
      await this.veth(director.ns, 'rta', rta, 'eth0');
      await this.ip(director.ns, 'link', 'set', 'rta', 'master', 'rsbr');
      await this.ip(director.ns, 'link', 'set', 'rta', 'up');
      await this.ip(rta, 'addr', 'add', `${ROUTER_A_LAN}/24`, 'dev', 'eth0');
      await this.ip(rta, 'link', 'set', 'eth0', 'up');
      await this.veth(rta, 'eth1', rtb, 'eth0', mtu);
      await this.ip(rta, 'addr', 'add', `${ROUTER_A_NARROW}/24`, 'dev', 'eth1');
      await this.ip(rta, 'link', 'set', 'eth1', 'up');
      await this.ip(rtb, 'addr', 'add', `${ROUTER_B_NARROW}/24`, 'dev', 'eth0');
      await this.ip(rtb, 'link', 'set', 'eth0', 'up');
      await this.veth(rtb, 'eth1', s.ns, 'eth0');
      await this.ip(rtb, 'addr', 'add', `${ROUTER_B_FAR}/24`, 'dev', 'eth1');
      await this.ip(rtb, 'link', 'set', 'eth1', 'up');
      await this.ip(s.ns, 'addr', 'add', `${s.address}/24`, 'dev', 'eth0');
      await this.ip(s.ns, 'link', 'set', 'eth0', 'up');
      await this.ip(s.ns, 'route', 'add', 'default', 'via', ROUTER_B_FAR);
      await this.ip(rta, 'route', 'add', 'default', 'via', director.serverAddress);
      await this.ip(rta, 'route', 'add', '198.18.3.0/24', 'via', ROUTER_B_NARROW);
      await this.ip(rtb, 'route', 'add', 'default', 'via', ROUTER_A_NARROW);
      await this.ip(director.ns, 'route', 'add', '198.18.2.0/24', 'via', ROUTER_A_LAN);
      await this.ip(director.ns, 'route', 'add', '198.18.3.0/24', 'via', ROUTER_A_LAN);
      // The routers are plain routers; they are not the system under test.
      await this.sysctl(rta, 'net.ipv4.ip_forward=1');
      await this.sysctl(rtb, 'net.ipv4.ip_forward=1');
    }

    if (!options.offloads) {
      // Software checksums on every director link, the bridge included (its features follow
      // its ports, but say it outright), so a receiver verifies each checksum the director's
      // path produced (see TOOLCHAIN.md: veth trusts CHECKSUM_PARTIAL).
      for (const iface of director.ifaces) {
        const argv = ['ip', 'netns', 'exec', director.ns, 'ethtool', '-K', iface, 'tx', 'off', 'tso', 'off', 'gso', 'off'];
        this.log(argv.join(' '));
        try {
          await run(argv);
        } catch (e) {
          if (e instanceof TestbedCommandError && /ENOENT|not found/i.test(e.stderr)) {
            throw new WasmvsError('WASMVS_HOST_NET', 'testbed offloads:false needs ethtool (Debian: apt-get install -y ethtool)', { cause: e });
          }
          throw e;
        }
      }
    }
    // Settle the bridge ports: forward_delay 0 forwards at once, but wait for carrier so the
    // first packet a caller sends is not lost to a link still coming up.
    await this.waitLinksUp();
  }

  private async waitLinksUp(): Promise<void> {
    const deadline = Date.now() + 5000;
    for (const ns of this.allNamespaces) {
      for (;;) {
        const out = await run(['ip', '-n', ns, '-o', 'link', 'show', 'up']);
        // A veth in state LOWERLAYERDOWN/DOWN has its peer not up yet; bridges report UP.
        const notReady = out.split('\n').filter((l) => /\bstate (DOWN|LOWERLAYERDOWN|UNKNOWN)\b/.test(l) && !/^\d+: lo[:@]/.test(l));
        if (notReady.length === 0) break;
        if (Date.now() > deadline) {
          throw new WasmvsError('WASMVS_HOST_NET', `testbed links in ${ns} did not come up: ${notReady.join('; ')}`);
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** Resolves a role (client, director, rs1, rta ...) or a full name to one of our namespaces. */
  nsName(ns: string): string {
    const full = ns.startsWith(`${this.prefix}-`) ? ns : `${this.prefix}-${ns}`;
    if (!this.allNamespaces.includes(full)) {
      throw new WasmvsError('WASMVS_BAD_OPTION', `no namespace ${JSON.stringify(ns)} in testbed ${this.prefix} (have ${this.allNamespaces.join(', ')})`);
    }
    return full;
  }

  private checkLive(): void {
    if (this.destroyed) throw new WasmvsError('WASMVS_BAD_OPTION', `testbed ${this.prefix} is destroyed`);
  }

  /**
   * Runs argv in namespace `ns` (`ip netns exec NS ...`, no shell) and resolves with its
   * stdout; rejects with a TestbedCommandError quoting stderr on a non-zero status.
   */
  exec(ns: string, argv: readonly string[], opts: ExecOptions = {}): Promise<string> {
    this.checkLive();
    if (argv.length === 0) throw new WasmvsError('WASMVS_BAD_OPTION', 'exec needs a command');
    return run(['ip', 'netns', 'exec', this.nsName(ns), ...argv], opts);
  }

  /**
   * Starts argv in namespace `ns` as its own process group. The handle's kill/stop signal only
   * that group; destroy() stops every process still running.
   */
  spawn(ns: string, argv: readonly string[], opts: SpawnOptions = {}): NsProcess {
    this.checkLive();
    if (argv.length === 0) throw new WasmvsError('WASMVS_BAD_OPTION', 'spawn needs a command');
    const full = this.nsName(ns);
    const child = spawnChild('ip', ['netns', 'exec', full, ...argv], {
      stdio: ['pipe', 'pipe', 'pipe'],
      // Its own group: Ctrl-C on a terminal reaches us (we clean up), not it half-way; and a
      // group kill reaches what it forks.
      detached: true,
      env: opts.env,
      cwd: opts.cwd,
    });
    if (child.pid === undefined) {
      throw new WasmvsError('WASMVS_HOST_NET', `could not start ip netns exec ${full} ${argv.join(' ')}`);
    }
    child.on('error', () => {}); // reported through 'close'
    const proc = new NsProcess(full, argv, child, opts.keepLines ?? 2000);
    this.processes.add(proc);
    void proc.exited.then(() => this.processes.delete(proc));
    return proc;
  }

  /** The director as a plain router (ip_forward on in its namespace), for the direct target. */
  async enableForwarding(): Promise<void> {
    this.checkLive();
    await this.sysctl(this.director.ns, 'net.ipv4.ip_forward=1');
  }

  /** Forgets learned path MTUs (route exceptions) in every namespace: `ip route flush cache`. */
  async flushPathMtu(): Promise<void> {
    this.checkLive();
    for (const ns of this.allNamespaces) await this.ip(ns, 'route', 'flush', 'cache');
  }

  /** Stops every process started here (SIGTERM, SIGKILL after the grace), deletes every namespace. */
  async destroy(graceMs = KILL_GRACE_MS): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.processes].map((p) => p.stop(graceMs)));
    for (const ns of this.namespaces) removeNamespaceSync(ns);
    live.delete(this);
  }

  /** As destroy(), synchronously and without a grace period (exit and signal handlers). */
  destroySync(): void {
    if (!live.has(this)) return;
    this.destroyed = true;
    for (const p of this.processes) p.kill('SIGKILL');
    for (const ns of this.namespaces) removeNamespaceSync(ns);
    live.delete(this);
  }

  /**
   * Deletes namespaces left by testbeds whose creating process is dead (a SIGKILLed run),
   * first killing what still runs in them. Namespaces of live processes and any name not of
   * our wvs<pid>-<n>-<role> form are never touched. Returns the names deleted.
   */
  static sweep(): string[] {
    if (!isRoot()) return [];
    const removed: string[] = [];
    for (const ns of listNamespaces()) {
      const m = NS_PATTERN.exec(ns);
      if (!m) continue;
      const pid = Number(m[1]);
      if (pid === process.pid || pidAlive(pid)) continue;
      removeNamespaceSync(ns);
      removed.push(ns);
    }
    return removed;
  }
}
