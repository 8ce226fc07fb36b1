// The small argv parser the testbed programs share: `--flag value`, `--switch`, positionals.
// A bad command line exits 2 with one line on stderr, as a command-line tool should.

export interface ParsedArgs {
  positional: string[];
  options: Map<string, string>;
  switches: Set<string>;
}

export function parseArgs(argv: readonly string[], valued: readonly string[], switches: readonly string[]): ParsedArgs {
  const out: ParsedArgs = { positional: [], options: new Map(), switches: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      out.positional.push(a);
    } else if (valued.includes(a)) {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      out.options.set(a, v);
    } else if (switches.includes(a)) {
      out.switches.add(a);
    } else {
      usage(`unknown option ${a}`);
    }
  }
  return out;
}

export function intArg(value: string | undefined, name: string, min: number, max: number, fallback?: number): number {
  if (value === undefined) {
    if (fallback === undefined) usage(`${name} is required`);
    return fallback;
  }
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) usage(`${name} must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}`);
  return n;
}

export function usage(message: string): never {
  process.stderr.write(`${process.argv[1] ?? 'testbed'}: ${message}\n`);
  process.exit(2);
}
