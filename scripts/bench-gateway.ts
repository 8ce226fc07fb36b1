// npm run bench:gateway [-- --quick] [-- --json FILE] [-- --runs N] [-- --seconds S] [-- --veth-gro]
//                       [-- --targets a,b] [-- --tests x,y] [-- --gateway-args "ARGS"]
//
// The wasmvs gateway against the kernel's own NAT on the end-to-end tests' namespace topology
// (host/testbed/topology.ts: client, director, two real servers, 198.18.0.0/15 only), in one
// run, as root. Not a test: it measures and prints; it fails only when it cannot measure.
//
// Targets, interleaved round by round (round r runs every target once, in the same order, so
// the machine's drift falls on all of them alike):
//   direct                  the client to real server 1 through the director as a plain router
//                           (ip_forward=1, no NAT): the physical limit of this topology. From the
//                           client's second address (198.18.0.3, a /24 route in the client
//                           namespace): TIME_WAIT entries that the VIP runs leave on the real
//                           server carry the timestamp offset of the VIP's 4-tuple, and a
//                           direct SYN on the same 4-tuple would be PAWS-rejected (a 1 s stall).
//   kernel-nat              nftables DNAT in the director, `dnat to numgen inc mod 3 map
//                           { 0 : RS1, 1 : RS2, 2 : RS2 }` (weights 1:2, like the gateway's wrr),
//                           conntrack flushed (`conntrack -F`) before every run.
//   kernel-nat-offload-off  the same with the director's veths at `ethtool -K tx off tso off gso
//                           off` (bulk tests only): the peer of `wasmvs --no-offload`.
//   wasmvs                  `wasmvs gateway` (the real CLI, host/testbed/gateway.ts) with offload.
//   wasmvs-no-offload       `wasmvs gateway --no-offload`, director veths left as created (its
//                           bulk ratio is taken against kernel-nat-offload-off).
// Levers, extra targets measured in the same rounds (README, "Gateway benchmark"):
//   wasmvs-napi-thread      `wasmvs gateway --napi-thread` with offload (bulk tests only).
//   kernel-nat-udp-gro,     kernel-nat and wasmvs with the director's client leg doing what a
//   wasmvs-udp-gro          NIC does for a UDP forwarder: `ethtool -K client0 gro on
//                           rx-udp-gro-forwarding on` and its NAPI threaded, so datagrams that
//                           queue while it polls merge into UDP super-packets (udp_64 only; the
//                           ratio is taken between the two).
// Services: VIP 198.18.100.10:80/tcp over both real servers (wrr 1:2); VIP:5201 tcp and udp to
// real server 1 only (iperf3's control and data connections must meet the same server).
//
// Tests (each run lasts --seconds, 10 by default):
//   http_short            wrk -t2 -c16 -H 'Connection: close': a new connection per request, req/s
//   http_keepalive        wrk -t2 -c16 --latency, req/s; http_keepalive_p99_ms from the same run
//   tcp_bulk_1, _4        iperf3 -t S (-P 4), client -> real server, Gbit/s at the receiver
//   udp_64                iperf3 -u -b 0 -l 64 (64-byte payloads), datagrams/s the server
//                         received, with the loss iperf3 reports
// Real servers: nginx, 2 workers, `listen ADDR:80 reuseport` (one shared listen socket gives
// uneven, bimodal results), a 612-byte static page; iperf3 -s on real server 1.
//
// CPU, and how kernel time is attributed. This kernel uses tick-based accounting without
// CONFIG_IRQ_TIME_ACCOUNTING: a tick that lands in a softirq is counted in /proc/stat's softirq
// column AND charged to whatever task was running. veth delivers in the sender's context
// (veth_xmit -> netif_rx, the NET_RX softirq runs at the sender's local_bh_enable), so the
// director's forwarding, conntrack and NAT for a packet wrk sends is charged to wrk, and a
// packet the gateway writes into its TUN is forwarded in the gateway's write(). No per-process
// figure isolates "the director" for kernel NAT. So, fairly for every target:
//   - topology CPU: the machine's busy time (/proc/stat user+nice+system+irq+softirq) minus
//     what processes outside the topology used; divided by the packets the endpoints received
//     (the IpExt ECN counters of /proc/net/netstat in the client's and the servers' namespaces,
//     which count GRO segments, not super-packets), it is the whole path's cost per packet;
//   - director µs/packet = topology CPU per packet minus the direct target's, from the same
//     round and test: what NAT adds over plain routing (the endpoints' work is the same for
//     every target; routing itself is in direct's figure, so the difference is the NAT's own
//     cost, kernel NAT's conntrack and DNAT or the gateway's TUN round trip and engine);
//   - for the gateway also its own process time (utime+stime of its process, all threads) per
//     packet, which includes the forwarding of what it writes (softirq in its write()), plus
//     its TUN's NAPI kernel thread (napi/wvs0-ID, threaded NAPI), where that forwarding runs
//     instead when it is on. NAPI threads of the director's devices count as the director's.
//   "Where the CPU went" also gives the gateway's user time (the rest of its time is system
//   time in its TUN calls), the segments per skb the endpoints received (GRO coalescing) and
//   the mean bytes per TUN packet (super-packet sizes, /proc/net/dev of the director).
//   "Where the CPU went" is per role (client, director, servers: utime+stime of every process
//   in the namespace; softirq run in their context included), softirq (machine-wide, already
//   inside those), other processes, idle, as a percentage of one core (the machine has 2).
// Each window is the run minus its first second and last half second (start-up and tear-down).
//
// Noise. Other work on the machine (other processes' utime+stime, including children they
// reaped during the window: a test runner's short-lived children land in its cutime; a child
// reaped in the window brings all its life's CPU, so this errs towards "noisy") above
// 15% of a core marks a run noisy; it is repeated once and the less noisy attempt
// kept, still marked noisy if all were. The table shows a run's noise count per target.
//
// Install: the Debian packages nginx, wrk, iperf3, nftables, conntrack and ethtool are
// installed (apt-get update first) when one of their programs is missing. Teardown: every
// process started here is stopped by PID (the testbed tracks them), the gateway by SIGTERM
// so it removes its host changes, then the namespaces are deleted; on Ctrl-C too.
import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { CLIENT_ADDRESSES, TESTBED_VIP, Testbed, isRoot, type NsProcess } from '../host/testbed/topology.js';
import { startGateway, type TestbedGateway } from '../host/testbed/gateway.js';

