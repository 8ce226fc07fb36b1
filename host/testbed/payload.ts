// Deterministic payload bytes for transfers through the testbed: the server streams them, the
// client (or a test) regenerates them to know the sha256 that must arrive. xorshift32
// (Marsaglia, "Xorshift RNGs", 2003, shifts 13/17/5) from a seed, each state emitted as 4 bytes
// little-endian: byte i of the stream is the same however the stream is chunked.
import { createHash } from 'node:crypto';

export const DEFAULT_SEED = 0x9e3779b9;

export class Payload {
  private state: number;
  private word = 0;
  private left = 0; // bytes of `word` not yet emitted

  constructor(seed = DEFAULT_SEED) {
    // xorshift32 must not start at 0.
    this.state = seed >>> 0 || DEFAULT_SEED;
  }

  /** Fills `buf` with the next buf.length bytes of the stream. */
  fill(buf: Uint8Array): Uint8Array {
    let i = 0;
    const n = buf.length;
    while (i < n && this.left > 0) {
      buf[i++] = this.word & 0xff;
      this.word >>>= 8;
      this.left--;
    }
    let x = this.state;
    while (n - i >= 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      buf[i] = x & 0xff;
      buf[i + 1] = (x >>> 8) & 0xff;
      buf[i + 2] = (x >>> 16) & 0xff;
      buf[i + 3] = x >>> 24;
      i += 4;
    }
    if (i < n) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      this.word = x;
      this.left = 4;
      while (i < n) {
        buf[i++] = this.word & 0xff;
        this.word >>>= 8;
        this.left--;
      }
    }
    this.state = x;
    return buf;
  }
}

/** The sha256 (hex) of the first `length` bytes of the stream from `seed`. */
export function payloadSha256(length: number, seed = DEFAULT_SEED): string {
  const hash = createHash('sha256');
  const payload = new Payload(seed);
  const chunk = new Uint8Array(1 << 16);
  for (let left = length; left > 0; left -= chunk.length) {
    hash.update(payload.fill(left >= chunk.length ? chunk : chunk.subarray(0, left)));
  }
  return hash.digest('hex');
}
