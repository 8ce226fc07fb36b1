// Runs keepalived's checkers over a running table: schedules each checker (first after a
// random part of its warmup, then delay_loop or delay_before_retry as the state machine
// says), feeds results to the state machine (state.ts), and applies the table it asks for,
// logs each transition, emits the typed events and runs notify/quorum scripts.
//
// A checker never blocks the data plane: every check is asynchronous (sockets, child
// processes), at most `maxConcurrent` run at once (the rest wait their turn), each is bounded
// in time (connect_timeout, misc_timeout, and here delay_loop + connect_timeout as a last
// resort), and each has at most one check in flight. A checker that throws counts as a failed
// check; a table change the engine refuses is logged and retried with the next one. Nothing
// here can stop forwarding.
//
// Time is an argument: the clock (now, timers) and the check runner are injectable, so the
// state machine's timing is tested with a fake clock and scripted results.
import { spawn } from 'node:child_process';
import type { Protocol } from '../addr.js';
import type { RuleSet } from '../ipvsadm/rules.js';
import { silentLogger, type Logger } from '../gateway/log.js';
import type { CheckerConfig, KeepalivedConfig } from './config.js';
import { HealthState, type CheckerState, type CheckResult, type HealthEffect, type RealServerState, type VirtualServerState } from './state.js';
import { runDnsCheck } from './checkers/dns.js';
import { runHttpCheck } from './checkers/http.js';
import { runMiscCheck, KILL_GRACE_MS } from './checkers/misc.js';
import { describeError, runTcpCheck } from './checkers/tcp.js';
import { runUdpCheck } from './checkers/udp.js';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export type RunCheck = (config: CheckerConfig, signal: AbortSignal) => Promise<CheckResult>;

/** The real checkers, by type. */
export const runCheck: RunCheck = (config, signal) => {
  switch (config.type) {
    case 'TCP_CHECK': return runTcpCheck(config, signal);
    case 'HTTP_GET': case 'SSL_GET': return runHttpCheck(config, signal);
    case 'UDP_CHECK': return runUdpCheck(config, signal);
    case 'DNS_CHECK': return runDnsCheck(config, signal);
    case 'MISC_CHECK': return runMiscCheck(config, signal);
  }
};

export interface ServiceRef { protocol: Protocol; vaddr: string; vport: number }

/** A real server went in or out of its virtual server's pool. */
export interface DestHealthEvent {
  /** keepalived's name of the virtual server ([198.18.100.10]:tcp:80, or the group). */
  virtualServer: string;
  services: ServiceRef[];
  daddr: string;
  /** 0: the port of each service. */
  dport: number;
  /** The weight it has in the pool while up. */
  weight: number;
  /** inhibit_on_failure: while down it stays at weight 0 instead of leaving the table. */
  inhibit: boolean;
}

/** A virtual server's live weight crossed its quorum. */
export interface QuorumEvent {
  virtualServer: string;
  services: ServiceRef[];
  weightSum: number;
  threshold: number;
  quorum: number;
  hysteresis: number;
  /** The sorry server (address:port) now in (quorum-lost) or out (quorum-gained), if any. */
  sorryServer?: string;
}

export interface HealthEvents {
  'dest-up': DestHealthEvent;
  'dest-down': DestHealthEvent;
  'quorum-lost': QuorumEvent;
  'quorum-gained': QuorumEvent;
}

/** One checker's health as the control protocol reports it. */
export interface CheckerStatus {
  type: CheckerConfig['type'];
  up: boolean;
  hasRun: boolean;
  retries: number;
  last?: { at: number; ok: boolean; detail: string };
}
export interface RealServerStatus { daddr: string; dport: number; alive: boolean; weight: number; inhibit: boolean; checkers: CheckerStatus[] }
export interface VirtualServerStatus {
  name: string;
  services: ServiceRef[];
  quorumUp: boolean;
  weightSum: number;
  quorum: number;
  hysteresis: number;
  sorryServer?: { address: string; in: boolean };
  realServers: RealServerStatus[];
}

