// Tests for host/ipvsadm/format.ts: every table as ipvsadm prints it, from fixed inputs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ConnInfo } from '../host/engine/engine.js';
import type { ServiceStats } from '../host/engine/stats.js';
import { formatConnections, formatLargeNum, formatStatsTable } from '../host/ipvsadm/format.js';

const NO_RATES = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

// ---- totals and rates ----------------------------------------------------------------

test('formatLargeNum: print_largenum\'s 9 columns, K/M/G/T from 10^8 on, and --exact', () => {
  // Expected strings made with printf("%9llu") / ("%8lluK") ... as ipvsadm.c print_largenum.
  const cases: Array<[number, boolean, string]> = [
    [0, false, '        0'],
    [99_999_999, false, ' 99999999'],
    [100_000_000, false, '  100000K'],
    [999_999_999, false, '  999999K'],
    [1_000_000_000, false, '    1000M'],
    [99_999_999_999, false, '   99999M'],
    [100_000_000_000, false, '     100G'],
    [99_999_999_999_999, false, '   99999G'],
    [100_000_000_000_000, false, '     100T'],
    [123, true, '      123'],
    [12_345_678, true, ' 12345678'],
    [123_456_789, true, ' 123456789'],
  ];
  for (const [n, exact, want] of cases) assert.is(formatLargeNum(n, exact), want, `${n}${exact ? ' exact' : ''}`);
});

const z = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, ...NO_RATES };
// Given out of order: ipvsadm sorts services by protocol, address (as a number: 9.x before
// 10.x), port, and real servers by address and port (172.16.0.9 before 172.16.0.10).
const TABLE: ServiceStats[] = [
  { protocol: 'udp', vaddr: '10.0.0.1', vport: 53, ...z, dests: [] },
  {
    protocol: 'tcp', vaddr: '10.0.0.1', vport: 80,
    conns: 123_456_789, inPkts: 1e9, outPkts: 5, inBytes: 1e14, outBytes: 99_999_999,
    cps: 123_456_789, inPps: 0, outPps: 7, inBps: 1e11, outBps: 12,
    dests: [
      { daddr: '172.16.0.10', dport: 8000, conns: 1, inPkts: 2, outPkts: 3, inBytes: 4, outBytes: 5, cps: 123_456_789, inPps: 1, outPps: 2, inBps: 3, outBps: 4 },
      { daddr: '172.16.0.9', dport: 8000, ...z },
    ],
  },
  { protocol: 'tcp', vaddr: '9.255.255.255', vport: 80, conns: 1, inPkts: 2, outPkts: 3, inBytes: 4, outBytes: 5, cps: 6, inPps: 7, outPps: 8, inBps: 9, outBps: 10, dests: [] },
];

test('formatStatsTable: ipvsadm -L -n --stats, sorted, large numbers shortened', () => {
  // Made with C-style printf from ipvsadm.c's formats: print_title "%-33s %8s %8s %8s %8s %8s",
  // a service "%-33s" + print_largenum x5, a real server "  -> %-28s" + print_largenum x5.
  assert.is(formatStatsTable(TABLE, 'stats'), [
    'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes',
    '  -> RemoteAddress:Port',
    'TCP  9.255.255.255:80                    1        2        3        4        5',
    'TCP  10.0.0.1:80                   123456K    1000M        5     100T 99999999',
    '  -> 172.16.0.9:8000                     0        0        0        0        0',
    '  -> 172.16.0.10:8000                    1        2        3        4        5',
    'UDP  10.0.0.1:53                         0        0        0        0        0',
    '',
  ].join('\n'));
  assert.is(formatStatsTable(TABLE, 'stats', true).split('\n')[3],
    'TCP  10.0.0.1:80                  123456789 1000000000        5 100000000000000 99999999');
});

test('formatStatsTable: ipvsadm -L -n --rate, a real server\'s CPS and PPS as plain %8u', () => {
  assert.is(formatStatsTable(TABLE, 'rate'), [
    'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS',
    '  -> RemoteAddress:Port',
    'TCP  9.255.255.255:80                    6        7        8        9       10',
    'TCP  10.0.0.1:80                   123456K        0        7     100G       12',
    '  -> 172.16.0.9:8000                     0        0        0        0        0',
    '  -> 172.16.0.10:8000             123456789        1        2        3        4',
    'UDP  10.0.0.1:53                         0        0        0        0        0',
    '',
  ].join('\n'));
});

test('formatConnections: ipvsadm -L -n -c, expire as mm:ss, columns padded', () => {
  const conns: ConnInfo[] = [
    { protocol: 'tcp', caddr: '198.18.0.10', cport: 40000, vaddr: '198.18.1.1', vport: 80, daddr: '198.19.0.2', dport: 8080, state: 'ESTABLISHED', expiresIn: 899_999 },
    { protocol: 'udp', caddr: '198.18.0.11', cport: 53000, vaddr: '198.18.1.1', vport: 53, daddr: '198.19.0.3', dport: 53, state: 'UDP', expiresIn: 0 },
  ];
  // ipvsadm.c print_conn: "%-3s %02ld:%02ld  %-11s %-18s %-18s %s".
  assert.is(formatConnections(conns), [
    'IPVS connection entries',
    'pro expire state       source             virtual            destination',
    'TCP 14:59  ESTABLISHED 198.18.0.10:40000  198.18.1.1:80      198.19.0.2:8080',
    'UDP 00:00  UDP         198.18.0.11:53000  198.18.1.1:53      198.19.0.3:53',
    '',
  ].join('\n'));
});

test.run();
