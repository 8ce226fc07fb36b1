// A scheduler that throws (any registerScheduler plug-in) loses nothing: the packet it was
// asked about is dropped and counted as scheduler-error, the engine emits an 'error' event
// (WASMVS_SCHEDULER, the thrown value as cause) after the batch, and the rest of the batch
// is processed as usual (host/engine/engine.ts schedule()).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine } from '../host/engine/engine.js';
import { WasmvsError } from '../host/errors.js';
import { registerScheduler, type SchedDest } from '../host/schedulers/index.js';
import { countersAddUp } from './support/dataplane.js';
import { decode, tcpPacket } from './support/packets.js';

const VIP = '198.18.1.1';
const RS = '198.19.0.2';
const T0 = 5_000;

// Fails on every second call: the first server otherwise.
let calls = 0;
registerScheduler('flaky', () => {
  let dests: readonly SchedDest[] = [];
  return {
    destsChanged(list) { dests = list; },
    schedule() {
      calls++;
      if (calls % 2 === 0) throw new Error(`flaky failure #${calls}`);
      return dests[0];
    },
  };
});
registerScheduler('throws-value', () => ({
  destsChanged() {},
  schedule() { throw 42; }, // a plug-in may throw anything
}));

function engine(scheduler: string): Engine {
  const e = new Engine({ connCapacity: 64, slotCount: 8 });
  e.addService({ protocol: 'tcp', vaddr: VIP, vport: 80, scheduler });
  e.addDest({ protocol: 'tcp', vaddr: VIP, vport: 80 }, { daddr: RS, dport: 8080 });
  return e;
}

const syn = (sport: number) => tcpPacket({ src: '198.18.0.10', dst: VIP, sport, dport: 80, flags: 'S', seq: 1 });

test('a throwing scheduler in a batch: its packets dropped as scheduler-error, the batch finished, one error event each', () => {
  calls = 0;
  const e = engine('flaky');
  const errors: WasmvsError[] = [];
  e.on('error', (err) => errors.push(err));
  for (let i = 0; i < 4; i++) e.writeSlot(i, syn(1000 + i));
  assert.is(e.process(0, 4, T0), 2);
  assert.equal([0, 1, 2, 3].map((i) => [e.verdict(i), e.reason(i)]), [
    ['forward', undefined], ['drop', 'scheduler-error'], ['forward', undefined], ['drop', 'scheduler-error'],
  ]);
  assert.is(decode(e.slot(0)).dst, RS);
  const c = e.counters();
  assert.is(c.drops['scheduler-error'], 2);
  assert.is(c.connsCreated, 2);
  assert.is(countersAddUp(c), undefined);
  assert.is(errors.length, 2);
  for (const err of errors) {
    assert.instance(err, WasmvsError);
    assert.is(err.code, 'WASMVS_SCHEDULER');
    assert.match(err.message, /^scheduler flaky of tcp 198\.18\.1\.1:80 threw for a connection from 198\.18\.0\.10:100[13]: flaky failure #[24]$/);
    assert.instance(err.cause, Error);
  }
  // The engine goes on: the client's retransmission is scheduled (call 5 succeeds).
  assert.is(e.processPacket(syn(1001), T0 + 1000).verdict, 'forward');
});

test('processPacket and no listener: the drop is counted and nothing throws; a thrown non-Error is the cause as given', () => {
  const e = engine('throws-value');
  const r = e.processPacket(syn(2000), T0);
  assert.equal([r.verdict, r.reason, r.newConnection], ['drop', 'scheduler-error', false]);
  assert.is(e.counters().drops['scheduler-error'], 1);
  assert.is(e.connections().length, 0);
  let seen: WasmvsError | undefined;
  e.on('error', (err) => { seen = err; });
  e.processPacket(syn(2001), T0 + 1);
  assert.is(seen?.code, 'WASMVS_SCHEDULER');
  assert.is(seen?.cause, 42);
  assert.match(seen?.message ?? '', /threw for a connection from 198\.18\.0\.10:2001: 42$/);
});

test('a listener that throws does not make the engine replay the errors', () => {
  const e = engine('throws-value');
  let n = 0;
  e.on('error', () => { n++; throw new Error('listener'); });
  assert.throws(() => e.processPacket(syn(3000), T0), /listener/);
  e.processPacket(tcpPacket({ src: '198.18.0.10', dst: VIP, sport: 3001, dport: 81, flags: 'S' }), T0 + 1);
  assert.is(n, 1);
});

test.run();
