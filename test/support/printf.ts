// A small C printf for test fixtures: expected ipvsadm output is written as ipvsadm.c's own
// format strings and arguments, independently of host/ipvsadm/format.ts. Supports %%, and
// %[-][0][width](s|d|u|lu|llu).

export function printf(format: string, ...args: Array<string | number>): string {
  let i = 0;
  return format.replace(/%(-?)(0?)(\d*)(s|d|u|lu|llu|%)/g, (_all, minus: string, zero: string, width: string, conv: string) => {
    if (conv === '%') return '%';
    const v = args[i++];
    if (v === undefined) throw new Error(`printf: too few arguments for "${format}"`);
    const text = String(v);
    const w = width === '' ? 0 : Number(width);
    if (minus) return text.padEnd(w);
    return text.padStart(w, zero && conv !== 's' ? '0' : ' ');
  });
}
