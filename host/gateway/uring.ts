// A minimal io_uring (include/uapi/linux/io_uring.h, io_uring/*.c) over raw system calls
// through koffi: no native addon, no liburing. One submission can carry a batch of TUN reads
// and writes, so a batch costs one io_uring_enter(2) instead of one read(2)/write(2) per packet.
//
//   io_uring_setup(entries, &params)           the kernel sizes the rings and fills offsets
//   mmap(IORING_OFF_SQ_RING), mmap(IORING_OFF_SQES)   (one mmap for both rings on kernels with
//                                              IORING_FEAT_SINGLE_MMAP, 5.4+; two otherwise)
//   koffi.view(ptr, len)                       an ArrayBuffer over each mapping: the SQ/CQ
//                                              heads and tails, the SQ index array, SQEs, CQEs
//   io_uring_enter(fd, toSubmit, minComplete, GETEVENTS)
//   io_uring_register(fd, REGISTER_FILES | REGISTER_BUFFERS, ...)
//
// Memory layout as the kernel maps it (offsets come from io_uring_params, never assumed):
//
//   SQ ring  [head u32][tail u32] ... [ring_mask][ring_entries][flags][dropped] ... [array u32 x N]
//   CQ ring  (same mapping with SINGLE_MMAP) [head][tail] ... [cqes: 16 bytes x M]
//   SQEs     64 bytes each:
//     0 opcode u8 | 1 flags u8 | 2 ioprio u16 | 4 fd s32 | 8 off u64 | 16 addr u64 | 24 len u32
//     28 rw_flags u32 | 32 user_data u64 | 40 buf_index u16 | 42 personality u16 | 44 file_index
//     48 addr3 u64 | 56 pad
//   CQE      0 user_data u64 | 8 res s32 | 12 flags u32
//
// The SQ index array is filled once with the identity (slot i holds SQE i), as liburing does,
// so a submission writes SQEs and moves the tail, nothing else.
//
// Ordering: without SQPOLL the kernel reads the SQ tail only inside io_uring_enter on this
// thread, and CQEs are read after it returns, so the system call orders everything. Tails and
// heads are still stored with Atomics (a no-cost release on x86) so a later SQPOLL mode or a
// second thread reading the CQ cannot see a tail before its entries.
//
// Whether an operation completes inline matters more than the entry it saves: io_uring first
// issues a READ/WRITE with IOCB_NOWAIT when the file has FMODE_NOWAIT (tun_chr_open() sets it:
// "tun groks IOCB_NOWAIT just fine"); a file without it is punted to an io-wq worker thread
// (iou-wrk-<pid>), which costs a thread hand-off per operation. On an O_NONBLOCK descriptor an
// empty queue completes at once with -EAGAIN (REQ_F_NOWAIT: no poll is armed), which is what a
// batch read that stops at the first empty slot needs.
import { readFileSync } from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import koffi from 'koffi';
import { WasmvsError } from '../errors.js';
import { libc } from './libc.js';

// ---- kernel ABI (include/uapi/linux/io_uring.h) ----------------------------------------------

// System call numbers: 425-427 on every architecture that uses the unified table (x86_64,
// arm64, riscv64, loongarch64, s390x; arm and i386 too). Alpha and MIPS add offsets: refused.
const SYS_IO_URING_SETUP = 425;
const SYS_IO_URING_ENTER = 426;
const SYS_IO_URING_REGISTER = 427;
const SUPPORTED_ARCHS = new Set(['x64', 'arm64', 'riscv64', 'loong64', 's390x']);

export const IORING_OP_NOP = 0;
export const IORING_OP_READ_FIXED = 4;
export const IORING_OP_WRITE_FIXED = 5;
export const IORING_OP_READ = 22;
export const IORING_OP_WRITE = 23;

/** sqe->flags: fd is an index into the registered file table (registerFiles()). */
export const IOSQE_FIXED_FILE = 1 << 0;
/** sqe->flags: do not start this SQE before the previous one completes. */
export const IOSQE_IO_LINK = 1 << 2;
/** sqe->flags: always go to an io-wq worker (for measuring the punted path only). */
export const IOSQE_ASYNC = 1 << 4;

