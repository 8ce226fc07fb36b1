// The IPVS schedulers beyond rr/wrr (host/schedulers/*.ts), each against a sequence worked out
// by hand from the kernel's algorithm (net/netfilter/ipvs/ip_vs_<name>.c). Every case states
// the dests (list order, newest first, as ip_vs_ctl.c's list_add_rcu), their weights and
// connection counts, the packets, and why each pick is what it is, so a wrong expectation is
// as visible as a wrong scheduler.
//
// The fake service mirrors ip_vs_ctl.c: a new dest goes to the head of the list before
// add_dest; a deleted one leaves the list before del_dest; an edit changes the weight before
// upd_dest. Connection counts are plain fields set by the test (the engine reads them live
// from the data plane). Dests are named by letter; picks are letters, '-' for none.
//
// Oracles independent of the code under test: the golden-ratio bucket is worked by hand
// ((last octet * 0xb1) & 255 for the 256-bucket tables, since only the low byte of the
// product survives); Maglev's hash is checked against a BigInt SipHash-1-3 written from the
// paper here, itself checked against CPython 3.11's bytes hash (SipHash-1-3, zero key under
// PYTHONHASHSEED=0):
//   PYTHONHASHSEED=0 python3 -c "print(hash(bytes(4)) & (2**64-1))"             -> 14709398186846620400
//   PYTHONHASHSEED=0 python3 -c "print(hash(bytes([1,2,3,4])) & (2**64-1))"     -> 16695301654492981716
//   PYTHONHASHSEED=0 python3 -c "print(hash((0xac100002+80).to_bytes(4,'little')) & (2**64-1))"
//                                                                                -> 8320125494993326917
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Engine } from '../host/engine/engine.js';
import { WasmvsError } from '../host/errors.js';
import { checkSchedFlags, createScheduler, DEFAULT_SCHEDULER, schedulerNames, type SchedDest, type SchedPacket, type Scheduler } from '../host/schedulers/index.js';
import { createDestinationHashing } from '../host/schedulers/dh.js';
import { createFailOver } from '../host/schedulers/fo.js';
import { createLocalityLeastConnection } from '../host/schedulers/lblc.js';
import { createLocalityLeastConnectionReplication } from '../host/schedulers/lblcr.js';
import { createLeastConnection } from '../host/schedulers/lc.js';
import { LOCALITY_MAX_SIZE } from '../host/schedulers/locality.js';
import { createMaglevHashing, hsiphash32, MH_HASH1, MH_HASH2, MH_TAB_SIZE, sipKeyState } from '../host/schedulers/mh.js';
import { createNeverQueue } from '../host/schedulers/nq.js';
import { createOverflow } from '../host/schedulers/ovf.js';
import { createShortestExpectedDelay } from '../host/schedulers/sed.js';
import { createSourceHashing } from '../host/schedulers/sh.js';
import { createTwoChoices } from '../host/schedulers/twos.js';
import { createWeightedLeastConnection } from '../host/schedulers/wlc.js';
import { newConnectionsScheduler, sequentialPool } from '../scripts/bench-lib.js';
import { decode, tcpPacket } from './support/packets.js';

// ---- the fake service ------------------------------------------------------------------------

interface FakeDest extends SchedDest {
  name: string;
  weight: number;
  overloaded: boolean;
  activeConns: number;
  inactConns: number;
  lastWeight?: number;
}

const ip = (s: string) => s.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const BASE_PACKET: SchedPacket = { saddr: ip('10.0.0.1'), sport: 40000, daddr: ip('202.103.106.5'), dport: 80 };

class Svc {
  dests: FakeDest[] = [];
  private readonly byName = new Map<string, FakeDest>();
  private nextIndex = 0;

  constructor(readonly scheduler: Scheduler) {}

  /** Adds dests in the order given, each to the head of the list; daddr 172.16.0.<n>, n from 1. */
  add(name: string, weight: number, at: { daddr?: string; dport?: number; index?: number } = {}): this {
    const index = at.index ?? this.nextIndex++;
    const d: FakeDest = {
      name, weight, overloaded: false, index, daddr: ip(at.daddr ?? `172.16.0.${index + 1}`), dport: at.dport ?? 80,
      activeConns: 0, inactConns: 0,
    };
    this.byName.set(name, d);
    this.dests = [d, ...this.dests];
    this.scheduler.destsChanged(this.dests, { kind: 'add', dest: d });
    return this;
  }

  edit(name: string, weight: number): this {
    const d = this.d(name);
    d.weight = weight;
    this.scheduler.destsChanged(this.dests, { kind: 'edit', dest: d });
    return this;
  }

  del(name: string): this {
    const d = this.d(name);
    this.dests = this.dests.filter((x) => x !== d);
    this.scheduler.destsChanged(this.dests, { kind: 'del', dest: d });
    return this;
  }

  d(name: string): FakeDest {
    const d = this.byName.get(name);
    if (!d) throw new Error(`no dest ${name}`);
    return d;
  }

  /** Sets counts or the overload flag of each named dest. */
  set(names: string, v: { active?: number; inact?: number; overloaded?: boolean }): this {
    for (const n of names) {
      const d = this.d(n);
      if (v.active !== undefined) d.activeConns = v.active;
      if (v.inact !== undefined) d.inactConns = v.inact;
      if (v.overloaded !== undefined) d.overloaded = v.overloaded;
    }
    return this;
  }

  pick(packet: Partial<SchedPacket> = {}): string {
    return (this.scheduler.schedule({ ...BASE_PACKET, ...packet }) as FakeDest | undefined)?.name ?? '-';
  }

  /** n picks; each picked dest gains one active (or inactive) connection, as a new one would. */
  run(n: number, count: 'active' | 'inact' | 'none' = 'active', packet: Partial<SchedPacket> = {}): string {
    let out = '';
    for (let i = 0; i < n; i++) {
      const name = this.pick(packet);
      out += name;
      if (name !== '-' && count === 'active') this.d(name).activeConns++;
      if (name !== '-' && count === 'inact') this.d(name).inactConns++;
    }
    return out;
  }

  order(): string {
    return this.dests.map((d) => d.name).join('');
  }
}

// ---- lc ----------------------------------------------------------------------------------------

test('lc: least overhead (active * 256 + inactive), ties to the newest, weights ignored', () => {
  // [C, B, A], all weight 1, no connections: C (ties keep the first). Each pick adds an
  // inactive connection: C1 B0 A0 -> B (0 < 1); C1 B1 A0 -> A; all 1 -> C; C2 B1 A1 -> B ...
  const s = new Svc(createLeastConnection()).add('A', 1).add('B', 1).add('C', 1);
  assert.is(s.order(), 'CBA');
  assert.is(s.run(6, 'inact'), 'CBACBA');
  // The worked example of lc.ts: A 1 active (256), B 300 inactive, C 2 inactive -> C (2);
  // C with 2 active and 2 inactive (514): B 300 < 514, then A 256 < 300 -> A.
  s.set('A', { active: 1, inact: 0 }).set('B', { active: 0, inact: 300 }).set('C', { active: 0, inact: 2 });
  assert.is(s.pick(), 'C');
  s.set('C', { active: 2 });
  assert.is(s.pick(), 'A');
  // One active connection weighs 256 inactive ones: 255 inactive beat 1 active, 256 tie.
  const t = new Svc(createLeastConnection()).add('A', 1).add('B', 1).set('A', { active: 1 }).set('B', { inact: 255 });
  assert.is(t.pick(), 'B');
  t.set('B', { inact: 256 });
  assert.is(t.pick(), 'B'); // [B, A]: a tie keeps B, the first
  t.set('B', { inact: 257 });
  assert.is(t.pick(), 'A');
  // Weight only matters as 0: A (weight 100) with 1 inactive loses to B (weight 1) with none.
  const u = new Svc(createLeastConnection()).add('A', 100).add('B', 1).set('A', { inact: 1 });
  assert.is(u.pick(), 'B');
});

test('lc: weight 0 and overloaded dests are skipped; none left -> no destination', () => {
  const s = new Svc(createLeastConnection()).add('A', 1).add('B', 1).set('A', { active: 5 });
  assert.is(s.pick(), 'B');
  s.edit('B', 0); // quiescent: A, although more loaded
  assert.is(s.pick(), 'A');
  s.set('A', { overloaded: true });
  assert.is(s.pick(), '-');
  s.set('A', { overloaded: false }).edit('A', 0);
  assert.is(s.pick(), '-');
  assert.is(new Svc(createLeastConnection()).pick(), '-');
});

// ---- wlc ---------------------------------------------------------------------------------------

test('wlc: overhead / weight by cross-multiplication; 1:3 weights give B A A A repeated', () => {
  // A (w3) then B (w1): list [B, A]. Each pick adds an active connection (256).
  //  B0   A0:    start B (0); A: 0*3 > 0*1? no             -> B
  //  B256 A0:    A: 256*3 > 0*1                            -> A
  //  B256 A256:  256*3 = 768 > 256*1                       -> A
  //  B256 A512:  768 > 512                                 -> A
  //  B256 A768:  768 > 768? no                             -> B
  //  B512 A768:  512*3 = 1536 > 768, then > 1024, > 1280   -> A A A, then 1536 > 1536? no -> B
  const s = new Svc(createWeightedLeastConnection()).add('A', 3).add('B', 1);
  assert.is(s.order(), 'BA');
  assert.is(s.run(12), 'BAAABAAABAAA');
  // The worked example of wlc.ts: [C(1), B(2), A(3)], A 2 active, B 1, C none -> C; C at 1
  // active: C 256*2 > B 256*1 -> B; A: 256*3 > 512*2? no -> B.
  const t = new Svc(createWeightedLeastConnection()).add('A', 3).add('B', 2).add('C', 1).set('A', { active: 2 }).set('B', { active: 1 });
  assert.is(t.pick(), 'C');
  t.set('C', { active: 1 });
  assert.is(t.pick(), 'B');
});

