// FTP through the real gateway: vsftpd on the real servers (their default route is the
// director), curl in the client namespace, both offload modes, the director's offloads off so
// that every receiver verifies every checksum the FTP helper's rewrites produce. Passive with
// the 227's address really used (--disable-epsv --no-ftp-skip-pasv-ip), passive EPSV (curl's
// default), active PORT (-P - --disable-eprt, vsftpd connect_from_port_20=YES) and active
// EPRT; 5 MB down and up, sha256 checked; two clients at once on two servers (wrr) each keep
// their data connections on their own control connection's server.
//
//   client 198.18.0.2/.3 -- director (wvs0: VIP 198.18.100.10) -- rs1 198.18.1.2, rs2 198.18.1.3
//
// vsftpd runs in each real server's namespace from its own config file in a temp dir
// (listen=YES, background=NO, anonymous with a temp root, passive ports 50000-50100), never
// the host's /etc/vsftpd.conf; started and stopped by PID through the testbed. Needs root,
// vsftpd and curl (Debian packages vsftpd, curl); without root every test is skipped with a
// message, and under CI=true a skip is a failure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { connectControl } from '../host/control/client.js';
import type { ConnInfo, Counters } from '../host/engine/engine.js';
import { startGateway } from '../host/testbed/gateway.js';
import { isRoot, type NsProcess, Testbed, TESTBED_VIP } from '../host/testbed/topology.js';
import { findOnPath, IN_CI } from './support/tools.js';

const VIP = TESTBED_VIP;
const MB5 = 5 * 1024 * 1024;
// vsftpd lives in /usr/sbin, which a non-root PATH may lack.
const VSFTPD = findOnPath('vsftpd') ?? (existsSync('/usr/sbin/vsftpd') ? '/usr/sbin/vsftpd' : undefined);
const CURL = findOnPath('curl');
const RULES = `-A -t ${VIP}:21 -s wrr\n-a -t ${VIP}:21 -r 198.18.1.2:21 -m -w 1\n-a -t ${VIP}:21 -r 198.18.1.3:21 -m -w 1\n`;

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** The file each server offers: its own bytes (its name runs through them), so a data
 * connection that reached the wrong server shows in the digest. */
function serverFile(name: string, bytes: number): Buffer {
  const out = Buffer.alloc(bytes);
  let x = 0x9e3779b9 ^ name.charCodeAt(2);
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  out.write(`${name}\n`, 0);
  return out;
}

interface Ftpd { name: string; dir: string; pub: string; proc: NsProcess; file: Buffer }

function vsftpdConfig(dir: string, root: string, empty: string): string {
  return [
    'listen=YES', 'listen_ipv6=NO', 'background=NO', 'listen_port=21',
    'anonymous_enable=YES', 'local_enable=NO', 'no_anon_password=YES', `anon_root=${root}`,
    'write_enable=YES', 'anon_upload_enable=YES', 'anon_umask=022', 'anon_world_readable_only=YES',
    'pasv_enable=YES', 'pasv_min_port=50000', 'pasv_max_port=50100',
    'port_enable=YES', 'connect_from_port_20=YES',
    // The director keeps client addresses: vsftpd's own checks that the data connection's
    // peer is the control connection's stay on.
    'pasv_promiscuous=NO', 'port_promiscuous=NO',
    `secure_chroot_dir=${empty}`, 'seccomp_sandbox=NO', 'isolate=NO', 'isolate_network=NO',
    'xferlog_enable=YES', `vsftpd_log_file=${join(dir, 'vsftpd.log')}`, 'dual_log_enable=NO', 'syslog_enable=NO',
    'hide_ids=YES', 'use_localtime=NO', 'dirmessage_enable=NO', 'ftpd_banner=wasmvs test FTP',
  ].join('\n') + '\n';
}

let tb: Testbed;
let ftpds: Ftpd[] = [];
let base = '';