const IORING_SETUP_SUBMIT_ALL = 1 << 7; // 5.18: keep submitting past an SQE that fails to prep
const IORING_SETUP_COOP_TASKRUN = 1 << 8; // 5.19: no IPI to run task work
const IORING_SETUP_SINGLE_ISSUER = 1 << 12; // 6.0: only the creating thread submits
const IORING_SETUP_DEFER_TASKRUN = 1 << 13; // 6.1: task work runs only in io_uring_enter

const IORING_FEAT_SINGLE_MMAP = 1 << 0;
const IORING_FEAT_NODROP = 1 << 1;
const IORING_FEAT_RW_CUR_POS = 1 << 3;

const IORING_ENTER_GETEVENTS = 1 << 0;
const IORING_ENTER_EXT_ARG = 1 << 3; // 5.11: the last two arguments are io_uring_getevents_arg

/** sqe->rw_flags (include/uapi/linux/fs.h): fail with -EAGAIN instead of waiting for data. */
export const RWF_NOWAIT = 0x00000008;

const IORING_REGISTER_BUFFERS = 0;
const IORING_UNREGISTER_BUFFERS = 1;
const IORING_REGISTER_FILES = 2;
const IORING_UNREGISTER_FILES = 3;

const IORING_OFF_SQ_RING = 0;
const IORING_OFF_CQ_RING = 0x8000000;
const IORING_OFF_SQES = 0x10000000;

// struct io_uring_params: 120 bytes.
const PARAMS_SIZE = 120;
const P_SQ_ENTRIES = 0;
const P_CQ_ENTRIES = 4;
const P_FLAGS = 8;
const P_FEATURES = 20;
const P_SQ_OFF = 40; // struct io_sqring_offsets, 40 bytes
const P_CQ_OFF = 80; // struct io_cqring_offsets, 40 bytes
// io_sqring_offsets fields, in u32 words from P_SQ_OFF
const SQO_HEAD = 0;
const SQO_TAIL = 1;
const SQO_RING_MASK = 2;
const SQO_RING_ENTRIES = 3;
const SQO_ARRAY = 6;
// io_cqring_offsets fields, in u32 words from P_CQ_OFF
const CQO_HEAD = 0;
const CQO_TAIL = 1;
const CQO_RING_MASK = 2;
const CQO_RING_ENTRIES = 3;
const CQO_OVERFLOW = 4;
const CQO_CQES = 5;

const EXT_ARG_SIZE = 24;
const SQE_SIZE = 64;
const SQE_WORDS = SQE_SIZE / 4;
const CQE_SIZE = 16;
const CQE_WORDS = CQE_SIZE / 4;

const PROT_READ = 0x1;
const PROT_WRITE = 0x2;
const MAP_SHARED = 0x01;
const MAP_POPULATE = 0x8000;
const MAP_FAILED = -1n; // (void *)-1

const EPERM = 1;
const EINTR = 4;
const EBADF = 9;
const ETIME = 62;
const EINVAL = 22;
const ENOSYS = 38;

/** Largest ring this module opens (the kernel's IORING_MAX_ENTRIES is 32768). */
export const URING_MAX_ENTRIES = 4096;

// ---- libc through koffi ----------------------------------------------------------------------

interface Sys {
  // syscall(2) is variadic in C; glibc's and musl's implementations move their integer
  // arguments straight into registers, and on the architectures above a variadic call passes
  // integers as a fixed one does, so fixed prototypes per system call are exact (and koffi
  // calls a fixed prototype much faster than a variadic one).
  setup: (nr: number, entries: number, params: Uint8Array) => number;
  enter: (nr: number, fd: number, toSubmit: number, minComplete: number, flags: number, arg: Uint8Array | null, argsz: number) => number;
  register: (nr: number, fd: number, opcode: number, arg: Uint8Array | null, nrArgs: number) => number;
  mmap: (addr: null, len: number, prot: number, flags: number, fd: number, off: number) => unknown;
  munmap: (addr: unknown, len: number) => number;
  close: (fd: number) => number;
}

