// The Linux TUN device (drivers/net/tun.c, Documentation/networking/tuntap.rst) as a batch-I/O
// Device, over libc through koffi: no native addon, no copy, no allocation per packet.
//
//   open("/dev/net/tun", O_RDWR|O_NONBLOCK|O_CLOEXEC)
//   ioctl(TUNSETIFF, { name, IFF_TUN|IFF_NO_PI [|IFF_VNET_HDR] })   creates (or attaches to) NAME
//   ioctl(TUNSETVNETHDRSZ, 10); ioctl(TUNSETOFFLOAD, CSUM|TSO4|TSO6[|USO4|USO6])    with offload
//   ioctl(TUNSETOFFLOAD, 0)                                                       without offload
//   [IFF_NAPI in TUNSETIFF; echo 1 > /sys/class/net/NAME/threaded]                  with napi
//
// read() is a loop of read(2) into the caller's buffers (views over shared WASM memory, which
// koffi passes by their real address) until EAGAIN; write() is one write(2) per packet. wait()
// is poll(2) run on libuv's thread pool (a koffi async call), so the event loop never blocks; it
// polls an eventfd beside the TUN so close() wakes it at once instead of waiting out its timeout.
// The shape follows wireguard-go's tun/tun_linux.go (batch reads, BatchSize, Close).
//
// napi (threaded NAPI, the gateway's choice, README "Threads, batching, offload"). Without it
// a write(2) to a TUN runs the whole receive path of its packet inside the call
// (tun_get_user -> netif_receive_skb): routing, forwarding, the veth and, in the receiving
// namespace, that endpoint's stack, one packet at a time. With IFF_NAPI the write only queues
// the packet and schedules the queue's NAPI; made threaded, that NAPI polls in a kernel thread
// (napi/NAME-ID) on whichever core is free, taking what queued meanwhile as one batch through
// GRO (so MTU-sized writes reach the receivers as coalesced segments, as a NIC's do). The
// cost, which a request/response exchange pays on every packet, is that poll and GRO (also
// with the thread off: IFF_NAPI alone) and a wake-up of the thread when it was idle. The
// sysfs file is the kernel's interface for it (Documentation/ABI/testing/sysfs-class-net,
// "threaded"); it is written only after checking that /sys/class/net/NAME is this network
// namespace's device (its ifindex against SIOCGIFINDEX), since sysfs shows the namespace it
// was mounted in.
//
// The device does not bring the link up, set its MTU or txqueuelen: the gateway does that with
// `ip`, so each change is a command an operator can read and undo.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import koffi, { type KoffiFunc } from 'koffi';
import { WasmvsError } from '../errors.js';
import type { Device, DeviceStats } from './device.js';
import { libc as libcLibrary } from './libc.js';
import { VNET_HDR_LEN } from './vnet.js';

// ---- kernel ABI ----------------------------------------------------------------------------
// fcntl and ioctl numbers of the asm-generic layout (x86, arm, riscv, loongarch, s390); MIPS,
// PowerPC, SPARC and Alpha encode them differently and are refused in loadLibc().
const O_RDWR = 0x2;
const O_NONBLOCK = 0x800;
const O_CLOEXEC = 0x80000;
const EFD_NONBLOCK = O_NONBLOCK;
const EFD_CLOEXEC = O_CLOEXEC;

// include/uapi/linux/if_tun.h
const TUNSETIFF = 0x400454ca; // _IOW('T', 202, int)
const TUNSETOFFLOAD = 0x400454d0; // _IOW('T', 208, unsigned int), argument by value
const TUNGETVNETHDRSZ = 0x800454d7; // _IOR('T', 215, int)
const TUNSETVNETHDRSZ = 0x400454d8; // _IOW('T', 216, int)
const IFF_TUN = 0x0001;
const IFF_NO_PI = 0x1000;
const IFF_VNET_HDR = 0x4000;
const IFF_NAPI = 0x0010;
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;

