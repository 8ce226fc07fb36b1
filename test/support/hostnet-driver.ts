// Runs HostNetwork steps inside whatever network namespace it was started in (the test starts
// it with `ip netns exec NS node --import tsx hostnet-driver.ts JSON`). One JSON line per log
// line and per step result on stdout, so the test sees exactly what the module did.
//   JSON: { options: HostNetworkOptions (without log), steps: Step[] }
//   Step: { op: 'setup' } | { op: 'sync', vips, rips } | { op: 'checkVips', vips }
//       | { op: 'teardown' } | { op: 'teardownSync' } | { op: 'recover' }
//       | { op: 'inject', src, dst, count }   (UDP packets written into the TUN, as the gateway would)
//       | { op: 'wait' }                      (prints {"waiting":true} and never returns)
import koffi from 'koffi';
import { HostNetwork, type HostNetworkOptions } from '../../host/gateway/hostnet.js';
import { udpPacket } from './packets.js';

type Step = { op: string; vips?: string[]; rips?: string[]; src?: string; dst?: string; count?: number };
const { options, steps } = JSON.parse(process.argv[2]) as { options: Omit<HostNetworkOptions, 'log'>; steps: Step[] };
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
const log = (line: string) => out({ log: line });

/** Writes packets into an existing TUN through a second attach (IFF_TUN | IFF_NO_PI). */
function inject(tun: string, src: string, dst: string, count: number): void {
  const libc = koffi.load('libc.so.6');
  const open = libc.func('int open(const char *path, int flags)');
  const ioctl = libc.func('int ioctl(int fd, unsigned long req, ...)');
  const write = libc.func('intptr_t write(int fd, const uint8_t *buf, size_t len)');
  const close = libc.func('int close(int fd)');
  const fd = open('/dev/net/tun', 2 /* O_RDWR */) as number;
  if (fd < 0) throw new Error('open /dev/net/tun failed');
  const ifr = Buffer.alloc(40);
  ifr.write(tun, 0, 'latin1');
  ifr.writeUInt16LE(0x0001 | 0x1000, 16); // IFF_TUN | IFF_NO_PI
  if ((ioctl(fd, 0x400454ca, 'uint8_t *', ifr) as number) < 0) throw new Error(`TUNSETIFF ${tun} failed`);
  const pkt = udpPacket({ src, dst, sport: 4000, dport: 5000, payload: 'wasmvs hostnet test' });
  for (let i = 0; i < count; i++) {
    if ((write(fd, pkt, pkt.length) as number) !== pkt.length) throw new Error('write to TUN failed');
  }
  close(fd);
}

const net = new HostNetwork({ ...options, log });
for (const [i, step] of steps.entries()) {
  try {
    switch (step.op) {
      case 'setup': await net.setup(); break;
      case 'sync': await net.sync({ vips: step.vips ?? [], rips: step.rips ?? [] }); break;
      case 'checkVips': await net.checkVips(step.vips ?? []); break;
      case 'teardown': await net.teardown(); break;
      case 'teardownSync': net.teardownSync(); break;
      case 'recover': await HostNetwork.recover({ tun: options.tun, stateDir: options.stateDir, log }); break;
      case 'inject': inject(options.tun, step.src!, step.dst!, step.count ?? 1); break;
      case 'wait':
        out({ step: i, op: step.op, waiting: true });
        setInterval(() => {}, 1 << 30);
        await new Promise(() => {});
        break;
      default: throw new Error(`unknown step ${step.op}`);
    }
    out({ step: i, op: step.op, ok: true });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    out({ step: i, op: step.op, error: { code: e.code ?? 'ERROR', message: e.message ?? String(err) } });
  }
}
