// The health manager over a running Gateway: table changes go to the gateway's engine as the
// difference between what runs and what the state asks for (the reload planner's -d/-e/-a
// commands, host/gateway/reload.ts), each logged as the ipvsadm command that makes it; then
// the host follows at once (syncHost: a real server that comes back needs its "from RIP"
// policy rule for its replies to reach the TUN). Events go out on the Gateway.
import type { Gateway } from '../gateway/gateway.js';
import type { Logger } from '../gateway/log.js';
import { applyChanges, describeChange, planChanges } from '../gateway/reload.js';
import { parseRules, type RuleSet } from '../ipvsadm/rules.js';
import type { KeepalivedConfig } from './config.js';
import { HealthManager, type HealthManagerOptions } from './manager.js';

/** Applies `table` to the gateway by difference; returns how many changes were made. */
export async function applyTable(gw: Gateway, table: RuleSet, log: Logger): Promise<number> {
  const current = parseRules(gw.engine.save());
  const changes = planChanges(current, table);
  if (changes.length === 0) return 0;
  applyChanges(gw.engine, changes, current);
  for (const c of changes) log.info('health', describeChange(c));
  await gw.syncHost();
  return changes.length;
}

/** A HealthManager driving `gw` (not started: call start()). */
export function healthManagerFor(gw: Gateway, config: KeepalivedConfig, log: Logger, options: Partial<HealthManagerOptions> = {}): HealthManager {
  const manager = new HealthManager(config, {
    ...options,
    logger: log,
    apply: async (table) => { await applyTable(gw, table, log); },
    emit: (event, payload) => { gw.emit(event, payload as never); },
  });
  gw.setHealthSource(() => manager.status()); // the control socket's `health` request
  return manager;
}
