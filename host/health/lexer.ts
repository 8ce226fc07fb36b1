// keepalived.conf as a tree of statements, with `include` expanded and every statement
// carrying its file and line, so that an error can name both.
//
// The syntax is keepalived's (lib/parser.c, doc/man/man5/keepalived.conf.5):
//   - one statement per line: a keyword and its arguments, words split on blanks;
//   - `{` opens the block of the statement before it (on the same line or the next) and `}`
//     closes it; both are words of their own even when written against another word;
//   - `#` or `!` at the start of a word begins a comment that runs to the end of the line;
//   - " or ' quote, and quoted parts join the unquoted text around them into one word
//     ('abcd" efg h jkl "mnop' is the one word "abcd efg h jkl mnop");
//   - `include PATTERN` splices in each file the pattern matches (glob order), relative to the
//     directory of the including file. A pattern without wildcards must name a readable file;
//     one with wildcards may match nothing (keepalived's `includer`), which is noted.
//
//   virtual_server 198.18.100.10 80 {      -> { keyword: 'virtual_server', args: ['198.18.100.10', '80'],
//       delay_loop 6                             block: [{ keyword: 'delay_loop', args: ['6'] }] }
//   }
// Not supported, refused as unknown keywords by the interpreter: $PARAMETER substitution,
// @conditional lines, csh brace expansion in include patterns.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { WasmvsError } from '../errors.js';

export interface Statement {
  keyword: string;
  args: string[];
  /** Present when the statement opened a block ({ ... }). */
  block?: Statement[];
  file: string;
  line: number;
}

export interface ParsedFile {
  statements: Statement[];
  /** Every file read, the main one first (SIGHUP re-reads them all). */
  files: string[];
  /** Things worth one log line each (an include that matched nothing). */
  notes: string[];
}

interface Token {
  text: string;
  /** `{`, `}` and `include` are syntax only when they were not quoted. */
  quoted: boolean;
  file: string;
  line: number;
}

/** At most this many files open inside one another: a loop of includes stops here. */
const MAX_INCLUDE_DEPTH = 32;

export function configError(file: string, line: number, message: string): WasmvsError {
  return new WasmvsError('WASMVS_KEEPALIVED_CONFIG', `${file}:${line}: ${message}`);
}

/** The words of one line; quotes joined, comments dropped. */
function lineWords(text: string, file: string, line: number): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v') { i++; continue; }
    if (c === '#' || c === '!') break;
    if (c === '{' || c === '}') { out.push({ text: c, quoted: false, file, line }); i++; continue; }
    let word = '';
    let quoted = false;
    while (i < text.length) {
      const d = text[i];
      if (d === '"' || d === "'") {
        const end = text.indexOf(d, i + 1);
        if (end < 0) throw configError(file, line, `unterminated ${d} quote`);
        word += text.slice(i + 1, end);
        quoted = true;
        i = end + 1;
        continue;
      }
      if (d === ' ' || d === '\t' || d === '\r' || d === '\f' || d === '\v' || d === '{' || d === '}') break;
      word += d;
      i++;
    }
    out.push({ text: word, quoted, file, line });
  }
  return out;
}

