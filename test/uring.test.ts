// The io_uring over raw system calls (host/gateway/uring.ts). Most tests need no root: they run
// READ/WRITE SQEs over a pipe (pipe2 through koffi) and /dev/null. The TUN test needs root and
// runs in a namespace it creates (198.18.0.0/15 only), deleted in `finally`; not root: skipped,
// and failed under CI. If this kernel refuses io_uring the tests say why and skip, except
// under CI, where the CI machine has it and a refusal fails.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import koffi from 'koffi';
import { WasmvsError } from '../host/errors.js';
import { TunDevice } from '../host/gateway/tun.js';
import {
  addressOf, IORING_OP_NOP, IORING_OP_READ, IORING_OP_READ_FIXED, IORING_OP_WRITE_FIXED, IOSQE_FIXED_FILE, IoUring,
  URING_ABI,
} from '../host/gateway/uring.js';
import { decode, udpPacket } from './support/packets.js';
import { IN_CI } from './support/tools.js';

const EAGAIN = 11;
const EBADF = 9;
const IS_ROOT = process.getuid?.() === 0;
const O_NONBLOCK = 0x800;
const O_CLOEXEC = 0x80000;

const libc = koffi.load('libc.so.6');
const pipe2 = libc.func('int pipe2(int *fds, int flags)') as (fds: Int32Array, flags: number) => number;

function makePipe(flags = O_CLOEXEC): [number, number] {
  const fds = new Int32Array(2);
  assert.is(pipe2(fds, flags), 0, 'pipe2');
  return [fds[0], fds[1]];
}

