// ipvsadm's command line: the one option table, the legal combinations of commands and
// options, and the parser that the rules file (host/ipvsadm/rules.ts: one command per line)
// and `wasmvs adm` (host/cli/adm.ts: argv) share.
//
// Behaviour is ipvsadm 1.31's (ipvsadm.c parse_options, process_options, generic_opt_check,
// set_option, parse_service, parse_sched_flags, string_to_number; options parsed by popt):
//   - the first option must be a command; a later command is "invalid option";
//   - short options bundle (-Ln, -Lnc), an argument may be attached (-w5, --weight=5) or be the
//     next word; -p's argument is optional and taken only when the next word is no option;
//   - commands_v_options (below, one row per command, one column per option kind) makes an
//     option compulsory ('+'), illegal ('x'), exclusive with the other '1's, or optional;
//   - messages and exit statuses are ipvsadm's: fail(2, ...) for parse errors, 255 for popt's
//     own errors (unknown option, missing argument) and for a first option that is no command.
// Options for what wasmvs does not do (direct routing, tunnels, fwmark and SCTP services,
// IPv6, persistence engines, the sync daemon) are refused by name, never ignored.
import { formatIPv4, parseIPv4, parsePort, type Protocol } from '../addr.js';
import type { Timeouts } from '../engine/engine.js';
import { DEFAULT_PERSISTENCE } from '../engine/spec.js';
import { WasmvsError, type ErrorCode } from '../errors.js';
import { SCHED_FLAGS, schedFlagOwner } from '../schedulers/common.js';

/** ipvsadm's MAX_TIMEOUT: 31 days (wasmvs's own limit, 24 days, is the engine's to enforce). */
export const IPVSADM_MAX_TIMEOUT = 86400 * 31;
/** IP_VS_SCHEDNAME_MAXLEN less its NUL: ipvsadm copies at most this much of -s. */
const SCHEDNAME_MAXLEN = 15;
const INT_MAX = 2147483647;

/** ipvsadm's cmdnames[], plus the two commands that exit at once. */
export type CommandName =
  | 'add-service' | 'edit-service' | 'delete-service' | 'flush' | 'list' | 'add-server'
  | 'delete-server' | 'edit-server' | 'set' | 'start-daemon' | 'stop-daemon' | 'restore'
  | 'save' | 'zero' | 'help' | 'version';

/** ipvsadm's optnames[], in the order of its OPTC_ columns. */
const OPT_NAMES = [
  'numeric', 'connection', 'service-address', 'scheduler', 'persistent', 'netmask', 'real-server',
  'forwarding-method', 'weight', 'u-threshold', 'l-threshold', 'mcast-interface', 'timeout', 'daemon',
  'stats', 'rate', 'thresholds', 'persistent-conn', 'nosort', 'syncid', 'exact', 'ops', 'pe',
  'sched-flags', 'mcast-group', 'mcast-port', 'mcast-ttl', 'sync-maxlen', 'tun-info', 'tun-type',
  'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum',
] as const;
export type OptionKind = (typeof OPT_NAMES)[number];
const COLUMN = new Map<OptionKind, number>(OPT_NAMES.map((n, i) => [n, i]));

// commands_v_options of ipvsadm.c, one string per command, one character per OPT_NAMES column:
// '+' compulsory, 'x' illegal, '1' exclusive (one '1' at most), ' ' optional.
//                                     -n-c svc-s -p -M -r fwd-w -x -y mc tot dmn st rt thr pc srt sid ex ops pe -b grp prt ttl sz tinf type tprt nocs csum remc
const COMMANDS_V_OPTIONS: Partial<Record<CommandName, string>> = {
  'add-service': 'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  'edit-service': 'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  'delete-service': 'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  flush: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  list: ' 11xxxxxxxxx11       xxxxxxx xxxxx',
  'add-server': 'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  'delete-server': 'xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'edit-server': 'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  set: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'start-daemon': 'xxxxxxxxxxx xxxxxxx xxxx    xxxxxx',
  'stop-daemon': 'xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx',
  restore: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  save: ' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  zero: 'xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
};

const ONLY_MASQ = 'wasmvs forwards only by masquerading (-m, NAT)';

interface OptionDef {
  short?: string;
  long: string;
  arg: 'none' | 'required' | 'optional';
  /** A command option: the command it selects. */
  command?: CommandName;
  /** The commands_v_options column it sets (set_option), if any. */
  kind?: OptionKind;
  /** Set when ipvsadm has the option and wasmvs refuses it: what is not supported. */
  unsupported?: string;
}