export interface HealthManagerOptions {
  /** Makes the running table equal to `table` (by difference). */
  apply(table: RuleSet): Promise<void>;
  /** Typed events (the Gateway's emit). */
  emit?: <K extends keyof HealthEvents>(event: K, payload: HealthEvents[K]) => void;
  logger?: Logger;
  clock?: Clock;
  runCheck?: RunCheck;
  /** Runs a notify_up/notify_down/quorum_up/quorum_down script (default: spawn, detached). */
  runScript?: (argv: string[], why: string) => void;
  /** Checks running at once, at most (default 64). */
  maxConcurrent?: number;
  /** Before any checker's first run (keepalived's BOOTSTRAP_DELAY, 1 s). */
  bootstrapDelay?: number;
  /** [0, 1) for the random part of warmup (default Math.random). */
  random?: () => number;
}

/** A checker's schedule, kept across reloads while its configuration stays the same. */
interface Runner {
  key: string;
  timer: unknown;
  running: AbortController | undefined;
  done: Promise<void> | undefined;
  startedAt: number;
}

const DEFAULT_MAX_CONCURRENT = 64;
const BOOTSTRAP_DELAY = 1000;
/** Bounds a notify script that does not end on its own. */
const SCRIPT_TIMEOUT_MS = 60_000;

function checkerKey(vs: VirtualServerState, rs: RealServerState, c: CheckerState): string {
  const { where: _where, ...config } = c.config;
  return `${vs.config.id}|${rs.config.daddr}:${rs.config.dport}|${c.index}|${JSON.stringify(config)}`;
}

/** Runs a script without a shell, detached, output discarded; bounded by SCRIPT_TIMEOUT_MS. */
function spawnScript(argv: string[], why: string, log: Logger): void {
  try {
    const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore', detached: true });
    const timer = setTimeout(() => { try { process.kill(-(child.pid as number), 'SIGTERM'); } catch { /* gone */ } }, SCRIPT_TIMEOUT_MS);
    timer.unref();
    child.on('error', (err) => { clearTimeout(timer); log.warn('health', `${why}: cannot run ${argv[0]}: ${describeError(err)}`); });
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      if (code !== 0) log.warn('health', `${why}: ${argv[0]} ${code === null ? `killed by ${sig}` : `exited with status ${code}`}`);
    });
    child.unref();
  } catch (err) {
    log.warn('health', `${why}: cannot run ${argv[0]}: ${describeError(err)}`);
  }
}

export class HealthManager {
  private state: HealthState;
  private readonly options: HealthManagerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly run: RunCheck;
  private readonly max: number;
  private readonly random: () => number;
  private readonly runners = new Map<string, Runner>();
  private readonly queue: Runner[] = [];
  private active = 0;
  private stopped = false;
  private applying: Promise<void> = Promise.resolve();
  private applyQueued = false;

  constructor(config: KeepalivedConfig, options: HealthManagerOptions) {
    this.options = options;
    this.log = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.run = options.runCheck ?? runCheck;
    this.max = options.maxConcurrent ?? DEFAULT_MAX_CONCURRENT;
    this.random = options.random ?? Math.random;
    this.state = new HealthState(config);
    for (const n of config.notes) this.log.info('keepalived', n);
  }

  /** The table the configuration starts with (alpha servers out, a sorry server in if the quorum is down). */
  initialTable(): RuleSet {
    return this.state.desiredTable();
  }

  /** Starts every checker; the effects of the start (logs, events) are handled now. */
  start(): void {
    this.handleEffects();
    this.state.takeDirty();
    this.schedule(true);
    const n = this.runners.size;
    this.log.info('health', `${n} checker${n === 1 ? '' : 's'} on ${this.state.virtualServers.reduce((k, v) => k + v.realServers.length, 0)} real servers of ${this.state.virtualServers.length} virtual servers`);
  }

  /**
   * Moves to a new configuration as keepalived's reload does (state.ts, clear_diff_services):
   * kept checkers keep their schedule and state, removed ones stop, new ones start after
   * their warmup. Resolves once the table is applied.
   */
  async reload(config: KeepalivedConfig): Promise<void> {
    for (const n of config.notes) this.log.info('keepalived', n);
    this.state = new HealthState(config, this.state);
    this.handleEffects();
    this.state.takeDirty();
    this.schedule(false);
    await this.queueApply();
  }

