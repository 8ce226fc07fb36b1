// The differential driver: the same steps through two engines (the WASM one and the plain
// TypeScript reference), compared packet for packet (verdict, reason, output bytes as hex,
// newConnection, reply) and, every `checkEvery` steps, state for state (counters, the
// connection list at `now` sorted, each real server's active and inactive connection counts).
//
// A disagreement is shrunk before it is reported: the steps up to the first disagreeing one
// are replayed through fresh engine pairs while delta debugging (Zeller's ddmin, complements
// first) deletes steps, each successful candidate cut back to the step where it now disagrees;
// bounded by a time budget. The error prints the seed and the minimal steps as hex with times.
import { hex } from './packets.js';
import { mixedTraffic, type EngineLike, type Step, type StepFeedback, type TrafficOptions } from './mixed-traffic.js';

export type EngineFactory = () => EngineLike;

export interface DifferentialOptions {
  seed: number;
  steps: number;
  /** Fresh, configured engines (the same rules); called again for every replay while shrinking. */
  makeA: EngineFactory;
  makeB: EngineFactory;
  /** Names in messages (default 'A' and 'B'). */
  names?: [string, string];
  /** Compare state every this many steps (default 1: after every step). */
  checkEvery?: number;
  /** Time budget of the shrinker, ms (default 10,000). */
  shrinkMs?: number;
  traffic?: Omit<Partial<TrafficOptions>, 'seed' | 'steps'>;
  /**
   * When set, both engines get expire() calls every this many ms across a gap between steps
   * (as a host calling expire() on a timer would), in the run and in every replay, so a
   * shrunk sequence keeps them. Unset: time jumps straight to the next step.
   */
  idleTickMs?: number;
}

export interface RunStats {
  steps: number;
  packets: number;
  /** Packet steps by verdict (of engine A), and 'error' for a thrown call. */
  verdicts: Record<string, number>;
  newConnections: number;
}

interface Mismatch {
  /** Index of the step after which the engines disagreed. */
  index: number;
  detail: string;
}

/** A disagreement between the engines, with its minimal reproduction. */
export class DifferentialError extends Error {
  constructor(
    readonly seed: number,
    /** Index of the disagreeing step in the original run. */
    readonly index: number,
    readonly detail: string,
    /** The shrunk steps; the last one shows the disagreement. */
    readonly minimal: Step[],
    readonly minimalDetail: string,
    report: string,
  ) {
    super(report);
    this.name = 'DifferentialError';
  }
}

type Outcome =
  | { kind: 'packet'; verdict: string; reason?: string; packet: string; newConnection: boolean; reply: boolean }
  | { kind: 'done' }
  | { kind: 'error'; code: string };

function errorCode(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') return (e as { code: string }).code;
  return e instanceof Error ? `${e.name}` : String(e);
}

function run(e: EngineLike, step: Step): { outcome: Outcome; feedback: StepFeedback } {
  try {
    if (step.action === 'packet') {
      const r = e.processPacket(step.bytes, step.at, step.l3Offset ?? 0);
      return {
        outcome: { kind: 'packet', verdict: r.verdict, ...(r.reason ? { reason: r.reason } : {}), packet: hex(r.packet), newConnection: r.newConnection, reply: r.reply },
        feedback: r,
      };
    }
    if (step.action === 'config') step.op(e);
    else e.expire(step.at);
    return { outcome: { kind: 'done' }, feedback: undefined };
  } catch (err) {
    return { outcome: { kind: 'error', code: errorCode(err) }, feedback: undefined };
  }
}

function describeOutcome(o: Outcome): string {
  if (o.kind === 'error') return `threw ${o.code}`;
  if (o.kind === 'done') return 'done';
  return `${o.verdict}${o.reason ? ` (${o.reason})` : ''}${o.newConnection ? ' new' : ''}${o.reply ? ' reply' : ''} ${o.packet}`;
}

function compareOutcomes(a: Outcome, b: Outcome, names: [string, string]): string | undefined {
  if (a.kind !== b.kind) return `${names[0]} ${describeOutcome(a)}\n${names[1]} ${describeOutcome(b)}`;
  if (a.kind === 'error' && b.kind === 'error') return undefined; // both refused: codes may be worded apart
  if (a.kind !== 'packet' || b.kind !== 'packet') return undefined;
  const fields: string[] = [];
  if (a.verdict !== b.verdict) fields.push('verdict');
  if (a.reason !== b.reason) fields.push('reason');
  if (a.newConnection !== b.newConnection) fields.push('newConnection');
  if (a.reply !== b.reply) fields.push('reply');
  if (a.packet !== b.packet) {
    let at = 0;
    while (at < a.packet.length && a.packet[at] === b.packet[at]) at++;
    fields.push(`bytes (first difference at byte ${Math.floor(at / 2)})`);
  }
  if (fields.length === 0) return undefined;
  return `${fields.join(', ')} differ\n  ${names[0]}: ${describeOutcome(a)}\n  ${names[1]}: ${describeOutcome(b)}`;
}

