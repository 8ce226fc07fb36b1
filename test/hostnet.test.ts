// host/gateway/hostnet.ts against the real kernel, inside network namespaces this file creates
// (and deletes, also on failure). The module acts on its own process's namespace, so each
// scenario runs test/support/hostnet-driver.ts under `ip netns exec`; assertions read
// `ip -j` dumps and /proc/sys inside the namespace. Addresses only in 198.18.0.0/15.
// Needs root; skipped with a message otherwise (a failure under CI).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HostNetwork, HOSTNET_PROTO, HOSTNET_TABLE, HOSTNET_PRIORITY, TUN_RPF_ADDRESS } from '../host/gateway/hostnet.js';
import { WasmvsError } from '../host/errors.js';
import { IN_CI } from './support/tools.js';


const HERE = dirname(fileURLToPath(import.meta.url));
const DRIVER = join(HERE, 'support', 'hostnet-driver.ts');
const IS_ROOT = process.getuid?.() === 0;
const TUN = 'wvs9';

/** The journal a driver wrote: `<tun>@netns-<inode>.json` inside a test namespace. */
function journalFile(stateDir: string): string {
  const names = existsSync(stateDir) ? readdirSync(stateDir).filter((n) => n.startsWith(`${TUN}@netns-`) && n.endsWith('.json')) : [];
  assert.ok(names.length <= 1, `one journal per namespace: ${names.join(', ')}`);
  return join(stateDir, names[0] ?? `${TUN}.json`);
}
const journalExists = (stateDir: string): boolean => existsSync(journalFile(stateDir));
const P = String(HOSTNET_PROTO);

test('options are validated before anything is touched', () => {
  const bad: [object, RegExp][] = [
    [{ tun: 'a/b', mtu: 1500 }, /interface name/],
    [{ tun: 'x'.repeat(16), mtu: 1500 }, /interface name/],
    [{ tun: 'wvs0', mtu: 40 }, /MTU 40/],
    [{ tun: 'wvs0', mtu: 1500, txqueuelen: 0 }, /txqueuelen/],
    [{ tun: 'wvs0', mtu: 1500, arpIfaces: ['eth 0'] }, /--arp-iface/],
    [{ tun: 'wvs0', mtu: 1500, realServerIfaces: ['wvs0'] }, /own TUN/],
    [{ tun: 'wvs0', mtu: 1500, table: 254 }, /reserved/],
  ];
  for (const [o, re] of bad) {
    try {
      new HostNetwork(o as never);
      assert.unreachable(`accepted ${JSON.stringify(o)}`);
    } catch (err) {
      assert.instance(err, WasmvsError);
      assert.is((err as WasmvsError).code, 'WASMVS_BAD_OPTION');
      assert.match((err as Error).message, re);
    }
  }
});