// struct ifreq: ifr_name[IFNAMSIZ] then a union of which we use ifr_flags (short) at 16.
const IFNAMSIZ = 16;
const IFREQ_SIZE = 40;
const IFR_FLAGS = 16;
const IFR_IFINDEX = 16;
const SIOCGIFINDEX = 0x8933; // include/uapi/linux/sockios.h
const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = O_CLOEXEC;

// struct pollfd { int fd; short events; short revents; }, two of them: the TUN and the eventfd.
const POLLFD_SIZE = 8;
const POLLIN = 0x001;
const POLLERR = 0x008;
const POLLHUP = 0x010;
const POLLNVAL = 0x020;

const EPERM = 1;
const ENOENT = 2;
const EINTR = 4;
const EIO = 5;
const ENXIO = 6;
const EAGAIN = 11;
const EACCES = 13;
const EBUSY = 16;
const ENODEV = 19;
const EINVAL = 22;
const EBADFD = 77;

/** Slot size the gateway uses with offload: 65,535 + the 10-byte header, rounded up to 64. */
export const TUN_OFFLOAD_SLOT_SIZE = 65_600;
/** Default batch sizes: fewer 64 KiB slots with offload, more MTU-sized ones without. */
export const TUN_BATCH_OFFLOAD = 64;
export const TUN_BATCH_PLAIN = 128;
const MAX_BATCH = 4096;
const MAX_POLL_MS = 0x7fffffff;

/** Bytes per ring slot for a TUN: a GSO super-packet with offload, else the MTU (rounded to 64). */
export function tunSlotSize(options: { offload: boolean; mtu: number }): number {
  if (options.offload) return TUN_OFFLOAD_SLOT_SIZE;
  if (!Number.isInteger(options.mtu) || options.mtu < 68 || options.mtu > 65_535) {
    throw new WasmvsError('WASMVS_BAD_OPTION', `MTU ${String(options.mtu)} is not an integer from 68 to 65535`);
  }
  return Math.ceil(options.mtu / 64) * 64;
}

// ---- libc through koffi, declared once ----------------------------------------------------

interface Libc {
  open: (path: string, flags: number) => number;
  close: (fd: number) => number;
  read: (fd: number, buf: Uint8Array, count: number) => number;
  write: (fd: number, buf: Uint8Array, count: number) => number;
  /** ioctl is variadic: each call names the type of its third argument. */
  ioctl: (fd: number, request: number, type: string, arg: unknown) => number;
  poll: KoffiFunc<(fds: unknown, nfds: number, timeout: number) => number>;
  eventfd: (initval: number, flags: number) => number;
  socket: (domain: number, type: number, protocol: number) => number;
}

const GENERIC_ABI_ARCHS = new Set(['x64', 'ia32', 'arm64', 'arm', 'riscv64', 'loong64', 's390x']);
let libc: Libc | undefined;

function loadLibc(): Libc {
  if (libc) return libc;
  if (process.platform !== 'linux') {
    throw new WasmvsError('WASMVS_TUN', `TUN devices need Linux (this is ${process.platform})`);
  }
  if (!GENERIC_ABI_ARCHS.has(process.arch)) {
    throw new WasmvsError('WASMVS_TUN', `TUN ioctl numbers are not known for architecture ${process.arch}`);
  }
  const lib = libcLibrary();
  libc = {
    open: lib.func('int open(const char *path, int flags, ...)'),
    close: lib.func('int close(int fd)'),
    // ssize_t as intptr_t, buffers as void *: koffi passes a typed array's own memory.
    read: lib.func('intptr_t read(int fd, void *buf, size_t count)'),
    write: lib.func('intptr_t write(int fd, const void *buf, size_t count)'),
    ioctl: lib.func('int ioctl(int fd, unsigned long request, ...)'),
    poll: lib.func('int poll(void *fds, unsigned long nfds, int timeout)'),
    eventfd: lib.func('int eventfd(unsigned int initval, int flags)'),
    socket: lib.func('int socket(int domain, int type, int protocol)'),
  } as Libc;
  return libc;
}

