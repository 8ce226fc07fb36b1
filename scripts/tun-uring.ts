// By-hand measurement (not a test): TUN reads and writes through io_uring (host/gateway/uring.ts)
// against plain read(2)/write(2) (TunDevice), side by side, interleaved run by run.
//   node --import tsx scripts/tun-uring.ts [--offload] [--seconds 2] [--runs 5] [--size 64]
//        [--modes plain,uring,uring-reg,uring-adapt[,uring-armed]] [--workloads write,read,drain,reflect]
// As root. Creates namespace wvsur-<pid> with a TUN in it (198.18.0.1/24, txqueuelen 200000)
// and deletes both on exit and on Ctrl-C. Modes:
//   plain      TunDevice.read() (read(2) per packet until EAGAIN, batch 64) and .write() (one
//              write(2) per packet)
//   uring      one io_uring_enter per batch carrying the batch's WRITE SQEs and the next
//              batch's 64 READ SQEs (O_NONBLOCK fd: an empty queue completes -EAGAIN)
//   uring-reg  the same with the TUN registered (IOSQE_FIXED_FILE) and the slot memory
//              registered (READ_FIXED/WRITE_FIXED)
//   uring-adapt  uring-reg with as many READ SQEs per enter as the traffic needs: twice the
//              packets the last batch read, at least 4, at most 64 (a READ that finds the
//              queue empty costs about as much as one that finds a packet; read(2) until EAGAIN
//              stops at the first empty one). Links cannot stop a chain at the first -EAGAIN:
//              every TUN read is short of its buffer, and a short read breaks a link.
//   uring-armed  64 READs (not in the default --modes) kept in flight without RWF_NOWAIT: the kernel arms a poll for each
//              and completes it (as task work inside our io_uring_enter) when a packet comes;
//              each enter re-arms the slots it consumed and carries the writes. No readiness
//              poll, no -EAGAIN probes. Not for `write` (same as uring there). The ring is
//              closed after each measurement, which cancels the READs still armed.
// Workloads (size-byte UDP/IPv4):
//   write      batches of 64 packets to 198.18.1.1, which the namespace drops at routing
//              (forwarding is off): the cost of handing a packet to the kernel
//   read       a UDP flood from the namespace toward 198.18.0.2 (a child node process): flood-
//              bound, so compare CPU per packet, not packets/s
//   drain      read a queue the flood filled while nobody read: the read path's own rate
//   reflect    a client in the namespace keeps a window of datagrams to 198.18.0.2:7; each is
//              read, its addresses and ports swapped (checksums stay valid) and written back
// CPU per packet is process.cpuUsage() (user+system, all of this process's threads) over the
// packets handled. A run is marked noisy when processes outside this script and its child took
// more than 15% of a core (from /proc/stat). iou-wrk-* threads (operations punted to io-wq
// workers instead of completing inline) are counted from /proc/self/task during uring runs;
// an idle worker lingers for a while, so after a uring-armed run later modes may still show it.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { TunDevice } from '../host/gateway/tun.js';
import {
  addressOf, IORING_OP_READ, IORING_OP_READ_FIXED, IORING_OP_WRITE, IORING_OP_WRITE_FIXED, IOSQE_FIXED_FILE, IoUring, RWF_NOWAIT,
} from '../host/gateway/uring.js';
import { writeVnetHeaderNone } from '../host/gateway/vnet.js';
import { udpPacket } from '../test/support/packets.js';

