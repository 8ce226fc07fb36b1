// Schedulers (host/schedulers/rr.ts, wrr.ts) against sequences worked out by hand from the
// kernel's algorithms, net/netfilter/ipvs/ip_vs_rr.c and ip_vs_wrr.c. Each case spells out
// the kernel's state (cl = the list position, cw = current weight, mw = max weight - (di - 1),
// di = gcd of the positive weights) step by step in a comment, so a wrong expectation is as
// visible as a wrong scheduler.
//
// The fake service below mirrors ip_vs_ctl.c: a new dest goes to the head of the list
// (list_add_rcu) before add_dest is called; a deleted dest leaves the list before del_dest;
// an edit changes the weight before upd_dest. Dests are named by letter; picks are letters,
// '-' for "no destination".
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine } from '../host/engine/engine.js';
import { WasmvsError } from '../host/errors.js';
import { registerScheduler, schedulerNames, type SchedDest, type Scheduler } from '../host/schedulers/index.js';
import { createRoundRobin } from '../host/schedulers/rr.js';
import { createWeightedRoundRobin } from '../host/schedulers/wrr.js';
import { decode, tcpPacket } from './support/packets.js';

interface FakeDest extends SchedDest {
  name: string;
  weight: number;
  overloaded: boolean;
}

const PACKET = { saddr: 0xca640102, sport: 3456, daddr: 0xca676a05, dport: 80 };

class FakeService {
  dests: FakeDest[] = [];
  private readonly byName = new Map<string, FakeDest>();
  private nextIndex = 0;

  constructor(readonly scheduler: Scheduler) {}

  /** Adds dests in the order given, each to the head of the list. */
  add(...specs: Array<[string, number]>): this {
    for (const [name, weight] of specs) {
      const d: FakeDest = {
        name, weight, overloaded: false, index: this.nextIndex++, daddr: 0xac100000 + this.nextIndex, dport: 80,
        activeConns: 0, inactConns: 0,
      };
      this.byName.set(name, d);
      this.dests = [d, ...this.dests];
      this.scheduler.destsChanged(this.dests, { kind: 'add', dest: d });
    }
    return this;
  }

  edit(name: string, weight: number): this {
    const d = this.byName.get(name)!;
    d.weight = weight;
    this.scheduler.destsChanged(this.dests, { kind: 'edit', dest: d });
    return this;
  }

  del(name: string): this {
    const d = this.byName.get(name)!;
    this.dests = this.dests.filter((x) => x !== d);
    this.scheduler.destsChanged(this.dests, { kind: 'del', dest: d });
    return this;
  }

  overload(names: string, on = true): this {
    for (const n of names) this.byName.get(n)!.overloaded = on;
    return this;
  }

  /** The next n picks as a string of letters. */
  pick(n: number): string {
    let out = '';
    for (let i = 0; i < n; i++) out += (this.scheduler.schedule(PACKET) as FakeDest | undefined)?.name ?? '-';
    return out;
  }

  order(): string {
    return this.dests.map((d) => d.name).join('');
  }
}

const wrr = () => new FakeService(createWeightedRoundRobin());
const rr = () => new FakeService(createRoundRobin());

// ---- wrr ---------------------------------------------------------------------------------

test('wrr 1:2, the seed: .2 (w1) then .3 (w2) gives .3 .2 .3 repeated', () => {
  // add .2: di=1 mw=1, cw 0 -> mw = 1. add .3: list [.3, .2], di=1 mw=2, cw=1 stays (0 < cw <= mw).
  // cl=head cw=1: .3 (2>=1) | .2 (1>=1) | end: cw=0 -> mw=2, .3 (2>=2), .2 no | end: cw=1: .3 | .2 | ...
  const s = wrr().add(['2', 1], ['3', 2]);
  assert.is(s.order(), '32');
  assert.is(s.pick(12), '323323323323');
});

test('wrr 4:3:2 (gcd 1): C B A, then A B A C B A C B A with period 9', () => {
  // add A(4): alone, di=4 and mw=4-(4-1)=1, cw 0 -> 1. add B(3): di=1 mw=4, cw=1 stays.
  // add C(2): list [C, B, A], cw=1 stays. So the first pass is at cw=1:
  // cw=1: C, B, A | end, cw=0 -> mw=4: C no, B no, A | end, cw=3: B, A | end, cw=2: C, B, A |
  // end, cw=1: C, B, A | end, cw=0 -> 4: A ...
  const s = wrr().add(['A', 4], ['B', 3], ['C', 2]);
  assert.is(s.order(), 'CBA');
  assert.is(s.pick(21), 'CBA' + 'ABACBACBA'.repeat(2));
});