let sys: Sys | undefined;

function loadSys(): Sys {
  if (sys) return sys;
  const lib = libc();
  sys = {
    setup: lib.func('long syscall(long nr, uint32_t entries, void *params)'),
    enter: lib.func('long syscall(long nr, int fd, uint32_t to_submit, uint32_t min_complete, uint32_t flags, void *arg, size_t argsz)'),
    register: lib.func('long syscall(long nr, int fd, uint32_t opcode, void *arg, uint32_t nr_args)'),
    mmap: lib.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off)'),
    munmap: lib.func('int munmap(void *addr, size_t len)'),
    close: lib.func('int close(int fd)'),
  } as Sys;
  return sys;
}

/** "EPERM (errno 1: operation not permitted)" for messages. */
export function describeErrno(errno: number): string {
  const entry = getSystemErrorMap().get(-errno);
  return entry ? `${entry[0]} (errno ${errno}: ${entry[1]})` : `errno ${errno}`;
}

/**
 * The address koffi passes for a view: a Uint8Array over a SharedArrayBuffer (or a shared
 * WebAssembly.Memory, which never moves) keeps it for the memory's life, so slot addresses can
 * be taken once. Honours byteOffset (koffi.address of a subarray is its own start).
 */
export function addressOf(view: ArrayBufferView): number {
  const a = Number(koffi.address(view));
  if (!Number.isSafeInteger(a) || a <= 0) {
    throw new WasmvsError('WASMVS_BAD_OPTION', `koffi gave address ${String(a)} for a view`);
  }
  return a;
}

// ---- the ring --------------------------------------------------------------------------------

export interface IoUringOptions {
  /**
   * Only the thread that opens the ring submits to it (IORING_SETUP_SINGLE_ISSUER with
   * DEFER_TASKRUN: the kernel skips locking and runs task work only inside io_uring_enter).
   * Default true; set false when another thread will submit. Kernels older than 6.1 get the
   * ring without these flags.
   */
  singleIssuer?: boolean;
}

/** Why open() returned undefined, or the ring. */
export type IoUringOpenResult = { ring: IoUring; reason?: undefined } | { ring?: undefined; reason: string };

/** Counters since open: what the ring did, for benchmarks and the gateway's stats. */
export interface IoUringStats {
  /** io_uring_enter calls made. */
  enters: number;
  /** SQEs the kernel accepted. */
  submitted: number;
  /** CQEs reaped. */
  completed: number;
  /** CQEs whose user_data was outside the caller's results array (dropped). */
  strays: number;
}

/**
 * An io_uring instance: prepare READ/WRITE SQEs over caller memory, submit them with one
 * io_uring_enter, reap CQEs into an Int32Array indexed by user_data. Not thread-safe: one
 * thread prepares, submits and reaps. Allocates nothing per operation.
 */
export class IoUring {
  /** SQ entries (a power of two, at least what was asked). */
  readonly entries: number;
  /** CQ entries (twice the SQ's by the kernel's default). */
  readonly cqEntries: number;
  /** The io_uring_setup flags the kernel took (SINGLE_ISSUER etc. when it knows them). */
  readonly setupFlags: number;
  /** IORING_FEAT_* bits the kernel reported. */
  readonly features: number;

