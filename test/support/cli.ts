// Runs the wasmvs command (from sources, as the tests' gateways run) and returns how it
// ended, for tests of refusals: usage errors exit 2, refusals 1, both with one stderr line.
import { execFileSync } from 'node:child_process';
import { cliArgv } from '../../host/testbed/gateway.js';

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function runCli(args: readonly string[], timeoutMs = 30_000): CliResult {
  const argv = cliArgv(args);
  try {
    const stdout = execFileSync(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, encoding: 'utf8' });
    return { status: 0, stdout, stderr: '' };
  } catch (e) {
    const err = e as { status: number | null; stdout?: string; stderr?: string };
    return { status: err.status ?? -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