// ---- options ------------------------------------------------------------------------------

const TESTS = ['http_short', 'http_keepalive', 'tcp_bulk_1', 'tcp_bulk_4', 'udp_64'] as const;
type Test = (typeof TESTS)[number];
type Metric = Test | 'http_keepalive_p99_ms';
const TARGETS = ['direct', 'kernel-nat', 'kernel-nat-offload-off', 'kernel-nat-udp-gro', 'wasmvs', 'wasmvs-no-offload', 'wasmvs-napi-thread', 'wasmvs-udp-gro'] as const;
type Target = (typeof TARGETS)[number];

/** What each target runs and sets on the director (the comment at the top says why). */
interface TargetSpec {
  nat: 'routing' | 'nftables' | 'gateway';
  /** gateway: the TUN's vnet_hdr offload, and further CLI options. */
  offload?: boolean;
  gatewayArgs?: readonly string[];
  /** The director's veths at tx/tso/gso off while the target runs. */
  vethOffloadsOff?: boolean;
  /** The director's client leg with GRO, rx-udp-gro-forwarding and threaded NAPI. */
  udpGro?: boolean;
  /** Only these tests (default: every test). */
  tests?: readonly Test[];
  /** The kernel NAT target its ratio is taken against: for bulk tests, else for all. */
  bulkPeer?: Target;
  peer?: Target;
}
const BULK_TESTS: readonly Test[] = ['tcp_bulk_1', 'tcp_bulk_4'];
const BULK: ReadonlySet<Test> = new Set(BULK_TESTS);
const SPECS: Record<Target, TargetSpec> = {
  'direct': { nat: 'routing' },
  'kernel-nat': { nat: 'nftables' },
  'kernel-nat-offload-off': { nat: 'nftables', vethOffloadsOff: true, tests: BULK_TESTS },
  'kernel-nat-udp-gro': { nat: 'nftables', udpGro: true, tests: ['udp_64'] },
  'wasmvs': { nat: 'gateway', offload: true },
  'wasmvs-no-offload': { nat: 'gateway', offload: false, bulkPeer: 'kernel-nat-offload-off' },
  'wasmvs-napi-thread': { nat: 'gateway', offload: true, gatewayArgs: ['--napi-thread'], tests: BULK_TESTS },
  'wasmvs-udp-gro': { nat: 'gateway', offload: true, udpGro: true, tests: ['udp_64'], peer: 'kernel-nat-udp-gro' },
};
const UNITS: Record<Metric, string> = {
  http_short: 'req/s', http_keepalive: 'req/s', http_keepalive_p99_ms: 'ms', tcp_bulk_1: 'Gbit/s', tcp_bulk_4: 'Gbit/s', udp_64: 'datagrams/s',
};
const NOISE_CORE = 0.15;
const GATEWAY_TUN = 'wvs0'; // the gateway's default TUN name
const NOISE_ATTEMPTS = 2;
const WARM_S = 1;
const TAIL_S = 0.5;

interface Options {
  quick: boolean;
  json?: string;
  runs: number;
  seconds: number;
  targets: Target[];
  tests: Test[];
  gatewayArgs: string[];
  /** Lever: GRO (and so NAPI) on every veth of the topology (veth's default is off). */
  vethGro: boolean;
}

function usage(message: string): never {
  process.stderr.write(`bench-gateway: ${message}\nusage: npm run bench:gateway -- [--quick] [--json FILE] [--runs N] [--seconds S] [--targets ${TARGETS.join(',')}] [--tests ${TESTS.join(',')}] [--gateway-args "ARGS"] [--veth-gro]\n`);
  process.exit(2);
}

function parseOptions(argv: string[]): Options {
  const o: Options = { quick: false, runs: 0, seconds: 0, targets: [...TARGETS], tests: [...TESTS], gatewayArgs: [], vethGro: false };
  const value = (i: number): string => {
    const v = argv[i + 1];
    if (v === undefined) usage(`${argv[i]} needs a value`);
    return v;
  };
  let runs: number | undefined;
  let seconds: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') o.quick = true;
    else if (a === '--json') o.json = value(i++);
    else if (a === '--runs') {
      runs = Number(value(i++));
      if (!Number.isInteger(runs) || runs < 1 || runs > 99) usage(`--runs takes a whole number from 1 to 99 (got "${argv[i]}")`);
    } else if (a === '--seconds') {
      seconds = Number(value(i++));
      if (!Number.isInteger(seconds) || seconds < 3 || seconds > 600) usage(`--seconds takes a whole number from 3 to 600 (got "${argv[i]}")`);
    } else if (a === '--targets' || a === '--tests') {
      const list = value(i++).split(',').filter(Boolean);
      const known: readonly string[] = a === '--targets' ? TARGETS : TESTS;
      const bad = list.find((x) => !known.includes(x));
      if (bad !== undefined || list.length === 0) usage(`${a}: unknown name "${bad ?? ''}" (have ${known.join(', ')})`);
      if (a === '--targets') o.targets = TARGETS.filter((t) => list.includes(t));
      else o.tests = TESTS.filter((t) => list.includes(t));
    } else if (a === '--gateway-args') o.gatewayArgs = value(i++).split(/\s+/).filter(Boolean);
    else if (a === '--veth-gro') o.vethGro = true;
    else if (a === '--help' || a === '-h') usage('help');
    else usage(`unknown option "${a}"`);
  }
  // --quick: fewer, shorter runs (3 of 4 s): a look, not a figure to quote.
  o.runs = runs ?? 3;
  o.seconds = seconds ?? (o.quick ? 4 : 10);
  return o;
}