if (!IS_ROOT) {
  if (IN_CI) test('hostnet namespace tests need root', () => assert.unreachable('not root under CI=true: the host-network tests cannot run'));
  else console.log('hostnet.test.ts: not root, skipping the namespace tests (they need CAP_NET_ADMIN)');
} else {
  let seq = 0;
  const made: string[] = [];

  function sh(args: string[], input?: string): string {
    return execFileSync(args[0], args.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  }
  function inNs(ns: string, ...args: string[]): string {
    return sh(['ip', 'netns', 'exec', ns, ...args]);
  }
  function ipj(ns: string, ...args: string[]): any[] {
    const text = sh(['ip', '-n', ns, '-j', ...args]).trim();
    return text ? JSON.parse(text) : [];
  }
  function sysctl(ns: string, path: string): string {
    return inNs(ns, 'cat', `/proc/sys/${path}`).trim();
  }
  function setSysctl(ns: string, key: string, value: string): void {
    inNs(ns, 'sysctl', '-qw', `${key}=${value}`);
  }

  /** A namespace with lo up, a persistent TUN and veth pairs (IPv6 off on the veths). */
  function makeNs(opts: { rpAll?: string; forward?: string; tunUp?: boolean } = {}): string {
    const ns = `wvsh${process.pid}n${seq++}`;
    sh(['ip', 'netns', 'add', ns]);
    made.push(ns);
    const ip = (...a: string[]) => sh(['ip', '-n', ns, ...a]);
    ip('link', 'set', 'lo', 'up');
    if (opts.rpAll) {
      // As RHEL: all=1 and default=1, so a new interface (our TUN) starts at 1 as well.
      setSysctl(ns, 'net.ipv4.conf.all.rp_filter', opts.rpAll);
      setSysctl(ns, 'net.ipv4.conf.default.rp_filter', opts.rpAll);
    }
    if (opts.forward) setSysctl(ns, 'net.ipv4.ip_forward', opts.forward);
    for (const [a, b, addr] of [['cl0', 'cl0p', '198.18.2.1/24'], ['rs0', 'rs0p', '198.18.1.1/24'], ['ar0', 'ar0p', '']]) {
      ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
      for (const d of [a, b]) setSysctl(ns, `net.ipv6.conf.${d}.disable_ipv6`, '1');
      if (addr) ip('addr', 'add', addr, 'dev', a);
      ip('link', 'set', a, 'up');
      ip('link', 'set', b, 'up');
    }
    ip('tuntap', 'add', 'dev', TUN, 'mode', 'tun');
    // The first up attaches the default qdisc (noop -> pfifo_fast), which no down undoes: the
    // kernel's doing, not a change of ours, so let it happen before the "before" snapshot.
    ip('link', 'set', TUN, 'up');
    ip('link', 'set', TUN, 'down');
    if (opts.tunUp) ip('link', 'set', TUN, 'up');
    return ns;
  }

  function deleteNs(ns: string): void {
    try {
      sh(['ip', 'netns', 'del', ns]);
    } catch {
      // already gone
    }
    made.splice(made.indexOf(ns), 1);
  }

  /** Everything the module could touch, as comparable text. */
  function snapshot(ns: string): Record<string, unknown> {
    const sysctls: Record<string, string> = {};
    for (const dev of ['all', 'default', 'lo', 'cl0', 'rs0', 'ar0', TUN]) {
      for (const leaf of ['rp_filter', 'forwarding']) sysctls[`${dev}.${leaf}`] = sysctl(ns, `net/ipv4/conf/${dev}/${leaf}`);
      sysctls[`${dev}.disable_ipv6`] = sysctl(ns, `net/ipv6/conf/${dev}/disable_ipv6`);
    }
    sysctls.ip_forward = sysctl(ns, 'net/ipv4/ip_forward');
    return {
      link: ipj(ns, 'link', 'show'),
      addr: ipj(ns, 'addr', 'show'),
      rule4: ipj(ns, '-4', 'rule', 'show'),
      route4: ipj(ns, '-4', 'route', 'show', 'table', 'all'),
      route6: ipj(ns, '-6', 'route', 'show', 'table', 'all'),
      neighProxy: ipj(ns, 'neigh', 'show', 'proxy'),
      sysctls,
    };
  }

  interface DriverLine { log?: string; step?: number; op?: string; ok?: boolean; waiting?: boolean; error?: { code: string; message: string } }

  function drive(ns: string, options: object, steps: object[]): DriverLine[] {
    const text = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', DRIVER, JSON.stringify({ options, steps })], { encoding: 'utf8' });
    return text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  }
  function results(lines: DriverLine[]): DriverLine[] {
    return lines.filter((l) => l.step !== undefined);
  }
  function expectOk(lines: DriverLine[]): void {
    for (const r of results(lines)) assert.ok(r.ok, `step ${r.step} ${r.op} failed: ${JSON.stringify(r.error)}`);
  }

  function ourRules(ns: string): string[] {
    return ipj(ns, '-4', 'rule', 'show').filter((r) => r.protocol === P).map((r) => 'nop' in r ? `${r.priority} nop` :
      `${r.priority} ${r.iif ? `iif ${r.iif}` : `from ${r.src}`}${r.ipproto ? ` ipproto ${r.ipproto}` : ''} ${r.goto !== undefined ? `goto ${r.goto}` : `lookup ${r.table}`}`);
  }
  function ourRoutes(ns: string): string[] {
    return ipj(ns, '-4', 'route', 'show', 'table', 'all', 'proto', P).map((r) => `${r.dst} dev ${r.dev} table ${r.table ?? 'main'}`).sort();
  }
  function proxies(ns: string): string[] {
    return ipj(ns, 'neigh', 'show', 'proxy').map((n) => `${n.dst} dev ${n.dev}`).sort();
  }
  /** Ip ForwDatagrams (/proc/net/snmp) and TcpExt IPReversePathFilter (/proc/net/netstat). */
  function counters(ns: string): { forwarded: number; rpfDrops: number } {
    const pick = (file: string, group: string, name: string) => {
      const lines = inNs(ns, 'cat', file).split('\n').filter((l) => l.startsWith(`${group}:`));
      const keys = lines[0].split(/\s+/);
      const vals = lines[1].split(/\s+/);
      return Number(vals[keys.indexOf(name)]);
    };
    return { forwarded: pick('/proc/net/snmp', 'Ip', 'ForwDatagrams'), rpfDrops: pick('/proc/net/netstat', 'TcpExt', 'IPReversePathFilter') };
  }

  const G = HOSTNET_PRIORITY;
  const T = String(HOSTNET_TABLE);

  test('setup and sync add exactly the documented routes, rules, proxy entries and sysctls; teardown restores the namespace exactly', () => {
    const ns = makeNs();
    const stateDir = mkdtempSync(join(tmpdir(), 'wvsh-'));
    try {
      const before = snapshot(ns);
      const options = { tun: TUN, mtu: 1400, txqueuelen: 7000, arpIfaces: ['ar0'], stateDir };
      const lines = drive(ns, options, [
        { op: 'setup' },
        { op: 'sync', vips: ['198.18.0.10', '198.18.0.11'], rips: ['198.18.1.10', '198.18.1.11'] },
        { op: 'wait' },
      ].slice(0, 2));
      expectOk(lines);
      // The journal is gone only after teardown; this driver exited without one, so it is left.
      assert.ok(journalExists(stateDir), 'journal written');
      const journal = JSON.parse(readFileSync(journalFile(stateDir), 'utf8'));
      assert.is(journal.tun, TUN);
      assert.equal(ourRules(ns), [
        `${G} iif ${TUN} goto ${G + 2}`,
        `${G} iif lo ipproto icmp goto ${G + 2}`,
        `${G + 1} from all ipproto icmp lookup ${T}`,
        `${G + 1} from 198.18.1.10 lookup ${T}`,
        `${G + 1} from 198.18.1.11 lookup ${T}`,
        `${G + 2} nop`,
      ]);
      assert.equal(ourRoutes(ns), [`198.18.0.10 dev ${TUN} table main`, `198.18.0.11 dev ${TUN} table main`, `default dev ${TUN} table ${T}`]);
      assert.equal(proxies(ns), ['198.18.0.10 dev ar0', '198.18.0.11 dev ar0']);
      const [link] = ipj(ns, 'link', 'show', 'dev', TUN);
      assert.is(link.mtu, 1400);
      assert.is(link.txqlen, 7000);
      assert.ok(link.flags.includes('UP'));
      assert.is(sysctl(ns, 'net/ipv4/ip_forward'), '1');
      assert.is(sysctl(ns, `net/ipv6/conf/${TUN}/disable_ipv6`), '1');
      assert.is(sysctl(ns, `net/ipv4/conf/${TUN}/rp_filter`), '0', 'rp_filter off everywhere: left alone');
      assert.equal(ipj(ns, '-4', 'addr', 'show', 'dev', TUN)[0]?.addr_info ?? [], [], 'no address needed with rp_filter off');
      // Every change was logged as one line, each ip change as a command.
      const logs = lines.filter((l) => l.log).map((l) => l.log as string);
      assert.ok(logs.includes(`ip route add 198.18.0.10/32 dev ${TUN} proto ${P}`), logs.join('\n'));
      assert.ok(logs.some((l) => l.startsWith('sysctl -w net.ipv4.ip_forward=1  # was 0')), logs.join('\n'));

      // A fresh process would refuse to set up over the journal; recover() undoes it instead.
      const again = results(drive(ns, options, [{ op: 'setup' }]));
      assert.is(again[0].error?.code, 'WASMVS_HOST_NET');
      assert.match(again[0].error!.message, /recover/);
      assert.equal(ourRules(ns).length, 6, 'the refused setup changed nothing');
      expectOk(drive(ns, options, [{ op: 'recover' }]));
      assert.equal(snapshot(ns), before, 'recover() of a journal left by an exited process restores everything');

      // One process through its whole life: setup, syncs that add and remove, teardown.
      const life = drive(ns, options, [
        { op: 'setup' },
        { op: 'sync', vips: ['198.18.0.10', '198.18.0.11'], rips: ['198.18.1.10', '198.18.1.11'] },
        { op: 'sync', vips: ['198.18.0.11', '198.18.0.12'], rips: ['198.18.1.11', '198.18.1.12'] },
        { op: 'wait' },
      ].slice(0, 3));
      expectOk(life);
      assert.equal(ourRules(ns), [
        `${G} iif ${TUN} goto ${G + 2}`,
        `${G} iif lo ipproto icmp goto ${G + 2}`,
        `${G + 1} from all ipproto icmp lookup ${T}`,
        `${G + 1} from 198.18.1.11 lookup ${T}`,
        `${G + 1} from 198.18.1.12 lookup ${T}`,
        `${G + 2} nop`,
      ]);
      assert.equal(ourRoutes(ns), [`198.18.0.11 dev ${TUN} table main`, `198.18.0.12 dev ${TUN} table main`, `default dev ${TUN} table ${T}`]);
      assert.equal(proxies(ns), ['198.18.0.11 dev ar0', '198.18.0.12 dev ar0']);
      const lifeLogs = life.filter((l) => l.log).map((l) => l.log as string);
      assert.ok(lifeLogs.includes('ip neigh del proxy 198.18.0.10 dev ar0'), lifeLogs.join('\n'));
      assert.ok(lifeLogs.includes(`ip rule del pref ${G + 1} from 198.18.1.10 lookup ${T} protocol ${P}`), lifeLogs.join('\n'));
      expectOk(drive(ns, options, [{ op: 'recover' }]));
      assert.equal(snapshot(ns), before);

      // teardown() and teardownSync() within the process that set up.
      for (const op of ['teardown', 'teardownSync']) {
        expectOk(drive(ns, options, [{ op: 'setup' }, { op: 'sync', vips: ['198.18.0.10'], rips: ['198.18.1.10'] }, { op }, { op }]));
        assert.equal(snapshot(ns), before, `${op} leaves the namespace exactly as before`);
        assert.not.ok(journalExists(stateDir), `${op} removes the journal`);
      }
    } finally {
      deleteNs(ns);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('strict rp_filter (all=1, RHEL): the TUN goes loose with an address, packets written back are forwarded, all restored', () => {
    const ns = makeNs({ rpAll: '1', forward: '1', tunUp: true }); // up, so packets can be written before setup
    const stateDir = mkdtempSync(join(tmpdir(), 'wvsh-'));
    try {
      const before = snapshot(ns);
      assert.is(before.sysctls && (before.sysctls as any)[`${TUN}.rp_filter`], '1', 'the TUN inherited strict mode');
      const options = { tun: TUN, mtu: 1500, stateDir, realServerIfaces: ['rs0'] };
      // Control: without the module's change a client-sourced packet from the TUN is dropped.
      const c0 = counters(ns);
      expectOk(drive(ns, options, [{ op: 'inject', src: '198.18.2.50', dst: '198.18.1.10', count: 5 }]));
      const c1 = counters(ns);
      assert.is(c1.rpfDrops - c0.rpfDrops, 5, 'strict rp_filter drops them (the check this test relies on)');
      assert.is(c1.forwarded - c0.forwarded, 0);

      const lines = drive(ns, options, [
        { op: 'setup' },
        { op: 'sync', vips: ['198.18.0.10'], rips: ['198.18.1.10'] },
        { op: 'inject', src: '198.18.2.50', dst: '198.18.1.10', count: 5 },
        { op: 'teardown' },
      ]);
      expectOk(lines);
      const c2 = counters(ns);
      assert.is(c2.rpfDrops - c1.rpfDrops, 0, 'nothing dropped by reverse-path filtering');
      assert.is(c2.forwarded - c1.forwarded, 5, 'all five forwarded toward the real server');
      const logs = lines.filter((l) => l.log).map((l) => l.log as string);
      assert.ok(logs.some((l) => l.startsWith(`sysctl -w net.ipv4.conf.${TUN}.rp_filter=2  # was 1`)), logs.join('\n'));
      assert.ok(logs.includes(`ip addr add ${TUN_RPF_ADDRESS} dev ${TUN} scope host`), logs.join('\n'));
      assert.not.ok(logs.some((l) => l.startsWith('sysctl -w net.ipv4.conf.all.')), 'all is never touched');
      assert.not.ok(logs.some((l) => l.startsWith('sysctl -w net.ipv4.ip_forward')), 'ip_forward was already on: left alone');
      assert.equal(snapshot(ns), before, 'rp_filter back to 1, address gone');
    } finally {
      deleteNs(ns);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('--real-server-iface rules by incoming interface; a local VIP or a bad address is refused and changes nothing', () => {
    const ns = makeNs();
    const stateDir = mkdtempSync(join(tmpdir(), 'wvsh-'));
    try {
      const before = snapshot(ns);
      const options = { tun: TUN, mtu: 1500, stateDir, realServerIfaces: ['rs0', 'cl0'] };
      const lines = drive(ns, options, [
        { op: 'checkVips', vips: ['198.18.2.1'] },
        { op: 'checkVips', vips: ['198.18.2.200', '127.0.0.5'] },
        { op: 'setup' },
        { op: 'sync', vips: ['198.18.0.10'], rips: ['198.18.1.10'] },
        { op: 'sync', vips: ['198.18.0.10', '198.18.0.20', '198.18.2.1'], rips: [] },
        { op: 'sync', vips: ['198.18.0.300'], rips: [] },
        { op: 'wait' },
      ].slice(0, 6));
      const r = results(lines);
      assert.is(r[0].error?.code, 'WASMVS_VIP_LOCAL');
      assert.match(r[0].error!.message, /198\.18\.2\.1 is a local address of this host \(an address of cl0\): the kernel would deliver/);
      assert.is(r[1].error?.code, 'WASMVS_VIP_LOCAL');
      assert.match(r[1].error!.message, /127\.0\.0\.5 .*local route "local 127\.0\.0\.0\/8 dev lo"/);
      assert.ok(r[2].ok && r[3].ok, JSON.stringify(r));
      assert.is(r[4].error?.code, 'WASMVS_VIP_LOCAL');
      assert.is(r[5].error?.code, 'WASMVS_BAD_ADDRESS');
      assert.equal(ourRules(ns), [
        `${G} iif ${TUN} goto ${G + 2}`,
        `${G} iif lo ipproto icmp goto ${G + 2}`,
        `${G + 1} from all ipproto icmp lookup ${T}`,
        `${G + 1} iif rs0 lookup ${T}`,
        `${G + 1} iif cl0 lookup ${T}`,
        `${G + 2} nop`,
      ], 'rules by interface, none per real server');
      assert.equal(ourRoutes(ns), [`198.18.0.10 dev ${TUN} table main`, `default dev ${TUN} table ${T}`], 'the refused syncs added nothing');
      expectOk(drive(ns, options, [{ op: 'recover' }]));
      assert.equal(snapshot(ns), before);
      // An interface that does not exist is refused at setup, with nothing left behind.
      const missing = results(drive(ns, { ...options, arpIfaces: ['nope0'] }, [{ op: 'setup' }]));
      assert.is(missing[0].error?.code, 'WASMVS_BAD_OPTION');
      assert.match(missing[0].error!.message, /--arp-iface nope0: no such interface/);
      assert.equal(snapshot(ns), before);
    } finally {
      deleteNs(ns);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('after SIGKILL of the gateway process, recover() refuses while it lives and then removes everything it left', async () => {
    const ns = makeNs({ rpAll: '1' });
    const stateDir = mkdtempSync(join(tmpdir(), 'wvsh-'));
    let pid: number | undefined;
    try {
      const before = snapshot(ns);
      const options = { tun: TUN, mtu: 1500, stateDir, arpIfaces: ['ar0'] };
      const steps = [{ op: 'setup' }, { op: 'sync', vips: ['198.18.0.10', '198.18.0.11'], rips: ['198.18.1.10'] }, { op: 'wait' }];
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', DRIVER, JSON.stringify({ options, steps })], { stdio: ['ignore', 'pipe', 'inherit'] });
      pid = child.pid;
      const exited = new Promise((resolve) => child.on('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        let buf = '';
        child.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('"waiting":true')) resolve();
          if (buf.includes('"error"')) reject(new Error(buf));
        });
        child.on('exit', () => reject(new Error(`driver exited early: ${buf}`)));
      });
      assert.equal(ourRoutes(ns).length, 3);
      const live = results(drive(ns, options, [{ op: 'recover' }]));
      assert.is(live[0].error?.code, 'WASMVS_TUN', 'a live owner is not recovered from under it');
      assert.equal(ourRoutes(ns).length, 3);
      process.kill(pid!, 'SIGKILL'); // `ip netns exec` execs node, so this is the driver itself
      await exited;
      pid = undefined;
      assert.equal(proxies(ns), ['198.18.0.10 dev ar0', '198.18.0.11 dev ar0'], 'a SIGKILL leaves everything behind');
      assert.is(sysctl(ns, `net/ipv4/conf/${TUN}/rp_filter`), '2');
      const rec = drive(ns, options, [{ op: 'recover' }, { op: 'recover' }]);
      expectOk(rec);
      assert.equal(snapshot(ns), before, 'nothing of the killed gateway remains');
      assert.not.ok(journalExists(stateDir));
      // Tags alone: routes and rules of ours without a journal are swept too.
      sh(['ip', '-n', ns, 'link', 'set', TUN, 'up']);
      sh(['ip', '-n', ns, 'route', 'add', '198.18.0.99/32', 'dev', TUN, 'proto', P]);
      sh(['ip', '-n', ns, 'rule', 'add', 'pref', String(G + 1), 'from', '198.18.1.99', 'lookup', T, 'protocol', P]);
      sh(['ip', '-n', ns, 'addr', 'add', TUN_RPF_ADDRESS, 'dev', TUN, 'scope', 'host']);
      sh(['ip', '-n', ns, 'link', 'set', TUN, 'down']);
      sh(['ip', '-n', ns, 'route', 'add', '198.18.0.98/32', 'dev', 'rs0', 'proto', P]); // ours by tag, not this TUN's: kept
      expectOk(drive(ns, options, [{ op: 'recover' }]));
      assert.equal(ourRules(ns), []);
      assert.equal(ourRoutes(ns), ['198.18.0.98 dev rs0 table main']);
      assert.equal(ipj(ns, '-4', 'addr', 'show', 'dev', TUN)[0]?.addr_info ?? [], []);
    } finally {
      if (pid !== undefined) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      deleteNs(ns);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  test('a library user\'s change on gateway.engine reaches the host routes at once (the engine\'s config event), not after the 5 s sync', () => {
    const ns = makeNs({ forward: '1' });
    const state = mkdtempSync(join(tmpdir(), 'wvs-hostnet-lib-'));
    try {
      const child = join(HERE, 'support', 'gateway-library-child.ts');
      const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', child, TUN, state], { encoding: 'utf8', timeout: 60_000 });
      const r = JSON.parse(out.trim().split('\n').pop() as string) as Record<'before' | 'after' | 'deleted', { vipRoutes: string[]; rsRules: number }>;
      assert.equal(r.before, { vipRoutes: ['198.18.100.10'], rsRules: 0 });
      assert.equal(r.after.vipRoutes.sort(), ['198.18.100.10', '198.18.100.11'], 'the new VIP is routed into the TUN');
      assert.is(r.after.rsRules, 1, 'the new real server\'s replies are ruled into the TUN');
      assert.equal(r.deleted, { vipRoutes: ['198.18.100.10'], rsRules: 0 }, 'a deleted service with no connections goes at once');
      assert.equal(ipj(ns, '-4', 'route', 'show', 'proto', P), [], 'the gateway stopped and removed its routes');
    } finally {
      deleteNs(ns);
      rmSync(state, { recursive: true, force: true });
    }
  });

  test.after(() => {
    for (const ns of [...made]) deleteNs(ns);
  });
}

test.run();
