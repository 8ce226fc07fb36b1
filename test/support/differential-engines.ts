// The two engines of the differential runs, configured alike: the WASM Engine and the plain
// TypeScript reference (test/reference/engine.ts), both with MIXED_OPTIONS and MIXED_RULES.
// `connCapacity` overrides MIXED_OPTIONS' table size (e.g. 64: table-full often).
import { Engine } from '../../host/engine/engine.js';
import { ReferenceEngine } from '../reference/engine.js';
import { MIXED_OPTIONS, MIXED_RULES, type EngineLike } from './mixed-traffic.js';

export function wasmEngine(connCapacity = MIXED_OPTIONS.connCapacity): EngineLike {
  const e = new Engine({ ...MIXED_OPTIONS, connCapacity, slotCount: 8 });
  e.restore(MIXED_RULES);
  return e;
}

export function referenceEngine(connCapacity = MIXED_OPTIONS.connCapacity): EngineLike {
  const e = new ReferenceEngine({ ...MIXED_OPTIONS, connCapacity });
  e.restore(MIXED_RULES);
  return e;
}

export const ENGINE_NAMES: [string, string] = ['wasm', 'reference'];
