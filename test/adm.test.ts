// `wasmvs adm` (host/cli/adm.ts) against a control server over an engine without a TUN: every
// command, every listing against fixtures written with ipvsadm 1.31's own printf formats
// (ipvsadm.c: list_all, print_title, print_service_entry, print_conn, list_timeout,
// print_largenum), ipvs_strerror's messages (libipvs/libipvs.c) and ipvsadm's exit statuses,
// -S fed to -R, and the `ipvsadm` link. No root needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAdm, type AdmIo } from '../host/cli/adm.js';
import { ControlServer } from '../host/control/server.js';
import { Engine } from '../host/engine/engine.js';
import { silentLogger } from '../host/gateway/log.js';
import { parseServices } from '../host/ipvsadm/names.js';
import { printf } from './support/printf.js';
import { tcpPacket, udpPacket } from './support/packets.js';

const SIZE = 4096;
const VERSION = '9.8.7';
const VIP = '198.18.100.10';
const VIP2 = '198.18.100.9';

let engine: Engine;
let server: ControlServer;
let dir: string;
let path: string;

async function start(): Promise<void> {
  engine = new Engine({ connCapacity: SIZE, slotCount: 16, maxServices: 16, maxDests: 64 });
  dir = mkdtempSync(join(tmpdir(), 'wasmvs-adm-'));
  path = join(dir, 'control.sock');
  server = await ControlServer.listen(path, {
    engine, info: () => ({ version: VERSION, connCapacity: SIZE, device: 'fake0', offload: false, pid: process.pid }),
  }, silentLogger);
}

async function stop(): Promise<void> {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
}

// Names for output without -n: a resolver that knows two real servers, a small services file.
const REVERSE: Record<string, string> = { '198.18.1.2': 'rs1.example', '198.18.1.3': 'a-rather-long-real-server-name.example' };
const SERVICES = parseServices('http\t\t80/tcp\t\twww\t# WorldWideWeb HTTP\ndomain\t\t53/udp\nhttps 443/tcp\n');

interface Run { status: number; out: string; err: string }

async function adm(line: string | string[], stdin = '', extra: Partial<AdmIo> = {}): Promise<Run> {
  let out = '';
  let err = '';
  const io: AdmIo = {
    stdout: (t) => { out += t; },
    stderr: (t) => { err += t; },
    stdin: async () => stdin,
    env: { WASMVS_CONTROL: path },
    reverse: async (a) => REVERSE[a],
    lookup: async (name) => (name === 'vip.example' ? VIP : Object.keys(REVERSE).find((a) => REVERSE[a] === name)),
    services: SERVICES,
    ...extra,
  };
  const status = await runAdm(typeof line === 'string' ? line.split(' ') : line, { program: 'ipvsadm', io });
  return { status, out, err };
}

async function ok(line: string, stdin = ''): Promise<string> {
  const r = await adm(line, stdin);
  assert.is(r.err, '', `${line}: ${r.err}`);
  assert.is(r.status, 0, line);
  return r.out;
}

/** The configuration the listing tests share. */
async function configure(): Promise<void> {
  for (const line of [
    `-A -t ${VIP}:80 -s wrr`,
    `-a -t ${VIP}:80 -r 198.18.1.3:8080 -m -w 2`,
    `-a -t ${VIP}:80 -r 198.18.1.2 -m -x 100 -y 50`,
    `-A -u ${VIP}:53 -s sh -b flag-2 -o`,
    `-A -t ${VIP2}:443 -p -M 255.255.255.0`,
    `-a -t ${VIP2}:443 -r 198.18.1.4 -m -w 0`,
  ]) await ok(line);
}

// ipvsadm.c list_all: the version line; print_title (default format): the two title lines.
const VERSION_LINE = printf('IP Virtual Server version %s (size=%d)\n', VERSION, SIZE);
const TITLE = 'Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n';
// print_service_entry: svc_name is "%-4s %s" (protocol, addr:port), cut at 33; a dest line is
// "  -> %-28s %-7s %-6d %-10u %-10u\n".
const svc = (proto: string, name: string) => printf('%-4s %s', proto, name);
const dest = (name: string, weight: number, active = 0, inact = 0) => printf('  -> %-28s %-7s %-6d %-10u %-10u\n', name, 'Masq', weight, active, inact);

