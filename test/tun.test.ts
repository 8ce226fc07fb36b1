// The TUN device (host/gateway/tun.ts) against the real kernel, as root. Each test opens a TUN
// with a unique name (wvst<pid%1000><n>), moves it at once into a network namespace the test
// creates (`ip link set NAME netns NS`: our fd keeps working), configures it there with
// `ip -n NS`, and deletes device and namespace in `finally`, also when the test fails.
// Addresses are in 198.18.0.0/15 only: the namespace side of the TUN is 198.18.0.1/24, and the
// peer we play behind the TUN is 198.18.0.2. Processes this file starts are killed by PID.
// Needs ping (Debian iputils-ping) and ip (iproute2). Not root: skipped, and failed under CI.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import koffi from 'koffi';
import { WasmvsError } from '../host/errors.js';
import { TUN_OFFLOAD_SLOT_SIZE, TunDevice } from '../host/gateway/tun.js';
import {
  setVnetCsumOffset, setVnetCsumStart, setVnetFlags, setVnetGsoSize, setVnetGsoType, setVnetHdrLen,
  VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_HDR_LEN, VNET_OK, vnetCsumOffset, vnetCsumStart,
  vnetFlags, vnetGsoSize, vnetGsoType, vnetHeaderCheck, writeVnetHeaderNone,
} from '../host/gateway/vnet.js';
import { checksumsValid, decode, IPPROTO_ICMP, IPPROTO_TCP, icmpPacket, tcpPacket } from './support/packets.js';
import { findOnPath, IN_CI } from './support/tools.js';

const NS_ADDR = '198.18.0.1';
const PEER = '198.18.0.2';
const IS_ROOT = process.getuid?.() === 0;
const PING = findOnPath('ping');

let serial = 0;
function uniqueName(): string {
  serial++;
  return `wvst${process.pid % 1000}${serial}`;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A namespace with the TUN moved into it, addressed and up; torn down even on failure. */
async function withTun(
  options: { offload: boolean; batchSize?: number; napi?: boolean },
  body: (dev: TunDevice, ns: string, children: ChildProcess[]) => Promise<void>,
): Promise<void> {
  const name = uniqueName();
  const ns = `wvst-${process.pid}-${serial}`;
  const children: ChildProcess[] = [];
  let dev: TunDevice | undefined;
  ip('netns', 'add', ns);
  try {
    // IPv6 off in our namespace, so no router solicitations or MLD reports enter the TUN.
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.all.disable_ipv6=1']);
    dev = TunDevice.open({ name, ...options });
    ip('link', 'set', name, 'netns', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `${NS_ADDR}/24`, 'dev', name);
    ip('-n', ns, 'link', 'set', name, 'up');
    await body(dev, ns, children);
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    if (dev) await dev.close();
    try { ip('netns', 'del', ns); } catch { /* already gone */ }
    // If the move into the namespace failed, the (non-persistent) TUN went with our fd; check.
    try { ip('link', 'del', name); } catch { /* not in this namespace: expected */ }
  }
}

/** Ring-like slots: views at non-zero offsets of one SharedArrayBuffer, the rest 0xa5. */
function sharedSlots(count: number, size: number, offset: number): { memory: Uint8Array; slots: Uint8Array[] } {
  const memory = new Uint8Array(new SharedArrayBuffer(offset + count * size + 64)).fill(0xa5);
  const slots: Uint8Array[] = [];
  for (let i = 0; i < count; i++) slots.push(memory.subarray(offset + i * size, offset + (i + 1) * size));
  return { memory, slots };
}

/** Waits (through dev.wait) and reads until `accept` takes a packet or the deadline passes. */
async function readUntil(
  dev: TunDevice, slots: Uint8Array[], sizes: Uint32Array, deadlineMs: number,
  accept: (slot: Uint8Array, size: number) => boolean,
): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  while (Date.now() < end) {
    const n = dev.read(slots, sizes);
    for (let i = 0; i < n; i++) if (accept(slots[i], sizes[i])) return true;
    if (n === 0) await dev.wait(Math.max(1, end - Date.now()));
  }
  return false;
}

/** The echo reply PEER sends to NS_ADDR's echo request `req` (same identifier, sequence and data). */
function echoReplyTo(req: Uint8Array): Uint8Array {
  return icmpPacket({ src: PEER, dst: NS_ADDR, type: 0, rest: (req[24] << 24 | req[25] << 16 | req[26] << 8 | req[27]) >>> 0, body: req.subarray(28) });
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    const timer = setTimeout(() => resolve(null), timeoutMs);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
  });
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, WasmvsError);
    return `${(err as WasmvsError).code}: ${(err as WasmvsError).message}`;
  }
  return 'no error';
}

