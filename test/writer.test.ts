// The gateway's writer thread (host/gateway/writer.ts) without root: its fd is a FIFO instead of
// a TUN, so what the worker write(2)s can be read back in order and split into packets by
// their IPv4 total length. The FIFO's write end is blocking, so a test that stops reading
// makes the writer fall behind for real (back-pressure). The gateway over such a device runs
// its region ring and the worker exactly as over a TUN; the same packets through the same
// gateway with writerThread: false must come out byte for byte the same.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../host/engine/engine.js';
import { FakeDevice } from '../host/gateway/device.js';
import { Gateway } from '../host/gateway/gateway.js';
import { WRITER_REGIONS, WriterThread } from '../host/gateway/writer.js';
import { runCli } from './support/cli.js';
import { ftpConversation, reply227 } from './support/ftp-traffic.js';
import { decode, hex, tcpPacket, udpPacket } from './support/packets.js';

const VIP = '198.18.100.40';
const RIP1 = '198.19.0.5';
const RIP2 = '198.19.0.6';
const CLIENT = '198.18.7.7';
const RULES = `-A -t ${VIP}:80 -s wrr
-a -t ${VIP}:80 -r ${RIP1}:80 -m -w 1
-a -t ${VIP}:80 -r ${RIP2}:80 -m -w 2
-A -t ${VIP}:21 -s rr
-a -t ${VIP}:21 -r ${RIP1}:21 -m
`;

