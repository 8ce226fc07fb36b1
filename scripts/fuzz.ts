// npm run fuzz [-- --seconds N] [-- --seed S] [-- --steps N] [-- --check-every N] [-- --shrink-seconds N] [-- --idle-tick MS] [-- --no-persistence] [-- --capacity N]
//
// The differential fuzz, longer than the run in `npm test`: seeded mixed director traffic
// (test/support/mixed-traffic.ts) through the WASM engine and the plain TypeScript reference
// engine (test/reference/engine.ts), compared packet for packet and state for state
// (test/support/differential.ts). Seeds S, S+1, S+2, ... (S random unless given), `--steps`
// steps each (default 5000), until `--seconds` (default 60) have passed. Prints each seed and
// the steps/s; on the first disagreement prints the seed and a minimal step sequence (hex,
// with times) and exits 1. Reproduce a failure with --seed S --seconds 0 (one seed at least).
// --idle-tick MS: both engines get expire() every MS ms across gaps between steps instead of
// time jumping (DifferentialOptions.idleTickMs). --no-persistence: no traffic to the -p service.
// --capacity N: both connection tables hold N (default MIXED_OPTIONS.connCapacity, 256).
import { DifferentialError, runDifferential } from '../test/support/differential.js';
import { ENGINE_NAMES, referenceEngine, wasmEngine } from '../test/support/differential-engines.js';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) {
    console.error(`--${name} needs a non-negative number, got ${process.argv[i + 1]}`);
    process.exit(2);
  }
  return v;
}

const seconds = option('seconds', 60);
const firstSeed = option('seed', Math.floor(Math.random() * 2 ** 31));
const steps = option('steps', 5000);
const checkEvery = Math.max(1, option('check-every', 1));
const shrinkMs = option('shrink-seconds', 60) * 1000;
const idleTickMs = option('idle-tick', 0);
const capacity = option('capacity', 0) || undefined;
const persistence = !process.argv.includes('--no-persistence');

console.log(`fuzz: ${ENGINE_NAMES[0]} vs ${ENGINE_NAMES[1]}, ${seconds} s, seeds from ${firstSeed}, ${steps} steps each, state checked every ${checkEvery} step(s)${idleTickMs ? `, expire() every ${idleTickMs} ms across gaps` : ''}${capacity ? `, table of ${capacity}` : ''}`);
const start = Date.now();
let seed = firstSeed;
let total = 0;
do {
  const t = Date.now();
  try {
    const s = runDifferential({ seed, steps, makeA: () => wasmEngine(capacity), makeB: () => referenceEngine(capacity), names: ENGINE_NAMES, checkEvery, shrinkMs, idleTickMs: idleTickMs || undefined, traffic: { persistence } });
    total += s.steps;
    const ms = Date.now() - t;
    const v = Object.entries(s.verdicts).map(([k, n]) => `${k} ${n}`).join(', ');
    console.log(`seed ${seed}: ${s.steps} steps in ${ms} ms (${Math.round(s.steps / (ms / 1000))} steps/s; ${v}; ${s.newConnections} new connections)`);
  } catch (err) {
    if (!(err instanceof DifferentialError)) throw err;
    console.log(`seed ${seed}: DISAGREEMENT\n\n${err.message}\n`);
    console.log(`reproduce: npm run fuzz -- --seed ${seed} --seconds 0 --steps ${steps}${idleTickMs ? ` --idle-tick ${idleTickMs}` : ''}${persistence ? '' : ' --no-persistence'}${capacity ? ` --capacity ${capacity}` : ''}`);
    process.exit(1);
  }
  seed++;
} while (Date.now() - start < seconds * 1000);
const ms = Date.now() - start;
console.log(`fuzz: ${seed - firstSeed} seeds, ${total} steps in ${(ms / 1000).toFixed(1)} s (${Math.round(total / (ms / 1000))} steps/s), no disagreement`);