const WILDCARD = /[*?[]/;

/** One glob path segment as a regular expression (*, ?, [...]; a leading dot is never matched by a wildcard). */
function segmentRegex(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 2);
      if (end < 0) { re += '\\['; continue; }
      let body = segment.slice(i + 1, end);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Files a glob pattern matches, sorted within each directory as glob(3) sorts. */
function expandGlob(pattern: string): string[] {
  const parts = pattern.split(sep);
  let paths = [parts[0] === '' ? sep : parts[0]];
  for (const part of parts.slice(1)) {
    if (part === '') continue;
    const next: string[] = [];
    for (const base of paths) {
      if (!WILDCARD.test(part)) { next.push(join(base, part)); continue; }
      let entries: string[];
      try { entries = readdirSync(base); } catch { continue; }
      const re = segmentRegex(part);
      for (const e of entries.sort()) if (!e.startsWith('.') && re.test(e)) next.push(join(base, e));
    }
    paths = next;
  }
  return paths.filter((p) => { try { return statSync(p).isFile(); } catch { return false; } });
}

class Reader {
  readonly files: string[] = [];
  readonly notes: string[] = [];
  private readonly open: string[] = [];

  /** The tokens of `file`, includes spliced in; one `\n` token ends each line. */
  tokens(file: string, from?: Token): Token[] {
    const path = resolve(file);
    if (this.open.includes(path)) throw configError(from?.file ?? path, from?.line ?? 0, `include loop: ${path} includes itself`);
    if (this.open.length >= MAX_INCLUDE_DEPTH) throw configError(from?.file ?? path, from?.line ?? 0, `includes nested deeper than ${MAX_INCLUDE_DEPTH}`);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (cause) {
      if (from) throw configError(from.file, from.line, `cannot read included file ${path}: ${(cause as Error).message}`);
      throw new WasmvsError('WASMVS_FILE', `cannot read keepalived configuration ${path}: ${(cause as Error).message}`, { cause });
    }
    this.files.push(path);
    this.open.push(path);
    const out: Token[] = [];
    const lines = text.split('\n');
    for (let n = 0; n < lines.length; n++) {
      const words = lineWords(lines[n], path, n + 1);
      if (words.length > 0 && words[0].text === 'include' && !words[0].quoted) {
        if (words.length !== 2) throw configError(path, n + 1, 'include takes exactly one file name or pattern');
        out.push(...this.include(words[1], path));
        continue;
      }
      out.push(...words, { text: '\n', quoted: false, file: path, line: n + 1 });
    }
    this.open.pop();
    return out;
  }

  private include(word: Token, including: string): Token[] {
    // keepalived changes directory to the including file's, so relative names start there.
    const pattern = isAbsolute(word.text) ? word.text : join(dirname(including), word.text);
    if (!WILDCARD.test(pattern)) return this.tokens(pattern, word);
    const matches = expandGlob(pattern);
    if (matches.length === 0) this.notes.push(`${word.file}:${word.line}: include ${word.text} matches no file`);
    return matches.flatMap((m) => this.tokens(m, word));
  }
}

/** Statements from tokens, up to the `}` closing the current block (or the end at depth 0). */
function statements(tokens: Token[], at: { i: number }, opener?: Token): Statement[] {
  const out: Statement[] = [];
  let current: Statement | undefined;
  // A `{` on a line of its own opens the block of the statement on the line before.
  let last: Statement | undefined;
  while (at.i < tokens.length) {
    const t = tokens[at.i++];
    if (t.text === '\n' && !t.quoted) {
      if (current) { out.push(current); last = current; current = undefined; }
      continue;
    }
    if (!t.quoted && t.text === '}') {
      if (current) out.push(current);
      if (!opener) throw configError(t.file, t.line, "'}' closes no block");
      return out;
    }
    if (!t.quoted && t.text === '{') {
      const owner = current ?? last;
      if (!owner || owner.block) throw configError(t.file, t.line, "'{' opens a block for no keyword");
      if (current) { out.push(current); current = undefined; }
      owner.block = statements(tokens, at, t);
      last = undefined;
      continue;
    }
    if (!current) { current = { keyword: t.text, args: [], file: t.file, line: t.line }; last = undefined; } else current.args.push(t.text);
  }
  if (current) out.push(current);
  if (opener) throw configError(opener.file, opener.line, "'{' is never closed");
  return out;
}

/** Reads and parses a keepalived configuration file and everything it includes. */
export function parseKeepalivedFile(file: string): ParsedFile {
  const reader = new Reader();
  const tokens = reader.tokens(file);
  return { statements: statements(tokens, { i: 0 }), files: reader.files, notes: reader.notes };
}
