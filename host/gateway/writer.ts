// The gateway's writer thread: the write(2) system calls of forwarded packets run on a second
// thread, so the kernel work each one carries (forwarding, the bridge, the veth, the receiving
// endpoint's stack, all in the writer's context) runs on the second core while the gateway's
// thread reads and processes the next batch. The data plane stays single-writer: only the
// gateway's thread calls engine.process(), the schedulers, expiry and configuration; this
// thread touches nothing but the bytes and lengths of slots it has been handed.
//
// The hand-off costs no copy and no allocation per packet. The engine's ring is cut into
// REGIONS regions of one batch each (read slots, then answer slots); the gateway's thread
// fills a region, lists the slots to write in shared memory, and passes the whole region over
// by bumping HEAD; the writer writes it from WASM memory and gives it back by bumping TAIL:
//
//   control (SharedArrayBuffer)
//   +------+------+------+-----------+-------+---------------+-------------------+-------------------+
//   | HEAD | TAIL | STOP | FAIL_ERRNO| READY | tx, txErrors  | counts[REGIONS]   | indices[slotCount]| sizes[slotCount]
//   +------+------+------+-----------+-------+---------------+-------------------+-------------------+
//     int32 counters (wrap)            u64 (written by the writer)   region r lists its slots at
//                                                                    indices[r*regionSlots ...]
//
// Which batches go over is the gateway's choice (gateway.ts drain()): those that filled the
// batch, and any behind one still queued, so the order on the wire stays the read order.
//
// A region is never reused before the writer released it. Back-pressure: with every region
// queued, the gateway's thread waits (Atomics.wait, a few ms at a time, then a turn of the
// event loop) instead of writing itself. Every queued region belongs to the writer, so writing
// itself would need a second region to read into anyway, and the writer being behind means the
// kernel's write path is the bound: reading faster would only move the drops from the TUN's
// queue (which holds txqueuelen packets meanwhile) to the receivers' and take the CPU the
// writes need.
//
// Starting: Node 20 cannot start a worker from a .ts file, even under tsx (TOOLCHAIN.md).
// From the build the worker is writer-worker.js itself; from sources (tests, the benchmark,
// run under tsx) it is writer-boot.mjs, which registers tsx and imports writer-worker.ts.
// Both sit beside this module, so import.meta.url names them in either layout (as
// host/testbed/servers.ts locates its programs).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { WasmvsError } from '../errors.js';
import type { DeviceStats } from './device.js';

// ---- the shared layout (writer-worker.ts reads the same constants) ---------------------------
export const CTL_HEAD = 0; // regions published by the gateway's thread
export const CTL_TAIL = 1; // regions written and released by the writer
export const CTL_STOP = 2; // set by stop(): the writer drains what is queued and exits
export const CTL_FAIL_ERRNO = 3; // first errno meaning the TUN is gone (EBADFD, EIO)
export const CTL_READY = 4; // set by the writer once write() is declared
export const CTL_URING = 5; // set by the writer: URING_ON (one io_uring_enter per region) or URING_OFF (write(2))
export const URING_ON = 1;
export const URING_OFF = 2;
const CONTROL_INTS = 8; // 32 bytes, so the u64 statistics that follow are aligned
export const STAT_TX_PACKETS = 0;
export const STAT_TX_ERRORS = 1;

/** Regions in the ring (a power of two: the int32 counters index it with a mask). */
export const WRITER_REGIONS = 4;
/** How long one back-pressure wait blocks the gateway's thread before a turn of the event loop. */
const ACQUIRE_WAIT_MS = 5;
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 2_000;

/** What writer-worker.ts gets in workerData. */
export interface WriterWorkerData {
  fd: number;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  controlInts: number;
  statsOffset: number;
  countsOffset: number;
  indicesOffset: number;
  sizesOffset: number;
  regions: number;
  regionSlots: number;
  slotCount: number;
  slotSize: number;
  /** Byte offset in `memory` of each ring slot. */
  slotOffsets: number[];
  /** Write each region with io_uring (one io_uring_enter for all its packets) where the kernel allows. */
  ioUring: boolean;
}