  private readonly sys: Sys;
  private ringFd: number;
  private readonly maps: { ptr: unknown; len: number }[];
  /** The SQ ring's words; sqHead and sqTail index into it. */
  private readonly sqHeadTail: Uint32Array;
  private readonly sqHead: number;
  private readonly sqTail: number;
  private readonly sqMask: number;
  private readonly sqes: Uint32Array;
  private readonly cqRing: Uint32Array;
  private readonly cqHead: number;
  private readonly cqTail: number;
  private readonly cqMask: number;
  private readonly cqesWord: number;
  private readonly cqOverflow: number;
  /** Local SQ tail: SQEs up to here are prepared; the kernel sees them at the next submit(). */
  private localTail: number;
  private filesRegistered = false;
  private buffersRegistered = false;
  private readonly counts: IoUringStats = { enters: 0, submitted: 0, completed: 0, strays: 0 };
  /** io_uring_getevents_arg and its timespec, allocated once. The timespec's address is
   *  stored inside the arg, so it lives in a SharedArrayBuffer: V8 never moves those. */
  private readonly extArg = new BigUint64Array(new SharedArrayBuffer(EXT_ARG_SIZE));
  private readonly extArgBytes = new Uint8Array(this.extArg.buffer);
  private readonly timespec = new BigInt64Array(new SharedArrayBuffer(16));
  private readonly timespecAddr = addressOf(this.timespec);

  private constructor(s: Sys, fd: number, params: Uint8Array, maps: { ptr: unknown; len: number }[], sqView: ArrayBuffer, cqView: ArrayBuffer, sqeView: ArrayBuffer) {
    this.sys = s;
    this.ringFd = fd;
    this.maps = maps;
    const p = new DataView(params.buffer, params.byteOffset, params.byteLength);
    const sqOff = (w: number): number => p.getUint32(P_SQ_OFF + w * 4, true);
    const cqOff = (w: number): number => p.getUint32(P_CQ_OFF + w * 4, true);
    this.entries = p.getUint32(P_SQ_ENTRIES, true);
    this.cqEntries = p.getUint32(P_CQ_ENTRIES, true);
    this.setupFlags = p.getUint32(P_FLAGS, true);
    this.features = p.getUint32(P_FEATURES, true);

    const sq = new Uint32Array(sqView);
    this.sqHeadTail = sq;
    this.sqHead = sqOff(SQO_HEAD) >>> 2;
    this.sqTail = sqOff(SQO_TAIL) >>> 2;
    this.sqMask = sq[sqOff(SQO_RING_MASK) >>> 2];
    const sqEntries = sq[sqOff(SQO_RING_ENTRIES) >>> 2];
    const array = sqOff(SQO_ARRAY) >>> 2;
    for (let i = 0; i < sqEntries; i++) sq[array + i] = i;

    const cq = new Uint32Array(cqView);
    this.cqRing = cq;
    this.cqHead = cqOff(CQO_HEAD) >>> 2;
    this.cqTail = cqOff(CQO_TAIL) >>> 2;
    this.cqMask = cq[cqOff(CQO_RING_MASK) >>> 2];
    if (cq[cqOff(CQO_RING_ENTRIES) >>> 2] !== this.cqEntries) throw new Error('io_uring CQ ring entries disagree with params');
    this.cqesWord = cqOff(CQO_CQES) >>> 2;
    this.cqOverflow = cqOff(CQO_OVERFLOW) >>> 2;

    this.sqes = new Uint32Array(sqeView);
    this.localTail = Atomics.load(sq, this.sqTail);
  }

  /**
   * Opens a ring of at least `entries` SQEs (1..4096, rounded up to a power of two by the
   * kernel), or undefined when this system cannot: not Linux, an architecture whose system
   * call numbers differ, io_uring compiled out (ENOSYS), disabled by
   * /proc/sys/kernel/io_uring_disabled or a seccomp filter (EPERM), out of memory or locked
   * memory. openWithReason() says why.
   */
  static open(entries: number, options: IoUringOptions = {}): IoUring | undefined {
    return IoUring.openWithReason(entries, options).ring;
  }

