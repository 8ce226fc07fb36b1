// External tools the tests use when present. tshark checks checksums independently of the
// engine; CI installs it, and under CI its absence is a failure, not a skip.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export function findOnPath(tool: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, tool);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

export const TSHARK = findOnPath('tshark');
export const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
