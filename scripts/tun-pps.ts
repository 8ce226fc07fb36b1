// By-hand measurement of TunDevice read() and write() rates for small packets (not a test):
//   node --import tsx scripts/tun-pps.ts [--offload] [--seconds 3] [--runs 3] [--size 64]
// As root. Creates namespace wvspps-<pid> and a TUN in it (198.18.0.1/24, txqueuelen 10000),
// deletes both on exit. read: a UDP flood from the namespace (a child node process, sending as
// fast as dgram allows) toward 198.18.0.2, counted by read() batches on this thread. write:
// batches of `size`-byte UDP packets to 198.18.1.1, which the namespace drops at routing
// (forwarding is off), so the cost measured is the write(2) call. The flooder (node dgram) is
// slower than read(), so "drain" also times reading a queue the flood filled while nobody read
// (txqueuelen 200000): that is read()'s own rate. Prints medians of the runs.
import { execFileSync, spawn } from 'node:child_process';
import { TunDevice } from '../host/gateway/tun.js';
import { writeVnetHeaderNone } from '../host/gateway/vnet.js';
import { udpPacket } from '../test/support/packets.js';

/** A `size`-byte UDP datagram 198.18.0.2 -> 198.18.1.1:9 with no checksum, the namespace drops it at routing. */
function probePacket(size: number): Uint8Array {
  return udpPacket({ src: '198.18.0.2', dst: '198.18.1.1', sport: 12345, dport: 9, payload: new Uint8Array(size - 28), zeroChecksum: true });
}

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const offload = args.includes('--offload');
const seconds = flag('--seconds', 3);
const runs = flag('--runs', 3);
const size = flag('--size', 64);
const ns = `wvspps-${process.pid}`;
const name = `wvspps${process.pid % 10000}`;

function ip(...a: string[]): void {
  execFileSync('ip', a, { stdio: 'inherit' });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<void> {
  ip('netns', 'add', ns);
  const dev = TunDevice.open({ name, offload });
  try {
    ip('link', 'set', name, 'netns', ns);
    ip('-n', ns, 'addr', 'add', '198.18.0.1/24', 'dev', name);
    ip('-n', ns, 'link', 'set', name, 'txqueuelen', '200000', 'up');
    const slotSize = offload ? 65_600 : 2048;
    const memory = new Uint8Array(new SharedArrayBuffer(dev.batchSize * slotSize));
    const slots = Array.from({ length: dev.batchSize }, (_, i) => memory.subarray(i * slotSize, (i + 1) * slotSize));
    const sizes = new Uint32Array(dev.batchSize);

    const readRates: number[] = [];
    for (let r = 0; r < runs; r++) {
      const payload = size - 28;
      const flood = `const s=require('node:dgram').createSocket('udp4');const b=Buffer.alloc(${payload});let n=0;
        const end=Date.now()+${(seconds + 1) * 1000};
        function go(){for(let i=0;i<256;i++){s.send(b,9,'198.18.0.2');n++}if(Date.now()<end)setImmediate(go);else s.close(()=>{console.log(n)})}go();`;
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', flood], { stdio: ['ignore', 'pipe', 'inherit'] });
      let sent = '';
      child.stdout.on('data', (d: Buffer) => { sent += d.toString(); });
      await new Promise((res) => setTimeout(res, 500));
      const before = dev.stats().rxPackets;
      const t0 = process.hrtime.bigint();
      const end = Date.now() + seconds * 1000;
      while (Date.now() < end) {
        if (dev.read(slots, sizes) === 0) await dev.wait(50);
      }
      const dt = Number(process.hrtime.bigint() - t0) / 1e9;
      const got = dev.stats().rxPackets - before;
      readRates.push(got / dt);
      await new Promise((res) => child.once('exit', res));
      while (dev.read(slots, sizes) > 0) { /* drain */ }
      console.log(`read run ${r + 1}: ${(got / dt / 1e3).toFixed(0)} kpps (flooder sent ${sent.trim()} in ${seconds + 1} s)`);
    }

    const hdr = dev.headerLen;
    const pkt = probePacket(size);
    for (const s of slots) { if (hdr) writeVnetHeaderNone(s); s.set(pkt, hdr); }
    sizes.fill(hdr + size);
    const indices = Uint32Array.from({ length: dev.batchSize }, (_, i) => i);
    const writeRates: number[] = [];
    for (let r = 0; r < runs; r++) {
      const before = dev.stats().txPackets;
      const t0 = process.hrtime.bigint();
      const end = Date.now() + seconds * 1000;
      while (Date.now() < end) dev.write(slots, sizes, indices, indices.length);
      const dt = Number(process.hrtime.bigint() - t0) / 1e9;
      const done = dev.stats().txPackets - before;
      writeRates.push(done / dt);
      console.log(`write run ${r + 1}: ${(done / dt / 1e3).toFixed(0)} kpps (txErrors ${dev.stats().txErrors})`);
    }
    const drainRates: number[] = [];
    for (let r = 0; r < runs; r++) {
      const flood = `const s=require('node:dgram').createSocket('udp4');const b=Buffer.alloc(${size - 28});let n=0;
        function go(){for(let i=0;i<256;i++){s.send(b,9,'198.18.0.2');n++}if(n<150000)setImmediate(go);else s.close(()=>{console.log(n)})}go();`;
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', flood], { stdio: ['ignore', 'ignore', 'inherit'] });
      await new Promise((res) => child.once('exit', res));
      const before = dev.stats().rxPackets;
      const t0 = process.hrtime.bigint();
      while (dev.read(slots, sizes) > 0) { /* drain */ }
      const dt = Number(process.hrtime.bigint() - t0) / 1e9;
      const got = dev.stats().rxPackets - before;
      drainRates.push(got / dt);
      console.log(`drain run ${r + 1}: ${got} queued packets read at ${(got / dt / 1e3).toFixed(0)} kpps`);
    }
    console.log(`offload ${offload}, ${size}-byte packets, batch ${dev.batchSize}: read ${(median(readRates) / 1e3).toFixed(0)} kpps (flood-bound), drain ${(median(drainRates) / 1e3).toFixed(0)} kpps, write ${(median(writeRates) / 1e3).toFixed(0)} kpps (medians of ${runs})`);
  } finally {
    await dev.close();
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

await main();
