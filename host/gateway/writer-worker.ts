// The writer thread's body (a worker_threads Worker started by writer.ts): it write(2)s the
// forwarded packets of each batch the gateway's thread hands over, straight from the engine's
// ring slots in shared WASM memory, and gives the batch's slots back. It opens nothing: the TUN
// fd number and the memory come in workerData, and it declares write() itself through koffi
// (a koffi function belongs to the thread that declared it).
//
// Protocol (writer.ts has the layout): the gateway's thread fills region HEAD % regions, stores
// its packet count, then Atomics.store(HEAD, HEAD + 1) and notify; this thread writes region
// TAIL % regions, then Atomics.store(TAIL, TAIL + 1) and notify. The Atomics store/load pair
// orders the slot bytes and lengths written before it for the other side. It waits in
// Atomics.wait on HEAD while nothing is queued, and exits once STOP is set and the queue is
// empty, so stop() never hangs on it and the fd is closed only after it is gone.
//
// Nothing here logs: console output of a worker that never returns to its event loop is mostly
// lost (TOOLCHAIN.md). Counts and the first fatal errno go to shared memory instead.
import { workerData } from 'node:worker_threads';
import koffi from 'koffi';
import { libc } from './libc.js';
import { addressOf, IoUring } from './uring.js';
import {
  CTL_FAIL_ERRNO, CTL_HEAD, CTL_READY, CTL_STOP, CTL_TAIL, CTL_URING, STAT_TX_ERRORS, STAT_TX_PACKETS, URING_OFF, URING_ON, type WriterWorkerData,
} from './writer.js';

const EINTR = 4;
const NOT_COMPLETED = -62; // -ETIME: no completion came (counted as lost, not as a gone TUN)
const EIO = 5;
const EBADFD = 77;

const data = workerData as WriterWorkerData;
const ctl = new Int32Array(data.control, 0, data.controlInts);
const stats = new BigUint64Array(data.control, data.statsOffset, 2);
const counts = new Int32Array(data.control, data.countsOffset, data.regions);
const indices = new Uint32Array(data.control, data.indicesOffset, data.slotCount);
const sizes = new Uint32Array(data.control, data.sizesOffset, data.slotCount);
const memory = new Uint8Array(data.memory.buffer);
const views = data.slotOffsets.map((o) => memory.subarray(o, o + data.slotSize));

const lib = libc();
// ssize_t as intptr_t; a Uint8Array is passed by the address of its bytes (no copy).
const write = lib.func('intptr_t write(int fd, const void *buf, size_t count)') as (fd: number, buf: Uint8Array, count: number) => number;

const { fd, regions, regionSlots, slotSize } = data;
let tx = 0;
let txErrors = 0;
let done = Atomics.load(ctl, CTL_TAIL);

// io_uring: a region's writes in one io_uring_enter. A TUN completes them inline, in order
// (tun_chr_open sets FMODE_NOWAIT; scripts/tun-uring.ts: no io-wq workers), so a region costs
// one system call instead of one per packet: 0.5 us less per packet written (README,
// "Gateway benchmark"). The ring is this thread's own (SINGLE_ISSUER); refused, write(2).
let entries = 1;
while (entries < regionSlots) entries *= 2;
let ring = data.ioUring ? IoUring.open(entries) : undefined;
const addresses = views.map((v) => addressOf(v));
const results = new Int32Array(entries);
const lengths = new Uint32Array(entries);
Atomics.store(ctl, CTL_URING, ring ? URING_ON : URING_OFF);

/** A written packet's outcome: counted, and a vanished interface flagged for the gateway. */
function outcome(result: number, len: number): void {
  if (result === len) {
    tx++;
    return;
  }
  // A full queue (EAGAIN/ENOBUFS) or one packet refused (EINVAL) loses that packet; EBADFD or
  // EIO mean the interface is gone, which the gateway's tick turns into a stop. A TUN never
  // writes part of a packet; a short count would be one lost too.
  txErrors++;
  if (result === -EBADFD || result === -EIO) Atomics.compareExchange(ctl, CTL_FAIL_ERRNO, 0, -result);
}

/** Region `first`..`first + count` through the ring: prepared, one enter, then reaped. */
function writeRegion(uring: IoUring, first: number, count: number): void {
  let n = 0;
  for (let k = 0; k < count; k++) {
    const i = indices[first + k];
    const len = sizes[i];
    if (views[i] === undefined || !(len > 0 && len <= slotSize)) {
      txErrors++;
      continue;
    }
    lengths[n] = len;
    results[n] = NOT_COMPLETED;
    uring.prepWrite(fd, addresses[i], len, n++, 0, false);
  }
  let reaped = 0;
  if (n > 0) uring.submitAndWait(n, 1000);
  reaped += uring.reap(results);
  // Inline completions are all there after the enter; anything else is waited for, bounded.
  for (let tries = 0; reaped < n && tries < 10; tries++) {
    uring.submitAndWait(n - reaped, 1000);
    reaped += uring.reap(results);
  }
  for (let k = 0; k < n; k++) outcome(results[k], lengths[k]);
  if (reaped < n) {
    // Never seen on a TUN; should it happen, a write still in flight may not meet its slot
    // reused, so this ring is left alone and write(2) takes over.
    ring = undefined;
    Atomics.store(ctl, CTL_URING, URING_OFF);
  }
}

Atomics.store(ctl, CTL_READY, 1);
Atomics.notify(ctl, CTL_READY);

for (;;) {
  const head = Atomics.load(ctl, CTL_HEAD);
  if (head === done) {
    if (Atomics.load(ctl, CTL_STOP) !== 0) break;
    // stop() and every publish notify HEAD; the timeout only bounds a lost wake-up.
    Atomics.wait(ctl, CTL_HEAD, head, 1000);
    continue;
  }
  const r = done & (regions - 1); // regions is a power of two: right across the int32 wrap
  const first = r * regionSlots;
  const count = counts[r];
  if (ring) writeRegion(ring, first, count);
  else for (let k = 0; k < count; k++) {
    const i = indices[first + k];
    const len = sizes[i];
    const buf = views[i];
    // As TunDevice.write: a length past the slot would hand the kernel the memory after it.
    if (buf === undefined || !(len > 0 && len <= slotSize)) {
      txErrors++;
      continue;
    }
    let w = write(fd, buf, len);
    if (w < 0 && koffi.errno() === EINTR) w = write(fd, buf, len);
    outcome(w < 0 ? -koffi.errno() : w, len);
  }
  Atomics.store(stats, STAT_TX_PACKETS, BigInt(tx));
  Atomics.store(stats, STAT_TX_ERRORS, BigInt(txErrors));
  done = (done + 1) | 0; // HEAD and TAIL are int32 counters that wrap (writer.ts)
  Atomics.store(ctl, CTL_TAIL, done);
  Atomics.notify(ctl, CTL_TAIL);
}
