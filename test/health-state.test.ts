// keepalived's state machine (host/health/state.ts) through the manager (manager.ts) with a
// fake clock and scripted check results: retry counts and delays, alpha, inhibit_on_failure,
// quorum and hysteresis edges, the sorry server, misc_dynamic weights, checks that never
// finish, and reload keeping state. No sockets: every check's outcome is set by the test.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKeepalived, type CheckerConfig, type KeepalivedConfig } from '../host/health/config.js';
import { HealthManager, type HealthEvents } from '../host/health/manager.js';
import type { CheckResult } from '../host/health/state.js';
import type { RuleSet } from '../host/ipvsadm/rules.js';
import { FakeClock } from './support/fake-clock.js';

let dir: string;
test.before.each(() => { dir = mkdtempSync(join(tmpdir(), 'wasmvs-ks-')); });
test.after.each(() => { rmSync(dir, { recursive: true, force: true }); });

function config(text: string): KeepalivedConfig {
  const file = join(dir, `k${Math.random().toString(36).slice(2)}.conf`);
  writeFileSync(file, text);
  return loadKeepalived(file);
}

/** What a scripted check returns: true/false, an exit status (MISC_CHECK), or 'hang'. */
type Outcome = boolean | number | 'hang';

/** The server a checker checks: TCP target address, or MISC_CHECK's first argument. */
const serverOf = (c: CheckerConfig): string => (c.type === 'MISC_CHECK' ? c.command[1] : c.target.ip);

class Harness {
  readonly clock = new FakeClock();
  readonly outcome = new Map<string, Outcome>();
  readonly calls: Array<{ at: number; server: string }> = [];
  readonly events: Array<[keyof HealthEvents, string]> = [];
  readonly scripts: string[] = [];
  readonly logs: string[] = [];
  table: RuleSet = { services: [] };
  readonly manager: HealthManager;

  constructor(cfg: KeepalivedConfig) {
    const log = (_e: string, m: string): void => { this.logs.push(m); };
    this.manager = new HealthManager(cfg, {
      clock: this.clock,
      random: () => 0,
      bootstrapDelay: 0,
      logger: { info: log, warn: log, error: log, debug() {} },
      apply: async (t) => { this.table = t; },
      emit: (event, payload) => { this.events.push([event, 'daddr' in payload ? payload.daddr : payload.virtualServer]); },
      runScript: (argv) => { this.scripts.push(argv.join(' ')); },
      runCheck: (c, signal) => {
        const server = serverOf(c);
        this.calls.push({ at: this.clock.now(), server });
        const o = this.outcome.get(server) ?? true;
        if (o === 'hang') return new Promise<CheckResult>((resolve) => signal.addEventListener('abort', () => resolve({ ok: false, detail: 'aborted' })));
        if (typeof o === 'number') {
          const dynamic = c.type === 'MISC_CHECK' && c.dynamic;
          return Promise.resolve({ ok: o === 0 || (dynamic && o >= 2 && o <= 255), detail: `exited with status ${o}`, exitCode: o });
        }
        return Promise.resolve({ ok: o, detail: o ? 'connected' : 'ECONNREFUSED' });
      },
    });
    this.table = this.manager.initialTable();
  }

  /** "daddr:dport@weight" of service `index`'s dests. */
  dests(index = 0): string[] {
    return this.table.services[index].dests.map((d) => `${d.daddr}:${d.dport}@${d.weight}`).sort();
  }

  async at(ms: number): Promise<void> {
    await this.clock.advance(ms - this.clock.now());
    await this.manager.settled();
  }
}

const VS = (body: string, servers: string): string => `virtual_server 198.18.100.10 80 {\n protocol TCP\n lb_algo wrr\n${body}\n${servers}\n}\n`;
const RS = (ip: string, extra = '', check = 'TCP_CHECK { }'): string => ` real_server ${ip} 80 {\n${extra}\n  ${check}\n }\n`;