// ---- tools --------------------------------------------------------------------------------

const PACKAGES: Record<string, string> = { nginx: 'nginx', wrk: 'wrk', iperf3: 'iperf3', nft: 'nftables', conntrack: 'conntrack', ethtool: 'ethtool' };

function have(program: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':').concat(['/usr/sbin', '/sbin'])) {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

function ensureTools(): void {
  const missing = Object.keys(PACKAGES).filter((p) => !have(p));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((p) => PACKAGES[p]!))];
  log(`installing ${pkgs.join(' ')} (missing: ${missing.join(', ')})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const still = Object.keys(PACKAGES).filter((p) => !have(p));
  if (still.length > 0) throw new Error(`still missing after apt-get install: ${still.join(', ')}`);
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- CPU and packet accounting ------------------------------------------------------------

const CLK_TCK = 100; // USER_HZ: what /proc reports in, 100 on every Linux ABI Node runs on

interface ProcTimes { ticks: number; user: number; children: number; comm: string }

function readProcStat(pid: number): ProcTimes | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): utime 14, stime 15, cutime 16, cstime 17 (proc(5)).
  return { ticks: Number(f[11]) + Number(f[12]), user: Number(f[11]), children: Number(f[13]) + Number(f[14]), comm };
}

/** user, nice, system, idle, iowait, irq, softirq, steal of the whole machine (ticks). */
function readMachine(): number[] {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  return line.trim().split(/\s+/).slice(1, 9).map(Number);
}

/** Received and sent packets and bytes per interface in the namespace of `pid` (/proc/net/dev). */
function netDev(pid: number): Map<string, { rxBytes: number; rxPackets: number; txBytes: number; txPackets: number }> {
  const m = new Map<string, { rxBytes: number; rxPackets: number; txBytes: number; txPackets: number }>();
  for (const line of readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').slice(2)) {
    const [name, rest] = line.split(':');
    if (rest === undefined) continue;
    const v = rest.trim().split(/\s+/).map(Number);
    m.set(name!.trim(), { rxBytes: v[0]!, rxPackets: v[1]!, txBytes: v[8]!, txPackets: v[9]! });
  }
  return m;
}

/** Segments received (GRO counted per segment) in the namespace of `pid`. */
function segmentsIn(pid: number): number {
  const text = readFileSync(`/proc/${pid}/net/netstat`, 'utf8').split('\n');
  for (let i = 0; i + 1 < text.length; i += 2) {
    if (!text[i]!.startsWith('IpExt:')) continue;
    const names = text[i]!.split(/\s+/);
    const values = text[i + 1]!.split(/\s+/).map(Number);
    let sum = 0;
    for (const n of ['InNoECTPkts', 'InECT1Pkts', 'InECT0Pkts', 'InCEPkts']) {
      const k = names.indexOf(n);
      if (k > 0) sum += values[k]!;
    }
    return sum;
  }
  throw new Error(`no IpExt counters in /proc/${pid}/net/netstat`);
}

type Role = 'client' | 'director' | 'servers';

interface Snapshot {
  at: number;
  machine: number[];
  roles: Map<number, { role: Role; ticks: number }>;
  others: Map<number, number>;
  gateway: number;
  gatewayUser: number;
  segments: number;
  /** skbs the endpoints' eth0 received (a GRO super-packet counts once). */
  endpointSkbs: number;
  /** The gateway's TUN: what the kernel queued to it (the gateway reads) and what it wrote. */
  tun?: { rxBytes: number; rxPackets: number; txBytes: number; txPackets: number };
}

interface CpuWindow {
  seconds: number;
  /** % of one core. */
  client: number; director: number; servers: number; softirq: number; others: number; idle: number; busy: number;
  /** Segments the endpoints received. */
  packets: number;
  /** Whole-topology CPU per packet (µs). */
  topologyUs: number;
  /** The gateway process's CPU per packet (µs), or undefined without one. */
  gatewayUs?: number;
  /** The gateway's user time, % of one core (its system time is director - this). */
  gatewayUser?: number;
  /** Segments per skb the endpoints received (GRO coalescing on their eth0). */
  segmentsPerSkb: number;
  /** Mean bytes per packet the gateway read from / wrote to its TUN (super-packet sizes). */
  tunReadBytes?: number;
  tunWriteBytes?: number;
}

class Accounting {
  constructor(private readonly tb: Testbed) {}

  /** PIDs by role (ip netns pids), read once per snapshot. */
  private rolePids(): Map<number, Role> {
    const m = new Map<number, Role>();
    const add = (ns: string, role: Role): void => {
      const out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
      for (const p of out.split(/\s+/).filter(Boolean)) m.set(Number(p), role);
    };
    add(this.tb.client.ns, 'client');
    add(this.tb.director.ns, 'director');
    for (const s of this.tb.servers) add(s.ns, 'servers');
    return m;
  }

  /**
   * The director's NAPI kernel threads (threaded NAPI: the gateway's TUN by default without
   * offload, the client leg in the *-udp-gro targets): "napi/DEV-ID", in no namespace's pid list, so
   * matched by the director's device names. Their time is the director's (and, for the TUN's,
   * the gateway's: the receive of what it writes), not noise.
   */
  private napiThreadNames(): string[] {
    return [GATEWAY_TUN, ...this.tb.director.ifaces].map((d) => `napi/${d}-`);
  }

  snapshot(endpointPids: number[], gatewayPid?: number): Snapshot {
    const rolesOf = this.rolePids();
    const napiNames = this.napiThreadNames();
    const roles = new Map<number, { role: Role; ticks: number }>();
    const others = new Map<number, number>();
    let tunNapi = 0;
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (pid === process.pid) continue; // this harness: it sleeps through the window
      const t = readProcStat(pid);
      if (!t) continue;
      const role = rolesOf.get(pid) ?? (napiNames.some((n) => t.comm.startsWith(n)) ? 'director' : undefined);
      if (role) roles.set(pid, { role, ticks: t.ticks });
      else others.set(pid, t.ticks + t.children);
      if (t.comm.startsWith(napiNames[0]!)) tunNapi += t.ticks;
    }
    let segments = 0;
    let endpointSkbs = 0;
    for (const p of endpointPids) {
      segments += segmentsIn(p);
      endpointSkbs += netDev(p).get('eth0')?.rxPackets ?? 0;
    }
    const g = gatewayPid === undefined ? undefined : readProcStat(gatewayPid);
    const tun = gatewayPid === undefined ? undefined : netDev(gatewayPid).get(GATEWAY_TUN);
    return { at: performance.now(), machine: readMachine(), roles, others, gateway: (g?.ticks ?? 0) + tunNapi, gatewayUser: g?.user ?? 0, segments, endpointSkbs, tun };
  }

  window(a: Snapshot, b: Snapshot, hasGateway: boolean): CpuWindow {
    const seconds = (b.at - a.at) / 1000;
    const core = (ticks: number): number => (ticks / CLK_TCK / seconds) * 100;
    const byRole: Record<Role, number> = { client: 0, director: 0, servers: 0 };
    for (const [pid, x] of b.roles) {
      const before = a.roles.get(pid);
      byRole[x.role] += x.ticks - (before?.ticks ?? 0); // started in the window: all of it
    }
    let others = 0;
    for (const [pid, t] of b.others) {
      const before = a.others.get(pid);
      if (before !== undefined) others += Math.max(0, t - before);
    }
    const d = b.machine.map((v, i) => v - a.machine[i]!);
    const [user, nice, system, idle, iowait, irq, softirq] = d as [number, number, number, number, number, number, number];
    const busy = user + nice + system + irq + softirq;
    const packets = b.segments - a.segments;
    const topologyTicks = Math.max(0, busy - others);
    const us = (ticks: number): number => (packets > 0 ? ((ticks / CLK_TCK) * 1e6) / packets : NaN);
    return {
      seconds,
      client: core(byRole.client), director: core(byRole.director), servers: core(byRole.servers),
      softirq: core(softirq), others: core(others), idle: core(idle + iowait), busy: core(busy),
      packets,
      topologyUs: us(topologyTicks),
      gatewayUs: hasGateway ? us(b.gateway - a.gateway) : undefined,
      gatewayUser: hasGateway ? core(b.gatewayUser - a.gatewayUser) : undefined,
      segmentsPerSkb: packets / Math.max(1, b.endpointSkbs - a.endpointSkbs),
      // The TUN's tx is what the kernel queued for the gateway to read, its rx what it wrote.
      tunReadBytes: a.tun && b.tun ? (b.tun.txBytes - a.tun.txBytes) / Math.max(1, b.tun.txPackets - a.tun.txPackets) : undefined,
      tunWriteBytes: a.tun && b.tun ? (b.tun.rxBytes - a.tun.rxBytes) / Math.max(1, b.tun.rxPackets - a.tun.rxPackets) : undefined,
    };
  }
}

// ---- the bench ----------------------------------------------------------------------------

interface RunResult {
  values: Partial<Record<Metric, number>>;
  cpu: CpuWindow;
  noisy: boolean;
  note?: string;
}

const RS_PAGE = `<!DOCTYPE html>\n<html><head><title>wasmvs bench</title></head><body>\n${'<p>static page served by nginx for the wasmvs gateway benchmark.</p>\n'.repeat(8)}</body></html>\n`;

class Bench {
  private readonly dir = mkdtempSync(join(os.tmpdir(), 'wasmvs-bench-'));
  private readonly nginx: NsProcess[] = [];
  private iperfServer: NsProcess | undefined;
  private gateway: TestbedGateway | undefined;
  private gatewayTarget: Target | undefined;
  private current: Target | undefined;
  private readonly acct: Accounting;
  private readonly rs1: string;
  private readonly rs2: string;
  private load: NsProcess | undefined;

  constructor(private readonly tb: Testbed, private readonly opts: Options) {
    this.acct = new Accounting(tb);
    this.rs1 = tb.servers[0]!.address;
    this.rs2 = tb.servers[1]!.address;
  }

  async setup(): Promise<void> {
    const { tb } = this;
    await tb.enableForwarding();
    // The direct target's own source address: a /24 route more specific than the /15.
    await tb.exec(tb.client.ns, ['ip', 'route', 'add', '198.18.1.0/24', 'via', tb.director.clientAddress, 'src', CLIENT_ADDRESSES[1]]);
    if (this.opts.vethGro) {
      // veth does GRO only when asked (since 5.13 this enables its NAPI without XDP).
      const links: Array<[string, string]> = [[tb.client.ns, 'eth0'], ...tb.servers.map((s): [string, string] => [s.ns, 'eth0']),
        ...tb.director.ifaces.filter((i) => i !== tb.director.serverIface).map((i): [string, string] => [tb.director.ns, i])];
      for (const [ns, iface] of links) await tb.exec(ns, ['ethtool', '-K', iface, 'gro', 'on']);
    }
    chmodSync(this.dir, 0o755); // nginx's workers drop root and read the page
    for (const s of tb.servers.slice(0, 2)) {
      const d = join(this.dir, s.name);
      mkdirSync(join(d, 'www'), { recursive: true });
      writeFileSync(join(d, 'www', 'index.html'), RS_PAGE);
      for (const p of [d, join(d, 'www')]) chmodSync(p, 0o755);
      chmodSync(join(d, 'www', 'index.html'), 0o644);
      const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `  ${k}_temp_path ${d}/${k}_temp;`).join('\n');
      writeFileSync(join(d, 'nginx.conf'), `# wasmvs bench-gateway real server ${s.name}
worker_processes 2;
daemon off;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  default_type text/html;
  sendfile on;
  tcp_nodelay on;
  # wrk's keep-alive connections must never be closed under it
  keepalive_requests 100000000;
  keepalive_timeout 300s;
${temp}
  server {
    # reuseport: a listen socket per worker, balanced by the kernel's reuseport hash
    listen ${s.address}:80 reuseport backlog=8192;
    root ${d}/www;
    index index.html;
  }
}
`);
      const p = tb.spawn(s.ns, ['nginx', '-c', join(d, 'nginx.conf')]);
      this.nginx.push(p);
    }
    this.iperfServer = tb.spawn(tb.servers[0]!.ns, ['iperf3', '-s', '-B', this.rs1, '-p', '5201']);
    // Wait for the listeners (nginx prints nothing when it starts well).
    await this.waitListening(tb.servers[0]!.ns, [`${this.rs1}:80`, `${this.rs1}:5201`]);
    await this.waitListening(tb.servers[1]!.ns, [`${this.rs2}:80`]);
  }

  private async waitListening(ns: string, endpoints: string[]): Promise<void> {
    const until = Date.now() + 10_000;
    for (;;) {
      const out = await this.tb.exec(ns, ['ss', '-Hltn']);
      if (endpoints.every((e) => out.includes(e))) return;
      for (const p of [...this.nginx, this.iperfServer]) {
        if (p && !p.running) throw new Error(`${p.describe()} exited: ${p.stderr.text() || p.stdout.text()}`);
      }
      if (Date.now() > until) throw new Error(`no listener on ${endpoints.join(', ')} in ${ns} after 10 s`);
      await sleep(50);
    }
  }

  private rulesText(): string {
    const v = TESTBED_VIP;
    return `-A -t ${v}:80 -s wrr
