// Starting `wasmvs gateway` in the testbed's director namespace, as an operator would run it:
// the real CLI, a rules file, its own control socket. Used by `wasmvs demo`, the end-to-end
// tests and the gateway benchmark.
//
// The CLI is located like the testbed's programs (servers.ts): host/cli/main.ts under tsx
// from sources, build/host/cli/main.js from the build. The control socket is a Unix socket
// path, which works across network namespaces: a client in the host's namespace (the demo,
// a test) talks to a gateway in the director's.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WasmvsError } from '../errors.js';
import { scriptArgv } from './servers.js';
import type { NsProcess, Testbed } from './topology.js';

/** argv that runs the wasmvs command with `args`. */
export function cliArgv(args: readonly string[]): string[] {
  return scriptArgv('../cli/main', args);
}

export interface TestbedGatewayOptions {
  /** The rules, ipvsadm-save syntax (one of rules, keepalived). */
  rules?: string;
  /** A keepalived.conf: the gateway runs with --keepalived and its health checks. */
  keepalived?: string;
  /** false: --no-offload. */
  offload?: boolean;
  /** More command-line options (--real-server-iface rsbr, --verbose ...). */
  args?: readonly string[];
  /** How long it may take to print "ready" (default 20 s). */
  readyTimeoutMs?: number;
}

export interface TestbedGateway {
  process: NsProcess;
  /** Its control socket (for connectControl / wasmvs adm --control). */
  control: string;
  /** Its rules file (or keepalived.conf): rewrite it and send SIGHUP to reload. */
  rulesFile: string;
  /** Replaces the rules file (or keepalived.conf) and sends SIGHUP; resolves once the reload is logged. */
  reload(rules: string): Promise<void>;
  /** SIGTERM, waits for the exit; returns the exit code. */
  stop(): Promise<number | null>;
}

/** Starts the gateway in the director namespace and waits for its "ready" line. */
export async function startGateway(tb: Testbed, options: TestbedGatewayOptions): Promise<TestbedGateway> {
  if ((options.rules === undefined) === (options.keepalived === undefined)) throw new WasmvsError('WASMVS_BAD_OPTION', 'startGateway takes exactly one of rules, keepalived');
  const dir = mkdtempSync(join(tmpdir(), 'wasmvs-gw-'));
  const keepalived = options.keepalived !== undefined;
  const rulesFile = join(dir, keepalived ? 'keepalived.conf' : 'lvs.rules');
  const control = join(dir, 'wasmvs.sock');
  writeFileSync(rulesFile, (options.rules ?? options.keepalived) as string);
  const args = ['gateway', keepalived ? '--keepalived' : '--rules', rulesFile, '--control', control, ...(options.offload === false ? ['--no-offload'] : []), ...(options.args ?? [])];
  const proc = tb.spawn(tb.director.ns, cliArgv(args));
  try {
    await proc.waitForLine(/ready/, options.readyTimeoutMs ?? 20_000);
  } catch (err) {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`gateway did not start: ${(err as Error).message}\n${proc.stderr.text()}`);
  }
  let reloads = 0;
  return {
    process: proc,
    control,
    rulesFile,
    async reload(rules: string) {
      writeFileSync(rulesFile, rules);
      const seen = ++reloads;
      proc.kill('SIGHUP');
      // The n-th "reload:" line on stderr is this one's.
      const until = Date.now() + 10_000;
      while (proc.stderr.text().split('\n').filter((l) => / reload: /.test(l)).length < seen) {
        if (Date.now() > until || !proc.running) throw new Error(`gateway did not reload:\n${proc.stderr.text()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      const exit = await proc.stop(5000);
      rmSync(dir, { recursive: true, force: true });
      return exit.code;
    },
  };
}