// The table of parse_options(), in its order. Every option ipvsadm 1.31 knows is here.
const OPTIONS: readonly OptionDef[] = [
  { short: 'A', long: 'add-service', arg: 'none', command: 'add-service' },
  { short: 'E', long: 'edit-service', arg: 'none', command: 'edit-service' },
  { short: 'D', long: 'delete-service', arg: 'none', command: 'delete-service' },
  { short: 'C', long: 'clear', arg: 'none', command: 'flush' },
  { short: 'L', long: 'list', arg: 'none', command: 'list' },
  { short: 'l', long: 'list', arg: 'none', command: 'list' },
  { short: 'Z', long: 'zero', arg: 'none', command: 'zero' },
  { short: 'a', long: 'add-server', arg: 'none', command: 'add-server' },
  { short: 'e', long: 'edit-server', arg: 'none', command: 'edit-server' },
  { short: 'd', long: 'delete-server', arg: 'none', command: 'delete-server' },
  { long: 'set', arg: 'none', command: 'set' },
  { short: 'h', long: 'help', arg: 'none', command: 'help' },
  { short: 'v', long: 'version', arg: 'none', command: 'version' },
  { short: 'R', long: 'restore', arg: 'none', command: 'restore' },
  { short: 'S', long: 'save', arg: 'none', command: 'save' },
  { long: 'start-daemon', arg: 'required', command: 'start-daemon', unsupported: 'the connection synchronisation daemon' },
  { long: 'stop-daemon', arg: 'required', command: 'stop-daemon', unsupported: 'the connection synchronisation daemon' },
  { short: 't', long: 'tcp-service', arg: 'required', kind: 'service-address' },
  { short: 'u', long: 'udp-service', arg: 'required', kind: 'service-address' },
  { long: 'sctp-service', arg: 'required', kind: 'service-address', unsupported: 'SCTP services' },
  { short: 'f', long: 'fwmark-service', arg: 'required', kind: 'service-address', unsupported: 'firewall-mark services' },
  { short: 's', long: 'scheduler', arg: 'required', kind: 'scheduler' },
  { short: 'p', long: 'persistent', arg: 'optional', kind: 'persistent' },
  { short: 'M', long: 'netmask', arg: 'required', kind: 'netmask' },
  { short: 'r', long: 'real-server', arg: 'required', kind: 'real-server' },
  { short: 'm', long: 'masquerading', arg: 'none', kind: 'forwarding-method' },
  { short: 'i', long: 'ipip', arg: 'none', kind: 'forwarding-method', unsupported: `IP-in-IP tunnelling; ${ONLY_MASQ}` },
  { short: 'g', long: 'gatewaying', arg: 'none', kind: 'forwarding-method', unsupported: `direct routing; ${ONLY_MASQ}` },
  { short: 'w', long: 'weight', arg: 'required', kind: 'weight' },
  { short: 'x', long: 'u-threshold', arg: 'required', kind: 'u-threshold' },
  { short: 'y', long: 'l-threshold', arg: 'required', kind: 'l-threshold' },
  { short: 'n', long: 'numeric', arg: 'none', kind: 'numeric' },
  { short: 'c', long: 'connection', arg: 'none', kind: 'connection' },
  { long: 'mcast-interface', arg: 'required', kind: 'mcast-interface', unsupported: 'the connection synchronisation daemon' },
  { long: 'syncid', arg: 'required', kind: 'syncid', unsupported: 'the connection synchronisation daemon' },
  { long: 'timeout', arg: 'none', kind: 'timeout' },
  { long: 'daemon', arg: 'none', kind: 'daemon' },
  { long: 'stats', arg: 'none', kind: 'stats' },
  { long: 'rate', arg: 'none', kind: 'rate' },
  { long: 'thresholds', arg: 'none', kind: 'thresholds' },
  { long: 'persistent-conn', arg: 'none', kind: 'persistent-conn' },
  { long: 'nosort', arg: 'none', kind: 'nosort' },
  { long: 'sort', arg: 'none' }, // "does nothing, for backwards compatibility"
  { short: 'X', long: 'exact', arg: 'none', kind: 'exact' },
  { short: '6', long: 'ipv6', arg: 'none', unsupported: 'IPv6 (fwmark) services' },
  { short: 'o', long: 'ops', arg: 'none', kind: 'ops' },
  { long: 'pe', arg: 'required', kind: 'pe', unsupported: 'persistence engines' },
  { short: 'b', long: 'sched-flags', arg: 'required', kind: 'sched-flags' },
  { long: 'mcast-group', arg: 'required', kind: 'mcast-group', unsupported: 'the connection synchronisation daemon' },
  { long: 'mcast-port', arg: 'required', kind: 'mcast-port', unsupported: 'the connection synchronisation daemon' },
  { long: 'mcast-ttl', arg: 'required', kind: 'mcast-ttl', unsupported: 'the connection synchronisation daemon' },
  { long: 'sync-maxlen', arg: 'required', kind: 'sync-maxlen', unsupported: 'the connection synchronisation daemon' },
  { long: 'tun-info', arg: 'none', kind: 'tun-info' },
  { long: 'tun-type', arg: 'required', kind: 'tun-type', unsupported: `tunnelling; ${ONLY_MASQ}` },
  { long: 'tun-port', arg: 'required', kind: 'tun-port', unsupported: `tunnelling; ${ONLY_MASQ}` },
  { long: 'tun-nocsum', arg: 'none', kind: 'tun-nocsum', unsupported: `tunnelling; ${ONLY_MASQ}` },
  { long: 'tun-csum', arg: 'none', kind: 'tun-csum', unsupported: `tunnelling; ${ONLY_MASQ}` },
  { long: 'tun-remcsum', arg: 'none', kind: 'tun-remcsum', unsupported: `tunnelling; ${ONLY_MASQ}` },
];

