// The packet device the gateway's loop runs over: a small interface with batch I/O, as
// wireguard-go's tun.Device (Read(bufs, sizes, offset), Write(bufs, offset), BatchSize(),
// Close()). The TUN device (tun.ts) is one implementation; FakeDevice below is another, so
// the loop runs in tests without root and a benchmark can drive it without the kernel.
//
// Buffers are the engine's ring slots: views into shared WASM memory. A device reads
// straight into them and writes straight from them; it never copies or allocates per packet.

/** A batch-I/O packet device (non-blocking reads, a waitable readiness, batch writes). */
export interface Device {
  /** Interface name (the TUN's, or a fake's label). */
  readonly name: string;
  /**
   * Bytes in front of every packet read and written: 10 with the virtio_net_hdr of TUN
   * offload (vnet.ts), 0 for plain IFF_TUN|IFF_NO_PI. The IPv4 header follows them.
   */
  readonly headerLen: number;
  /** Packets the loop should offer per read() call. */
  readonly batchSize: number;
  /**
   * Reads the packets ready now into bufs[0..], at most bufs.length, without blocking.
   * sizes[i] receives packet i's length in bytes (header included). Returns the count; 0 when
   * nothing is ready. A packet longer than its buffer is dropped by the device and counted.
   */
  read(bufs: readonly Uint8Array[], sizes: Uint32Array): number;
  /**
   * Writes bufs[i].subarray(0, sizes[i]) for each i in `indices` (the first `count` of it).
   * Returns how many were accepted; a packet the kernel refuses is counted, never thrown.
   */
  write(bufs: readonly Uint8Array[], sizes: Uint32Array, indices: Uint32Array, count: number): number;
  /**
   * Resolves true once a read() would find a packet, or false after `timeoutMs`. Never
   * blocks the event loop. One wait at a time.
   */
  wait(timeoutMs: number): Promise<boolean>;
  /**
   * Set once the device is gone for good (the interface was deleted under us): the loop
   * cannot forward any more and stops.
   */
  readonly failure?: string;
  /**
   * The kernel file descriptor that write() writes to, when another thread may write(2)
   * packets to it directly (the gateway's writer thread, writer.ts). Absent on devices that are
   * not a kernel file (FakeDevice): the gateway then writes on its own thread. Valid until
   * close(), which the owner calls only once that thread is gone.
   */
  readonly fd?: number;
  /** Error and drop counts since open. */
  stats(): DeviceStats;
  /** Closes the device; waits for a pending wait() to return first. Idempotent. */
  close(): Promise<void>;
}

export interface DeviceStats {
  /** Packets read. */
  rxPackets: number;
  /** Packets written. */
  txPackets: number;
  /** Reads that failed (other than "nothing ready") or packets too long for their buffer. */
  rxErrors: number;
  /** Writes the kernel refused (the packet is lost, as a full queue loses it). */
  txErrors: number;
}

/**
 * An in-memory device: `inject` queues packets as if the kernel had routed them in, and
 * everything the loop writes lands in `written`. For tests and benchmarks, no root needed.
 */
export class FakeDevice implements Device {
  readonly name: string;
  readonly headerLen: number;
  readonly batchSize: number;
  /** Every packet written, in order (copies). */
  readonly written: Uint8Array[] = [];
  /** Called after each write() batch with the packets it wrote (copies), if set. */
  onWrite: ((packets: Uint8Array[]) => void) | undefined;
  private readonly queue: Uint8Array[] = [];
  private waiter: ((ready: boolean) => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counts: DeviceStats = { rxPackets: 0, txPackets: 0, rxErrors: 0, txErrors: 0 };

  constructor(options: { name?: string; headerLen?: number; batchSize?: number } = {}) {
    this.name = options.name ?? 'fake0';
    this.headerLen = options.headerLen ?? 0;
    this.batchSize = options.batchSize ?? 64;
  }

  /** Queues one packet (header included when headerLen > 0) for the loop to read. */
  inject(packet: Uint8Array): void {
    if (this.closed) return;
    this.queue.push(packet.slice());
    if (this.waiter) this.wake(true);
  }

  /** Packets injected and not yet read. */
  get pending(): number {
    return this.queue.length;
  }

  read(bufs: readonly Uint8Array[], sizes: Uint32Array): number {
    let n = 0;
    while (n < bufs.length && this.queue.length > 0) {
      const p = this.queue.shift() as Uint8Array;
      if (p.length > bufs[n].length) { this.counts.rxErrors++; continue; }
      bufs[n].set(p);
      sizes[n] = p.length;
      n++;
    }
    this.counts.rxPackets += n;
    return n;
  }

  write(bufs: readonly Uint8Array[], sizes: Uint32Array, indices: Uint32Array, count: number): number {
    const out: Uint8Array[] = [];
    for (let k = 0; k < count; k++) {
      const i = indices[k];
      out.push(bufs[i].slice(0, sizes[i]));
    }
    this.written.push(...out);
    this.counts.txPackets += out.length;
    this.onWrite?.(out);
    return out.length;
  }

  wait(timeoutMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    if (this.queue.length > 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.waiter = resolve;
      this.timer = setTimeout(() => this.wake(false), timeoutMs);
    });
  }

  stats(): DeviceStats {
    return { ...this.counts };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.waiter) this.wake(false);
  }

  private wake(ready: boolean): void {
    const w = this.waiter;
    this.waiter = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    w?.(ready);
  }
}
