// Rules files in ipvsadm-save syntax: what `ipvsadm-save -n` prints and `ipvsadm-restore` reads,
// one ipvsadm command line per rule.
//
//   -A -t 202.103.106.5:80 -s wrr                       add a service
//   -a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1     add a real server (dest) to it
//
// Behaviour follows ipvsadm.c (parse_options, process_options, print_service_entry) and the
// kernel checks in net/netfilter/ipvs/ip_vs_ctl.c, cut down to what wasmvs implements: IPv4
// TCP/UDP services whose dests are reached by masquerading (NAT). Only the two commands a save
// file contains, -A and -a, are accepted; everything else is refused by name rather than skipped,
// so a restore never half-applies. parseRules is pure: it returns a new RuleSet or throws a
// WasmvsError naming the first bad line, and the caller's running config is untouched.
import type { Protocol } from '../addr.js';
import { formatIPv4, parseIPv4, parsePort } from '../addr.js';
import {
  checkDestSpec, checkServiceSpec, DEFAULT_PERSISTENCE, DEFAULT_SCHEDULER, DEFAULT_WEIGHT, MAX_THRESHOLD, MAX_TIMEOUT_S as MAX_PERSISTENCE,
  MAX_WEIGHT, type DestConfig, type ServiceConfig,
} from '../engine/spec.js';
import { WasmvsError } from '../errors.js';

export type { DestConfig, DestSpec, ServiceConfig, ServiceSpec } from '../engine/spec.js';

/** A service line and its real-server lines, checked and with defaults applied. */
export interface ServiceRule extends ServiceConfig { dests: DestConfig[] }
export interface RuleSet { services: ServiceRule[] }

