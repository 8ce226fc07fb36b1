// The gateway carrying real traffic: `wasmvs gateway` in a director namespace between a client
// and three real servers (host/testbed/), real programs on both ends, addresses only in
// 198.18.0.0/15. The director's links have their offloads off (ethtool), so every receiver
// verifies every checksum the gateway's rewrites produce.
//
//   client 198.18.0.2/.3 -- director (wvs0: VIP 198.18.100.10, .11) -- rs1 198.18.1.2, rs2 .1.3
//                                                                   \- rta =1400= rtb -- rs3 198.18.3.4
//
// Needs root; without it every test is skipped with a message, and under CI=true that skip
// is a failure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectControl } from '../host/control/client.js';
import { clientDownload, clientGet, clientUdp, clientUpload, peerAddresses, serverNames, startRealServers } from '../host/testbed/servers.js';
import { cliArgv, startGateway } from '../host/testbed/gateway.js';
import { isRoot, Testbed, TestbedCommandError, TESTBED_VIP, TESTBED_VIP2 } from '../host/testbed/topology.js';
import { payloadSha256 } from '../host/testbed/payload.js';
import { IN_CI } from './support/tools.js';

const ROOT = isRoot();


const VIP = TESTBED_VIP;
const MB20 = 20 * 1024 * 1024;

const RULES = `-A -t ${VIP}:80 -s wrr
-a -t ${VIP}:80 -r 198.18.1.2:80 -m -w 1
-a -t ${VIP}:80 -r 198.18.1.3:80 -m -w 2
-A -u ${VIP}:5353 -s rr
-a -u ${VIP}:5353 -r 198.18.1.2:5353 -m -w 1
-a -u ${VIP}:5353 -r 198.18.1.3:5353 -m -w 1
-A -t ${TESTBED_VIP2}:80 -s rr
-a -t ${TESTBED_VIP2}:80 -r 198.18.3.4:80 -m -w 1
`;

let tb: Testbed;

