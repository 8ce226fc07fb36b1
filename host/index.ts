// wasmvs: IPVS NAT ("masquerading") as a Node.js packet engine over a WebAssembly data plane.
export { Engine } from './engine/engine.js';
export type {
  ConnEvent, ConnInfo, ConnTuple, Counters, DestInfo, DestKey, EngineEvents, EngineOptions, FtpEvent, PacketResult,
  ServiceInfo, ServiceKey, Timeouts, Verdict,
} from './engine/engine.js';
export { EST_INTERVAL_MS, Estimator } from './engine/stats.js';
export type { DestStats, ServiceStats, Stats, StatsRates, StatsTotals } from './engine/stats.js';
export { formatConnections, formatLargeNum, formatSave, formatServices, formatStatsTable, formatTimeouts, formatVersionLine, NUMERIC } from './ipvsadm/format.js';
export type { ListedDest, ListedService, Names, TableFormat } from './ipvsadm/format.js';
export { parseRules, emitRules } from './ipvsadm/rules.js';
export type { DestSpec, RuleSet, ServiceRule, ServiceSpec } from './ipvsadm/rules.js';
export { registerScheduler, schedulerNames } from './schedulers/index.js';
export type { SchedDest, SchedPacket, Scheduler, SchedulerFactory } from './schedulers/index.js';
export { WasmvsError, ERROR_CODES } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { DropReason, FtpCounter, PassReason } from './engine/abi.js';
export type { Protocol } from './addr.js';
export { Gateway } from './gateway/gateway.js';
export type { GatewayCounters, GatewayEvents, GatewayOptions } from './gateway/gateway.js';
export { FakeDevice } from './gateway/device.js';
export type { Device, DeviceStats } from './gateway/device.js';
export { createLogger, silentLogger } from './gateway/log.js';
export type { Logger, LoggerOptions, LogFormat } from './gateway/log.js';
export type { ConfigChange } from './gateway/reload.js';
export { connectControl, controlPath, ControlClient } from './control/client.js';
export type { ControlClientOptions } from './control/client.js';
export { DEFAULT_CONTROL_PATH, PROTOCOL_VERSION } from './control/protocol.js';
export type { GatewayInfo, TableOptions } from './control/protocol.js';
export type { ReplyKind, ResponderCounters, ResponderOptions } from './responder/responder.js';
export { loadKeepalived } from './health/config.js';
export type { CheckerConfig, CheckerType, KeepalivedConfig } from './health/config.js';
export { HealthManager } from './health/manager.js';
export type { CheckerStatus, DestHealthEvent, HealthManagerOptions, QuorumEvent, RealServerStatus, VirtualServerStatus } from './health/manager.js';
export { healthManagerFor } from './health/attach.js';