/** "EBUSY (errno 16: resource busy or locked)" for messages. */
function describeErrno(errno: number): string {
  const entry = getSystemErrorMap().get(-errno);
  return entry ? `${entry[0]} (errno ${errno}: ${entry[1]})` : `errno ${errno}`;
}

// ---- names --------------------------------------------------------------------------------

/**
 * Checks an interface name as the kernel's dev_valid_name() does (net/core/dev.c): 1 to 15
 * bytes, not "." or "..", no '/', ':' or whitespace. '%' is refused too: the kernel would read
 * it as a name template ("tun%d"), and the gateway needs the name it asked for.
 */
export function checkTunName(name: unknown): string {
  if (typeof name !== 'string') {
    throw new WasmvsError('WASMVS_BAD_OPTION', `TUN name must be a string, got ${typeof name}`);
  }
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0) throw new WasmvsError('WASMVS_BAD_OPTION', 'TUN name is empty');
  if (bytes > IFNAMSIZ - 1) {
    throw new WasmvsError('WASMVS_BAD_OPTION', `TUN name ${JSON.stringify(name)} is ${bytes} bytes, longer than the kernel's 15`);
  }
  if (name === '.' || name === '..') throw new WasmvsError('WASMVS_BAD_OPTION', `TUN name ${JSON.stringify(name)} is not allowed`);
  const bad = /[/:%\s\0]/u.exec(name);
  if (bad) {
    throw new WasmvsError('WASMVS_BAD_OPTION', `TUN name ${JSON.stringify(name)} contains ${JSON.stringify(bad[0])}, which interface names cannot`);
  }
  return name;
}

// ---- TUNSETIFF and threaded NAPI ----------------------------------------------------------

function ifreqFlags(name: string, flags: number): Uint8Array {
  const ifr = new Uint8Array(new ArrayBuffer(IFREQ_SIZE));
  ifr.set(Buffer.from(name, 'utf8'), 0);
  ifr[IFR_FLAGS] = flags & 0xff;
  ifr[IFR_FLAGS + 1] = flags >>> 8;
  return ifr;
}

/** This network namespace's ifindex of NAME (SIOCGIFINDEX), or -1. */
function ifindexOf(lib: Libc, name: string): number {
  const sock = lib.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return -1;
  try {
    const ifr = ifreqFlags(name, 0);
    if (lib.ioctl(sock, SIOCGIFINDEX, 'void *', ifr) < 0) return -1;
    return new DataView(ifr.buffer).getInt32(IFR_IFINDEX, true);
  } finally {
    lib.close(sock);
  }
}

/** Switches NAME's NAPI to a kernel thread: true, or why it stays inline. */
function setThreaded(lib: Libc, name: string): true | string {
  const dir = `/sys/class/net/${name}`;
  try {
    const index = ifindexOf(lib, name);
    if (Number(readFileSync(`${dir}/ifindex`, 'utf8')) !== index) {
      return `${dir} is not this network namespace's ${name} (sysfs mounted in another namespace)`;
    }
    writeFileSync(`${dir}/threaded`, '1');
    return readFileSync(`${dir}/threaded`, 'utf8').trim() === '0' ? `${dir}/threaded stayed 0` : true;
  } catch (err) {
    return `cannot set ${dir}/threaded: ${(err as Error).message}`;
  }
}

// ---- the device ---------------------------------------------------------------------------

export interface TunOptions {
  /** Interface name, default 'wvs0'. */
  name?: string;
  /** IFF_VNET_HDR with checksum and segmentation offload (GSO super-packets), default true. */
  offload?: boolean;
  /** Packets per read() batch: default 64 with offload, 128 without. */
  batchSize?: number;
  /**
   * Threaded NAPI (IFF_NAPI, then /sys/class/net/NAME/threaded = 1): written packets are
   * received by the kernel in a kernel thread, in batches through GRO, not inside write().
   * Default false. Where the kernel refuses either step the device works without it and
   * `napiProblem` says why.
   */
  napi?: boolean;
}

