// keepalived's health state machine for the LVS part, with no timers and no I/O: results go
// in (with the time), the next delay, log lines, notifications and the table IPVS should hold
// come out. The manager (manager.ts) runs the checks and applies the table.
//
// Borrowed behaviour, by keepalived file:
//   check_tcp.c tcp_epilog (the same in check_udp.c, check_dns.c dns_final, check_http.c,
//     check_misc.c misc_check_child_thread): retry_it counting. A success resets it; a failure
//     of an up checker with retry_it < retry schedules a retry after delay_before_retry; the
//     (retry+1)-th consecutive failure takes the checker down. Checks of a down checker run
//     every delay_loop and one success brings it up.
//   check_data.c validate_check_config: at start retry_it = retry, so without alpha the first
//     failure is enough; an alpha checker starts down (its server out of the pool).
//   ipwrapper.c update_svr_checker_state / set_checker_state: a real server is alive while
//     none of its checkers is down (num_failed_checkers == 0).
//   ipwrapper.c perform_svr_state, update_quorum_state, update_svr_wgt: the quorum is the sum
//     of live servers' weights against quorum - hysteresis (to lose it) or quorum + hysteresis
//     (to gain it); on loss a sorry server replaces the live servers, on gain the reverse.
//   check_misc.c: with misc_dynamic an exit status of 2..255 is up with weight status - 2.
//   ipwrapper.c clear_diff_services / clear_diff_rs / migrate_checkers: a reload keeps state.
//
// The table as IPVS should hold it is computed from the state (desiredTable), rather than
// issued as add/delete commands like ipvs_cmd(); the result is the same:
//   alive server, no sorry server in:  present at its effective weight
//   otherwise, inhibit_on_failure:     present at weight 0 (its connections live on)
//   otherwise:                         absent
//   sorry server in (quorum lost):     present at weight 1; with sorry_server_inhibit present at 0 while out
import type { RuleSet, ServiceRule } from '../ipvsadm/rules.js';
import type { DestConfig } from '../engine/spec.js';
import { MAX_WEIGHT } from '../engine/spec.js';
import { formatRealServer, type CheckerConfig, type KeepalivedConfig, type RealServerConfig, type VirtualServerConfig } from './config.js';

/** One check's outcome, as a checker reports it. */
export interface CheckResult {
  ok: boolean;
  /** What happened, for logs and status ("connection refused", "status 503", "exit 1"). */
  detail: string;
  /** MISC_CHECK: the script's exit status (undefined when it was killed). */
  exitCode?: number;
  /** MISC_CHECK: killed after misc_timeout. */
  timedOut?: boolean;
}

export interface CheckerState {
  readonly config: CheckerConfig;
  /** Which checker of its server (0-based), for names and status. */
  readonly index: number;
  isUp: boolean;
  hasRun: boolean;
  retryIt: number;
  /** MISC_CHECK misc_dynamic: this checker's contribution to the weight, relative to the configured one. */
  curWeight: number;
  lastExitCode: number | undefined;
  last: { at: number; ok: boolean; detail: string } | undefined;
}

export interface RealServerState {
  readonly config: RealServerConfig;
  readonly name: string;
  alive: boolean;
  numFailed: number;
  /** The configured weight plus misc_dynamic changes (keepalived's effective_weight). */
  effectiveWeight: number;
  checkers: CheckerState[];
}

export interface VirtualServerState {
  readonly config: VirtualServerConfig;
  quorumUp: boolean;
  sorryAlive: boolean;
  realServers: RealServerState[];
}

/** Something the manager turns into a log line, an event or a script run. */
export type HealthEffect =
  | { kind: 'log'; level: 'info' | 'warn'; message: string }
  | { kind: 'dest-up' | 'dest-down'; vs: VirtualServerState; rs: RealServerState }
  | { kind: 'quorum-gained' | 'quorum-lost'; vs: VirtualServerState; weightSum: number; threshold: number; init: boolean }
  | { kind: 'notify'; argv: string[]; why: string };

