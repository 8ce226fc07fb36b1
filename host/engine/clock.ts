// Engine time. The engine reads no clock: every call that moves time takes `now`, in
// milliseconds on any monotonic origin, so a replay is deterministic. The data plane keeps
// wrapping u32 milliseconds and compares them by signed difference, which is sound for gaps
// under 2^31 ms; a clock that jumps further (an idle engine, a capture merged across weeks) is
// walked forward in steps of CLOCK_STEP_MS, expiring what fell due on the way.
import { WasmvsError } from '../errors.js';

export const CLOCK_STEP_MS = 2 ** 30;

export class Clock {
  /** The last time given, wrapped to u32 (what the data plane sees). */
  wrapped = 0;
  /** The latest time given (not wrapped), or undefined before the first. */
  private latest: number | undefined;

  /**
   * Takes `now` as the current time and returns it wrapped. Before that, when the clock jumped
   * by CLOCK_STEP_MS or more, calls `step` with each intermediate time, wrapped, in order.
   */
  advance(now: number, step: (wrapped: number) => void): number {
    if (typeof now !== 'number' || !Number.isFinite(now)) throw new WasmvsError('WASMVS_BAD_OPTION', `now must be a finite number of milliseconds, got ${String(now)}`);
    const full = Math.floor(now);
    if (this.latest !== undefined) {
      for (let at = this.latest + CLOCK_STEP_MS; at < full; at += CLOCK_STEP_MS) step(at >>> 0);
    }
    if (this.latest === undefined || full > this.latest) this.latest = full;
    this.wrapped = full >>> 0;
    return this.wrapped;
  }

  /** The time schedulers see: the latest time given, unwrapped (before any, the wrapped 0). */
  get now(): number {
    return this.latest ?? this.wrapped;
  }
}
