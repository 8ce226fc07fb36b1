// The ABI is written down once per side: constants and exports in assembly/ (layout.ts,
// index.ts), a typed mirror in host/abi.ts. These tests instantiate the module directly and
// check that the two sides agree, constant by constant and function by function, in both the
// release and the debug build.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ABI, DROP_REASONS, FTP_COUNTERS, instantiate, LOCAL_REASONS, PASS_REASONS, REASON_EXPORTS, wasmModule, type WasmExports,
} from '../host/engine/abi.js';
import { Engine } from '../host/engine/engine.js';
import { decode, hex, tcpPacket } from './support/packets.js';

type Build = 'release' | 'debug';
type Exported = Record<string, unknown>;

/** A fresh instance over its own small shared memory, as the brief for the ABI asks. */
function fresh(build: Build = 'release', memory?: WebAssembly.Memory): Exported {
  const mem = memory ?? new WebAssembly.Memory({ initial: 16, maximum: 16, shared: true });
  return instantiate(wasmModule(build), mem, { schedule: () => -1 }) as unknown as Exported;
}

/** Every exported global of an instance, by name, as unsigned numbers (they are u8/u16/u32). */
function globals(ex: Exported): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, value] of Object.entries(ex)) {
    if (value instanceof WebAssembly.Global) out.set(name, Number(value.value) >>> 0);
  }
  return out;
}

/** 'DROP_BAD_IP_CHECKSUM' -> 'bad-ip-checksum': the rule the reason names follow. */
function reasonName(exportName: string): string {
  return exportName.replace(/^(DROP|PASS|LOCAL)_/, '').toLowerCase().replace(/_/g, '-');
}

// The functions of the WasmExports interface and how many parameters each takes. Typed as a
// record over the interface's keys, so adding a function to the interface without listing it
// here (or listing one it lacks) fails to compile.
const FUNCTIONS: Record<keyof WasmExports, number> = {
  controlBlock: 0,
  layout: 7,
  ftpPortSet: 2,
  init: 4,
  attach: 0,
  process: 3,
  processScratch: 1,
  expire: 2,
  setTimeout: 2,
  serviceSet: 4,
  serviceClear: 1,
  serviceConfigure: 4,
  destSet: 6,
  destRetire: 1,
  setSettings: 1,
  destReset: 1,
  destZeroStats: 1,
  checksum: 2,
  sipHash: 5,
};

for (const build of ['release', 'debug'] as const) {
  test(`${build}: every ABI constant equals the module's exported global of the same name`, () => {
    const g = globals(fresh(build));
    const wrong: string[] = [];
    for (const [name, value] of Object.entries(ABI)) {
      if (g.get(name) !== value >>> 0) wrong.push(`${name}: host ${value}, wasm ${g.get(name)}`);
    }
    assert.equal(wrong, []);
  });

  test(`${build}: every reason constant equals its export, and every DROP_/PASS_/LOCAL_/FTP_ export is listed`, () => {
    const g = globals(fresh(build));
    const wrong: string[] = [];
    for (const [name, value] of Object.entries(REASON_EXPORTS)) {
      if (g.get(name) !== value) wrong.push(`${name}: host ${value}, wasm ${g.get(name)}`);
    }
    assert.equal(wrong, []);
    const exported = [...g.keys()].filter((n) => /^(DROP|PASS|LOCAL|FTP)_/.test(n) && n !== 'FTP_COUNTER_COUNT' && n !== 'FTP_PORT_MAP_BYTES').sort();
    assert.equal(exported, Object.keys(REASON_EXPORTS).sort());
  });

  test(`${build}: every WasmExports function is a function export taking its parameters`, () => {
    const ex = fresh(build);
    const arity: Record<string, number | string> = {};
    for (const name of Object.keys(FUNCTIONS)) {
      const f = ex[name];
      arity[name] = typeof f === 'function' ? f.length : typeof f;
    }
    assert.equal(arity, FUNCTIONS);
  });
}