test('wlc: compares h1*w2 with h2*w1, not truncated quotients', () => {
  // [B(w2), A(w3)]: B overhead 667 (2 active + 155 inactive), A 1000 (3 active + 232).
  // 667/2 = 333.5 and 1000/3 = 333.3: A is less loaded. Start B; A: 667*3 = 2001 > 1000*2 =
  // 2000 -> A. (Integer quotients would tie at 333 and keep B.)
  const s = new Svc(createWeightedLeastConnection()).add('A', 3).add('B', 2)
    .set('B', { active: 2, inact: 155 }).set('A', { active: 3, inact: 232 });
  assert.is(s.pick(), 'A');
  s.set('A', { inact: 233 }); // 1001: 2001 > 2002? no -> B
  assert.is(s.pick(), 'B');
});

test('wlc: weight 0 never starts nor wins; overloaded skipped; no dests -> none', () => {
  // [Z(0), B(1)]: Z cannot start although idle; B (5 active) is the only choice.
  const s = new Svc(createWeightedLeastConnection()).add('B', 1).add('Z', 0).set('B', { active: 5 });
  assert.is(s.order(), 'ZB');
  assert.is(s.pick(), 'B');
  // [Y(0), B(1), X(0)]: B starts; a later weight-0 dest fails 1280*0 > 0*1.
  const t = new Svc(createWeightedLeastConnection()).add('X', 0).add('B', 1).add('Y', 0).set('B', { active: 5 });
  assert.is(t.pick(), 'B');
  t.set('B', { overloaded: true });
  assert.is(t.pick(), '-');
  // An overloaded dest is skipped in the second stage too: [C, B, A] with B idle but overloaded.
  const u = new Svc(createWeightedLeastConnection()).add('A', 1).add('B', 1).add('C', 1)
    .set('A', { active: 1 }).set('C', { active: 2 }).set('B', { overloaded: true });
  assert.is(u.pick(), 'A');
  assert.is(new Svc(createWeightedLeastConnection()).pick(), '-');
});

test('wlc: dests added and removed mid-sequence', () => {
  // [B(1), A(1)] with B 1 active, A 1 active: B (tie keeps the first).
  const s = new Svc(createWeightedLeastConnection()).add('A', 1).add('B', 1).set('AB', { active: 1 });
  assert.is(s.pick(), 'B');
  // C joins at the head, idle: C.
  s.add('C', 1);
  assert.is(s.order(), 'CBA');
  assert.is(s.run(3), 'CCB'); // C0 -> C; C256 vs B256, A256 ties -> C; C512: B (256) -> B
  s.del('C');
  // [B(2 active), A(1)]: A.
  assert.is(s.pick(), 'A');
});

// ---- sed ---------------------------------------------------------------------------------------

test('sed: (active + 1) / weight; the first connection goes to the faster server', () => {
  // A (w3) then B (w1): list [B, A]. Each pick adds an active connection.
  //  B0 A0: B loh 1; A: 1*3 > 1*1         -> A      (wlc would say B: 0*3 > 0*1 fails)
  //  B0 A1: 1*3 > 2*1                     -> A
  //  B0 A2: 1*3 > 3*1? no                 -> B
  //  B1 A2: loh 2: 2*3 = 6 > 3, > 4, > 5  -> A A A; then 6 > 6? no -> B
  const s = new Svc(createShortestExpectedDelay()).add('A', 3).add('B', 1);
  assert.is(s.run(11), 'AABAAABAAAB');
  // Inactive connections do not count: B with 1000 inactive is as idle as before.
  const t = new Svc(createShortestExpectedDelay()).add('A', 3).add('B', 1).set('B', { inact: 1000 }).set('A', { active: 2 });
  assert.is(t.pick(), 'B'); // 1*3 > 3*1 fails: B (a tie keeps the first)
});

test('sed: weight 0 and overloaded skipped; none -> no destination', () => {
  const s = new Svc(createShortestExpectedDelay()).add('A', 3).add('B', 0);
  assert.is(s.pick(), 'A');
  s.set('A', { overloaded: true });
  assert.is(s.pick(), '-');
  s.set('A', { overloaded: false }).del('A');
  assert.is(s.pick(), '-');
});

// ---- nq ----------------------------------------------------------------------------------------

test('nq: an idle dest first (in list order), else shortest expected delay', () => {
  // [C(1), B(1), A(4)] all idle. Each pick adds an active connection.
  //  1: C idle -> C.  2: B idle -> B.  3: A idle -> A.
  //  4: C2 B2 A2 (active + 1): C; B 2*1 > 2*1 no; A 2*4 > 2*1 -> A.   5..9: A at 3..7 + 1:
  //     8 > 3, 4, 5, 6, 7 -> A five more times.   10: A 8: 8 > 8 no -> C.
  //  11: C 3; B 3*1 > 2*1 -> B; A 2*4 > 8*1 no -> B.   12: C 3, B 3 (no), A 3*4 > 8 -> A.
  const s = new Svc(createNeverQueue()).add('A', 4).add('B', 1).add('C', 1);
  assert.is(s.run(12), 'CBAAAAAAACBA');
  // The worked example of nq.ts: A 1 active, B 50 inactive only, C 3 active: B is idle.
  const t = new Svc(createNeverQueue()).add('A', 4).add('B', 1).add('C', 1)
    .set('A', { active: 1 }).set('B', { inact: 50 }).set('C', { active: 3 });
  assert.is(t.pick(), 'B');
  t.set('B', { active: 1 });
  assert.is(t.pick(), 'A'); // C 4, B 2 (4 > 2), A 2 (2*4 > 2*1)
  // The first idle dest wins outright, even a weight-1 one before an idle weight-100 one.
  assert.is(new Svc(createNeverQueue()).add('A', 100).add('C', 1).pick(), 'C');
});

test('nq: an idle but quiescent or overloaded dest is passed over', () => {
  const s = new Svc(createNeverQueue()).add('A', 1).add('B', 0).add('C', 1).set('A', { active: 3 }).set('C', { overloaded: true });
  assert.is(s.order(), 'CBA');
  assert.is(s.pick(), 'A');
  s.set('A', { overloaded: true });
  assert.is(s.pick(), '-');
});

// ---- fo ----------------------------------------------------------------------------------------

test('fo: the highest weight takes everything, whatever its load; ties to the first', () => {
  // [C(5), B(10), A(10)] -> B (the first 10), however many connections it has.
  const s = new Svc(createFailOver()).add('A', 10).add('B', 10).add('C', 5);
  assert.is(s.run(3), 'BBB');
  s.set('B', { active: 1000 });
  assert.is(s.pick(), 'B');
  s.set('B', { overloaded: true });
  assert.is(s.pick(), 'A');
  s.edit('A', 0).edit('B', 0);
  assert.is(s.pick(), 'C');
  s.edit('C', 0);
  assert.is(s.pick(), '-');
  // A new dest of higher weight takes over at once.
  s.add('D', 1);
  assert.is(s.pick(), 'D');
  s.edit('B', 2).set('B', { overloaded: false });
  assert.is(s.pick(), 'B');
});

// ---- ovf ---------------------------------------------------------------------------------------

test('ovf: the top weight until its active count exceeds the weight, then the next', () => {
  // [B(2), A(3)]; each pick adds an active connection. A qualifies at 0..3 active (3 > 3
  // fails): A A A A; then B at 0..2: B B B; then A 4 > 3 and B 3 > 2: none.
  const s = new Svc(createOverflow()).add('A', 3).add('B', 2);
  assert.is(s.run(8), 'AAAABBB-');
  // A's connections close: A again. Inactive ones never count.
  s.set('A', { active: 0, inact: 100 });
  assert.is(s.pick(), 'A');
  // Equal weights: the first in list order.
  assert.is(new Svc(createOverflow()).add('A', 2).add('B', 2).pick(), 'B');
  // Weight 0 and overloaded never qualify, even idle.
  const t = new Svc(createOverflow()).add('A', 1).add('B', 0).set('A', { overloaded: true });
  assert.is(t.pick(), '-');
});

// ---- twos --------------------------------------------------------------------------------------

/** A random source returning the given u32 values (as fractions of 2^32), then failing. */
function draws(...u32: number[]): { random: () => number; left: () => number } {
  const q = [...u32];
  return {
    random: () => {
      const v = q.shift();
      if (v === undefined) throw new Error('random called more often than expected');
      return v / 4294967296;
    },
    left: () => q.length,
  };
}

test('twos: two weighted draws, the less loaded of the two (the worked example)', () => {
  // [C(1), B(2), A(3)]: total = 6 + 1 = 7.
  // Draws 10, 3: r1 = r2 = 3. C: 3-1 = 2 > 0; B: 2-2 = 0 <= 0: both choices B -> B.
  const r = draws(10, 3, 0, 6, 0, 6);
  const s = new Svc(createTwoChoices([], { random: r.random })).add('A', 3).add('B', 2).add('C', 1);
  assert.is(s.pick(), 'B');
  // Draws 0, 6: r1 = 0: C -> choice 1 = C. r2 = 6: C 5, B 3, A 0 -> choice 2 = A.
  // C 1 active (256 at weight 1), A 1 active (256 at weight 3): w2*oh1 = 3*256 > w1*oh2 =
  // 1*256 -> A.
  s.set('C', { active: 1 }).set('A', { active: 1 });
  assert.is(s.pick(), 'A');
  // Same draws with A at 3 active: 3*256 = 768 > 1*768? no, a tie keeps choice 1: C.
  s.set('A', { active: 3 });
  assert.is(s.pick(), 'C');
  assert.is(r.left(), 0);
});