/** A `size`-byte UDP datagram 198.18.0.2 -> 198.18.1.1:9 with no checksum, the namespace drops it at routing. */
function probePacket(size: number): Uint8Array {
  return udpPacket({ src: '198.18.0.2', dst: '198.18.1.1', sport: 12345, dport: 9, payload: new Uint8Array(size - 28), zeroChecksum: true });
}

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : dflt;
};
const offload = args.includes('--offload');
const seconds = Number(opt('--seconds', '2'));
const runs = Number(opt('--runs', '5'));
const size = Number(opt('--size', '64'));
const MODES = ['plain', 'uring', 'uring-reg', 'uring-adapt', 'uring-armed'] as const;
const DEFAULT_MODES = ['plain', 'uring', 'uring-reg', 'uring-adapt'];
type Mode = (typeof MODES)[number];
const WORKLOADS = ['write', 'read', 'drain', 'reflect'] as const;
type Workload = (typeof WORKLOADS)[number];
const modes = opt('--modes', DEFAULT_MODES.join(',')).split(',') as Mode[];
const workloads = opt('--workloads', WORKLOADS.join(',')).split(',') as Workload[];
for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m} (${MODES.join(', ')})`);
for (const w of workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w} (${WORKLOADS.join(', ')})`);
if (!(seconds > 0 && runs >= 1 && size >= 28 && size <= 1500)) throw new Error('need --seconds > 0, --runs >= 1, --size 28..1500');
if (process.getuid?.() !== 0) {
  process.stderr.write('tun-uring: needs root (a TUN and a network namespace)\n');
  process.exit(1);
}

const BATCH = 64;
const DRAIN_PACKETS = 100_000;
const REFLECT_WINDOW = 256;
const ns = `wvsur-${process.pid}`;
const tunName = `wvsur${process.pid % 100000}`;
const EAGAIN = 11;
/** results[] value meaning "no CQE for this user_data yet" (no errno is this negative). */
const SENTINEL = -0x7fffffff;

// ---- small helpers ---------------------------------------------------------------------------

function ip(...a: string[]): void {
  execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'inherit'] });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Swaps IPv4 source/destination and UDP ports in place: both checksums' sums are unchanged. */
function reflect(buf: Uint8Array, at: number): void {
  for (let i = 0; i < 4; i++) {
    const t = buf[at + 12 + i]; buf[at + 12 + i] = buf[at + 16 + i]; buf[at + 16 + i] = t;
  }
  const ihl = (buf[at] & 0x0f) * 4;
  for (let i = 0; i < 2; i++) {
    const t = buf[at + ihl + i]; buf[at + ihl + i] = buf[at + ihl + 2 + i]; buf[at + ihl + 2 + i] = t;
  }
}