test('DROP_REASONS has one name per DROP_* code 1..DROP_REASON_COUNT-1, PASS_REASONS and LOCAL_REASONS one per PASS_*/LOCAL_*', () => {
  const count = REASON_EXPORTS.DROP_REASON_COUNT;
  assert.is(DROP_REASONS.length, count);
  assert.is(DROP_REASONS[0], '', 'code 0 is "no reason"');
  assert.is(new Set(DROP_REASONS.slice(1)).size, count - 1, 'names are distinct');
  const drops = Object.entries(REASON_EXPORTS).filter(([n]) => n.startsWith('DROP_') && n !== 'DROP_REASON_COUNT');
  assert.equal(drops.map(([, code]) => code).sort((a, b) => a - b), Array.from({ length: count - 1 }, (_, i) => i + 1));
  for (const [name, code] of drops) assert.is(DROP_REASONS[code], reasonName(name), name);

  const passes = Object.entries(REASON_EXPORTS).filter(([n]) => n.startsWith('PASS_'));
  assert.is(PASS_REASONS.length, passes.length + 1);
  assert.is(PASS_REASONS[0], '');
  for (const [name, code] of passes) assert.is(PASS_REASONS[code], reasonName(name), name);

  const locals = Object.entries(REASON_EXPORTS).filter(([n]) => n.startsWith('LOCAL_') && n !== 'LOCAL_REASON_COUNT');
  assert.is(LOCAL_REASONS.length, REASON_EXPORTS.LOCAL_REASON_COUNT);
  assert.is(LOCAL_REASONS[0], '');
  for (const [name, code] of locals) assert.is(LOCAL_REASONS[code], reasonName(name), name);

  const ftp = Object.entries(REASON_EXPORTS).filter(([n]) => n.startsWith('FTP_'));
  assert.is(FTP_COUNTERS.length, ABI.FTP_COUNTER_COUNT);
  assert.is(FTP_COUNTERS[0], '');
  for (const [name, code] of ftp) assert.is(FTP_COUNTERS[code], name.replace(/^FTP_/, '').toLowerCase().replace(/_/g, '-'), name);
});

test('release and debug builds load and agree on every exported constant and function', () => {
  const release = fresh('release');
  const debug = fresh('debug');
  assert.equal(Object.fromEntries(globals(debug)), Object.fromEntries(globals(release)));
  assert.ok(globals(release).size >= Object.keys(ABI).length);
  const fns = (ex: Exported) => Object.keys(ex).filter((n) => typeof ex[n] === 'function').sort();
  assert.equal(fns(debug), fns(release));
  // Same module object on a second ask: compiled once per process.
  assert.is(wasmModule('release'), wasmModule('release'));
  assert.is.not(wasmModule('debug'), wasmModule('release'));
});

test('a second instance over an Engine\'s shared memory attaches and serves its connections', () => {
  const engine = new Engine({ connCapacity: 1024, slotCount: 8, eventCapacity: 64 });
  engine.restore('-A -t 202.103.106.5:80 -s rr\n-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 1\n');
  const syn = tcpPacket({ src: '202.100.1.2', dst: '202.103.106.5', sport: 3456, dport: 80, flags: 'S' });
  assert.is(engine.processPacket(syn, 1000).verdict, 'forward');

  // The TUN worker path: the same module, the same memory, its own instance.
  const worker = fresh('release', engine.memory) as unknown as WasmExports;
  assert.is(worker.attach(), 1);
  assert.is(worker.controlBlock(), (fresh('release') as unknown as WasmExports).controlBlock());

  // The reply of the engine's connection, processed by the worker, is rewritten back to the VIP.
  const reply = tcpPacket({ src: '172.16.0.3', dst: '202.100.1.2', sport: 8000, dport: 3456, flags: 'SA' });
  engine.writeSlot(0, reply);
  assert.is(worker.process(0, 1, 1001), 1);
  assert.is(engine.verdict(0), 'forward');
  const expected = tcpPacket({ src: '202.103.106.5', dst: '202.100.1.2', sport: 80, dport: 3456, flags: 'SA' });
  assert.is(hex(engine.slot(0).subarray(0, reply.length)), hex(expected));
  assert.is(decode(engine.slot(0)).src, '202.103.106.5');
  assert.is(engine.counters().forwardOut, 1, 'counters are shared too');
});

test('attach() refuses a memory no engine has initialised', () => {
  const ex = fresh('release') as unknown as WasmExports;
  assert.is(ex.attach(), 0);
});

test.run();
