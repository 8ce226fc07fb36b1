// Health checks end to end: `wasmvs gateway --keepalived FILE` in a director namespace in
// front of three real servers (host/testbed/), real checkers against real servers, real
// client traffic through the VIPs; addresses only in 198.18.0.0/15.
//
//   VIP 198.18.100.10:80  rr, rs1 HTTP_GET, rs2 TCP_CHECK, rs3 HTTP_GET; sorry server rs3:8080
//   VIP 198.18.100.11:80  rr, rs1 MISC_CHECK (a flag file), rs3 MISC_CHECK + inhibit_on_failure
//
// Small delay_loop and connect_timeout keep it fast: a failure is seen within
// (retry+1) x (delay_before_retry + connect_timeout) + delay_loop = 2 x 1.5 + 1 = 4 s.
// Needs root; without it the test is skipped with a message, and under CI=true that skip is
// a failure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clientGet, programArgv, serverNames, startProgram, startRealServers, type RealServer } from '../host/testbed/servers.js';
import { startGateway, type TestbedGateway } from '../host/testbed/gateway.js';
import { isRoot, Testbed, TESTBED_VIP, TESTBED_VIP2, type NsProcess } from '../host/testbed/topology.js';
import { IN_CI } from './support/tools.js';

const ROOT = isRoot();
const BOUND_MS = 2 * (500 + 1000) + 1000;
/** Scheduling noise on two busy cores: the gateway's timers, a process exit being noticed. */
const SLACK_MS = 2500;

let tb: Testbed;
let servers: RealServer[];
let gw: TestbedGateway;
let sorry: NsProcess;
let flags: string;

const config = (flagDir: string): string => `! wasmvs end-to-end health checks
global_defs {
  router_id wasmvs-e2e
}
virtual_server ${TESTBED_VIP} 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  sorry_server 198.18.1.4 8080
  real_server 198.18.1.2 80 {
    HTTP_GET {
      url {
        path /
        status_code 200
        regex "^rs1 "
      }
      connect_timeout 1
      retry 1
      delay_before_retry 0.5
    }
  }
  real_server 198.18.1.3 80 {
    TCP_CHECK {
      connect_timeout 1
      retry 1
      delay_before_retry 0.5
    }
  }
  real_server 198.18.1.4 80 {
    HTTP_GET {
      url { path / }
      connect_timeout 1
      retry 1
      delay_before_retry 0.5
    }
  }
}
virtual_server ${TESTBED_VIP2} 80 {
  delay_loop 1
  lb_algo rr
  protocol TCP
  real_server 198.18.1.2 80 {
    MISC_CHECK {
      misc_path "/bin/sh -c 'test ! -e ${flagDir}/rs1-down'"
      misc_timeout 2
    }
  }
  real_server 198.18.1.4 80 {
    inhibit_on_failure
    MISC_CHECK {
      misc_path "/bin/sh -c 'test ! -e ${flagDir}/rs3-down'"
      misc_timeout 2
    }
  }
}
`;

