// The error catalog (host/errors.ts) and its documentation stay in sync, as fastify's
// lib/errors.js and its docs: README's "## Errors" table lists exactly the catalog's codes.
// A code added to the catalog without a README row (or a row left behind after a code goes)
// fails here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, WasmvsError, type ErrorCode } from '../host/errors.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The codes in the first column of README's "## Errors" table, in order. */
function readmeCodes(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const start = readme.search(/^## Errors[ \t]*$/m);
  assert.ok(start >= 0, 'README.md has no "## Errors" section');
  const rest = readme.slice(start + 1);
  const next = rest.search(/^## /m);
  const section = next < 0 ? rest : rest.slice(0, next);
  const codes: string[] = [];
  for (const line of section.split('\n')) {
    const m = /^\|\s*`(WASMVS_[A-Z0-9_]+)`\s*\|/.exec(line);
    if (m) codes.push(m[1]);
  }
  return codes;
}

test('README "## Errors" lists exactly the codes of ERROR_CODES, each once', () => {
  const documented = readmeCodes();
  assert.equal([...new Set(documented)].sort(), documented.slice().sort(), 'a code is listed twice');
  assert.equal(documented.slice().sort(), Object.keys(ERROR_CODES).sort());
});

test('every catalog entry has a description, and every code is thrown somewhere in host/', () => {
  const source = readdirSync(join(ROOT, 'host'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('errors.ts'))
    .map((f) => readFileSync(join(ROOT, 'host', f), 'utf8'))
    .join('\n');
  const unused: string[] = [];
  for (const [code, meaning] of Object.entries(ERROR_CODES)) {
    assert.ok(meaning.length > 10, `${code} needs a description`);
    if (!source.includes(`'${code}'`)) unused.push(code);
  }
  assert.equal(unused, [], 'documented codes nothing throws');
});

test('WasmvsError: name, code, message, cause', () => {
  const cause = new Error('ENOENT');
  const e = new WasmvsError('WASMVS_FILE', 'cannot read rules.txt', { cause });
  assert.instance(e, Error);
  assert.instance(e, WasmvsError);
  assert.is(e.name, 'WasmvsError');
  assert.is(e.code, 'WASMVS_FILE');
  assert.is(e.message, 'cannot read rules.txt');
  assert.is(e.line, undefined);
  assert.is(e.cause, cause);
  assert.match(String(e), /^WasmvsError: cannot read rules\.txt$/);
  assert.match(e.stack ?? '', /WasmvsError: cannot read rules\.txt/);
});

test('WasmvsError with a line: message prefixed "line N: ", line kept', () => {
  const e = new WasmvsError('WASMVS_RULES_SYNTAX', 'unknown option "-z"', { line: 7 });
  assert.is(e.line, 7);
  assert.is(e.message, 'line 7: unknown option "-z"');
  assert.is(e.code, 'WASMVS_RULES_SYNTAX');
  // Line 0 is still a line (the prefix must not depend on truthiness).
  const zero = new WasmvsError('WASMVS_RULES_SYNTAX', 'x', { line: 0 });
  assert.is(zero.line, 0);
  assert.is(zero.message, 'line 0: x');
});

test('codes are stable strings a caller can switch on', () => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    assert.match(code, /^WASMVS_[A-Z][A-Z0-9_]*$/);
    assert.is(new WasmvsError(code, 'm').code, code);
  }
});

test.run();
