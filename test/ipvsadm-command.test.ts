// ipvsadm's command line (host/ipvsadm/command.ts) against ipvsadm 1.31's source, ipvsadm.c:
// the commands_v_options table (every command x every option kind, accepted or refused as the
// table says), set_option, parse_options' fail(2, ...) messages, popt's errors (exit 255) and
// the "Try `ipvsadm -h'" exit for a first option that is no command.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  combinationRule, IpvsadmError, OPTION_KINDS, parseCommand, TABLE_COMMANDS, type CommandName, type OptionKind,
} from '../host/ipvsadm/command.js';

const SVC = '198.18.100.10:80';
const RS = '198.18.1.2';

/** Runs parseCommand on a command line; returns the error (or undefined when it parses). */
function refusal(line: string | string[]): IpvsadmError | undefined {
  try {
    parseCommand(typeof line === 'string' ? line.split(' ') : line);
    return undefined;
  } catch (err) {
    assert.instance(err, IpvsadmError, String(err));
    return err as IpvsadmError;
  }
}

// A command line with what each command needs ('+' columns, and -m where ipvsadm's default
// forwarding, direct routing, is not wasmvs's).
const BASE: Partial<Record<CommandName, string[]>> = {
  'add-service': ['-A', '-t', SVC],
  'edit-service': ['-E', '-t', SVC],
  'delete-service': ['-D', '-t', SVC],
  flush: ['-C'],
  list: ['-L'],
  'add-server': ['-a', '-t', SVC, '-r', RS, '-m'],
  'delete-server': ['-d', '-t', SVC, '-r', RS],
  'edit-server': ['-e', '-t', SVC, '-r', RS, '-m'],
  set: ['--set', '900', '120', '300'],
  restore: ['-R'],
  save: ['-S'],
  zero: ['-Z'],
};

// One way to give each option kind wasmvs supports.
const SAMPLE: Partial<Record<OptionKind, string[]>> = {
  numeric: ['-n'], connection: ['-c'], 'service-address': ['-t', SVC], scheduler: ['-s', 'rr'],
  persistent: ['-p', '60'], netmask: ['-M', '255.255.255.0'], 'real-server': ['-r', RS], 'forwarding-method': ['-m'],
  weight: ['-w', '3'], 'u-threshold': ['-x', '5'], 'l-threshold': ['-y', '2'], timeout: ['--timeout'], daemon: ['--daemon'],
  stats: ['--stats'], rate: ['--rate'], thresholds: ['--thresholds'], 'persistent-conn': ['--persistent-conn'],
  nosort: ['--nosort'], exact: ['--exact'], ops: ['-o'], 'sched-flags': ['-b', 'flag-1'], 'tun-info': ['--tun-info'],
};

test('commands_v_options: every command with every option kind, accepted or refused as ipvsadm.c\'s table says', () => {
  let checked = 0;
  for (const command of TABLE_COMMANDS) {
    const base = BASE[command];
    if (base === undefined) continue; // --start-daemon/--stop-daemon: refused as unsupported (below)
    assert.is(refusal(base), undefined, `${base.join(' ')} parses`);
    for (const kind of OPTION_KINDS) {
      const sample = SAMPLE[kind];
      if (sample === undefined || base.includes(sample[0])) continue;
      // -o is for UDP services only (process_options), so try it on one.
      const words = [...base, ...sample].map((w) => (kind === 'ops' && w === '-t' ? '-u' : w));
      const err = refusal(words);
      const rule = combinationRule(command, kind);
      if (rule === 'x') {
        assert.ok(err, `${words.join(' ')} must be refused`);
        assert.is(err!.message, `Illegal '${kind}' option with the '${command}' command`);
        assert.is(err!.status, 2);
      } else {
        assert.is(err?.message, undefined, `${words.join(' ')} must be accepted (rule '${rule}')`);
      }
      checked++;
    }
  }
  assert.ok(checked > 200, `${checked} combinations`);
});