/** Counters, connections and per-dest counts as comparable lines. */
function snapshot(e: EngineLike, now: number): { counters: string[]; conns: string[]; dests: string[] } {
  const c = e.counters() as unknown as Record<string, unknown>;
  const counters: string[] = [];
  for (const k of Object.keys(c).sort()) {
    const v = c[k];
    if (v && typeof v === 'object') {
      for (const [kk, vv] of Object.entries(v as Record<string, unknown>).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))) counters.push(`${k}.${kk} ${String(vv)}`);
    } else counters.push(`${k} ${String(v)}`);
  }
  const conns = e.connections(now).map((x) =>
    `${x.protocol} ${x.caddr}:${x.cport} ${x.vaddr}:${x.vport} -> ${x.daddr}:${x.dport} ${x.state} ${x.expiresIn}${x.template ? ' template' : ''}`).sort();
  const dests: string[] = [];
  for (const s of e.listServices()) {
    for (const d of s.dests) dests.push(`${s.protocol} ${s.vaddr}:${s.vport} ${d.daddr}:${d.dport} weight ${d.weight} active ${d.activeConns} inactive ${d.inactConns} templates ${d.persistConns}`);
    if (s.dests.length === 0) dests.push(`${s.protocol} ${s.vaddr}:${s.vport} (no real servers)`);
  }
  return { counters, conns, dests };
}

function listDiff(what: string, a: string[], b: string[], names: [string, string]): string | undefined {
  const sa = new Set(a);
  const sb = new Set(b);
  const onlyA = a.filter((x) => !sb.has(x));
  const onlyB = b.filter((x) => !sa.has(x));
  if (onlyA.length === 0 && onlyB.length === 0 && a.length === b.length) return undefined;
  const show = (xs: string[]) => xs.slice(0, 8).map((x) => `\n    ${x}`).join('') + (xs.length > 8 ? `\n    ... ${xs.length - 8} more` : '');
  return `${what} differ (${a.length} vs ${b.length})\n  only in ${names[0]}:${show(onlyA) || ' -'}\n  only in ${names[1]}:${show(onlyB) || ' -'}`;
}

function compareState(a: EngineLike, b: EngineLike, now: number, names: [string, string]): string | undefined {
  const sa = snapshot(a, now);
  const sb = snapshot(b, now);
  return listDiff('counters', sa.counters, sb.counters, names)
    ?? listDiff(`connections at ${now}`, sa.conns, sb.conns, names)
    ?? listDiff('real servers', sa.dests, sb.dests, names);
}

/**
 * One step through both engines and, when `check`, their state compared. Returns the first
 * engine's feedback (for the generator) and the disagreement, if any.
 */
function stepBoth(a: EngineLike, b: EngineLike, step: Step, check: boolean, names: [string, string], tick?: Ticker): { feedback: StepFeedback; detail?: string } {
  if (tick) {
    for (const t of tick(step.at)) {
      const d = compareOutcomes(run(a, { at: t, action: 'expire' }).outcome, run(b, { at: t, action: 'expire' }).outcome, names);
      if (d) return { feedback: undefined, detail: `expire tick at ${t}: ${d}` };
    }
  }
  const ra = run(a, step);
  const rb = run(b, step);
  const detail = compareOutcomes(ra.outcome, rb.outcome, names) ?? (check ? compareState(a, b, step.at, names) : undefined);
  return { feedback: ra.feedback, detail };
}

/** The expire() tick times before a step at `at` (none when idleTickMs is unset). */
type Ticker = (at: number) => number[];

function ticker(idleTickMs: number | undefined): Ticker | undefined {
  if (!idleTickMs) return undefined;
  let last: number | undefined;
  return (at) => {
    const out: number[] = [];
    if (last !== undefined) for (let t = last + idleTickMs; t < at; t += idleTickMs) out.push(t);
    last = at;
    return out;
  };
}

/** Replays recorded steps through fresh engines; the first disagreement, checking state after every step. */
export function replay(steps: Step[], makeA: EngineFactory, makeB: EngineFactory, names: [string, string] = ['A', 'B'], idleTickMs?: number): Mismatch | undefined {
  const a = makeA();
  const b = makeB();
  const tick = ticker(idleTickMs);
  for (let i = 0; i < steps.length; i++) {
    const { detail } = stepBoth(a, b, steps[i], true, names, tick);
    if (detail) return { index: i, detail };
  }
  return undefined;
}

export interface ShrinkResult {
  steps: Step[];
  detail: string;
  replays: number;
  ms: number;
  /** False when the time budget ran out before ddmin finished. */
  complete: boolean;
}

/**
 * Delta debugging over a failing step list: `fails` replays a candidate and returns its
 * disagreement or undefined. A failing candidate is cut after the step where it fails, so
 * the result ends with its disagreeing step.
 */