async function startFtpd(server: { name: string; ns: string }): Promise<Ftpd> {
  const dir = join(base, server.name);
  const root = join(dir, 'root');
  const pub = join(root, 'pub');
  const empty = join(dir, 'empty');
  for (const d of [dir, root, pub, empty]) mkdirSync(d, { recursive: true });
  chmodSync(dir, 0o755); chmodSync(root, 0o555); chmodSync(empty, 0o555);
  // Anonymous uploads land in pub, which the ftp user owns; the chroot itself is root's.
  const ftpUser = execFileSync('id', ['-u', 'ftp'], { encoding: 'utf8' }).trim();
  const ftpGroup = execFileSync('id', ['-g', 'ftp'], { encoding: 'utf8' }).trim();
  chownSync(pub, Number(ftpUser), Number(ftpGroup));
  chmodSync(pub, 0o755);
  const file = serverFile(server.name, MB5);
  writeFileSync(join(pub, 'big'), file, { mode: 0o644 });
  const conf = join(dir, 'vsftpd.conf');
  writeFileSync(conf, vsftpdConfig(dir, root, empty), { mode: 0o600 });
  const proc = tb.spawn(server.ns, [VSFTPD!, conf]);
  // No line to wait for (background=NO prints nothing): poll until port 21 listens.
  const until = Date.now() + 10_000;
  while (!(await tb.exec(server.ns, ['ss', '-Hltn', 'sport = :21'])).includes(':21')) {
    if (!proc.running) throw new Error(`vsftpd on ${server.name} exited: ${proc.stderr.text()}`);
    if (Date.now() > until) throw new Error(`vsftpd on ${server.name} does not listen`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { name: server.name, dir, pub, proc, file };
}

/** curl in the client namespace; resolves with its stdout (the body, for -o -). */
function curl(args: string[], timeoutMs = 60_000): Promise<string> {
  return tb.exec(tb.client.ns, [CURL!, '-sS', '--max-time', String(Math.floor(timeoutMs / 1000) - 1), ...args], { timeoutMs });
}

/** Downloads ftp://VIP/pub/big with `opts` into a file; returns its sha256. */
async function download(opts: string[], iface?: string): Promise<string> {
  const out = join(base, `down-${Math.random().toString(36).slice(2)}`);
  try {
    await curl([...opts, ...(iface ? ['--interface', iface] : []), '-o', out, `ftp://${VIP}/pub/big`]);
    return sha256(readFileSync(out));
  } finally {
    rmSync(out, { force: true });
  }
}

/** Each mode, its curl options, and what the helper does for one transfer. */
const MODES: Array<[string, string[], Partial<Counters['ftp']>]> = [
  ['passive PASV, the 227\'s address used', ['--disable-epsv', '--no-ftp-skip-pasv-ip'], { passive: 1, rewritten: 1 }],
  ['passive EPSV', [], { passive: 1 }],
  ['active PORT', ['-P', '-', '--disable-eprt'], { active: 1 }],
  ['active EPRT', ['-P', '-'], { active: 1 }],
];

/** The gateway's FTP counters and connections, through its control socket. */
async function gatewayState(control: string): Promise<{ ftp: Counters['ftp']; conns: ConnInfo[] }> {
  const c = await connectControl({ path: control });
  try {
    return { ftp: ((await c.call('counters')) as Counters).ftp, conns: await c.connections() };
  } finally {
    c.close();
  }
}

if (!isRoot() || !VSFTPD || !CURL) {
  test('FTP end-to-end tests need root, vsftpd and curl', () => {
    const why = !isRoot() ? 'root (network namespaces, TUN)' : !VSFTPD ? 'vsftpd (apt-get install vsftpd)' : 'curl (apt-get install curl)';
    if (IN_CI) assert.unreachable(`CI=true: the FTP end-to-end tests must not be skipped (missing: ${why})`);
    console.log(`  skipped: the FTP end-to-end tests need ${why}`);
  });
} else {
  let setupError: unknown;
  test.before(async () => {
    try {
      base = mkdtempSync(join(tmpdir(), 'wasmvs-ftp-'));
      chmodSync(base, 0o755);
      tb = await Testbed.create({ servers: 2, offloads: false });
      for (const s of tb.servers) ftpds.push(await startFtpd(s));
    } catch (err) {
      setupError = err;
    }
  });
  test.before.each(() => {
    if (setupError) throw setupError;
  });
  test.after(async () => {
    for (const f of ftpds) await f.proc.stop().catch(() => undefined);
    ftpds = [];
    await tb?.destroy();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  const shaOf = (name: string) => sha256(ftpds.find((f) => f.name === name)!.file);

  for (const offload of [true, false]) {
    const mode = offload ? 'offload' : 'no-offload';
    test(`${mode}: 5 MB down and up in every mode (PASV with its address used, EPSV, PORT, EPRT), sha256 intact`, async () => {
      const gw = await startGateway(tb, { rules: RULES, offload });
      try {
        const servers = new Set(ftpds.map((f) => sha256(f.file)));
        for (const [what, opts, helper] of MODES) {
          const before = (await gatewayState(gw.control)).ftp;
          const got = await download(opts);
          const after = (await gatewayState(gw.control)).ftp;
          for (const [k, n] of Object.entries(helper)) assert.is(after[k as keyof typeof after] - before[k as keyof typeof before], n, `${what}: FTP helper ${k}`);
          assert.ok(servers.has(got), `${what}: download sha256 ${got} is no server's file`);
          const name = `up-${mode}-${what.replace(/[^a-z]+/gi, '-')}`;
          const data = serverFile(`x${name}`, MB5);
          const src = join(base, name);
          writeFileSync(src, data);
          try {
            await curl([...opts, '-T', src, `ftp://${VIP}/pub/${name}`]);
          } finally {
            rmSync(src, { force: true });
          }
          const landed = ftpds.map((f) => { try { return readFileSync(join(f.pub, name)); } catch { return undefined; } }).filter((b) => b !== undefined);
          assert.is(landed.length, 1, `${what}: the upload landed on one server`);
          assert.is(sha256(landed[0]!), sha256(data), `${what}: upload sha256`);
        }
        const c = gw.process.stderr.text();
        assert.not.match(c, / ftp: /, 'nothing the helper did not translate');
      } finally {
        const code = await gw.stop();
        assert.is(code, 0, `gateway exit status ${code}:\n${gw.process.stderr.text()}`);
      }
    });

    test(`${mode}: two clients at once on two servers (wrr): each data connection goes to its own control connection's server`, async () => {
      const gw = await startGateway(tb, { rules: RULES, offload });
      try {
        for (const [what, opts] of MODES) {
          const [a, b] = await Promise.all(tb.client.addresses.map((addr) => download(opts, addr)));
          // wrr 1:1 sends the two control connections to the two servers; each client's file
          // must be whole and from one server, and the two from different ones.
          assert.equal([a, b].sort(), ftpds.map((f) => shaOf(f.name)).sort(), `${what}: one whole file from each server`);
        }
      } finally {
        await gw.stop();
      }
    });
  }

  test('a command cut in two segments by the client: the gateway logs it (once), vsftpd gets it whole', async () => {
    const gw = await startGateway(tb, { rules: RULES });
    try {
      // A client that writes PORT in two pieces, 200 ms apart (Nagle off): two segments.
      const out = await tb.exec(tb.client.ns, [process.execPath, '-e', `
        const net = require('net');
        const s = net.connect({ host: '${VIP}', port: 21, noDelay: true });
        let got = '';
        const step = { '220': 'USER anonymous\\r\\n', '331': 'PASS guest@\\r\\n' };
        let buf = '';
        s.on('data', (d) => {
          got += d;
          buf += d;
          let nl;
          while ((nl = buf.indexOf('\\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            const code = line.slice(0, 3);
            if (line[3] !== ' ') continue;
            if (step[code]) s.write(step[code]);
            else if (code === '230') { s.write('PORT 198,18,0,'); setTimeout(() => s.write('2,195,80\\r\\n'), 200); }
            else if (!s.quit) { s.quit = true; s.end('QUIT\\r\\n'); }
          }
        });
        s.on('close', () => { console.log(JSON.stringify(got)); });
        setTimeout(() => { console.log('timeout', JSON.stringify(got)); process.exit(0); }, 8000).unref();
      `], { timeoutMs: 10_000 });
      assert.match(out, /200 PORT command successful/, 'vsftpd read the command whole');
      const until = Date.now() + 3000;
      while (!/ ftp: split-command on 198\.18\.0\.2:\d+ -> 198\.18\.100\.10:21/.test(gw.process.stderr.text()) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      assert.match(gw.process.stderr.text(), / ftp: split-command on 198\.18\.0\.2:\d+ -> 198\.18\.100\.10:21/);
      assert.is(gw.process.stderr.text().split('\n').filter((l) => / ftp: /.test(l)).length, 1, 'one log line');
      const c = await gatewayState(gw.control);
      assert.is(c.ftp['split-command'], 1);
      assert.is(c.ftp.active, 0, 'the cut PORT opened nothing');
    } finally {
      await gw.stop();
    }
  });

  test('wasmvs adm -L -n -c\'s view during a passive transfer: the data connection is an ordinary row to the control connection\'s server', async () => {
    const gw = await startGateway(tb, { rules: RULES });
    try {
      const transfer = download(['--disable-epsv', '--no-ftp-skip-pasv-ip', '--limit-rate', '2M']);
      let seen: ConnInfo[] = [];
      for (let i = 0; i < 40 && seen.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 50));
        seen = (await gatewayState(gw.control)).conns.filter((c) => c.vport >= 50000 && c.vport <= 50100);
      }
      const conns = (await gatewayState(gw.control)).conns;
      await transfer;
      assert.is(seen.length, 1, JSON.stringify(conns));
      const control = conns.find((c) => c.vport === 21 && c.caddr === seen[0].caddr && c.state === 'ESTABLISHED');
      assert.ok(control, 'its control connection is listed');
      assert.is(seen[0].daddr, control!.daddr, 'same real server');
      assert.is(seen[0].dport, seen[0].vport, 'the port the 227 named');
      assert.is(seen[0].state, 'ESTABLISHED');
      assert.ok(seen[0].cport > 0, 'the client port filled in');
    } finally {
      await gw.stop();
    }
  });
}

test.run();