/** real_weight(): the weight IPVS can take, 0 to 65535. */
const realWeight = (w: number): number => Math.max(0, Math.min(MAX_WEIGHT, w));

const sameChecker = (a: CheckerConfig, b: CheckerConfig): boolean => {
  const { where: _a, ...x } = a;
  const { where: _b, ...y } = b;
  return JSON.stringify(x) === JSON.stringify(y);
};

export class HealthState {
  readonly virtualServers: VirtualServerState[];
  private effects: HealthEffect[] = [];
  private dirty = true;

  /**
   * The state at start (or, with `from`, after a reload from that state, as
   * clear_diff_services does: kept servers keep their state and checker state).
   */
  constructor(readonly config: KeepalivedConfig, from?: HealthState) {
    const old = new Map(from?.virtualServers.map((v) => [v.config.id, v]));
    this.virtualServers = config.virtualServers.map((vc) => {
      const prev = old.get(vc.id);
      const vs: VirtualServerState = { config: vc, quorumUp: true, sorryAlive: false, realServers: [] };
      vs.realServers = vc.realServers.map((rc) => {
        const was = prev?.realServers.find((r) => r.config.daddr === rc.daddr && r.config.dport === rc.dport);
        return was ? this.migrateServer(vs, rc, was) : this.newServer(vs, rc, from !== undefined);
      });
      // set_quorum_states: from the live weight; a kept virtual server keeps its own.
      vs.quorumUp = prev ? prev.quorumUp : this.weighLive(vs) >= vc.quorum + vc.hysteresis;
      if (prev && vc.sorry && prev.config.sorry && prev.config.sorry.daddr === vc.sorry.daddr && prev.config.sorry.dport === vc.sorry.dport) {
        vs.sorryAlive = prev.sorryAlive;
      }
      return vs;
    });
    // init_service_vs: the quorum may have changed with the settings; at start with quorum
    // down this also puts the sorry server in.
    for (const vs of this.virtualServers) this.updateQuorum(vs, true);
    // A new server without failures on reload goes in at once (migrate_checkers' last step
    // runs perform_svr_state(true)); the table computation covers that.
  }

  private newServer(vs: VirtualServerState, rc: RealServerConfig, reloading: boolean): RealServerState {
    const rs: RealServerState = { config: rc, name: formatRealServer(rc, vs.config), alive: false, numFailed: 0, effectiveWeight: rc.weight, checkers: [] };
    rs.checkers = rc.checkers.map((cc, index) => {
      const c: CheckerState = { config: cc, index, isUp: true, hasRun: false, retryIt: reloading ? 0 : cc.retry, curWeight: 0, lastExitCode: undefined, last: undefined };
      // validate_check_config at start, check_new_rs_state on reload: alpha starts down.
      if (cc.alpha) this.setChecker(rs, c, false);
      return c;
    });
    rs.alive = rs.numFailed === 0;
    return rs;
  }

