// Rules files in ipvsadm-save syntax (host/rules.ts). The seed example is the classic LVS NAT
// example (VIP 202.103.106.5, real servers on 172.16.0.0/24); the expected text is what
// `ipvsadm-save -n` prints for it. Error fixtures are numbered and say which code and which
// line they must report.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { emitRules, parseRules, type RuleSet } from '../host/ipvsadm/rules.js';
import { WasmvsError, type ErrorCode } from '../host/errors.js';
import { SEED_RULES_TEXT } from './support/seed.js';

const SEED = SEED_RULES_TEXT;

const SEED_RULES: RuleSet = {
  services: [
    {
      protocol: 'tcp', vaddr: '202.103.106.5', vport: 80, scheduler: 'wrr',
      dests: [
        { daddr: '172.16.0.2', dport: 80, weight: 1 },
        { daddr: '172.16.0.3', dport: 8000, weight: 2 },
      ],
    },
    {
      protocol: 'tcp', vaddr: '202.103.106.5', vport: 21, scheduler: 'wrr',
      dests: [{ daddr: '172.16.0.3', dport: 21, weight: 1 }],
    },
  ],
};

// Every optional field in use, so round trips exercise all of emit.
const RICH: RuleSet = {
  services: [
    {
      protocol: 'udp', vaddr: '10.0.0.53', vport: 53, scheduler: 'sh',
      persistence: 600, netmask: '255.255.255.0', schedFlags: ['sh-fallback', 'sh-port'], onePacket: true,
      dests: [
        { daddr: '192.168.1.10', dport: 5353, weight: 0, upperThreshold: 100, lowerThreshold: 50 },
        { daddr: '192.168.1.11', dport: 53, weight: 65535, upperThreshold: 7 },
      ],
    },
    { protocol: 'tcp', vaddr: '10.0.0.1', vport: 0, scheduler: 'lc', persistence: 1, dests: [] },
    { protocol: 'tcp', vaddr: '10.0.0.53', vport: 53, scheduler: 'rr', persistence: 2073600, dests: [] },
  ],
};

const RICH_TEXT = [
  '-A -u 10.0.0.53:53 -s sh -p 600 -M 255.255.255.0 -o -b sh-fallback,sh-port', // ipvsadm prints -o before -b
  '-a -u 10.0.0.53:53 -r 192.168.1.10:5353 -m -w 0 -x 100 -y 50',
  '-a -u 10.0.0.53:53 -r 192.168.1.11:53 -m -w 65535 -x 7',
  '-A -t 10.0.0.1:0 -s lc -p 1',
  '-A -t 10.0.0.53:53 -s rr -p 2073600',
].join('\n') + '\n';

/** Runs fn, which must throw a WasmvsError, and returns it. */
function thrown(fn: () => unknown): WasmvsError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, WasmvsError);
    return err as WasmvsError;
  }
  assert.unreachable('expected a WasmvsError');
  throw new Error('unreachable');
}

test('seed example parses to the exact structure', () => {
  assert.equal(parseRules(SEED), SEED_RULES);
});

test('seed example emits exactly as ipvsadm-save -n', () => {
  assert.is(emitRules(SEED_RULES), SEED);
  assert.is(emitRules(parseRules(SEED)), SEED);
});

test('rich rule set emits the expected text and round-trips', () => {
  assert.is(emitRules(RICH), RICH_TEXT);
  assert.equal(parseRules(emitRules(RICH)), RICH);
  assert.equal(parseRules(RICH_TEXT), RICH);
});

test('round trip: parse(emit(x)) equals x, and emit is a fixed point', () => {
  for (const rules of [SEED_RULES, RICH, { services: [] }]) {
    const text = emitRules(rules);
    assert.equal(parseRules(text), rules);
    assert.is(emitRules(parseRules(text)), text);
  }
  assert.is(emitRules({ services: [] }), '');
});