test('retry: an up server goes down after retry+1 failures, retries after delay_before_retry; one success brings it back at delay_loop', async () => {
  const h = new Harness(config(VS(' delay_loop 10\n retry 2\n delay_before_retry 1\n warmup 0', RS('198.18.1.2') + RS('198.18.1.3'))));
  h.manager.start();
  await h.at(0);
  assert.equal(h.dests(), ['198.18.1.2:80@1', '198.18.1.3:80@1']);
  h.outcome.set('198.18.1.2', false);
  await h.at(10_000); // regular check fails: retry 1 at 11 s
  await h.at(11_000); // retry 1 fails: retry 2 at 12 s
  assert.equal(h.dests(), ['198.18.1.2:80@1', '198.18.1.3:80@1'], 'still in after 2 of 3 failures');
  await h.at(12_000); // third consecutive failure
  assert.equal(h.dests(), ['198.18.1.3:80@1']);
  assert.equal(h.calls.filter((c) => c.server === '198.18.1.2').map((c) => c.at), [0, 10_000, 11_000, 12_000]);
  assert.ok(h.logs.some((l) => /TCP_CHECK on service \[198\.18\.1\.2\]:tcp:80 failed after 2 retries/.test(l)), h.logs.join('\n'));
  assert.ok(h.logs.includes('Removing service [198.18.1.2]:tcp:80 from VS [198.18.100.10]:tcp:80'));
  assert.equal(h.events, [['dest-down', '198.18.1.2']]);
  // Down: checked every delay_loop; the first success puts it back.
  await h.at(22_000);
  h.outcome.set('198.18.1.2', true);
  await h.at(32_000);
  assert.equal(h.dests(), ['198.18.1.2:80@1', '198.18.1.3:80@1']);
  assert.equal(h.events.at(-1), ['dest-up', '198.18.1.2']);
  assert.ok(h.logs.includes('Adding service [198.18.1.2]:tcp:80 to VS [198.18.100.10]:tcp:80'));
  await h.manager.stop();
});

test('at start the first failure is enough (retry_it = retry); a success between failures resets the count', async () => {
  const h = new Harness(config(VS(' delay_loop 10\n retry 1\n delay_before_retry 1\n warmup 0', RS('198.18.1.2') + RS('198.18.1.3'))));
  h.outcome.set('198.18.1.2', false);
  h.manager.start();
  await h.at(0);
  assert.equal(h.dests(), ['198.18.1.3:80@1'], 'one failure at start takes it out');
  h.outcome.set('198.18.1.3', false);
  await h.at(10_000); // .3 fails once (retry at 11 s)
  h.outcome.set('198.18.1.3', true);
  await h.at(11_000); // success resets
  h.outcome.set('198.18.1.3', false);
  await h.at(21_000); // fails once again: not down yet
  assert.ok(h.dests().includes('198.18.1.3:80@1'));
  await h.at(22_000);
  assert.ok(!h.dests().includes('198.18.1.3:80@1'));
  await h.manager.stop();
});

test('alpha: servers start out of the pool and enter on their first success; inhibit_on_failure keeps a failed one at weight 0', async () => {
  const h = new Harness(config(VS(' delay_loop 5\n warmup 0\n alpha', RS('198.18.1.2', '  weight 2') + RS('198.18.1.3', '  inhibit_on_failure'))));
  assert.equal(h.dests(), ['198.18.1.3:80@0'], 'alpha: nothing live, the inhibited one at weight 0');
  h.outcome.set('198.18.1.3', false);
  h.manager.start();
  await h.at(0);
  assert.equal(h.dests(), ['198.18.1.2:80@2', '198.18.1.3:80@0']);
  h.outcome.set('198.18.1.3', true);
  await h.at(5_000);
  assert.equal(h.dests(), ['198.18.1.2:80@2', '198.18.1.3:80@1']);
  h.outcome.set('198.18.1.3', false);
  await h.at(10_000);
  await h.at(11_000); // retry 1 after delay_before_retry 1 s
  assert.equal(h.dests(), ['198.18.1.2:80@2', '198.18.1.3:80@0'], 'inhibited: weight 0, not deleted');
  assert.ok(h.logs.includes('Disabling service [198.18.1.3]:tcp:80 of VS [198.18.100.10]:tcp:80'), h.logs.join('\n'));
  // alpha logs the first failure as down (do_rs_notifies on the first run).
  assert.ok(h.events.some(([e, d]) => e === 'dest-down' && d === '198.18.1.3'));
  await h.manager.stop();
});