const BY_SHORT = new Map<string, OptionDef>();
const BY_LONG = new Map<string, OptionDef>();
for (const def of OPTIONS) {
  if (def.short !== undefined) BY_SHORT.set(def.short, def);
  if (!BY_LONG.has(def.long)) BY_LONG.set(def.long, def);
}

/**
 * A command-line error with ipvsadm's message (exactly what ipvsadm prints on stderr) and its
 * exit status: 2 for fail(2, ...), 255 for popt's errors and the "Try ... -h" exit.
 */
export class IpvsadmError extends WasmvsError {
  readonly status: number;
  constructor(code: ErrorCode, message: string, status = 2) {
    super(code, message);
    this.status = status;
  }
}

/** An address[:port] as given: `addr` is set when it is a dotted quad, else `host` needs a look-up. */
export interface Endpoint {
  /** The address as written (a host name, or the dotted quad). */
  host: string;
  /** Normalised dotted quad, when the text was one. */
  addr?: string;
  /** The port, when one was given (by number or by a service name). */
  port?: number;
}

export interface ListFormat {
  numeric: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  nosort: boolean;
  exact: boolean;
  tunInfo: boolean;
}

/** One ipvsadm command line, parsed and checked as ipvsadm checks it before calling the kernel. */
export interface IpvsadmCommand {
  command: CommandName;
  /** The option kinds given (set_option's bits). */
  options: Set<OptionKind>;
  protocol?: Protocol;
  service?: Endpoint;
  /** -s as given (cut at 15 characters, as strncpy into sched_name); defaults are the caller's. */
  scheduler?: string;
  /** -p seconds (a bare -p: DEFAULT_PERSISTENCE, ipvsadm's IPVS_SVC_PERSISTENT_TIMEOUT). */
  persistence?: number;
  netmask?: string;
  schedFlags?: string[];
  onePacket?: boolean;
  server?: Endpoint;
  weight?: number;
  upperThreshold?: number;
  lowerThreshold?: number;
  format: ListFormat;
  /** --set tcp tcpfin udp. */
  timeouts?: Timeouts;
}

export interface ParseOptions {
  /**
   * 'rules': a rules file, which must be pure: addresses are dotted quads and ports numbers,
   * errors carry addr.ts's codes. 'cli' (default): as ipvsadm, host names are left for the
   * caller to resolve and ports may be names from /etc/services (`servicePort`).
   */
  mode?: 'cli' | 'rules';
  /** A port by its /etc/services name for the protocol, or undefined. */
  servicePort?: (name: string, protocol: Protocol) => number | undefined;
  /** argv[0] for the "Try `%s -h'" line (default "ipvsadm"). */
  program?: string;
}

const fail = (message: string, code: ErrorCode = 'WASMVS_RULES_SYNTAX'): IpvsadmError => new IpvsadmError(code, message, 2);