test('compulsory, exclusive and repeated options (generic_opt_check, set_option)', () => {
  const cases: Array<[string, string]> = [
    ['-A -s rr', "You need to supply the 'service-address' option for the 'add-service' command"],
    ['-a -t 198.18.100.10:80 -m', "You need to supply the 'real-server' option for the 'add-server' command"],
    ['-d -t 198.18.100.10:80', "You need to supply the 'real-server' option for the 'delete-server' command"],
    ['-L -c -t 198.18.100.10:80', "The option 'service-address' conflicts with the 'connection' option in the 'list' command"],
    ['-L --timeout --daemon', "The option 'daemon' conflicts with the 'timeout' option in the 'list' command"],
    ['-L -c --timeout', "The option 'timeout' conflicts with the 'connection' option in the 'list' command"],
    ['-L -n -c --stats', 'options conflicts in the list command'],
    ['-L --timeout --persistent-conn', 'options conflicts in the list command'],
    ['-L -n -n', "multiple 'numeric' options specified"],
    ['-A -t 198.18.100.10:80 -u 198.18.100.10:80', "multiple 'service-address' options specified"],
    ['-A -t 198.18.100.10:80 -s rr -s wrr', "multiple 'scheduler' options specified"],
  ];
  for (const [line, message] of cases) {
    const err = refusal(line);
    assert.is(err?.message, message, line);
    assert.is(err?.status, 2, line);
  }
});

test('parse_options values: fail(2, ...) with ipvsadm\'s messages', () => {
  const cases: Array<[string, string]> = [
    ['-A -t 80 -s rr', 'illegal virtual server address[:port] specified'],
    ['-A -t 198.18.100.10:http+ -s rr', 'illegal virtual server address[:port] specified'],
    ['-A -t 198.18.100.10:65536', 'illegal virtual server address[:port] specified'],
    ['-a -t 198.18.100.10:80 -r 198.18.1.2:x.y -m', 'illegal real server address[:port] specified'],
    ['-a -t 198.18.100.10:80 -r 198.18.1.2 -m -w 65536', 'illegal weight specified'],
    ['-a -t 198.18.100.10:80 -r 198.18.1.2 -m -w -1', 'illegal weight specified'],
    ['-a -t 198.18.100.10:80 -r 198.18.1.2 -m -x five', 'illegal u_threshold specified'],
    ['-a -t 198.18.100.10:80 -r 198.18.1.2 -m -y 2147483648', 'illegal l_threshold specified'],
    ['-A -t 198.18.100.10:80 -p 0', "invalid timeout value `0' specified"],
    ['-A -t 198.18.100.10:80 -p 2678401', "invalid timeout value `2678401' specified"], // MAX_TIMEOUT 31 days
    ['-A -t 198.18.100.10:80 -p -M 255.255.255.256', 'illegal virtual server persistent mask specified'],
    ['-A -t 198.18.100.10:80 -s sh -b sh-port,fast', "invalid scheduler flag `fast'"],
    ['-A -t 198.18.100.10:80 -s wrr -b sh-port', "incompatible scheduler flag `sh-port'"],
    ['-A -t 198.18.100.10:80 -b mh-port', "incompatible scheduler flag `mh-port'"], // the default wlc
    ['-A -t 198.18.100.10:0 -s rr', 'Zero port specified for non-persistent service'],
    ['-A -t 198.18.100.10 -s rr', 'Zero port specified for non-persistent service'],
    ['-A -t 198.18.100.10:53 -o', 'One-Packet Scheduling is only for UDP virtual services'],
    ['--set 900 120', '--set option requires 3 timeout values'],
    ['--set 900 120 x', "invalid timeout value `x' specified"],
    ['-L -n extra', 'unexpected argument extra'],
    ['-L -A', "invalid option `-A'"],
  ];
  for (const [line, message] of cases) {
    const err = refusal(line);
    assert.is(err?.message, message, line);
    assert.is(err?.status, 2, line);
  }
});

test('popt\'s errors and a first option that is no command exit 255', () => {
  const cases: Array<[string, string]> = [
    ['-n -L', "Try `ipvsadm -h' or 'ipvsadm --help' for more information."],
    ['-t 198.18.100.10:80', "Try `ipvsadm -h' or 'ipvsadm --help' for more information."],
    ['--frobnicate', "Try `ipvsadm -h' or 'ipvsadm --help' for more information."],
    ['-L --frobnicate', '--frobnicate: unknown option'],
    ['-LQ', '-Q: unknown option'],
    ['-A -t', '-t: missing argument'],
    ['-A --tcp-service', '--tcp-service: missing argument'],
  ];
  for (const [line, message] of cases) {
    const err = refusal(line);
    assert.is(err?.message, message, line);
    assert.is(err?.status, 255, line);
  }
});

