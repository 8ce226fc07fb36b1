// The standalone director: a TUN device owns the VIPs, every packet routed into it goes
// through the engine (one WASM call per batch) and comes back out rewritten, as IPVS's NAT
// mode does inside the kernel.
//
//   client --> VIP route --> wvs0 (TUN) --> read batch --> engine.process --> write batch --> kernel
//   real server --> policy rule "from RIP" --> wvs0 --> ... SNAT back to the VIP ... --> kernel
//
// Threads. One thread, the one that starts the Gateway (Node's main thread for the CLI), runs
// everything that touches the data plane: reads, process() and the scheduler calls it makes,
// expiry, and every configuration change (reload, the control socket). The data plane is
// single-writer and needs no locks because of that: a control request is an ordinary
// event-loop callback, so it runs between two batches, never inside one, and costs nothing per
// packet. A libuv pool thread sits in poll() on the TUN while no packet is ready
// (TunDevice.wait), so idle costs no CPU and the event loop is never blocked. With the writer
// thread (writer.ts, the default over a TUN) the write(2) calls of batches that filled the
// batch, and of any batch behind them, run on a worker, which touches nothing but the bytes and
// lengths of the slots it is handed; short batches while it is idle are written here.
//
// Batching costs no latency: after a wake-up the loop reads what is ready (until EAGAIN or a
// batch), processes it with one call, writes it back and repeats; a lone packet is never held
// back. After a few batches in a row it yields to the event loop once, so control requests,
// timers and signals are served even under full load.
import { EventEmitter } from 'eventemitter3';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ControlServer } from '../control/server.js';
import type { DestHealthEvent, QuorumEvent } from '../health/manager.js';
import type { GatewayInfo } from '../control/protocol.js';
import { Engine, type EngineOptions } from '../engine/engine.js';
import { WasmvsError } from '../errors.js';
import { parseRules, type RuleSet } from '../ipvsadm/rules.js';
import { Responder, type ResponderCounters, type ResponderOptions } from '../responder/responder.js';
import type { Device, DeviceStats } from './device.js';
import { HostNetwork } from './hostnet.js';
import { silentLogger, type Logger } from './log.js';
import { applyChanges, describeChange, planChanges, type ConfigChange } from './reload.js';
import { TunDevice } from './tun.js';
import { packageVersion } from '../version.js';
import { VNET_F_NEEDS_CSUM, vnetFlags, vnetHeaderSupported } from './vnet.js';
import { WRITER_REGIONS, WriterThread } from './writer.js';

export interface GatewayOptions {
  /** The rules file (ipvsadm-save syntax); reload() re-reads it. One of rulesFile, rules. */
  rulesFile?: string;
  /** The rules as text (library use); reload(text) replaces them. */
  rules?: string;
  /** TUN device name (default wvs0). */
  tun?: string;
  /** virtio_net_hdr offload: GSO super-packets, partial checksums (default true). */
  offload?: boolean;
  /** The TUN's MTU (default 1500). */
  mtu?: number;
  /**
   * Write forwarded packets on a second thread (writer.ts), so the kernel work each write(2)
   * carries runs on another core while this thread reads and processes the next batch
   * (default true). Only over a device with a file descriptor (a TUN); over any other device
   * the gateway writes on its own thread.
   */
  writerThread?: boolean;
  /**
   * Threaded NAPI on the TUN (tun.ts): the kernel receives written packets in a kernel thread,
   * in batches through GRO, instead of inside each write(2). Default: on without offload
   * (where each write is one MTU-sized packet), off with offload (super-packets already carry
   * the batching, and request/response traffic would pay the NAPI queue's poll and GRO, and
   * the thread's wake-ups, on every packet).
   * Measured in README, "Gateway benchmark". Only over a TUN.
   */
  napiThread?: boolean;
  /**
   * The writer thread submits each batch's writes as one io_uring_enter (uring.ts) instead of
   * a write(2) per packet, where the kernel allows io_uring (default true; else write(2)). Only
   * over a TUN. Measured in README, "Gateway benchmark".
   */
  ioUring?: boolean;
  /** The TUN's transmit queue length (default 10000: the kernel's 500 drops bursts). */
  txqueuelen?: number;
  /** Select real servers' replies by incoming interface instead of by source address. */
  realServerIfaces?: string[];
  /** Answer ARP for the VIPs on these links (proxy neighbour entries). */
  arpIfaces?: string[];
  /** Maximum live connections (engine connCapacity, default 2^20). */
  connCapacity?: number;
  /** Further engine options (timeouts, expireNodestConn, ...); the ring is sized by the gateway. */
  engine?: Omit<EngineOptions, 'slotCount' | 'slotSize' | 'connCapacity'>;
  /** Answers to packets addressed to a VIP but not served (rate limit). */
  responder?: ResponderOptions;
  /**
   * Serve the control socket (protocol in host/control/) at this path, mode 0600. A stale
   * socket file is replaced; one held by a live gateway makes start() refuse. Default: none.
   */
  control?: string;
  /** Where the host-network journal lives (default /run/wasmvs). */
  stateDir?: string;
  /**
   * A device to run over instead of a TUN (a FakeDevice in tests, a benchmark's driver). The
   * gateway then changes nothing on the host: no routes, rules or sysctls.
   */
  device?: Device;
  logger?: Logger;
}

