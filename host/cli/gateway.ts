// wasmvs gateway: the standalone director (host/gateway/). Prints exactly one line with the
// word "ready" on stdout once it forwards; logs go to stderr. SIGHUP re-reads the rules,
// SIGINT/SIGTERM stop it and remove everything it added to the host.
//
// With --keepalived FILE instead of --rules, the table comes from keepalived.conf's
// virtual_server blocks and keepalived's checkers keep it (host/health/): the file is read
// whole first (a bad file refuses the start), the gateway starts with the table the health
// state begins with, then the checkers start. SIGHUP re-reads the file with keepalived's
// reload semantics; a bad file changes nothing.
import { parseArgs } from 'node:util';
import { DEFAULT_CONTROL_PATH } from '../control/protocol.js';
import { Gateway } from '../gateway/gateway.js';
import { createLogger, type LogFormat } from '../gateway/log.js';
import { healthManagerFor } from '../health/attach.js';
import { loadKeepalived, type KeepalivedConfig } from '../health/config.js';
import type { HealthManager } from '../health/manager.js';
import { HealthState } from '../health/state.js';
import { emitRules } from '../ipvsadm/rules.js';
import { UsageError } from './usage.js';

function positiveInt(text: string | undefined, name: string, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) throw new UsageError(`${name} takes a whole number from 1 to ${max} (got "${text}")`);
  return Number(text);
}

