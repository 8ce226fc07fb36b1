// The scheduler registry: names as ipvsadm's -s takes them, each one small module shaped like
// an IPVS scheduler (ip_vs_<name>.c). wlc is the default when a rule has no -s, as ipvsadm.
import { WasmvsError } from '../errors.js';
import { checkSchedFlags } from './common.js';
import { createDestinationHashing } from './dh.js';
import { createFailOver } from './fo.js';
import { createLocalityLeastConnection } from './lblc.js';
import { createLocalityLeastConnectionReplication } from './lblcr.js';
import { createLeastConnection } from './lc.js';
import { createMaglevHashing } from './mh.js';
import { createNeverQueue } from './nq.js';
import { createOverflow } from './ovf.js';
import { createRoundRobin } from './rr.js';
import { createShortestExpectedDelay } from './sed.js';
import { createSourceHashing } from './sh.js';
import { createTwoChoices } from './twos.js';
import type { Scheduler, SchedulerContext, SchedulerFactory } from './types.js';
import { createWeightedLeastConnection } from './wlc.js';
import { createWeightedRoundRobin } from './wrr.js';

export type { SchedDest, SchedPacket, Scheduler, SchedulerContext, SchedulerFactory } from './types.js';
export { checkSchedFlags } from './common.js';

/** The scheduler a service gets without -s (ipvsadm's DEF_SCHED). */
export const DEFAULT_SCHEDULER = 'wlc';

const registry = new Map<string, SchedulerFactory>([
  ['rr', createRoundRobin],
  ['wrr', createWeightedRoundRobin],
  ['lc', createLeastConnection],
  ['wlc', createWeightedLeastConnection],
  ['sed', createShortestExpectedDelay],
  ['nq', createNeverQueue],
  ['lblc', (flags, context) => createLocalityLeastConnection(flags, { start: context?.now })],
  ['lblcr', (flags, context) => createLocalityLeastConnectionReplication(flags, { start: context?.now })],
  ['dh', createDestinationHashing],
  ['sh', createSourceHashing],
  ['mh', createMaglevHashing],
  ['fo', createFailOver],
  ['ovf', createOverflow],
  ['twos', (flags) => createTwoChoices(flags)],
]);

/** Adds (or replaces) a scheduler under `name`, for embedders with their own policy. */
export function registerScheduler(name: string, factory: SchedulerFactory): void {
  if (!/^[a-z][a-z0-9_-]{0,14}$/.test(name)) {
    throw new WasmvsError('WASMVS_UNKNOWN_SCHEDULER', `scheduler name "${name}" must match [a-z][a-z0-9_-]{0,14}`);
  }
  registry.set(name, factory);
}

export function schedulerNames(): string[] {
  return [...registry.keys()].sort();
}

/** Throws unless `name` is registered and, if given, `flags` are -b flags ipvsadm allows with it. */
export function checkScheduler(name: string, flags?: readonly string[]): void {
  if (!registry.has(name)) {
    throw new WasmvsError('WASMVS_UNKNOWN_SCHEDULER', `scheduler "${name}" not found (available: ${schedulerNames().join(', ')})`);
  }
  if (flags !== undefined) checkSchedFlags(name, flags);
}

/** A new scheduler for one service; `context.now` is the engine time, when known. */
export function createScheduler(name: string, flags: readonly string[] = [], context: SchedulerContext = {}): Scheduler {
  checkScheduler(name, flags);
  return registry.get(name)!(flags, context);
}