test('round trip holds for 200 generated rule sets (seeded, so failures reproduce)', () => {
  let seed = 0x5eed;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; // glibc LCG: deterministic, good enough here
    return (seed >>> 8) % n;
  };
  const ip = (): string => `${rand(224)}.${rand(256)}.${rand(256)}.${rand(256)}`;
  for (let round = 0; round < 200; round++) {
    const rules: RuleSet = { services: [] };
    for (let s = rand(4); s > 0; s--) {
      const protocol = rand(2) ? 'tcp' : 'udp';
      const scheduler = ['rr', 'wrr', 'lc', 'wlc', 'sh', 'mh'][rand(6)];
      const persistence = rand(2) ? 1 + rand(2073600) : undefined;
      const service: RuleSet['services'][number] = { protocol, vaddr: ip(), vport: persistence ? rand(65536) : 1 + rand(65535), scheduler, dests: [] };
      if (persistence) service.persistence = persistence;
      if (persistence && rand(2)) service.netmask = ['255.255.255.0', '255.255.0.0', '0.0.0.0', '255.255.255.255'][rand(4)];
      if (rand(3) === 0) service.schedFlags = scheduler === 'sh' ? ['sh-port'] : ['flag-1', 'flag-3'];
      if (protocol === 'udp' && rand(2)) service.onePacket = true;
      for (let d = rand(5); d > 0; d--) {
        const dest: RuleSet['services'][number]['dests'][number] = { daddr: ip(), dport: rand(65536), weight: rand(65536) };
        if (rand(2)) dest.upperThreshold = 1 + rand(65535);
        if (dest.upperThreshold && rand(2)) dest.lowerThreshold = 1 + rand(dest.upperThreshold);
        service.dests.push(dest);
      }
      rules.services.push(service);
    }
    const text = emitRules(rules);
    assert.equal(parseRules(text), rules, text);
  }
});

test('emit leaves out -M without persistence, empty -b and zero thresholds', () => {
  const text = emitRules({
    services: [{
      protocol: 'tcp', vaddr: '1.2.3.4', vport: 80, scheduler: 'wlc', netmask: '255.255.0.0', schedFlags: [],
      onePacket: false, dests: [{ daddr: '5.6.7.8', dport: 80, weight: 3, upperThreshold: 0, lowerThreshold: 0 }],
    }],
  });
  assert.is(text, '-A -t 1.2.3.4:80 -s wlc\n-a -t 1.2.3.4:80 -r 5.6.7.8:80 -m -w 3\n');
});

test('long options and --name=value are accepted', () => {
  const text = [
    '--add-service --udp-service 10.0.0.53:53 --scheduler sh --persistent 120 --netmask 255.255.255.0 --sched-flags sh-port --ops',
    '--add-server --udp-service 10.0.0.53:53 --real-server 192.168.1.10:53 --masquerading --weight 4 --u-threshold 10 --l-threshold 5',
    '--add-service --tcp-service=10.0.0.1:443 --scheduler=mh --persistent=60',
    '--add-server --tcp-service=10.0.0.1:443 --real-server=192.168.1.20 --masquerading --weight=9',
  ].join('\n');
  assert.equal(parseRules(text), {
    services: [
      {
        protocol: 'udp', vaddr: '10.0.0.53', vport: 53, scheduler: 'sh', persistence: 120,
        netmask: '255.255.255.0', schedFlags: ['sh-port'], onePacket: true,
        dests: [{ daddr: '192.168.1.10', dport: 53, weight: 4, upperThreshold: 10, lowerThreshold: 5 }],
      },
      {
        protocol: 'tcp', vaddr: '10.0.0.1', vport: 443, scheduler: 'mh', persistence: 60,
        dests: [{ daddr: '192.168.1.20', dport: 443, weight: 9 }],
      },
    ],
  });
});