test('twos: r = 0 .. total inclusive favours the first dest by one unit', () => {
  // [B(1), A(1)], total 3: r = 0 -> B (-1), r = 1 -> B (0), r = 2 -> B 1 > 0, A 0 -> A.
  // Both draws equal each time, so the pick is that dest.
  const r = draws(0, 0, 1, 1, 2, 2, 3, 3);
  const s = new Svc(createTwoChoices([], { random: r.random })).add('A', 1).add('B', 1);
  assert.is(s.run(4, 'none'), 'BBAB'); // 3 % 3 = 0 -> B
});

test('twos: overloaded and quiescent dests are outside the draw; none -> no draw at all', () => {
  // [C(5) overloaded, B(0), A(2)]: total = 2 + 1 = 3, and every draw lands on A.
  const r = draws(0, 2, 1, 1);
  const s = new Svc(createTwoChoices([], { random: r.random })).add('A', 2).add('B', 0).add('C', 5).set('C', { overloaded: true });
  assert.is(s.run(2, 'none'), 'AA');
  s.edit('A', 0);
  assert.is(s.pick(), '-'); // draws() would throw if the kernel's early return were missing
  assert.is(new Svc(createTwoChoices([], { random: r.random })).pick(), '-');
  // The default source is Math.random: still one of the dests.
  const d = new Svc(createTwoChoices()).add('A', 1).add('B', 1);
  assert.ok(['A', 'B'].includes(d.pick()));
});

// ---- sh ----------------------------------------------------------------------------------------

const client = (last: number, port = 40000) => ({ saddr: ip(`10.0.0.${last}`), sport: port });

test('sh: buckets tiled by weight in list order; the bucket is (saddr * 2654435761) & 255', () => {
  // A (w1) then B (w2): list [B, A], buckets B B A B B A ... (bucket i is A iff i % 3 == 2).
  // 10.0.0.1: 1 * 177 = 177, 177 % 3 = 0 -> B.  10.0.0.2: 354 & 255 = 98, % 3 = 2 -> A.
  // 10.0.0.3: 531 & 255 = 19, % 3 = 1 -> B.  Only the last octet matters: 192.168.7.2 -> A.
  const s = new Svc(createSourceHashing()).add('A', 1).add('B', 2);
  assert.is([1, 2, 3].map((o) => s.pick(client(o))).join(''), 'BAB');
  assert.is(s.pick({ saddr: ip('192.168.7.2') }), 'A');
  // The same client always lands on the same dest, whatever its port or the load.
  s.set('A', { active: 1000 });
  assert.is(s.pick(client(2, 1)) + s.pick(client(2, 65535)), 'AA');
  // o -> o * 177 & 255 is a bijection (177 is odd), so the 256 last octets visit every
  // bucket once: A holds buckets 2, 5, ... 254 (85 of them), B the other 171.
  const count = { A: 0, B: 0 } as Record<string, number>;
  for (let o = 0; o < 256; o++) count[s.pick(client(o))]++;
  assert.equal(count, { A: 85, B: 171 });
});

test('sh: weight 0 and overloaded dests are unavailable where they sit; adds and deletes retile', () => {
  // Quiescing A: the tiling is the same (a weight-0 dest still fills one bucket per pass),
  // so 10.0.0.2 (bucket 98, A) gets no destination, while 10.0.0.1 (177, B) is unaffected.
  const s = new Svc(createSourceHashing()).add('A', 1).add('B', 2);
  s.edit('A', 0);
  assert.is(s.pick(client(2)) + s.pick(client(1)), '-B');
  s.edit('A', 1).set('B', { overloaded: true });
  assert.is(s.pick(client(2)) + s.pick(client(1)), 'A-');
  // B back to normal and C (w1) joins: [C, B, A] with weights 1, 2, 1 -> C B B A repeated
  // (period 4): bucket 177 % 4 = 1 -> B; 98 % 4 = 2 -> B; 19 % 4 = 3 -> A.
  s.add('C', 1).set('B', { overloaded: false });
  assert.is([1, 2, 3].map((o) => s.pick(client(o))).join(''), 'BBA');
  // Deleting B: [C, A] -> C A C A: 177 odd -> A, 98 even -> C.
  s.del('B');
  assert.is(s.pick(client(1)) + s.pick(client(2)), 'AC');
  s.del('A').del('C');
  assert.is(s.pick(client(1)), '-');
  // A weight beyond the table fills it: [D(300), E(1)] -> D everywhere.
  const t = new Svc(createSourceHashing()).add('E', 1).add('D', 300);
  assert.is([0, 1, 2, 3, 255].map((o) => t.pick(client(o))).join(''), 'DDDDD');
});

test('sh-fallback: probe buckets 2h, 2h+1, ... for an available dest', () => {
  // [C, B, A], weight 1 each: bucket i holds C, B, A for i % 3 = 0, 1, 2.
  // 10.0.0.2 -> h = 98 (A). A and B quiesced. ip_vs_sh_get_fallback probes bucket
  // (roffset + h) & 255 with roffset = (h + offset) & 255: 196 (% 3 = 1, B), 197 (2, A),
  // 198 (0, C) -> C.
  const s = new Svc(createSourceHashing(['sh-fallback'])).add('A', 1).add('B', 1).add('C', 1);
  assert.is(s.pick(client(2)), 'A');
  s.edit('A', 0).edit('B', 0);
  assert.is(s.pick(client(2)), 'C');
  // Without the flag: none.
  const t = new Svc(createSourceHashing()).add('A', 1).add('B', 1).add('C', 1).edit('A', 0).edit('B', 0);
  assert.is(t.pick(client(2)), '-');
  // flag-1 is the same flag (IP_VS_SVC_F_SCHED1).
  const u = new Svc(createSourceHashing(['flag-1'])).add('A', 1).add('B', 1).add('C', 1).edit('A', 0).edit('B', 0);
  assert.is(u.pick(client(2)), 'C');
  // The worked example of sh.ts: [B(2), A(1)], A quiesced: 10.0.0.2 probes 196 (% 3 = 1, B).
  const v = new Svc(createSourceHashing(['sh-fallback'])).add('A', 1).add('B', 2).edit('A', 0);
  assert.is(v.pick(client(2)), 'B');
  // Where the probes start matters: [D, C, B, A], bucket i % 4 = D, C, B, A. 10.0.0.2 ->
  // 98 (% 4 = 2: B). B quiesced: the first probe is 196 (% 4 = 0: D), not 99 (A).
  const w = new Svc(createSourceHashing(['sh-fallback'])).add('A', 1).add('B', 1).add('C', 1).add('D', 1);
  assert.is(w.pick(client(2)), 'B');
  w.edit('B', 0);
  assert.is(w.pick(client(2)), 'D');
  // Everything unavailable: all 256 probes fail -> none (and the loop ends).
  v.set('B', { overloaded: true });
  assert.is(v.pick(client(2)), '-');
});

test('sh-port: the source port is added to the address before hashing', () => {
  // [B(2), A(1)]. 10.0.0.1 port 1: low byte of 0x0a000001 + 1 is 2 -> 98 -> A.
  // Port 2: 3 -> 19 -> B. Port 256: low byte 1 -> 177 -> B. Port 257: 2 -> A.
  const s = new Svc(createSourceHashing(['sh-port'])).add('A', 1).add('B', 2);
  assert.is([1, 2, 256, 257].map((p) => s.pick(client(1, p))).join(''), 'ABBA');
  const flag2 = new Svc(createSourceHashing(['flag-2'])).add('A', 1).add('B', 2);
  assert.is([1, 2, 256, 257].map((p) => flag2.pick(client(1, p))).join(''), 'ABBA');
  // Without the flag the port is ignored: all four B (bucket 177).
  const plain = new Svc(createSourceHashing()).add('A', 1).add('B', 2);
  assert.is([1, 2, 256, 257].map((p) => plain.pick(client(1, p))).join(''), 'BBBB');
});

// ---- dh ----------------------------------------------------------------------------------------

test('dh: one bucket per dest round the table; the bucket is (daddr * 2654435761) & 255', () => {
  // A, B, C -> [C, B, A]: bucket i holds C, B, A for i % 3 = 0, 1, 2.
  // 202.103.106.5: 5 * 177 = 885 & 255 = 117, % 3 = 0 -> C.  192.0.2.7: 1239 & 255 = 215,
  // % 3 = 2 -> A.  198.51.100.4: 708 & 255 = 196, % 3 = 1 -> B.
  const s = new Svc(createDestinationHashing()).add('A', 1).add('B', 1).add('C', 1);
  assert.is(['202.103.106.5', '192.0.2.7', '198.51.100.4'].map((a) => s.pick({ daddr: ip(a) })).join(''), 'CAB');
  // The source does not matter.
  assert.is(s.pick({ daddr: ip('192.0.2.7'), saddr: ip('203.0.113.9'), sport: 1 }), 'A');
  // Weights do not tile: A (w5) still holds one bucket in three.
  const count = { A: 0, B: 0, C: 0 } as Record<string, number>;
  s.edit('A', 5);
  for (let o = 0; o < 256; o++) count[s.pick({ daddr: ip(`192.0.2.${o}`) })]++;
  assert.equal(count, { A: 85, B: 85, C: 86 }); // buckets 0..255: % 3 = 0 has 86
  // Quiescent or overloaded: none for its addresses, no fallback.
  s.edit('A', 0);
  assert.is(s.pick({ daddr: ip('192.0.2.7') }), '-');
  s.edit('A', 1).set('C', { overloaded: true });
  assert.is(s.pick({ daddr: ip('202.103.106.5') }) + s.pick({ daddr: ip('192.0.2.7') }), '-A');
  // Deleting B retiles [C, A]: 117 odd -> A; 215 odd -> A; 196 even -> C (overloaded: none).
  s.del('B');
  assert.is(['202.103.106.5', '192.0.2.7', '198.51.100.4'].map((a) => s.pick({ daddr: ip(a) })).join(''), 'AA-');
  assert.is(new Svc(createDestinationHashing()).pick(), '-');
});