  private migrateServer(vs: VirtualServerState, rc: RealServerConfig, was: RealServerState): RealServerState {
    const rs: RealServerState = { config: rc, name: formatRealServer(rc, vs.config), alive: was.alive, numFailed: 0, effectiveWeight: rc.weight, checkers: [] };
    const unused = [...was.checkers];
    rs.checkers = rc.checkers.map((cc, index) => {
      const c: CheckerState = { config: cc, index, isUp: true, hasRun: false, retryIt: 0, curWeight: 0, lastExitCode: undefined, last: undefined };
      const i = unused.findIndex((o) => o.config.type === cc.type && sameChecker(o.config, cc));
      if (i >= 0) {
        const o = unused.splice(i, 1)[0];
        c.isUp = o.isUp;
        c.hasRun = o.hasRun;
        c.last = o.last;
        // migrate_checkers: enough retries already used for the new retry value means one
        // more failure takes it down.
        c.retryIt = !c.isUp ? cc.retry + 1 : Math.min(o.retryIt, cc.retry);
        c.lastExitCode = o.lastExitCode;
        // migrate_misc_check: the dynamic weight is kept relative to the new configured weight.
        if (cc.type === 'MISC_CHECK' && cc.dynamic && o.lastExitCode !== undefined && o.lastExitCode >= 2) c.curWeight = o.lastExitCode - 2 - rc.weight;
      }
      return c;
    });
    for (const c of rs.checkers) if (c.hasRun && !c.isUp) rs.numFailed++;
    const anyRun = rs.checkers.some((c) => c.hasRun);
    if (rs.numFailed > 0 || (!rs.alive && !anyRun)) {
      for (const c of rs.checkers) {
        if (c.hasRun) continue;
        if (c.config.alpha) this.setChecker(rs, c, false);
        c.retryIt = c.config.retry;
      }
    }
    // Unlike keepalived (which keeps the old effective weight), a weight changed in the file
    // takes effect on reload, with any misc_dynamic contribution on top.
    rs.effectiveWeight = rc.weight + rs.checkers.reduce((n, c) => n + c.curWeight, 0);
    // No failed checker: the server must be in (migrate_checkers -> perform_svr_state(true)).
    if (rs.numFailed === 0 && !rs.alive) {
      rs.alive = true;
      this.log('info', `Adding service ${rs.name} to VS ${vs.config.name}`);
      this.push({ kind: 'dest-up', vs, rs });
      if (rc.notifyUp) this.push({ kind: 'notify', argv: rc.notifyUp, why: `notify_up of ${rs.name}` });
    } else if (rs.numFailed > 0) rs.alive = false;
    return rs;
  }

  /** Log lines, events and scripts produced since the last call. */
  drain(): HealthEffect[] {
    const out = this.effects;
    this.effects = [];
    return out;
  }

  /** True once since the table last changed (the manager then applies desiredTable()). */
  takeDirty(): boolean {
    const d = this.dirty;
    this.dirty = false;
    return d;
  }

  /**
   * A check of `c` (of `rs` in `vs`) finished at `now`; returns the milliseconds until its next
   * check (delay_loop, or delay_before_retry while retrying), as the checkers' epilogs.
   */
  result(vs: VirtualServerState, rs: RealServerState, c: CheckerState, r: CheckResult, now: number): number {
    const cc = c.config;
    c.last = { at: now, ok: r.ok, detail: r.detail };
    if (cc.type === 'MISC_CHECK' && r.ok && r.exitCode !== undefined && r.exitCode !== c.lastExitCode) {
      // check_misc.c: the weight follows the exit status (0: the configured weight).
      const base = rs.effectiveWeight - c.curWeight;
      c.curWeight = r.exitCode >= 2 ? r.exitCode - 2 - rs.config.weight : 0;
      c.lastExitCode = r.exitCode;
      this.updateWeight(vs, rs, base + c.curWeight);
    }
    const label = `${cc.type} on service ${rs.name}${rs.checkers.length > 1 ? ` (checker ${c.index + 1})` : ''}`;
    let delay = cc.delayLoop;
    if (r.ok || ((c.isUp || !c.hasRun) && c.retryIt >= cc.retry)) {
      const retried = c.retryIt > 0;
      c.retryIt = 0;
      if (r.ok && (!c.isUp || !c.hasRun)) {
        if (!c.isUp) this.log('info', `${label} succeeded (${r.detail}).`);
        this.checkerState(vs, rs, c, true);
      } else if (!r.ok && (c.isUp || !c.hasRun)) {
        this.log('info', cc.retry > 0 && c.hasRun && retried ? `${label} failed after ${cc.retry} ${cc.retry === 1 ? 'retry' : 'retries'} (${r.detail}).` : `${label} failed (${r.detail}).`);
        if (cc.type === 'MISC_CHECK') {
          rs.effectiveWeight -= c.curWeight;
          c.curWeight = 0;
          c.lastExitCode = r.exitCode;
        }
        this.checkerState(vs, rs, c, false);
      }
    } else if (c.isUp) {
      delay = cc.delayBeforeRetry;
      c.retryIt++;
      if (cc.logAllFailures) this.log('info', `${label} failed (${r.detail}), retry ${c.retryIt} of ${cc.retry}.`);
    }
    c.hasRun = true;
    return delay;
  }