test('comments, blank lines, tabs and CRLF are ignored', () => {
  const text = [
    '# saved by ipvsadm-save -n',
    '',
    '   ',
    '-A -t 202.103.106.5:80 -s wrr   # web',
    '\t-a\t-t 202.103.106.5:80   -r 172.16.0.2:80 -m -w 1#no space before the hash',
    '  # indented comment',
    '-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 2\r',
    '-A -t 202.103.106.5:21 -s wrr\r',
    '-a -t 202.103.106.5:21 -r 172.16.0.3:21 -m -w 1',
  ].join('\n');
  assert.equal(parseRules(text), SEED_RULES);
  assert.equal(parseRules(''), { services: [] });
  assert.equal(parseRules('# nothing\n\n'), { services: [] });
});

test('after the command, options may come in any order, as with popt', () => {
  const rules = parseRules('-A -s wrr -t 202.103.106.5:80\n-a -w 2 -m -r 172.16.0.3:8000 -t 202.103.106.5:80\n');
  assert.equal(rules.services[0].scheduler, 'wrr');
  assert.equal(rules.services[0].dests, [{ daddr: '172.16.0.3', dport: 8000, weight: 2 }]);
  // ipvsadm.c parse_options: the first option must be a command (else tryhelp_exit).
  assert.match(thrown(() => parseRules('-s wrr -t 202.103.106.5:80 -A')).message, /no command/);
});

test('bundled short options, attached arguments and a leading "ipvsadm" word (config_stream_read)', () => {
  const rules = parseRules('ipvsadm -A -t202.103.106.5:80 -swrr -p60\nipvsadm -a -t 202.103.106.5:80 -mr 172.16.0.3:8000 -w2\n');
  assert.equal(rules.services[0].scheduler, 'wrr');
  assert.is(rules.services[0].persistence, 60);
  assert.equal(rules.services[0].dests, [{ daddr: '172.16.0.3', dport: 8000, weight: 2 }]);
});

test('-r without a port uses the service port; weight defaults to 1; scheduler to wlc', () => {
  const rules = parseRules('-A -t 10.0.0.1:8080\n-a -t 10.0.0.1:8080 -r 192.168.0.2 -m\n');
  assert.equal(rules.services, [{
    protocol: 'tcp', vaddr: '10.0.0.1', vport: 8080, scheduler: 'wlc',
    dests: [{ daddr: '192.168.0.2', dport: 8080, weight: 1 }],
  }]);
});

// IPVS_SVC_PERSISTENT_TIMEOUT is (6*60) in ipvsadm 1.31's libipvs/libipvs.h; the man page's 300 is wrong.
test('-p without a value is 360 seconds; with a value it is that value', () => {
  assert.is(parseRules('-A -t 10.0.0.1:80 -p').services[0].persistence, 360);
  assert.is(parseRules('-A -t 10.0.0.1:80 -p -s rr').services[0].persistence, 360);
  assert.is(parseRules('-A -t 10.0.0.1:80 -p -M 255.255.255.0').services[0].netmask, '255.255.255.0');
  assert.is(parseRules('-A -t 10.0.0.1:80 --persistent').services[0].persistence, 360);
  assert.is(parseRules('-A -t 10.0.0.1:80 -p 3600').services[0].persistence, 3600);
  assert.is(parseRules('-A -t 10.0.0.1:80 -s rr').services[0].persistence, undefined);
  assert.not.ok('persistence' in parseRules('-A -t 10.0.0.1:80').services[0]);
});

test('a service without a port is port 0, allowed only when persistent', () => {
  const rules = parseRules('-A -t 10.0.0.1 -p\n-a -t 10.0.0.1:0 -r 192.168.0.2 -m\n');
  assert.equal(rules.services[0].vport, 0);
  assert.equal(rules.services[0].dests, [{ daddr: '192.168.0.2', dport: 0, weight: 1 }]);
});

test('addresses are normalised; masks accept 0.0.0.0 and /32', () => {
  const rules = parseRules('-A -t 010.000.000.001:80 -p -M 0.0.0.0\n-a -t 10.0.0.1:80 -r 192.168.000.002:00080 -m\n-A -u 10.0.0.1:80 -p -M 255.255.255.255\n');
  assert.is(rules.services[0].vaddr, '10.0.0.1');
  assert.is(rules.services[0].netmask, '0.0.0.0');
  assert.equal(rules.services[0].dests[0], { daddr: '192.168.0.2', dport: 80, weight: 1 });
  assert.is(rules.services[1].netmask, '255.255.255.255');
});