-a -t ${v}:80 -r ${this.rs1}:80 -m -w 1
-a -t ${v}:80 -r ${this.rs2}:80 -m -w 2
-A -t ${v}:5201 -s rr
-a -t ${v}:5201 -r ${this.rs1}:5201 -m -w 1
-A -u ${v}:5201 -s rr
-a -u ${v}:5201 -r ${this.rs1}:5201 -m -w 1
`;
  }

  private nftText(): string {
    const v = TESTBED_VIP;
    return `table ip wvsbench {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${v} tcp dport 80 dnat to numgen inc mod 3 map { 0 : ${this.rs1}, 1 : ${this.rs2}, 2 : ${this.rs2} }
    ip daddr ${v} tcp dport 5201 dnat to ${this.rs1}
    ip daddr ${v} udp dport 5201 dnat to ${this.rs1}
  }
}
`;
  }

  private async director(...argv: string[]): Promise<string> {
    return this.tb.exec(this.tb.director.ns, argv);
  }

  private async vethOffloads(on: boolean): Promise<void> {
    const v = on ? 'on' : 'off';
    for (const iface of this.tb.director.ifaces) await this.director('ethtool', '-K', iface, 'tx', v, 'tso', v, 'gso', v);
  }

  /**
   * What a NIC does for a UDP forwarder (and what WireGuard and Tailscale recommend for
   * TUN-based ones) on the director's client leg: GRO with rx-udp-gro-forwarding, its NAPI in
   * a kernel thread, so the datagrams that queue while it polls merge into one UDP
   * super-packet (the TUN takes them with USO; kernel NAT forwards them as one skb). veth's
   * own NAPI otherwise polls inside the sender's send, one datagram at a time.
   */
  private async udpGro(on: boolean): Promise<void> {
    const leg = this.tb.director.clientIface;
    const v = on ? 'on' : 'off';
    // veth has a NAPI only while GRO is on: threaded is set after turning it on, cleared before.
    const threaded = (): Promise<string> => this.director('sh', '-c', `echo ${on ? 1 : 0} > /sys/class/net/${leg}/threaded`);
    if (!on) await threaded();
    await this.director('ethtool', '-K', leg, 'gro', on || this.opts.vethGro ? 'on' : 'off', 'rx-udp-gro-forwarding', v);
    if (on) await threaded();
  }

  /** Puts the director in the state target `t` needs (and out of the previous one's). */
  async enter(t: Target): Promise<void> {
    if (this.current === t) return;
    await this.leave();
    const spec = SPECS[t];
    if (spec.vethOffloadsOff) await this.vethOffloads(false);
    if (spec.udpGro) await this.udpGro(true);
    if (spec.nat === 'nftables') {
      await this.tb.exec(this.tb.director.ns, ['nft', '-f', '-'], { input: this.nftText() });
    } else if (spec.nat === 'gateway') {
      this.gateway = await startGateway(this.tb, { rules: this.rulesText(), offload: spec.offload, args: [...(spec.gatewayArgs ?? []), ...this.opts.gatewayArgs] });
      this.gatewayTarget = t;
    }
    this.current = t;
  }

  async leave(): Promise<void> {
    const t = this.current;
    this.current = undefined;
    if (t === undefined) return;
    const spec = SPECS[t];
    if (spec.nat === 'nftables') {
      await this.director('nft', 'delete', 'table', 'ip', 'wvsbench');
      await this.director('conntrack', '-F').catch(() => {});
    }
    if (spec.vethOffloadsOff) await this.vethOffloads(true);
    if (spec.udpGro) await this.udpGro(false);
    if (this.gateway) {
      const gw = this.gateway;
      this.gateway = undefined;
      this.gatewayTarget = undefined;
      const code = await gw.stop();
      if (code !== 0) log(`gateway exited with status ${code}:\n${gw.process.stderr.text().slice(-2000)}`);
    }
  }

  /** One measured run of `test` on the current target, repeated while noisy (bounded). */
  async run(target: Target, test: Test): Promise<RunResult> {
    let best: RunResult | undefined;
    for (let attempt = 0; attempt < NOISE_ATTEMPTS; attempt++) {
      const r = await this.once(target, test);
      if (!best || r.cpu.others < best.cpu.others) best = r;
      if (!r.noisy) break;
      log(`  noisy (other processes ${r.cpu.others.toFixed(0)}% of a core)${attempt + 1 < NOISE_ATTEMPTS ? ': again' : ': kept as noisy'}`);
    }
    return best!;
  }

  private async once(target: Target, test: Test): Promise<RunResult> {
    const { tb, opts } = this;
    if (SPECS[target].nat === 'nftables') await this.director('conntrack', '-F').catch(() => {});
    const direct = target === 'direct';
    const host = direct ? this.rs1 : TESTBED_VIP;
    const from = direct ? CLIENT_ADDRESSES[1] : CLIENT_ADDRESSES[0];
    const s = opts.seconds;
    let argv: string[];
    if (test === 'http_short' || test === 'http_keepalive') {
      argv = ['wrk', '-t2', '-c16', `-d${s}s`, '--latency', ...(test === 'http_short' ? ['-H', 'Connection: close'] : []), `http://${host}/`];
    } else if (test === 'udp_64') {
      argv = ['iperf3', '-c', host, '-p', '5201', '-B', from, '-u', '-b', '0', '-l', '64', '-t', String(s), '-J'];
    } else {
      argv = ['iperf3', '-c', host, '-p', '5201', '-B', from, '-t', String(s), '-J', ...(test === 'tcp_bulk_4' ? ['-P', '4'] : [])];
    }
    const load = tb.spawn(tb.client.ns, argv);
    this.load = load;
    const gatewayPid = this.gateway?.process.pid;
    const endpoints = [load.pid, ...this.nginx.map((p) => p.pid)];
    try {
      await sleep(WARM_S * 1000);
      const a = this.acct.snapshot(endpoints, gatewayPid);
      await sleep((s - WARM_S - TAIL_S) * 1000);
      const b = this.acct.snapshot(endpoints, gatewayPid);
      const exit = await Promise.race([load.exited, sleep((s + 20) * 1000).then(() => undefined)]);
      if (!exit) throw new Error(`${argv.join(' ')} did not finish within ${s + 20} s`);
      const out = load.stdout.text();
      if (exit.code !== 0) throw new Error(`${argv.join(' ')}: exit status ${exit.code}: ${(load.stderr.text() || out).slice(-1000)}`);
      const cpu = this.acct.window(a, b, gatewayPid !== undefined);
      const parsed = argv[0] === 'wrk' ? parseWrk(out, test) : parseIperf(out, test);
      return { values: parsed.values, cpu, noisy: cpu.others > NOISE_CORE * 100, note: parsed.note };
    } finally {
      this.load = undefined;
      if (load.running) await load.stop();
    }
  }

  async teardown(): Promise<void> {
    if (this.load?.running) await this.load.stop();
    await this.leave().catch((e: unknown) => log(`teardown: ${(e as Error).message}`));
    for (const p of [...this.nginx, this.iperfServer]) if (p?.running) await p.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  get gatewayRunning(): Target | undefined {
    return this.gatewayTarget;
  }
}