test.before.each(start);
test.after.each(stop);

test('-L -n: the three header lines, services sorted (protocol, address, port), flags, persistence, mask, ops', async () => {
  await configure();
  const want = VERSION_LINE + TITLE
    + `${svc('TCP', `${VIP2}:443`)} wlc persistent 360 mask 255.255.255.0\n` + dest('198.18.1.4:443', 0)
    + `${svc('TCP', `${VIP}:80`)} wrr\n` + dest('198.18.1.2:80', 1) + dest('198.18.1.3:8080', 2)
    + `${svc('UDP', `${VIP}:53`)} sh (sh-port) ops\n`;
  assert.is(await ok('-L -n'), want);
  assert.is(await ok('-Ln'), want);
  assert.is(await ok('--list --numeric'), want);
  assert.is(await ok('-l -n'), want);
  // --nosort: the table's own order (services as added, real servers newest first).
  const nosort = await ok('-L -n --nosort');
  assert.is(nosort.split('\n')[3], `${svc('TCP', `${VIP}:80`)} wrr`);
  assert.is(`${nosort.split('\n')[4]}\n`, dest('198.18.1.2:80', 1));
  assert.is(`${nosort.split('\n')[5]}\n`, dest('198.18.1.3:8080', 2));
});

test('-L without -n: hosts by reverse lookup, ports from /etc/services, names cut at 33 and 28 columns', async () => {
  await configure();
  const out = await ok('-L');
  const lines = out.split('\n');
  // A bare `ipvsadm` lists the same way.
  assert.is((await adm([])).out, out);
  assert.is(lines[3], `${svc('TCP', `${VIP2}:https`)} wlc persistent 360 mask 255.255.255.0`);
  assert.is(`${lines[5]}\n`, `${`${svc('TCP', `${VIP}:http`)}`} wrr\n`);
  assert.is(`${lines[6]}\n`, dest('rs1.example:http', 1));
  // dname[28] = '\0': the long name is cut at 28 characters.
  assert.is(`${lines[7]}\n`, dest('a-rather-long-real-server-na', 2));
  assert.is(lines[8], `${svc('UDP', `${VIP}:domain`)} sh (sh-port) ops`);
});

test('-L -n --stats, --rate and --exact after traffic: print_largenum columns', async () => {
  await ok(`-A -t ${VIP}:80 -s rr`);
  await ok(`-a -t ${VIP}:80 -r 198.18.1.2:80 -m`);
  for (let i = 0; i < 5; i++) engine.processPacket(tcpPacket({ src: '198.18.0.2', dst: VIP, sport: 40000 + i, dport: 80, flags: 'S', payload: new Uint8Array(0) }), 1000 + i * 1000);
  engine.expire(7000);
  const st = engine.statistics()[0];
  const d = st.dests[0];
  // "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n", then "%-33s" / "  -> %-28s" and print_largenum ("%9llu").
  assert.is(await ok('-L -n --stats'), VERSION_LINE
    + printf('%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n', 'Prot LocalAddress:Port', 'Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes')
    + printf('%-33s%9llu%9llu%9llu%9llu%9llu\n', svc('TCP', `${VIP}:80`), 5, 5, 0, st.inBytes, 0)
    + printf('  -> %-28s%9llu%9llu%9llu%9llu%9llu\n', '198.18.1.2:80', 5, 5, 0, d.inBytes, 0));
  assert.ok(st.cps > 0, 'rates moved');
  // A real server's CPS/InPPS/OutPPS are "%8llu" columns with a space, its BPS print_largenum.
  assert.is(await ok('-L -n --rate'), VERSION_LINE
    + printf('%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n', 'Prot LocalAddress:Port', 'CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS')
    + printf('%-33s%9llu%9llu%9llu%9llu%9llu\n', svc('TCP', `${VIP}:80`), st.cps, st.inPps, st.outPps, st.inBps, st.outBps)
    + printf('  -> %-28s %8llu %8llu %8llu%9llu%9llu\n', '198.18.1.2:80', d.cps, d.inPps, d.outPps, d.inBps, d.outBps));
  assert.is(await ok('-L -n --stats --exact'), await ok('-L -n --stats'), 'small numbers: --exact changes nothing');
  // -Z zeroes the counters.
  await ok(`-Z -t ${VIP}:80`);
  assert.match(await ok('-L -n --stats'), new RegExp(printf('%-33s%9llu', svc('TCP', `${VIP}:80`), 0)));
  await ok('-Z');
});