/** strtol with ipvsadm's string_to_number checks: the whole word, in [min, max]; else undefined. */
export function stringToNumber(text: string, min: number, max: number): number | undefined {
  if (!/^[ \t\n\v\f\r]*[+-]?\d+$/.test(text)) return undefined;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
}

/** parse_service(): "host[:port]"; `what` names it in the message ("virtual server", "real server"). */
function parseEndpoint(text: string, protocol: Protocol | undefined, what: string, o: ParseOptions): Endpoint {
  const illegal = () => fail(`illegal ${what} address[:port] specified`, 'WASMVS_BAD_ADDRESS');
  // A word of digits only is no address (str_is_digit), nor is an empty one.
  if (/^\d*$/.test(text)) throw illegal();
  // "[v6]:port" and bare IPv6 addresses parse in ipvsadm; wasmvs has no IPv6 services.
  if (text.startsWith('[') || text.indexOf(':') !== text.lastIndexOf(':')) {
    throw fail(`${what} "${text}": wasmvs does not support IPv6`, 'WASMVS_UNSUPPORTED');
  }
  const colon = text.lastIndexOf(':');
  const host = colon < 0 ? text : text.slice(0, colon);
  const portText = colon < 0 ? undefined : text.slice(colon + 1);
  const out: Endpoint = { host };
  if (o.mode === 'rules') {
    out.addr = formatIPv4(parseIPv4(host));
    if (portText !== undefined) out.port = parsePort(portText, `${what === 'virtual server' ? 'virtual service' : what} port`);
    return out;
  }
  if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) {
    try { out.addr = formatIPv4(parseIPv4(host)); } catch { throw illegal(); }
  } else if (host === '' || !/^[A-Za-z0-9._-]+$/.test(host)) {
    throw illegal();
  }
  if (portText !== undefined) {
    const n = stringToNumber(portText, 0, 65535);
    const port = n ?? (protocol ? o.servicePort?.(portText, protocol) : undefined);
    if (port === undefined) throw illegal();
    out.port = port;
  }
  return out;
}

function parseSchedFlags(text: string, scheduler: string): string[] {
  // strtok(optarg, ","): empty fields are skipped.
  const flags = text.split(',').filter((f) => f !== '');
  for (const flag of flags) {
    if (!SCHED_FLAGS.includes(flag)) throw fail(`invalid scheduler flag \`${flag}'`, 'WASMVS_BAD_OPTION');
    const owner = schedFlagOwner(flag);
    if (owner !== undefined && owner !== scheduler) throw fail(`incompatible scheduler flag \`${flag}'`, 'WASMVS_BAD_OPTION');
  }
  return flags;
}

function label(def: OptionDef, asGiven: string): string {
  return asGiven.startsWith('--') ? `--${def.long}` : `-${def.short}`;
}

const EMPTY_FORMAT = (): ListFormat => ({
  numeric: false, stats: false, rate: false, thresholds: false, persistentConn: false, nosort: false, exact: false, tunInfo: false,
});

/**
 * Parses one ipvsadm command line (without the program name). Throws an IpvsadmError with
 * ipvsadm's message and exit status; on success the command passed every check ipvsadm makes
 * before it asks the kernel (the rest, such as an unknown scheduler, is the engine's).
 */