export interface WriterOptions {
  /** The TUN's file descriptor (O_NONBLOCK; the writer only ever write(2)s to it). */
  fd: number;
  /** The engine's shared memory (the ring slots live in it). */
  memory: WebAssembly.Memory;
  /** The ring's slot views, REGIONS * regionSlots of them (engine.slot(i)). */
  slots: readonly Uint8Array[];
  /** Slots per region: a batch's read slots and its answer slots. */
  regionSlots: number;
  /**
   * Submit each region's writes as one io_uring_enter (uring.ts) instead of a write(2) per
   * packet, falling back to write(2) where io_uring is refused (default false). Only for a
   * descriptor whose writes never block and are never short, such as a TUN: io_uring would
   * hand a blocking write to a kernel worker and may write part of it.
   */
  ioUring?: boolean;
}

const FROM_SOURCES = import.meta.url.endsWith('.ts');

function workerEntry(): URL {
  const url = new URL(FROM_SOURCES ? './writer-boot.mjs' : './writer-worker.js', import.meta.url);
  if (!existsSync(fileURLToPath(url))) throw new WasmvsError('WASMVS_FILE', `the writer thread's ${fileURLToPath(url)} is missing (run npm run build)`);
  return url;
}

/** The writer thread and the ring of regions it shares with the gateway's thread. */
export class WriterThread {
  readonly regions = WRITER_REGIONS;
  readonly regionSlots: number;
  /** Packet lengths by slot index (the engine's slotLengths and the device's read fill it). */
  readonly sizes: Uint32Array;
  /** Region r's slots to write, at [r * regionSlots, r * regionSlots + count). */
  readonly indices: Uint32Array;
  /** Times the gateway's thread found every region queued and waited for the writer. */
  waits = 0;
  private readonly ctl: Int32Array;
  private readonly stats64: BigUint64Array;
  private readonly counts: Int32Array;
  private readonly worker: Worker;
  private head = 0;
  private exited = false;
  private exitText: string | undefined;
  private stopping: Promise<void> | undefined;

  private constructor(worker: Worker, control: SharedArrayBuffer, data: WriterWorkerData) {
    this.worker = worker;
    this.regionSlots = data.regionSlots;
    this.ctl = new Int32Array(control, 0, CONTROL_INTS);
    this.stats64 = new BigUint64Array(control, data.statsOffset, 2);
    this.counts = new Int32Array(control, data.countsOffset, data.regions);
    this.indices = new Uint32Array(control, data.indicesOffset, data.slotCount);
    this.sizes = new Uint32Array(control, data.sizesOffset, data.slotCount);
    worker.on('error', (err: Error) => { this.exitText ??= `the writer thread failed: ${err.message}`; });
    worker.on('exit', (code: number) => {
      this.exited = true;
      if (!this.stopping) this.exitText ??= `the writer thread exited (code ${code})`;
    });
  }

