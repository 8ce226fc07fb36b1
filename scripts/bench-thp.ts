// By-hand: does the engine go faster with its linear memory on transparent huge pages?
//   node --expose-gc --max-old-space-size=12288 --import tsx scripts/bench-thp.ts [--runs 7] [--sizes 1M,4M]
// The same established-flow measurement as `npm run bench` (scripts/bench-lib.ts: 60-byte TCP
// segments of random live flows streamed through the ring, batches of 256, engine time only,
// warm-up first), on two engines per size built alike: one as created, one after
// adviseHugePages(memory, { collapse: true }) below: MADV_HUGEPAGE, then MADV_COLLAPSE (Linux
// 6.1+) of the already populated table. Runs alternate between the two so drift hits both.
// Prints medians (min..max) in Mpps and the process's AnonHugePages after the advice.
// Measured here it did not pay (README, Gateway benchmark, levers), so the gateway does not
// advise; this stays as the way to measure it again on another machine.
import { readFileSync } from 'node:fs';
import koffi from 'koffi';
import { libc } from '../host/gateway/libc.js';
import { establishFlows, establishedPool, expectAllForwarded, runBatches, sequentialPool, type FlowEngine } from './bench-lib.js';

// ---- madvise through koffi (THP is `madvise` here: the memory must ask) ----

const MADV_HUGEPAGE = 14; // include/uapi/asm-generic/mman-common.h
const MADV_COLLAPSE = 25;

interface HugePageAdvice {
  /** Bytes advised (the whole memory). */
  bytes: number;
  /** MADV_HUGEPAGE was accepted. */
  hugepage: boolean;
  /** MADV_COLLAPSE was asked for and succeeded. */
  collapsed: boolean;
  /** Why either was refused ("EINVAL (errno 22)"), if one was. */
  error?: string;
}

type Madvise = (addr: Uint8Array, length: number, advice: number) => number;
let madvise: Madvise | null | undefined;

function load(): Madvise | null {
  if (madvise !== undefined) return madvise;
  madvise = null;
  if (process.platform !== 'linux') return null;
  try {
    const lib = libc();
    madvise = lib.func('int madvise(void *addr, size_t length, int advice)') as Madvise;
  } catch {
    madvise = null;
  }
  return madvise;
}

/**
 * Advises huge pages for `memory` (a shared WebAssembly.Memory, whose buffer the kernel maps
 * page-aligned) and, with `collapse`, collapses what is populated already. Never throws.
 */
function adviseHugePages(memory: { readonly buffer: ArrayBufferLike }, options: { collapse?: boolean } = {}): HugePageAdvice {
  const bytes = memory.buffer.byteLength;
  const fn = load();
  if (!fn) return { bytes, hugepage: false, collapsed: false, error: 'madvise is not available' };
  const view = new Uint8Array(memory.buffer);
  const errors: string[] = [];
  const hugepage = fn(view, bytes, MADV_HUGEPAGE) === 0;
  if (!hugepage) errors.push(`MADV_HUGEPAGE: errno ${koffi.errno()}`);
  let collapsed = false;
  if (hugepage && options.collapse) {
    collapsed = fn(view, bytes, MADV_COLLAPSE) === 0;
    if (!collapsed) errors.push(`MADV_COLLAPSE: errno ${koffi.errno()}`);
  }
  return { bytes, hugepage, collapsed, error: errors.length ? errors.join('; ') : undefined };
}

/** This process's anonymous memory in huge pages, bytes (AnonHugePages of smaps_rollup). */
function anonHugePages(): number {
  try {
    const m = /^AnonHugePages:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

// ---- the measurement ----

const args = process.argv.slice(2);
const flag = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : dflt;
};
const runs = Number(flag('--runs', '7'));
const M = 1 << 20;
const sizes = flag('--sizes', '1M,4M').split(',').map((s) => ({ label: s, n: Number(s.replace(/M$/, '')) * M }));
const BATCH = 256;
const PACKETS = 1 << 21;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

for (const size of sizes) {
  const syns = sequentialPool('syn', size.n);
  const clients = sequentialPool('client', size.n);
  const before = anonHugePages();
  const plain: FlowEngine = establishFlows(size.n, size.n, syns, clients);
  const huge: FlowEngine = establishFlows(size.n, size.n, syns, clients);
  const t0 = performance.now();
  const advice = adviseHugePages(huge.engine.memory, { collapse: true });
  const adviceMs = performance.now() - t0;
  const grown = anonHugePages() - before;
  const pool = establishedPool(size.n, plain.destOf, M, 0x5eed0000 + size.n);
  // Same seed, same flows: both engines scheduled identically (wrr is deterministic).
  if (Buffer.compare(Buffer.from(plain.destOf), Buffer.from(huge.destOf)) !== 0) throw new Error('the two engines scheduled differently');
  const res: Record<'plain' | 'huge', number[]> = { plain: [], huge: [] };
  let from = 0;
  for (const fe of [plain, huge]) {
    for (let w = 0; w < 3; w++) expectAllForwarded(fe.engine, runBatches(fe.ring, pool, w * (1 << 19), 1 << 19, BATCH), 'warm-up');
  }
  for (let r = 0; r < runs; r++) {
    for (const [name, fe] of [['plain', plain], ['huge', huge]] as const) {
      const t = runBatches(fe.ring, pool, from, PACKETS, BATCH);
      expectAllForwarded(fe.engine, t, `${name} run ${r}`);
      res[name].push((t.packets / t.engineNs) * 1e3);
    }
    from += PACKETS;
  }
  const line = (name: 'plain' | 'huge'): string => `${median(res[name]).toFixed(2)} Mpps (${Math.min(...res[name]).toFixed(2)}..${Math.max(...res[name]).toFixed(2)})`;
  console.log(`${size.label} live connections (memory ${(huge.engine.memory.buffer.byteLength / M).toFixed(0)} MiB): 4 KiB pages ${line('plain')}; huge pages ${line('huge')}` +
    `; advice ${JSON.stringify(advice)} in ${adviceMs.toFixed(0)} ms, AnonHugePages +${(grown / M).toFixed(0)} MiB`);
}