function iouWorkers(): number {
  return readdirSync('/proc/self/task').filter((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/comm`, 'utf8').startsWith('iou-wrk');
    } catch {
      return false;
    }
  }).length;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

test('bad arguments throw WASMVS_BAD_OPTION and open nothing', () => {
  for (const bad of [0, -1, 1.5, 4097, Number.NaN, '8' as unknown as number]) {
    try {
      IoUring.open(bad);
      assert.unreachable(`open(${String(bad)}) should throw`);
    } catch (err) {
      assert.instance(err, WasmvsError);
      assert.is((err as WasmvsError).code, 'WASMVS_BAD_OPTION');
      assert.match((err as Error).message, /io_uring entries/);
    }
  }
  assert.equal(URING_ABI, { SQE_SIZE: 64, CQE_SIZE: 16, PARAMS_SIZE: 120, SYS_IO_URING_SETUP: 425, SYS_IO_URING_ENTER: 426, SYS_IO_URING_REGISTER: 427 });
});

test('a kernel refusal gives undefined and a reason, not a throw (EMFILE under RLIMIT_NOFILE in a child)', () => {
  // io_uring_setup needs a descriptor: with every descriptor used it fails as a disabled
  // io_uring does, through the same path. The child fills its table, then asks for a ring.
  const code = `import { IoUring } from './host/gateway/uring.ts';
    import { openSync } from 'node:fs';
    const held = []; try { for (;;) held.push(openSync('/dev/null', 'r')); } catch {}
    const r = IoUring.openWithReason(8);
    console.log(JSON.stringify({ ring: r.ring !== undefined, reason: r.reason, open: IoUring.open(8) === undefined }));`;
  const out = spawnSync('sh', ['-c', `ulimit -n 256 && exec "$0" --import tsx --input-type=module -e "$1"`, process.execPath, code], {
    encoding: 'utf8', cwd: process.cwd(), timeout: 30_000,
  });
  assert.is(out.status, 0, out.stderr);
  const r = JSON.parse(out.stdout.trim().split('\n').pop()!) as { ring: boolean; reason: string; open: boolean };
  assert.is(r.ring, false);
  assert.is(r.open, true, 'open() is undefined too');
  assert.match(r.reason, /^io_uring_setup: EMFILE \(errno 24/);
});

const probe = IoUring.openWithReason(8);
if (!probe.ring) {
  if (IN_CI) test('io_uring is available', () => assert.unreachable(`io_uring unavailable under CI: ${probe.reason}`));
  else console.log(`  skip io_uring tests: ${probe.reason}`);
} else {
  probe.ring.close();

  test('a WRITE and a READ over a pipe complete inline with the right results and bytes', () => {
    const ring = IoUring.open(8)!;
    const [r, w] = makePipe();
    try {
      assert.is(ring.entries, 8);
      assert.ok(ring.cqEntries >= 8);
      const mem = new Uint8Array(new SharedArrayBuffer(4096)).fill(0xa5);
      const src = mem.subarray(100, 105);
      src.set([1, 2, 3, 4, 5]);
      const dst = mem.subarray(1000, 1100);
      const results = new Int32Array(4).fill(-9999);
      // In SQE order, inline: the WRITE fills the pipe before the READ drains it.
      assert.ok(ring.prepWrite(w, addressOf(src), 5, 0));
      assert.ok(ring.prepRead(r, addressOf(dst), dst.length, 1));
      assert.is(ring.pending, 2);
      assert.is(ring.submitAndWait(2), 2);
      assert.is(ring.pending, 0);
      assert.is(ring.reap(results), 2);
      assert.equal([...results], [5, 5, -9999, -9999]);
      assert.is(hex(dst.subarray(0, 6)), '0102030405a5');
      assert.is(ring.reap(results), 0, 'nothing more');
      assert.equal(ring.stats(), { enters: 1, submitted: 2, completed: 2, strays: 0 });
      assert.is(iouWorkers(), 0, 'no operation was punted to an io-wq worker');
    } finally {
      ring.close();
      closeSync(r);
      closeSync(w);
    }
  });

  test('a READ of an empty pipe: -EAGAIN at once with RWF_NOWAIT; without it the READ waits for data', () => {
    const ring = IoUring.open(8)!;
    const [r, w] = makePipe(O_CLOEXEC | O_NONBLOCK);
    try {
      const buf = new Uint8Array(new SharedArrayBuffer(64));
      const results = new Int32Array(2).fill(-9999);
      ring.prepRead(r, addressOf(buf), 64, 0);
      const t0 = Date.now();
      assert.is(ring.submitAndWait(1, 2000), 1);
      assert.ok(Date.now() - t0 < 1000, 'did not wait');
      assert.is(ring.reap(results), 1);
      assert.is(results[0], -EAGAIN);

      // Armed: the kernel polls the pipe; the wait times out with no CQE.
      ring.prepRead(r, addressOf(buf), 64, 1, 0, false);
      const t1 = Date.now();
      assert.is(ring.submitAndWait(1, 100), 1);
      assert.ok(Date.now() - t1 >= 90, `waited out the timeout (${Date.now() - t1} ms)`);
      assert.is(ring.reap(results), 0);
      writeSync(w, Buffer.from('late'));
      assert.is(ring.submitAndWait(1, 2000), 0, 'nothing new to submit');
      assert.is(ring.reap(results), 1);
      assert.is(results[1], 4);
      assert.is(Buffer.from(buf.subarray(0, 4)).toString(), 'late');
    } finally {
      ring.close();
      closeSync(r);
      closeSync(w);
    }
  });

  test('a bad descriptor gives a negative CQE result (-EBADF), not a throw; the ring goes on', () => {
    const ring = IoUring.open(4)!;
    const nul = openSync('/dev/null', 'w');
    try {
      const buf = new Uint8Array(new SharedArrayBuffer(64));
      const results = new Int32Array(3).fill(-9999);
      ring.prepRead(0x7ffffff0, addressOf(buf), 64, 0);
      ring.prepWrite(nul, addressOf(buf), 64, 1);
      ring.prep(IORING_OP_NOP, 0, 0, 0, 2);
      assert.is(ring.submitAndWait(3), 3, 'SUBMIT_ALL (or per-SQE failure): all three were taken');
      assert.is(ring.reap(results), 3);
      assert.equal([...results], [-EBADF, 64, 0]);
    } finally {
      ring.close();
      closeSync(nul);
    }
  });

  test('user_data outside the results array is counted as a stray; a full SQ refuses prep; closed ring answers -EBADF', () => {
    const ring = IoUring.open(2)!;
    const results = new Int32Array(1);
    assert.ok(ring.prep(IORING_OP_NOP, 0, 0, 0, 0));
    assert.ok(ring.prep(IORING_OP_NOP, 0, 0, 0, 7));
    assert.is(ring.sqSpace, 0);
    assert.not.ok(ring.prep(IORING_OP_NOP, 0, 0, 0, 0), 'SQ full');
    assert.is(ring.submitAndWait(2), 2);
    assert.is(ring.reap(results), 2);
    assert.is(ring.stats().strays, 1);
    assert.is(ring.sqSpace, 2);
    ring.close();
    ring.close();
    assert.is(ring.fd, -1);
    assert.is(ring.submit(0), -EBADF);
    // The ring's memory is unmapped: every accessor answers without touching it.
    assert.not.ok(ring.prep(IORING_OP_NOP, 0, 0, 0, 0));
    assert.is(ring.reap(results), 0);
    assert.is(ring.pending, 0);
    assert.is(ring.sqSpace, 0);
    assert.is(ring.registerFiles([0]), -EBADF);
  });

  test('registered file and buffer: READ_FIXED/WRITE_FIXED with IOSQE_FIXED_FILE over a pipe', () => {
    const ring = IoUring.open(8)!;
    const [r, w] = makePipe();
    try {
      const mem = new Uint8Array(new SharedArrayBuffer(8192));
      assert.is(ring.registerFiles([r, w]), 0);
      assert.is(ring.registerBuffers([mem]), 0);
      const src = mem.subarray(10, 20);
      src.set([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      const dst = mem.subarray(4096, 4196);
      const results = new Int32Array(3).fill(-9999);
      ring.prep(IORING_OP_WRITE_FIXED, 1, addressOf(src), 10, 0, IOSQE_FIXED_FILE, 0);
      ring.prep(IORING_OP_READ_FIXED, 0, addressOf(dst), 100, 1, IOSQE_FIXED_FILE, 0);
      // A fixed-file index past the table fails that SQE alone.
      ring.prep(IORING_OP_READ, 5, addressOf(dst), 100, 2, IOSQE_FIXED_FILE);
      ring.submitAndWait(3);
      assert.is(ring.reap(results), 3);
      assert.is(results[0], 10);
      assert.is(results[1], 10);
      assert.is(results[2], -EBADF);
      assert.is(hex(dst.subarray(0, 10)), '09080706050403020100');
      // Re-registering replaces the table.
      assert.is(ring.registerFiles([w]), 0);
    } finally {
      ring.close();
      closeSync(r);
      closeSync(w);
    }
  });

  if (!IS_ROOT) {
    if (IN_CI) test('TUN io_uring test can run', () => assert.unreachable('uring.test.ts TUN test needs root under CI'));
    else console.log('  skip uring.test.ts TUN test: not root');
  } else {
    test('TUN: an empty O_NONBLOCK TUN answers -EAGAIN only with RWF_NOWAIT; a WRITE is delivered; an armed READ completes on a packet', async () => {
      const ns = `wvsur-t${process.pid}`;
      const name = `wvsurt${process.pid % 10000}`;
      const ip = (...a: string[]): string => execFileSync('ip', a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      ip('netns', 'add', ns);
      let dev: TunDevice | undefined;
      let ring: IoUring | undefined;
      try {
        execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.all.disable_ipv6=1']);
        dev = TunDevice.open({ name, offload: false });
        ip('link', 'set', name, 'netns', ns);
        ip('-n', ns, 'addr', 'add', '198.18.0.1/24', 'dev', name);
        ip('-n', ns, 'link', 'set', name, 'up');
        ring = IoUring.open(8)!;
        const mem = new Uint8Array(new SharedArrayBuffer(4 * 2048));
        const slot = (i: number): Uint8Array => mem.subarray(i * 2048, (i + 1) * 2048);
        const results = new Int32Array(4).fill(-9999);

        ring.prepRead(dev.fd, addressOf(slot(0)), 2048, 0);
        assert.is(ring.submitAndWait(1, 2000), 1);
        assert.is(ring.reap(results), 1);
        assert.is(results[0], -EAGAIN, 'RWF_NOWAIT read of an empty TUN');

        // Without RWF_NOWAIT the kernel arms a poll despite O_NONBLOCK (6.18): no CQE yet.
        ring.prepRead(dev.fd, addressOf(slot(1)), 2048, 1, 0, false);
        ring.submitAndWait(1, 50);
        assert.is(ring.reap(results), 0, 'armed READ waits');

        // A UDP datagram from "the peer" 198.18.0.2 to the namespace's closed port 9: the
        // namespace answers with an ICMP port unreachable, which the armed READ receives.
        const pkt = udpPacket({ src: '198.18.0.2', dst: '198.18.0.1', sport: 4000, dport: 9, payload: 'x' });
        slot(2).set(pkt);
        ring.prepWrite(dev.fd, addressOf(slot(2)), pkt.length, 2);
        ring.submitAndWait(2, 2000);
        const end = Date.now() + 2000;
        let got = ring.reap(results);
        while (got < 2 && Date.now() < end) got += (ring.submitAndWait(1, 100), ring.reap(results));
        assert.is(results[2], pkt.length, 'WRITE took the whole packet');
        assert.ok(results[1] > 0, `armed READ completed with ${results[1]}`);
        const d = decode(slot(1).subarray(0, results[1]));
        assert.is(d.src, '198.18.0.1');
        assert.is(d.dst, '198.18.0.2');
        assert.is(iouWorkers(), 0, 'TUN reads and writes completed inline (no io-wq worker)');
      } finally {
        ring?.close();
        if (dev) await dev.close();
        try { ip('netns', 'del', ns); } catch { /* already gone */ }
      }
    });
  }
}

test.run();