  /** As open(), with the reason when there is no ring. Bad arguments throw WASMVS_BAD_OPTION. */
  static openWithReason(entries: number, options: IoUringOptions = {}): IoUringOpenResult {
    if (!Number.isInteger(entries) || entries < 1 || entries > URING_MAX_ENTRIES) {
      throw new WasmvsError('WASMVS_BAD_OPTION', `io_uring entries ${String(entries)} is not an integer from 1 to ${URING_MAX_ENTRIES}`);
    }
    if (process.platform !== 'linux') return { reason: `io_uring needs Linux (this is ${process.platform})` };
    if (!SUPPORTED_ARCHS.has(process.arch)) return { reason: `io_uring system call numbers are not known here for architecture ${process.arch}` };
    const s = loadSys();
    const single = options.singleIssuer ?? true;
    // Newest flags first; an older kernel refuses unknown flags with EINVAL, so step down.
    const attempts = [
      ...(single ? [IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN] : []),
      IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN,
      0,
    ];
    const params = new Uint8Array(PARAMS_SIZE);
    let fd = -1;
    let errno = 0;
    for (const flags of attempts) {
      params.fill(0);
      new DataView(params.buffer).setUint32(P_FLAGS, flags, true);
      fd = s.setup(SYS_IO_URING_SETUP, entries, params);
      if (fd >= 0) break;
      errno = koffi.errno();
      if (errno !== EINVAL) break;
    }
    if (fd < 0) return { reason: setupReason(errno) };

    const maps: { ptr: unknown; len: number }[] = [];
    try {
      const p = new DataView(params.buffer);
      const features = p.getUint32(P_FEATURES, true);
      if ((features & IORING_FEAT_RW_CUR_POS) === 0) {
        // Reads at offset -1 (the file's position, as read(2)) need 5.6+.
        throw new UnavailableError('this kernel\'s io_uring predates IORING_FEAT_RW_CUR_POS (5.6)');
      }
      const sqEntries = p.getUint32(P_SQ_ENTRIES, true);
      const cqEntries = p.getUint32(P_CQ_ENTRIES, true);
      const sqLen = p.getUint32(P_SQ_OFF + SQO_ARRAY * 4, true) + sqEntries * 4;
      const cqLen = p.getUint32(P_CQ_OFF + CQO_CQES * 4, true) + cqEntries * CQE_SIZE;
      const map = (len: number, off: number): ArrayBuffer => {
        const ptr = s.mmap(null, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, off);
        const at = ptr === null ? 0n : BigInt.asIntN(64, koffi.address(ptr));
        if (at === MAP_FAILED || at === 0n) {
          throw new UnavailableError(`io_uring mmap of ${len} bytes at ${off.toString(16)}: ${describeErrno(koffi.errno())}`);
        }
        maps.push({ ptr, len });
        return koffi.view(ptr, len);
      };
      let sqView: ArrayBuffer;
      let cqView: ArrayBuffer;
      if ((features & IORING_FEAT_SINGLE_MMAP) !== 0) {
        sqView = map(Math.max(sqLen, cqLen), IORING_OFF_SQ_RING);
        cqView = sqView;
      } else {
        sqView = map(sqLen, IORING_OFF_SQ_RING);
        cqView = map(cqLen, IORING_OFF_CQ_RING);
      }
      const sqeView = map(sqEntries * SQE_SIZE, IORING_OFF_SQES);
      return { ring: new IoUring(s, fd, params, maps, sqView, cqView, sqeView) };
    } catch (err) {
      for (const m of maps) s.munmap(m.ptr, m.len);
      s.close(fd);
      if (err instanceof UnavailableError) return { reason: err.message };
      throw err;
    }
  }

  /** The ring's own descriptor; -1 once closed. */
  get fd(): number {
    return this.ringFd;
  }

  /** Whether the kernel keeps CQEs that overflow the CQ ring (IORING_FEAT_NODROP, 5.5+). */
  get noDrop(): boolean {
    return (this.features & IORING_FEAT_NODROP) !== 0;
  }

  /** SQEs that can still be prepared before submit(). */
  get sqSpace(): number {
    if (this.ringFd < 0) return 0;
    const head = Atomics.load(this.sqHeadTail, this.sqHead);
    return this.entries - ((this.localTail - head) >>> 0);
  }

  /** SQEs prepared and not yet consumed by the kernel (the SQ head trails the tail). */
  get pending(): number {
    if (this.ringFd < 0) return 0;
    return (this.localTail - Atomics.load(this.sqHeadTail, this.sqHead)) >>> 0;
  }