/** "1.23ms" / "850.00us" / "1.02s" -> ms */
function durationMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) throw new Error(`wrk: cannot read duration "${text}"`);
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

function parseWrk(out: string, test: Test): { values: Partial<Record<Metric, number>>; note?: string } {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out);
  if (!rps) throw new Error(`wrk printed no Requests/sec:\n${out}`);
  const values: Partial<Record<Metric, number>> = { [test]: Number(rps[1]) };
  if (test === 'http_keepalive') {
    const p99 = /^\s+99%\s+(\S+)/m.exec(out);
    if (!p99) throw new Error(`wrk printed no 99% latency:\n${out}`);
    values.http_keepalive_p99_ms = durationMs(p99[1]!);
  }
  const notes: string[] = [];
  const errors = /Socket errors: (.*)/.exec(out);
  if (errors) notes.push(`socket errors ${errors[1]}`);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) notes.push(`${non2xx[1]} non-2xx responses`);
  return { values, note: notes.join('; ') || undefined };
}

interface IperfJson {
  error?: string;
  end?: {
    sum_received?: { bits_per_second: number };
    sum?: { packets?: number; lost_packets?: number; seconds?: number; lost_percent?: number };
  };
}

function parseIperf(out: string, test: Test): { values: Partial<Record<Metric, number>>; note?: string } {
  let j: IperfJson;
  try {
    j = JSON.parse(out) as IperfJson;
  } catch {
    throw new Error(`iperf3 printed no JSON:\n${out.slice(0, 500)}`);
  }
  if (j.error) throw new Error(`iperf3: ${j.error}`);
  if (test === 'udp_64') {
    const sum = j.end?.sum;
    if (!sum || sum.packets === undefined || sum.lost_packets === undefined || !sum.seconds) throw new Error('iperf3 -u reported no packet counts');
    const received = sum.packets - sum.lost_packets;
    return { values: { udp_64: received / sum.seconds }, note: `loss ${(sum.lost_percent ?? 0).toFixed(1)}%` };
  }
  const bps = j.end?.sum_received?.bits_per_second;
  if (bps === undefined) throw new Error('iperf3 reported no received throughput');
  return { values: { [test]: bps / 1e9 } };
}