export function parseCommand(words: readonly string[], options: ParseOptions = {}): IpvsadmCommand {
  const program = options.program ?? 'ipvsadm';
  // A line that does not start with a command: ipvsadm's tryhelp_exit(argv[0], -1).
  const tryHelp = () => (options.mode === 'rules'
    ? fail('no command: a line starts with a command, -A (--add-service) or -a (--add-server)')
    : new IpvsadmError('WASMVS_RULES_SYNTAX', `Try \`${program} -h' or '${program} --help' for more information.`, 255));
  // popt's own errors: "<option>: <poptStrerror>", and process_options returns -1 (exit 255).
  const poptError = (opt: string, why: string) => new IpvsadmError('WASMVS_RULES_SYNTAX', `${opt}: ${why}`, 255);

  const cmd: IpvsadmCommand = { command: 'list', options: new Set(), format: EMPTY_FORMAT() };
  let haveCommand = false;
  const positional: string[] = [];
  let schedFlagsText: string | undefined;

  const setOption = (kind: OptionKind) => {
    if (cmd.options.has(kind)) throw fail(`multiple '${kind}' options specified`);
    cmd.options.add(kind);
  };

  const apply = (def: OptionDef, asGiven: string, arg: string | undefined) => {
    if (!haveCommand) {
      if (def.command === undefined) throw tryHelp();
      if (def.unsupported !== undefined) throw fail(`${label(def, asGiven)}: wasmvs does not support ${def.unsupported}`, 'WASMVS_UNSUPPORTED');
      cmd.command = def.command;
      haveCommand = true;
      return;
    }
    // Only the first option may be a command; ipvsadm's loop knows no other.
    if (def.command !== undefined) throw fail(`invalid option \`${asGiven}'`);
    if (def.unsupported !== undefined) throw fail(`${label(def, asGiven)}: wasmvs does not support ${def.unsupported}`, 'WASMVS_UNSUPPORTED');
    if (def.kind === undefined) return; // --sort
    setOption(def.kind);
    const a = arg as string;
    switch (def.kind) {
      case 'service-address':
        cmd.protocol = def.short === 'u' ? 'udp' : 'tcp';
        cmd.service = parseEndpoint(a, cmd.protocol, 'virtual server', options);
        break;
      case 'scheduler':
        cmd.scheduler = a.slice(0, SCHEDNAME_MAXLEN);
        break;
      case 'persistent': {
        if (arg === undefined) { cmd.persistence = DEFAULT_PERSISTENCE; break; }
        const n = stringToNumber(a, 1, IPVSADM_MAX_TIMEOUT);
        if (n === undefined) throw fail(`invalid timeout value \`${a}' specified`, 'WASMVS_BAD_PERSISTENCE');
        cmd.persistence = n;
        break;
      }
      case 'netmask':
        try {
          cmd.netmask = formatIPv4(parseIPv4(a));
        } catch (err) {
          if (options.mode === 'rules') throw err;
          throw fail('illegal virtual server persistent mask specified', 'WASMVS_BAD_ADDRESS');
        }
        break;
      case 'real-server':
        cmd.server = parseEndpoint(a, cmd.protocol, 'real server', options);
        break;
      case 'weight': {
        const n = stringToNumber(a, 0, 65535);
        if (n === undefined) throw fail('illegal weight specified', 'WASMVS_BAD_WEIGHT');
        cmd.weight = n;
        break;
      }
      case 'u-threshold':
      case 'l-threshold': {
        const n = stringToNumber(a, 0, INT_MAX);
        if (n === undefined) throw fail(`illegal ${def.kind === 'u-threshold' ? 'u' : 'l'}_threshold specified`);
        if (def.kind === 'u-threshold') cmd.upperThreshold = n; else cmd.lowerThreshold = n;
        break;
      }
      case 'ops': cmd.onePacket = true; break;
      case 'sched-flags': schedFlagsText = a; break;
      case 'numeric': cmd.format.numeric = true; break;
      case 'stats': cmd.format.stats = true; break;
      case 'rate': cmd.format.rate = true; break;
      case 'thresholds': cmd.format.thresholds = true; break;
      case 'persistent-conn': cmd.format.persistentConn = true; break;
      case 'nosort': cmd.format.nosort = true; break;
      case 'exact': cmd.format.exact = true; break;
      case 'tun-info': cmd.format.tunInfo = true; break;
      default: break; // -c, -m, --timeout, --daemon: the bit alone
    }
  };

  let endOfOptions = false;
  for (let i = 0; i < words.length; i++) {
    const word = words[i];
    if (endOfOptions || word === '-' || !word.startsWith('-')) {
      if (!haveCommand) throw tryHelp();
      positional.push(word);
      continue;
    }
    if (word === '--') { endOfOptions = true; continue; }
    // As popt: an option's argument is the rest of the word, or the next word; an optional
    // argument (-p [timeout]) only when the next word does not start with '-'.
    const takeArg = (def: OptionDef, attached: string | undefined, asGiven: string): string | undefined => {
      if (def.arg === 'none') return undefined;
      if (attached !== undefined) return attached;
      const next = words[i + 1];
      if (next === undefined || (def.arg === 'optional' && next.startsWith('-'))) {
        if (def.arg === 'optional') return undefined;
        throw haveCommand ? poptError(asGiven, 'missing argument') : tryHelp();
      }
      i++;
      return next;
    };
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = eq < 0 ? word : word.slice(0, eq);
      const def = BY_LONG.get(name.slice(2));
      if (def === undefined) throw haveCommand ? poptError(name, 'unknown option') : tryHelp();
      if (def.arg === 'none' && eq >= 0) throw haveCommand ? poptError(name, 'option does not take an argument') : tryHelp();
      apply(def, name, takeArg(def, eq < 0 ? undefined : word.slice(eq + 1), name));
      continue;
    }
    for (let j = 1; j < word.length; j++) {
      const def = BY_SHORT.get(word[j]);
      if (def === undefined) throw haveCommand ? poptError(`-${word[j]}`, 'unknown option') : tryHelp();
      const rest = word.slice(j + 1);
      if (def.arg !== 'none') {
        apply(def, `-${word[j]}`, takeArg(def, rest === '' ? undefined : rest, `-${word[j]}`));
        break;
      }
      apply(def, `-${word[j]}`, undefined);
    }
  }
  if (!haveCommand) throw tryHelp();
  if (cmd.command === 'help' || cmd.command === 'version') return cmd;

  if (cmd.command === 'set') {
    if (positional.length < 3) throw fail('--set option requires 3 timeout values');
    const [tcp, tcpfin, udp] = positional.splice(0, 3).map((t) => {
      const n = stringToNumber(t, 0, IPVSADM_MAX_TIMEOUT);
      if (n === undefined) throw fail(`invalid timeout value \`${t}' specified`, 'WASMVS_BAD_TIMEOUT');
      return n;
    });
    cmd.timeouts = { tcp, tcpfin, udp };
  }
  if (positional.length > 0) throw fail(`unexpected argument ${positional[0]}`);
  // -b is read last, against the scheduler finally given (ipvsadm's default: wlc).
  if (schedFlagsText !== undefined && schedFlagsText !== '') cmd.schedFlags = parseSchedFlags(schedFlagsText, cmd.scheduler || 'wlc');

  checkCombinations(cmd.command, cmd.options);

  if (cmd.command === 'add-service' || cmd.command === 'edit-service') {
    if (!cmd.service?.port && cmd.persistence === undefined) throw fail('Zero port specified for non-persistent service', 'WASMVS_BAD_PORT');
    if (cmd.onePacket && cmd.protocol !== 'udp') throw fail('One-Packet Scheduling is only for UDP virtual services', 'WASMVS_BAD_OPTION');
  }
  if ((cmd.command === 'add-server' || cmd.command === 'edit-server') && !cmd.options.has('forwarding-method')) {
    // ipvsadm's default forwarding is direct routing (process_options: IP_VS_CONN_F_DROUTE),
    // and -e sends the whole server: without -m it would switch the server to -g.
    throw fail(`no forwarding method: ipvsadm's default is -g (direct routing), which wasmvs does not support; ${ONLY_MASQ}: add -m`, 'WASMVS_UNSUPPORTED');
  }
  if (cmd.command === 'list') {
    const o = cmd.options;
    const any = (...k: OptionKind[]) => k.some((x) => o.has(x));
    if ((any('connection', 'timeout', 'daemon') && any('stats', 'rate', 'thresholds')) || (any('timeout', 'daemon') && o.has('persistent-conn'))) {
      throw fail('options conflicts in the list command');
    }
  }
  return cmd;
}