// ---- mh ----------------------------------------------------------------------------------------

const M64 = (1n << 64n) - 1n;
const rotl64 = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & M64;

/** SipHash-c-d from the paper (Aumasson and Bernstein), over bytes, BigInt: the oracle. */
function sipRef(k0: bigint, k1: bigint, msg: Uint8Array, c = 1, d = 3): bigint {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & M64; v1 = rotl64(v1, 13n) ^ v0; v0 = rotl64(v0, 32n);
    v2 = (v2 + v3) & M64; v3 = rotl64(v3, 16n) ^ v2;
    v0 = (v0 + v3) & M64; v3 = rotl64(v3, 21n) ^ v0;
    v2 = (v2 + v1) & M64; v1 = rotl64(v1, 17n) ^ v2; v2 = rotl64(v2, 32n);
  };
  const whole = msg.length - (msg.length % 8);
  for (let i = 0; i < whole; i += 8) {
    let m = 0n;
    for (let j = 7; j >= 0; j--) m = (m << 8n) | BigInt(msg[i + j]);
    v3 ^= m;
    for (let r = 0; r < c; r++) round();
    v0 ^= m;
  }
  let b = BigInt(msg.length & 255) << 56n;
  for (let j = whole; j < msg.length; j++) b |= BigInt(msg[j]) << BigInt(8 * (j - whole));
  v3 ^= b;
  for (let r = 0; r < c; r++) round();
  v0 ^= b;
  v2 ^= 0xffn;
  for (let r = 0; r < d; r++) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

/** ip_vs_mh_hashkey's hsiphash(&v, 4, key): v's 4 bytes as they lie in x86 memory. */
function mhRef(k: bigint, v: number): number {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, v >>> 0, true);
  return Number(sipRef(k, k, bytes) & 0xffffffffn);
}
const K1 = 2654435761n;
const K2 = 2654446892n;

test('mh hash: the oracle matches CPython; hsiphash32 matches the oracle under the kernel keys', () => {
  const le = (v: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v, true); return b; };
  assert.is(sipRef(0n, 0n, new Uint8Array(4)), 14709398186846620400n);
  assert.is(sipRef(0n, 0n, Uint8Array.from([1, 2, 3, 4])), 16695301654492981716n);
  assert.is(sipRef(0n, 0n, le(ip('172.16.0.2') + 80)), 8320125494993326917n);
  const zero = sipKeyState(0n, 0n);
  assert.is(hsiphash32(zero, 0), Number(14709398186846620400n & 0xffffffffn));
  assert.is(hsiphash32(zero, 0x04030201), Number(16695301654492981716n & 0xffffffffn));
  // Under both kernel keys, over values whose halves carry in every way.
  const values = [0, 1, 0xffffffff, 0x80000000, 0x7fffffff, ip('172.16.0.2') + 80, ip('10.0.0.1'), 0xdeadbeef];
  for (let i = 0; i < 200; i++) values.push(Math.imul(i + 1, 0x9e3779b1) >>> 0);
  for (const v of values) {
    assert.is(hsiphash32(MH_HASH1, v), mhRef(K1, v), `hash1 of ${v}`);
    assert.is(hsiphash32(MH_HASH2, v), mhRef(K2, v), `hash2 of ${v}`);
  }
});

const MH_CLIENTS = (() => {
  // One client address per entry, found once (the same for every table).
  const out: number[] = new Array(MH_TAB_SIZE).fill(-1);
  let left = MH_TAB_SIZE;
  for (let a = 1; left > 0; a++) {
    const saddr = (0x0a000000 + a) >>> 0;
    const entry = mhRef(K1, saddr) % MH_TAB_SIZE;
    if (out[entry] < 0) { out[entry] = saddr; left--; }
  }
  return out;
})();

/** The table through the scheduler: entry e's dest, via the client that hashes to e. */
function mhEntries(s: Svc): string[] {
  return MH_CLIENTS.map((saddr) => s.pick({ saddr }));
}
const tally = (t: string[]) => t.reduce<Record<string, number>>((o, n) => { o[n] = (o[n] ?? 0) + 1; return o; }, {});

test('mh: the first rounds of the worked example, and an exact split of 4093 entries', () => {
  // A = 172.16.0.1:80 then B = 172.16.0.2:80, weight 1 each: list [B, A]. Each dest's
  // permutation: offset = h1(port + addr) % 4093, skip = h2(port + addr) % 4092 + 1.
  const s = new Svc(createMaglevHashing()).add('A', 1).add('B', 1);
  const perm = (addr: string) => {
    const v = ip(addr) + 80;
    return { offset: mhRef(K1, v) % MH_TAB_SIZE, skip: (mhRef(K2, v) % (MH_TAB_SIZE - 1)) + 1 };
  };
  const a = perm('172.16.0.1');
  const b = perm('172.16.0.2');
  // Round 1: B (first in the list) claims its offset; A claims its own (or, if B has it,
  // its next preference).
  const t = mhEntries(s);
  assert.is(t[b.offset], 'B');
  const a1 = a.offset !== b.offset ? a.offset : (a.offset + a.skip) % MH_TAB_SIZE;
  assert.is(t[a1], 'A');
  // Round 2: B's next free preference.
  let b2 = (b.offset + b.skip) % MH_TAB_SIZE;
  while (b2 === a1) b2 = (b2 + b.skip) % MH_TAB_SIZE;
  assert.is(t[b2], 'B');
  // One claim each per round, B first: 4093 = 2 * 2046 + 1 -> B 2047, A 2046.
  assert.equal(tally(t), { B: 2047, A: 2046 });
});

test('mh: a client goes to entry h1(saddr) % 4093, whatever its port; mh-port adds the port', () => {
  const s = new Svc(createMaglevHashing()).add('A', 1).add('B', 1).add('C', 1);
  const t = mhEntries(s);
  for (const addr of ['10.1.2.3', '192.168.0.77', '203.0.113.200']) {
    const saddr = ip(addr);
    const want = t[mhRef(K1, saddr) % MH_TAB_SIZE];
    assert.is(s.pick({ saddr, sport: 1 }), want, addr);
    assert.is(s.pick({ saddr, sport: 65535 }), want, addr);
  }
  // mh-port: the key is sport + saddr (u32), so the port moves the client between entries.
  const p = new Svc(createMaglevHashing(['mh-port'])).add('A', 1).add('B', 1).add('C', 1);
  const f2 = new Svc(createMaglevHashing(['flag-2'])).add('A', 1).add('B', 1).add('C', 1);
  const saddr = ip('10.1.2.3');
  let differs = 0;
  for (let port = 1; port <= 50; port++) {
    const want = t[mhRef(K1, (saddr + port) >>> 0) % MH_TAB_SIZE];
    assert.is(p.pick({ saddr, sport: port }), want, `port ${port}`);
    assert.is(f2.pick({ saddr, sport: port }), want, `flag-2 port ${port}`);
    if (want !== t[mhRef(K1, saddr) % MH_TAB_SIZE]) differs++;
  }
  assert.ok(differs > 10, `the port moved only ${differs} of 50 connections`);
  // The u32 wrap: 255.255.255.255 port 2 is key 1.
  assert.is(p.pick({ saddr: 0xffffffff, sport: 2 }), t[mhRef(K1, 1) % MH_TAB_SIZE]);
});

test('mh: balance: equal weights split the table within one entry; weights by turns', () => {
  // Seven dests of weight 1: each round every dest claims one entry, so 4093 / 7 = 584.7
  // gives 585 to the first five in list order (4093 = 7 * 584 + 5) and 584 to the others.
  // (Turn-taking makes the split exact, well inside the paper's bound for M >> N.)
  const s = new Svc(createMaglevHashing());
  for (const n of 'ABCDEFG') s.add(n, 1);
  assert.is(s.order(), 'GFEDCBA');
  assert.equal(tally(mhEntries(s)), { G: 585, F: 585, E: 585, D: 585, C: 585, B: 584, A: 584 });
  // Weights 1 (A) and 2 (B): turns 1 and 2, list [B, A]: rounds of B B A. 4093 = 3 * 1364 + 1:
  // B 2 * 1364 + 1 = 2729, A 1364.
  const w = new Svc(createMaglevHashing()).add('A', 1).add('B', 2);
  const t12 = mhEntries(w);
  assert.equal(tally(t12), { B: 2729, A: 1364 });
  // Weights 2 and 4 divide by their gcd to the same turns, so the same table.
  const g = new Svc(createMaglevHashing()).add('A', 2).add('B', 4);
  assert.equal(mhEntries(g), t12);
  // Weights 1 (S) and 1000 (L): max / gcd = 1000, fls(1000) = 10, rshift = 10 - 6 = 4:
  // turns 1000 >> 4 = 62 and 1 >> 4 = 0 -> 1 (a non-zero weight keeps one turn). Rounds of
  // 63, L first ([L, S]): 64 rounds = 4032 entries, then L takes the last 61:
  // L 62 * 64 + 61 = 4029, S 64.
  const big = new Svc(createMaglevHashing()).add('S', 1).add('L', 1000);
  assert.equal(tally(mhEntries(big)), { L: 4029, S: 64 });
});