/** A TUN interface (IFF_TUN|IFF_NO_PI, single queue), non-blocking, as a batch-I/O Device. */
export class TunDevice implements Device {
  readonly name: string;
  readonly headerLen: number;
  readonly batchSize: number;
  /** Whether the device carries a virtio_net_hdr and the kernel may hand it super-packets. */
  readonly offload: boolean;
  /**
   * The offloads the kernel took (TUNSETOFFLOAD): 'csum', 'tso4', 'tso6' and, on kernels with
   * UDP segmentation offload (6.2+), 'uso4', 'uso6'. Empty without offload.
   */
  readonly offloads: readonly string[];
  /** Whether written packets go to a NAPI kernel thread (`napi` asked for and taken). */
  readonly napiThreaded: boolean;
  /** Why `napi` was asked for and the thread is not on (the kernel refused a step), else undefined. */
  readonly napiProblem: string | undefined;

  private readonly lib: Libc;
  private handle: number;
  private wakeFd: number;
  /** Two struct pollfd in native memory (it stays put while the async poll runs): the TUN's
   *  and the eventfd's. */
  private pollfds: unknown;
  private closed = false;
  private closing: Promise<void> | undefined;
  private pending: Promise<boolean> | undefined;
  private failureText: string | undefined;
  private readonly counts: DeviceStats = { rxPackets: 0, txPackets: 0, rxErrors: 0, txErrors: 0 };

  private constructor(lib: Libc, fd: number, wakeFd: number, name: string, offload: boolean, offloads: string[], batchSize: number, napi: true | false | string) {
    this.lib = lib;
    this.napiThreaded = napi === true;
    this.napiProblem = typeof napi === 'string' ? napi : undefined;
    this.handle = fd;
    this.wakeFd = wakeFd;
    this.name = name;
    this.offload = offload;
    this.offloads = Object.freeze(offloads);
    this.headerLen = offload ? VNET_HDR_LEN : 0;
    this.batchSize = batchSize;
    this.pollfds = koffi.alloc('uint8_t', 2 * POLLFD_SIZE);
    koffi.encode(this.pollfds, 0, 'int', fd);
    koffi.encode(this.pollfds, 4, 'int16_t', POLLIN);
    koffi.encode(this.pollfds, 6, 'int16_t', 0);
    koffi.encode(this.pollfds, POLLFD_SIZE, 'int', wakeFd);
    koffi.encode(this.pollfds, POLLFD_SIZE + 4, 'int16_t', POLLIN);
    koffi.encode(this.pollfds, POLLFD_SIZE + 6, 'int16_t', 0);
  }

  /**
   * Creates the TUN interface NAME (or attaches to a persistent one of that name that nobody
   * holds, as the kernel allows) and configures offload. Refusals: WASMVS_BAD_OPTION (bad name
   * or batch size, before any system call), WASMVS_NOT_ROOT (EPERM: no CAP_NET_ADMIN),
   * WASMVS_TUN (no /dev/net/tun, name in use, any other system error, named). Nothing is left
   * open when it throws.
   */
  static open(options: TunOptions = {}): TunDevice {
    const name = checkTunName(options.name ?? 'wvs0');
    const offload = options.offload ?? true;
    if (typeof offload !== 'boolean') {
      throw new WasmvsError('WASMVS_BAD_OPTION', `offload must be true or false, got ${String(offload)}`);
    }
    const batchSize = options.batchSize ?? (offload ? TUN_BATCH_OFFLOAD : TUN_BATCH_PLAIN);
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) {
      throw new WasmvsError('WASMVS_BAD_OPTION', `batchSize ${String(batchSize)} is not an integer from 1 to ${MAX_BATCH}`);
    }
    const napi = options.napi ?? false;
    if (typeof napi !== 'boolean') throw new WasmvsError('WASMVS_BAD_OPTION', `napi must be true or false, got ${String(napi)}`);
    const lib = loadLibc();