  /** Stops every checker (in-flight checks are aborted and awaited); the table stays as it is. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const pending: Promise<void>[] = [];
    for (const r of this.runners.values()) {
      this.clock.clearTimeout(r.timer);
      r.running?.abort();
      if (r.done) pending.push(r.done);
    }
    this.queue.length = 0;
    this.state.shutdown();
    this.handleEffects();
    await Promise.race([Promise.all(pending), new Promise((resolve) => setTimeout(resolve, KILL_GRACE_MS + 500).unref())]);
    await this.applying;
  }

  /** Each virtual server's quorum and each real server's health and last check result. */
  status(): VirtualServerStatus[] {
    return this.state.virtualServers.map((vs) => {
      const out: VirtualServerStatus = {
        name: vs.config.name, services: vs.config.services.map(({ protocol, vaddr, vport }) => ({ protocol, vaddr, vport })),
        quorumUp: vs.quorumUp, weightSum: this.state.weighLive(vs), quorum: vs.config.quorum, hysteresis: vs.config.hysteresis,
        realServers: vs.realServers.map((rs) => ({
          daddr: rs.config.daddr, dport: rs.config.dport, alive: rs.alive, weight: Math.max(0, rs.effectiveWeight), inhibit: rs.config.inhibit,
          checkers: rs.checkers.map((c) => ({ type: c.config.type, up: c.isUp, hasRun: c.hasRun, retries: c.retryIt, ...(c.last ? { last: { ...c.last } } : {}) })),
        })),
      };
      if (vs.config.sorry) out.sorryServer = { address: `${vs.config.sorry.daddr}:${vs.config.sorry.dport || vs.config.services[0].vport}`, in: vs.sorryAlive };
      return out;
    });
  }

  /** Resolves once every table change made so far is applied (tests). */
  settled(): Promise<void> {
    return this.applying;
  }

  // ---- scheduling ------------------------------------------------------------------------

  private *checkers(): Generator<[VirtualServerState, RealServerState, CheckerState, string]> {
    for (const vs of this.state.virtualServers) for (const rs of vs.realServers) for (const c of rs.checkers) yield [vs, rs, c, checkerKey(vs, rs, c)];
  }

  private lookup(key: string): [VirtualServerState, RealServerState, CheckerState] | undefined {
    for (const [vs, rs, c, k] of this.checkers()) if (k === key) return [vs, rs, c];
    return undefined;
  }

  /** Creates runners for checkers without one and drops those whose checker is gone. */
  private schedule(start: boolean): void {
    const keys = new Set<string>();
    for (const [, , c, key] of this.checkers()) {
      keys.add(key);
      if (this.runners.has(key)) continue;
      const r: Runner = { key, timer: undefined, running: undefined, done: undefined, startedAt: 0 };
      this.runners.set(key, r);
      // register_checkers_thread: a random part of warmup spreads the first checks.
      const warmup = c.config.warmup > 0 ? c.config.warmup * this.random() : 0;
      this.arm(r, (start ? this.options.bootstrapDelay ?? BOOTSTRAP_DELAY : 0) + warmup);
    }
    for (const [key, r] of this.runners) {
      if (keys.has(key)) continue;
      this.clock.clearTimeout(r.timer);
      r.running?.abort();
      this.runners.delete(key);
      const q = this.queue.indexOf(r);
      if (q >= 0) this.queue.splice(q, 1);
    }
  }

  private arm(r: Runner, delay: number): void {
    this.clock.clearTimeout(r.timer);
    r.timer = this.clock.setTimeout(() => this.due(r), Math.max(0, delay));
  }

  private due(r: Runner): void {
    r.timer = undefined;
    if (this.stopped || this.runners.get(r.key) !== r) return;
    if (this.active >= this.max) { this.queue.push(r); return; }
    this.launch(r);
  }

