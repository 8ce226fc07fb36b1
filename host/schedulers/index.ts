// The scheduler registry: names as ipvsadm's -s takes them. The full IPVS set arrives with
// the scheduler issue; each is one small module registered here.
import { WasmvsError } from '../errors.js';
import { createRoundRobin } from './rr.js';
import type { Scheduler, SchedulerFactory } from './types.js';
import { createWeightedRoundRobin } from './wrr.js';

export type { SchedDest, SchedPacket, Scheduler, SchedulerFactory } from './types.js';

const registry = new Map<string, SchedulerFactory>([
  ['rr', createRoundRobin],
  ['wrr', createWeightedRoundRobin],
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

export function checkScheduler(name: string): void {
  if (!registry.has(name)) {
    throw new WasmvsError('WASMVS_UNKNOWN_SCHEDULER', `scheduler "${name}" not found (available: ${schedulerNames().join(', ')})`);
  }
}

export function createScheduler(name: string, flags: readonly string[] = []): Scheduler {
  checkScheduler(name);
  return registry.get(name)!(flags);
}