// ---- figures ------------------------------------------------------------------------------

interface Cell {
  test: Metric;
  target: Target;
  runs: number[];
  /** target / peer, per round (same run). */
  ratios: number[];
  noisy: number;
  notes: string[];
  cpu: CpuWindow[];
  directorUs: number[];
}

function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The kernel NAT target each target's ratio column is taken against (SPECS), if it ran. */
function peerOf(test: Metric, target: Target, targets: readonly Target[]): Target | undefined {
  const spec = SPECS[target];
  if (spec.nat === 'nftables') return undefined;
  const wanted = (BULK.has(test as Test) ? spec.bulkPeer : undefined) ?? spec.peer;
  if (wanted !== undefined && targets.includes(wanted)) return wanted;
  return targets.includes('kernel-nat') ? 'kernel-nat' : undefined;
}

function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '-';
  if (unit === 'Gbit/s') return v.toFixed(2);
  if (unit === 'ms') return v.toFixed(2);
  return v >= 10_000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0);
}

function table(cells: Cell[]): string {
  const header = ['test', 'target', 'median', 'min..max', 'unit', 'vs kernel NAT', 'topology µs/pkt', 'NAT µs/pkt over routing', 'gateway µs/pkt', 'noisy'];
  const rows: string[][] = [header];
  for (const c of cells) {
    const unit = UNITS[c.test];
    const ratio = median(c.ratios);
    rows.push([
      c.test, c.target, fmt(median(c.runs), unit), `${fmt(Math.min(...c.runs), unit)}..${fmt(Math.max(...c.runs), unit)}`, unit,
      Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '',
      c.test === 'http_keepalive_p99_ms' ? '' : median(c.cpu.map((w) => w.topologyUs)).toFixed(2),
      c.directorUs.length === 0 ? '' : median(c.directorUs).toFixed(2),
      c.test === 'http_keepalive_p99_ms' ? '' : (c.cpu[0]?.gatewayUs === undefined ? '' : median(c.cpu.map((w) => w.gatewayUs ?? NaN)).toFixed(2)),
      c.noisy > 0 ? `${c.noisy}/${c.runs.length}` : '',
    ]);
  }
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `| ${r.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

function cpuTable(cells: Cell[]): string {
  const rows = ['| test | target | client | director (gateway user) | servers | softirq (inside those) | others | idle | packets/s | segments/skb at endpoints | TUN bytes/packet |', '|---|---|---|---|---|---|---|---|---|---|---|'];
  for (const c of cells) {
    if (c.test === 'http_keepalive_p99_ms') continue;
    const m = (k: keyof CpuWindow): string => `${median(c.cpu.map((w) => w[k] as number)).toFixed(0)}%`;
    const gw = c.cpu[0]?.gatewayUser === undefined ? '' : ` (${m('gatewayUser')})`;
    // Every packet read is written back (or answered), so one mean covers both directions.
    const tun = c.cpu[0]?.tunReadBytes === undefined ? '' : median(c.cpu.map((w) => w.tunReadBytes ?? NaN)).toFixed(0);
    rows.push(`| ${c.test} | ${c.target} | ${m('client')} | ${m('director')}${gw} | ${m('servers')} | ${m('softirq')} | ${m('others')} | ${m('idle')} | ${fmt(median(c.cpu.map((w) => w.packets / w.seconds)), 'pps')} | ${median(c.cpu.map((w) => w.segmentsPerSkb)).toFixed(1)} | ${tun} |`);
  }
  return rows.join('\n');
}

function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} x ${cpus[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${os.release()}, Node ${process.version}`;
}