  /** CQ overflow count the kernel reports (CQEs lost on kernels without NODROP). */
  get cqOverflowCount(): number {
    if (this.ringFd < 0) return 0;
    return Atomics.load(this.cqRing, this.cqOverflow);
  }

  stats(): IoUringStats {
    return { ...this.counts };
  }

  /**
   * Prepares one SQE: `op` (IORING_OP_READ, _WRITE, _READ_FIXED, _WRITE_FIXED, _NOP) on `fd`
   * (a registered-file index with IOSQE_FIXED_FILE in `sqeFlags`) over `len` bytes at native
   * address `addr` (addressOf() of the caller's buffer), at the file's position (offset -1, as
   * read(2)/write(2)). `userData` (0..2^32-1) comes back in the CQE. Returns false when the
   * SQ is full (submit first) or the ring is closed. The caller keeps the memory alive and unchanged until the CQE.
   */
  prep(op: number, fd: number, addr: number, len: number, userData: number, sqeFlags = 0, bufIndex = 0, rwFlags = 0): boolean {
    // The views over the rings point at unmapped memory once closed: never touch them then.
    if (this.ringFd < 0) return false;
    const head = Atomics.load(this.sqHeadTail, this.sqHead);
    if (((this.localTail - head) >>> 0) >= this.entries) return false;
    const idx = this.localTail & this.sqMask;
    const w = idx * SQE_WORDS;
    const sqes = this.sqes;
    // opcode, flags, ioprio 0 in word 0
    sqes[w] = (op & 0xff) | ((sqeFlags & 0xff) << 8);
    sqes[w + 1] = fd;
    sqes[w + 2] = 0xffffffff; // off = -1: the file's current position (IORING_FEAT_RW_CUR_POS)
    sqes[w + 3] = 0xffffffff;
    sqes[w + 4] = addr >>> 0; // addr low (>>> 0 on a number above 2^32 keeps the low 32 bits)
    sqes[w + 5] = Math.floor(addr / 0x1_0000_0000);
    sqes[w + 6] = len;
    sqes[w + 7] = rwFlags; // RWF_NOWAIT etc.
    sqes[w + 8] = userData;
    sqes[w + 9] = 0;
    sqes[w + 10] = bufIndex & 0xffff; // buf_index, personality 0
    sqes[w + 11] = 0;
    sqes[w + 12] = 0;
    sqes[w + 13] = 0;
    sqes[w + 14] = 0;
    sqes[w + 15] = 0;
    this.localTail = (this.localTail + 1) >>> 0;
    return true;
  }

  /**
   * prep(IORING_OP_READ, ...) with RWF_NOWAIT: a file with nothing to read completes at once
   * with -EAGAIN, as read(2) on an O_NONBLOCK descriptor does. Without it this kernel (6.18)
   * does not honour the descriptor's O_NONBLOCK for a pollable file such as a TUN: it arms a
   * poll and the READ completes only when a packet arrives (measured; see
   * test/uring.test.ts). Pass `nowait` false for that armed behaviour.
   */
  prepRead(fd: number, addr: number, len: number, userData: number, sqeFlags = 0, nowait = true): boolean {
    return this.prep(IORING_OP_READ, fd, addr, len, userData, sqeFlags, 0, nowait ? RWF_NOWAIT : 0);
  }

  /** prep(IORING_OP_WRITE, ...) with RWF_NOWAIT (a full queue fails -EAGAIN, never waits). */
  prepWrite(fd: number, addr: number, len: number, userData: number, sqeFlags = 0, nowait = true): boolean {
    return this.prep(IORING_OP_WRITE, fd, addr, len, userData, sqeFlags, 0, nowait ? RWF_NOWAIT : 0);
  }