export function shrink(steps: Step[], fails: (s: Step[]) => Mismatch | undefined, budgetMs: number): ShrinkResult {
  const start = Date.now();
  let replays = 0;
  const test = (s: Step[]) => { replays++; return fails(s); };
  const first = test(steps);
  if (!first) throw new Error('shrink: the steps given do not disagree');
  let cur = steps.slice(0, first.index + 1);
  let detail = first.detail;
  let n = 2;
  let complete = false;
  while (Date.now() - start < budgetMs) {
    if (cur.length < 2) { complete = true; break; }
    const chunk = Math.ceil(cur.length / n);
    let reduced = false;
    // Complements first: for a sequence that fails because of a few steps, deleting one
    // chunk at a time keeps the rest of the context.
    for (let i = 0; i < n && Date.now() - start < budgetMs; i++) {
      const cand = cur.slice(0, i * chunk).concat(cur.slice((i + 1) * chunk));
      if (cand.length === 0) continue;
      const m = test(cand);
      if (m) {
        cur = cand.slice(0, m.index + 1);
        detail = m.detail;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= cur.length) { complete = true; break; }
      n = Math.min(cur.length, n * 2);
    }
  }
  return { steps: cur, detail, replays, ms: Date.now() - start, complete };
}

/** One step as a line: time, action, hex (packets) or description. */
export function formatStep(s: Step, i: number): string {
  const head = `  #${i} t=${s.at}`;
  if (s.action === 'packet') return `${head} packet${s.l3Offset ? ` l3Offset=${s.l3Offset}` : ''} ${hex(s.bytes)}${s.note ? `  // ${s.note}` : ''}`;
  if (s.action === 'config') return `${head} config ${s.describe}`;
  return `${head} expire`;
}

/**
 * Runs `steps` steps of mixed traffic from `seed` through both engines. Throws a
 * DifferentialError with the minimal reproduction on the first disagreement.
 */
export function runDifferential(o: DifferentialOptions): RunStats {
  const names = o.names ?? ['A', 'B'];
  const every = o.checkEvery ?? 1;
  const a = o.makeA();
  const b = o.makeB();
  const gen = mixedTraffic({ ...o.traffic, seed: o.seed, steps: o.steps });
  const recorded: Step[] = [];
  const tick = ticker(o.idleTickMs);
  const stats: RunStats = { steps: 0, packets: 0, verdicts: {}, newConnections: 0 };
  let it = gen.next();
  while (!it.done) {
    const step = it.value;
    recorded.push(step);
    const i = recorded.length - 1;
    const { feedback, detail } = stepBoth(a, b, step, (i + 1) % every === 0, names, tick);
    if (detail) throw disagreement(o, recorded, i, detail, names);
    stats.steps++;
    if (step.action === 'packet') {
      stats.packets++;
      const v = feedback ? feedback.verdict : 'error';
      stats.verdicts[v] = (stats.verdicts[v] ?? 0) + 1;
      if (feedback?.newConnection) stats.newConnections++;
    }
    it = gen.next(feedback);
  }
  const last = recorded.length > 0 ? recorded[recorded.length - 1].at : 0;
  const detail = compareState(a, b, last, names);
  if (detail) throw disagreement(o, recorded, recorded.length - 1, detail, names);
  return stats;
}

/** The first line of a disagreement without its numbers: 'connections at N differ', 'verdict, reason differ'. */
export function disagreementKind(detail: string): string {
  return detail.split('\n')[0].replace(/\(\d+ vs \d+\)/, '').replace(/\d+/g, 'N').trim();
}

function disagreement(o: DifferentialOptions, recorded: Step[], index: number, detail: string, names: [string, string]): DifferentialError {
  const upTo = recorded.slice(0, index + 1);
  // Shrink towards the same kind of disagreement (packet bytes, verdict, counters, the
  // connection list...), so that deleting steps does not wander off to another one.
  const kind = disagreementKind(detail);
  const same = (s: Step[]) => {
    const m = replay(s, o.makeA, o.makeB, names, o.idleTickMs);
    return m && disagreementKind(m.detail) === kind ? m : undefined;
  };
  const any = (s: Step[]) => replay(s, o.makeA, o.makeB, names, o.idleTickMs);
  const fails = same(upTo) ? same : any;
  let shrunk: ShrinkResult;
  if (fails(upTo)) {
    shrunk = shrink(upTo, fails, o.shrinkMs ?? 10_000);
  } else {
    // Seen only with the state checked less often, or not reproducible from fresh engines:
    // report the whole run so far.
    shrunk = { steps: upTo, detail, replays: 1, ms: 0, complete: false };
  }
  const report = [
    `engines disagree: seed ${o.seed}, step ${index} of the run (t=${recorded[index].at}), ${names[0]} vs ${names[1]}`,
    detail,
    '',
    `minimal sequence: ${shrunk.steps.length} step(s) (from ${upTo.length}; ${shrunk.replays} replays in ${shrunk.ms} ms${shrunk.complete ? '' : ', shrink budget ran out'}), after the rules MIXED_RULES${o.idleTickMs ? `, expire() every ${o.idleTickMs} ms across gaps` : ''}:`,
    ...shrunk.steps.map(formatStep),
    `on that sequence: ${shrunk.detail}`,
  ].join('\n');
  return new DifferentialError(o.seed, index, detail, shrunk.steps, shrunk.detail, report);
}