/** Resolves once the gateway's log has `count` lines matching `re`; returns the wait in ms. */
async function logged(re: RegExp, count = 1, timeoutMs = BOUND_MS + SLACK_MS + 5000): Promise<number> {
  const t0 = Date.now();
  while (gw.process.stderr.text().split('\n').filter((l) => re.test(l)).length < count) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`no ${count} x ${re} in the gateway's log within ${timeoutMs} ms:\n${gw.process.stderr.text().split('\n').slice(-40).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}


async function restartHttp(i: number): Promise<void> {
  servers[i].http.set(80, await startProgram(tb, servers[i].node, 'rs-http', 80));
}

if (!ROOT) {
  test('health end-to-end tests need root', () => {
    if (IN_CI) assert.unreachable('CI=true runs as root: the health end-to-end tests must not be skipped');
    console.log('  skipped: the health end-to-end tests need root (network namespaces, TUN)');
  });
} else {
  // uvu reports nothing when a hook throws: say why here, then fail every test.
  let setupError: unknown;
  test.before.each(() => { if (setupError) throw setupError; });
  test.before(async () => {
    try {
      await setup();
    } catch (err) {
      console.error('health e2e setup failed:', err);
      setupError = err;
    }
  });
  const setup = async (): Promise<void> => {
    tb = await Testbed.create({ servers: 3 });
    servers = await startRealServers(tb, { httpPorts: [80], udpPorts: [] });
    sorry = tb.spawn(tb.servers[2].ns, programArgv('rs-http', ['--name', 'sorry', '--port', '8080']));
    await sorry.waitForLine(/^ready \d+$/, 15_000);
    flags = mkdtempSync(join(tmpdir(), 'wasmvs-flags-'));
    gw = await startGateway(tb, { keepalived: config(flags), args: ['--tun', 'wvshc0'] });
    // Every server's first check (bootstrap 1 s + warmup up to delay_loop) has run.
    await new Promise((r) => setTimeout(r, 2500));
  };
  test.after(async () => {
    try {
      if (gw) assert.is(await gw.stop(), 0);
    } finally {
      await sorry?.stop();
      await tb?.destroy();
      if (flags) rmSync(flags, { recursive: true, force: true });
    }
  });

  test('HTTP_GET and TCP_CHECK: a stopped server leaves within the bound, the others serve every request; it returns when it starts again', async () => {
    const before = await clientGet(tb, `http://${TESTBED_VIP}/`, 30);
    assert.is(before.ok, 30);
    assert.equal(serverNames(before.servers), { rs1: 10, rs2: 10, rs3: 10 });
    await servers[0].http.get(80)?.stop();
    const waited = await logged(/Removing service \[198\.18\.1\.2\]:tcp:80 from VS \[198\.18\.100\.10\]:tcp:80/);
    assert.ok(waited <= BOUND_MS + SLACK_MS, `left after ${waited} ms, bound ${BOUND_MS} ms`);
    const without = await clientGet(tb, `http://${TESTBED_VIP}/`, 30);
    assert.is(without.ok, 30, without.errors.join('; '));
    assert.equal(serverNames(without.servers), { rs2: 15, rs3: 15 });
    await restartHttp(0);
    await logged(/Adding service \[198\.18\.1\.2\]:tcp:80 to VS \[198\.18\.100\.10\]:tcp:80/);
    const back = await clientGet(tb, `http://${TESTBED_VIP}/`, 30);
    assert.is(back.ok, 30);
    assert.equal(serverNames(back.servers), { rs1: 10, rs2: 10, rs3: 10 });
  });

  test('quorum lost when every server is down: the sorry server answers; it leaves when they return', async () => {
    for (const rs of servers) await rs.http.get(80)?.stop();
    await logged(/Lost quorum 1-0=1 > 0 for VS \[198\.18\.100\.10\]:tcp:80/);
    assert.match(gw.process.stderr.text(), /Adding sorry server \[198\.18\.1\.4\]:tcp:8080 to VS \[198\.18\.100\.10\]:tcp:80/);
    const r = await clientGet(tb, `http://${TESTBED_VIP}/`, 10);
    assert.is(r.ok, 10);
    assert.equal(serverNames(r.servers), { sorry: 10 });
    for (let i = 0; i < 3; i++) await restartHttp(i);
    await logged(/Gained quorum/);
    await logged(/Adding service \[198\.18\.1\.\d\]:tcp:80 to VS \[198\.18\.100\.10\]:tcp:80/, 3 + 1);
    const back = await clientGet(tb, `http://${TESTBED_VIP}/`, 30);
    assert.is(back.ok, 30);
    assert.ok(!('sorry' in serverNames(back.servers)), JSON.stringify(back.servers));
  });

  test('MISC_CHECK moves a server out and in; with inhibit_on_failure an open keep-alive connection lives on at weight 0', async () => {
    // rs1 out by its script: every new connection goes to rs3.
    writeFileSync(join(flags, 'rs1-down'), '');
    await logged(/Removing service \[198\.18\.1\.2\]:tcp:80 from VS \[198\.18\.100\.11\]:tcp:80/);
    const only3 = await clientGet(tb, `http://${TESTBED_VIP2}/`, 10);
    assert.equal(serverNames(only3.servers), { rs3: 10 });
    // A keep-alive connection to rs3: one request, a pause while rs3 is taken down, another.
    const script = `
      const net = require('node:net');
      const s = net.connect(80, '${TESTBED_VIP2}');
      let buf = '';
      const ask = () => s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n');
      s.on('connect', ask);
      s.on('data', (d) => {
        buf += d;
        const n = buf.split('HTTP/1.1 200').length - 1;
        if (n === 1 && !s.paused) { s.paused = true; console.log('first'); setTimeout(ask, 4000); }
        if (n === 2) { console.log('second ' + JSON.stringify(buf)); s.end(); }
      });
      s.on('error', (e) => { console.log('error ' + e.message); process.exit(1); });
      setTimeout(() => { console.log('timeout'); process.exit(1); }, 20000);
    `;
    const client = tb.spawn(tb.client.ns, [process.execPath, '-e', script]);
    await client.waitForLine(/^first$/, 10_000);
    writeFileSync(join(flags, 'rs3-down'), '');
    await logged(/Disabling service \[198\.18\.1\.4\]:tcp:80 of VS \[198\.18\.100\.11\]:tcp:80/);
    assert.match(gw.process.stderr.text(), /-e -t 198\.18\.100\.11:80 -r 198\.18\.1\.4:80 -m -w 0/);
    const line = (await client.waitForLine(/^(?:second|error|timeout).*$/, 15_000))[0];
    assert.match(line, /^second .*rs3 198\.18\.1\.4/, `the open connection was served by rs3 after it was disabled: ${line}`);
    await client.stop();
    // rs1 back in by its script; rs3 at weight 0 takes no new connection.
    rmSync(join(flags, 'rs1-down'));
    await logged(/Adding service \[198\.18\.1\.2\]:tcp:80 to VS \[198\.18\.100\.11\]:tcp:80/, 1);
    const only1 = await clientGet(tb, `http://${TESTBED_VIP2}/`, 10);
    assert.equal(serverNames(only1.servers), { rs1: 10 });
    rmSync(join(flags, 'rs3-down'));
    await logged(/Enabling service \[198\.18\.1\.4\]:tcp:80 of VS \[198\.18\.100\.11\]:tcp:80/);
    assert.ok(!existsSync(join(flags, 'rs3-down')));
  });

  test('SIGHUP re-reads keepalived.conf: kept servers keep their state, a removed one leaves, a bad file changes nothing', async () => {
    const next = config(flags).replace(/  real_server 198\.18\.1\.3 80 \{\n    TCP_CHECK \{\n[^}]*\}\n  \}\n/, '');
    assert.ok(next !== config(flags));
    await gw.reload(next);
    await logged(/-d -t 198\.18\.100\.10:80 -r 198\.18\.1\.3:80/);
    const r = await clientGet(tb, `http://${TESTBED_VIP}/`, 20);
    assert.is(r.ok, 20);
    assert.equal(serverNames(r.servers), { rs1: 10, rs3: 10 });
    await gw.reload(`${next}\nvirtual_server ${TESTBED_VIP} 81 {\n  protocol TCP\n  real_server 198.18.1.2 80 { wieght 2 }\n}\n`);
    await logged(/reload: refused, the running configuration is unchanged: .*keepalived\.conf:\d+: unknown keyword "wieght" in real_server/);
    const same = await clientGet(tb, `http://${TESTBED_VIP}/`, 20);
    assert.equal(serverNames(same.servers), { rs1: 10, rs3: 10 });
  });
}

test.run();