if (!IS_ROOT || !PING) {
  const why = !IS_ROOT ? 'not root (TUN devices and namespaces need CAP_NET_ADMIN)' : 'ping is not installed (apt-get install iputils-ping)';
  if (IN_CI) {
    test('TUN tests can run', () => assert.unreachable(`tun.test.ts cannot run under CI: ${why}`));
  } else {
    console.log(`  skip tun.test.ts: ${why}`);
  }
} else {
  test('plain TUN: a ping from the namespace is read into shared memory; our echo reply is written back and answers it', async () => {
    await withTun({ offload: false }, async (dev, ns, children) => {
      assert.is(dev.headerLen, 0);
      assert.is(dev.batchSize, 128);
      assert.equal(dev.offloads, []);
      const { memory, slots } = sharedSlots(8, 1536, 1000);
      const sizes = new Uint32Array(8);

      // koffi passes a view's own address (no copy into a temporary): memset returns its
      // pointer argument, and two views of the shared memory are exactly their offset apart.
      const memset = koffi.load('libc.so.6').func('void *memset(void *s, int c, size_t n)');
      const base = koffi.address(memset(memory, 0xa5, 1));
      assert.is(koffi.address(memset(slots[0], 0xa5, 0)) - base, 1000n);
      assert.is(koffi.address(memset(slots[3], 0xa5, 0)) - base, BigInt(1000 + 3 * 1536));

      const ping = spawn('ip', ['netns', 'exec', ns, PING as string, '-n', '-c', '1', '-W', '5', '-s', '56', '-p', '5a', PEER], { stdio: 'ignore' });
      children.push(ping);
      let request: Uint8Array | undefined;
      let slotIndex = -1;
      const got = await readUntil(dev, slots, sizes, 5000, (slot, size) => {
        const d = decode(slot.subarray(0, size));
        if (d.protocol !== IPPROTO_ICMP) return false;
        request = slot.slice(0, size);
        slotIndex = slots.indexOf(slot);
        return true;
      });
      assert.ok(got, 'the echo request reached read()');
      const req = request as Uint8Array;
      assert.is(req.length, 20 + 8 + 56);
      const d = decode(req);
      assert.is(d.src, NS_ADDR);
      assert.is(d.dst, PEER);
      assert.is(req[20], 8, 'ICMP echo request');
      assert.equal(checksumsValid(req), { ip: true, l4: true });
      // ping -p 5a fills the payload after its 16-byte timestamp with the pattern.
      assert.ok(req.subarray(20 + 8 + 16).every((b) => b === 0x5a), 'pattern bytes intact');
      // Straight into the slot at its offset: the bytes around the packet were not touched.
      const at = 1000 + slotIndex * 1536;
      assert.ok(memory.subarray(0, at).every((b, i) => i < 1000 ? b === 0xa5 : true));
      assert.ok(memory.subarray(at + req.length, at + 1536).every((b) => b === 0xa5), 'nothing written past the packet');

      const reply = echoReplyTo(req);
      slots[5].set(reply);
      sizes[5] = reply.length;
      assert.is(dev.write(slots, sizes, Uint32Array.of(5), 1), 1);
      assert.is(await exited(ping, 5000), 0, 'ping got our reply');
      const stats = dev.stats();
      assert.ok(stats.rxPackets >= 1);
      assert.is(stats.txPackets, 1);
      assert.is(stats.rxErrors, 0);
      assert.is(stats.txErrors, 0);
    });
  });

  test('napi: IFF_NAPI made threaded (a napi/NAME kernel thread receives what we write); a ping is answered through it', async () => {
    await withTun({ offload: false, napi: true }, async (dev, ns, children) => {
      assert.is(dev.napiThreaded, true);
      assert.is(execFileSync('ip', ['netns', 'exec', ns, 'cat', `/sys/class/net/${dev.name}/threaded`], { encoding: 'utf8' }).trim(), '1');
      const threads = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map((p) => {
        try { return readFileSync(`/proc/${p}/comm`, 'utf8').trim(); } catch { return ''; }
      });
      assert.ok(threads.some((c) => c.startsWith(`napi/${dev.name}-`)), `a napi/${dev.name}-ID kernel thread runs`);
      const { slots } = sharedSlots(8, 1536, 0);
      const sizes = new Uint32Array(8);
      const ping = spawn('ip', ['netns', 'exec', ns, PING as string, '-n', '-c', '1', '-W', '5', '-s', '56', PEER], { stdio: 'ignore' });
      children.push(ping);
      let req: Uint8Array | undefined;
      assert.ok(await readUntil(dev, slots, sizes, 5000, (slot, size) => {
        if (decode(slot.subarray(0, size)).protocol !== IPPROTO_ICMP) return false;
        req = slot.slice(0, size);
        return true;
      }), 'the echo request reached read()');
      const r = req as Uint8Array;
      const reply = echoReplyTo(r);
      slots[1].set(reply);
      sizes[1] = reply.length;
      assert.is(dev.write(slots, sizes, Uint32Array.of(1), 1), 1);
      assert.is(await exited(ping, 5000), 0, 'ping got our reply through the NAPI thread');
    });
    // Asked for nothing, the device has no NAPI.
    await withTun({ offload: false }, async (dev) => {
      assert.is(dev.napiThreaded, false);
    });
    assert.match(codeOf(() => TunDevice.open({ name: uniqueName(), napi: 'yes' as unknown as boolean })), /^WASMVS_BAD_OPTION: napi must be true or false/);
  });

  test('napi: where /sys/class/net is another namespace\'s, the device works with NAPI inline and says why', async () => {
    // unshare -n: a new network namespace under the same sysfs mount (the host's), as a
    // process that called setns() without remounting /sys sees it.
    const name = uniqueName();
    const script = `import { TunDevice } from ${JSON.stringify(new URL('../host/gateway/tun.ts', import.meta.url).pathname)};
      const d = TunDevice.open({ name: ${JSON.stringify(name)}, offload: false, napi: true });
      console.log(JSON.stringify([d.napiThreaded, d.napiProblem])); await d.close();`;
    const out = execFileSync('unshare', ['-n', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
    const [threaded, why] = JSON.parse(out.trim()) as [boolean, unknown];
    assert.is(threaded, false);
    assert.type(why, 'string');
    assert.match(why as string, new RegExp(`/sys/class/net/${name}`));
  });

  test('plain TUN: a packet longer than its buffer is dropped and counted; bad writes are counted, never sent', async () => {
    await withTun({ offload: false }, async (dev, ns, children) => {
      const small = sharedSlots(4, 128, 64);
      const sizes = new Uint32Array(4);
      const ping = spawn('ip', ['netns', 'exec', ns, PING as string, '-n', '-c', '1', '-W', '1', '-s', '400', PEER], { stdio: 'ignore' });
      children.push(ping);
      const end = Date.now() + 5000;
      while (dev.stats().rxErrors === 0 && Date.now() < end) {
        if (dev.read(small.slots, sizes) === 0) await dev.wait(200);
      }
      assert.is(dev.stats().rxErrors, 1, 'the 428-byte packet did not fit 128 bytes');
      // Nothing was written past the 128-byte slot.
      assert.ok(small.memory.subarray(64 + 128).every((b) => b === 0xa5));
      // Length past the view, zero length, an index with no buffer: refused and counted.
      sizes[0] = 129;
      sizes[1] = 0;
      assert.is(dev.write(small.slots, sizes, Uint32Array.of(0, 1, 9), 3), 0);
      assert.is(dev.stats().txErrors, 3);
      assert.is(dev.stats().txPackets, 0);
    });
  });

  test('offload TUN: every read has a valid vnet header; a TCP flow arrives as TCPV4 super-packets; our super-packet is segmented to the client', async () => {
    await withTun({ offload: true }, async (dev, ns, children) => {
      assert.is(dev.headerLen, VNET_HDR_LEN);
      assert.is(dev.batchSize, 64);
      for (const o of ['csum', 'tso4', 'tso6']) assert.ok(dev.offloads.includes(o), o);
      const { slots } = sharedSlots(dev.batchSize, TUN_OFFLOAD_SLOT_SIZE, 4096);
      const sizes = new Uint32Array(dev.batchSize);
      const SEND = 512 * 1024;
      const BACK = 8 * 1448;
      // The client: connects to the peer we play, sends SEND bytes, reads BACK bytes, exits.
      const script = `
        const net = require('node:net');
        const s = net.connect({ host: '${PEER}', port: 5001 }, () => s.write(Buffer.alloc(${SEND}, 7)));
        let got = 0;
        s.on('data', (d) => { got += d.length; if (got >= ${BACK}) { console.log('received ' + got); process.exit(0); } });
        s.on('error', (e) => { console.log('error ' + e.message); process.exit(2); });
        setTimeout(() => { console.log('timeout ' + got); process.exit(3); }, 8000);`;
      const client = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(client);
      let out = '';
      client.stdout?.on('data', (d: Buffer) => { out += d.toString(); });

      const ISS = 0x10000000;
      let cport = 0;
      let rcvNxt = 0;
      let reads = 0;
      let superPackets = 0;
      let largest = 0;
      let sentBack = false;
      const frame = (pkt: Uint8Array, slot: number): void => {
        writeVnetHeaderNone(slots[slot]);
        slots[slot].set(pkt, VNET_HDR_LEN);
        sizes[slot] = VNET_HDR_LEN + pkt.length;
      };
      const end = Date.now() + 8000;
      while (Date.now() < end && !(superPackets > 0 && client.exitCode !== null)) {
        const n = dev.read(slots, sizes);
        if (n === 0) { await dev.wait(100); continue; }
        const replies: number[] = [];
        for (let i = 0; i < n; i++) {
          reads++;
          const slot = slots[i];
          const size = sizes[i];
          assert.is(vnetHeaderCheck(slot, size), VNET_OK, `header ${Buffer.from(slot.subarray(0, 10)).toString('hex')}`);
          const pkt = slot.subarray(VNET_HDR_LEN, size);
          if (pkt[9] !== IPPROTO_TCP) continue;
          // Offload on: the kernel leaves every TCP checksum to us (TOOLCHAIN), SYNs included.
          assert.is(vnetFlags(slot) & VNET_F_NEEDS_CSUM, VNET_F_NEEDS_CSUM);
          assert.is(vnetCsumStart(slot), 20);
          assert.is(vnetCsumOffset(slot), 16);
          const d = decode(pkt);
          const tcp = pkt.subarray(20);
          const flags = tcp[13];
          const seq = ((tcp[4] << 24) | (tcp[5] << 16) | (tcp[6] << 8) | tcp[7]) >>> 0;
          const payload = pkt.length - 20 - (tcp[12] >>> 4) * 4;
          if (flags & 0x02) {
            cport = d.sport as number;
            rcvNxt = (seq + 1) >>> 0;
            // SYN-ACK with MSS 1448 and a 64 KiB window (no scaling, no timestamps).
            frame(tcpPacket({ src: PEER, dst: NS_ADDR, sport: 5001, dport: cport, flags: 'SA', seq: ISS, ack: rcvNxt, window: 65535, tcpOptions: Uint8Array.of(2, 4, 0x05, 0xa8) }), dev.batchSize - 1 - replies.length);
            replies.push(dev.batchSize - 1 - replies.length);
            continue;
          }
          if (payload > 0) {
            largest = Math.max(largest, pkt.length);
            if (vnetGsoType(slot) !== VNET_GSO_NONE) {
              assert.is(vnetGsoType(slot) & 0x7f, VNET_GSO_TCPV4);
              assert.is(vnetGsoSize(slot), 1448);
              assert.ok(pkt.length > 1500, 'a super-packet is longer than the MTU');
              superPackets++;
            }
            if (seq === rcvNxt) rcvNxt = (seq + payload) >>> 0;
          }
        }
        if (cport !== 0 && rcvNxt !== 0) {
          const ackSlot = dev.batchSize - 1 - replies.length;
          if (replies.length === 0) {
            frame(tcpPacket({ src: PEER, dst: NS_ADDR, sport: 5001, dport: cport, flags: 'A', seq: sentBack ? ISS + 1 + BACK : ISS + 1, ack: rcvNxt, window: 65535 }), ackSlot);
            replies.push(ackSlot);
          }
          if (!sentBack && superPackets > 0) {
            // Our own super-packet: 8 segments of 1448 in one write, partial checksum (the
            // folded pseudo-header sum over the whole length), which the kernel segments.
            const s = dev.batchSize - 1 - replies.length;
            const seg = tcpPacket({ src: PEER, dst: NS_ADDR, sport: 5001, dport: cport, flags: 'PA', seq: ISS + 1, ack: rcvNxt, window: 65535, df: true, payload: new Uint8Array(BACK).fill(9) });
            const tcpLen = seg.length - 20;
            // 198.18.0.2 -> 198.18.0.1, protocol 6, TCP length (RFC 793 pseudo-header).
            let sum = 0xc612 + 0x0002 + 0xc612 + 0x0001 + IPPROTO_TCP + tcpLen;
            while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
            seg[36] = sum >>> 8;
            seg[37] = sum & 0xff;
            slots[s].set(seg, VNET_HDR_LEN);
            setVnetFlags(slots[s], VNET_F_NEEDS_CSUM);
            setVnetGsoType(slots[s], VNET_GSO_TCPV4);
            setVnetHdrLen(slots[s], 40);
            setVnetGsoSize(slots[s], 1448);
            setVnetCsumStart(slots[s], 20);
            setVnetCsumOffset(slots[s], 16);
            sizes[s] = VNET_HDR_LEN + seg.length;
            replies.push(s);
            sentBack = true;
          }
        }
        if (replies.length > 0) assert.is(dev.write(slots, sizes, Uint32Array.from(replies), replies.length), replies.length);
      }
      assert.ok(reads > 0);
      assert.ok(superPackets > 0, `super-packets seen (largest packet ${largest} bytes)`);
      assert.is(await exited(client, 3000), 0, `client: ${out.trim()}`);
      assert.is(out.trim(), `received ${BACK}`);
      assert.is(dev.stats().txErrors, 0);
    });
  });

  test('refusals: a name in use, an interface that is not a TUN, bad names and batch sizes', async () => {
    const name = uniqueName();
    const first = TunDevice.open({ name, offload: false });
    try {
      assert.match(codeOf(() => TunDevice.open({ name, offload: false })), new RegExp(`^WASMVS_TUN: TUN name ${name} is in use .*EBUSY`));
      assert.match(codeOf(() => TunDevice.open({ name, offload: true })), /^WASMVS_TUN: .* is in use/);
    } finally {
      await first.close();
    }
    // The name is free again once the holder closed: the non-persistent TUN went with it.
    const again = TunDevice.open({ name, offload: false });
    await again.close();
    assert.match(codeOf(() => TunDevice.open({ name: 'lo' })), /^WASMVS_TUN: TUN name lo is in use by an interface that is not a TUN device: TUNSETIFF: EINVAL/);
    for (const [bad, why] of [['', /is empty/], ['a'.repeat(16), /16 bytes/], ['wv/s', /contains "\/"/], ['wv s', /contains " "/], ['wv:0', /contains ":"/], ['tun%d', /contains "%"/], ['..', /not allowed/]] as const) {
      assert.match(codeOf(() => TunDevice.open({ name: bad })), new RegExp(`^WASMVS_BAD_OPTION: .*${why.source}`));
    }
    assert.match(codeOf(() => TunDevice.open({ name: 'é'.repeat(8) })), /^WASMVS_BAD_OPTION: .*16 bytes/);
    for (const batchSize of [0, -1, 1.5, 5000, Number.NaN]) {
      assert.match(codeOf(() => TunDevice.open({ name: uniqueName(), batchSize })), /^WASMVS_BAD_OPTION: batchSize/);
    }
  });

  test('close() while a wait() is pending wakes it at once; a closed device reads, writes and waits harmlessly', async () => {
    await withTun({ offload: false }, async (dev) => {
      const t0 = Date.now();
      const waiting = dev.wait(10_000);
      assert.is(dev.wait(10_000), waiting, 'a second wait shares the pending one');
      await new Promise((r) => setTimeout(r, 50));
      await dev.close();
      const closeMs = Date.now() - t0;
      assert.is(await waiting, false);
      assert.ok(closeMs < 2000, `close took ${closeMs} ms`);
      const { slots } = sharedSlots(2, 1536, 0);
      const sizes = Uint32Array.of(20, 20);
      assert.is(dev.read(slots, sizes), 0);
      assert.is(dev.write(slots, sizes, Uint32Array.of(0, 1), 2), 0);
      assert.is(await dev.wait(1000), false);
      await dev.close();
      assert.equal(dev.stats(), { rxPackets: 0, txPackets: 0, rxErrors: 0, txErrors: 0 });
    });
  });

  test('an idle wait() returns false after its timeout; a deleted interface is reported and idles without spinning', async () => {
    await withTun({ offload: true }, async (dev, ns) => {
      let t0 = Date.now();
      assert.is(await dev.wait(150), false);
      assert.ok(Date.now() - t0 >= 140, 'slept its timeout');
      assert.is(dev.failure, undefined);
      ip('-n', ns, 'link', 'del', dev.name);
      // The kernel answers poll with EPOLLERR once the device is gone.
      assert.is(await dev.wait(1000), false);
      assert.match(dev.failure ?? '', /deleted or detached|EBADFD/);
      t0 = Date.now();
      assert.is(await dev.wait(200), false);
      assert.ok(Date.now() - t0 >= 190, 'a failed device sleeps out its wait');
      const { slots } = sharedSlots(1, TUN_OFFLOAD_SLOT_SIZE, 0);
      assert.is(dev.read(slots, new Uint32Array(1)), 0);
    });
  });
}

test.run();
