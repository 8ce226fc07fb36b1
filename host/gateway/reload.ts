// Reloading a running configuration (SIGHUP): the difference between what runs and what a
// rules file now says, applied as ipvsadm commands (-D/-d first, which free table entries,
// then -E/-e, then -A/-a). Services and real servers that stay untouched keep their
// connections, counters and scheduler state; a deleted real server's connections behave as
// after `ipvsadm -d` (they run on; expire_nodest_conn decides otherwise).
//
// All or nothing: the new rules were validated whole by the parser, and should an engine
// call still refuse a change (a table limit), the changes already made are undone in reverse
// order, so the running configuration is the old one again.
import type { Engine, ServiceKey } from '../engine/engine.js';
import type { DestConfig, RuleSet, ServiceConfig, ServiceRule } from '../ipvsadm/rules.js';

export type ChangeOp = 'add-service' | 'edit-service' | 'del-service' | 'add-dest' | 'edit-dest' | 'del-dest';

/** One ipvsadm-style change, with what it replaces so that it can be undone. */
export interface ConfigChange {
  op: ChangeOp;
  service: ServiceConfig;
  /** The service as it was (edit-service). */
  oldService?: ServiceConfig;
  dest?: DestConfig;
  /** The real server as it was (edit-dest). */
  oldDest?: DestConfig;
}

const serviceId = (s: ServiceKey): string => `${s.protocol} ${s.vaddr}:${s.vport}`;
const destId = (d: DestConfig): string => `${d.daddr}:${d.dport}`;
const specOnly = ({ dests: _dests, ...spec }: ServiceRule): ServiceConfig => spec;

/** Field-for-field equality of two normalised specs (parser output: defaults filled in). */
function same(a: object, b: object): boolean {
  return JSON.stringify(a, Object.keys(a).sort()) === JSON.stringify(b, Object.keys(b).sort())
    && Object.keys(a).length === Object.keys(b).length;
}

/** The changes that turn configuration `from` into `to` (both as the rules parser returns them). */
export function planChanges(from: RuleSet, to: RuleSet): ConfigChange[] {
  const before = new Map(from.services.map((s) => [serviceId(s), s]));
  const after = new Map(to.services.map((s) => [serviceId(s), s]));
  const dels: ConfigChange[] = [];
  const edits: ConfigChange[] = [];
  const adds: ConfigChange[] = [];
  for (const [id, old] of before) {
    const next = after.get(id);
    if (!next) { dels.push({ op: 'del-service', service: specOnly(old) }); continue; }
    const oldDests = new Map(old.dests.map((d) => [destId(d), d]));
    const newDests = new Map(next.dests.map((d) => [destId(d), d]));
    for (const [did, d] of oldDests) if (!newDests.has(did)) dels.push({ op: 'del-dest', service: specOnly(next), dest: d });
    if (!same(specOnly(old), specOnly(next))) edits.push({ op: 'edit-service', service: specOnly(next), oldService: specOnly(old) });
    for (const [did, d] of newDests) {
      const was = oldDests.get(did);
      if (!was) adds.push({ op: 'add-dest', service: specOnly(next), dest: d });
      else if (!same(was, d)) edits.push({ op: 'edit-dest', service: specOnly(next), dest: d, oldDest: was });
    }
  }
  for (const [id, next] of after) {
    if (before.has(id)) continue;
    adds.push({ op: 'add-service', service: specOnly(next) });
    for (const d of next.dests) adds.push({ op: 'add-dest', service: specOnly(next), dest: d });
  }
  // A deleted service takes its real servers with it: no separate del-dest for them.
  return [...dels, ...edits, ...adds];
}

function apply(engine: Engine, c: ConfigChange): void {
  switch (c.op) {
    case 'add-service': engine.addService(c.service); break;
    case 'edit-service': engine.editService(c.service); break;
    case 'del-service': engine.delService(c.service); break;
    case 'add-dest': engine.addDest(c.service, c.dest as DestConfig); break;
    case 'edit-dest': engine.editDest(c.service, c.dest as DestConfig); break;
    case 'del-dest': engine.delDest(c.service, c.dest as DestConfig); break;
  }
}

/** The change that undoes `c`, given the configuration `from` it was planned against. */
function inverse(c: ConfigChange, from: RuleSet): ConfigChange[] {
  switch (c.op) {
    case 'add-service': return [{ op: 'del-service', service: c.service }];
    case 'edit-service': return [{ op: 'edit-service', service: c.oldService as ServiceConfig }];
    case 'add-dest': return [{ op: 'del-dest', service: c.service, dest: c.dest }];
    case 'edit-dest': return [{ op: 'edit-dest', service: c.service, dest: c.oldDest }];
    case 'del-dest': return [{ op: 'add-dest', service: c.service, dest: c.dest }];
    case 'del-service': {
      // Re-adding revives the deleted servers' records with their connections (dest trash).
      const old = from.services.find((s) => serviceId(s) === serviceId(c.service)) as ServiceRule;
      return [{ op: 'add-service', service: c.service }, ...[...old.dests].map((d) => ({ op: 'add-dest' as const, service: c.service, dest: d }))];
    }
  }
}

/**
 * Applies `changes` (planned from `from`) to the engine, all or nothing: on a refusal the
 * changes made so far are undone and the error is thrown.
 */
export function applyChanges(engine: Engine, changes: readonly ConfigChange[], from: RuleSet): void {
  const done: ConfigChange[] = [];
  try {
    for (const c of changes) { apply(engine, c); done.push(c); }
  } catch (err) {
    for (const c of done.reverse()) for (const u of inverse(c, from)) apply(engine, u);
    throw err;
  }
}

/** One line per change, as the ipvsadm command that makes it. */
export function describeChange(c: ConfigChange): string {
  const svc = `${c.service.protocol === 'tcp' ? '-t' : '-u'} ${c.service.vaddr}:${c.service.vport}`;
  switch (c.op) {
    case 'add-service': return `-A ${svc} -s ${c.service.scheduler}`;
    case 'edit-service': return `-E ${svc} -s ${c.service.scheduler}`;
    case 'del-service': return `-D ${svc}`;
    case 'add-dest': return `-a ${svc} -r ${destId(c.dest as DestConfig)} -m -w ${c.dest?.weight}`;
    case 'edit-dest': return `-e ${svc} -r ${destId(c.dest as DestConfig)} -m -w ${c.dest?.weight}`;
    case 'del-dest': return `-d ${svc} -r ${destId(c.dest as DestConfig)}`;
  }
}