test('-L -n --thresholds, --persistent-conn (templates per real server), --tun-info', async () => {
  await configure();
  // A persistent service with one client: one template bound to its real server (the first SYN
  // finds only a quiesced server and is dropped, the second is scheduled after -e).
  engine.processPacket(tcpPacket({ src: '198.18.0.2', dst: VIP2, sport: 40000, dport: 443, flags: 'S' }), 1000);
  await ok(`-e -t ${VIP2}:443 -r 198.18.1.4 -m -w 3`);
  engine.processPacket(tcpPacket({ src: '198.18.0.2', dst: VIP2, sport: 40001, dport: 443, flags: 'S' }), 1001);
  const title = (cols: string) => `${cols}\n  -> RemoteAddress:Port\n`;
  assert.is(await ok('-L -n --thresholds'), VERSION_LINE
    + title(printf('%-33s %-10s %-10s %-10s %-10s', 'Prot LocalAddress:Port', 'Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'))
    + `${svc('TCP', `${VIP2}:443`)} wlc persistent 360 mask 255.255.255.0\n` + printf('  -> %-28s %-10u %-10u %-10u %-10u\n', '198.18.1.4:443', 0, 0, 0, 1)
    + `${svc('TCP', `${VIP}:80`)} wrr\n` + printf('  -> %-28s %-10u %-10u %-10u %-10u\n', '198.18.1.2:80', 100, 50, 0, 0)
    + printf('  -> %-28s %-10u %-10u %-10u %-10u\n', '198.18.1.3:8080', 0, 0, 0, 0)
    + `${svc('UDP', `${VIP}:53`)} sh (sh-port) ops\n`);
  const pc = await ok('-L -n --persistent-conn');
  assert.is(pc.split('\n').slice(1, 5).join('\n'), [
    printf('%-33s %-9s %-11s %-10s %-10s', 'Prot LocalAddress:Port', 'Weight', 'PersistConn', 'ActiveConn', 'InActConn'),
    '  -> RemoteAddress:Port',
    `${svc('TCP', `${VIP2}:443`)} wlc persistent 360 mask 255.255.255.0`,
    printf('  -> %-28s %-9u %-11u %-10u %-10u', '198.18.1.4:443', 3, 1, 0, 1),
  ].join('\n'));
  const tun = await ok('-L -n --tun-info');
  assert.is(tun.split('\n')[2], '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn');
  assert.is(tun.split('\n')[4], printf('  -> %-28s %-7s %-13s %-6d %-10u %-10u', '198.18.1.4:443', 'Masq', 'n/a', 3, 0, 1));
});