/** A FIFO: `fd` is its blocking write end (the writer's), reads drain it without blocking. */
class Fifo {
  readonly fd: number;
  private readonly readFd: number;
  private readonly dir: string;
  private pending = new Uint8Array(0);
  private readonly chunk = new Uint8Array(1 << 20);

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'wasmvs-writer-'));
    const path = join(this.dir, 'fifo');
    execFileSync('mkfifo', [path]);
    this.readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    this.fd = openSync(path, constants.O_WRONLY);
  }

  /** Bytes written so far and not yet taken. */
  drain(): Uint8Array {
    for (;;) {
      let n = 0;
      try {
        n = readSync(this.readFd, this.chunk, 0, this.chunk.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw err;
      }
      if (n === 0) break;
      const next = new Uint8Array(this.pending.length + n);
      next.set(this.pending);
      next.set(this.chunk.subarray(0, n), this.pending.length);
      this.pending = next;
    }
    return this.pending;
  }

  /** Whole packets (headerLen + IPv4 total length each) read so far; the rest stays. */
  packets(headerLen: number): Uint8Array[] {
    const buf = this.drain();
    const out: Uint8Array[] = [];
    let at = 0;
    while (at + headerLen + 4 <= buf.length) {
      const len = headerLen + ((buf[at + headerLen + 2] << 8) | buf[at + headerLen + 3]);
      if (at + len > buf.length) break;
      out.push(buf.slice(at, at + len));
      at += len;
    }
    this.pending = buf.slice(at);
    return out;
  }

  close(): void {
    closeSync(this.fd);
    closeSync(this.readFd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A FakeDevice (reads from inject()) whose writes go to a FIFO, as a TUN's go to its fd: the
 * gateway's own writes and its writer thread's land in one stream, in the order they happen.
 */
class FifoDevice extends FakeDevice {
  readonly fd: number;
  constructor(readonly fifo: Fifo, headerLen: number) {
    super({ headerLen, batchSize: 16 });
    this.fd = fifo.fd;
  }

  override write(bufs: readonly Uint8Array[], sizes: Uint32Array, indices: Uint32Array, count: number): number {
    for (let k = 0; k < count; k++) writeSync(this.fd, bufs[indices[k]], 0, sizes[indices[k]]);
    return super.write(bufs, sizes, indices, count);
  }
}

/** Collects packets until `n` have come (from the FIFO, or the device's own writes). */
async function collect(source: () => Uint8Array[], n: number, ms = 3000): Promise<Uint8Array[]> {
  const got: Uint8Array[] = [];
  const until = Date.now() + ms;
  while (got.length < n) {
    got.push(...source());
    if (got.length >= n) break;
    if (Date.now() > until) throw new Error(`only ${got.length} of ${n} packets written`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return got;
}

function smallEngine(slotCount: number, slotSize = 2048): Engine {
  return new Engine({ slotCount, slotSize, connCapacity: 1024 });
}

const memoryOf = (e: Engine) => e.memory as unknown as WebAssembly.Memory;

for (const ioUring of [false, true]) test(`WriterThread (${ioUring ? 'io_uring' : 'write(2)'}): regions are written in order, straight from the slots at their listed lengths; a bad length is counted, not written`, async () => {
  const fifo = new Fifo();
  const engine = smallEngine(WRITER_REGIONS * 4);
  const slots = Array.from({ length: engine.slotCount }, (_, i) => engine.slot(i));
  // Small packets: a pipe takes a write of up to PIPE_BUF bytes whole and at once, as a TUN
  // takes every write, so io_uring completes them inline here too.
  const writer = await WriterThread.start({ fd: fifo.fd, memory: memoryOf(engine), slots, regionSlots: 4, ioUring });
  try {
    assert.is(writer.ioUring, ioUring, 'io_uring as asked (this kernel has it)');
    const expected: string[] = [];
    for (let round = 0; round < 10; round++) {
      while (!writer.acquire()) fifo.drain();
      const base = writer.base;
      assert.is(base, (round % WRITER_REGIONS) * 4);
      // Slots base+2, base, base+3 in that order (an answer slot may come between); base+1
      // listed with a length past its slot.
      const order = [base + 2, base, base + 1, base + 3];
      order.forEach((i, k) => {
        const p = udpPacket({ src: CLIENT, dst: VIP, sport: 1000 + round, dport: 53, payload: new Uint8Array(10 + k * 7).fill(round) });
        slots[i].set(p);
        writer.sizes[i] = i === base + 1 ? slots[i].length + 1 : p.length;
        writer.indices[base + k] = i;
        if (i !== base + 1) expected.push(hex(p));
      });
      writer.publish(4);
    }
    const out = await collect(() => fifo.packets(0), expected.length);
    assert.equal(out.map(hex), expected);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(writer.stats(), { txPackets: 30, txErrors: 10 });
    assert.is(writer.failure, undefined);
  } finally {
    await writer.stop();
    fifo.close();
  }
});

test('WriterThread: back-pressure: with every region queued acquire() waits and says no; reading frees them; stop() drains what is queued', async () => {
  const fifo = new Fifo();
  // A FIFO holds 64 KiB: one 60,000-byte packet fills it, the next blocks the writer.
  const engine = smallEngine(WRITER_REGIONS * 2, 65_536);
  const slots = Array.from({ length: engine.slotCount }, (_, i) => engine.slot(i));
  const writer = await WriterThread.start({ fd: fifo.fd, memory: memoryOf(engine), slots, regionSlots: 2 });
  const expected: string[] = [];
  const publishOne = (k: number) => {
    const base = writer.base;
    const p = udpPacket({ src: CLIENT, dst: VIP, sport: 2000 + k, dport: 53, payload: new Uint8Array(60_000 - 28).fill(k) });
    slots[base].set(p);
    writer.sizes[base] = p.length;
    writer.indices[base] = base;
    writer.publish(1);
    expected.push(hex(p));
  };
  try {
    let published = 0;
    while (writer.acquire()) publishOne(published++);
    // One packet in the pipe, one in a blocked write(), and the ring full behind them.
    assert.ok(published >= WRITER_REGIONS && published <= WRITER_REGIONS + 2, `published ${published}`);
    assert.ok(writer.waits >= 1);
    assert.not.ok(writer.acquire(), 'still full');
    const first = await collect(() => fifo.packets(0), 1);
    assert.is(hex(first[0]), expected[0]);
    const until = Date.now() + 2000;
    while (!writer.acquire()) {
      fifo.drain();
      if (Date.now() > until) assert.unreachable('a region came free once the pipe was read');
    }
    publishOne(published++);
    // stop() with regions queued: it resolves once the writer wrote them all and exited.
    const reading = setInterval(() => fifo.drain(), 1);
    await writer.stop();
    clearInterval(reading);
    const all = [...first, ...fifo.packets(0)].map(hex);
    // Compared by count and digest: a diff of 60 KB packets in hex helps nobody.
    assert.is(all.length, expected.length, `${all.length} of ${expected.length} packets`);
    assert.ok(all.every((h, k) => h === expected[k]), 'every packet intact, in order');
    assert.equal(writer.stats(), { txPackets: published, txErrors: 0 });
  } finally {
    await writer.stop();
    fifo.close();
  }
});

test('WriterThread.start refuses memory that is not shared, a ring that is not whole regions, a bad fd', async () => {
  const engine = smallEngine(WRITER_REGIONS * 2);
  const slots = Array.from({ length: engine.slotCount }, (_, i) => engine.slot(i));
  const memory = memoryOf(engine);
  const refuse = async (o: Parameters<typeof WriterThread.start>[0], re: RegExp) => {
    try {
      await WriterThread.start(o);
    } catch (err) {
      assert.is((err as { code?: string }).code, 'WASMVS_BAD_OPTION');
      assert.match((err as Error).message, re);
      return;
    }
    assert.unreachable(`expected a refusal matching ${re}`);
  };
  await refuse({ fd: 1, memory: new WebAssembly.Memory({ initial: 1 }), slots, regionSlots: 2 }, /shared memory/);
  await refuse({ fd: 1, memory, slots: slots.slice(1), regionSlots: 2 }, /4 regions of 2 slots, got 7/);
  await refuse({ fd: -1, memory, slots, regionSlots: 2 }, /file descriptor/);
  await refuse({ fd: 1, memory, slots: [...slots.slice(1), new Uint8Array(new SharedArrayBuffer(2048))], regionSlots: 2 }, /views into the engine's memory/);
});

/**
 * Bursts of 150 new connections (more than the 4 regions of 16 hold), each with a packet
 * from the real server back, unserved ports answered (RST), and 20 FTP sessions whose 227
 * the helper resizes: through the gateway over a FIFO device, with and without the thread.
 */
function traffic(headerLen: number): Uint8Array[] {
  const frames: Uint8Array[] = [];
  const frame = (p: Uint8Array) => {
    const f = new Uint8Array(headerLen + p.length); // vnet header flags 0: complete checksums
    f.set(p, headerLen);
    frames.push(f);
  };
  for (let i = 0; i < 150; i++) frame(tcpPacket({ src: CLIENT, dst: VIP, sport: 10_000 + i, dport: 80, flags: 'S', seq: i }));
  for (let i = 0; i < 20; i++) frame(tcpPacket({ src: CLIENT, dst: VIP, sport: 20_000 + i, dport: 81, flags: 'S', seq: i }));
  const sessions = Array.from({ length: 20 }, (_, i) => ftpConversation({
    client: CLIENT, cport: 41_000 + i, vip: VIP, vport: 21, server: RIP1, sport: 21,
    steps: [
      { from: 'server', text: '220 hi\r\n' }, { from: 'client', text: 'PASV\r\n' },
      { from: 'server', text: reply227(RIP1, 50_000 + i), seen: reply227(VIP, 50_000 + i) }, { ack: 'client' },
    ],
  }));
  for (let k = 0; k < sessions[0].length; k++) for (const s of sessions) frame(s[k].received);
  return frames;
}

async function runThrough(headerLen: number, writerThread: boolean) {
  const fifo = new Fifo();
  const device = new FifoDevice(fifo, headerLen);
  const gw = await Gateway.start({ rules: RULES, device, writerThread });
  const source = () => fifo.packets(headerLen);
  try {
    const frames = traffic(headerLen);
    // In bursts, so that batches of answers, resized packets and ordinary ones mix.
    for (let at = 0; at < frames.length; at += 100) for (const f of frames.slice(at, at + 100)) device.inject(f);
    const out = await collect(source, frames.length);
    // Replies of the real servers to the first 150: each comes back from the VIP.
    const replies = out.slice(0, 150).map((p) => {
      const d = decode(p.subarray(headerLen));
      return tcpPacket({ src: d.dst, dst: CLIENT, sport: d.dport as number, dport: d.sport as number, flags: 'SA', seq: 7, ack: 1 });
    });
    for (const r of replies) {
      const f = new Uint8Array(headerLen + r.length);
      f.set(r, headerLen);
      device.inject(f);
    }
    out.push(...await collect(source, replies.length));
    // A lone packet while the writer is idle: written by the gateway's own thread.
    await new Promise((r) => setTimeout(r, 20));
    const before = gw.counters().writerWritten;
    const lone = tcpPacket({ src: CLIENT, dst: VIP, sport: 30_000, dport: 80, flags: 'S', seq: 1 });
    const f = new Uint8Array(headerLen + lone.length);
    f.set(lone, headerLen);
    device.inject(f);
    out.push(...await collect(source, 1));
    const loneOnThread = gw.counters().writerWritten - before;
    const counters = gw.counters();
    return { out, counters, loneOnThread, ftp: gw.engine.counters().ftp.rewritten };
  } finally {
    const reading = setInterval(() => fifo.drain(), 1);
    await gw.stop();
    clearInterval(reading);
    fifo.close();
  }
}

for (const headerLen of [0, 10]) {
  test(`gateway over a device with an fd (vnet header ${headerLen}): the writer thread writes what the gateway's own thread would, in the same order`, async () => {
    const threaded = await runThrough(headerLen, true);
    const own = await runThrough(headerLen, false);
    assert.ok(threaded.counters.writerThread, 'the writer thread runs');
    // Bursts of 100 fill batches of 16: those go to the thread; a short batch while the
    // writer is idle is written by the gateway's thread.
    assert.ok(threaded.counters.writerWritten >= 64, `${threaded.counters.writerWritten} packets written on the writer thread`);
    assert.is(threaded.loneOnThread, 0, 'a lone packet with the writer idle is written by the gateway\'s thread');
    assert.not.ok(own.counters.writerThread);
    assert.is(own.counters.writerWritten, 0);
    assert.is(threaded.ftp, 20, 'every 227 resized');
    assert.is(own.ftp, 20);
    assert.is(threaded.counters.replies.tcpReset, 20, 'the unserved port answered with RSTs');
    assert.equal(threaded.out.map(hex), own.out.map(hex));
    assert.is(threaded.counters.written, threaded.out.length);
    assert.is(threaded.counters.device.txPackets, threaded.out.length);
    assert.is(threaded.counters.device.txErrors, 0);
    // The replies came back from the VIP.
    for (const p of threaded.out.slice(-151, -1)) assert.is(decode(p.subarray(headerLen)).src, VIP);
  });
}

test('a writer thread that dies mid-run is replaced by the gateway\'s own writes: an error event, nothing lost after, counters kept', async () => {
  const fifo = new Fifo();
  const device = new FifoDevice(fifo, 0);
  const gw = await Gateway.start({ rules: RULES, device, writerThread: true });
  const errors: Error[] = [];
  gw.on('error', (e) => errors.push(e));
  const source = () => fifo.packets(0);
  const syn = (port: number) => tcpPacket({ src: CLIENT, dst: VIP, sport: port, dport: 80, flags: 'S', seq: 1 });
  try {
    // A burst that fills batches: written on the writer thread.
    for (let i = 0; i < 64; i++) device.inject(syn(20_000 + i));
    await collect(source, 64);
    const before = gw.counters();
    assert.ok(before.writerThread);
    assert.ok(before.writerWritten > 0, 'the thread wrote');
    // The worker dies (as a crash in it would end it): fault injection through the private
    // WriterThread, the one place a test can reach the Worker.
    const writer = (gw as unknown as { writer: { worker: { terminate(): Promise<number> } } }).writer;
    await writer.worker.terminate();
    // The next burst finds the writer gone, at the latest at the next tick, and is written here.
    const until = Date.now() + 3000;
    while (gw.counters().writerThread && Date.now() < until) {
      device.inject(syn(30_000));
      await new Promise((r) => setTimeout(r, 20));
      source();
    }
    const after = gw.counters();
    assert.not.ok(after.writerThread, 'the gateway writes on its own thread now');
    assert.ok(after.writerWritten >= before.writerWritten, 'what the dead thread wrote still counts');
    assert.ok(errors.some((e) => /writer thread exited|writing on the gateway's own thread/.test(e.message)), errors.map((e) => e.message).join('; '));
    source(); // what was written while it died
    for (let i = 0; i < 64; i++) device.inject(syn(40_000 + i));
    const out = await collect(source, 64);
    assert.equal(new Set(out.map((p) => decode(p).sport)).size, 64, 'every packet of the burst after the death was written');
    assert.is(gw.counters().writerWritten, after.writerWritten, 'none on the dead thread');
  } finally {
    const reading = setInterval(() => fifo.drain(), 1);
    await gw.stop();
    clearInterval(reading);
    fifo.close();
  }
});

test('over a FakeDevice (no fd) writerThread: true writes on the gateway\'s own thread; a bad writerThread is refused', async () => {
  const device = new FakeDevice({ batchSize: 16 });
  const gw = await Gateway.start({ rules: RULES, device, writerThread: true });
  try {
    device.inject(tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, flags: 'S', seq: 1 }));
    await collect(() => device.written.splice(0), 1);
    assert.not.ok(gw.counters().writerThread);
    assert.is(gw.counters().written, 1);
  } finally {
    await gw.stop();
  }
  try {
    await Gateway.start({ rules: RULES, device: new FakeDevice(), writerThread: 'yes' as unknown as boolean });
    assert.unreachable('writerThread "yes" accepted');
  } catch (err) {
    assert.is((err as { code?: string }).code, 'WASMVS_BAD_OPTION');
    assert.match((err as Error).message, /writerThread must be true or false/);
  }
});

test('wasmvs gateway refuses --writer-thread with --no-writer-thread (usage, exit 2) before anything starts', () => {
  const both = runCli(['gateway', '--rules', '/nonexistent/lvs.rules', '--writer-thread', '--no-writer-thread']);
  assert.is(both.status, 2);
  assert.match(both.stderr, /--writer-thread and --no-writer-thread exclude each other/);
});

test.run();