  /**
   * Publishes the prepared SQEs and enters the kernel once: submits them all and, when
   * `waitFor` > 0, waits until at least that many CQEs are ready, or `timeoutMs` passes
   * (IORING_ENTER_EXT_ARG; default: no limit). Returns how many SQEs the kernel took, or a
   * negative errno when it took none (EAGAIN/EBUSY: the CQ is full, reap first; EBADF:
   * closed). A signal or the timeout ends the wait early: reap() then finds fewer CQEs. The
   * JS thread is blocked while it waits, so keep waits for completions that are certain
   * (inline ones, RWF_NOWAIT reads) or bounded by `timeoutMs`.
   */
  submit(waitFor = 0, timeoutMs = -1): number {
    if (this.ringFd < 0) return -EBADF;
    const deferred = (this.setupFlags & IORING_SETUP_DEFER_TASKRUN) !== 0;
    const before = this.pending;
    if (before === 0 && waitFor === 0 && !deferred) return 0;
    Atomics.store(this.sqHeadTail, this.sqTail, this.localTail);
    // With DEFER_TASKRUN, completions that went through task work (a punted operation, an
    // armed poll that fired) are posted only when the caller asks for events: ask always.
    let flags = waitFor > 0 || deferred ? IORING_ENTER_GETEVENTS : 0;
    let arg: Uint8Array | null = null;
    if (waitFor > 0 && timeoutMs >= 0) {
      // struct io_uring_getevents_arg { u64 sigmask; u32 sigmask_sz; u32 min_wait_usec;
      // u64 ts; } with ts pointing at struct __kernel_timespec { s64 tv_sec; s64 tv_nsec; }.
      const ms = Math.min(timeoutMs, 0x7fffffff);
      this.timespec[0] = BigInt(Math.floor(ms / 1000));
      this.timespec[1] = BigInt(Math.round((ms % 1000) * 1e6));
      this.extArg[2] = BigInt(this.timespecAddr);
      arg = this.extArgBytes;
      flags |= IORING_ENTER_EXT_ARG;
    }
    this.counts.enters++;
    const r = this.sys.enter(SYS_IO_URING_ENTER, this.ringFd, before, waitFor, flags, arg, arg ? EXT_ARG_SIZE : 0);
    if (r >= 0) {
      this.counts.submitted += r;
      return r;
    }
    const errno = koffi.errno();
    // Interrupted or timed out while waiting: what was consumed shows in the SQ head.
    const took = before - this.pending;
    this.counts.submitted += took;
    if (took > 0 || errno === EINTR || errno === ETIME) return took;
    return -errno;
  }

  /** submit(waitFor, timeoutMs): the common case of a batch that waits for its completions. */
  submitAndWait(waitFor: number, timeoutMs = -1): number {
    return this.submit(waitFor, timeoutMs);
  }

  /**
   * Moves every ready CQE out of the CQ ring: results[user_data] = res (bytes transferred, or a
   * negative errno such as -EAGAIN for an empty non-blocking TUN). A user_data outside the
   * array is counted as a stray and dropped. Returns the number of CQEs reaped (0 once closed).
   */
  reap(results: Int32Array): number {
    if (this.ringFd < 0) return 0;
    const cq = this.cqRing;
    let head = cq[this.cqHead];
    const tail = Atomics.load(cq, this.cqTail);
    const n = (tail - head) >>> 0;
    const mask = this.cqMask;
    const base = this.cqesWord;
    const limit = results.length;
    let strays = 0;
    while (head !== tail) {
      const w = base + (head & mask) * CQE_WORDS;
      const ud = cq[w];
      if (cq[w + 1] === 0 && ud < limit) results[ud] = cq[w + 2] | 0;
      else strays++;
      head = (head + 1) >>> 0;
    }
    Atomics.store(cq, this.cqHead, head);
    this.counts.completed += n;
    this.counts.strays += strays;
    return n;
  }