test('-L -n -c: the connection table, expire as mm:ss; --persistent-conn titles; names without -n', async () => {
  await ok(`-A -t ${VIP}:80 -s rr`);
  await ok(`-a -t ${VIP}:80 -r 198.18.1.2:80 -m`);
  await ok(`-A -u ${VIP}:53 -s rr`);
  await ok(`-a -u ${VIP}:53 -r 198.18.1.3:53 -m`);
  engine.processPacket(tcpPacket({ src: '198.18.0.2', dst: VIP, sport: 40000, dport: 80, flags: 'S' }), 1000);
  engine.processPacket(udpPacket({ src: '198.18.0.3', dst: VIP, sport: 5353, dport: 53 }), 1500);
  // list_conn: "pro expire %-11s %-18s %-18s %s"; print_conn: "%-3s %-6s %-11s %-18s %-18s %s", expire "%02d:%02d".
  const want = 'IPVS connection entries\n' + printf('pro expire %-11s %-18s %-18s %s\n', 'state', 'source', 'virtual', 'destination');
  const lines = [
    // SYN_RECV's 60 s from 1000 ms, seen at 1500 ms (the engine's last time): 59.5 s left.
    printf('%-3s %-6s %-11s %-18s %-18s %s\n', 'TCP', '00:59', 'SYN_RECV', '198.18.0.2:40000', `${VIP}:80`, '198.18.1.2:80'),
    printf('%-3s %-6s %-11s %-18s %-18s %s\n', 'UDP', '05:00', 'UDP', '198.18.0.3:5353', `${VIP}:53`, '198.18.1.3:53'),
  ];
  const out = await ok('-L -n -c');
  assert.is(out.slice(0, want.length), want);
  assert.equal(out.slice(want.length).split(/(?<=\n)/).sort(), lines.sort());
  assert.is((await ok('-L -n -c --persistent-conn')).split('\n')[1],
    printf('pro expire %-11s %-18s %-18s %-18s %-16s %s', 'state', 'source', 'virtual', 'destination', 'pe name', 'pe_data'));
  const named = await ok('-L -c');
  assert.ok(named.includes(printf('%-18s %s\n', `${VIP}:http`, 'rs1.example:http')), named);
  assert.ok(named.includes(printf('%-18s %s\n', `${VIP}:domain`, 'a-rather-long-real-server-name.example:domain')), named);
});

test('--set and -L --timeout (list_timeout); 0 keeps a value; the engine refuses past 24 days (exit 255)', async () => {
  assert.is(await ok('-L --timeout'), printf('Timeout (tcp tcpfin udp): %d %d %d\n', 900, 120, 300));
  await ok('--set 3600 0 60');
  assert.is(await ok('-L --timeout'), 'Timeout (tcp tcpfin udp): 3600 120 60\n');
  const r = await adm('--set 2678400 0 0'); // ipvsadm's MAX_TIMEOUT (31 days) parses, wasmvs's limit is 24
  assert.is(r.status, 255);
  assert.match(r.err, /timeout tcp must be an integer from 0 to 2073600/);
  assert.is(await ok('-L --timeout'), 'Timeout (tcp tcpfin udp): 3600 120 60\n', 'nothing changed');
  assert.is(await ok('-L --daemon'), '', 'no sync daemon runs, so list_daemon prints no line');
});

test('-L -t|-u SERVICE: list_service (no version line); a missing service exits 1 with "No such service"', async () => {
  await configure();
  assert.is(await ok(`-L -n -t ${VIP}:80`), TITLE + `${svc('TCP', `${VIP}:80`)} wrr\n` + dest('198.18.1.2:80', 1) + dest('198.18.1.3:8080', 2));
  assert.is(await ok(`-L -n -t vip.example:www`), await ok(`-L -n -t ${VIP}:80`), 'names in input: host_to_addr, service_to_port');
  assert.equal(await adm(`-L -n -t ${VIP}:81`), { status: 1, out: '', err: 'No such service\n' });
  assert.equal(await adm(`-L -n -u ${VIP}:80`), { status: 1, out: '', err: 'No such service\n' });
});