  /** update_svr_checker_state. */
  private checkerState(vs: VirtualServerState, rs: RealServerState, c: CheckerState, alive: boolean): void {
    if (c.isUp === alive) {
      if (!c.hasRun) {
        if (c.config.alpha || !alive) this.serverNotifies(vs, rs);
        c.hasRun = true;
      }
      return;
    }
    c.hasRun = true;
    if (alive ? rs.numFailed <= 1 : rs.numFailed === 0) this.serverState(vs, rs, alive);
    this.setChecker(rs, c, alive);
  }

  /** set_checker_state. */
  private setChecker(rs: RealServerState, c: CheckerState, up: boolean): void {
    if (c.isUp === up) return;
    c.isUp = up;
    if (!up) rs.numFailed++;
    else if (rs.numFailed > 0) rs.numFailed--;
  }

  /** perform_svr_state. */
  private serverState(vs: VirtualServerState, rs: RealServerState, alive: boolean): void {
    if (rs.alive === alive) return;
    const inhibit = rs.config.inhibit;
    this.log('info', `${alive ? (inhibit ? 'Enabling' : 'Adding') : (inhibit ? 'Disabling' : 'Removing')} service ${rs.name} ${inhibit ? 'of' : alive ? 'to' : 'from'} VS ${vs.config.name}`);
    rs.alive = alive;
    this.dirty = true;
    this.serverNotifies(vs, rs);
    this.updateQuorum(vs, false);
  }

  /** do_rs_notifies. */
  private serverNotifies(vs: VirtualServerState, rs: RealServerState): void {
    this.push({ kind: rs.alive ? 'dest-up' : 'dest-down', vs, rs });
    const script = rs.alive ? rs.config.notifyUp : rs.config.notifyDown;
    if (script) this.push({ kind: 'notify', argv: script, why: `${rs.alive ? 'notify_up' : 'notify_down'} of ${rs.name}` });
  }

  /** update_svr_wgt. */
  private updateWeight(vs: VirtualServerState, rs: RealServerState, weight: number): void {
    const before = realWeight(rs.effectiveWeight);
    rs.effectiveWeight = weight;
    const after = realWeight(weight);
    if (before === after) return;
    this.log('info', `Changing weight from ${before} to ${after} for ${rs.alive ? '' : 'in'}active service ${rs.name} of VS ${vs.config.name}`);
    this.dirty = true;
    this.updateQuorum(vs, false);
  }

  weighLive(vs: VirtualServerState): number {
    return vs.realServers.reduce((n, rs) => n + (rs.alive ? realWeight(rs.effectiveWeight) : 0), 0);
  }