test('wrr 4:2 (gcd 2): B A A, period 3', () => {
  // add A(4): di=4, mw=4-(4-1)=1, cw 0 -> 1. add B(2): list [B, A], di=2, mw=4-1=3;
  // cw=1 <= mw and di > 1: cw = (1/2)*2 + 1 = 1.
  // cw=1: B, A | end, cw=-1 -> mw=3: B no, A | end, cw=1: B, A | end, cw -> 3: A ...
  const s = wrr().add(['A', 4], ['B', 2]);
  assert.is(s.pick(9), 'BAABAABAA');
});

test('wrr: all weights 0 -> no destination (mw = 0); zero-weight dests are never picked', () => {
  const s = wrr().add(['A', 0], ['B', 0]);
  assert.is(s.pick(3), '---');
  // Edit A to 1: di=1 mw=1, cw 0 -> 1. B (0) is passed over every time.
  s.edit('A', 1);
  assert.is(s.pick(3), 'AAA');
  // Everything back to 0 mid-sequence: mw=0 again.
  s.edit('A', 0);
  assert.is(s.pick(2), '--');
  // A zero weight among positive ones does not enter the gcd: 0, 2, 1 behaves as 2:1.
  const mixed = wrr().add(['A', 0], ['B', 2], ['C', 1]);
  // add A(0): di=1 mw=0 cw=0. add B(2): di=2 (the gcd of the positive weights only), mw=2-1=1,
  // cw 0 -> 1. add C(1): list [C, B, A], di=1 mw=2, cw=1 stays.
  // cw=1: C, B, A no | end, cw=0 -> 2: C no, B | A no, end, cw=1: C, B | ...
  assert.is(mixed.pick(6), 'CBBCBB');
});

test('wrr: a weight edited mid-sequence restarts at the head and adjusts cw (dest_changed)', () => {
  // 4:3:2 (above) after C B A A B A C: cl=C, cw=2. Edit B to 2: list [C(2), B(2), A(4)], di=2,
  // mw=4-1=3; cw=2 <= mw, di > 1: cw = (2/2)*2 + 1 = 3; cl = head.
  // cw=3: C no, B no, A | end, cw=1: C, B, A | end, cw=-1 -> 3: A | cw=1: C, B, A ...
  // (Had cw stayed 2, the first pick would be C; had cl stayed on C, B.)
  const s = wrr().add(['A', 4], ['B', 3], ['C', 2]);
  assert.is(s.pick(7), 'CBAABAC');
  s.edit('B', 2);
  assert.is(s.pick(8), 'ACBAACBA');

  // cw above the new maximum drops to it: 4:3:2 after C B A A (cl=A, cw=4); A to 1 ->
  // di=1, mw=3, cw=3, cl=head.
  // cw=3: C no, B, A no | end, cw=2: C, B | end, cw=1: C, B, A | end, cw=0 -> 3: B ...
  const t = wrr().add(['A', 4], ['B', 3], ['C', 2]);
  assert.is(t.pick(4), 'CBAA');
  t.edit('A', 1);
  assert.is(t.pick(12), 'BCBCBABCBCBA');
});

test('wrr: dests deleted mid-sequence, down to none and back', () => {
  // 4:3:2 after C B A A B: cl=B, cw=3. Delete B: list [C(2), A(4)], di=2, mw=3,
  // cw=(3/2)*2+1=3, cl=head.
  // cw=3: C no, A | end, cw=1: C, A | end, cw=-1 -> 3: A | ...
  const s = wrr().add(['A', 4], ['B', 3], ['C', 2]);
  assert.is(s.pick(5), 'CBAAB');
  s.del('B');
  assert.is(s.order(), 'CA');
  assert.is(s.pick(6), 'ACAACA');
  // Delete the rest: an empty list has mw=0, and cw follows it down to 0.
  s.del('A').del('C');
  assert.is(s.pick(2), '--');
  // A new dest of weight 5: di=5, mw=1, cw 0 -> 1: it takes every connection.
  s.add(['D', 5]);
  assert.is(s.pick(3), 'DDD');
});

test('wrr: overloaded dests are skipped; when all are, the search stops at the last dest', () => {
  // Added A(1), B(3), C(1): list [C, B, A], di=1, mw=3, cw stays 1.
  // cw=1: C, B. Then all overloaded: after B, A ov | end, cw=0 -> 3 (restarted) | cw=3, 2 |
  // cw=1 is the last pass and the search restarted, so stop = B: C ov, B ov = stop -> none,
  // cl = B, cw = 1.
  const s = wrr().add(['A', 1], ['B', 3], ['C', 1]);
  assert.is(s.pick(2), 'CB');
  s.overload('ABC');
  assert.is(s.pick(1), '-');
  // Back to normal from cl=B, cw=1: A | end, cw=0 -> 3: B | end, cw=2: B | end, cw=1: C, B, A.
  s.overload('ABC', false);
  assert.is(s.pick(6), 'ABBCBA');
  // From the head with everything overloaded: one pass per cw down to 0, then none.
  const h = wrr().add(['A', 1], ['B', 1]).overload('AB');
  assert.is(h.pick(2), '--');
  h.overload('B', false);
  assert.is(h.pick(3), 'BBB');
});

