#!/usr/bin/env node
// The wasmvs command. Exit status: 0 success, 1 a bad input (rules, capture, file), 2 a
// usage error. Errors go to stderr as "wasmvs: CODE: message".
//
// One module per command; a command is one line in COMMANDS. A command returns its exit
// status (a long-running one, such as a gateway, may return a promise of it).
import { basename } from 'node:path';
import { WasmvsError } from '../errors.js';
import { packageVersion } from '../version.js';
import { runAdm } from './adm.js';
import { runDemo } from './demo.js';
import { runGateway } from './gateway.js';
import { runReplay } from './replay.js';
import { USAGE, UsageError } from './usage.js';

type Command = (argv: string[]) => number | Promise<number>;

const COMMANDS: Record<string, Command> = {
  replay: runReplay,
  gateway: runGateway,
  demo: runDemo,
  adm: (argv) => runAdm(argv),
};

function report(e: unknown): number {
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

export async function main(argv: string[]): Promise<number> {
  try {
    const [command, ...rest] = argv;
    if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    }
    if (command === '-V' || command === '--version') {
      process.stdout.write(`wasmvs ${packageVersion()}\n`);
      return 0;
    }
    const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
    if (run === undefined) throw new UsageError(`unknown command "${command}"`);
    return await run(rest);
  } catch (e) {
    return report(e);
  }
}

// Through a link named ipvsadm (ln -s $(command -v wasmvs) ~/bin/ipvsadm), the command is
// `wasmvs adm`, so scripts written for ipvsadm run unchanged.
process.exitCode = basename(process.argv[1] ?? '') === 'ipvsadm'
  ? await runAdm(process.argv.slice(2), { program: 'ipvsadm' })
  : await main(process.argv.slice(2));
