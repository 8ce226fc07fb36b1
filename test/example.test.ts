// README's replay example runs verbatim on a fresh clone: the command from its code block,
// over examples/, prints exactly the output shown there.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'build', 'host', 'cli', 'main.js');

test('README: "npx wasmvs replay ... examples/..." prints what README shows', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const block = /```\n\$ npx wasmvs (replay [^\n]*examples\/[^\n]*)\n([\s\S]*?)```\n/.exec(readme);
  assert.ok(block, 'README has a replay example over examples/');
  const [, command, shown] = block;
  // Run where the README's relative paths resolve (examples/ linked in) and out.pcap may land.
  const dir = mkdtempSync(join(tmpdir(), 'wasmvs-example-'));
  try {
    symlinkSync(join(ROOT, 'examples'), join(dir, 'examples'));
    const r = spawnSync(process.execPath, [CLI, ...command.split(/\s+/)], { cwd: dir, encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, shown);
    assert.ok(readFileSync(join(dir, 'out.pcap')).length > 24, 'out.pcap written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