    const fd = lib.open('/dev/net/tun', O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const errno = koffi.errno();
      if (errno === ENOENT || errno === ENODEV || errno === ENXIO) {
        throw new WasmvsError('WASMVS_TUN', `no /dev/net/tun (load the tun module): open: ${describeErrno(errno)}`);
      }
      if (errno === EACCES || errno === EPERM) {
        throw new WasmvsError('WASMVS_NOT_ROOT', `opening /dev/net/tun needs root (CAP_NET_ADMIN): open: ${describeErrno(errno)}`);
      }
      throw new WasmvsError('WASMVS_TUN', `cannot open /dev/net/tun: ${describeErrno(errno)}`);
    }
    let wakeFd = -1;
    try {
      const flags = IFF_TUN | IFF_NO_PI | (offload ? IFF_VNET_HDR : 0);
      let napiThreaded: true | false | string = false;
      let attached = false;
      if (napi) {
        if (lib.ioctl(fd, TUNSETIFF, 'void *', ifreqFlags(name, flags | IFF_NAPI)) === 0) {
          attached = true;
          napiThreaded = setThreaded(lib, name);
        } else {
          // Kernels before 4.15 refuse the flag: go on without it (a name in use fails again
          // below, with its own message).
          const errno = koffi.errno();
          if (errno !== EINVAL && errno !== EPERM) throw setIffError(name, errno);
          napiThreaded = `the kernel refused IFF_NAPI: ${describeErrno(errno)}`;
        }
      }
      if (!attached && lib.ioctl(fd, TUNSETIFF, 'void *', ifreqFlags(name, flags)) < 0) throw setIffError(name, koffi.errno());

      const offloads: string[] = [];
      if (offload) {
        // A persistent TUN keeps the header size its last owner set: make it ours.
        const size = new Int32Array(new ArrayBuffer(4));
        size[0] = VNET_HDR_LEN;
        if (lib.ioctl(fd, TUNSETVNETHDRSZ, 'void *', size) < 0) throw ioctlError(name, 'TUNSETVNETHDRSZ', koffi.errno());
        size[0] = 0;
        if (lib.ioctl(fd, TUNGETVNETHDRSZ, 'void *', size) < 0) throw ioctlError(name, 'TUNGETVNETHDRSZ', koffi.errno());
        if (size[0] !== VNET_HDR_LEN) {
          throw new WasmvsError('WASMVS_TUN', `TUN ${name}: the kernel uses a ${size[0]}-byte vnet header, not ${VNET_HDR_LEN}`);
        }
        // USO needs both USO bits beside CSUM; kernels before 6.2 refuse unknown bits with
        // EINVAL (tun.c set_offload), and then we go on with TCP offload alone.
        const base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
        if (lib.ioctl(fd, TUNSETOFFLOAD, 'unsigned long', base | TUN_F_USO4 | TUN_F_USO6) === 0) {
          offloads.push('csum', 'tso4', 'tso6', 'uso4', 'uso6');
        } else {
          const errno = koffi.errno();
          if (errno !== EINVAL) throw ioctlError(name, 'TUNSETOFFLOAD', errno);
          if (lib.ioctl(fd, TUNSETOFFLOAD, 'unsigned long', base) < 0) throw ioctlError(name, 'TUNSETOFFLOAD', koffi.errno());
          offloads.push('csum', 'tso4', 'tso6');
        }
      } else if (lib.ioctl(fd, TUNSETOFFLOAD, 'unsigned long', 0) < 0) {
        // Without a vnet header the kernel must not hand us super-packets; a persistent TUN
        // may still carry a previous owner's offload features.
        throw ioctlError(name, 'TUNSETOFFLOAD', koffi.errno());
      }

      wakeFd = lib.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (wakeFd < 0) throw new WasmvsError('WASMVS_TUN', `TUN ${name}: eventfd: ${describeErrno(koffi.errno())}`);
      return new TunDevice(lib, fd, wakeFd, name, offload, offloads, batchSize, napiThreaded);
    } catch (err) {
      lib.close(fd);
      if (wakeFd >= 0) lib.close(wakeFd);
      throw err;
    }
  }

  /**
   * Why the device stopped carrying packets (its interface was deleted or the queue detached),
   * or undefined while it works. Once set, read() and write() count errors and wait() sleeps
   * out its timeout, so a loop over a dead device costs no CPU; the owner should close it.
   */
  get failure(): string | undefined {
    return this.failureText;
  }

  /** The TUN's descriptor, for the gateway's writer thread (Device.fd); -1 once closed. */
  get fd(): number {
    return this.handle;
  }

  read(bufs: readonly Uint8Array[], sizes: Uint32Array): number {
    if (this.closed) return 0;
    const { lib, handle: fd } = this;
    const max = Math.min(bufs.length, sizes.length);
    let n = 0;
    // A packet too long for its buffer is cut to fit by the kernel (tun_put_user()), which
    // returns the full length on older kernels and the bytes copied on newer ones; either way
    // it is dropped and counted. Bound how many one call may discard.
    let discards = 0;
    const hdr = this.headerLen;
    while (n < max) {
      const buf = bufs[n];
      const r = lib.read(fd, buf, buf.length);
      if (r < 0) {
        const errno = koffi.errno();
        if (errno === EAGAIN) break;
        if (errno === EINTR) continue;
        this.counts.rxErrors++;
        this.noteError('read', errno);
        break;
      }
      if (r > buf.length || (r === buf.length && l3Length(buf, hdr) > r - hdr)) {
        this.counts.rxErrors++;
        if (++discards > max) break;
        continue;
      }
      if (r === 0) break;
      sizes[n++] = r;
    }
    this.counts.rxPackets += n;
    return n;
  }

  write(bufs: readonly Uint8Array[], sizes: Uint32Array, indices: Uint32Array, count: number): number {
    if (this.closed) return 0;
    const { lib, handle: fd } = this;
    const last = Math.min(count, indices.length);
    let written = 0;
    for (let k = 0; k < last; k++) {
      const i = indices[k];
      const buf = bufs[i];
      const len = sizes[i];
      // koffi hands the kernel the buffer's address: a length past the view would send
      // whatever memory follows it, so it is refused here.
      if (buf === undefined || !(len > 0 && len <= buf.length)) {
        this.counts.txErrors++;
        continue;
      }
      let r = lib.write(fd, buf, len);
      if (r < 0 && koffi.errno() === EINTR) r = lib.write(fd, buf, len);
      if (r < 0) {
        // EAGAIN/ENOBUFS (queue full), EINVAL (a header the kernel rejects), EIO: the packet
        // is lost, as a full queue loses it.
        this.counts.txErrors++;
        this.noteError('write', koffi.errno());
        continue;
      }
      written++;
    }
    this.counts.txPackets += written;
    return written;
  }

  wait(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    // One wait at a time (Device): a second caller shares the pending one.
    if (this.pending) return this.pending;
    const timeout = Number.isNaN(timeoutMs) ? 0 : Math.max(0, Math.min(MAX_POLL_MS, Math.ceil(timeoutMs)));
    const { lib, pollfds } = this;
    // Under load a packet is usually ready already: a poll with no timeout on this thread
    // costs one system call and saves the round trip through the thread pool.
    const now = lib.poll(pollfds, 2, 0);
    if (now !== 0) return Promise.resolve(this.pollResult(now));
    if (timeout === 0) return Promise.resolve(false);
    const pending = new Promise<boolean>((resolve) => {
      const done = (ready: boolean): void => {
        this.pending = undefined;
        resolve(ready);
      };
      try {
        lib.poll.async(pollfds, 2, timeout, (err: unknown, r: number) => done(err ? false : this.pollResult(r)));
      } catch {
        // koffi's async queue is full (max_async_calls): report "nothing yet" after no wait.
        queueMicrotask(() => done(false));
      }
    });
    this.pending = pending;
    return pending;
  }

  stats(): DeviceStats {
    return { ...this.counts };
  }

  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      if (this.pending) {
        // Wake the poll through the eventfd (an 8-byte counter increment), then wait for the
        // pool thread to return before the descriptors go: closing an fd another thread polls
        // invites its number being reused under that poll.
        const one = new Uint8Array(new BigUint64Array([1n]).buffer);
        this.lib.write(this.wakeFd, one, 8);
        await this.pending;
      }
      this.lib.close(this.handle);
      this.lib.close(this.wakeFd);
      this.handle = -1;
      this.wakeFd = -1;
      koffi.free(this.pollfds);
      this.pollfds = null;
    })();
    return this.closing;
  }

  /** true when the TUN is readable; records a failure when the kernel reports it gone. */
  private pollResult(r: number): boolean {
    if (r <= 0 || this.closed) return false;
    const tunEvents = koffi.decode(this.pollfds, 6, 'int16_t') as number;
    if ((tunEvents & POLLIN) !== 0) return true;
    if ((tunEvents & (POLLERR | POLLHUP | POLLNVAL)) !== 0) {
      // tun_chr_poll() answers EPOLLERR once the queue has no device (it was deleted).
      this.fail(`TUN ${this.name} reports an error on poll (its interface was deleted or detached)`);
    }
    return false;
  }

  private noteError(op: string, errno: number): void {
    // EBADFD: the file has no device behind it any more (tun_get() is NULL); EIO after the
    // device went away. Others (EAGAIN on a full queue, EINVAL for one bad packet) pass.
    if (errno === EBADFD || errno === EIO) this.fail(`TUN ${this.name}: ${op}: ${describeErrno(errno)}`);
  }

  private fail(text: string): void {
    if (this.failureText !== undefined) return;
    this.failureText = text;
    // From now on poll() skips the TUN (a negative fd is ignored) and sleeps on the eventfd
    // alone, so a loop over the dead device idles instead of spinning on EPOLLERR.
    if (this.pollfds) koffi.encode(this.pollfds, 0, 'int', -1);
  }
}

