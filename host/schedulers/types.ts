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
  /**
   * The latest non-zero weight (the weight given when added, even 0), as ip_vs_ctl.c keeps
   * dest->last_weight. mh builds its table from it, so quiescing a dest (weight 0) does not
   * reshuffle the table. Optional: without it, mh tracks it from the change events itself.
   */
  readonly lastWeight?: number;
}

/** The new connection's tuple, big-endian reading. */
export interface SchedPacket {
  readonly saddr: number;
  readonly sport: number;
  readonly daddr: number;
  readonly dport: number;
  /**
   * Engine time of the packet, milliseconds (the `now` given to process()). Schedulers read no
   * clock; the ones with timed state (lblc, lblcr: their cache entries expire as the kernel's
   * do, on a 60 s timer) take time from here. Without it they keep the last time they saw.
   */
  readonly now?: number;
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

/** What a scheduler may know of its service's creation. */
export interface SchedulerContext {
  /** Engine time (ms) the service gets the scheduler: lblc's and lblcr's expiry timer starts here. */
  readonly now?: number;
}

/**
 * Creates a scheduler for one service, given its -b flags (ipvsadm's names: flag-1..3,
 * sh-fallback, sh-port, mh-fallback, mh-port; index.ts checks them before any factory runs).
 */
export type SchedulerFactory = (flags: readonly string[], context?: SchedulerContext) => Scheduler;