/** generic_opt_check(): the command's row of commands_v_options, column by column. */
function checkCombinations(command: CommandName, given: ReadonlySet<OptionKind>): void {
  const row = COMMANDS_V_OPTIONS[command];
  if (row === undefined) return;
  let exclusive: OptionKind | undefined;
  for (const [j, kind] of OPT_NAMES.entries()) {
    const rule = row[j];
    if (!given.has(kind)) {
      if (rule === '+') throw fail(`You need to supply the '${kind}' option for the '${command}' command`);
      continue;
    }
    if (rule === 'x') throw fail(`Illegal '${kind}' option with the '${command}' command`);
    if (rule === '1') {
      if (exclusive !== undefined) throw fail(`The option '${kind}' conflicts with the '${exclusive}' option in the '${command}' command`);
      exclusive = kind;
    }
  }
}

/** The column of an option kind in commands_v_options (for tests and documentation). */
export function optionColumn(kind: OptionKind): number {
  return COLUMN.get(kind)!;
}

/** What commands_v_options says of `kind` with `command`: '+', 'x', '1' or ' '. */
export function combinationRule(command: CommandName, kind: OptionKind): string | undefined {
  return COMMANDS_V_OPTIONS[command]?.[optionColumn(kind)];
}

export const OPTION_KINDS: readonly OptionKind[] = OPT_NAMES;
export const TABLE_COMMANDS = Object.keys(COMMANDS_V_OPTIONS) as CommandName[];