if (!ROOT) {
  test('gateway end-to-end tests need root', () => {
    if (IN_CI) assert.unreachable('CI=true runs as root: the end-to-end tests must not be skipped');
    console.log('  skipped: the gateway end-to-end tests need root (network namespaces, TUN)');
  });
} else {
  // uvu does not fail a test whose before() hook threw: the error is kept and rethrown by
  // each test instead (test.before.each), so a broken topology fails every test loudly.
  let setupError: unknown;
  test.before(async () => {
    try {
      tb = await Testbed.create({ servers: 3, narrow: { server: 3, mtu: 1400 }, offloads: false });
      await startRealServers(tb, { httpPorts: [80], udpPorts: [5353] });
    } catch (err) {
      setupError = err;
    }
  });
  test.before.each(() => {
    if (setupError) throw setupError;
  });
  test.after(async () => {
    await tb?.destroy();
  });

  // Each offload mode with the writes on the writer thread (the default; through io_uring by
  // default, write(2) with --no-io-uring) and on the gateway's own thread
  // (--no-writer-thread), and the kernel's receive of what it writes in a NAPI thread (the
  // default without offload; --napi-thread with it) or inside write() (--no-napi-thread); the
  // ready line says which ran.
  const WRITES_ON_THREAD = /ready: .*writes on a second thread/;
  const THROUGH_URING = /ready: .*writes on a second thread through io_uring/;
  const NAPI_THREAD = /ready: .*kernel NAPI thread/;
  const MODES: Array<[offload: boolean, writer: boolean, napi: boolean, uring: boolean]> = [
    [true, true, false, true], [false, true, true, false], [true, false, true, false], [false, false, false, false],
  ];
  for (const [offload, writer, napi, uring] of MODES) {
    const mode = `${offload ? 'offload' : 'no-offload'}, ${writer ? `writer thread${uring ? ' (io_uring)' : ''}` : 'no writer thread'}, ${napi ? 'NAPI thread' : 'no NAPI thread'}`;
    const args = [
      ...(writer ? [] : ['--no-writer-thread']), ...(writer && !uring ? ['--no-io-uring'] : []),
      ...(napi === !offload ? [] : [napi ? '--napi-thread' : '--no-napi-thread']),
    ];
    const checkThread = (gw: { process: { stderr: { text(): string } } }) => {
      const log = gw.process.stderr.text();
      assert.is(WRITES_ON_THREAD.test(log), writer, `writes ${writer ? '' : 'not '}on a second thread:\n${log}`);
      assert.is(THROUGH_URING.test(log), uring, `writes ${uring ? '' : 'not '}through io_uring:\n${log}`);
      assert.not.match(log, /writer:/, 'the writer thread started and never failed');
      assert.is(NAPI_THREAD.test(log), napi, `${napi ? '' : 'no '}NAPI thread:\n${log}`);
      assert.not.match(log, /napi:/, 'no NAPI warning');
    };
    test(`${mode}: 300 short HTTP connections split 1:2 by wrr, replies from the VIP; keep-alive`, async () => {
      const gw = await startGateway(tb, { rules: RULES, offload, args });
      try {
        checkThread(gw);
        const short = await clientGet(tb, `http://${VIP}/`, 300, { concurrency: 8 });
        assert.is(short.ok, 300, short.errors.join('\n'));
        assert.equal(serverNames(short.servers), { rs1: 100, rs2: 200 });
        assert.equal(peerAddresses(short.peers), [VIP], 'every reply came from the VIP');
        const ka = await clientGet(tb, `http://${VIP}/`, 60, { keepalive: true });
        assert.is(ka.ok, 60);
        assert.ok(ka.connections <= 2, `keep-alive reused its connection (${ka.connections})`);
        assert.equal(peerAddresses(ka.peers), [VIP]);
      } finally {
        const code = await gw.stop();
        assert.is(code, 0, `gateway exit status ${code}:\n${gw.process.stderr.text()}`);
      }
    });

    test(`${mode}: 20 MB down and up arrive intact; UDP request/response`, async () => {
      const gw = await startGateway(tb, { rules: RULES, offload, args });
      try {
        const down = await clientDownload(tb, `http://${VIP}/bytes/${MB20}`);
        assert.is(down.bytes, MB20);
        assert.is(down.sha256, payloadSha256(MB20));
        assert.is(down.peer, `${VIP}:80`);
        const up = await clientUpload(tb, `http://${VIP}/upload`, MB20);
        assert.ok(up.match, `upload sha256 ${up.sha256} vs ${up.received.sha256}`);
        const udp = await clientUdp(tb, VIP, 5353, 50, { newPort: true });
        assert.is(udp.received, 50);
        assert.equal(peerAddresses(udp.peers), [VIP]);
        assert.equal(Object.keys(serverNames(udp.servers)).sort(), ['rs1', 'rs2'], 'rr over both');
        checkThread(gw);
      } finally {
        await gw.stop();
      }
    });
  }

  test('a burst of new connections larger than the ring', async () => {
    const gw = await startGateway(tb, { rules: RULES });
    try {
      // 1000 datagrams from 1000 sockets sent at once: 1000 new connections queue in the TUN
      // and are read 64 (offload) at a time into a ring of 128 slots.
      const out = await tb.exec(tb.client.ns, [process.execPath, '-e', `
        const dgram = require('dgram');
        let got = 0, bound = 0;
        const socks = [];
        for (let i = 0; i < 1000; i++) {
          const s = dgram.createSocket('udp4');
          s.on('message', () => { got++; s.close(); });
          s.bind(0, () => { if (++bound === 1000) for (const t of socks) t.send('burst', 5353, '${VIP}'); });
          socks.push(s);
        }
        setTimeout(() => { process.stdout.write(String(got)); process.exit(0); }, 4000);`], { timeoutMs: 20_000 });
      // The gateway must schedule and forward every datagram of the burst (asserted on its
      // counters below); the echoes coming back also have to fit the real servers' socket
      // buffers (net.core.rmem_default, ~200 KB for ~500 datagrams each), which may drop some.
      assert.ok(Number(out.trim().split('\n').pop()) >= 900, `answered ${JSON.stringify(out)} of 1000`);
      const client = await connectControl({ path: gw.control });
      try {
        const c = await client.counters();
        assert.ok(c.connsCreated >= 995, `connections ${c.connsCreated}`);
        assert.is(c.drop, 0, 'nothing dropped by the gateway');
      } finally {
        client.close();
      }
    } finally {
      await gw.stop();
    }
  });

  test('ICMP echo to the VIP is answered; an unserved port is refused at once (RST, port unreachable)', async () => {
    const gw = await startGateway(tb, { rules: RULES });
    try {
      await tb.exec(tb.client.ns, ['ping', '-c', '2', '-i', '0.2', '-W', '2', VIP]);
      const t0 = Date.now();
      const refused = await tb.exec(tb.client.ns, [process.execPath, '-e', `
        const s = require('net').connect(81, '${VIP}');
        s.on('error', (e) => { console.log(e.code); process.exit(0); });
        s.on('connect', () => { console.log('connected'); process.exit(1); });
        setTimeout(() => { console.log('timeout'); process.exit(1); }, 3000);`]);
      assert.is(refused.trim(), 'ECONNREFUSED');
      assert.ok(Date.now() - t0 < 2500, 'refused at once, not after a timeout');
      const unreach = await tb.exec(tb.client.ns, [process.execPath, '-e', `
        const s = require('dgram').createSocket('udp4');
        s.connect(9999, '${VIP}', () => { s.send('x'); setTimeout(() => s.send('y'), 100); });
        s.on('error', (e) => { console.log(e.code); process.exit(0); });
        setTimeout(() => { console.log('timeout'); process.exit(1); }, 3000);`]);
      assert.is(unreach.trim(), 'ECONNREFUSED');
    } finally {
      await gw.stop();
    }
  });

  test('path MTU discovery through the director: a real server behind a 1400-byte link', async () => {
    const gw = await startGateway(tb, { rules: RULES });
    try {
      await tb.flushPathMtu();
      // The client sends full-size segments; a router on rs3's path answers "fragmentation
      // needed" to the client quoting client -> RIP; the gateway translates it (quote and
      // source to the VIP) and the client's TCP lowers its MSS.
      const up = await clientUpload(tb, `http://${TESTBED_VIP2}/upload`, 4 * 1024 * 1024, { timeoutMs: 15_000 });
      assert.ok(up.match, 'upload through the narrow link completed intact');
      const down = await clientDownload(tb, `http://${TESTBED_VIP2}/bytes/${4 * 1024 * 1024}`, { timeoutMs: 15_000 });
      assert.is(down.sha256, payloadSha256(4 * 1024 * 1024));
      const route = execFileSync('ip', ['netns', 'exec', tb.client.ns, 'ip', 'route', 'get', TESTBED_VIP2], { encoding: 'utf8' });
      assert.match(route, /mtu 1400/, `the client learned the path MTU: ${route}`);
    } finally {
      await gw.stop();
    }
  });

  test('SIGHUP: a weight change and a new real server take effect while a long transfer completes', async () => {
    const gw = await startGateway(tb, { rules: RULES });
    try {
      const long = clientDownload(tb, `http://${VIP}/bytes/${MB20}`, { timeoutMs: 30_000 });
      await new Promise((r) => setTimeout(r, 300));
      // rs2 quiesced (weight 0), rs3 (behind the routers) added to port 80.
      const next = RULES.replace('198.18.1.3:80 -m -w 2', '198.18.1.3:80 -m -w 0')
        + `-a -t ${VIP}:80 -r 198.18.3.4:80 -m -w 1\n`;
      await gw.reload(next);
      const after = await clientGet(tb, `http://${VIP}/`, 40, { concurrency: 4 });
      assert.is(after.ok, 40);
      const names = serverNames(after.servers);
      assert.is(names.rs2, undefined, 'weight 0: no new connections to rs2');
      assert.ok((names.rs3 ?? 0) > 0 && (names.rs1 ?? 0) > 0, JSON.stringify(after.servers));
      const done = await long;
      assert.is(done.sha256, payloadSha256(MB20), 'the transfer started before the reload completed intact');
      // A bad file changes nothing and is logged with the line at fault.
      await gw.reload('-A -t 198.18.100.10:80 -s nosuch\n').catch(() => {});
      assert.match(gw.process.stderr.text(), /reload: refused.*line 1/, gw.process.stderr.text());
      const again = await clientGet(tb, `http://${VIP}/`, 10);
      assert.is(again.ok, 10);
    } finally {
      await gw.stop();
    }
  });

  /** Everything a gateway changes in the director's namespace, as comparable text. */
  const directorIp = (...args: string[]) => execFileSync('ip', ['-n', tb.director.ns, ...args], { encoding: 'utf8' });
  const directorSnapshot = () => [directorIp('link', 'show'), directorIp('-4', 'addr', 'show'), directorIp('-4', 'route', 'show', 'table', 'all'), directorIp('-4', 'rule', 'show'), directorIp('neigh', 'show', 'proxy'),
    ...['net/ipv4/ip_forward', 'net/ipv4/conf/all/rp_filter'].map((k) => execFileSync('ip', ['netns', 'exec', tb.director.ns, 'cat', `/proc/sys/${k}`], { encoding: 'utf8' }))].join('\n---\n');

  test('the TUN deleted under a running gateway (mid-transfer): it says so, stops by itself with status 1 and leaves the host as it was', async () => {
    const before = directorSnapshot();
    const gw = await startGateway(tb, { rules: RULES });
    const long = clientDownload(tb, `http://${VIP}/bytes/${MB20}`, { timeoutMs: 20_000 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    directorIp('link', 'del', 'wvs0');
    const exit = await Promise.race([gw.process.exited.then((e) => e.code), new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
    assert.is(exit, 1, `exit status\n${gw.process.stderr.text()}`);
    assert.match(gw.process.stderr.text(), /wvs0 failed/, gw.process.stderr.text());
    await long;
    assert.is(directorSnapshot(), before, 'routes, rules and sysctls undone though the device went first');
    const next = await startGateway(tb, { rules: RULES });
    try {
      const ok = await clientGet(tb, `http://${VIP}/`, 6);
      assert.is(ok.ok, 6, 'a new gateway starts and forwards');
    } finally {
      await next.stop();
    }
  });

  test('stop removes the TUN, routes and rules; after kill -9 the next start cleans up and works', async () => {
    const ip = directorIp;
    const snapshot = directorSnapshot;
    const before = snapshot();
    const gw = await startGateway(tb, { rules: RULES, args: ['--arp-iface', 'client0'] });
    assert.match(snapshot(), /wvs0/);
    assert.match(ip('neigh', 'show', 'proxy'), new RegExp(`${VIP.replaceAll('.', '\\.')} dev client0`), 'proxy ARP for the VIP');
    assert.is(await gw.stop(), 0);
    assert.is(snapshot(), before, 'nothing of a stopped gateway remains');
    const killed = await startGateway(tb, { rules: RULES });
    killed.process.kill('SIGKILL');
    await killed.process.exited;
    assert.match(snapshot(), /proto 87/, 'a SIGKILLed gateway leaves its routes');
    const next = await startGateway(tb, { rules: RULES });
    const ok = await clientGet(tb, `http://${VIP}/`, 6);
    assert.is(ok.ok, 6);
    await next.stop();
    await killed.stop();
    assert.is(snapshot(), before, 'the next start and stop left the host as clean as before');
  });

  test('refusals: not root (no CAP_NET_ADMIN), no /dev/net/tun; each one line, exit 1, nothing left', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmvs-refuse-'));
    const rules = join(dir, 'lvs.rules');
    writeFileSync(rules, RULES);
    chmodSync(dir, 0o755);
    chmodSync(rules, 0o644);
    const before = execFileSync('ip', ['-n', tb.director.ns, '-4', 'route', 'show'], { encoding: 'utf8' });
    const refused = async (argv: string[]): Promise<TestbedCommandError> => {
      try {
        await tb.exec(tb.director.ns, argv);
      } catch (err) {
        if (err instanceof TestbedCommandError) return err;
        throw err;
      }
      return assert.unreachable('the gateway started') as never;
    };
    try {
      const gateway = cliArgv(['gateway', '--rules', rules, '--control', join(dir, 'wasmvs.sock')]);
      const notRoot = await refused(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', ...gateway]);
      assert.is(notRoot.exitCode, 1);
      assert.match(notRoot.stderr.trim(), /^wasmvs: WASMVS_NOT_ROOT: .*root/);
      // A private mount namespace in which /dev/net is an empty tmpfs: no TUN device node.
      const noTun = await refused(['unshare', '--mount', '--', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$@"', 'sh', ...gateway]);
      assert.is(noTun.exitCode, 1);
      assert.match(noTun.stderr, /wasmvs: WASMVS_TUN: .*\/dev\/net\/tun/);
      assert.is(execFileSync('ip', ['-n', tb.director.ns, '-4', 'route', 'show'], { encoding: 'utf8' }), before, 'nothing left behind');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('refusals: rules invalid, a local VIP, the TUN name in use, a live control socket', async () => {
    const bad = startGateway(tb, { rules: '-A -t 198.18.100.10:80 -s wrr\n-a -t 198.18.100.10:80 -r 198.18.1.2 -x\n', readyTimeoutMs: 8000 });
    await bad.then(() => assert.unreachable('bad rules started'), (e: Error) => assert.match(e.message, /WASMVS_RULES_SYNTAX/));
    await startGateway(tb, { rules: `-A -t ${tb.director.clientAddress}:80 -s rr\n`, readyTimeoutMs: 8000 })
      .then(() => assert.unreachable('local VIP started'), (e: Error) => assert.match(e.message, /WASMVS_VIP_LOCAL/));
    const first = await startGateway(tb, { rules: RULES });
    try {
      await startGateway(tb, { rules: RULES, readyTimeoutMs: 8000 })
        .then(() => assert.unreachable('second gateway on wvs0 started'), (e: Error) => assert.match(e.message, /WASMVS_TUN.*in use/));
      await startGateway(tb, { rules: RULES, args: ['--tun', 'wvs1', '--control', first.control], readyTimeoutMs: 8000 })
        .then(() => assert.unreachable('second gateway on a live control socket started'), (e: Error) => assert.match(e.message, /WASMVS_CONTROL_IN_USE/));
      const ok = await clientGet(tb, `http://${VIP}/`, 3);
      assert.is(ok.ok, 3, 'the first gateway kept forwarding through all of it');
    } finally {
      await first.stop();
    }
  });
}

test.run();
