// The control protocol between a running gateway and its clients (`wasmvs adm`, the Node
// client): newline-delimited JSON over a Unix socket, one request, one reply, in order.
//
//   request  {"version":1,"id":7,"method":"addDest","params":[{"protocol":"tcp",...},{"daddr":...}]}
//   reply    {"version":1,"id":7,"ok":true,"result":null}
//   failure  {"version":1,"id":7,"ok":false,"error":{"code":"WASMVS_NO_SERVICE","message":"No such service: tcp 198.18.100.10:81"}}
//
// Methods are the engine's verbs with the engine's arguments (see METHODS); each request
// applies whole or not at all, as the engine's calls do (a restore is one all-or-nothing
// change). A request line is at most MAX_REQUEST_BYTES; a client that sends nothing for
// IDLE_TIMEOUT_MS is dropped.
//
// Besides the engine's verbs, two reads for `wasmvs adm`: `info` (the header line's version and
// table size) and `table`, the services with everything a listing prints (configuration,
// thresholds, counters, totals and rates, and with {"persistConns":true} the persistence
// templates per real server) taken in one step, so a listing never mixes two moments.

export const PROTOCOL_VERSION = 1;
export const DEFAULT_CONTROL_PATH = '/run/wasmvs.sock';
/** Large enough for a restore of a full table (4096 real servers), small enough to bound memory. */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
export const IDLE_TIMEOUT_MS = 30_000;
export const MAX_CLIENTS = 64;

/**
 * The methods a gateway answers: whether they change the configuration, and how many
 * parameters they take (each as the in-process Engine method takes it). Read methods take
 * none: a client cannot move the engine's clock (`connections(now)`).
 */
export const METHODS = {
  addService: { write: true, params: [1, 1] },
  editService: { write: true, params: [1, 1] },
  delService: { write: true, params: [1, 1] },
  clear: { write: true, params: [0, 0] },
  addDest: { write: true, params: [2, 2] },
  editDest: { write: true, params: [2, 2] },
  delDest: { write: true, params: [2, 2] },
  restore: { write: true, params: [1, 1] },
  setTimeouts: { write: true, params: [1, 1] },
  zeroStats: { write: true, params: [0, 1] },
  save: { write: false, params: [0, 0] },
  listServices: { write: false, params: [0, 0] },
  connections: { write: false, params: [0, 0] },
  statistics: { write: false, params: [0, 0] },
  getTimeouts: { write: false, params: [0, 0] },
  counters: { write: false, params: [0, 0] },
  info: { write: false, params: [0, 0] },
  table: { write: false, params: [0, 1] },
  health: { write: false, params: [0, 0] },
} as const;

export type Method = keyof typeof METHODS;

/** Limits a server enforces per client (defaults above); tests shorten them. */
export interface ControlLimits {
  maxRequestBytes: number;
  idleTimeoutMs: number;
  maxClients: number;
}

export const DEFAULT_LIMITS: ControlLimits = { maxRequestBytes: MAX_REQUEST_BYTES, idleTimeoutMs: IDLE_TIMEOUT_MS, maxClients: MAX_CLIENTS };

/** Parameters of `table`. */
export interface TableOptions {
  /** Count persistence templates per real server (walks the connection table). */
  persistConns?: boolean;
}

export interface ControlRequest {
  version: number;
  id: number;
  method: Method;
  params: unknown[];
}

export interface ControlError {
  code: string;
  message: string;
}

export type ControlReply =
  | { version: number; id: number; ok: true; result: unknown }
  | { version: number; id: number | null; ok: false; error: ControlError };

/** What `info` returns: what ipvsadm's header line and `wasmvs adm --version` show. */
export interface GatewayInfo {
  /** wasmvs's package version. */
  version: string;
  /** Connection table size (ipvsadm's "size=N"). */
  connCapacity: number;
  /** The TUN device name, or the fake device's label. */
  device: string;
  offload: boolean;
  pid: number;
}
