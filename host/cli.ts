#!/usr/bin/env node
// The wasmvs command. Exit status: 0 success, 1 a bad input (rules, capture, file), 2 a
// usage error. Errors go to stderr as "wasmvs: CODE: message".
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { WasmvsError } from './errors.js';
import { formatConnections, formatSummary, replay } from './replay.js';
import { formatStatsTable } from './stats.js';
import type { Timeouts } from './engine.js';

const USAGE = `Usage: wasmvs <command> [options]

Commands:
  replay --rules FILE IN.pcap OUT.pcap [--connections] [--stats] [--rate] [--exact]
         [--json] [--set TCP,TCPFIN,UDP]
      Feeds every packet of IN.pcap, in file order and with its timestamp as the clock,
      through the engine configured by FILE (ipvsadm-save syntax). Forwarded (rewritten)
      and passed packets go to OUT.pcap in the input's link type; dropped and refused
      packets are left out. Prints a summary: packets by verdict and reason, connections
      created and expired, new connections per real server.
        --rules FILE      rules, one per line: -A -t|-u VIP:port -s SCHED [-p SECONDS]
                          and -a -t|-u VIP:port -r RIP:port -m [-w WEIGHT]
        --connections     also print the final connection table (ipvsadm -L -n -c)
        --stats           also print totals per service and real server (ipvsadm -L -n
                          --stats: Conns, InPkts, OutPkts, InBytes, OutBytes)
        --rate            also print rates as IPVS's estimator gives them at the last
                          packet (ipvsadm -L -n --rate: CPS, InPPS, OutPPS, InBPS, OutBPS)
        --exact           with --stats/--rate, every digit (no K, M, G, T)
        --json            print the summary (and tables) as one JSON object on stdout;
                          --stats or --rate add "statistics" (totals and rates)
        --set T,F,U       timeouts in seconds as ipvsadm --set tcp tcpfin udp (0 = keep)

Options:
  -h, --help       this text
  -V, --version    the version
`;

class UsageError extends Error {}

/** The package version, from host/ (sources) or build/host/ (compiled). */
function version(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'wasmvs') return pkg.version;
    } catch {
      // not this one
    }
  }
  return 'unknown';
}

function parseSet(text: string): Partial<Timeouts> {
  const parts = text.split(',');
  if (parts.length !== 3 || parts.some((p) => !/^\d+$/.test(p))) {
    throw new UsageError(`--set takes three whole numbers of seconds, TCP,TCPFIN,UDP (got "${text}")`);
  }
  const [tcp, tcpfin, udp] = parts.map(Number);
  return { tcp, tcpfin, udp };
}

function readInput(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new WasmvsError('WASMVS_FILE', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function runReplay(argv: string[]): void {
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
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (!values.rules) throw new UsageError('replay needs --rules FILE');
  if (positionals.length !== 2) throw new UsageError(`replay needs IN.pcap and OUT.pcap (got ${positionals.length} file names)`);
  const [inPath, outPath] = positionals;
  let rules: string;
  try {
    rules = readFileSync(values.rules, 'utf8');
  } catch (e) {
    throw new WasmvsError('WASMVS_FILE', `cannot read rules file ${values.rules}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const input = readInput(inPath, 'capture');
  const result = replay({ rules, input, ...(values.set ? { timeouts: parseSet(values.set) } : {}) });
  try {
    writeFileSync(outPath, result.output);
  } catch (e) {
    throw new WasmvsError('WASMVS_FILE', `cannot write ${outPath}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (values.json) {
    const out = {
      ...result.summary,
      ...(values.stats || values.rate ? { statistics: result.statistics } : {}),
      ...(values.connections ? { connectionTable: result.connections } : {}),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  process.stdout.write(formatSummary(result.summary));
  if (values.stats) process.stdout.write(formatStatsTable(result.statistics, 'stats', values.exact));
  if (values.rate) process.stdout.write(formatStatsTable(result.statistics, 'rate', values.exact));
  if (values.connections) process.stdout.write(formatConnections(result.connections));
}

export function main(argv: string[]): number {
  try {
    const [command, ...rest] = argv;
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    }
    if (command === '-V' || command === '--version') {
      process.stdout.write(`wasmvs ${version()}\n`);
      return 0;
    }
    if (command === 'replay') {
      runReplay(rest);
      return 0;
    }
    throw new UsageError(`unknown command "${command}"`);
  } catch (e) {
    if (e instanceof UsageError || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`wasmvs: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (e instanceof WasmvsError) {
      process.stderr.write(`wasmvs: ${e.code}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

process.exitCode = main(process.argv.slice(2));