test('features wasmvs lacks are refused by name (exit 2), never ignored', () => {
  const cases: Array<[string, RegExp]> = [
    ['-a -t 198.18.100.10:80 -r 198.18.1.2 -g', /^-g: wasmvs does not support direct routing/],
    ['-a -t 198.18.100.10:80 -r 198.18.1.2 --gatewaying', /^--gatewaying: wasmvs does not support direct routing/],
    ['-a -t 198.18.100.10:80 -r 198.18.1.2 -i', /^-i: wasmvs does not support IP-in-IP/],
    ['-a -t 198.18.100.10:80 -r 198.18.1.2 -m --tun-type gre', /^--tun-type: wasmvs does not support tunnelling/],
    ['-A -f 1 -s rr', /^-f: wasmvs does not support firewall-mark services/],
    ['-A --sctp-service 198.18.100.10:80', /^--sctp-service: wasmvs does not support SCTP/],
    ['-A -t 198.18.100.10:80 -6', /^-6: wasmvs does not support IPv6/],
    ['-A -t [2001:db8::1]:80', /wasmvs does not support IPv6/],
    ['-a -t 198.18.100.10:80 -r 2001:db8::2 -m', /wasmvs does not support IPv6/],
    ['-A -t 198.18.100.10:5060 -p --pe sip', /^--pe: wasmvs does not support persistence engines/],
    ['--start-daemon master', /^--start-daemon: wasmvs does not support the connection synchronisation daemon/],
    ['--stop-daemon backup', /^--stop-daemon: wasmvs does not support/],
    ['-L --syncid 3', /^--syncid: wasmvs does not support/],
    // ipvsadm's default forwarding is -g; -e sends the whole server, so -e without -m would be -g.
    ['-a -t 198.18.100.10:80 -r 198.18.1.2', /default is -g \(direct routing\), which wasmvs does not support.*add -m/],
    ['-e -t 198.18.100.10:80 -r 198.18.1.2 -w 2', /default is -g/],
  ];
  for (const [line, pattern] of cases) {
    const err = refusal(line);
    assert.ok(err, line);
    assert.match(err!.message, pattern, line);
    assert.is(err!.code, 'WASMVS_UNSUPPORTED', line);
    assert.is(err!.status, 2, line);
  }
});

test('popt forms: bundled short options, attached and --long=value arguments, -p\'s optional argument', () => {
  const a = parseCommand(['-Lnc']);
  assert.is(a.command, 'list');
  assert.ok(a.format.numeric && a.options.has('connection'));
  const b = parseCommand(['-A', '-t198.18.100.10:80', '-swrr', '-p']);
  assert.equal([b.service?.addr, b.service?.port, b.scheduler, b.persistence], ['198.18.100.10', 80, 'wrr', 360]);
  const c = parseCommand(['--add-server', '--tcp-service=198.18.100.10:80', '--real-server', '198.18.1.2', '-mw', '7', '--u-threshold=9']);
  assert.equal([c.server?.addr, c.server?.port, c.weight, c.upperThreshold], ['198.18.1.2', undefined, 7, 9]);
  // -p takes the next word only when it is no option (POPT_ARGFLAG_OPTIONAL).
  assert.is(parseCommand(['-A', '-t', SVC, '-p', '-s', 'rr']).persistence, 360);
  assert.is(parseCommand(['-A', '-t', SVC, '-p', '90']).persistence, 90);
  // A required argument is the next word even when it starts with '-', as popt takes it.
  assert.is(refusal(['-a', '-t', SVC, '-r', RS, '-m', '-w', '-x'])?.message, 'illegal weight specified');
  // -s is cut at IP_VS_SCHEDNAME_MAXLEN - 1 characters; -X is --exact; --sort does nothing.
  assert.is(parseCommand(['-A', '-t', SVC, '-s', 'abcdefghijklmnopqrstuvwxyz']).scheduler, 'abcdefghijklmno');
  assert.ok(parseCommand(['-L', '-X', '--sort']).format.exact);
  // A port by its /etc/services name, for the service's protocol; a host name for the caller to look up.
  const d = parseCommand(['-A', '-u', 'ns.example:domain'], { servicePort: (n, p) => (n === 'domain' && p === 'udp' ? 53 : undefined) });
  assert.equal([d.service?.host, d.service?.addr, d.service?.port], ['ns.example', undefined, 53]);
  assert.equal(parseCommand(['--set', '0', '60', '30']).timeouts, { tcp: 0, tcpfin: 60, udp: 30 });
});

test.run();