export interface GatewayCounters {
  /** Batches processed (one engine call each). */
  batches: number;
  /** Packets written back to the kernel, generated answers included. */
  written: number;
  /** Non-IPv4 packets that reached the TUN; never written back. */
  notIpv4: number;
  /** Packets whose virtio_net_hdr the engine cannot handle, dropped. */
  badVnetHeader: number;
  /** Whether forwarded packets are written on the writer thread (GatewayOptions.writerThread). */
  writerThread: boolean;
  /** Whether the TUN's written packets go to a NAPI kernel thread (GatewayOptions.napiThread). */
  napiThread: boolean;
  /** Whether the writer thread writes through io_uring (GatewayOptions.ioUring). */
  writerIoUring: boolean;
  /** Packets written on the writer thread (included in `written`). */
  writerWritten: number;
  /** Times the loop found every ring region still queued for the writer thread and waited. */
  writerWaits: number;
  device: DeviceStats;
  /** Answers to packets addressed to a VIP that no service serves. */
  replies: ResponderCounters;
}

export interface GatewayEvents {
  /** Forwarding: the device is open and the host routes are in place. */
  ready: () => void;
  /** A reload applied these changes (an empty list: nothing changed). */
  reload: (changes: ConfigChange[]) => void;
  /** Something failed without stopping forwarding (a reload refused, a host sync failed). */
  error: (err: Error) => void;
  stopped: () => void;
  /** Health checks (`--keepalived`, host/health/): a real server's checks pass again; it is back in its pool. */
  'dest-up': (e: DestHealthEvent) => void;
  /** Health checks: a real server failed; it left its pool (or, with inhibit_on_failure, went to weight 0). */
  'dest-down': (e: DestHealthEvent) => void;
  /** Health checks: a virtual server's live weight fell below quorum - hysteresis (a sorry server goes in). */
  'quorum-lost': (e: QuorumEvent) => void;
  /** Health checks: the live weight reached quorum + hysteresis again (the sorry server goes out). */
  'quorum-gained': (e: QuorumEvent) => void;
}

/** Loop tuning. */
const WAIT_MS = 200; // poll() timeout: bounds how long stop() waits for the pool thread
const TURN_BATCHES = 16; // batches in a row before the loop yields to the event loop
// Writes on a second thread by default: with the hand-off of full batches only, the ratio to
// kernel NAT in npm run bench:gateway held or rose in every test (keep-alive +7%, 4 streams
// +18%, UDP +15%; README, "Gateway benchmark"); handing over every batch lost a third of the
// HTTP rate. Over a device without an fd (FakeDevice) the gateway
// always writes itself.
const DEFAULT_WRITER_THREAD = true;
const TICK_MS = 1000; // idle expiry and the 2-second rate estimator keep running
const SYNC_EVERY_TICKS = 5; // host routes/rules follow real servers whose connections ended
const TABLE_FULL_LOG_MS = 10_000;
const OFFLOAD_SLOT = 65_600; // 65,535 + the 10-byte virtio_net_hdr, a multiple of 64
const CAP_NET_ADMIN = 12;

