// A token bucket for generated replies, as the kernel's global ICMP limit
// (net/ipv4/icmp.c icmp_global_allow, sysctls net.ipv4.icmp_msgs_per_sec and icmp_msgs_burst).
//
// The kernel keeps `credit` whole tokens and a `stamp`; after at least HZ/50 it adds
// msgs_per_sec * delta / HZ tokens (delta capped at one second), capped at msgs_burst, and it
// randomises the cost of each message (0 to 2 credits) so the limit cannot be probed exactly.
// Here time is an argument and the bucket is exact and deterministic: credit accrues
// continuously in thousandths of a token (rate tokens/s = rate milli-tokens per ms), so no
// fraction of a refill is lost to rounding and a replay gives the same answers every time.
//
// Worked example, rate 1000/s, burst 50: a full bucket answers 50 packets at t = 0 and refuses
// the 51st; at t = 5 ms 5 tokens have come back; after any idle time the bucket holds 50 again,
// never more, so the largest burst is always 50.
import { WasmvsError } from '../errors.js';

const MILLI = 1000;
/** The sysctls' bounds (proc_dointvec_minmax from 0 to INT_MAX). */
const MAX_SETTING = 0x7fffffff;

export interface TokenBucketOptions {
  /** Tokens added per second (net.ipv4.icmp_msgs_per_sec). */
  ratePerSecond: number;
  /** Capacity, which is also the initial fill (net.ipv4.icmp_msgs_burst). */
  burst: number;
}

/** Throws WASMVS_BAD_OPTION unless `value` is an integer from 0 to INT_MAX, as the sysctl. */
export function checkRateSetting(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_SETTING) {
    throw new WasmvsError('WASMVS_BAD_OPTION', `${name} ${String(value)} is not an integer from 0 to ${MAX_SETTING}`);
  }
  return value;
}

export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  /** Credit in thousandths of a token; one answer costs MILLI. */
  private credit: number;
  /** The `now` of the last refill, or NaN before the first take. */
  private stamp = Number.NaN;

  constructor(options: TokenBucketOptions) {
    this.ratePerSecond = checkRateSetting('ratePerSecond', options.ratePerSecond);
    this.burst = checkRateSetting('burst', options.burst);
    this.credit = this.burst * MILLI;
  }

  /**
   * Takes one token at `now` (ms, monotonic) if there is one. A clock that steps backwards adds
   * nothing and keeps the later stamp, so it can never mint tokens.
   */
  take(now: number): boolean {
    if (Number.isNaN(this.stamp)) {
      this.stamp = now;
    } else if (now > this.stamp) {
      const cap = this.burst * MILLI;
      this.credit = Math.min(cap, this.credit + (now - this.stamp) * this.ratePerSecond);
      this.stamp = now;
    }
    if (this.credit < MILLI) return false;
    this.credit -= MILLI;
    return true;
  }

  /** Whole tokens available at the last take (for tests and logs). */
  get tokens(): number {
    return Math.floor(this.credit / MILLI);
  }
}