test('mh: minimal disruption: deleting a dest moves its clients and few others', () => {
  const s = new Svc(createMaglevHashing());
  for (const n of 'ABCDEFGHIJ') s.add(n, 1);
  const before = mhEntries(s);
  s.del('E');
  const after = mhEntries(s);
  let moved = 0;
  let fromE = 0;
  for (let e = 0; e < MH_TAB_SIZE; e++) {
    if (before[e] === 'E') { fromE++; assert.not.equal(after[e], 'E'); continue; }
    if (before[e] !== after[e]) moved++;
  }
  assert.is(fromE, 409); // 4093 = 10 * 409 + 3: J, I, H (first in the list) 410, the rest 409
  // Maglev's promise: entries of the remaining dests mostly stay. A modulo hash would move
  // about 90% of them; here, a few percent at most.
  assert.ok(moved < MH_TAB_SIZE * 0.03, `${moved} entries of other dests moved`);
  // Added back, E is at the head of the list and claims first: a slightly different table,
  // the shares still within one entry.
  s.add('E', 1);
  const shares = Object.values(tally(mhEntries(s)));
  assert.ok(Math.max(...shares) - Math.min(...shares) <= 1, String(shares));
});

test('mh: quiescing keeps the table (last_weight); the dest is unavailable at its entries', () => {
  const s = new Svc(createMaglevHashing()).add('A', 1).add('B', 1).add('C', 1);
  const before = mhEntries(s);
  s.edit('B', 0);
  const after = mhEntries(s);
  // Every entry of A and C unchanged; B's give no destination.
  for (let e = 0; e < MH_TAB_SIZE; e++) assert.is(after[e], before[e] === 'B' ? '-' : before[e]);
  // Weight back to 1: the same table.
  s.edit('B', 1);
  assert.equal(mhEntries(s), before);
  // A dest added with weight 0 has last_weight 0: no entries at all.
  const z = new Svc(createMaglevHashing()).add('A', 1).add('Z', 0);
  assert.equal(tally(mhEntries(z)), { A: MH_TAB_SIZE });
  // All last weights 0: the table is reset, nothing to pick.
  assert.is(new Svc(createMaglevHashing()).add('Z', 0).pick(), '-');
  assert.is(new Svc(createMaglevHashing()).pick(), '-');
  // The engine's lastWeight, when given, is what counts: B, seen first at weight 0 (as when
  // a service switches to mh after B was quiesced) but with last_weight 1, keeps its share.
  const e = new Svc(createMaglevHashing()).add('A', 1).add('B', 0);
  assert.equal(tally(mhEntries(e)), { A: MH_TAB_SIZE });
  e.d('B').lastWeight = 1;
  e.scheduler.destsChanged(e.dests, { kind: 'edit', dest: e.d('A') });
  assert.equal(tally(mhEntries(e)), { '-': 2047, A: 2046 });
});

test('mh-fallback: an unavailable entry probes h1(roffset + port + saddr) for the next', () => {
  const s = new Svc(createMaglevHashing(['mh-fallback'])).add('A', 1).add('B', 1).add('C', 1);
  const t = mhEntries(s);
  s.edit('B', 0);
  // For a client of B's: roffset = (h + offset) % 4093 for offset 0, 1, ...; the entry
  // probed is h1(roffset + saddr) % 4093; the first not on B decides.
  let checked = 0;
  for (let e = 0; e < MH_TAB_SIZE && checked < 20; e++) {
    if (t[e] !== 'B') continue;
    const saddr = MH_CLIENTS[e];
    let want = '-';
    for (let offset = 0; offset < MH_TAB_SIZE; offset++) {
      const roffset = (offset + e) % MH_TAB_SIZE;
      const probed = t[mhRef(K1, (roffset + saddr) >>> 0) % MH_TAB_SIZE];
      if (probed !== 'B') { want = probed; break; }
    }
    assert.is(s.pick({ saddr }), want, `client ${saddr.toString(16)}`);
    assert.ok(want === 'A' || want === 'C');
    checked++;
  }
  assert.is(checked, 20);
  // Clients of A and C are untouched.
  const ofA = MH_CLIENTS[t.indexOf('A')];
  assert.is(s.pick({ saddr: ofA }), 'A');
  // flag-1 is the same flag; everything unavailable: none after 4093 probes.
  const f = new Svc(createMaglevHashing(['flag-1'])).add('A', 1).add('B', 1).edit('B', 0);
  assert.is(f.pick({ saddr: MH_CLIENTS[mhEntries(new Svc(createMaglevHashing()).add('A', 1).add('B', 1)).indexOf('B')] }), 'A');
  f.set('A', { overloaded: true });
  assert.is(f.pick(), '-');
});

// ---- lblc --------------------------------------------------------------------------------------

const V = ip('202.103.106.5');
const MIN = 60_000;
const HOUR = 60 * MIN;

test('lblc: the worked example: V sticks to its dest until lblc calls it overloaded', () => {
  // [B(2), A(1)]. First connection to V: wlc keeps B (0*1 > 0*2 fails): V -> B.
  const s = new Svc(createLocalityLeastConnection([], { start: 0 })).add('A', 1).add('B', 2);
  assert.is(s.pick({ daddr: V, now: 1000 }), 'B');
  // B keeps V while its active count is within its weight, though A is idle.
  s.set('B', { active: 2 });
  assert.is(s.pick({ daddr: V, now: 2000 }), 'B');
  // B at 3 active (> 2) and A under half its weight (0 * 2 < 1): wlc again: B 768*1 > 0*2,
  // A -> V -> A (the entry now points to A).
  s.set('B', { active: 3 });
  assert.is(s.pick({ daddr: V, now: 3000 }), 'A');
  // A at 2 active, over its weight, but no dest under half its own (B 6 < 2, A 4 < 1): A stays.
  s.set('A', { active: 2 });
  assert.is(s.pick({ daddr: V, now: 4000 }), 'A');
  // Another destination address has its own entry, scheduled by wlc: B 768 * 1 > 512 * 2? no
  // -> B.
  assert.is(s.pick({ daddr: ip('202.103.106.6'), now: 5000 }), 'B');
  assert.is(s.pick({ daddr: V, now: 6000 }), 'A');
  // Sources do not matter.
  assert.is(s.pick({ daddr: V, saddr: ip('198.51.100.1'), now: 7000 }), 'A');
});

test('lblc: the cached dest is dropped when deleted or quiesced, kept when over its threshold', () => {
  const s = new Svc(createLocalityLeastConnection([], { start: 0 })).add('A', 1).add('B', 1);
  assert.is(s.pick({ daddr: V, now: 1 }), 'B');
  // The upper-threshold flag is not lblc's overload test: the cached B stays in use.
  s.set('B', { overloaded: true });
  assert.is(s.pick({ daddr: V, now: 2 }), 'B');
  // But a new address is scheduled by wlc, which skips it.
  assert.is(s.pick({ daddr: ip('192.0.2.1'), now: 3 }), 'A');
  s.set('B', { overloaded: false });
  // Quiesced: wlc over [B(0), A] -> A, and the entry moves to A.
  s.edit('B', 0);
  assert.is(s.pick({ daddr: V, now: 4 }), 'A');
  s.edit('B', 1).set('A', { active: 1 });
  assert.is(s.pick({ daddr: V, now: 5 }), 'A'); // cached: A, not the idle B
  // Deleted: rescheduled (to B, the only one left).
  s.del('A');
  assert.is(s.pick({ daddr: V, now: 6 }), 'B');
  s.del('B');
  assert.is(s.pick({ daddr: V, now: 7 }), '-');
});

test('lblc: entries unused for 24 h go at the full check, every 30th minute', () => {
  // The timer starts at 0 and runs every minute; with the table small, every 30th run is a
  // full check: at 30, 60, 90 ... minutes. Its rule: keep an entry while now < lastuse + 24 h.
  const s = new Svc(createLocalityLeastConnection([], { start: 0 })).add('A', 1).add('B', 1);
  const lb = s.scheduler as ReturnType<typeof createLocalityLeastConnection>;
  // V is cached on A (B busy at the time), at t = 1 s.
  s.set('B', { active: 1 });
  assert.is(s.pick({ daddr: V, now: 1000 }), 'A');
  s.set('B', { active: 0 }).set('A', { active: 1 });
  // At 24 h exactly (the 48th full check) V is kept: 86 400 000 < 1000 + 86 400 000. A
  // second address gets an entry then, on B (A has the active connection now).
  assert.is(s.pick({ daddr: ip('192.0.2.1'), now: 24 * HOUR }), 'B');
  assert.is(lb.table.size, 2);
  assert.ok(lb.table.get(V) !== undefined);
  // V unused since 1 s; the next full check, at 24.5 h, removes it; wlc then picks B.
  lb.table.advance(24 * HOUR + 30 * MIN - 1);
  assert.is(lb.table.size, 2);
  assert.is(lb.table.advance(24 * HOUR + 30 * MIN), 24 * HOUR + 30 * MIN);
  assert.is(lb.table.size, 1);
  assert.is(lb.table.get(V), undefined);
  assert.is(s.pick({ daddr: V, now: 25 * HOUR }), 'B');
  // Using an entry refreshes it: 192.0.2.1, used at 24 h and again at 47 h, survives the
  // checks at 48.5 h and 49 h; V, made again at 25 h, goes at 49 h, not at 48.5 h.
  s.pick({ daddr: ip('192.0.2.1'), now: 47 * HOUR });
  lb.table.advance(48 * HOUR + 30 * MIN);
  assert.ok(lb.table.get(ip('192.0.2.1')) !== undefined);
  assert.ok(lb.table.get(V) !== undefined);
  lb.table.advance(49 * HOUR);
  assert.is(lb.table.get(V), undefined);
  assert.ok(lb.table.get(ip('192.0.2.1')) !== undefined);
});