  /**
   * Registers descriptors (IORING_REGISTER_FILES): an SQE with IOSQE_FIXED_FILE then names
   * the index into `fds`, and the kernel skips the per-operation file lookup and reference.
   * Returns 0 or a negative errno. Replaces an earlier registration.
   */
  registerFiles(fds: readonly number[]): number {
    if (fds.length === 0) throw new WasmvsError('WASMVS_BAD_OPTION', 'registerFiles needs at least one descriptor');
    const arr = new Int32Array(fds.length);
    for (let i = 0; i < fds.length; i++) {
      if (!Number.isInteger(fds[i]) || fds[i] < -1) throw new WasmvsError('WASMVS_BAD_OPTION', `descriptor ${String(fds[i])} is not an integer >= -1`);
      arr[i] = fds[i];
    }
    if (this.filesRegistered) this.unregister(IORING_UNREGISTER_FILES);
    const r = this.registerCall(IORING_REGISTER_FILES, new Uint8Array(arr.buffer), fds.length);
    if (r === 0) this.filesRegistered = true;
    return r;
  }

  /**
   * Registers buffers (IORING_REGISTER_BUFFERS): each view becomes buffer index i for
   * IORING_OP_READ_FIXED/WRITE_FIXED, whose addr/len must lie inside it. The kernel pins the
   * pages once instead of importing the user address on every operation. Returns 0 or a
   * negative errno (ENOMEM when RLIMIT_MEMLOCK is too small for a non-root process).
   */
  registerBuffers(views: readonly ArrayBufferView[]): number {
    if (views.length === 0) throw new WasmvsError('WASMVS_BAD_OPTION', 'registerBuffers needs at least one buffer');
    // struct iovec { void *iov_base; size_t iov_len; } as two u64 each.
    const iov = new BigUint64Array(views.length * 2);
    for (let i = 0; i < views.length; i++) {
      iov[i * 2] = BigInt(addressOf(views[i]));
      iov[i * 2 + 1] = BigInt(views[i].byteLength);
    }
    if (this.buffersRegistered) this.unregister(IORING_UNREGISTER_BUFFERS);
    const r = this.registerCall(IORING_REGISTER_BUFFERS, new Uint8Array(iov.buffer), views.length);
    if (r === 0) this.buffersRegistered = true;
    return r;
  }

  /** Unmaps the rings and closes the ring. Operations still in flight are cancelled by the
   *  kernel; the caller must not free their buffers before this returns. Idempotent. */
  close(): void {
    if (this.ringFd < 0) return;
    for (const m of this.maps) this.sys.munmap(m.ptr, m.len);
    this.maps.length = 0;
    this.sys.close(this.ringFd);
    this.ringFd = -1;
  }

  private registerCall(opcode: number, arg: Uint8Array | null, nrArgs: number): number {
    if (this.ringFd < 0) return -EBADF;
    const r = this.sys.register(SYS_IO_URING_REGISTER, this.ringFd, opcode, arg, nrArgs);
    return r < 0 ? -koffi.errno() : 0;
  }

  private unregister(opcode: number): void {
    this.registerCall(opcode, null, 0);
    if (opcode === IORING_UNREGISTER_FILES) this.filesRegistered = false;
    else this.buffersRegistered = false;
  }
}

class UnavailableError extends Error {}

function setupReason(errno: number): string {
  if (errno === ENOSYS) return `io_uring_setup: ${describeErrno(errno)}: this kernel has no io_uring (CONFIG_IO_URING off)`;
  if (errno === EPERM) {
    let disabled = '';
    try {
      disabled = readSysctl();
    } catch {
      // unreadable: say what we know
    }
    return `io_uring_setup: ${describeErrno(errno)}: io_uring is disabled${disabled ? ` (kernel.io_uring_disabled = ${disabled})` : ''} or refused by a seccomp filter or security module`;
  }
  return `io_uring_setup: ${describeErrno(errno)}`;
}

function readSysctl(): string {
  return readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim();
}

// Exported for tests: the layout constants the ring relies on.
export const URING_ABI = Object.freeze({ SQE_SIZE, CQE_SIZE, PARAMS_SIZE, SYS_IO_URING_SETUP, SYS_IO_URING_ENTER, SYS_IO_URING_REGISTER });