  /**
   * Starts the worker and resolves once it can write. Refuses with WASMVS_BAD_OPTION when
   * the memory is not shared or the slots do not form REGIONS regions, WASMVS_FILE when the
   * worker's file is missing, WASMVS_TUN when it fails to start; nothing is left running.
   */
  static async start(options: WriterOptions): Promise<WriterThread> {
    const { fd, memory, slots, regionSlots } = options;
    if (!(memory.buffer instanceof SharedArrayBuffer)) throw new WasmvsError('WASMVS_BAD_OPTION', 'the writer thread needs the engine\'s shared memory');
    if (!Number.isInteger(fd) || fd < 0) throw new WasmvsError('WASMVS_BAD_OPTION', `the writer thread needs a file descriptor, got ${String(fd)}`);
    if (!Number.isInteger(regionSlots) || regionSlots < 1 || slots.length !== WRITER_REGIONS * regionSlots) {
      throw new WasmvsError('WASMVS_BAD_OPTION', `the writer thread needs ${WRITER_REGIONS} regions of ${regionSlots} slots, got ${slots.length} slots`);
    }
    const slotCount = slots.length;
    const slotSize = slots[0].length;
    for (const s of slots) {
      if (s.buffer !== memory.buffer || s.length !== slotSize) throw new WasmvsError('WASMVS_BAD_OPTION', 'the writer thread\'s slots must be equal views into the engine\'s memory');
    }
    const statsOffset = CONTROL_INTS * 4;
    const countsOffset = statsOffset + 16;
    const indicesOffset = countsOffset + WRITER_REGIONS * 4;
    const sizesOffset = indicesOffset + slotCount * 4;
    const control = new SharedArrayBuffer(sizesOffset + slotCount * 4);
    const data: WriterWorkerData = {
      fd, memory, control, controlInts: CONTROL_INTS, statsOffset, countsOffset, indicesOffset, sizesOffset,
      regions: WRITER_REGIONS, regionSlots, slotCount, slotSize, slotOffsets: slots.map((s) => s.byteOffset),
      ioUring: options.ioUring ?? false,
    };
    const worker = new Worker(workerEntry(), { workerData: data, stdout: false, stderr: false });
    const writer = new WriterThread(worker, control, data);
    const deadline = performance.now() + START_TIMEOUT_MS;
    // The worker says it is ready in shared memory (it never returns to its event loop, so a
    // message could sit unsent); a failure to start shows as 'error'/'exit'.
    while (Atomics.load(writer.ctl, CTL_READY) === 0) {
      if (writer.exited || writer.exitText !== undefined || performance.now() > deadline) {
        const why = writer.exitText ?? (writer.exited ? 'it exited' : `not ready after ${START_TIMEOUT_MS} ms`);
        await writer.stop();
        throw new WasmvsError('WASMVS_TUN', `cannot start the writer thread: ${why}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return writer;
  }

  /** Whether the writer submits its writes through io_uring (false: write(2), asked or fallen back to). */
  get ioUring(): boolean {
    return Atomics.load(this.ctl, CTL_URING) === URING_ON;
  }

  /** Set once the writer cannot write any more (it died, or the TUN is gone). */
  get failure(): string | undefined {
    if (this.exitText !== undefined) return this.exitText;
    const errno = Atomics.load(this.ctl, CTL_FAIL_ERRNO);
    return errno === 0 ? undefined : `the writer thread's write() failed with errno ${errno} (the interface was deleted or detached)`;
  }

  /** Whether the failure is the TUN's (a write() said the interface is gone), not the thread's. */
  get tunGone(): boolean {
    return Atomics.load(this.ctl, CTL_FAIL_ERRNO) !== 0;
  }

  /** true when the writer has written every region handed to it (nothing queued). */
  get idle(): boolean {
    return Atomics.load(this.ctl, CTL_TAIL) === this.head;
  }

  /** The first slot of the region the gateway's thread fills next. */
  get base(): number {
    return (this.head & (WRITER_REGIONS - 1)) * this.regionSlots;
  }

  /**
   * true once the next region is free (the writer released it). Waits for at most
   * ACQUIRE_WAIT_MS on this thread; false when the writer is still behind then (the caller
   * gives the event loop a turn and tries again) or is gone.
   */
  acquire(): boolean {
    const queued = (this.head - Atomics.load(this.ctl, CTL_TAIL)) | 0;
    if (queued < WRITER_REGIONS) return true;
    if (this.failure !== undefined || this.exited) return false;
    this.waits++;
    const tail = (this.head - WRITER_REGIONS) | 0;
    Atomics.wait(this.ctl, CTL_TAIL, tail, ACQUIRE_WAIT_MS);
    return ((this.head - Atomics.load(this.ctl, CTL_TAIL)) | 0) < WRITER_REGIONS;
  }

  /** Hands the current region, with `count` slots listed in indices, to the writer. */
  publish(count: number): void {
    this.counts[this.head & (WRITER_REGIONS - 1)] = count;
    this.head = (this.head + 1) | 0;
    Atomics.store(this.ctl, CTL_HEAD, this.head);
    Atomics.notify(this.ctl, CTL_HEAD);
  }

  /** Packets the writer wrote and those the kernel refused. */
  stats(): Pick<DeviceStats, 'txPackets' | 'txErrors'> {
    return { txPackets: Number(Atomics.load(this.stats64, STAT_TX_PACKETS)), txErrors: Number(Atomics.load(this.stats64, STAT_TX_ERRORS)) };
  }

  /**
   * Stops the writer once it has written what is queued, and resolves when its thread is
   * gone (terminated after STOP_TIMEOUT_MS if it is stuck), so the fd can be closed after.
   * Idempotent.
   */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      Atomics.store(this.ctl, CTL_STOP, 1);
      Atomics.notify(this.ctl, CTL_HEAD);
      if (this.exited) return;
      const gone = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS); });
      if (await Promise.race([gone.then(() => false), late])) {
        // Its write()s are non-blocking, so this is a writer stuck in something unexpected.
        await this.worker.terminate();
        await gone;
      }
      clearTimeout(timer);
    })();
    return this.stopping;
  }
}