// ---- main ---------------------------------------------------------------------------------

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (!isRoot()) {
    log('bench-gateway needs root: it creates network namespaces, a TUN device and nftables rules');
    return 1;
  }
  ensureTools();
  const targets = opts.targets;
  const plan: Array<{ target: Target; tests: Test[] }> = targets.map((t) => ({
    target: t,
    tests: opts.tests.filter((x) => SPECS[t].tests?.includes(x) ?? true),
  })).filter((p) => p.tests.length > 0);
  const totalRuns = plan.reduce((n, p) => n + p.tests.length, 0) * opts.runs;
  log(`bench-gateway: ${opts.runs} rounds of ${plan.map((p) => `${p.target} (${p.tests.length})`).join(', ')}; ${opts.seconds} s runs, ${totalRuns} runs, about ${Math.ceil((totalRuns * (opts.seconds + 1.5)) / 60)} min`);
  log(`machine: ${machine()}`);

  const tb = await Testbed.create({ servers: 2 });
  const bench = new Bench(tb, opts);
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: tearing down`);
    void bench.teardown().finally(() => tb.destroy()).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const cells = new Map<string, Cell>();
  const cell = (test: Metric, target: Target): Cell => {
    const k = `${test}/${target}`;
    let c = cells.get(k);
    if (!c) cells.set(k, (c = { test, target, runs: [], ratios: [], noisy: 0, notes: [], cpu: [], directorUs: [] }));
    return c;
  };
  try {
    await bench.setup();
    let done = 0;
    for (let round = 0; round < opts.runs; round++) {
      const got = new Map<string, RunResult>();
      for (const { target, tests } of plan) {
        if (interrupted) return 130;
        await bench.enter(target);
        for (const test of tests) {
          const r = await bench.run(target, test);
          done++;
          got.set(`${test}/${target}`, r);
          const v = r.values[test]!;
          log(`[${done}/${totalRuns}] round ${round + 1} ${target} ${test}: ${fmt(v, UNITS[test])} ${UNITS[test]}${r.values.http_keepalive_p99_ms !== undefined ? `, p99 ${r.values.http_keepalive_p99_ms.toFixed(2)} ms` : ''}; ${r.cpu.topologyUs.toFixed(2)} µs/pkt${r.cpu.gatewayUs !== undefined ? ` (gateway ${r.cpu.gatewayUs.toFixed(2)})` : ''}; others ${r.cpu.others.toFixed(0)}%${r.noisy ? ' NOISY' : ''}${r.note ? `; ${r.note}` : ''}`);
          for (const [m, value] of Object.entries(r.values) as Array<[Metric, number]>) {
            const c = cell(m, target);
            c.runs.push(value);
            c.cpu.push(r.cpu);
            if (r.noisy) c.noisy++;
            if (r.note) c.notes.push(r.note);
          }
        }
      }
      await bench.leave();
      // Ratios and the NAT's cost over routing, within this round.
      for (const [k, r] of got) {
        const [test, target] = k.split('/') as [Test, Target];
        for (const [m, value] of Object.entries(r.values) as Array<[Metric, number]>) {
          const peer = peerOf(m, target, targets);
          const pr = peer && got.get(`${test}/${peer}`);
          if (pr) cell(m, target).ratios.push(value / pr.values[m]!);
        }
        const direct = got.get(`${test}/direct`);
        if (direct && target !== 'direct') cell(test, target).directorUs.push(r.cpu.topologyUs - direct.cpu.topologyUs);
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!interrupted) {
      await bench.teardown();
      await tb.destroy();
    }
  }

  const order: Metric[] = ['http_short', 'http_keepalive', 'http_keepalive_p99_ms', 'tcp_bulk_1', 'tcp_bulk_4', 'udp_64'];
  const list = [...cells.values()].sort((a, b) => order.indexOf(a.test) - order.indexOf(b.test) || TARGETS.indexOf(a.target) - TARGETS.indexOf(b.target));
  process.stdout.write(`\nwasmvs gateway vs kernel NAT: ${opts.runs} runs of ${opts.seconds} s per figure (median, min..max); ${machine()}\n\n`);
  process.stdout.write(`${table(list)}\n\nWhere the CPU went (% of one core, medians; the machine has ${os.cpus().length}):\n\n${cpuTable(list)}\n`);
  const notes = list.filter((c) => c.notes.length > 0 && c.test !== 'http_keepalive_p99_ms');
  if (notes.length > 0) process.stdout.write(`\nNotes:\n${notes.map((c) => `  ${c.test} ${c.target}: ${[...new Set(c.notes)].join(', ')}`).join('\n')}\n`);
  if (opts.json) {
    const results = list.map((c) => ({ test: c.test, target: c.target, unit: UNITS[c.test], median: median(c.runs), min: Math.min(...c.runs), max: Math.max(...c.runs), runs: c.runs }));
    const details = list.map((c) => ({
      test: c.test, target: c.target, ratio_to_kernel_nat: Number.isFinite(median(c.ratios)) ? median(c.ratios) : null, noisy_runs: c.noisy, notes: [...new Set(c.notes)],
      topology_us_per_packet: median(c.cpu.map((w) => w.topologyUs)), nat_us_per_packet_over_routing: c.directorUs.length ? median(c.directorUs) : null,
      gateway_us_per_packet: c.cpu[0]?.gatewayUs === undefined ? null : median(c.cpu.map((w) => w.gatewayUs ?? NaN)),
      cpu_percent_of_core: Object.fromEntries((['client', 'director', 'servers', 'softirq', 'others', 'idle'] as const).map((k) => [k, median(c.cpu.map((w) => w[k]))])),
      gateway_user_percent_of_core: c.cpu[0]?.gatewayUser === undefined ? null : median(c.cpu.map((w) => w.gatewayUser ?? NaN)),
      segments_per_skb_at_endpoints: median(c.cpu.map((w) => w.segmentsPerSkb)),
      tun_bytes_per_read: c.cpu[0]?.tunReadBytes === undefined ? null : median(c.cpu.map((w) => w.tunReadBytes ?? NaN)),
      tun_bytes_per_write: c.cpu[0]?.tunWriteBytes === undefined ? null : median(c.cpu.map((w) => w.tunWriteBytes ?? NaN)),
    }));
    writeFileSync(opts.json, `${JSON.stringify({ machine: machine(), runs: opts.runs, seconds: opts.seconds, results, details }, null, 2)}\n`);
    log(`wrote ${opts.json}`);
  }
  return 0;
}

main().then((code) => process.exit(code), (err: unknown) => {
  log(`bench-gateway: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