/** Addresses landing in bucket b of the 1024-bucket table: (addr * 2654435761) & 1023 = b. */
function addrInBucket(b: number, serial: number): number {
  // 2654435761 & 1023 = 433 is odd, so it has an inverse mod 1024: 433 * 849 = 367617 = 359 *
  // 1024 + 1. Then addr = serial * 1024 + b * 849 mod 1024 hashes to b.
  return ((serial << 10) | ((b * 849) & 1023)) >>> 0;
}

test('lblc: over 16K entries, the timer collects those unused for 6 min, bucket by bucket', () => {
  assert.is((433 * 849) % 1024, 1);
  assert.is(Math.imul(addrInBucket(5, 7), 0x9e3779b1) & 1023, 5);
  // 16 entries in each of the 1024 buckets, all made at t = 1 s: 16384, exactly max_size.
  // The runs at 1..8 min find the table within max_size: they only count (counter 1 -> 9),
  // although every entry is unused for 6 min from 6 min 1 s on.
  const s = new Svc(createLocalityLeastConnection([], { start: 0 })).add('A', 1);
  const lb = s.scheduler as ReturnType<typeof createLocalityLeastConnection>;
  for (let b = 0; b < 1024; b++) for (let k = 0; k < 16; k++) s.pick({ daddr: addrInBucket(b, k + 1), now: 1000 });
  assert.is(lb.table.size, LOCALITY_MAX_SIZE);
  lb.table.advance(8 * MIN);
  assert.is(lb.table.size, LOCALITY_MAX_SIZE);
  assert.is(lb.table.counter, 9);
  // 24 more in bucket 0 at 8 min: 16408. The run at 9 min: goal = (16408 - 16384) * 4 / 3 =
  // 32. Walking from bucket 1 (rover 0): bucket 1 (16 stale, goal 16), bucket 2 (16, goal 0):
  // stop, rover 2. The count does not advance on such a run.
  for (let k = 0; k < 24; k++) s.pick({ daddr: addrInBucket(0, 100 + k), now: 8 * MIN });
  lb.table.advance(9 * MIN);
  assert.is(lb.table.size, LOCALITY_MAX_SIZE + 24 - 32);
  assert.is(lb.table.rover, 2);
  assert.is(lb.table.counter, 9);
  for (const b of [1, 2]) assert.is(lb.table.get(addrInBucket(b, 1)), undefined, `bucket ${b}`);
  for (const b of [0, 3, 1023]) assert.ok(lb.table.get(addrInBucket(b, 1)) !== undefined, `bucket ${b}`);
  // Within max_size again: the run at 10 min counts.
  lb.table.advance(10 * MIN);
  assert.is(lb.table.counter, 10);
  // 20 new entries in bucket 1 at 10 min: 16396, goal (12 * 4 / 3) = 16. The run at 11 min
  // starts after the rover: bucket 3 (16 stale, goal 0): stop, rover 3. The young entries
  // of bucket 1 are not even visited.
  for (let k = 0; k < 20; k++) s.pick({ daddr: addrInBucket(1, 200 + k), now: 10 * MIN });
  assert.is(lb.table.size, LOCALITY_MAX_SIZE + 12);
  lb.table.advance(11 * MIN);
  assert.is(lb.table.size, LOCALITY_MAX_SIZE - 4);
  assert.is(lb.table.rover, 3);
  assert.is(lb.table.get(addrInBucket(3, 1)), undefined);
  assert.ok(lb.table.get(addrInBucket(4, 1)) !== undefined);
  assert.ok(lb.table.get(addrInBucket(1, 200)) !== undefined);
});

test('lblc: a collection run removes at most max_size / 2 = 8192 entries\' worth of buckets', () => {
  // 16 stale entries in each bucket (made at 1 s) and 6200 young ones (at 8 min) in buckets
  // 900..1023: 22584 entries. The run at 9 min: (6200 * 4 / 3) = 8266 is capped to 8192:
  // buckets 1..512 (16 each) reach it exactly: stop, rover 512 (uncapped, 517).
  const s = new Svc(createLocalityLeastConnection([], { start: 0 })).add('A', 1);
  const lb = s.scheduler as ReturnType<typeof createLocalityLeastConnection>;
  for (let b = 0; b < 1024; b++) for (let k = 0; k < 16; k++) s.pick({ daddr: addrInBucket(b, k + 1), now: 1000 });
  for (let k = 0; k < 6200; k++) s.pick({ daddr: addrInBucket(900 + (k % 124), 1000 + k), now: 8 * MIN });
  assert.is(lb.table.size, LOCALITY_MAX_SIZE + 6200);
  lb.table.advance(9 * MIN);
  assert.is(lb.table.rover, 512);
  assert.is(lb.table.size, LOCALITY_MAX_SIZE + 6200 - 8192);
});

test('lblc: runs over an empty table still count towards the full check (expiration 15 min)', () => {
  // Timer from 0, sysctl lblc_expiration 15 min. The first entry is made at 10 min 1 s, after
  // ten runs over an empty table (counter 11), so the full check is at 30 min, as in a kernel
  // whose timer ran all along: the entry (30 min >= 10 min 1 s + 15 min) goes then.
  const s = new Svc(createLocalityLeastConnection([], { start: 0, expiration: 15 * MIN })).add('A', 1);
  const lb = s.scheduler as ReturnType<typeof createLocalityLeastConnection>;
  assert.is(s.pick({ daddr: V, now: 10 * MIN + 1000 }), 'A');
  assert.is(lb.table.counter, 11);
  lb.table.advance(30 * MIN - 1);
  assert.is(lb.table.size, 1);
  lb.table.advance(30 * MIN);
  assert.is(lb.table.size, 0);
});

test('lblc: a cached dest deleted and revived (same record, same server) is the same dest', () => {
  // As the kernel's dest trash: the engine revives a deleted server in its old record, as a
  // new object. The entry still points to it, so V stays on it although B is less loaded.
  const s = new Svc(createLocalityLeastConnection([], { start: 0 })).add('A', 1, { index: 7, daddr: '172.16.0.7' });
  assert.is(s.pick({ daddr: V, now: 1 }), 'A');
  s.add('B', 1, { index: 8 }).del('A').add('A', 1, { index: 7, daddr: '172.16.0.7' }).set('A', { active: 1 });
  assert.is(s.order(), 'AB');
  assert.is(s.pick({ daddr: V, now: 2 }), 'A');
  // A different server in a reused record is not the cached dest: rescheduled by wlc (C, the
  // head of [C(1 active), B(0)], loses to B).
  const t = new Svc(createLocalityLeastConnection([], { start: 0 })).add('A', 1, { index: 7, daddr: '172.16.0.7' });
  assert.is(t.pick({ daddr: V, now: 1 }), 'A');
  t.add('B', 1, { index: 8 }).del('A').add('C', 1, { index: 7, daddr: '172.16.0.9' }).set('C', { active: 1 });
  assert.is(t.pick({ daddr: V, now: 2 }), 'B');
});

test('lblc: without a start time the timer starts with the first connection; no time -> no expiry', () => {
  const s = new Svc(createLocalityLeastConnection()).add('A', 1).add('B', 1);
  const lb = s.scheduler as ReturnType<typeof createLocalityLeastConnection>;
  assert.is(s.pick({ daddr: V, now: 5 * HOUR }), 'B');
  // Full checks at 5 h + 30 min, + 60 min ...: the entry (used at 5 h) goes at the first at
  // or after 29 h: 29 h exactly is a check (48 * 30 min after the start): 29 h < 29 h fails.
  lb.table.advance(29 * HOUR - 1);
  assert.is(lb.table.size, 1);
  lb.table.advance(29 * HOUR);
  assert.is(lb.table.size, 0);
  // Packets without `now` keep the last time seen: nothing expires.
  const t = new Svc(createLocalityLeastConnection()).add('A', 1);
  const lt = t.scheduler as ReturnType<typeof createLocalityLeastConnection>;
  assert.is(t.pick({ daddr: V }), 'A');
  assert.is(t.pick({ daddr: V }), 'A');
  assert.is(lt.table.size, 1);
});

// ---- lblcr -------------------------------------------------------------------------------------

