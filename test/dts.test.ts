// The package as a TypeScript user installs it: `npm pack` of this checkout (build/ as
// `npm test`'s pretest left it; --ignore-scripts skips the prepare build), unpacked into a
// consumer project's node_modules beside its dependencies, then a tiny consumer is
// type-checked with the repo's own tsc under `lib: ["es2022"]`, @types/node and
// `skipLibCheck: false`: every shipped .d.ts the public entry reaches must compile without
// the DOM lib. No network: dependencies and @types/node are links into this checkout's
// node_modules. A consumer with a type error must fail, so the check is known to run.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');

const CONSUMER = `import { Engine, WasmvsError, formatConnections, parseRules, type ConnEvent, type Counters, type Verdict } from 'wasmvs';

const engine = new Engine({ connCapacity: 1024, slotCount: 64 });
engine.restore(parseRules('-A -t 198.18.0.10:80 -s rr\\n-a -t 198.18.0.10:80 -r 198.18.1.1:8080 -m\\n'));
engine.addService({ protocol: 'udp', vaddr: '198.18.0.10', vport: 53 });
engine.addDest({ protocol: 'udp', vaddr: '198.18.0.10', vport: 53 }, { daddr: '198.18.1.1' });
engine.on('conn-created', (c: ConnEvent) => console.log(c.caddr, c.cport, '->', c.daddr, c.dport));
engine.on('error', (e: WasmvsError) => console.error(e.code));
const memory: WebAssembly.Memory = engine.memory;
const bytes = new Uint8Array(memory.buffer);
engine.writeSlot(0, bytes.subarray(0, 20));
engine.process(0, 1, performance.now());
const verdict: Verdict | 'none' = engine.verdict(0);
const counters: Counters = engine.counters();
console.log(verdict, counters.packets, formatConnections(engine.connections()), engine.liveAddresses().vaddrs);
`;

/** tsc over `source` in a consumer project whose node_modules holds the unpacked package. */
function typeCheck(project: string, source: string): { status: number | null; output: string } {
  writeFileSync(join(project, 'consumer.ts'), source);
  const r = spawnSync(TSC, ['-p', join(project, 'tsconfig.json')], { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('the packed package type-checks in a consumer with lib es2022, @types/node, skipLibCheck false', () => {
  assert.ok(existsSync(join(ROOT, 'build', 'host', 'index.d.ts')), 'build/host/index.d.ts is missing: run npm run build first');
  const tmp = mkdtempSync(join(tmpdir(), 'wasmvs-dts-'));
  try {
    const packed = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop() as string;
    const project = join(tmp, 'consumer');
    const pkgDir = join(project, 'node_modules', 'wasmvs');
    mkdirSync(pkgDir, { recursive: true });
    execFileSync('tar', ['-xzf', join(tmp, packed), '-C', pkgDir, '--strip-components=1']);
    // What the package ships: compiled host with declarations, both WASM builds, LICENSE.
    const files = execFileSync('tar', ['-tzf', join(tmp, packed)], { encoding: 'utf8' }).split('\n').filter(Boolean);
    assert.ok(files.includes('package/build/host/index.d.ts'), 'index.d.ts shipped');
    assert.ok(files.includes('package/build/wasm/release.wasm'), 'release.wasm shipped');
    assert.ok(files.includes('package/LICENSE'), 'LICENSE shipped');
    assert.equal(files.filter((f) => /\.(wat|map|ts)$/.test(f) && !f.endsWith('.d.ts')), [], 'no .wat, source maps or sources');
    // Its runtime dependencies, as npm would install them beside it.
    const deps = Object.keys(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).dependencies ?? {});
    for (const dep of deps) symlinkSync(join(ROOT, 'node_modules', dep), join(project, 'node_modules', dep), 'dir');
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'es2022', lib: ['es2022'], module: 'nodenext', moduleResolution: 'nodenext', strict: true,
        noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      files: ['consumer.ts'],
    }));
    const good = typeCheck(project, CONSUMER);
    assert.is(good.status, 0, `the consumer does not type-check:\n${good.output}`);
    // The same check refuses a wrong call: it really reads the package's types.
    const bad = typeCheck(project, `${CONSUMER}engine.addService({ protocol: 'sctp', vaddr: '198.18.0.10', vport: 1 });\n`);
    assert.is.not(bad.status, 0, 'a consumer with a type error passed');
    assert.match(bad.output, /consumer\.ts.*'"sctp"'/);
    assert.ok(readdirSync(pkgDir).includes('LICENSE'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test.run();
