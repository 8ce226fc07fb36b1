// The package version, read once from package.json: from host/ (sources under tsx) or
// build/host/ (compiled), whichever this module runs from.
import { readFileSync } from 'node:fs';

let cached: string | undefined;

export function packageVersion(): string {
  if (cached !== undefined) return cached;
  cached = 'unknown';
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'wasmvs') { cached = pkg.version; break; }
    } catch {
      // not this one
    }
  }
  return cached;
}
