// `wasmvs adm` against a real gateway carrying real traffic: `wasmvs gateway` in the testbed's
// director namespace (host/testbed/), a client and two real servers, addresses only in
// 198.18.0.0/15. adm runs as an operator runs it, the real CLI with --control. While a client
// sends, `-L -n` and `-L -n -c` show its live connections; a weight set with `-e` changes
// where new connections go.
//
// Needs root; without it the test is skipped with a message, and under CI=true that skip is a
// failure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { cliArgv, startGateway, type TestbedGateway } from '../host/testbed/gateway.js';
import { clientGet, serverNames, startRealServers } from '../host/testbed/servers.js';
import { isRoot, Testbed, TESTBED_VIP } from '../host/testbed/topology.js';
import { printf } from './support/printf.js';
import { IN_CI } from './support/tools.js';

const VIP = TESTBED_VIP;
const RULES = `-A -t ${VIP}:80 -s wrr
-a -t ${VIP}:80 -r 198.18.1.2:80 -m -w 1
-a -t ${VIP}:80 -r 198.18.1.3:80 -m -w 2
`;

interface Run { status: number; out: string; err: string }

/** The real `wasmvs adm --control SOCKET ARGS...`, from the host's namespace. */
function adm(gw: TestbedGateway, args: string): Promise<Run> {
  const [cmd, ...argv] = cliArgv(['adm', '--control', gw.control, ...args.split(' ')]);
  return new Promise((resolve) => {
    execFile(cmd, argv, { timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ status: error ? Number((error as { code?: number }).code ?? 1) : 0, out: stdout, err: stderr });
    });
  });
}


if (!isRoot()) {
  test('adm end-to-end test needs root', () => {
    if (IN_CI) assert.unreachable('CI=true runs as root: the adm end-to-end test must not be skipped');
    console.log('  skipped: the adm end-to-end test needs root (network namespaces, TUN)');
  });
} else {
  let tb: Testbed | undefined;
  let gw: TestbedGateway | undefined;
  // uvu does not fail the tests of a suite whose before() threw: keep the error, fail each.
  let setupError: unknown;
  test.before(async () => {
    try {
      tb = await Testbed.create({ servers: 2 });
      await startRealServers(tb, { httpPorts: [80], udpPorts: [] });
      gw = await startGateway(tb, { rules: RULES });
    } catch (err) {
      setupError = err;
    }
  });
  test.before.each(() => {
    if (setupError) throw setupError;
  });
  test.after(async () => {
    try {
      if (gw) assert.is(await gw.stop(), 0, 'the gateway stopped cleanly');
    } finally {
      await tb?.destroy();
    }
  });

  test('-L -n and -L -n -c show the live connections while traffic flows', async () => {
    const run = clientGet(tb!, `http://${VIP}/`, 6000, { keepalive: true, concurrency: 2 });
    let done = false;
    void run.finally(() => { done = true; });
    // A kept-alive connection of the client, ESTABLISHED, in print_conn's columns.
    const established = new RegExp(`^TCP \\d\\d:\\d\\d  ESTABLISHED 198\\.18\\.0\\.2:\\d+ +${VIP.replace(/\./g, '\\.')}:80 +198\\.18\\.1\\.[23]:80$`, 'm');
    let conns: Run | undefined;
    let list: Run | undefined;
    for (let tries = 0; tries < 20 && !(conns && established.test(conns.out)); tries++) {
      [conns, list] = await Promise.all([adm(gw!, '-L -n -c'), adm(gw!, '-L -n')]);
    }
    const sent = done;
    const result = await run;
    assert.is(result.ok, 6000, result.errors.join('\n'));
    assert.ok(conns && list, 'adm ran');
    assert.is(conns!.status, 0, conns!.err);
    assert.match(conns!.out, /^IPVS connection entries\npro expire state {7}source {13}virtual {12}destination\n/);
    assert.match(conns!.out, established, `no ESTABLISHED connection of the client listed (client finished first: ${sent}):\n${conns!.out}`);
    assert.is(list!.status, 0, list!.err);
    const lines = list!.out.split('\n');
    assert.match(lines[0], /^IP Virtual Server version \S+ \(size=\d+\)$/);
    assert.is(lines[3], printf('%-4s %s %s', 'TCP', `${VIP}:80`, 'wrr'));
    // While it ran, its connections counted on their real servers (ActiveConn + InActConn).
    const counts = lines.slice(4, 6).map((l) => /^ {2}-> (\S+) +Masq +(\d+) +(\d+) +(\d+) *$/.exec(l));
    assert.ok(counts.every((m) => m !== null), list!.out);
    assert.ok(counts.reduce((n, m) => n + Number(m![3]) + Number(m![4]), 0) > 0, `connections counted:\n${list!.out}`);
  });

  test('a weight set with -e takes effect: 0 quiesces a server, 1:3 splits new connections', async () => {
    let r = await adm(gw!, `-e -t ${VIP}:80 -r 198.18.1.3:80 -m -w 0`);
    assert.equal([r.status, r.err], [0, '']);
    const quiet = await clientGet(tb!, `http://${VIP}/`, 30, { concurrency: 3 });
    assert.is(quiet.ok, 30, quiet.errors.join('\n'));
    assert.equal(serverNames(quiet.servers), { rs1: 30 });
    r = await adm(gw!, `-e -t ${VIP}:80 -r 198.18.1.3:80 -m -w 3`);
    assert.is(r.status, 0, r.err);
    const list = await adm(gw!, `-L -n -t ${VIP}:80`);
    assert.match(list.out, new RegExp(`^ {2}-> 198\\.18\\.1\\.3:80 +Masq +3 `, 'm'));
    const split = await clientGet(tb!, `http://${VIP}/`, 80, { concurrency: 4 });
    assert.is(split.ok, 80, split.errors.join('\n'));
    const n = serverNames(split.servers);
    // wrr 1:3: 20 and 60 over whole cycles; the cycle -e left mid-way moves at most a few.
    assert.ok(Math.abs((n.rs1 ?? 0) - 20) <= 3 && (n.rs1 ?? 0) + (n.rs2 ?? 0) === 80, JSON.stringify(n));
    // And the change is in the saved configuration.
    const saved = await adm(gw!, '-S -n');
    assert.match(saved.out, new RegExp(`-a -t ${VIP.replace(/\./g, '\\.')}:80 -r 198\\.18\\.1\\.3:80 -m -w 3\n`));
  });
}

test.run();