/** Busy and total jiffies of the whole machine (/proc/stat "cpu" line). */
function machineJiffies(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/u).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/** utime + stime of a process, in jiffies (0 once it is gone). */
function procJiffies(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

function iouWorkers(): number {
  let n = 0;
  for (const t of readdirSync('/proc/self/task')) {
    try {
      if (readFileSync(`/proc/self/task/${t}/comm`, 'utf8').startsWith('iou-wrk')) n++;
    } catch {
      // the thread exited
    }
  }
  return n;
}

const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

// ---- the I/O under test ----------------------------------------------------------------------

interface Sample {
  packets: number;
  seconds: number;
  cpuUs: number;
  otherCorePct: number;
  /** uring: data-carrying read CQEs per read SQE, and CQEs that failed other than EAGAIN. */
  fill?: number;
  errors: number;
  iouWorkers: number;
}

class Bench {
  readonly dev: TunDevice;
  readonly hdr: number;
  readonly slotSize: number;
  readonly memory: Uint8Array;
  /** 2 x BATCH slots: the reflector reads into one half while the other half's writes go out. */
  readonly slots: Uint8Array[];
  readonly addrs: number[];
  readonly sizes = new Uint32Array(2 * BATCH);
  readonly results = new Int32Array(4 * BATCH);
  readonly indices = Uint32Array.from({ length: BATCH }, (_, i) => i);
  readonly ring: IoUring;
  readonly ringReg: IoUring;
  readonly memoryAddr: number;

  constructor(dev: TunDevice) {
    this.dev = dev;
    this.hdr = dev.headerLen;
    this.slotSize = dev.offload ? 65_600 : 2048;
    this.memory = new Uint8Array(new SharedArrayBuffer(2 * BATCH * this.slotSize));
    this.slots = Array.from({ length: 2 * BATCH }, (_, i) => this.memory.subarray(i * this.slotSize, (i + 1) * this.slotSize));
    this.addrs = this.slots.map(addressOf);
    this.memoryAddr = addressOf(this.memory);
    const a = IoUring.openWithReason(4 * BATCH);
    const b = IoUring.openWithReason(4 * BATCH);
    if (!a.ring || !b.ring) throw new Error(`io_uring unavailable: ${a.reason ?? b.reason ?? ''}`);
    this.ring = a.ring;
    this.ringReg = b.ring;
    const rf = this.ringReg.registerFiles([dev.fd]);
    if (rf < 0) throw new Error(`IORING_REGISTER_FILES: errno ${-rf}`);
    const rb = this.ringReg.registerBuffers([this.memory]);
    if (rb < 0) throw new Error(`IORING_REGISTER_BUFFERS: errno ${-rb}`);
  }

  close(): void {
    this.disarm();
    this.ring.close();
    this.ringReg.close();
  }

  /** Prepares a READ (base slot) per slot in [first, first+BATCH). */
  /** READ SQEs per enter: BATCH, or adapted to the traffic in uring-adapt. */
  private nReads = BATCH;

  private prepReads(mode: Mode, first: number): void {
    const reg = mode === 'uring-reg' || mode === 'uring-adapt';
    this.nReads = mode === 'uring-adapt' ? this.nReads : BATCH;
    const ring = reg ? this.ringReg : this.ring;
    const fd = reg ? 0 : this.dev.fd;
    const op = reg ? IORING_OP_READ_FIXED : IORING_OP_READ;
    const flags = reg ? IOSQE_FIXED_FILE : 0;
    // RWF_NOWAIT: an empty queue completes -EAGAIN at once (the descriptor's O_NONBLOCK alone
    // does not do that for io_uring on this kernel: the READ would wait for a packet).
    for (let i = first; i < first + this.nReads; i++) ring.prep(op, fd, this.addrs[i], this.slotSize, i, flags, 0, RWF_NOWAIT);
  }

  /** Prepares a WRITE per slot listed, user_data 2*BATCH + slot. */
  private prepWrites(mode: Mode, slots: Uint32Array, count: number): void {
    const reg = mode === 'uring-reg' || mode === 'uring-adapt';
    const ring = reg ? this.ringReg : this.ring;
    const fd = reg ? 0 : this.dev.fd;
    const op = reg ? IORING_OP_WRITE_FIXED : IORING_OP_WRITE;
    const flags = reg ? IOSQE_FIXED_FILE : 0;
    for (let k = 0; k < count; k++) {
      const i = slots[k];
      ring.prep(op, fd, this.addrs[i], this.sizes[i], 2 * BATCH + i, flags, 0, RWF_NOWAIT);
    }
  }

  /**
   * Runs `body` (returning packets handled per call; it may await) for `secs`, measuring
   * packets, CPU and outside load.
   */
  async measure(mode: Mode, secs: number, child: ChildProcess | undefined, body: () => number | Promise<number>, stopWhenZero = false): Promise<Sample> {
    this.errors = 0;
    this.readSqes = 0;
    this.readData = 0;
    let packets = 0;
    let workers = 0;
    const m0 = machineJiffies();
    const c0 = procJiffies(child?.pid);
    const s0 = procJiffies(process.pid);
    const u0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const end = Date.now() + secs * 1000;
    let calls = 0;
    while (Date.now() < end) {
      const n = await body();
      packets += n;
      if (n === 0 && stopWhenZero) break;
      if ((++calls & 1023) === 0 && mode !== 'plain') workers = Math.max(workers, iouWorkers());
    }
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    const u = process.cpuUsage(u0);
    const m1 = machineJiffies();
    const ours = procJiffies(process.pid) - s0 + procJiffies(child?.pid) - c0;
    const otherJiffies = Math.max(0, m1.busy - m0.busy - ours);
    const tick = 100; // USER_HZ
    if (mode !== 'plain') workers = Math.max(workers, iouWorkers());
    this.disarm();
    return {
      packets,
      seconds: dt,
      cpuUs: u.user + u.system,
      otherCorePct: (otherJiffies / tick / dt) * 100,
      fill: mode === 'plain' || this.readSqes === 0 ? undefined : this.readData / this.readSqes,
      errors: this.errors,
      iouWorkers: workers,
    };
  }

  errors = 0;
  /** Failed CQEs by errno (armed mode), for the summary. */
  readonly errnos = new Map<number, number>();
  readSqes = 0;
  readData = 0;

  // -- write: a batch of BATCH packets per call
  writeOnce(mode: Mode): number {
    if (mode === 'plain') return this.dev.write(this.slots, this.sizes, this.indices, BATCH);
    const ring = mode === 'uring-reg' || mode === 'uring-adapt' ? this.ringReg : this.ring;
    this.prepWrites(mode, this.indices, BATCH);
    ring.submitAndWait(BATCH, 1000);
    ring.reap(this.results);
    let ok = 0;
    for (let i = 0; i < BATCH; i++) {
      if (this.results[2 * BATCH + i] > 0) ok++;
      else this.errors++;
    }
    return ok;
  }

  // -- read: one batch, returns packets read
  readOnce(mode: Mode): number {
    if (mode === 'plain') return this.dev.read(this.slots, this.sizes);
    const ring = mode === 'uring-reg' || mode === 'uring-adapt' ? this.ringReg : this.ring;
    this.prepReads(mode, 0);
    ring.submitAndWait(this.nReads, 1000);
    ring.reap(this.results);
    return this.countReads(0);
  }

  private countReads(first: number): number {
    let n = 0;
    for (let i = first; i < first + this.nReads; i++) {
      const r = this.results[i];
      if (r > 0) {
        this.sizes[i] = r;
        n++;
      } else if (r !== -EAGAIN) this.errors++;
    }
    this.readSqes += this.nReads;
    this.readData += n;
    this.nReads = Math.min(BATCH, Math.max(4, 2 * n));
    return n;
  }

  // -- armed reads: slots 0..BATCH-1 (read) or the reflector's 2*BATCH, each with one READ in
  // flight; `rearm` lists the slots consumed since the last enter.
  private armed: IoUring | undefined;
  private readonly rearm = new Uint32Array(2 * BATCH);
  private rearmCount = 0;

  private armedRing(slots: number): IoUring {
    if (this.armed) return this.armed;
    const ring = IoUring.open(4 * BATCH);
    if (!ring) throw new Error('io_uring unavailable');
    this.armed = ring;
    this.results.fill(SENTINEL);
    this.rearmCount = 0;
    for (let i = 0; i < slots; i++) this.rearm[this.rearmCount++] = i;
    return ring;
  }

  /** Cancels the armed READs (closing the ring) before another mode reads the TUN. */
  disarm(): void {
    this.armed?.close();
    this.armed = undefined;
  }

  /** One enter: re-arm consumed slots, wait up to waitMs for a completion, count data. */
  armedOnce(slots: number, waitMs: number, reflectBack: boolean): number {
    const ring = this.armedRing(slots);
    const fd = this.dev.fd;
    let outs = 0;
    if (reflectBack) {
      // Writes first: inline and in SQE order they copy each packet out before its slot's
      // READ is armed again in the same submission.
      for (let k = 0; k < this.rearmCount; k++) {
        const i = this.rearm[k];
        if (this.sizes[i] > 0) {
          ring.prepWrite(fd, this.addrs[i], this.sizes[i], 2 * BATCH + i);
          outs++;
        }
      }
    }
    for (let k = 0; k < this.rearmCount; k++) {
      const i = this.rearm[k];
      this.sizes[i] = 0;
      ring.prepRead(fd, this.addrs[i], this.slotSize, i, 0, false);
    }
    this.readSqes += this.rearmCount;
    this.rearmCount = 0;
    if (waitMs > 0) ring.submitAndWait(outs + 1, waitMs);
    else ring.submit(0);
    ring.reap(this.results);
    let n = 0;
    const hdr = this.hdr;
    for (let i = 0; i < slots; i++) {
      const r = this.results[i];
      if (r === SENTINEL) continue;
      this.results[i] = SENTINEL;
      this.rearm[this.rearmCount++] = i;
      if (r > 0) {
        n++;
        if (reflectBack) {
          reflect(this.slots[i], hdr);
          this.sizes[i] = r;
        }
      } else {
        this.errors++;
        this.errnos.set(-r, (this.errnos.get(-r) ?? 0) + 1);
      }
    }
    if (reflectBack) {
      for (let i = 2 * BATCH; i < 4 * BATCH; i++) {
        const r = this.results[i];
        if (r === SENTINEL) continue;
        if (r <= 0) this.errors++;
        this.results[i] = SENTINEL;
      }
    }
    this.readData += n;
    return n;
  }

  // -- reflect: state across calls (the half whose packets go out with the next submission)
  private half = 0;
  private outCount = 0;
  private readonly out = new Uint32Array(BATCH);

  reflectOnce(mode: Mode): number {
    const hdr = this.hdr;
    if (mode === 'plain') {
      const n = this.dev.read(this.slots, this.sizes);
      for (let i = 0; i < n; i++) reflect(this.slots[i], hdr);
      if (n > 0) this.dev.write(this.slots, this.sizes, this.indices, n);
      return n;
    }
    const ring = mode === 'uring-reg' || mode === 'uring-adapt' ? this.ringReg : this.ring;
    // Writes of the batch read last time, then reads into the other half, in one enter.
    const outN = this.outCount;
    this.prepWrites(mode, this.out, outN);
    const first = this.half === 0 ? BATCH : 0;
    this.prepReads(mode, first);
    ring.submitAndWait(outN + this.nReads, 1000);
    ring.reap(this.results);
    for (let k = 0; k < outN; k++) if (this.results[2 * BATCH + this.out[k]] <= 0) this.errors++;
    const issued = this.nReads;
    const n = this.countReads(first);
    let m = 0;
    for (let i = first; i < first + issued; i++) {
      if (this.results[i] > 0) {
        reflect(this.slots[i], hdr);
        this.out[m++] = i;
      }
    }
    this.outCount = m;
    this.half = first === 0 ? 0 : 1;
    return n;
  }

  /** Flushes a uring reflector's last batch (so a mode switch loses nothing). */
  flushReflect(mode: Mode): void {
    if (mode === 'plain' || this.outCount === 0) return;
    const ring = mode === 'uring-reg' || mode === 'uring-adapt' ? this.ringReg : this.ring;
    this.prepWrites(mode, this.out, this.outCount);
    ring.submitAndWait(this.outCount, 1000);
    ring.reap(this.results);
    this.outCount = 0;
  }

  fillForWrite(): void {
    const pkt = probePacket(size);
    for (let i = 0; i < BATCH; i++) {
      if (this.hdr) writeVnetHeaderNone(this.slots[i]);
      this.slots[i].set(pkt, this.hdr);
      this.sizes[i] = this.hdr + size;
    }
  }

  drainAll(): void {
    while (this.dev.read(this.slots, this.sizes) > 0) { /* empty the queue */ }
  }
}

// ---- children in the namespace -----------------------------------------------------------------

const children = new Set<ChildProcess>();

function startInNs(code: string): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** A flood of `size`-byte datagrams for `secs` seconds, or until `count` are sent. */
function flood(opts: { secs?: number; count?: number }): ChildProcess {
  const payload = size - 28;
  return startInNs(`const s=require('node:dgram').createSocket('udp4');const b=Buffer.alloc(${payload});let n=0;
    const end=Date.now()+${(opts.secs ?? 1e6) * 1000};const max=${opts.count ?? 1e12};
    function go(){for(let i=0;i<256;i++){s.send(b,9,'198.18.0.2');n++}if(Date.now()<end&&n<max)setImmediate(go);else s.close(()=>{console.log(n)})}go();`);
}

/** The reflector's client: keeps REFLECT_WINDOW datagrams in flight to 198.18.0.2:7. */
function reflectClient(secs: number): ChildProcess {
  const payload = size - 28;
  return startInNs(`const s=require('node:dgram').createSocket('udp4');const b=Buffer.alloc(${payload});let got=0,last=-1;
    const end=Date.now()+${secs * 1000};
    s.on('message',()=>{got++;if(Date.now()<end)s.send(b,7,'198.18.0.2')});
    s.bind(0,'198.18.0.1',()=>{const top=()=>{for(let i=0;i<${REFLECT_WINDOW};i++)s.send(b,7,'198.18.0.2')};top();
      const t=setInterval(()=>{if(Date.now()>=end){clearInterval(t);s.close(()=>console.log(got));return}
        if(got===last)top();last=got},20)});`);
}

const exited = (c: ChildProcess): Promise<void> => new Promise((res) => (c.exitCode !== null ? res() : c.once('exit', () => res())));

// ---- main ------------------------------------------------------------------------------------

type Key = `${Workload}/${Mode}`;
const samples = new Map<Key, Sample[]>();
const add = (w: Workload, m: Mode, s: Sample): void => {
  const k: Key = `${w}/${m}`;
  if (!samples.has(k)) samples.set(k, []);
  samples.get(k)!.push(s);
};

let dev: TunDevice | undefined;
let bench: Bench | undefined;
let cleaned = false;

function cleanupSync(): void {
  if (cleaned) return;
  cleaned = true;
  for (const c of children) if (c.pid !== undefined) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
  bench?.close();
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

process.once('SIGINT', () => {
  process.stderr.write('\ninterrupted: cleaning up\n');
  cleanupSync();
  process.exit(130);
});
process.once('SIGTERM', () => {
  cleanupSync();
  process.exit(143);
});
process.once('exit', cleanupSync);

function fmt(s: Sample[], f: (x: Sample) => number, digits: number): string {
  const xs = s.map(f);
  return `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}..${Math.max(...xs).toFixed(digits)})`;
}

async function main(): Promise<void> {
  const load0 = loadavg()[0];
  ip('netns', 'add', ns);
  dev = TunDevice.open({ name: tunName, offload, batchSize: BATCH });
  ip('link', 'set', tunName, 'netns', ns);
  ip('-n', ns, 'addr', 'add', '198.18.0.1/24', 'dev', tunName);
  ip('-n', ns, 'link', 'set', tunName, 'txqueuelen', '200000', 'up');
  const b = (bench = new Bench(dev));
  process.stdout.write(`io_uring: ${b.ring.entries} SQ / ${b.ring.cqEntries} CQ entries, setup flags 0x${b.ring.setupFlags.toString(16)}, features 0x${b.ring.features.toString(16)}\n`);
  const rot = (r: number): Mode[] => modes.map((_, i) => modes[(i + r) % modes.length]);

  for (let r = 0; r < runs; r++) {
    const order = rot(r);
    if (workloads.includes('write')) {
      b.fillForWrite();
      for (const m of order) {
        if (m !== 'uring-armed') add('write', m, await b.measure(m, seconds, undefined, () => b.writeOnce(m)));
      }
    }
    if (workloads.includes('read')) {
      const child = flood({ secs: order.length * (seconds + 0.3) + 0.7 });
      await sleep(400);
      for (const m of order) {
        b.drainAll();
        add('read', m, await b.measure(m, seconds, child, async () => {
          if (m === 'uring-armed') return b.armedOnce(BATCH, 50, false);
          const n = b.readOnce(m);
          if (n === 0) await dev!.wait(50);
          return n;
        }));
      }
      await exited(child);
      b.drainAll();
    }
    if (workloads.includes('drain')) {
      for (const m of order) {
        const child = flood({ count: DRAIN_PACKETS });
        await exited(child);
        await sleep(50);
        // Armed drain: an enter that waits for nothing ends it once the queue is empty.
        add('drain', m, await b.measure(m, 30, undefined, () => (m === 'uring-armed' ? b.armedOnce(BATCH, 0, false) : b.readOnce(m)), true));
      }
    }
    if (workloads.includes('reflect')) {
      const child = reflectClient(order.length * (seconds + 0.2) + 0.5);
      await sleep(300);
      for (const m of order) {
        add('reflect', m, await b.measure(m, seconds, child, async () => {
          if (m === 'uring-armed') return b.armedOnce(2 * BATCH, 50, true);
          const n = b.reflectOnce(m);
          if (n === 0) {
            b.flushReflect(m);
            await dev!.wait(50);
          }
          return n;
        }));
        b.flushReflect(m);
      }
      await exited(child);
      b.drainAll();
    }
    process.stdout.write(`run ${r + 1}/${runs} done\n`);
  }

  const load1 = loadavg()[0];
  process.stdout.write(`\noffload ${offload}, ${size}-byte packets, batch ${BATCH}, ${runs} runs of ${seconds} s, medians (min..max); ` +
    `${cpus().length} CPUs, load average ${load0.toFixed(2)} before, ${load1.toFixed(2)} after\n`);
  process.stdout.write('workload  mode       kpps                 CPU us/packet        saving vs plain    read fill  errors  iou-wrk  noisy runs\n');
  for (const w of workloads) {
    const plain = samples.get(`${w}/plain`);
    const plainCpu = plain ? median(plain.map((s) => s.cpuUs / s.packets)) : undefined;
    for (const m of modes) {
      const s = samples.get(`${w}/${m}`);
      if (!s) continue;
      const cpu = median(s.map((x) => x.cpuUs / x.packets));
      const saving = plainCpu !== undefined && m !== 'plain' ? `${(plainCpu - cpu).toFixed(3)} us ${(((plainCpu - cpu) / plainCpu) * 100).toFixed(0)}%` : '';
      const fill = s[0].fill === undefined ? '' : median(s.map((x) => x.fill ?? 0)).toFixed(2);
      const noisy = s.filter((x) => x.otherCorePct > 15).length;
      process.stdout.write(`${w.padEnd(9)} ${m.padEnd(10)} ${fmt(s, (x) => x.packets / x.seconds / 1e3, 0).padEnd(20)} ` +
        `${fmt(s, (x) => x.cpuUs / x.packets, 3).padEnd(20)} ${saving.padEnd(18)} ${fill.padEnd(10)} ` +
        `${String(s.reduce((a, x) => a + x.errors, 0)).padEnd(7)} ${String(Math.max(...s.map((x) => x.iouWorkers))).padEnd(8)} ` +
        `${noisy}/${s.length}${noisy ? ` (others up to ${Math.max(...s.map((x) => x.otherCorePct)).toFixed(0)}% of a core)` : ''}\n`);
    }
  }
  if (b.errnos.size) process.stdout.write(`failed read CQEs by errno: ${[...b.errnos].map(([e, n]) => `${e}: ${n}`).join(', ')}\n`);
  const drop = samples.get('drain/plain');
  if (drop) process.stdout.write(`(drain: ${DRAIN_PACKETS} packets queued per run; read fill = read CQEs with data per READ SQE)\n`);
}

try {
  await main();
} finally {
  await dev?.close();
  cleanupSync();
}
