// Statistics as IPVS keeps them: totals per service and per real server, and rates from the
// kernel's estimator (net/netfilter/ipvs/ip_vs_est.c). host/ipvsadm/format.ts prints them as
// `ipvsadm -L -n --stats` and `--rate` do.
//
// The estimator, as ip_vs_est.c: every 2 seconds, for each counter, the increase since the
// last step becomes a rate, scaled to fixed point and halved in the same shift (2 seconds):
//   connections and packets: rate = delta << 9   (per second, scaled by 2^10)
//   bytes:                   rate = delta << 4   (per second, scaled by 2^5)
// and folds into an exponentially weighted moving average with weight W = 2^-2:
//   avg += (rate - avg) >> 2                     (an arithmetic shift: floor division by 4)
// Read out rounded (ip_vs_read_estimator): cps = (avg + 0x1FF) >> 10, bps = (avg + 0xF) >> 5.
// Zeroing (ip_vs_zero_estimator) clears the averages and takes the current totals as the new
// reference.
//
// Worked example, a steady 100 packets/s in: each step sees delta 200, rate 200 << 9 =
// 102400 (100 * 2^10). The average climbs 0 -> 25600 -> 44800 -> 59200 -> 70000, i.e.
// 102400 * (1 - (3/4)^k) after k steps (exact while 4^k divides 102400), read as 25, 44, 58,
// 68 packets/s: 8 seconds show about 2/3 of the true rate, as `ipvsadm --rate` does.
//
// Time is engine time (ms). An Estimator steps when fed a time at or past its next step; a
// gap of several intervals runs the missed steps too (the first sees the increase, the
// others none, as the kernel's timer keeps ticking while no packet flows), so the same
// traffic gives the same rates however often the estimator is fed. Values are JS numbers:
// exact below 2^53, i.e. up to 2^48 bytes per 2-second step.
import type { Protocol } from '../addr.js';

/** The kernel's estimation interval (2 * HZ). */
export const EST_INTERVAL_MS = 2000;

/** Totals, as struct ip_vs_kstats counts them. */
export interface StatsTotals {
  /** Connections scheduled. */
  conns: number;
  /** Packets client -> real server. */
  inPkts: number;
  /** Packets real server -> client. */
  outPkts: number;
  /** IP bytes (headers included) client -> real server. */
  inBytes: number;
  outBytes: number;
}

/** Rates from the estimator, in ipvsadm --rate's units (whole numbers, per second). */
export interface StatsRates {
  /** Connections per second. */
  cps: number;
  inPps: number;
  outPps: number;
  /** Bytes (not bits) per second, as the kernel's inbps. */
  inBps: number;
  outBps: number;
}

export interface Stats extends StatsTotals, StatsRates {}

export interface DestStats extends Stats {
  daddr: string;
  dport: number;
}

/** A service's statistics: its totals are the sum over its real servers (deleted ones too). */
export interface ServiceStats extends Stats {
  protocol: Protocol;
  vaddr: string;
  vport: number;
  /** Its current real servers, in the engine's list order (newest first, as IPVS). */
  dests: DestStats[];
}

/** Mutable totals, kept per record so that a 2-second step allocates nothing. */
export class Totals implements StatsTotals {
  conns = 0;
  inPkts = 0;
  outPkts = 0;
  inBytes = 0;
  outBytes = 0;

  set(t: StatsTotals): void {
    this.conns = t.conns;
    this.inPkts = t.inPkts;
    this.outPkts = t.outPkts;
    this.inBytes = t.inBytes;
    this.outBytes = t.outBytes;
  }

  clear(): void {
    this.conns = this.inPkts = this.outPkts = this.inBytes = this.outBytes = 0;
  }

  /** this += a - b */
  addDifference(a: StatsTotals, b: StatsTotals): void {
    this.conns += a.conns - b.conns;
    this.inPkts += a.inPkts - b.inPkts;
    this.outPkts += a.outPkts - b.outPkts;
    this.inBytes += a.inBytes - b.inBytes;
    this.outBytes += a.outBytes - b.outBytes;
  }
}

/** True when any counter of `now` is below `before`: the record was reset in between. */
export function totalsDecreased(now: StatsTotals, before: StatsTotals): boolean {
  return now.conns < before.conns || now.inPkts < before.inPkts || now.outPkts < before.outPkts
    || now.inBytes < before.inBytes || now.outBytes < before.outBytes;
}