/** --ftp-ports LIST: comma-separated virtual ports for the FTP helper; empty turns it off. */
export function parseFtpPorts(text: string): number[] {
  if (text.trim() === '') return [];
  const ports = text.split(',').map((p) => p.trim());
  const seen = new Set<number>();
  for (const p of ports) {
    if (!/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new UsageError(`--ftp-ports takes ports from 1 to 65535, comma-separated (got "${p}")`);
    if (seen.has(Number(p))) throw new UsageError(`--ftp-ports lists port ${p} twice`);
    seen.add(Number(p));
  }
  return [...seen];
}

/** FTP helper reports, one log line at most every 10 s (a client could send them at will). */
const FTP_LOG_MS = 10_000;

export async function runGateway(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      rules: { type: 'string' },
      keepalived: { type: 'string' },
      tun: { type: 'string' },
      control: { type: 'string' },
      'no-offload': { type: 'boolean', default: false },
      'writer-thread': { type: 'boolean', default: false },
      'no-writer-thread': { type: 'boolean', default: false },
      'napi-thread': { type: 'boolean', default: false },
      'no-napi-thread': { type: 'boolean', default: false },
      'no-io-uring': { type: 'boolean', default: false },
      'real-server-iface': { type: 'string', multiple: true },
      'arp-iface': { type: 'string', multiple: true },
      'conn-capacity': { type: 'string' },
      mtu: { type: 'string' },
      'ftp-ports': { type: 'string' },
      verbose: { type: 'boolean', default: false },
      'log-format': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) throw new UsageError('gateway --help: see the usage below');
  if (positionals.length > 0) throw new UsageError(`gateway takes no arguments besides options (got "${positionals[0]}")`);
  if (values.rules !== undefined && values.keepalived !== undefined) throw new UsageError('--rules and --keepalived exclude each other: give one');
  if (values.rules === undefined && values.keepalived === undefined) throw new UsageError('gateway needs --rules FILE or --keepalived FILE');
  if (values['writer-thread'] && values['no-writer-thread']) throw new UsageError('--writer-thread and --no-writer-thread exclude each other: give one');
  const writerThread = values['writer-thread'] ? true : values['no-writer-thread'] ? false : undefined;
  if (values['napi-thread'] && values['no-napi-thread']) throw new UsageError('--napi-thread and --no-napi-thread exclude each other: give one');
  const napiThread = values['napi-thread'] ? true : values['no-napi-thread'] ? false : undefined;
  const format = values['log-format'] ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError(`--log-format is text or json (got "${format}")`);
  const log = createLogger({ format: format as LogFormat, verbose: values.verbose });
  const control = values.control ?? process.env.WASMVS_CONTROL ?? DEFAULT_CONTROL_PATH;
  const ftpPorts = values['ftp-ports'] === undefined ? undefined : parseFtpPorts(values['ftp-ports']);

  // keepalived.conf: parsed (and refused) before anything on the host changes.
  const keepalivedFile = values.keepalived;
  let health: HealthManager | undefined;
  let startRules: string | undefined;
  let startConfig: KeepalivedConfig | undefined;
  if (keepalivedFile !== undefined) {
    startConfig = loadKeepalived(keepalivedFile);
    // The table the health state starts with (alpha servers out, a sorry server in when the
    // quorum is down), so that forwarding never starts from a table the checkers then undo.
    startRules = emitRules(new HealthState(startConfig).desiredTable());
  }

  const gw = await Gateway.start({
    ...(startRules !== undefined ? { rules: startRules } : { rulesFile: values.rules }),
    tun: values.tun,
    control,
    offload: !values['no-offload'],
    ...(writerThread === undefined ? {} : { writerThread }),
    ...(napiThread === undefined ? {} : { napiThread }),
    ...(values['no-io-uring'] ? { ioUring: false } : {}),
    realServerIfaces: values['real-server-iface'],
    arpIfaces: values['arp-iface'],
    connCapacity: positiveInt(values['conn-capacity'], '--conn-capacity', 0xffffff),
    mtu: positiveInt(values.mtu, '--mtu', 65535),
    ...(ftpPorts === undefined ? {} : { engine: { ftpPorts } }),
    logger: log,
  });
  // What the FTP helper did not translate (a command or reply cut by a segment's end, a 227
  // with no room to grow, ...): logged, at most one line per FTP_LOG_MS with the count since.
  let ftpLogged = -Infinity;
  let ftpQuiet = 0;
  gw.engine.on('ftp', (e) => {
    const now = performance.now();
    if (now - ftpLogged < FTP_LOG_MS) { ftpQuiet++; return; }
    log.warn('ftp', `${e.what} on ${e.caddr}:${e.cport} -> ${e.vaddr}:${e.vport} (${e.daddr}:${e.dport})${ftpQuiet ? `; ${ftpQuiet} more since the last report` : ''}`);
    ftpLogged = now;
    ftpQuiet = 0;
  });

  // Whatever ends the process, the host is left as it was: an orderly stop on a signal, a
  // synchronous cleanup on a crash or an exit the stop did not reach.
  process.on('exit', () => gw.stopSync());
  process.on('uncaughtException', (err) => {
    log.error('crash', err.stack ?? String(err));
    gw.stopSync();
    process.exit(1);
  });
  if (keepalivedFile !== undefined) {
    health = healthManagerFor(gw, startConfig as KeepalivedConfig, log);
    health.start();
    gw.on('stopped', () => { void health?.stop(); });
  }
  let reloading: Promise<void> = Promise.resolve();
  process.on('SIGHUP', () => {
    if (health === undefined) {
      gw.reload().catch(() => { /* logged by reload; the running configuration stays */ });
      return;
    }
    const manager = health;
    // One reload at a time; a bad file is logged and changes nothing.
    reloading = reloading.then(async () => {
      try {
        const next = loadKeepalived(keepalivedFile as string);
        await manager.reload(next);
        log.info('reload', `${keepalivedFile} re-read: ${next.virtualServers.length} virtual servers`);
      } catch (err) {
        log.error('reload', `refused, the running configuration is unchanged: ${(err as Error).message}`);
      }
    });
  });
  const stopped = new Promise<number>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      if (++signals > 1) { log.warn('stop', `${sig} again: exiting now`); gw.stopSync(); process.exit(1); }
      log.info('stop', `${sig}: stopping`);
      (health ? health.stop() : Promise.resolve()).then(() => gw.stop()).then(() => resolve(0), (err: unknown) => {
        log.error('stop', (err as Error).message);
        resolve(1);
      });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    // Stopped without a signal: the gateway gave up (its device went away); that is a failure.
    gw.on('stopped', () => resolve(signals > 0 ? 0 : 1));
  });
  gw.on('error', () => { /* logged by the gateway; forwarding goes on */ });
  const info = gw.info();
  process.stdout.write(`wasmvs gateway ready: ${info.device} (offload ${info.offload ? 'on' : 'off'}), control ${control}, pid ${info.pid}\n`);
  return stopped;
}