  /** update_quorum_state. */
  private updateQuorum(vs: VirtualServerState, init: boolean): void {
    const { quorum, hysteresis, sorry, name } = vs.config;
    const weightSum = this.weighLive(vs);
    const threshold = quorum + (vs.quorumUp ? -1 : 1) * hysteresis;
    if (!vs.quorumUp && weightSum >= threshold) {
      vs.quorumUp = true;
      this.log('info', `Gained quorum ${quorum}+${hysteresis}=${threshold} <= ${weightSum} for VS ${name}`);
      if (sorry && vs.sorryAlive) {
        this.log('info', `${sorry.inhibit ? 'Disabling' : 'Removing'} sorry server [${sorry.daddr}]:${vs.config.services[0].protocol}:${sorry.dport || vs.config.services[0].vport} from VS ${name}`);
        vs.sorryAlive = false;
        this.log('info', `Adding alive servers to the pool for VS ${name}`);
      }
      this.dirty = true;
      this.quorumNotifies(vs, init, weightSum, threshold);
    } else if ((vs.quorumUp && (weightSum === 0 || weightSum < threshold)) || (init && !vs.quorumUp && sorry && !vs.sorryAlive)) {
      vs.quorumUp = false;
      this.log('info', `${init ? 'Starting with quorum down' : 'Lost quorum'} ${quorum}-${hysteresis}=${threshold} > ${weightSum} for VS ${name}`);
      if (sorry && !vs.sorryAlive) {
        this.log('info', `${sorry.inhibit ? 'Enabling' : 'Adding'} sorry server [${sorry.daddr}]:${vs.config.services[0].protocol}:${sorry.dport || vs.config.services[0].vport} to VS ${name}`);
        this.log('info', `Removing alive servers from the pool for VS ${name}`);
        vs.sorryAlive = true;
      }
      this.dirty = true;
      this.quorumNotifies(vs, init, weightSum, threshold);
    }
  }

  /** do_vs_notifies. */
  private quorumNotifies(vs: VirtualServerState, init: boolean, weightSum: number, threshold: number): void {
    this.push({ kind: vs.quorumUp ? 'quorum-gained' : 'quorum-lost', vs, weightSum, threshold, init });
    const script = vs.quorumUp ? vs.config.quorumUp : vs.config.quorumDown;
    if (script) this.push({ kind: 'notify', argv: script, why: `${vs.quorumUp ? 'quorum_up' : 'quorum_down'} of VS ${vs.config.name}` });
  }

  /** At stop with omega: the notifiers run all the way down (clear_service_rs, update_vs_notifies). */
  shutdown(): void {
    for (const vs of this.virtualServers) {
      if (!vs.config.omega) continue;
      for (const rs of vs.realServers) {
        if (!rs.alive) continue;
        rs.alive = false;
        if (rs.config.notifyDown) this.push({ kind: 'notify', argv: rs.config.notifyDown, why: `notify_down of ${rs.name} (shutting down)` });
      }
      if (vs.quorumUp) {
        vs.quorumUp = false;
        if (vs.config.quorumDown) this.push({ kind: 'notify', argv: vs.config.quorumDown, why: `quorum_down of VS ${vs.config.name} (shutting down)` });
      }
    }
  }

  /** The whole IPVS table the state asks for (see the header). */
  desiredTable(): RuleSet {
    const services: ServiceRule[] = [];
    for (const vs of this.virtualServers) {
      const sorry = vs.config.sorry;
      const sorryIn = sorry !== undefined && vs.sorryAlive;
      for (const svc of vs.config.services) {
        const dests: DestConfig[] = [];
        for (const rs of vs.realServers) {
          let weight: number | undefined;
          if (rs.alive && !sorryIn) weight = realWeight(rs.effectiveWeight);
          else if (rs.config.inhibit) weight = 0;
          if (weight === undefined) continue;
          const d: DestConfig = { daddr: rs.config.daddr, dport: rs.config.dport || svc.vport, weight };
          if (rs.config.upperThreshold) d.upperThreshold = rs.config.upperThreshold;
          if (rs.config.lowerThreshold) d.lowerThreshold = rs.config.lowerThreshold;
          dests.push(d);
        }
        if (sorry && (sorryIn || sorry.inhibit)) dests.push({ daddr: sorry.daddr, dport: sorry.dport || svc.vport, weight: sorryIn ? 1 : 0 });
        services.push({ ...svc, dests });
      }
    }
    return { services };
  }

  private log(level: 'info' | 'warn', message: string): void {
    this.effects.push({ kind: 'log', level, message });
  }

  private push(e: HealthEffect): void {
    this.effects.push(e);
  }
}