// ---- rr ----------------------------------------------------------------------------------

test('rr: in list order, newest first, wrapping', () => {
  const s = rr().add(['A', 1], ['B', 1], ['C', 1]);
  assert.is(s.order(), 'CBA');
  assert.is(s.pick(7), 'CBACBAC');
  // Weights beyond 0 do not matter to rr.
  assert.is(rr().add(['A', 100], ['B', 1]).pick(4), 'BABA');
});

test('rr: weight 0 and overloaded dests are skipped; none left -> no destination', () => {
  const s = rr().add(['A', 1], ['B', 1], ['C', 1]);
  assert.is(s.pick(2), 'CB');
  s.edit('B', 0);
  assert.is(s.pick(4), 'ACAC');
  s.overload('A');
  assert.is(s.pick(2), 'CC');
  s.edit('C', 0);
  assert.is(s.pick(2), '--');
  s.overload('A', false);
  assert.is(s.pick(2), 'AA');
});

test('rr: deleting the last-chosen dest steps the cursor back to its predecessor (ip_vs_rr_del_dest)', () => {
  // [C, B, A]; picks C, B (cursor on B). Delete B: cursor -> C, so the next is the one after C
  // in [C, A]: A. (A cursor reset to the head would give C.)
  const s = rr().add(['A', 1], ['B', 1], ['C', 1]);
  assert.is(s.pick(2), 'CB');
  s.del('B');
  assert.is(s.pick(3), 'ACA');

  // The cursor on the first dest: its predecessor is the list head, so next is the new first.
  const t = rr().add(['A', 1], ['B', 1], ['C', 1]);
  assert.is(t.pick(1), 'C');
  t.del('C');
  assert.is(t.pick(3), 'BAB');

  // Deleting another dest leaves the cursor alone: on B, A goes: after B wraps to C.
  const u = rr().add(['A', 1], ['B', 1], ['C', 1]);
  assert.is(u.pick(2), 'CB');
  u.del('A');
  assert.is(u.pick(3), 'CBC');

  // A dest added while the cursor is on B goes to the head: after B comes A, then D.
  const v = rr().add(['A', 1], ['B', 1], ['C', 1]);
  assert.is(v.pick(2), 'CB');
  v.add(['D', 1]);
  assert.is(v.order(), 'DCBA');
  assert.is(v.pick(5), 'ADCBA');

  // Delete everything: nothing to pick, and no loop.
  v.del('A').del('B').del('C').del('D');
  assert.is(v.pick(1), '-');
});

// ---- the registry and the engine ------------------------------------------------------------

const VIP = '202.103.106.5';
const CLIENT = '202.100.1.2';
const synFrom = (sport: number, dst = VIP) => tcpPacket({ src: CLIENT, dst, sport, dport: 80, flags: 'S' });

test('rr through the engine: deleting the last-chosen real server steps back, as in the kernel', () => {
  const e = new Engine({ connCapacity: 256, slotCount: 4, eventCapacity: 16 });
  e.restore([
    '-A -t 202.103.106.5:80 -s rr',
    '-a -t 202.103.106.5:80 -r 172.16.0.1:80 -m -w 1',
    '-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1',
    '-a -t 202.103.106.5:80 -r 172.16.0.3:80 -m -w 1',
  ].join('\n') + '\n');
  let port = 1000;
  const next = () => decode(e.processPacket(synFrom(port++), 1000).packet).dst.split('.')[3];
  // List [.3, .2, .1]: .3, .2; delete .2 -> cursor on .3 -> .1, .3.
  assert.equal([next(), next()], ['3', '2']);
  e.delDest({ protocol: 'tcp', vaddr: VIP, vport: 80 }, { daddr: '172.16.0.2', dport: 80 });
  assert.equal([next(), next(), next()], ['1', '3', '1']);
});