test('-S [-n]: save syntax; -x/-y kept (ipvsadm drops them); -S fed to -R gives the same configuration', async () => {
  await configure();
  const saved = await ok('-S -n');
  assert.is(saved, [
    `-A -t ${VIP2}:443 -s wlc -p 360 -M 255.255.255.0`,
    `-a -t ${VIP2}:443 -r 198.18.1.4:443 -m -w 0`,
    `-A -t ${VIP}:80 -s wrr`,
    `-a -t ${VIP}:80 -r 198.18.1.2:80 -m -w 1 -x 100 -y 50`,
    `-a -t ${VIP}:80 -r 198.18.1.3:8080 -m -w 2`,
    `-A -u ${VIP}:53 -s sh -o -b sh-port`,
    '',
  ].join('\n'));
  assert.match(await ok('-S'), new RegExp(`-a -t ${VIP.replace(/\./g, '\\.')}:http -r rs1\\.example:http -m -w 1 -x 100 -y 50\n`));
  const listing = await ok('-L -n --thresholds');
  const named = await ok('-S');
  for (const text of [saved, named]) {
    await ok('-C');
    assert.is(await ok('-S -n'), '', '-C clears the table');
    await ok('-R', text);
    assert.is(await ok('-S -n'), saved);
    assert.is(await ok('-L -n --thresholds'), listing);
  }
  // -R is all or nothing: a restore with an existing service changes nothing.
  const r = await adm('-R', `-A -t ${VIP}:81 -s rr\n-A -t ${VIP}:80 -s rr\n`);
  assert.is(r.status, 255);
  assert.is(r.err, 'Service already exists\n');
  assert.is(await ok('-S -n'), saved);
  // ipvsadm-restore input: comments, blank lines, a leading "ipvsadm" word.
  await ok('-C');
  await ok('-R', `# saved\n\nipvsadm -A -t ${VIP}:80 -s rr # web\nipvsadm -a -t ${VIP}:80 -r 198.18.1.2 -m\n`);
  assert.is(await ok('-S -n'), `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r 198.18.1.2:80 -m -w 1\n`);
  const bad = await adm('-R', `-A -t ${VIP}:81 -s rr\n-a -t ${VIP}:81 -r 198.18.1.2 -m -w 70000\n`);
  assert.equal([bad.status, bad.err], [2, 'illegal weight specified (line 2 of the input; nothing was restored)\n']);
  const other = await adm('-R', `-D -t ${VIP}:80\n`);
  assert.is(other.status, 2);
  assert.match(other.err, /restores -A .* and -a .* lines/);
  assert.is(await ok('-S -n'), `-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r 198.18.1.2:80 -m -w 1\n`);
});

test('-E sends the whole service: no -s is wlc again, no -p drops persistence; -e the whole server', async () => {
  await ok(`-A -t ${VIP}:80 -s rr -p 60`);
  await ok(`-a -t ${VIP}:80 -r 198.18.1.2 -m -w 5 -x 10 -y 2`);
  await ok(`-E -t ${VIP}:80`);
  assert.is(await ok('-S -n'), `-A -t ${VIP}:80 -s wlc\n-a -t ${VIP}:80 -r 198.18.1.2:80 -m -w 5 -x 10 -y 2\n`);
  await ok(`-E -t ${VIP}:80 -s sh -b sh-fallback -p`);
  await ok(`-e -t ${VIP}:80 -r 198.18.1.2 -m`);
  assert.is(await ok('-S -n'), `-A -t ${VIP}:80 -s sh -p 360 -b sh-fallback\n-a -t ${VIP}:80 -r 198.18.1.2:80 -m -w 1\n`);
  await ok(`-e -t ${VIP}:80 -r 198.18.1.2:80 -m -w 0`);
  assert.match(await ok('-L -n'), new RegExp(dest('198.18.1.2:80', 0).replace(/\./g, '\\.')));
  await ok(`-d -t ${VIP}:80 -r 198.18.1.2`);
  await ok(`-D -t ${VIP}:80`);
  assert.is(await ok('-S -n'), '');
});