test('same address and port under tcp and udp are two services; same daddr on two ports are two dests', () => {
  const rules = parseRules([
    '-A -t 10.0.0.1:53', '-A -u 10.0.0.1:53',
    '-a -t 10.0.0.1:53 -r 192.168.0.2:53 -m', '-a -t 10.0.0.1:53 -r 192.168.0.2:54 -m',
  ].join('\n'));
  assert.is(rules.services.length, 2);
  assert.equal(rules.services[0].dests.map((d) => d.dport), [53, 54]);
  assert.equal(rules.services[1].dests, []);
});

// Error fixtures. `text` is a whole file; `line` is where the error must be reported.
const SVC = '-A -t 10.0.0.1:80 -s wrr';
// Messages are ipvsadm.c's (fail(2, ...), generic_opt_check, set_option, popt's "missing argument")
// where ipvsadm has one.
const ERRORS: Array<{ description: string; text: string; code: ErrorCode; line: number; match?: RegExp }> = [
  { description: '-g (direct routing)', text: `${SVC}\n-a -t 10.0.0.1:80 -r 192.168.0.2 -g`, code: 'WASMVS_UNSUPPORTED', line: 2, match: /-g: wasmvs does not support direct routing/ },
  { description: '--gatewaying', text: `${SVC}\n-a -t 10.0.0.1:80 -r 192.168.0.2 --gatewaying`, code: 'WASMVS_UNSUPPORTED', line: 2, match: /--gatewaying/ },
  { description: '-i (ipip)', text: `${SVC}\n-a -t 10.0.0.1:80 -r 192.168.0.2 -i -w 1`, code: 'WASMVS_UNSUPPORTED', line: 2, match: /-i: wasmvs does not support IP-in-IP/ },
  { description: 'no forwarding method', text: `${SVC}\n\n-a -t 10.0.0.1:80 -r 192.168.0.2 -w 1`, code: 'WASMVS_UNSUPPORTED', line: 3, match: /default is -g \(direct routing\).*-m/ },
  { description: '-f fwmark service', text: '-A -f 1 -s wrr', code: 'WASMVS_UNSUPPORTED', line: 1, match: /-f: wasmvs does not support firewall-mark services/ },
  { description: 'bracketed IPv6 service', text: '-A -t [2001:db8::1]:80 -s wrr', code: 'WASMVS_UNSUPPORTED', line: 1, match: /IPv6/ },
  { description: 'IPv6 real server', text: `${SVC}\n-a -t 10.0.0.1:80 -r 2001:db8::2 -m`, code: 'WASMVS_UNSUPPORTED', line: 2, match: /IPv6/ },
  { description: '-6', text: '-A -f 1 -6', code: 'WASMVS_UNSUPPORTED', line: 1 },
  { description: '-E edit-service', text: `${SVC}\n-E -t 10.0.0.1:80 -s rr`, code: 'WASMVS_UNSUPPORTED', line: 2, match: /'edit-service' command is not supported in a rules file/ },
  { description: '-D delete-service', text: `${SVC}\n-D -t 10.0.0.1:80`, code: 'WASMVS_UNSUPPORTED', line: 2, match: /'delete-service' command/ },
  { description: '-e edit-server', text: '-e -t 10.0.0.1:80 -r 1.2.3.4 -m', code: 'WASMVS_UNSUPPORTED', line: 1, match: /'edit-server' command/ },
  { description: '-d delete-server', text: '-d -t 10.0.0.1:80 -r 1.2.3.4', code: 'WASMVS_UNSUPPORTED', line: 1, match: /'delete-server' command/ },
  { description: '-C clear', text: '-C', code: 'WASMVS_UNSUPPORTED', line: 1, match: /'flush' command/ },
  { description: '--set', text: '--set 900 120 300', code: 'WASMVS_UNSUPPORTED', line: 1, match: /'set' command/ },
  { description: '--pe', text: '-A -t 10.0.0.1:5060 -p --pe sip', code: 'WASMVS_UNSUPPORTED', line: 1, match: /--pe/ },
  { description: 'garbage word', text: 'hello world', code: 'WASMVS_RULES_SYNTAX', line: 1, match: /no command/ },
  { description: 'unknown option', text: '-A -t 10.0.0.1:80 --frobnicate', code: 'WASMVS_RULES_SYNTAX', line: 1, match: /--frobnicate/ },
  { description: 'no command', text: '-t 10.0.0.1:80 -s wrr', code: 'WASMVS_RULES_SYNTAX', line: 1, match: /no command/ },
  { description: 'two commands', text: '-A -a -t 10.0.0.1:80', code: 'WASMVS_RULES_SYNTAX', line: 1, match: /^line 1: invalid option `-a'$/ },
  { description: 'missing service', text: '-A -s wrr', code: 'WASMVS_RULES_SYNTAX', line: 1, match: /You need to supply the 'service-address' option for the 'add-service' command/ },
  { description: 'missing real server', text: `${SVC}\n-a -t 10.0.0.1:80 -m -w 1`, code: 'WASMVS_RULES_SYNTAX', line: 2, match: /You need to supply the 'real-server' option for the 'add-server' command/ },
  { description: 'option missing its argument (end of line)', text: '-A -t 10.0.0.1:80 -s', code: 'WASMVS_RULES_SYNTAX', line: 1, match: /-s: missing argument/ },
  { description: 'option missing its argument (next is an option)', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w -x 5`, code: 'WASMVS_BAD_WEIGHT', line: 2, match: /illegal weight specified/ },
  { description: 'duplicated option', text: '-A -t 10.0.0.1:80 -s wrr -s rr', code: 'WASMVS_RULES_SYNTAX', line: 1, match: /multiple 'scheduler' options specified/ },
  { description: '-t and -u together', text: '-A -t 10.0.0.1:80 -u 10.0.0.1:80', code: 'WASMVS_RULES_SYNTAX', line: 1, match: /multiple 'service-address' options specified/ },
  { description: 'service option on -a', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -s rr`, code: 'WASMVS_RULES_SYNTAX', line: 2, match: /Illegal 'scheduler' option with the 'add-server' command/ },
  { description: 'dest option on -A', text: '-A -t 10.0.0.1:80 -w 3', code: 'WASMVS_RULES_SYNTAX', line: 1, match: /Illegal 'weight' option with the 'add-service' command/ },
  { description: 'argument to a flag', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 --masquerading=yes`, code: 'WASMVS_RULES_SYNTAX', line: 2, match: /--masquerading: option does not take an argument/ },
  { description: 'duplicate service', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m\n-A -t 10.0.0.1:80 -s rr`, code: 'WASMVS_SERVICE_EXISTS', line: 3, match: /Service already exists/ },
  { description: 'real server for an undefined service', text: `${SVC}\n-a -t 10.0.0.1:81 -r 1.2.3.4 -m`, code: 'WASMVS_NO_SERVICE', line: 2, match: /Service not defined/ },
  { description: 'udp server for a tcp service', text: `${SVC}\n-a -u 10.0.0.1:80 -r 1.2.3.4 -m`, code: 'WASMVS_NO_SERVICE', line: 2 },
  { description: 'duplicate real server', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4:80 -m\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w 5`, code: 'WASMVS_DEST_EXISTS', line: 3, match: /Destination already exists/ },
  { description: 'bad service address', text: '-A -t 300.1.1.1:80', code: 'WASMVS_BAD_ADDRESS', line: 1, match: /300\.1\.1\.1/ },
  { description: 'host name as address', text: '-A -t www.example.com:80', code: 'WASMVS_BAD_ADDRESS', line: 1 },
  { description: 'bad real server address', text: `${SVC}\n-a -t 10.0.0.1:80 -r 192.168.0:80 -m`, code: 'WASMVS_BAD_ADDRESS', line: 2 },
  { description: 'port out of range', text: '-A -t 10.0.0.1:65536', code: 'WASMVS_BAD_PORT', line: 1 },
  { description: 'port by name', text: '-A -t 10.0.0.1:http', code: 'WASMVS_BAD_PORT', line: 1 },
  { description: 'empty real server port', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4: -m`, code: 'WASMVS_BAD_PORT', line: 2 },
  { description: 'port 0 without -p', text: '-A -t 10.0.0.1:0 -s rr', code: 'WASMVS_BAD_PORT', line: 1, match: /Zero port specified for non-persistent service/ },
  { description: 'weight too large', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w 65536`, code: 'WASMVS_BAD_WEIGHT', line: 2, match: /illegal weight specified/ },
  { description: 'weight not an integer', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -w 1.5`, code: 'WASMVS_BAD_WEIGHT', line: 2 },
  { description: 'persistence 0', text: '-A -t 10.0.0.1:80 -p 0', code: 'WASMVS_BAD_PERSISTENCE', line: 1 },
  { description: 'persistence over 24 days', text: '-A -t 10.0.0.1:80 -p 2073601', code: 'WASMVS_BAD_PERSISTENCE', line: 1 },
  { description: 'persistence not a number', text: '-A -t 10.0.0.1:80 -p 5m', code: 'WASMVS_BAD_PERSISTENCE', line: 1 },
  { description: '-o on a tcp service', text: '-A -t 10.0.0.1:80 -o', code: 'WASMVS_BAD_OPTION', line: 1, match: /only for UDP virtual services/ },
  { description: '-M without -p', text: '-A -t 10.0.0.1:80 -M 255.255.255.0', code: 'WASMVS_BAD_OPTION', line: 1, match: /needs -p/ },
  { description: 'non-contiguous netmask', text: '-A -t 10.0.0.1:80 -p -M 255.0.255.0', code: 'WASMVS_BAD_ADDRESS', line: 1, match: /contiguous/ },
  { description: 'netmask not an address', text: '-A -t 10.0.0.1:80 -p -M 24', code: 'WASMVS_BAD_ADDRESS', line: 1 },
  { description: 'unknown sched flag', text: '-A -t 10.0.0.1:80 -s sh -b sh-port,fast', code: 'WASMVS_BAD_OPTION', line: 1, match: /invalid scheduler flag `fast'/ },
  { description: 'threshold not a number (string_to_number)', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -x 2147483648`, code: 'WASMVS_RULES_SYNTAX', line: 2, match: /illegal u_threshold specified/ },
  { description: 'sh flag with another scheduler', text: '-A -t 10.0.0.1:80 -s wrr -b sh-port', code: 'WASMVS_BAD_OPTION', line: 1, match: /incompatible scheduler flag `sh-port'/ },
  { description: 'sh flag with the default scheduler', text: '-A -t 10.0.0.1:80 -b mh-port', code: 'WASMVS_BAD_OPTION', line: 1, match: /incompatible scheduler flag `mh-port'/ },
  { description: 'uppercase scheduler', text: '-A -t 10.0.0.1:80 -s WRR', code: 'WASMVS_UNKNOWN_SCHEDULER', line: 1, match: /scheduler "WRR" not found/ },
  { description: 'upper threshold out of range', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -x 65536`, code: 'WASMVS_BAD_OPTION', line: 2, match: /upper threshold \(-x\) must be an integer from 0 to 65535/ },
  { description: 'lower threshold not a number', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -x 9 -y ten`, code: 'WASMVS_RULES_SYNTAX', line: 2, match: /l_threshold/ },
  { description: 'lower threshold above upper', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -x 5 -y 10`, code: 'WASMVS_BAD_OPTION', line: 2, match: /lower threshold 10 is higher than upper threshold 5/ },
  { description: 'lower threshold without upper (kernel refuses l > u = 0)', text: `${SVC}\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -y 10`, code: 'WASMVS_BAD_OPTION', line: 2 },
];

ERRORS.forEach(({ description, text, code, line, match }, i) => {
  test(`error #${i + 1}: ${description}`, () => {
    const err = thrown(() => parseRules(text));
    assert.is(err.code, code, err.message);
    assert.is(err.line, line, err.message);
    assert.ok(err.message.startsWith(`line ${line}: `), err.message);
    if (match) assert.match(err.message, match);
  });
});

test('a file whose 5th line is bad throws about line 5 and returns nothing', () => {
  const text = [
    '# header',
    '-A -t 202.103.106.5:80 -s wrr',
    '-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1',
    '',
    '-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 70000',
    '-a -t 202.103.106.5:80 -r 172.16.0.4:80 -g',
  ].join('\n');
  let result: RuleSet | undefined;
  const err = thrown(() => { result = parseRules(text); });
  assert.is(result, undefined);
  assert.is(err.code, 'WASMVS_BAD_WEIGHT');
  assert.is(err.line, 5);
  assert.match(err.message, /^line 5: illegal weight specified/);
});

test('errors from addr.ts keep their code and gain the line, with the original as cause', () => {
  const err = thrown(() => parseRules(`${SVC}\n# comment\n-A -u 1.2.3:80`));
  assert.is(err.code, 'WASMVS_BAD_ADDRESS');
  assert.is(err.line, 3);
  assert.is(err.message, 'line 3: "1.2.3" is not an IPv4 address');
  assert.instance(err.cause, WasmvsError);
  assert.is((err.cause as WasmvsError).line, undefined);
});

test('parseRules is pure: results are independent and errors leave nothing behind', () => {
  const a = parseRules(SEED);
  a.services[0].dests.push({ daddr: '9.9.9.9', dport: 9, weight: 9 });
  a.services.pop();
  assert.equal(parseRules(SEED), SEED_RULES);
  thrown(() => parseRules(`${SEED}-A -t 202.103.106.5:80`));
  assert.equal(parseRules(SEED), SEED_RULES);
});

// The same bad value gives the same code and message from a rules file and from the API: one
// validator (host/engine/spec.ts) checks both.
test('rules file and API agree on every value check, code and message', async () => {
  const { Engine } = await import('../host/engine/engine.js');
  const cases: Array<[string, (e: InstanceType<typeof Engine>) => void]> = [
    ['-A -t 10.0.0.1:80 -p -M 255.0.255.0', (e) => e.addService({ protocol: 'tcp', vaddr: '10.0.0.1', vport: 80, persistence: 300, netmask: '255.0.255.0' })],
    ['-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 1.2.3.4 -m -x 5 -y 10', (e) => {
      e.addService({ protocol: 'tcp', vaddr: '10.0.0.1', vport: 80 });
      e.addDest({ protocol: 'tcp', vaddr: '10.0.0.1', vport: 80 }, { daddr: '1.2.3.4', upperThreshold: 5, lowerThreshold: 10 });
    }],
    ['-A -t 10.0.0.1:0 -s rr', (e) => e.addService({ protocol: 'tcp', vaddr: '10.0.0.1', vport: 0 })],
    ['-A -t 10.0.0.1:80 -o', (e) => e.addService({ protocol: 'tcp', vaddr: '10.0.0.1', vport: 80, onePacket: true })],
    ['-A -t 10.0.0.1:80 -M 255.255.255.0', (e) => e.addService({ protocol: 'tcp', vaddr: '10.0.0.1', vport: 80, netmask: '255.255.255.0' })],
  ];
  for (const [text, api] of cases) {
    const fromRules = (() => { try { parseRules(text); } catch (e) { return e as WasmvsError; } return undefined; })();
    const e = new Engine({ connCapacity: 16, slotCount: 4 });
    const fromApi = (() => { try { api(e); } catch (err) { return err as WasmvsError; } return undefined; })();
    assert.ok(fromRules && fromApi, text);
    assert.is(fromRules.code, fromApi.code, text);
    assert.is(fromRules.message.replace(/^line \d+: /, ''), fromApi.message, text);
  }
});

test.run();