test('lblcr: the worked example: the set grows under load and sheds its busiest after 24 h', () => {
  // [B(1), A(1)]. First connection to V: wlc keeps B: V -> {B}.
  const s = new Svc(createLocalityLeastConnectionReplication([], { start: 0 })).add('A', 1).add('B', 1);
  const lr = s.scheduler as ReturnType<typeof createLocalityLeastConnectionReplication>;
  assert.is(s.pick({ daddr: V, now: 1000 }), 'B');
  // B at 2 active (> 1) and A at 0 (0 * 2 < 1): wlc over the service picks A, which joins.
  s.set('B', { active: 2 });
  assert.is(s.pick({ daddr: V, now: 2000 }), 'A');
  assert.equal(lr.table.get(V)!.set.map((d) => (d as FakeDest).name), ['A', 'B']);
  // A at 2, B at 2: a tie in the set goes to its first member, A (the newest).
  s.set('A', { active: 2 });
  assert.is(s.pick({ daddr: V, now: 2500 }), 'A');
  // A at 1, B at 2: the set's least loaded is A (256 < 512), not overloaded (1 > 1 fails).
  s.set('A', { active: 1 });
  assert.is(s.pick({ daddr: V, now: 3000 }), 'A');
  // The set changed last at 2 s. At 2 s + 24 h it is not yet stale (now > lastmod + 24 h
  // fails); a minute later the connection still goes to A (chosen first) and B, the most
  // loaded, leaves the set.
  assert.is(s.pick({ daddr: V, now: 2000 + 24 * HOUR }), 'A');
  assert.is(lr.table.get(V)!.set.length, 2);
  assert.is(s.pick({ daddr: V, now: 2000 + 24 * HOUR + MIN }), 'A');
  assert.equal(lr.table.get(V)!.set.map((d) => (d as FakeDest).name), ['A']);
  // A single member is never shed.
  assert.is(s.pick({ daddr: V, now: 2000 + 48 * HOUR + 2 * MIN }), 'A');
  assert.is(lr.table.get(V)!.set.length, 1);
});

test('lblcr: members that left, are quiesced or over their threshold are passed over', () => {
  const s = new Svc(createLocalityLeastConnectionReplication([], { start: 0 })).add('A', 1).add('B', 1).add('C', 1);
  // [C, B, A]: wlc keeps C for V.
  assert.is(s.pick({ daddr: V, now: 1 }), 'C');
  // C over its weight, A idle: wlc over [C(512), B(0), A(0)] -> B joins: {B, C}.
  s.set('C', { active: 2 });
  assert.is(s.pick({ daddr: V, now: 2 }), 'B');
  s.set('B', { active: 1 });
  // Set min: B (256) before C (512): B.
  assert.is(s.pick({ daddr: V, now: 3 }), 'B');
  // B over its threshold: skipped in the set; C is the set's choice, but overloaded in lblc's
  // sense (2 > 1, A idle): wlc over the service (B skipped) -> A joins.
  s.set('B', { overloaded: true });
  assert.is(s.pick({ daddr: V, now: 4 }), 'A');
  const lr = s.scheduler as ReturnType<typeof createLocalityLeastConnectionReplication>;
  assert.equal(lr.table.get(V)!.set.map((d) => (d as FakeDest).name), ['A', 'B', 'C']);
  // A quiesced, B back under its threshold: the set [A, B, C] starts at B (A has weight 0),
  // B (256) beats C (512), and B is not overloaded (1 > 1 fails): B.
  s.edit('A', 0).set('B', { overloaded: false });
  assert.is(s.pick({ daddr: V, now: 5 }), 'B');
  // B deleted: the set holds it but it is gone; C remains, and is not overloaded in lblc's
  // sense since no dest is under half its weight (C: 4 < 1 no; A: 0 < 0 no).
  s.del('B');
  assert.is(s.pick({ daddr: V, now: 6 }), 'C');
  s.del('C');
  // Only A (quiesced) left: nothing.
  assert.is(s.pick({ daddr: V, now: 7 }), '-');
});

test('lblcr: the set sheds its most loaded member of positive weight, never a quiesced one', () => {
  // [B(1), A(1)]: V -> {B}; B at 2 active -> A joins: [A, B]. A then quiesced with 5 active.
  const s = new Svc(createLocalityLeastConnectionReplication([], { start: 0 })).add('A', 1).add('B', 1);
  const lr = s.scheduler as ReturnType<typeof createLocalityLeastConnectionReplication>;
  const members = () => lr.table.get(V)!.set.map((d) => (d as FakeDest).name).join('');
  assert.is(s.pick({ daddr: V, now: 1000 }), 'B');
  s.set('B', { active: 2 });
  assert.is(s.pick({ daddr: V, now: 2000 }), 'A');
  assert.is(members(), 'AB');
  s.edit('A', 0).set('A', { active: 5 });
  // A day and a second after the set changed: the least loaded member is B (A has weight 0);
  // the most loaded of positive weight is also B (A's weight 0 keeps it out of
  // ip_vs_dest_set_max), so B leaves: {A}. The connection still goes to B, chosen first
  // (2 > 1 but no dest is under half its weight).
  assert.is(s.pick({ daddr: V, now: 2000 + 24 * HOUR + 1000 }), 'B');
  assert.is(members(), 'A');
  // Next: the set has nothing usable, wlc picks B, which joins again.
  assert.is(s.pick({ daddr: V, now: 2000 + 24 * HOUR + 2000 }), 'B');
  assert.is(members(), 'BA');
});

test('lblcr: shedding: ties go to the first member; a member that left still counts', () => {
  // [B(1), A(1)]: V -> {B}, then {A, B} as in the worked example; both at 1 active.
  const build = () => {
    const s = new Svc(createLocalityLeastConnectionReplication([], { start: 0 })).add('A', 1).add('B', 1);
    s.pick({ daddr: V, now: 1000 });
    s.set('B', { active: 2 });
    s.pick({ daddr: V, now: 2000 });
    s.set('AB', { active: 1 });
    const lr = s.scheduler as ReturnType<typeof createLocalityLeastConnectionReplication>;
    return { s, members: () => lr.table.get(V)!.set.map((d) => (d as FakeDest).name).join('') };
  };
  const later = 2000 + 24 * HOUR + 1000;
  // Equal loads: set_min keeps the first (A), set_max keeps the first too: A leaves.
  const t = build();
  assert.is(t.members(), 'AB');
  assert.is(t.s.pick({ daddr: V, now: later }), 'A');
  assert.is(t.members(), 'B');
  // B deleted with 5 active: set_min skips it (not available), set_max does not: B, the most
  // loaded, leaves; A is used.
  const u = build();
  u.s.set('B', { active: 5 }).del('B');
  assert.is(u.s.pick({ daddr: V, now: later }), 'A');
  assert.is(u.members(), 'A');
});

test('lblcr: entries expire like lblc\'s (24 h full check)', () => {
  const s = new Svc(createLocalityLeastConnectionReplication([], { start: 0 })).add('A', 1);
  const lr = s.scheduler as ReturnType<typeof createLocalityLeastConnectionReplication>;
  assert.is(s.pick({ daddr: V, now: 1000 }), 'A');
  lr.table.advance(24 * HOUR);
  assert.is(lr.table.size, 1);
  lr.table.advance(24 * HOUR + 30 * MIN);
  assert.is(lr.table.size, 0);
});

// ---- flags and the registry --------------------------------------------------------------------

function rejected(fn: () => unknown, code: string, message: RegExp): void {
  try {
    fn();
    assert.unreachable('accepted');
  } catch (err) {
    assert.ok(err instanceof WasmvsError, String(err));
    assert.is((err as WasmvsError).code, code);
    assert.match((err as WasmvsError).message, message);
  }
}

test('flags: sh-* only with sh, mh-* only with mh, flag-N with any; unknown names refused', () => {
  checkSchedFlags('sh', ['sh-fallback', 'sh-port']);
  checkSchedFlags('mh', ['mh-fallback', 'mh-port', 'flag-3']);
  checkSchedFlags('rr', ['flag-1', 'flag-2', 'flag-3']);
  checkSchedFlags('wlc', []);
  rejected(() => checkSchedFlags('rr', ['sh-port']), 'WASMVS_BAD_OPTION', /"sh-port".*only to the sh scheduler/);
  rejected(() => checkSchedFlags('sh', ['mh-port']), 'WASMVS_BAD_OPTION', /"mh-port".*only to the mh scheduler/);
  rejected(() => checkSchedFlags('mh', ['fallback']), 'WASMVS_BAD_OPTION', /invalid scheduler flag "fallback"/);
  rejected(() => createScheduler('wlc', ['mh-fallback']), 'WASMVS_BAD_OPTION', /only to the mh scheduler/);
  rejected(() => createSourceHashing(['mh-port']), 'WASMVS_BAD_OPTION', /only to the mh scheduler/);
  rejected(() => createMaglevHashing(['sh-port']), 'WASMVS_BAD_OPTION', /only to the sh scheduler/);
  // Through the registry, sh with flag-1 falls back (see the sh-fallback test).
  const s = new Svc(createScheduler('sh', ['flag-1'])).add('A', 1).add('B', 1).add('C', 1).edit('A', 0).edit('B', 0);
  assert.is(s.pick(client(2)), 'C');
});

test('registry: every IPVS scheduler by its ipvsadm name; wlc is the default', () => {
  const names = ['dh', 'fo', 'lblc', 'lblcr', 'lc', 'mh', 'nq', 'ovf', 'rr', 'sed', 'sh', 'twos', 'wlc', 'wrr'];
  for (const n of names) assert.ok(schedulerNames().includes(n), n);
  assert.is(DEFAULT_SCHEDULER, 'wlc');
  // Each serves a one-dest service.
  for (const n of names) {
    const s = new Svc(createScheduler(n)).add('A', 1);
    assert.is(s.pick({ now: 1 }), 'A', n);
    s.del('A');
    assert.is(s.pick({ now: 2 }), '-', n);
  }
});

