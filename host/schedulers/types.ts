// The scheduler seam, shaped like IPVS's struct ip_vs_scheduler: a scheduler is told when a
// service's destinations change (add_dest/del_dest/upd_dest) and asked for a destination
// once per new connection (schedule). Nothing here runs per packet.

/** A real server as schedulers see it. Connection counts are read live from the data plane. */
export interface SchedDest {
  /** The dest record's index in the data plane. */
  readonly index: number;
  /** Address and port, big-endian reading (see addr.ts). */
  readonly daddr: number;
  readonly dport: number;
  /** 0..65535; 0 = quiescent: no new connections, existing ones continue. */
  readonly weight: number;
  /** ipvsadm ActiveConn: TCP connections in ESTABLISHED. */
  readonly activeConns: number;
  /** ipvsadm InActConn: all other connections. */
  readonly inactConns: number;
  /** Over its upper connection threshold (thresholds arrive with the scheduler issue). */
  readonly overloaded: boolean;
}

/** The new connection's tuple, big-endian reading. */
export interface SchedPacket {
  readonly saddr: number;
  readonly sport: number;
  readonly daddr: number;
  readonly dport: number;
}

export interface Scheduler {
  /**
   * The service's destinations changed. `dests` is in IPVS list order (the most recently
   * added first, as list_add_rcu in ip_vs_ctl.c), which fixes the order schedulers visit them.
   */
  destsChanged(dests: readonly SchedDest[], change: { kind: 'add' | 'edit' | 'del'; dest: SchedDest }): void;
  /** The destination for a new connection, or undefined when none is available. */
  schedule(packet: SchedPacket): SchedDest | undefined;
}

/** Creates a scheduler for one service, given its -b flags. */
export type SchedulerFactory = (flags: readonly string[]) => Scheduler;
