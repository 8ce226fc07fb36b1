// Statistics bookkeeping (ipvsadm -L -n --stats / --rate, ipvsadm -Z). Totals live in the
// dest records, counted per packet by the data plane. A service's are the sum over the
// records of its real servers, deleted ones still alive included, plus what records since
// reused had counted for it (the kernel's service counters never lose a server's packets).
// Rates: an Estimator (stats.ts, as ip_vs_est.c) per service and per record, all stepped on
// one 2-second grid of engine time (multiples of EST_INTERVAL_MS). The step runs at the start
// of process/processPacket/expire, before the call's packets count, so the step at T sees
// exactly the traffic before T however late the call that runs it.
import { formatIPv4 } from '../addr.js';
import type { Configuration, DestState, ServiceState } from './config.js';
import type { DataPlane } from './dataplane.js';
import { EST_INTERVAL_MS, Estimator, Totals, totalsDecreased, type ServiceStats, type StatsRecord, type StatsServiceRecord } from './stats.js';

export class Statistics {
  private readonly dests: (StatsRecord<DestState, ServiceState> | undefined)[] = [];
  private readonly services: (StatsServiceRecord<ServiceState> | undefined)[] = [];
  private readonly scratch = new Totals();
  /** Engine time of the next estimation step, shared by every estimator. */
  due = EST_INTERVAL_MS;

  constructor(private readonly dp: DataPlane, private readonly config: Configuration) {}

  /**
   * Totals and rates per service and per real server, in service table order, each with its
   * current real servers (newest first, as listServices). Totals are live; rates are as of
   * the last 2-second step.
   */
  statistics(): ServiceStats[] {
    this.sync();
    this.sum();
    const out: ServiceStats[] = [];
    for (const e of this.services) {
      if (!e) continue;
      const s = e.service;
      out.push({
        protocol: s.spec.protocol, vaddr: s.spec.vaddr, vport: s.spec.vport, ...e.sum, ...e.est.rates(),
        dests: s.dests.map((d) => {
          const r = this.dests[d.index] as StatsRecord<DestState, ServiceState>;
          return { daddr: formatIPv4(d.daddr), dport: d.dport, ...r.seen, ...r.est.rates() };
        }),
      });
    }
    return out;
  }

  /**
   * ipvsadm -Z: totals and rates to zero, of one service and its real servers (deleted ones
   * still counting for it included), or of every service.
   */
  zero(only: ServiceState | undefined): void {
    this.sync();
    for (const r of this.dests) {
      if (!r || !r.service || (only ? r.service !== only : !this.serviceRecord(r.service))) continue;
      this.dp.destZeroStats(r.dest.index);
      r.seen.clear();
      r.base.clear();
      r.est.zero(r.seen);
    }
    for (const e of this.services) {
      if (!e || (only && e.service !== only)) continue;
      e.carry.clear();
      e.sum.clear();
      e.est.zero(e.sum);
    }
  }

  /** The estimation steps due by `now` (unwrapped ms); call when now >= due, before packets count. */
  tick(now: number): void {
    const t = Math.floor(now);
    this.sync();
    this.sum();
    for (const r of this.dests) if (r) r.est.update(t, r.seen);
    for (const e of this.services) if (e) e.est.update(t, e.sum);
    this.due += (Math.floor((t - this.due) / EST_INTERVAL_MS) + 1) * EST_INTERVAL_MS;
  }

  /** Brings the bookkeeping up to date with the service and dest tables; reads every record. */
  sync(): void {
    const { servicesByIndex, destsByIndex } = this.config;
    for (let i = 0; i < Math.max(servicesByIndex.length, this.services.length); i++) {
      const s = servicesByIndex[i];
      if (this.services[i] && this.services[i]?.service !== s) this.services[i] = undefined;
      if (s && !this.services[i]) this.services[i] = { service: s, est: new Estimator(this.due), carry: new Totals(), sum: new Totals() };
    }
    for (let i = 0; i < Math.max(destsByIndex.length, this.dests.length); i++) {
      const d = destsByIndex[i];
      let r = this.dests[i];
      if (r && r.dest !== d) {
        // Another dest holds the record: the same server re-added to its service (counters
        // kept, as IPVS revives a dest from its trash), or a reuse for another server, which
        // destReset zeroed; its service keeps what the old one counted.
        const revived = d !== undefined && d.serviceId === r.dest.serviceId && d.daddr === r.dest.daddr
          && d.dport === r.dest.dport && !totalsDecreased(this.dp.destTotals(i, this.scratch), r.seen);
        if (revived) {
          r.dest = d;
        } else {
          const e = r.service && this.serviceRecord(r.service);
          if (e) e.carry.addDifference(r.seen, r.base);
          r = this.dests[i] = undefined;
        }
      }
      if (!d) continue;
      if (!r) {
        r = { dest: d, service: this.config.serviceOf(d), est: new Estimator(this.due), seen: new Totals(), base: new Totals() };
        this.dests[i] = r;
      } else if (d.service && d.service !== r.service) {
        // Revived into a re-created service: only what it counts from now on is that one's.
        r.service = d.service;
        r.base.set(r.seen);
      }
      this.dp.destTotals(i, r.seen);
    }
  }

  /** Every live service's totals: what it carries plus its records' counts since joining it. */
  private sum(): void {
    for (const e of this.services) if (e) e.sum.set(e.carry);
    for (const r of this.dests) {
      if (!r || !r.service) continue;
      const e = this.serviceRecord(r.service);
      if (e) e.sum.addDifference(r.seen, r.base);
    }
  }

  private serviceRecord(s: ServiceState): StatsServiceRecord<ServiceState> | undefined {
    const e = this.services[s.index];
    return e && e.service === s ? e : undefined;
  }
}