const SCHEDNAME_MAXLEN = 15; // IP_VS_SCHEDNAME_MAXLEN is 16 with the NUL
const SCHEDULER_NAME = /^[a-z][a-z0-9_-]*$/;
// The names ipvsadm's -b accepts; sh-* and mh-* are aliases of flag-1/flag-2 that only the sh
// and mh schedulers understand, so ipvsadm refuses them with any other scheduler.
const SCHED_FLAGS = ['flag-1', 'flag-2', 'flag-3', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port'];

type Command = 'add-service' | 'add-server';

// What an option fills in. Two options with the same slot exclude each other (-t/-u, -m/-g/-i),
// as ipvsadm's set_option() refuses a second option of the same kind.
type Slot =
  | 'command' | 'service' | 'scheduler' | 'persistent' | 'netmask' | 'schedFlags' | 'ops'
  | 'server' | 'forward' | 'weight' | 'uThreshold' | 'lThreshold';

interface OptionDef {
  short?: string;
  long: string;
  slot: Slot;
  arg: 'none' | 'required' | 'optional';
  /** Commands the option is legal with: ipvsadm's commands_v_options rows for -A and -a. */
  with: readonly Command[];
  /** The command a command option selects, or the protocol of -t/-u. */
  value?: string;
  /** Set when ipvsadm knows the option but wasmvs refuses it: the reason. */
  unsupported?: string;
}

const BOTH: readonly Command[] = ['add-service', 'add-server'];
const SVC: readonly Command[] = ['add-service'];
const DEST: readonly Command[] = ['add-server'];
const ONLY_MASQ = 'wasmvs forwards only by masquerading (-m, NAT)';

// ipvsadm commands other than -A/-a: meaningful on a command line, never in a save file.
const OTHER_COMMANDS: Array<[string | undefined, string]> = [
  ['E', 'edit-service'], ['D', 'delete-service'], ['C', 'clear'], ['e', 'edit-server'],
  ['d', 'delete-server'], ['L', 'list'], ['l', 'list'], ['Z', 'zero'], ['R', 'restore'],
  ['S', 'save'], ['h', 'help'], ['v', 'version'], [undefined, 'set'],
  [undefined, 'start-daemon'], [undefined, 'stop-daemon'],
];

const OPTIONS: readonly OptionDef[] = [
  { short: 'A', long: 'add-service', slot: 'command', arg: 'none', with: BOTH, value: 'add-service' },
  { short: 'a', long: 'add-server', slot: 'command', arg: 'none', with: BOTH, value: 'add-server' },
  ...OTHER_COMMANDS.map(([short, long]): OptionDef => ({
    short, long, slot: 'command', arg: 'none', with: BOTH,
    unsupported: 'is not supported in a rules file, which holds only -A (--add-service) and -a (--add-server) lines',
  })),
  { short: 't', long: 'tcp-service', slot: 'service', arg: 'required', with: BOTH, value: 'tcp' },
  { short: 'u', long: 'udp-service', slot: 'service', arg: 'required', with: BOTH, value: 'udp' },
  { short: 'f', long: 'fwmark-service', slot: 'service', arg: 'required', with: BOTH, unsupported: 'firewall-mark services are not supported' },
  { short: '6', long: 'ipv6', slot: 'service', arg: 'none', with: BOTH, unsupported: 'IPv6 services are not supported' },
  { short: 's', long: 'scheduler', slot: 'scheduler', arg: 'required', with: SVC },
  { short: 'p', long: 'persistent', slot: 'persistent', arg: 'optional', with: SVC },
  { short: 'M', long: 'netmask', slot: 'netmask', arg: 'required', with: SVC },
  { short: 'b', long: 'sched-flags', slot: 'schedFlags', arg: 'required', with: SVC },
  { short: 'o', long: 'ops', slot: 'ops', arg: 'none', with: SVC },
  { long: 'pe', slot: 'persistent', arg: 'required', with: SVC, unsupported: 'persistence engines are not supported' },
  { short: 'r', long: 'real-server', slot: 'server', arg: 'required', with: DEST },
  { short: 'm', long: 'masquerading', slot: 'forward', arg: 'none', with: DEST },
  { short: 'g', long: 'gatewaying', slot: 'forward', arg: 'none', with: DEST, unsupported: `direct routing is not supported; ${ONLY_MASQ}` },
  { short: 'i', long: 'ipip', slot: 'forward', arg: 'none', with: DEST, unsupported: `IP-in-IP tunnelling is not supported; ${ONLY_MASQ}` },
  { short: 'w', long: 'weight', slot: 'weight', arg: 'required', with: DEST },
  { short: 'x', long: 'u-threshold', slot: 'uThreshold', arg: 'required', with: DEST },
  { short: 'y', long: 'l-threshold', slot: 'lThreshold', arg: 'required', with: DEST },
];

const BY_NAME = new Map<string, OptionDef>();
for (const def of OPTIONS) {
  if (def.short !== undefined) BY_NAME.set(`-${def.short}`, def);
  BY_NAME.set(`--${def.long}`, def);
}

function label(def: OptionDef): string {
  return def.short === undefined ? `--${def.long}` : `-${def.short} (--${def.long})`;
}

function syntax(message: string): WasmvsError {
  return new WasmvsError('WASMVS_RULES_SYNTAX', message);
}

interface Given { def: OptionDef; arg?: string }

/** Tokens of one line -> the options given, by slot. Checks shape only, not values. */
function scanOptions(tokens: string[]): Map<Slot, Given> {
  const given = new Map<Slot, Given>();
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (!token.startsWith('-') || token === '-') throw syntax(`unexpected argument "${token}"`);
    // popt also accepts --long=value; save files never use it, hand-written ones might.
    const eq = token.startsWith('--') ? token.indexOf('=') : -1;
    const name = eq < 0 ? token : token.slice(0, eq);
    const def = BY_NAME.get(name);
    if (def === undefined) throw syntax(`unknown option "${name}"`);
    if (def.unsupported !== undefined) throw new WasmvsError('WASMVS_UNSUPPORTED', `${label(def)}: ${def.unsupported}`);
    let arg = eq < 0 ? undefined : token.slice(eq + 1);
    if (def.arg === 'none' && arg !== undefined) throw syntax(`${label(def)} takes no argument`);
    if (def.arg !== 'none' && arg === undefined) {
      // As popt: an optional argument (-p [timeout]) is taken only when the next word is not an option.
      const next = tokens[i + 1];
      if (next !== undefined && !next.startsWith('-')) {
        arg = next;
        i++;
      } else if (def.arg === 'required') {
        throw syntax(`${label(def)} requires an argument`);
      }
    }
    const prev = given.get(def.slot);
    if (prev !== undefined) {
      if (def.slot === 'command') throw syntax('multiple commands specified');
      throw syntax(prev.def === def ? `${label(def)} given more than once` : `${label(def)} conflicts with ${label(prev.def)}`);
    }
    given.set(def.slot, { def, arg });
  }
  return given;
}