/** The engine's bookkeeping of one dest record (D: its dest, S: its service). */
export interface StatsRecord<D, S> {
  /** The dest last seen holding the record. */
  dest: D;
  /** The service its counts belong to: kept when the dest is deleted, for as long as it lives. */
  service: S | undefined;
  est: Estimator;
  /** The record's totals when last read. */
  seen: Totals;
  /** Its totals when it joined `service` (0 unless revived into a re-created one). */
  base: Totals;
}

/** The engine's bookkeeping of one service. */
export interface StatsServiceRecord<S> {
  service: S;
  est: Estimator;
  /** What records since reused for other servers had counted for it. */
  carry: Totals;
  /** Its totals at the last sum. */
  sum: Totals;
}

/** One step of the average: avg += (rate - avg) >> 2, on exact integers. */
function ewma(avg: number, rate: number): number {
  return avg + Math.floor((rate - avg) / 4);
}

/**
 * The increase of a counter since the last step. A counter below its reference was reset
 * (its record reused, say) and has counted from 0 since: the kernel's counters never go back,
 * so this only keeps a reset from reading as a huge rate.
 */
function increase(total: number, last: number): number {
  return total >= last ? total - last : total;
}

/** One service's or real server's rate estimator (struct ip_vs_estimator). */
export class Estimator {
  /** Engine time (ms) of the next step. */
  due: number;
  lastConns = 0;
  lastInPkts = 0;
  lastOutPkts = 0;
  lastInBytes = 0;
  lastOutBytes = 0;
  /** The averages as the kernel stores them: per second, scaled by 2^10 (cps, pps), 2^5 (bps). */
  cps = 0;
  inpps = 0;
  outpps = 0;
  inbps = 0;
  outbps = 0;

  /** `due`: engine time of the first step; estimators stepped together share it. */
  constructor(due: number) {
    this.due = due;
  }

  /**
   * Runs the steps due by `now` with the totals as of now: the first step sees their
   * increase, any further (missed) ones see none. Does nothing before the next step is due.
   */
  update(now: number, t: StatsTotals): void {
    if (now < this.due) return;
    const steps = Math.floor((now - this.due) / EST_INTERVAL_MS) + 1;
    this.due += steps * EST_INTERVAL_MS;
    this.step(t);
    // Idle steps only decay the averages; once all are 0 more steps change nothing, so a
    // gap of days costs at most a few hundred steps.
    for (let i = 1; i < steps && this.moving(); i++) this.step(t);
  }

  /** ip_vs_zero_estimator: rates to 0, the totals given (after zeroing, 0) as reference. */
  zero(t: StatsTotals): void {
    this.setReference(t);
    this.cps = this.inpps = this.outpps = this.inbps = this.outbps = 0;
  }

  /** ip_vs_read_estimator: the averages decoded, rounded to the nearest whole unit. */
  rates(): StatsRates {
    return {
      cps: Math.floor((this.cps + 0x1ff) / 1024),
      inPps: Math.floor((this.inpps + 0x1ff) / 1024),
      outPps: Math.floor((this.outpps + 0x1ff) / 1024),
      inBps: Math.floor((this.inbps + 0xf) / 32),
      outBps: Math.floor((this.outbps + 0xf) / 32),
    };
  }

  private step(t: StatsTotals): void {
    this.cps = ewma(this.cps, increase(t.conns, this.lastConns) * 512);
    this.inpps = ewma(this.inpps, increase(t.inPkts, this.lastInPkts) * 512);
    this.outpps = ewma(this.outpps, increase(t.outPkts, this.lastOutPkts) * 512);
    this.inbps = ewma(this.inbps, increase(t.inBytes, this.lastInBytes) * 16);
    this.outbps = ewma(this.outbps, increase(t.outBytes, this.lastOutBytes) * 16);
    this.setReference(t);
  }

  private moving(): boolean {
    return this.cps !== 0 || this.inpps !== 0 || this.outpps !== 0 || this.inbps !== 0 || this.outbps !== 0;
  }

  private setReference(t: StatsTotals): void {
    this.lastConns = t.conns;
    this.lastInPkts = t.inPkts;
    this.lastOutPkts = t.outPkts;
    this.lastInBytes = t.inBytes;
    this.lastOutBytes = t.outBytes;
  }
}