test('quorum and hysteresis: lost below quorum - hysteresis, regained only at quorum + hysteresis; scripts run', async () => {
  const h = new Harness(config(VS(' delay_loop 5\n warmup 0\n retry 1\n delay_before_retry 0\n quorum 3\n hysteresis 1\n quorum_up /bin/up.sh\n quorum_down "/bin/down.sh now"',
    RS('198.18.1.2', '  weight 2') + RS('198.18.1.3') + RS('198.18.1.4'))));
  h.manager.start();
  await h.at(0);
  const fail = async (ip: string, ok: boolean, t: number): Promise<void> => { h.outcome.set(ip, ok); await h.at(t); await h.at(t); };
  await fail('198.18.1.2', false, 5_000); // live 2 >= 3-1: still up
  assert.ok(!h.events.some(([e]) => e === 'quorum-lost'));
  await fail('198.18.1.3', false, 10_000); // live 1 < 2: lost
  assert.equal(h.events.filter(([e]) => e.startsWith('quorum')), [['quorum-lost', '[198.18.100.10]:tcp:80']]);
  assert.ok(h.logs.includes('Lost quorum 3-1=2 > 1 for VS [198.18.100.10]:tcp:80'), h.logs.join('\n'));
  assert.equal(h.scripts, ['/bin/down.sh now']);
  await fail('198.18.1.3', true, 15_000); // live 2 < 3+1: still down
  assert.ok(!h.events.some(([e]) => e === 'quorum-gained'));
  await fail('198.18.1.2', true, 20_000); // live 4 >= 4: gained
  assert.equal(h.events.filter(([e]) => e.startsWith('quorum')).map(([e]) => e), ['quorum-lost', 'quorum-gained']);
  assert.ok(h.logs.includes('Gained quorum 3+1=4 <= 4 for VS [198.18.100.10]:tcp:80'), h.logs.join('\n'));
  assert.equal(h.scripts, ['/bin/down.sh now', '/bin/up.sh']);
  await h.manager.stop();
});

test('sorry server: in alone when the quorum is lost, server changes leave the table alone meanwhile, out when regained', async () => {
  const h = new Harness(config(VS(' delay_loop 5\n warmup 0\n retry 1\n delay_before_retry 0\n quorum 2\n sorry_server 198.18.1.9 8080', RS('198.18.1.2') + RS('198.18.1.3') + RS('198.18.1.4'))));
  h.manager.start();
  await h.at(0);
  h.outcome.set('198.18.1.2', false);
  h.outcome.set('198.18.1.3', false);
  await h.at(5_000);
  await h.at(5_000);
  assert.equal(h.dests(), ['198.18.1.9:8080@1'], 'the sorry server replaces the live servers');
  assert.ok(h.logs.includes('Adding sorry server [198.18.1.9]:tcp:8080 to VS [198.18.100.10]:tcp:80'));
  h.outcome.set('198.18.1.4', false);
  await h.at(10_000);
  await h.at(10_000);
  assert.equal(h.dests(), ['198.18.1.9:8080@1'], 'a change while the sorry server is in does not touch the table');
  h.outcome.set('198.18.1.2', true);
  h.outcome.set('198.18.1.3', true);
  await h.at(15_000);
  assert.equal(h.dests(), ['198.18.1.2:80@1', '198.18.1.3:80@1']);
  assert.ok(h.logs.includes('Removing sorry server [198.18.1.9]:tcp:8080 from VS [198.18.100.10]:tcp:80'));
  await h.manager.stop();
});

test('sorry_server_inhibit: at weight 0 while out; a quorum down at start puts the sorry server in at once', async () => {
  const h = new Harness(config(VS(' delay_loop 5\n warmup 0\n alpha\n sorry_server 198.18.1.9\n sorry_server_inhibit', RS('198.18.1.2'))));
  assert.equal(h.dests(), ['198.18.1.9:80@1'], 'alpha: no live weight at start, quorum down, sorry in');
  h.manager.start();
  await h.at(0);
  assert.equal(h.dests(), ['198.18.1.2:80@1', '198.18.1.9:80@0']);
  await h.manager.stop();
});