/** "a.b.c.d[:port]" -> normalised address and the port, if one was given (ipvsadm's parse_service). */
function parseAddrPort(text: string, what: string): [string, number | undefined] {
  // ipvsadm writes IPv6 endpoints as "[::1]:80"; a bare IPv6 address has more than one colon.
  if (text.startsWith('[') || text.indexOf(':') !== text.lastIndexOf(':')) {
    throw new WasmvsError('WASMVS_UNSUPPORTED', `${what} "${text}": IPv6 addresses are not supported`);
  }
  const colon = text.indexOf(':');
  const addr = formatIPv4(parseIPv4(colon < 0 ? text : text.slice(0, colon)));
  return [addr, colon < 0 ? undefined : parsePort(text.slice(colon + 1), `${what} port`)];
}

/** Strict decimal in [min, max], or undefined (ipvsadm's string_to_number, without strtol's slack). */
function parseInteger(text: string, min: number, max: number): number | undefined {
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

function parseScheduler(name: string): string {
  if (!SCHEDULER_NAME.test(name) || name.length > SCHEDNAME_MAXLEN) {
    throw syntax(`scheduler "${name}" is not a lowercase name of at most ${SCHEDNAME_MAXLEN} characters`);
  }
  return name;
}

function parsePersistence(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PERSISTENCE;
  const seconds = parseInteger(text, 1, MAX_PERSISTENCE);
  if (seconds === undefined) {
    throw new WasmvsError('WASMVS_BAD_PERSISTENCE', `invalid timeout value "${text}" specified: persistence is 1 to ${MAX_PERSISTENCE} seconds`);
  }
  return seconds;
}

function parseSchedFlags(text: string, scheduler: string): string[] {
  const flags = text.split(',');
  for (const flag of flags) {
    if (!SCHED_FLAGS.includes(flag)) throw syntax(`invalid scheduler flag "${flag}"; known flags are ${SCHED_FLAGS.join(', ')}`);
    const owner = flag.startsWith('sh-') ? 'sh' : flag.startsWith('mh-') ? 'mh' : undefined;
    if (owner !== undefined && owner !== scheduler) throw syntax(`incompatible scheduler flag "${flag}": it applies only to the ${owner} scheduler`);
  }
  return flags;
}

function parseThreshold(text: string, name: string): number | undefined {
  const n = parseInteger(text, 0, MAX_THRESHOLD);
  if (n === undefined) throw syntax(`illegal ${name} specified: "${text}" is not an integer from 0 to ${MAX_THRESHOLD}`);
  return n === 0 ? undefined : n; // 0 means "no threshold"; leave it absent so emit/parse round-trips
}

function serviceKey(protocol: Protocol, vaddr: string, vport: number): string {
  return `${protocol} ${vaddr}:${vport}`;
}

/** Applies one non-empty line to the services built so far (keyed by serviceKey). */
function applyLine(tokens: string[], byKey: Map<string, ServiceRule>, services: ServiceRule[]): void {
  const given = scanOptions(tokens);
  const command = given.get('command')?.def.value as Command | undefined;
  if (command === undefined) throw syntax('no command: a rules line is -A (--add-service) or -a (--add-server)');
  for (const { def } of given.values()) {
    if (!def.with.includes(command)) throw syntax(`illegal ${label(def)} option with the '${command}' command`);
  }
  const svc = given.get('service');
  if (svc === undefined) throw syntax(`you need to supply -t or -u (the service address) for the '${command}' command`);
  const protocol = svc.def.value as Protocol;
  const [vaddr, vportGiven] = parseAddrPort(svc.arg!, 'virtual service');
  const vport = vportGiven ?? 0;
  const key = serviceKey(protocol, vaddr, vport);
  if (command === 'add-service') addService(given, { protocol, vaddr, vport, key }, byKey, services);
  else addDest(given, key, byKey);
}

function addService(
  given: Map<Slot, Given>,
  id: { protocol: Protocol; vaddr: string; vport: number; key: string },
  byKey: Map<string, ServiceRule>,
  services: ServiceRule[],
): void {
  const scheduler = parseScheduler(given.get('scheduler')?.arg ?? DEFAULT_SCHEDULER);
  const spec: ServiceConfig = { protocol: id.protocol, vaddr: id.vaddr, vport: id.vport, scheduler };
  const persistent = given.get('persistent');
  if (persistent !== undefined) spec.persistence = parsePersistence(persistent.arg);
  const netmask = given.get('netmask');
  if (netmask !== undefined) spec.netmask = netmask.arg!;
  const flags = given.get('schedFlags');
  if (flags !== undefined) spec.schedFlags = parseSchedFlags(flags.arg!, scheduler);
  if (given.has('ops')) spec.onePacket = true;
  // Values are checked where the API checks them (host/engine/spec.ts): the same code and
  // message from a rules file as from addService.
  const rule: ServiceRule = { ...checkServiceSpec(spec), dests: [] };
  // A rules file keeps the mask as written (a /32 too), so that emit and parse round-trip.
  if (spec.netmask !== undefined) rule.netmask = formatIPv4(parseIPv4(spec.netmask));
  if (byKey.has(id.key)) throw new WasmvsError('WASMVS_SERVICE_EXISTS', `Service already exists: ${id.key}`);
  byKey.set(id.key, rule);
  services.push(rule);
}

function addDest(given: Map<Slot, Given>, key: string, byKey: Map<string, ServiceRule>): void {
  const server = given.get('server');
  if (server === undefined) throw syntax(`you need to supply -r (--real-server) for the 'add-server' command`);
  if (!given.has('forward')) {
    throw new WasmvsError('WASMVS_UNSUPPORTED', `no forwarding method: ipvsadm's default is -g (direct routing), but ${ONLY_MASQ}; add -m`);
  }
  const [daddr, dportGiven] = parseAddrPort(server.arg!, 'real server');
  const weightText = given.get('weight')?.arg;
  const weight = weightText === undefined ? DEFAULT_WEIGHT : parseInteger(weightText, 0, MAX_WEIGHT);
  if (weight === undefined) throw new WasmvsError('WASMVS_BAD_WEIGHT', `illegal weight specified: "${weightText}" is not an integer from 0 to ${MAX_WEIGHT}`);
  const uText = given.get('uThreshold')?.arg;
  const lText = given.get('lThreshold')?.arg;
  const upper = uText === undefined ? undefined : parseThreshold(uText, 'u_threshold');
  const lower = lText === undefined ? undefined : parseThreshold(lText, 'l_threshold');

  const rule = byKey.get(key);
  if (rule === undefined) throw new WasmvsError('WASMVS_NO_SERVICE', `Service not defined: ${key}`);
  // Without a port the dest takes the service's port, as ipvsadm's parse_options copies vport.
  const dport = dportGiven ?? rule.vport;
  if (rule.dests.some((d) => d.daddr === daddr && d.dport === dport)) {
    throw new WasmvsError('WASMVS_DEST_EXISTS', `Destination already exists: ${daddr}:${dport} in ${key}`);
  }
  rule.dests.push(checkDestSpec({ daddr, dport, weight, upperThreshold: upper, lowerThreshold: lower }, rule.vport));
}

/** Parses a whole rules file; throws a WasmvsError carrying the 1-based line of the first error. */
export function parseRules(text: string): RuleSet {
  const byKey = new Map<string, ServiceRule>();
  const services: ServiceRule[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const hash = lines[i].indexOf('#');
    const body = hash < 0 ? lines[i] : lines[i].slice(0, hash);
    const tokens = body.split(/\s+/).filter((t) => t !== '');
    if (tokens.length === 0) continue;
    try {
      applyLine(tokens, byKey, services);
    } catch (err) {
      // Errors from here and from addr.ts are raised without a line; add it in this one place.
      if (err instanceof WasmvsError && err.line === undefined) {
        throw new WasmvsError(err.code, err.message, { line: i + 1, cause: err });
      }
      throw err;
    }
  }
  return { services };
}

/** Prints rules as `ipvsadm-save -n` does: each service line followed by its dests, in order. */
export function emitRules(rules: RuleSet): string {
  let out = '';
  for (const s of rules.services) {
    const svc = `${s.protocol === 'tcp' ? '-t' : '-u'} ${s.vaddr}:${s.vport}`;
    out += `-A ${svc} -s ${s.scheduler}`;
    if (s.persistence !== undefined) {
      out += ` -p ${s.persistence}`;
      if (s.netmask !== undefined) out += ` -M ${s.netmask}`;
    }
    if (s.schedFlags !== undefined && s.schedFlags.length > 0) out += ` -b ${s.schedFlags.join(',')}`;
    if (s.onePacket) out += ' -o';
    out += '\n';
    for (const d of s.dests) {
      out += `-a ${svc} -r ${d.daddr}:${d.dport} -m -w ${d.weight}`;
      if (d.upperThreshold) out += ` -x ${d.upperThreshold}`;
      if (d.lowerThreshold) out += ` -y ${d.lowerThreshold}`;
      out += '\n';
    }
  }
  return out;
}
