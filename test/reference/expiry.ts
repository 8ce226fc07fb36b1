// A binary min-heap of (time, item): the reference engine's stand-in for the data plane's
// timer wheel (assembly/timer.ts). Like the wheel it is lazy: an item whose expiry moves later
// keeps its entry and is pushed again when the entry comes up; the engine skips stale entries.
export class ExpiryQueue<T> {
  private readonly heap: { at: number; item: T }[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(at: number, item: T): void {
    const h = this.heap;
    h.push({ at, item });
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent].at <= h[i].at) break;
      [h[parent], h[i]] = [h[i], h[parent]];
      i = parent;
    }
  }

  /** Removes and returns every entry with at <= now, earliest first. */
  popUntil(now: number): { at: number; item: T }[] {
    const out: { at: number; item: T }[] = [];
    const h = this.heap;
    while (h.length > 0 && h[0].at <= now) {
      out.push(h[0]);
      const last = h.pop()!;
      if (h.length === 0) break;
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l].at < h[m].at) m = l;
        if (r < h.length && h[r].at < h[m].at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i], h[m]];
        i = m;
      }
    }
    return out;
  }
}