test('wrr through the engine: the seed sends 2 of every 3 connections to the weight-2 server', () => {
  const e = new Engine({ connCapacity: 256, slotCount: 4, eventCapacity: 16 });
  e.restore('-A -t 202.103.106.5:80 -s wrr\n-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1\n-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 2\n');
  const picks: string[] = [];
  for (let i = 0; i < 6; i++) {
    const d = decode(e.processPacket(synFrom(2000 + i), 1000).packet);
    picks.push(`${d.dst.split('.')[3]}:${d.dport}`);
  }
  assert.equal(picks, ['3:8000', '2:80', '3:8000', '3:8000', '2:80', '3:8000']);
});

test('registerScheduler: a custom scheduler serves an Engine service (-s custom)', () => {
  const changes: string[] = [];
  const packets: Array<{ saddr: number; sport: number; daddr: number; dport: number; now?: number }> = [];
  registerScheduler('custom', () => {
    let dests: readonly SchedDest[] = [];
    return {
      destsChanged(next, change) {
        dests = next;
        changes.push(`${change.kind}:${next.map((d) => `${d.daddr.toString(16)}:${d.dport}/${d.weight}`).join(',')}`);
      },
      // Even client ports to the real server on port 80, odd ones to 8000; port 9999: none.
      schedule(p) {
        packets.push({ ...p });
        if (p.sport === 9999) return undefined;
        return dests.find((d) => d.dport === (p.sport % 2 === 0 ? 80 : 8000));
      },
    };
  });
  assert.ok(schedulerNames().includes('custom'));
  const e = new Engine({ connCapacity: 256, slotCount: 4, eventCapacity: 16 });
  e.restore('-A -t 202.103.106.5:80 -s custom\n-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1\n-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 2\n');
  assert.match(e.save(), /^-A -t 202\.103\.106\.5:80 -s custom\n/);
  assert.equal(changes, ['add:ac100002:80/1', 'add:ac100003:8000/2,ac100002:80/1']);

  const even = e.processPacket(synFrom(3456), 1000);
  const odd = e.processPacket(synFrom(3457), 1000);
  assert.equal([decode(even.packet).dst, decode(even.packet).dport], ['172.16.0.2', 80]);
  assert.equal([decode(odd.packet).dst, decode(odd.packet).dport], ['172.16.0.3', 8000]);
  // The scheduler sees the new connection's tuple in the usual big-endian reading.
  assert.equal(packets[0], { saddr: 0xca640102, sport: 3456, daddr: 0xca676a05, dport: 80, now: 1000 });
  // Called once per new connection, never for the packets of a known one.
  e.processPacket(tcpPacket({ src: CLIENT, dst: VIP, sport: 3456, dport: 80, flags: 'A' }), 1001);
  assert.is(packets.length, 2);
  // No destination from the scheduler: the SYN is dropped as no-dest.
  const none = e.processPacket(synFrom(9999), 1002);
  assert.equal([none.verdict, none.reason], ['drop', 'no-dest']);
  // Edits and deletes reach the scheduler too.
  e.editDest({ protocol: 'tcp', vaddr: VIP, vport: 80 }, { daddr: '172.16.0.2', dport: 80, weight: 5 });
  e.delDest({ protocol: 'tcp', vaddr: VIP, vport: 80 }, { daddr: '172.16.0.3', dport: 8000 });
  assert.equal(changes.slice(2), ['edit:ac100003:8000/2,ac100002:80/5', 'del:ac100002:80/5']);
});

test('registerScheduler: names ipvsadm could not carry are rejected, and stay unregistered', () => {
  const factory = () => createRoundRobin();
  for (const name of ['', 'Custom', '1st', 'has space', 'rr!', 'a'.repeat(16), '-rr']) {
    try {
      registerScheduler(name, factory);
      assert.unreachable(`"${name}" was accepted`);
    } catch (err) {
      assert.ok(err instanceof WasmvsError, String(err));
      assert.is((err as WasmvsError).code, 'WASMVS_UNKNOWN_SCHEDULER');
      assert.ok((err as WasmvsError).message.includes(`"${name}"`), (err as WasmvsError).message);
    }
    assert.not.ok(schedulerNames().includes(name));
  }
  // 15 characters is the longest IP_VS_SCHEDNAME_MAXLEN allows, and fine.
  registerScheduler('wasmvs-test-15c', factory);
  assert.ok(schedulerNames().includes('wasmvs-test-15c'));
  const e = new Engine({ connCapacity: 16, slotCount: 2, eventCapacity: 2 });
  try {
    e.addService({ protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'Custom' });
    assert.unreachable('Custom was accepted');
  } catch (err) {
    assert.is((err as WasmvsError).code, 'WASMVS_UNKNOWN_SCHEDULER');
  }
  e.addService({ protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'wasmvs-test-15c' });
  assert.is(e.listServices()[0].scheduler, 'wasmvs-test-15c');
});

test.run();
