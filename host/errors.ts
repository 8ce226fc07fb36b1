// The one catalog of errors thrown at wasmvs's control boundaries (API, rules, files, CLI).
// The data plane never throws: its anomalies are counters and drop reasons (Engine.counters()).
// Every code here is documented in README ("Errors"); test/errors.test.ts keeps the two in sync.
// Messages follow ipvsadm's wording where ipvsadm has one, so operators recognise them.

export const ERROR_CODES = {
  WASMVS_BAD_OPTION: 'an engine option is out of range or of the wrong type',
  WASMVS_BAD_ADDRESS: 'an address is not a dotted-quad IPv4 address',
  WASMVS_BAD_PORT: 'a port is not an integer from 0 to 65535 (or 0 where it is not allowed)',
  WASMVS_BAD_PROTOCOL: 'a protocol is neither tcp nor udp',
  WASMVS_BAD_WEIGHT: 'a weight is not an integer from 0 to 65535',
  WASMVS_BAD_TIMEOUT: 'a timeout is not a whole number of seconds from 0 to 2073600 (24 days)',
  WASMVS_BAD_PERSISTENCE: 'a persistence timeout is not a whole number of seconds from 1 to 2073600',
  WASMVS_UNKNOWN_SCHEDULER: 'no scheduler of that name is registered',
  WASMVS_UNSUPPORTED: 'the rule asks for a feature wasmvs does not provide (IPv6, fwmark, -g, -i ...)',
  WASMVS_SERVICE_EXISTS: 'the service (protocol, vaddr, vport) is already defined',
  WASMVS_NO_SERVICE: 'the service is not defined',
  WASMVS_DEST_EXISTS: 'the real server is already a destination of that service',
  WASMVS_NO_DEST: 'the real server is not a destination of that service',
  WASMVS_SERVICE_LIMIT: 'the service table is full (engine option maxServices)',
  WASMVS_DEST_LIMIT: 'the destination table is full (engine option maxDests)',
  WASMVS_RULES_SYNTAX: 'a rules line is not valid ipvsadm-save syntax; the message names the line',
  WASMVS_KEEPALIVED_CONFIG: 'a keepalived.conf (--keepalived) is not valid: a syntax error, an unknown keyword or a bad value; the message names the file and line',
  WASMVS_RING_SLOT: 'a slot index or packet length does not fit the ring',
  WASMVS_FILE: 'a file could not be read or written; the message names it and the system error',
  WASMVS_PCAP_FORMAT: 'a file is not a libpcap capture wasmvs can read',
  WASMVS_PCAP_LINKTYPE: 'the capture link type is not Ethernet (1), RAW (101) or IPv4 (228)',
  WASMVS_WASM_LOAD: 'the WebAssembly module could not be found, compiled or linked',
  WASMVS_NOT_ROOT: 'the gateway needs root (CAP_NET_ADMIN) for its TUN device, routes and sysctls',
  WASMVS_TUN: 'the TUN device could not be opened or configured (no /dev/net/tun, name in use ...); the message names the system error',
  WASMVS_HOST_NET: 'a change to the host network (ip route/rule/neigh, a sysctl) failed; the message names the command and its error',
  WASMVS_VIP_LOCAL: 'a VIP is already a local address of the host, so the kernel would deliver its traffic locally',
  WASMVS_CONTROL_IN_USE: 'the control socket is held by a live gateway',
  WASMVS_CONTROL: 'the control socket could not be reached (no gateway listening, permission denied) or closed mid-request',
  WASMVS_CONTROL_REQUEST: 'a control request is malformed: not JSON, an unknown method, wrong parameters or over the size limit',
  WASMVS_ABI_MISMATCH: 'the WebAssembly module and the host disagree on the memory layout',
  WASMVS_DATAPLANE: 'the data plane refused a configuration call the host made (an engine bug: the message names the call and its code)',
  WASMVS_DATAPLANE_ASSERT: 'an assertion of the debug data plane build failed (an engine bug: the message names the place)',
  WASMVS_SCHEDULER: 'a scheduler threw while scheduling a new connection; the packet was dropped (scheduler-error) and the cause is attached',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Every error wasmvs throws on purpose is a WasmvsError with a stable `code`. */
export class WasmvsError extends Error {
  readonly code: ErrorCode;
  /** 1-based line of a rules file, when the error comes from one. */
  readonly line?: number;

  constructor(code: ErrorCode, message: string, options?: { line?: number; cause?: unknown }) {
    super(options?.line === undefined ? message : `line ${options.line}: ${message}`, { cause: options?.cause });
    this.name = 'WasmvsError';
    this.code = code;
    if (options?.line !== undefined) this.line = options.line;
  }
}
