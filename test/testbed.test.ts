// The namespace testbed (host/testbed/) on its own, no gateway: the director as a plain router
// (ip_forward on), real programs on both ends, and cleanup on destroy(), SIGKILL (sweep) and
// SIGINT. Needs root; skips with a message otherwise, and under CI a skip fails.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Testbed, isRoot } from '../host/testbed/topology.js';
import { clientDownload, clientGet, clientUdp, clientUpload, startRealServers, programArgv } from '../host/testbed/servers.js';
import { Payload, payloadSha256 } from '../host/testbed/payload.js';
import { WasmvsError } from '../host/errors.js';
import { IN_CI, findOnPath } from './support/tools.js';

const ROOT = isRoot();
const ETHTOOL = findOnPath('ethtool');
const MB5 = 5 * 1000 * 1000;

function namespaces(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntil(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('payload stream is the same however it is chunked', () => {
  const whole = new Payload(7).fill(new Uint8Array(1001));
  const parts = new Payload(7);
  const pieces = [1, 3, 4, 5, 64, 1, 923].map((n) => parts.fill(new Uint8Array(n)));
  assert.equal(Buffer.concat(pieces).toString('hex'), Buffer.from(whole).toString('hex'));
  // xorshift32 from seed 1, first state 270369 = 0x00042021, little-endian.
  assert.equal(Buffer.from(new Payload(1).fill(new Uint8Array(4))).toString('hex'), '21200400');
  assert.is.not(payloadSha256(1000, 1), payloadSha256(1000, 2));
});

test('bad options are refused before anything is made', async () => {
  const before = ROOT ? namespaces() : [];
  for (const [opts, pattern] of [
    [{ servers: 0 }, /servers must be an integer from 1 to 3/],
    [{ servers: 4 }, /servers must be/],
    [{ servers: 2, narrow: { server: 3, mtu: 1400 } }, /narrow.server must name one of the 2/],
    [{ narrow: { server: 1, mtu: 1500 } }, /narrow.mtu must be an integer from 576 to 1499/],
  ] as const) {
    try {
      await Testbed.create(opts);
      assert.unreachable('created');
    } catch (e) {
      assert.instance(e, WasmvsError);
      assert.is((e as WasmvsError).code, 'WASMVS_BAD_OPTION');
      assert.match((e as Error).message, pattern);
    }
  }
  if (ROOT) assert.equal(namespaces(), before);
});

test('program argv runs the sources under tsx', () => {
  const argv = programArgv('client');
  assert.is(argv[0], process.execPath);
  assert.is(argv[1], '--import');
  assert.match(argv[2]!, /tsx/);
  assert.match(argv[3]!, /host\/testbed\/client\.ts$/);
});

if (!ROOT) {
  const why = 'testbed: not root, skipping the namespace tests (they create network namespaces and veth pairs)';
  if (IN_CI) {
    test('namespace tests need root under CI', () => assert.unreachable(why));
  } else {
    console.warn(why);
  }
} else {
  test('plain forwarding: HTTP, 5 MB each way with sha256, UDP echo; destroy leaves nothing', async () => {
    Testbed.sweep();
    const tb = await Testbed.create({ servers: 2, offloads: !ETHTOOL && !IN_CI ? true : false });
    try {
      assert.equal(tb.servers.map((s) => `${s.name} ${s.address}`), ['rs1 198.18.1.2', 'rs2 198.18.1.3']);
      for (const ns of tb.allNamespaces) assert.ok(namespaces().includes(ns), ns);
      // ip_forward is the gateway's to turn on: off until asked.
      assert.is((await tb.exec('director', ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim(), '0');
      if (!tb.options.offloads) {
        const k = await tb.exec('director', ['ethtool', '-k', 'rs1']);
        assert.match(k, /^tx-checksumming: off/m);
        assert.match(k, /^tcp-segmentation-offload: off/m);
        assert.match(k, /^generic-segmentation-offload: off/m);
      } else {
        console.warn('testbed: ethtool missing, checksums not forced to software (apt-get install -y ethtool)');
      }
      await tb.enableForwarding();
      assert.is((await tb.exec('director', ['sysctl', '-n', 'net.ipv4.ip_forward'])).trim(), '1');
      const servers = await startRealServers(tb);
      const pids = servers.flatMap((s) => [...s.http.values(), ...s.udp.values()].map((p) => p.pid));

      const get = await clientGet(tb, 'http://198.18.1.2/', 3);
      assert.equal(get.responses, ['rs1 198.18.1.2', 'rs1 198.18.1.2', 'rs1 198.18.1.2']);
      assert.is(get.connections, 3);
      const keep = await clientGet(tb, 'http://198.18.1.3/', 4, { keepalive: true, from: '198.18.0.3' });
      assert.equal(keep.servers, { 'rs2 198.18.1.3': 4 });
      assert.is(keep.connections, 1);

      const down = await clientDownload(tb, `http://198.18.1.3/bytes/${MB5}`);
      assert.is(down.status, 200);
      assert.is(down.bytes, MB5);
      assert.is(down.sha256, payloadSha256(MB5));
      assert.is(down.peer, '198.18.1.3:80');
      const up = await clientUpload(tb, 'http://198.18.1.2/upload', MB5);
      assert.is(up.received.bytes, MB5);
      assert.is(up.received.sha256, payloadSha256(MB5));
      assert.ok(up.match);

      const udp = await clientUdp(tb, '198.18.1.2', 5353, 5, { newPort: true });
      assert.equal({ received: udp.received, servers: udp.servers, peers: udp.peers }, { received: 5, servers: { rs1: 5 }, peers: { '198.18.1.2:5353': 5 } });

      await tb.destroy();
      for (const pid of pids) assert.not.ok(alive(pid), `server ${pid} still running`);
      assert.equal(namespaces().filter((n) => n.startsWith(`${tb.prefix}-`)), []);
    } finally {
      await tb.destroy();
    }
  });

  test('narrow link: routers emit frag-needed both ways and transfers complete with DF', async () => {
    const tb = await Testbed.create({ servers: 3, narrow: { server: 3, mtu: 1400 } });
    try {
      const rs3 = tb.servers[2]!;
      assert.is(rs3.address, '198.18.3.4');
      await tb.enableForwarding();
      await startRealServers(tb, { only: ['rs3'], udpPorts: [] });
      const icmpOut = async (ns: string): Promise<number> => {
        const lines = (await tb.exec(ns, ['cat', '/proc/net/snmp'])).split('\n').filter((l) => l.startsWith('Icmp:'));
        const names = lines[0]!.split(/\s+/);
        return Number(lines[1]!.split(/\s+/)[names.indexOf('OutDestUnreachs')]);
      };
      // Upload first: rs3 has learned nothing, advertises MSS 1460, so the client's 1500-byte
      // segments reach rta's narrow link.
      const up = await clientUpload(tb, `http://${rs3.address}/upload`, MB5);
      assert.ok(up.match);
      assert.ok((await icmpOut('rta')) > 0, 'rta sent no frag-needed');
      assert.match(await tb.exec('client', ['ip', 'route', 'get', rs3.address]), /mtu 1400/);
      // The client now advertises MSS 1360 to rs3 (from either address: the exception is per
      // destination), which would spare rs3 any ICMP: forget it first.
      await tb.flushPathMtu();
      assert.not.match(await tb.exec('client', ['ip', 'route', 'get', rs3.address]), /mtu 1400/);
      const down = await clientDownload(tb, `http://${rs3.address}/bytes/${MB5}`, { from: '198.18.0.3' });
      assert.is(down.sha256, payloadSha256(MB5));
      assert.ok((await icmpOut('rtb')) > 0, 'rtb sent no frag-needed');
      assert.match(await tb.exec('rs3', ['ip', 'route', 'get', '198.18.0.3']), /mtu 1400/);
      // The director's own links never saw a packet too big: it emitted nothing.
      assert.is(await icmpOut('director'), 0);
    } finally {
      await tb.destroy();
    }
  });

  const CHILD = fileURLToPath(new URL('./support/testbed-child.ts', import.meta.url));

  function startChild(): { child: ReturnType<typeof spawn>; ready: Promise<{ prefix: string; serverPid: number }> } {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CHILD], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const ready = new Promise<{ prefix: string; serverPid: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child not ready: ${err}`)), 20000);
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /ready (\S+) (\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve({ prefix: m[1]!, serverPid: Number(m[2]) });
        }
      });
      child.once('exit', (code, signal) => reject(new Error(`child exited ${code ?? signal}: ${err}`)));
    });
    return { child, ready };
  }

  test('a SIGKILLed run leaves namespaces that sweep() removes, with what ran in them', async () => {
    const { child, ready } = startChild();
    try {
      const { prefix, serverPid } = await ready;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      const left = namespaces().filter((n) => n.startsWith(`${prefix}-`));
      assert.is(left.length, 3, `left: ${left.join(' ')}`);
      assert.ok(alive(serverPid), 'the orphaned server should still run before the sweep');
      const removed = Testbed.sweep();
      assert.equal(removed.sort(), left.sort());
      assert.equal(namespaces().filter((n) => n.startsWith(`${prefix}-`)), []);
      await waitUntil('orphaned server to die', () => !alive(serverPid));
      assert.equal(Testbed.sweep(), []);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      Testbed.sweep();
    }
  });

  test('sweep() leaves namespaces of live processes and foreign names alone', async () => {
    const foreign = `wvs${process.pid}x-not-ours`;
    const liveOne = `wvs1-0-client`; // pid 1 is alive
    execFileSync('ip', ['netns', 'add', foreign]);
    execFileSync('ip', ['netns', 'add', liveOne]);
    try {
      assert.equal(Testbed.sweep(), []);
      assert.ok(namespaces().includes(foreign));
      assert.ok(namespaces().includes(liveOne));
    } finally {
      execFileSync('ip', ['netns', 'delete', foreign]);
      execFileSync('ip', ['netns', 'delete', liveOne]);
    }
  });

  test('SIGINT to a run leaves nothing, and the run dies of SIGINT', async () => {
    const { child, ready } = startChild();
    try {
      const { prefix, serverPid } = await ready;
      const exited = new Promise<[number | null, string | null]>((r) => child.once('exit', (c, s) => r([c, s])));
      child.kill('SIGINT');
      assert.equal(await exited, [null, 'SIGINT']);
      assert.equal(namespaces().filter((n) => n.startsWith(`${prefix}-`)), []);
      // SIGKILLed by the child's handler; init reaps it a moment later.
      await waitUntil('server killed by the SIGINT cleanup', () => !alive(serverPid));
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      Testbed.sweep();
    }
  });
}

test.run();