/** True when this process holds CAP_NET_ADMIN (root has it). */
function hasNetAdmin(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << BigInt(CAP_NET_ADMIN))) !== 0n;
  } catch {
    return process.getuid?.() === 0;
  }
}

function readRules(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (cause) {
    throw new WasmvsError('WASMVS_FILE', `cannot read rules ${file}: ${(cause as Error).message}`, { cause });
  }
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Gateway extends EventEmitter<GatewayEvents> {
  readonly engine: Engine;
  readonly device: Device;
  private readonly options: GatewayOptions;
  private readonly log: Logger;
  private readonly hostnet: HostNetwork | undefined;
  private readonly control: ControlServer | undefined;
  private readonly responder: Responder;
  /**
   * Slot views, in regions of 2 batch slots: [0, batch) of a region are read into, [batch,
   * 2 batch) hold generated answers. One region, or WRITER_REGIONS with a writer thread (a
   * region is refilled only once the writer gave it back).
   */
  private readonly slots: Uint8Array[];
  private readonly regionSlots: number;
  /** Per region: its read slots, and its part of sizes (read() fills sizes from index 0). */
  private readBufs: Uint8Array[][] = [];
  private readSizes: Uint32Array[] = [];
  /** Packet lengths by slot index, and the slots to write by region (shared with the writer). */
  private sizes: Uint32Array;
  private writeIdx: Uint32Array;
  private writeIdxOf: Uint32Array[] = [];
  private readonly batch: number;
  private writer: WriterThread | undefined;
  /** What earlier writer threads wrote (one that failed is replaced by this thread's writes). */
  private writerPast = { txPackets: 0, txErrors: 0, waits: 0 };
  private healthSource: (() => unknown[]) | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private ticker: NodeJS.Timeout | undefined;
  private ticks = 0;
  private lastTableFull = 0;
  private lastTableFullLog = -Infinity;
  private synced = { vips: '', rips: '' };
  private syncing: Promise<void> = Promise.resolve();
  private readonly counts = { batches: 0, written: 0, notIpv4: 0, badVnetHeader: 0 };

  /** Opens the device, sets up the host and starts forwarding; resolves once ready. */
  static async start(options: GatewayOptions): Promise<Gateway> {
    const log = options.logger ?? silentLogger;
    if ((options.rules === undefined) === (options.rulesFile === undefined)) {
      throw new WasmvsError('WASMVS_BAD_OPTION', 'give the rules as exactly one of rulesFile or rules');
    }
    const text = options.rules ?? readRules(options.rulesFile as string);
    const rules = parseRules(text); // refuses a bad file before anything changes
    for (const flag of ['writerThread', 'napiThread', 'ioUring'] as const) {
      const v = options[flag];
      if (v !== undefined && typeof v !== 'boolean') throw new WasmvsError('WASMVS_BAD_OPTION', `${flag} must be true or false, got ${String(v)}`);
    }
    if (!options.device && !hasNetAdmin()) throw new WasmvsError('WASMVS_NOT_ROOT', 'the gateway needs root (CAP_NET_ADMIN) to create its TUN device and routes');
    // The control socket is claimed next: a live gateway holding it refuses this one before
    // anything on the host changes. Requests wait for the gateway to exist.
    let gw: Gateway | undefined;
    const control = options.control === undefined ? undefined : await ControlServer.listen(options.control, {
      get engine() {
        if (!gw) throw new WasmvsError('WASMVS_CONTROL', 'the gateway is still starting');
        return gw.engine;
      },
      info: () => (gw as Gateway).info(),
      health: () => gw?.healthSource?.() ?? [],
      changed: () => (gw ? gw.syncHost() : Promise.resolve()),
    }, log);
    let device = options.device;
    let hostnet: HostNetwork | undefined;
    try {
      if (!device) ({ device, hostnet } = await Gateway.openHost(options, rules, log));
      gw = new Gateway(options, device, hostnet, rules, log, control);
      if (hostnet) {
        await hostnet.setup();
        await gw.syncHost();
      }
      if (gw.wantsWriter()) await gw.startWriter();
    } catch (err) {
      await gw?.writer?.stop();
      gw = undefined;
      await hostnet?.teardown().catch((e: unknown) => log.error('host', `cleanup after a failed start: ${(e as Error).message}`));
      if (device !== options.device) await device?.close();
      await control?.close();
      throw err;
    }
    gw.run();
    log.info('ready', `forwarding on ${device.name}: ${rules.services.length} services, ${rules.services.reduce((n, s) => n + s.dests.length, 0)} real servers${device.headerLen ? ', offload on' : ', offload off'}${gw.writer ? `, writes on a second thread${gw.writer.ioUring ? ' through io_uring' : ''}` : ''}${gw.napiThreaded() ? ', kernel NAPI thread' : ''}`);
    gw.emit('ready');
    return gw;
  }

  /**
   * The TUN and the host network, after the checks that refuse to start: a local VIP, the
   * TUN name in use. A SIGKILLed gateway's leftovers are undone first.
   */
  private static async openHost(options: GatewayOptions, rules: RuleSet, log: Logger): Promise<{ device: Device; hostnet: HostNetwork }> {
    const tun = options.tun ?? 'wvs0';
    const hostLog = (line: string) => log.info('host', line);
    await HostNetwork.recover({ tun, stateDir: options.stateDir, log: hostLog });
    const hostnet = new HostNetwork({
      tun, mtu: options.mtu ?? 1500, txqueuelen: options.txqueuelen ?? 10_000,
      realServerIfaces: options.realServerIfaces, arpIfaces: options.arpIfaces, stateDir: options.stateDir, log: hostLog,
    });
    await hostnet.checkVips(vipsOf(rules)); // before the TUN exists
    const offload = options.offload ?? true;
    const napi = options.napiThread ?? !offload;
    const device = TunDevice.open({ name: tun, offload, napi });
    if (device.napiProblem !== undefined) log.warn('napi', `${device.napiProblem}; the kernel receives written packets inside each write()`);
    return { device, hostnet };
  }

  private constructor(options: GatewayOptions, device: Device, hostnet: HostNetwork | undefined, rules: RuleSet, log: Logger, control: ControlServer | undefined) {
    super();
    this.control = control;
    this.options = options;
    this.device = device;
    this.hostnet = hostnet;
    this.log = log;
    this.batch = Math.max(1, device.batchSize);
    this.regionSlots = this.batch * 2;
    const writerThread = options.writerThread ?? DEFAULT_WRITER_THREAD;
    const regions = writerThread && device.fd !== undefined ? WRITER_REGIONS : 1;
    const slotSize = device.headerLen > 0 ? OFFLOAD_SLOT : Math.ceil(((options.mtu ?? 1500) + device.headerLen) / 64) * 64;
    this.engine = new Engine({
      ...options.engine, ...(options.connCapacity === undefined ? {} : { connCapacity: options.connCapacity }), slotCount: this.regionSlots * regions, slotSize,
    });
    this.engine.restore(rules);
    this.responder = new Responder(options.responder);
    this.slots = Array.from({ length: this.regionSlots * regions }, (_, i) => this.engine.slot(i));
    this.sizes = new Uint32Array(this.slots.length);
    this.writeIdx = new Uint32Array(this.slots.length);
    this.viewRegions();
    this.engine.on('error', (err: Error) => this.fault('scheduler', err));
    // However the configuration changes (a library call on gateway.engine too), the host
    // routes follow at once; syncHost() queues and compares, so a reload's many calls cost
    // one sync that finds work and some that return at once.
    this.engine.on('config', () => { this.syncHost().catch((err: unknown) => this.fault('host', err as Error)); });
  }

  /** Whether the ring was cut into regions for a writer thread (the option, over a TUN). */
  private wantsWriter(): boolean {
    return this.slots.length > this.regionSlots;
  }

  /** Per-region views over slots, sizes and writeIdx (again whenever those arrays change). */
  private viewRegions(): void {
    const regions = this.slots.length / this.regionSlots;
    this.readBufs = [];
    this.readSizes = [];
    this.writeIdxOf = [];
    for (let r = 0; r < regions; r++) {
      const base = r * this.regionSlots;
      this.readBufs.push(this.slots.slice(base, base + this.batch));
      this.readSizes.push(this.sizes.subarray(base, base + this.batch));
      this.writeIdxOf.push(this.writeIdx.subarray(base, base + this.regionSlots));
    }
  }

  /**
   * Starts the writer thread over the device's fd and the engine's memory. Should it fail to
   * start, the gateway writes on its own thread, as it does without the option, and says so:
   * the thread changes where the CPU time goes, never what is forwarded.
   */
  private async startWriter(): Promise<void> {
    try {
      this.writer = await WriterThread.start({
        fd: this.device.fd as number, memory: this.engine.memory as unknown as WebAssembly.Memory, slots: this.slots, regionSlots: this.regionSlots,
        ioUring: (this.options.ioUring ?? true) && this.device instanceof TunDevice,
      });
    } catch (err) {
      this.log.warn('writer', `${(err as Error).message}; writing on the gateway's own thread`);
      return;
    }
    this.sizes = this.writer.sizes;
    this.writeIdx = this.writer.indices;
    this.viewRegions();
  }

  /**
   * A writer thread that died (not the TUN going away: that stops the gateway) is replaced by
   * this thread's own writes; the batches it held are lost, as a full queue loses packets.
   */
  private dropWriter(why: string): void {
    const writer = this.writer;
    if (!writer) return;
    this.writer = undefined;
    const st = writer.stats();
    this.writerPast = { txPackets: this.writerPast.txPackets + st.txPackets, txErrors: this.writerPast.txErrors + st.txErrors, waits: this.writerPast.waits + writer.waits };
    this.fault('writer', new WasmvsError('WASMVS_TUN', `${why}: writing on the gateway's own thread from now on`));
    void writer.stop();
  }

  /**
   * Re-reads the rules (the file, or `text` when given) and applies the difference. A bad file
   * changes nothing: the error is thrown (and logged) and the running configuration stays.
   */
  async reload(text?: string): Promise<ConfigChange[]> {
    try {
      const source = text ?? (this.options.rulesFile !== undefined ? readRules(this.options.rulesFile) : undefined);
      if (source === undefined) throw new WasmvsError('WASMVS_BAD_OPTION', 'reload() needs the rules text: the gateway was started without a rules file');
      const next = parseRules(source);
      const current = parseRules(this.engine.save());
      if (this.hostnet) await this.hostnet.checkVips(vipsOf(next).filter((v) => !vipsOf(current).includes(v)));
      const changes = planChanges(current, next);
      applyChanges(this.engine, changes, current);
      await this.syncHost();
      this.log.info('reload', changes.length === 0 ? 'rules unchanged' : `${changes.length} changes applied`);
      for (const c of changes) this.log.info(c.op.endsWith('dest') ? 'real-server' : 'service', describeChange(c));
      this.emit('reload', changes);
      return changes;
    } catch (err) {
      this.log.error('reload', `refused, the running configuration is unchanged: ${(err as Error).message}`);
      throw err;
    }
  }

  /**
   * Where the control socket's `health` request reads from: the health checks that keep this
   * gateway's table (host/health/healthManagerFor sets it).
   */
  setHealthSource(source: (() => unknown[]) | undefined): void {
    this.healthSource = source;
  }

  /** What `wasmvs adm` shows in ipvsadm's header line, and --version. */
  info(): GatewayInfo {
    return { version: packageVersion(), connCapacity: this.engine.connCapacity, device: this.device.name, offload: this.device.headerLen > 0, pid: process.pid };
  }

  counters(): GatewayCounters {
    const device = this.device.stats();
    const st = this.writer?.stats() ?? { txPackets: 0, txErrors: 0 };
    device.txPackets += st.txPackets + this.writerPast.txPackets;
    device.txErrors += st.txErrors + this.writerPast.txErrors;
    return {
      ...this.counts, written: this.counts.written + st.txPackets + this.writerPast.txPackets,
      writerThread: this.writer !== undefined, napiThread: this.napiThreaded(), writerIoUring: this.writer?.ioUring ?? false, writerWritten: st.txPackets + this.writerPast.txPackets,
      writerWaits: (this.writer?.waits ?? 0) + this.writerPast.waits,
      device, replies: this.responder.counters(),
    };
  }

  private napiThreaded(): boolean {
    return this.device instanceof TunDevice && this.device.napiThreaded;
  }

  /** Stops forwarding, closes the device and removes everything the gateway added to the host. */
  stop(): Promise<void> {
    if (!this.stopped) this.stopped = this.shutdown();
    return this.stopped;
  }

  /** Synchronous last-resort cleanup of the host for process 'exit' (routes, rules, sysctls). */
  stopSync(): void {
    this.stopping = true;
    this.hostnet?.teardownSync();
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.ticker) clearInterval(this.ticker);
    await this.loopDone;
    // The writer drains what is queued and exits before the device (and its fd) goes.
    await this.writer?.stop();
    await this.control?.close();
    await this.syncing;
    // Routes and rules go while the TUN still exists, each removal logged as it happens;
    // then the device (the kernel deletes a non-persistent TUN with its last fd).
    if (this.hostnet) await this.hostnet.teardown();
    await this.device.close();
    this.log.info('stop', `stopped; ${this.engine.counters().liveConns} connections dropped with the table`);
    this.emit('stopped');
  }

  // ---- the forwarding loop ---------------------------------------------------------------

  private run(): void {
    this.ticker = setInterval(() => this.tick(), TICK_MS);
    this.loopDone = this.loop().catch((err: unknown) => {
      // The loop itself never throws on bad packets (the engine counts them); reaching here
      // is a bug or a device failure: log it and stop cleanly rather than spin.
      this.fault('loop', err as Error);
      void this.stop();
    });
  }

  private async loop(): Promise<void> {
    let more = false;
    while (!this.stopping) {
      if (more) await yieldToEventLoop();
      else if (!(await this.device.wait(WAIT_MS))) continue;
      if (this.stopping) break;
      more = this.drain();
    }
  }

  /** Up to TURN_BATCHES batches; true when packets are still waiting. */
  private drain(): boolean {
    for (let b = 0; b < TURN_BATCHES; b++) {
      const writer = this.writer;
      let base = 0;
      if (writer) {
        if (!writer.acquire()) {
          // Every region is still the writer's: give the event loop a turn (control
          // requests, a dead worker's exit) and come back.
          this.checkWriter();
          return true;
        }
        base = writer.base;
      }
      const region = base / this.regionSlots;
      const n = this.device.read(this.readBufs[region], this.readSizes[region]);
      if (n === 0) return false;
      const w = this.forwardBatch(base, n);
      if (w > 0) {
        // Hand the batch to the writer when packets are waiting behind it (the read filled
        // the batch: the next read overlaps these writes) or when the writer still holds
        // earlier batches (order). A short batch with the writer idle is written here: the
        // hand-off would add a thread wake-up to a latency-bound exchange (measured: README).
        if (writer && this.writer === writer && (n === this.batch || !writer.idle)) writer.publish(w);
        else this.counts.written += this.device.write(this.slots, this.sizes, this.writeIdxOf[region], w);
      }
      if (n < this.batch) return false; // the read stopped at EAGAIN: nothing more is ready
    }
    return true;
  }

  /** Lists the slots of the batch in region `base` to write (in writeIdx); returns how many. */
  private forwardBatch(base: number, n: number): number {
    const engine = this.engine;
    const h = this.device.headerLen;
    const now = performance.now();
    for (let i = base; i < base + n; i++) {
      let partial = false;
      if (h > 0) {
        if (!vnetHeaderSupported(this.slots[i], this.sizes[i])) {
          this.counts.badVnetHeader++;
          engine.setSlot(i, 0);
          continue;
        }
        partial = (vnetFlags(this.slots[i]) & VNET_F_NEEDS_CSUM) !== 0;
      }
      engine.setSlot(i, this.sizes[i], h, partial);
    }
    engine.process(base, n, now);
    // The FTP helper may have resized a 227 reply (only in a batch that holds one).
    if (engine.lastBatchResized) engine.slotLengths(this.sizes, n, base);
    this.counts.batches++;
    // The region's write list starts at writeIdx[base] (the writer thread reads it there).
    let w = base;
    let answers = 0;
    for (let i = base; i < base + n; i++) {
      const v = engine.verdict(i);
      if (v === 'forward') {
        this.writeIdx[w++] = i;
      } else if (v === 'pass') {
        // Only IPv4 is routed into the TUN; anything else (the kernel's own IPv6 chatter on
        // the link) is not written back into the kernel as if it had come from outside.
        if (engine.reason(i) === 'not-ipv4') this.counts.notIpv4++;
        else this.writeIdx[w++] = i;
      } else if (v === 'local') {
        const r = base + this.batch + answers;
        const len = this.responder.answer(this.slots[i].subarray(h, this.sizes[i]), this.slots[r].subarray(h), now);
        if (len > 0) {
          if (h > 0) this.slots[r].fill(0, 0, h); // no offload: the answer's checksums are complete
          this.sizes[r] = len + h;
          this.writeIdx[w++] = r;
          answers++;
        }
      }
    }
    return w - base;
  }

  // ---- timers, host sync, faults ---------------------------------------------------------

  /**
   * Acts on a writer thread's failure: the TUN gone (its write() said so) stops the gateway
   * as a device failure does; a worker that died is replaced by this thread's own writes.
   */
  private checkWriter(): void {
    const why = this.writer?.failure;
    if (why === undefined || this.stopping) return;
    if (this.writer?.tunGone) {
      this.fault('device', new WasmvsError('WASMVS_TUN', `${this.device.name} failed (${why}): stopping`));
      void this.stop();
    } else {
      this.dropWriter(why);
    }
  }

  private tick(): void {
    this.checkWriter();
    if (this.device.failure !== undefined && !this.stopping) {
      this.fault('device', new WasmvsError('WASMVS_TUN', `${this.device.name} failed (${this.device.failure}): stopping`));
      void this.stop();
      return;
    }
    try {
      this.engine.expire(performance.now());
      const full = this.engine.counters().drops['table-full'];
      const now = performance.now();
      if (full > this.lastTableFull && now - this.lastTableFullLog >= TABLE_FULL_LOG_MS) {
        this.log.warn('table-full', `connection table full (${this.engine.connCapacity} connections): ${full - this.lastTableFull} new connections refused`);
        this.lastTableFullLog = now;
        this.lastTableFull = full;
      }
      if (++this.ticks % SYNC_EVERY_TICKS === 0) this.syncHost().catch((err: unknown) => this.fault('host', err as Error));
    } catch (err) {
      this.fault('tick', err as Error);
    }
  }

  /**
   * Host routes and rules follow the configuration, however it changed (reload, control
   * socket, a library call): a VIP route per virtual address and a rule per real-server
   * address the data plane still translates for, deleted servers whose connections live on
   * included (their replies must still come back through the TUN). Runs after each change
   * made through the gateway and every few seconds.
   */
  syncHost(): Promise<void> {
    // One sync at a time (a timer's and a control request's would race on the journal); each
    // reads the addresses when its turn comes.
    const run = this.syncing.then(async () => {
      if (!this.hostnet || this.stopping) return;
      const { vaddrs, daddrs } = this.engine.liveAddresses();
      if (vaddrs.join() === this.synced.vips && daddrs.join() === this.synced.rips) return;
      await this.hostnet.sync({ vips: vaddrs, rips: daddrs });
      this.synced = { vips: vaddrs.join(), rips: daddrs.join() };
    });
    this.syncing = run.catch(() => {});
    return run;
  }

  private fault(where: string, err: Error): void {
    this.log.error(where, err.message);
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }
}

function vipsOf(rules: RuleSet): string[] {
  return [...new Set(rules.services.map((s) => s.vaddr))];
}
