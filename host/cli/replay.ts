// wasmvs replay: a capture through the engine configured by a rules file (host/replay/).
import { parseArgs } from 'node:util';
import type { Timeouts } from '../engine/engine.js';
import { formatConnections, formatStatsTable } from '../ipvsadm/format.js';
import { formatSummary, replay } from '../replay/replay.js';
import { readInput, USAGE, UsageError, writeOutput } from './usage.js';

function parseSet(text: string): Partial<Timeouts> {
  const parts = text.split(',');
  if (parts.length !== 3 || parts.some((p) => !/^\d+$/.test(p))) {
    throw new UsageError(`--set takes three whole numbers of seconds, TCP,TCPFIN,UDP (got "${text}")`);
  }
  const [tcp, tcpfin, udp] = parts.map(Number);
  return { tcp, tcpfin, udp };
}

export function runReplay(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      rules: { type: 'string' },
      connections: { type: 'boolean', default: false },
      stats: { type: 'boolean', default: false },
      rate: { type: 'boolean', default: false },
      exact: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      set: { type: 'string' },
      replies: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.rules) throw new UsageError('replay needs --rules FILE');
  if (positionals.length !== 2) throw new UsageError(`replay needs IN.pcap and OUT.pcap (got ${positionals.length} file names)`);
  const [inPath, outPath] = positionals;
  const rules = readInput(values.rules, 'rules file').toString('utf8');
  const input = readInput(inPath, 'capture');
  const result = replay({ rules, input, replies: values.replies !== undefined, ...(values.set ? { timeouts: parseSet(values.set) } : {}) });
  writeOutput(outPath, result.output);
  if (values.replies !== undefined && result.replies) writeOutput(values.replies, result.replies);
  if (values.json) {
    const out = {
      ...result.summary,
      ...(values.stats || values.rate ? { statistics: result.statistics } : {}),
      ...(values.connections ? { connectionTable: result.connections } : {}),
      ...(result.replyCounters ? { replies: result.replyCounters } : {}),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return 0;
  }
  process.stdout.write(formatSummary(result.summary));
  if (result.replyCounters) {
    const r = result.replyCounters;
    process.stdout.write(`replies (to ${values.replies})\n  tcp-reset ${r.tcpReset}, port-unreachable ${r.portUnreachable}, echo-reply ${r.echoReply}, protocol-unreachable ${r.protocolUnreachable}; rate-limited ${r.rateLimited}, not answered ${r.notAnswered}\n`);
  }
  if (values.stats) process.stdout.write(formatStatsTable(result.statistics, 'stats', values.exact));
  if (values.rate) process.stdout.write(formatStatsTable(result.statistics, 'rate', values.exact));
  if (values.connections) process.stdout.write(formatConnections(result.connections));
  return 0;
}
