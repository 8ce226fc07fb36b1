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
import { formatIPv4, parseIPv4, type Protocol } from '../addr.js';
import {
  checkDestSpec, checkServiceSpec, DEFAULT_SCHEDULER, DEFAULT_WEIGHT, type DestConfig, type ServiceConfig,
} from '../engine/spec.js';
import { WasmvsError } from '../errors.js';
import { parseCommand } from './command.js';

export type { DestConfig, DestSpec, ServiceConfig, ServiceSpec } from '../engine/spec.js';

/** A service line and its real-server lines, checked and with defaults applied. */
export interface ServiceRule extends ServiceConfig { dests: DestConfig[] }
export interface RuleSet { services: ServiceRule[] }

function serviceKey(protocol: Protocol, vaddr: string, vport: number): string {
  return `${protocol} ${vaddr}:${vport}`;
}

/** Applies one non-empty line to the services built so far (keyed by serviceKey). */
function applyLine(tokens: string[], byKey: Map<string, ServiceRule>, services: ServiceRule[]): void {
  // The same parser as `wasmvs adm`: ipvsadm's options, combinations and messages.
  const cmd = parseCommand(tokens, { mode: 'rules' });
  if (cmd.command !== 'add-service' && cmd.command !== 'add-server') {
    throw new WasmvsError('WASMVS_UNSUPPORTED', `the '${cmd.command}' command is not supported in a rules file, which holds only -A (--add-service) and -a (--add-server) lines`);
  }
  const protocol = cmd.protocol as Protocol;
  const vaddr = cmd.service!.addr!;
  const vport = cmd.service!.port ?? 0;
  const key = serviceKey(protocol, vaddr, vport);
  if (cmd.command === 'add-service') {
    const spec: ServiceConfig = { protocol, vaddr, vport, scheduler: cmd.scheduler || DEFAULT_SCHEDULER };
    if (cmd.persistence !== undefined) spec.persistence = cmd.persistence;
    if (cmd.netmask !== undefined) spec.netmask = cmd.netmask;
    if (cmd.schedFlags !== undefined) spec.schedFlags = cmd.schedFlags;
    if (cmd.onePacket) spec.onePacket = true;
    // Values are checked where the API checks them (host/engine/spec.ts): the same code and
    // message from a rules file as from addService.
    const rule: ServiceRule = { ...checkServiceSpec(spec), dests: [] };
    // A rules file keeps the mask as written (a /32 too), so that emit and parse round-trip.
    if (spec.netmask !== undefined) rule.netmask = formatIPv4(parseIPv4(spec.netmask));
    if (byKey.has(key)) throw new WasmvsError('WASMVS_SERVICE_EXISTS', `Service already exists: ${key}`);
    byKey.set(key, rule);
    services.push(rule);
    return;
  }
  const rule = byKey.get(key);
  if (rule === undefined) throw new WasmvsError('WASMVS_NO_SERVICE', `Service not defined: ${key}`);
  const daddr = cmd.server!.addr!;
  // Without a port the dest takes the service's port, as ipvsadm's parse_options copies vport.
  const dport = cmd.server!.port ?? rule.vport;
  if (rule.dests.some((d) => d.daddr === daddr && d.dport === dport)) {
    throw new WasmvsError('WASMVS_DEST_EXISTS', `Destination already exists: ${daddr}:${dport} in ${key}`);
  }
  const dest = checkDestSpec({
    daddr, dport, weight: cmd.weight ?? DEFAULT_WEIGHT, upperThreshold: cmd.upperThreshold, lowerThreshold: cmd.lowerThreshold,
  }, rule.vport);
  rule.dests.push(dest);
}

/** Parses a whole rules file; throws a WasmvsError carrying the 1-based line of the first error. */
export function parseRules(text: string): RuleSet {
  const byKey = new Map<string, ServiceRule>();
  const services: ServiceRule[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const hash = lines[i].indexOf('#');
    const body = hash < 0 ? lines[i] : lines[i].slice(0, hash);
    // As ipvsadm's config_stream_read: words split on blanks, a word "ipvsadm" dropped.
    const tokens = body.split(/\s+/).filter((t) => t !== '' && t !== 'ipvsadm');
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

/**
 * Prints rules as `ipvsadm-save -n` does (print_service_entry with FMT_RULE): each service
 * line followed by its dests, in order; -p, -M, -o, -b in ipvsadm's order. Unlike ipvsadm, a
 * real server's -x/-y are saved too, so that a save and restore keeps the thresholds.
 */
export function emitRules(rules: RuleSet): string {
  let out = '';
  for (const s of rules.services) {
    const svc = `${s.protocol === 'tcp' ? '-t' : '-u'} ${s.vaddr}:${s.vport}`;
    out += `-A ${svc} -s ${s.scheduler}`;
    if (s.persistence !== undefined) {
      out += ` -p ${s.persistence}`;
      if (s.netmask !== undefined) out += ` -M ${s.netmask}`;
    }
    if (s.onePacket) out += ' -o';
    if (s.schedFlags !== undefined && s.schedFlags.length > 0) out += ` -b ${s.schedFlags.join(',')}`;
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
