// The health manager over a library Gateway (host/health/attach.ts) on a FakeDevice, and the
// CLI's --keepalived refusals: no root needed. Checks are scripted, time is a fake clock;
// what is asserted is the Gateway's engine table, its typed events and the log lines.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway } from '../host/gateway/gateway.js';
import { FakeDevice } from '../host/gateway/device.js';
import { emitRules } from '../host/ipvsadm/rules.js';
import { loadKeepalived } from '../host/health/config.js';
import { healthManagerFor } from '../host/health/attach.js';
import { HealthState } from '../host/health/state.js';
import type { DestHealthEvent, QuorumEvent } from '../host/health/manager.js';
import { connectControl } from '../host/control/client.js';
import { runCli } from './support/cli.js';
import { FakeClock } from './support/fake-clock.js';

let dir: string;
test.before.each(() => { dir = mkdtempSync(join(tmpdir(), 'wasmvs-kg-')); });
test.after.each(() => { rmSync(dir, { recursive: true, force: true }); });

const CONF = `virtual_server 198.18.100.10 80 {
  delay_loop 2
  lb_algo wrr
  protocol TCP
  warmup 0
  sorry_server 198.18.1.9 80
  real_server 198.18.1.2 80 { weight 2
    TCP_CHECK { }
  }
  real_server 198.18.1.3 8080 { inhibit_on_failure
    TCP_CHECK { }
  }
}
`;

test('over a Gateway: the engine table follows the checks, each change logged as an ipvsadm command; typed events', async () => {
  const file = join(dir, 'keepalived.conf');
  writeFileSync(file, CONF);
  const config = loadKeepalived(file);
  const gw = await Gateway.start({ rules: emitRules(new HealthState(config).desiredTable()), device: new FakeDevice() });
  const clock = new FakeClock();
  const down = new Set<string>();
  const lines: string[] = [];
  const events: Array<[string, DestHealthEvent | QuorumEvent]> = [];
  for (const e of ['dest-up', 'dest-down', 'quorum-lost', 'quorum-gained'] as const) gw.on(e, (p: DestHealthEvent | QuorumEvent) => events.push([e, p]));
  const log = (_e: string, m: string): void => { lines.push(m); };
  const health = healthManagerFor(gw, config, { info: log, warn: log, error: log, debug() {} }, {
    clock, random: () => 0, bootstrapDelay: 0,
    runCheck: async (c) => (c.type !== 'MISC_CHECK' && down.has(c.target.ip) ? { ok: false, detail: 'ECONNREFUSED' } : { ok: true, detail: 'connected' }),
  });
  const table = (): string[] => gw.engine.listServices()[0].dests.map((d) => `${d.daddr}:${d.dport}@${d.weight}`).sort();
  try {
    health.start();
    await clock.advance(0);
    await health.settled();
    assert.equal(table(), ['198.18.1.2:80@2', '198.18.1.3:8080@1']);
    down.add('198.18.1.3');
    await clock.advance(2000);
    await clock.advance(1000); // retry 1 after delay_before_retry 1 s
    await health.settled();
    assert.equal(table(), ['198.18.1.2:80@2', '198.18.1.3:8080@0']);
    assert.ok(lines.includes('-e -t 198.18.100.10:80 -r 198.18.1.3:8080 -m -w 0'), lines.join('\n'));
    assert.equal(events.map(([e]) => e), ['dest-down']);
    assert.equal(events[0][1], { virtualServer: '[198.18.100.10]:tcp:80', services: [{ protocol: 'tcp', vaddr: '198.18.100.10', vport: 80 }], daddr: '198.18.1.3', dport: 8080, weight: 1, inhibit: true });
    down.add('198.18.1.2');
    await clock.advance(2000);
    await clock.advance(1000);
    await health.settled();
    // .2 deleted, .3 inhibited at weight 0, the sorry server alone takes new connections.
    assert.equal(table(), ['198.18.1.3:8080@0', '198.18.1.9:80@1']);
    assert.equal(events.map(([e]) => e), ['dest-down', 'dest-down', 'quorum-lost']);
    const q = events[2][1] as QuorumEvent;
    assert.equal([q.weightSum, q.threshold, q.quorum, q.hysteresis, q.sorryServer], [0, 1, 1, 0, '198.18.1.9:80']);
    down.clear();
    await clock.advance(2000);
    await health.settled();
    assert.equal(table(), ['198.18.1.2:80@2', '198.18.1.3:8080@1']);
    assert.equal(events.map(([e]) => e).slice(3).sort(), ['dest-up', 'dest-up', 'quorum-gained']);
    const status = health.status()[0];
    assert.equal([status.quorumUp, status.weightSum, status.sorryServer], [true, 3, { address: '198.18.1.9:80', in: false }]);
    assert.equal(status.realServers[0].checkers[0].last?.detail, 'connected');
  } finally {
    await health.stop();
    await gw.stop();
  }
});

test('wasmvs gateway --keepalived: a bad file is refused with its file and line before anything else (exit 1); --rules with it is a usage error', () => {
  const bad = join(dir, 'bad.conf');
  writeFileSync(bad, 'virtual_server 198.18.100.10 80 {\n  protocol TCP\n  real_server 198.18.1.2 80 {\n    wieght 2\n  }\n}\n');
  const run = runCli;
  const r = run(['gateway', '--keepalived', bad, '--control', join(dir, 'sock')]);
  assert.is(r.status, 1);
  assert.is(r.stderr.trim(), `wasmvs: WASMVS_KEEPALIVED_CONFIG: ${bad}:4: unknown keyword "wieght" in real_server`);
  const both = run(['gateway', '--keepalived', bad, '--rules', bad]);
  assert.is(both.status, 2);
  assert.match(both.stderr, /--rules and --keepalived exclude each other/);
});

test('the control socket reports each server\'s health and last check result', async () => {
  const file = join(dir, 'keepalived.conf');
  writeFileSync(file, CONF);
  const config = loadKeepalived(file);
  const control = join(dir, 'wasmvs.sock');
  const gw = await Gateway.start({ rules: emitRules(new HealthState(config).desiredTable()), device: new FakeDevice(), control });
  const clock = new FakeClock();
  const health = healthManagerFor(gw, config, { info() {}, warn() {}, error() {}, debug() {} }, {
    clock, random: () => 0, bootstrapDelay: 0,
    runCheck: async (c) => (c.type !== 'MISC_CHECK' && c.target.ip === '198.18.1.3' ? { ok: false, detail: 'ECONNREFUSED' } : { ok: true, detail: 'connected' }),
  });
  const client = await connectControl({ path: control });
  try {
    assert.equal(await client.health(), health.status());
    health.start();
    await clock.advance(0);
    await health.settled();
    const status = await client.health();
    assert.equal(status, JSON.parse(JSON.stringify(health.status())));
    assert.match(JSON.stringify(status), /ECONNREFUSED/, 'the failing checker\'s last result is reported');
  } finally {
    client.close();
    await health.stop();
    await gw.stop();
  }
});

test.run();