  private launch(r: Runner): void {
    const found = this.lookup(r.key);
    if (!found) return;
    const config = found[2].config;
    this.active++;
    const abort = new AbortController();
    r.running = abort;
    r.startedAt = this.clock.now();
    // The last-resort bound: no check outlives its next turn.
    const limit = config.delayLoop + (config.type === 'MISC_CHECK' ? config.timeout + KILL_GRACE_MS : config.connectTimeout);
    const guard = this.clock.setTimeout(() => abort.abort(), limit);
    let outcome: Promise<CheckResult>;
    try {
      outcome = this.run(config, abort.signal);
    } catch (err) {
      outcome = Promise.resolve({ ok: false, detail: `checker fault: ${describeError(err)}` });
    }
    r.done = outcome
      .catch((err: unknown): CheckResult => ({ ok: false, detail: `checker fault: ${describeError(err)}` }))
      .then((result) => {
        this.clock.clearTimeout(guard);
        this.active--;
        r.running = undefined;
        this.finished(r, result);
        const next = this.queue.shift();
        if (next && !this.stopped) this.launch(next);
      });
  }

  private finished(r: Runner, result: CheckResult): void {
    if (this.stopped || this.runners.get(r.key) !== r) return;
    // A reload may have replaced the state: the result goes to the checker as it is now.
    const found = this.lookup(r.key);
    if (!found) return;
    const [vs, rs, c] = found;
    let delay: number;
    try {
      delay = this.state.result(vs, rs, c, result, this.clock.now());
    } catch (err) {
      this.log.error('health', `state machine fault on ${rs.name}: ${(err as Error).stack ?? String(err)}`);
      delay = c.config.delayLoop;
    }
    this.handleEffects();
    if (this.state.takeDirty()) void this.queueApply();
    // check_misc.c schedules from when the script started; the network checkers from the end.
    const from = c.config.type === 'MISC_CHECK' ? r.startedAt : this.clock.now();
    this.arm(r, from + delay - this.clock.now());
  }

  // ---- effects ---------------------------------------------------------------------------

  private queueApply(): Promise<void> {
    if (this.applyQueued) return this.applying;
    this.applyQueued = true;
    this.applying = this.applying.then(async () => {
      this.applyQueued = false;
      try {
        await this.options.apply(this.state.desiredTable());
      } catch (err) {
        this.log.error('health', `the table change was refused, retried with the next change: ${(err as Error).message}`);
      }
    });
    return this.applying;
  }

  private handleEffects(): void {
    for (const e of this.state.drain()) {
      try {
        this.effect(e);
      } catch (err) {
        this.log.error('health', `${e.kind}: ${(err as Error).message}`);
      }
    }
  }

  private effect(e: HealthEffect): void {
    switch (e.kind) {
      case 'log': if (e.level === 'warn') this.log.warn('health', e.message); else this.log.info('health', e.message); return;
      case 'notify': (this.options.runScript ?? ((argv, why) => spawnScript(argv, why, this.log)))(e.argv, e.why); return;
      case 'dest-up': case 'dest-down':
        this.options.emit?.(e.kind, {
          virtualServer: e.vs.config.name, services: e.vs.config.services.map(({ protocol, vaddr, vport }) => ({ protocol, vaddr, vport })),
          daddr: e.rs.config.daddr, dport: e.rs.config.dport, weight: Math.max(0, e.rs.effectiveWeight), inhibit: e.rs.config.inhibit,
        });
        return;
      case 'quorum-gained': case 'quorum-lost': {
        const sorry = e.vs.config.sorry;
        this.options.emit?.(e.kind, {
          virtualServer: e.vs.config.name, services: e.vs.config.services.map(({ protocol, vaddr, vport }) => ({ protocol, vaddr, vport })),
          weightSum: e.weightSum, threshold: e.threshold, quorum: e.vs.config.quorum, hysteresis: e.vs.config.hysteresis,
          ...(sorry ? { sorryServer: `${sorry.daddr}:${sorry.dport || e.vs.config.services[0].vport}` } : {}),
        });
      }
    }
  }
}
