// The part of the Engine API the differential tests drive: both the WASM engine
// (host/engine.ts) and the reference engine (./engine.ts) satisfy it. Results use the
// Engine's own shapes. connections() lists the same records in either engine, but not in the
// same order: sort before comparing.
import type { ConnInfo, Counters, DestKey, PacketResult, ServiceInfo, ServiceKey, Timeouts } from '../../host/engine/engine.js';
import type { DestSpec, ServiceSpec } from '../../host/ipvsadm/rules.js';

export interface EngineLikeOptions {
  connCapacity?: number;
  timeouts?: Partial<Timeouts>;
  expireNodestConn?: boolean;
  /** The FTP helper's ports (default [21]), as EngineOptions.ftpPorts. */
  ftpPorts?: readonly number[];
  /** Control connections the helper follows at once (default min(connCapacity, 65536)). */
  ftpSessions?: number;
}

export interface EngineLike {
  restore(rules: string): void;
  addService(spec: ServiceSpec): void;
  editService(spec: ServiceSpec): void;
  delService(key: ServiceKey): void;
  addDest(key: ServiceKey, dest: DestSpec): void;
  editDest(key: ServiceKey, dest: DestSpec): void;
  delDest(key: ServiceKey, dest: DestKey): void;
  setTimeouts(timeouts: Partial<Timeouts>): void;
  setExpireNodestConn(on: boolean): void;
  processPacket(packet: Uint8Array, now: number, l3Offset?: number): PacketResult;
  expire(now: number): void;
  connections(now?: number): ConnInfo[];
  counters(): Counters;
  listServices(): ServiceInfo[];
}