test('MISC_CHECK misc_dynamic: 0 is the configured weight, 2..255 weight status-2, 1 down; the quorum follows the weight', async () => {
  const h = new Harness(config(VS(' delay_loop 5\n warmup 0', RS('198.18.1.2', '  weight 4', 'MISC_CHECK {\n misc_path "/check 198.18.1.2"\n misc_dynamic\n }') + RS('198.18.1.3'))));
  h.manager.start();
  await h.at(0);
  assert.equal(h.dests(), ['198.18.1.2:80@4', '198.18.1.3:80@1']);
  h.outcome.set('198.18.1.2', 12);
  await h.at(5_000);
  assert.equal(h.dests(), ['198.18.1.2:80@10', '198.18.1.3:80@1']);
  assert.ok(h.logs.includes('Changing weight from 4 to 10 for active service [198.18.1.2]:tcp:80 of VS [198.18.100.10]:tcp:80'), h.logs.join('\n'));
  h.outcome.set('198.18.1.2', 2);
  await h.at(10_000);
  assert.equal(h.dests(), ['198.18.1.2:80@0', '198.18.1.3:80@1']);
  h.outcome.set('198.18.1.2', 1); // MISC_CHECK retry defaults to 0: down at once
  await h.at(15_000);
  assert.equal(h.dests(), ['198.18.1.3:80@1']);
  h.outcome.set('198.18.1.2', 0);
  await h.at(20_000);
  assert.equal(h.dests(), ['198.18.1.2:80@4', '198.18.1.3:80@1'], 'exit 0: back at the configured weight');
  await h.manager.stop();
});

test('a check that never finishes is aborted (delay_loop + connect_timeout) and counts as a failure', async () => {
  const h = new Harness(config(VS(' delay_loop 5\n connect_timeout 2\n warmup 0', RS('198.18.1.2') + RS('198.18.1.3'))));
  h.outcome.set('198.18.1.2', 'hang');
  h.manager.start();
  await h.at(6_999);
  assert.equal(h.dests(), ['198.18.1.2:80@1', '198.18.1.3:80@1']);
  await h.at(7_000);
  assert.equal(h.dests(), ['198.18.1.3:80@1']);
  await h.manager.stop();
});

test('at most maxConcurrent checks at once; the rest wait their turn', async () => {
  const cfg = config(VS(' delay_loop 5\n warmup 0', [2, 3, 4, 5, 6].map((n) => RS(`198.18.1.${n}`)).join('')));
  const clock = new FakeClock();
  let running = 0;
  let peak = 0;
  const m = new HealthManager(cfg, {
    clock, random: () => 0, bootstrapDelay: 0, maxConcurrent: 2, apply: async () => {},
    runCheck: () => { running++; peak = Math.max(peak, running); return new Promise((r) => clock.setTimeout(() => { running--; r({ ok: true, detail: 'ok' }); }, 100)); },
  });
  m.start();
  await clock.advance(1000);
  assert.is(peak, 2);
  assert.ok(m.status()[0].realServers.every((r) => r.checkers[0].hasRun));
  await m.stop();
});

test('reload keeps state: a failed server stays out until its check passes, a weight change applies, removed and new servers', async () => {
  const before = VS(' delay_loop 5\n warmup 0\n quorum 1', RS('198.18.1.2') + RS('198.18.1.3') + RS('198.18.1.4'));
  const h = new Harness(config(before));
  h.outcome.set('198.18.1.3', false);
  h.manager.start();
  await h.at(0);
  assert.equal(h.dests(), ['198.18.1.2:80@1', '198.18.1.4:80@1']);
  const after = VS(' delay_loop 5\n warmup 0\n quorum 1', RS('198.18.1.2', '  weight 5') + RS('198.18.1.3') + RS('198.18.1.5', '  alpha'));
  await h.manager.reload(config(after));
  assert.equal(h.dests(), ['198.18.1.2:80@5'], 'kept .2 reweighted, failed .3 still out, .4 gone, new alpha .5 not in yet');
  const st = h.manager.status()[0].realServers.find((r) => r.daddr === '198.18.1.3');
  assert.equal([st?.alive, st?.checkers[0].up, st?.checkers[0].last?.detail], [false, false, 'ECONNREFUSED']);
  h.outcome.set('198.18.1.3', true);
  await h.at(5_000); // kept schedules go on; the new checker's first run is at once after reload
  assert.equal(h.dests(), ['198.18.1.2:80@5', '198.18.1.3:80@1', '198.18.1.5:80@1']);
  await h.manager.stop();
});

test.run();