test('refusals of the table: ipvs_strerror messages, exit 255, nothing changed', async () => {
  await configure();
  const before = await ok('-S -n');
  const cases: Array<[string, string]> = [
    [`-A -t ${VIP}:80 -s rr`, 'Service already exists'],
    [`-A -t ${VIP}:81 -s nosuch`, 'Scheduler or persistence engine not found'],
    [`-E -t ${VIP}:81 -s rr`, 'No such service'],
    [`-E -t ${VIP}:80 -s nosuch`, 'Scheduler or persistence engine not found'],
    [`-D -t ${VIP}:81`, 'No such service'],
    [`-Z -t ${VIP}:81`, 'No such service'],
    [`-a -t ${VIP}:81 -r 198.18.1.2 -m`, 'Service not defined'],
    [`-a -t ${VIP}:80 -r 198.18.1.2:80 -m`, 'Destination already exists'],
    [`-e -t ${VIP}:81 -r 198.18.1.2 -m`, 'Service not defined'],
    [`-e -t ${VIP}:80 -r 198.18.1.9 -m`, 'No such destination'],
    [`-d -t ${VIP}:80 -r 198.18.1.9`, 'No such destination'],
    [`-d -u ${VIP}:80 -r 198.18.1.2`, 'Service not defined'],
    // Checks ipvsadm leaves to the kernel: wasmvs's message, exit 255 as any refusal.
    [`-a -t ${VIP}:80 -r 198.18.1.9 -m -x 5 -y 10`, 'lower threshold 10 is higher than upper threshold 5'],
    [`-A -t ${VIP}:82 -M 255.255.255.0`, '-M (netmask) is the persistence granularity and needs -p (persistence)'],
  ];
  for (const [line, message] of cases) {
    assert.equal(await adm(line), { status: 255, out: '', err: `${message}\n` }, line);
  }
  assert.is(await ok('-S -n'), before);
});

test('command-line errors exit 2 (255 for popt\'s), nothing is sent; -h and -v exit 0', async () => {
  assert.equal(await adm('-A -s rr'), { status: 2, out: '', err: "You need to supply the 'service-address' option for the 'add-service' command\n" });
  assert.equal(await adm('-L --frob'), { status: 255, out: '', err: '--frob: unknown option\n' });
  assert.equal(await adm('-n -L'), { status: 255, out: '', err: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n" });
  assert.equal(await adm('-A -t nosuch.example:80'), { status: 2, out: '', err: 'illegal virtual server address[:port] specified\n' });
  assert.equal(await adm(`-a -t ${VIP}:80 -r 198.18.1.2 -g`).then((r) => [r.status, r.err.startsWith('-g: wasmvs does not support direct routing')]), [2, true]);
  const help = await adm('-h');
  assert.equal([help.status, help.err], [0, '']);
  assert.match(help.out, /Usage:\n {2}ipvsadm -A\|E virtual-service/);
  const version = await adm('--version');
  assert.equal([version.status, version.err], [0, '']);
  assert.match(version.out, /^wasmvs adm \S+ \(ipvsadm v1\.31 command line/);
});

test('no gateway on the socket: ipvsadm\'s "Can\'t initialize ipvs" and exit 2; --control PATH first', async () => {
  const r = await adm('-L -n', '', { env: { WASMVS_CONTROL: join(dir, 'none.sock') } });
  assert.is(r.status, 2);
  assert.match(r.err, /^Can't initialize ipvs: cannot connect to control socket .*none\.sock: no gateway is listening there\n/);
  assert.is((await adm(['--control', path, '-L', '--timeout'], '', { env: {} })).out, 'Timeout (tcp tcpfin udp): 900 120 300\n');
  assert.is((await adm([`--control=${path}`, '-L', '--timeout'], '', { env: {} })).status, 0);
});

// The link: the wasmvs command run as "ipvsadm" is `wasmvs adm` (host/cli/main.ts looks at argv[1]).
const BIN = fileURLToPath(new URL('../build/host/cli/main.js', import.meta.url));
test('a link named ipvsadm to the wasmvs command behaves as wasmvs adm', async () => {
  assert.ok(existsSync(BIN), `${BIN} is built by npm test's pretest (npm run build)`);
  await configure();
  const link = join(dir, 'ipvsadm');
  symlinkSync(BIN, link);
  const run = (args: string[]) => new Promise<Run>((resolve) => {
    execFile(link, args, { env: { ...process.env, WASMVS_CONTROL: path } }, (error, stdout, stderr) => {
      resolve({ status: error ? Number((error as NodeJS.ErrnoException & { code?: number }).code) : 0, out: stdout, err: stderr });
    });
  });
  assert.equal(await run(['-L', '-n']), { status: 0, out: await ok('-L -n'), err: '' });
  assert.equal(await run(['-L', '-n', '-t', `${VIP}:81`]), { status: 1, out: '', err: 'No such service\n' });
  assert.equal(await run(['-Q']), { status: 255, out: '', err: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n" });
});

test.run();