/**
 * The length a packet's own IP header claims (IPv4 total length, IPv6 40 + payload length), or
 * 0 when it cannot tell: a read that filled its buffer is whole only if this fits.
 */
function l3Length(buf: Uint8Array, at: number): number {
  if (buf.length < at + 6) return 0;
  const version = buf[at] >>> 4;
  if (version === 4) return (buf[at + 2] << 8) | buf[at + 3];
  if (version === 6) return 40 + ((buf[at + 4] << 8) | buf[at + 5]);
  return 0;
}

function setIffError(name: string, errno: number): WasmvsError {
  if (errno === EPERM || errno === EACCES) {
    return new WasmvsError('WASMVS_NOT_ROOT', `creating TUN ${name} needs root (CAP_NET_ADMIN): TUNSETIFF: ${describeErrno(errno)}`);
  }
  if (errno === EBUSY) {
    return new WasmvsError('WASMVS_TUN', `TUN name ${name} is in use (another process holds the device): TUNSETIFF: ${describeErrno(errno)}`);
  }
  if (errno === EINVAL && existsSync(`/sys/class/net/${name}`)) {
    // tun_set_iff() refuses an existing interface that is not a TUN (or a TAP asked as a TUN).
    return new WasmvsError('WASMVS_TUN', `TUN name ${name} is in use by an interface that is not a TUN device: TUNSETIFF: ${describeErrno(errno)}`);
  }
  if (errno === ENODEV || errno === ENXIO) {
    return new WasmvsError('WASMVS_TUN', `no /dev/net/tun (load the tun module): TUNSETIFF: ${describeErrno(errno)}`);
  }
  return new WasmvsError('WASMVS_TUN', `cannot create TUN ${name}: TUNSETIFF: ${describeErrno(errno)}`);
}

function ioctlError(name: string, what: string, errno: number): WasmvsError {
  return new WasmvsError('WASMVS_TUN', `TUN ${name}: ${what}: ${describeErrno(errno)}`);
}