test('registry: lblc and lblcr start their expiry timer at the context time', () => {
  // Created at 5 min: runs at 6 and 7 min by 7 min 15 s, so the count is 3. Without a
  // context the timer starts at the first connection (5 min 30 s): one run, at 6 min 30 s.
  for (const name of ['lblc', 'lblcr']) {
    const withStart = new Svc(createScheduler(name, [], { now: 5 * MIN })).add('A', 1);
    const without = new Svc(createScheduler(name)).add('A', 1);
    assert.is(withStart.pick({ daddr: V, now: 5 * MIN + 30_000 }) + without.pick({ daddr: V, now: 5 * MIN + 30_000 }), 'AA');
    withStart.pick({ daddr: V, now: 7 * MIN + 15_000 });
    without.pick({ daddr: V, now: 7 * MIN + 15_000 });
    const counter = (s: Svc) => (s.scheduler as unknown as { table: { counter: number } }).table.counter;
    assert.is(counter(withStart), 3, name);
    assert.is(counter(without), 3 - 1, name);
  }
});

test('bench: new connections through every scheduler open one connection per SYN', () => {
  // scripts/bench.ts times these runs at 2^18; here at toy size so the path cannot rot.
  const syns = sequentialPool('syn', 300);
  for (const name of ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'lblc', 'lblcr', 'dh', 'sh', 'mh', 'fo', 'ovf', 'twos']) {
    const t = newConnectionsScheduler(syns, 300, 512, 64, name); // throws unless all 300 open
    assert.is(t.forwarded, 300, name);
  }
});

// ---- through the engine ------------------------------------------------------------------------

const VIP = '202.103.106.5';
const synFrom = (sport: number, src = '202.100.1.2') => tcpPacket({ src, dst: VIP, sport, dport: 80, flags: 'S' });
const dstOf = (bytes: Uint8Array) => { const d = decode(bytes); return `${d.dst.split('.')[3]}:${d.dport}`; };

test('engine: a rule without -s is wlc, counting the new (inactive) connections it made', () => {
  // The seed's servers: .2:80 (w1) then .3:8000 (w2): list [.3, .2]. A SYN makes a
  // SYN_RECV connection, inactive (overhead 1). wlc, each pick adding 1 to its dest:
  //  .3 0 .2 0 -> .3 (0*1 > 0*2 fails); .3 1: 1*1 > 0*2 -> .2; .3 1 .2 1: 1*1 > 1*2 no -> .3;
  //  .3 2 .2 1: 2 > 2 no -> .3; .3 3: 3 > 2 -> .2; .3 3 .2 2: 3 > 4 no -> .3; .3 4: 4 > 4 no
  //  -> .3; .3 5: 5 > 4 -> .2.
  const e = new Engine({ connCapacity: 256, slotCount: 4, eventCapacity: 16 });
  e.restore('-A -t 202.103.106.5:80\n-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1\n-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 2\n');
  assert.is(e.listServices()[0].scheduler, 'wlc');
  const picks: string[] = [];
  for (let i = 0; i < 8; i++) picks.push(dstOf(e.processPacket(synFrom(1000 + i), 1000).packet));
  assert.equal(picks, ['3:8000', '2:80', '3:8000', '3:8000', '2:80', '3:8000', '3:8000', '2:80']);
});

test('engine: -s sh -b sh-port,sh-fallback reaches the scheduler', () => {
  // The seed's servers: .2 (w1) then .3 (w2): list [.3, .2], buckets .3 .3 .2 repeated.
  // Client 202.100.1.2 with sh-port: the bucket is ((2 + sport) & 255) * 177 & 255:
  // sport 1000 -> 234 -> 202 (% 3 = 1: .3); 1001 -> 235 -> 123 (0: .3); 1002 -> 236 -> 44
  // (2: .2). Without sh-port every port is bucket 98 (2: .2).
  const rules = (flags: string) => `-A -t 202.103.106.5:80 -s sh${flags}\n-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1\n-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 2\n`;
  const e = new Engine({ connCapacity: 64, slotCount: 4, eventCapacity: 16 });
  e.restore(rules(' -b sh-port,sh-fallback'));
  assert.match(e.save(), / -b sh-port,sh-fallback\n/);
  assert.equal([1000, 1001, 1002].map((p) => dstOf(e.processPacket(synFrom(p), 1000).packet)), ['3:8000', '3:8000', '2:80']);
  // .2 quiesced: sport 1003 -> 237 -> 221 (% 3 = 2: .2, unavailable); sh-fallback probes
  // bucket 2 * 221 & 255 = 186 (% 3 = 0: .3).
  e.editDest({ protocol: 'tcp', vaddr: VIP, vport: 80 }, { daddr: '172.16.0.2', dport: 80, weight: 0 });
  assert.is(dstOf(e.processPacket(synFrom(1003), 1000).packet), '3:8000');
  // Without flags: port ignored (bucket 98, .2); quiesced .2 -> no destination.
  const plain = new Engine({ connCapacity: 64, slotCount: 4, eventCapacity: 16 });
  plain.restore(rules(''));
  assert.equal([1000, 1001, 1002].map((p) => dstOf(plain.processPacket(synFrom(p), 1000).packet)), ['2:80', '2:80', '2:80']);
  plain.editDest({ protocol: 'tcp', vaddr: VIP, vport: 80 }, { daddr: '172.16.0.2', dport: 80, weight: 0 });
  const r = plain.processPacket(synFrom(1003), 1000);
  assert.equal([r.verdict, r.reason], ['drop', 'no-dest']);
});

test('engine: ipvsadm -E changing only the -b flags takes effect, as svc->flags in the kernel', () => {
  // sh reads svc->flags on every connection, so -E -s sh -b sh-port on an sh service takes
  // effect at once. Client 202.100.1.2: without sh-port every port is bucket 98 (.2); with
  // it, port 2024 is (2 + 2024) & 255 = 234 -> bucket 202 (% 3 = 1: .3).
  const e = new Engine({ connCapacity: 64, slotCount: 4, eventCapacity: 16 });
  e.restore('-A -t 202.103.106.5:80 -s sh\n-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1\n-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 2\n');
  assert.is(dstOf(e.processPacket(synFrom(1000), 1000).packet), '2:80');
  e.editService({ protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'sh', schedFlags: ['sh-port'] });
  assert.match(e.save(), / -s sh -b sh-port\n/);
  assert.is(dstOf(e.processPacket(synFrom(2024), 1000).packet), '3:8000');
});

test('engine: a quiesced server keeps its mh share across -E (dest->last_weight)', () => {
  // Under rr, .2 is quiesced (weight 0). ipvsadm -E -s mh: the kernel builds the table from
  // last_weight (1 for both), so .2 keeps its entries, where it is unavailable: those clients
  // get no destination, the rest go to .3. Expected picks from a fake service of the same two
  // servers, both weight 1, with .2 then quiesced (mh keeps the table).
  const e = new Engine({ connCapacity: 256, slotCount: 4, eventCapacity: 16 });
  e.restore('-A -t 202.103.106.5:80 -s rr\n-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1\n-a -t 202.103.106.5:80 -r 172.16.0.3:80 -m -w 1\n');
  e.editDest({ protocol: 'tcp', vaddr: VIP, vport: 80 }, { daddr: '172.16.0.2', dport: 80, weight: 0 });
  e.editService({ protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'mh' });
  const want = new Svc(createMaglevHashing()).add('2', 1, { daddr: '172.16.0.2' }).add('3', 1, { daddr: '172.16.0.3' }).edit('2', 0);
  const got: string[] = [];
  const expected: string[] = [];
  for (let i = 1; i <= 40; i++) {
    const src = `198.51.100.${i}`;
    const r = e.processPacket(synFrom(3000, src), 1000);
    got.push(r.verdict === 'forward' ? dstOf(r.packet).split(':')[0] : r.reason ?? r.verdict);
    const w = want.pick({ saddr: ip(src) });
    expected.push(w === '-' ? 'no-dest' : w);
  }
  assert.ok(expected.includes('no-dest') && expected.includes('3'));
  assert.equal(got, expected);
});

test('engine: -b flags the scheduler does not take are refused, and leave no service behind', () => {
  const e = new Engine({ connCapacity: 64, slotCount: 4, eventCapacity: 16 });
  rejected(() => e.addService({ protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'rr', schedFlags: ['sh-port'] }), 'WASMVS_BAD_OPTION', /only to the sh scheduler/);
  rejected(() => e.addService({ protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'mh', schedFlags: ['nope'] }), 'WASMVS_BAD_OPTION', /invalid scheduler flag "nope"/);
  assert.equal(e.listServices(), []);
  // The same service with valid flags is then accepted, and works.
  e.addService({ protocol: 'tcp', vaddr: VIP, vport: 80, scheduler: 'mh', schedFlags: ['mh-port'] });
  e.addDest({ protocol: 'tcp', vaddr: VIP, vport: 80 }, { daddr: '172.16.0.2', dport: 80, weight: 1 });
  assert.is(e.processPacket(synFrom(1000), 1000).verdict, 'forward');
  assert.is(e.listServices().length, 1);
});

test('engine: every scheduler is selectable with -s and forwards a new connection', () => {
  for (const name of ['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'lblc', 'lblcr', 'dh', 'sh', 'mh', 'fo', 'ovf', 'twos']) {
    const e = new Engine({ connCapacity: 64, slotCount: 4, eventCapacity: 16 });
    e.restore(`-A -t 202.103.106.5:80 -s ${name}\n-a -t 202.103.106.5:80 -r 172.16.0.2:80 -m -w 1\n-a -t 202.103.106.5:80 -r 172.16.0.3:8000 -m -w 2\n`);
    const r = e.processPacket(synFrom(2000), 1000);
    assert.is(r.verdict, 'forward', name);
    assert.ok(['2:80', '3:8000'].includes(dstOf(r.packet)), `${name}: ${dstOf(r.packet)}`);
  }
});

test.run();
