// The Gateway as a library, inside whatever network namespace it was started in (the test runs
// it with `ip netns exec NS node --import tsx gateway-library-child.ts TUN STATE_DIR`): starts it
// over TUN with one service, then adds a VIP and a real server through gateway.engine (no
// reload, no control socket), and prints one JSON line: the gateway's routes and the rules for
// the new real server, before the change and 300 ms after it (the periodic sync runs every
// 5 s), then stops the gateway.
import { execFileSync } from 'node:child_process';
import { Gateway } from '../../host/gateway/gateway.js';

const [tun, stateDir] = process.argv.slice(2) as [string, string];
const ipj = (...a: string[]): Array<Record<string, unknown>> => {
  const text = execFileSync('ip', ['-j', ...a], { encoding: 'utf8' }).trim();
  return text ? JSON.parse(text) as Array<Record<string, unknown>> : [];
};
const seen = () => ({
  vipRoutes: ipj('-4', 'route', 'show', 'proto', '87').map((r) => r.dst),
  rsRules: ipj('-4', 'rule', 'show').filter((r) => r.src === '198.18.1.3').length,
});
const gw = await Gateway.start({ rules: '-A -t 198.18.100.10:80 -s rr\n-a -t 198.18.100.10:80 -r 198.18.1.2:80 -m -w 1\n', tun, stateDir });
try {
  const before = seen();
  gw.engine.addService({ protocol: 'tcp', vaddr: '198.18.100.11', vport: 80, scheduler: 'rr' });
  gw.engine.addDest({ protocol: 'tcp', vaddr: '198.18.100.11', vport: 80 }, { daddr: '198.18.1.3', dport: 80, weight: 1 });
  await new Promise((r) => setTimeout(r, 300));
  const after = seen();
  gw.engine.delService({ protocol: 'tcp', vaddr: '198.18.100.11', vport: 80 });
  await new Promise((r) => setTimeout(r, 300));
  process.stdout.write(`${JSON.stringify({ before, after, deleted: seen() })}\n`);
} finally {
  await gw.stop();
}
