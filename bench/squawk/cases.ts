import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

// Reads squawk's rule tests (crates/squawk_linter/src/rules/*.rs) from a
// checkout kept outside this repository: each `lint_errors`/`lint_ok` call
// (and squawk's `fix` helpers, which require an error first) becomes one case
// with the SQL it lints, the rule it checks, whether squawk expects that rule
// to fire, and the settings the test passes. Nothing of squawk is copied into
// the repository; the cases live only in memory while the comparison runs.

export interface SquawkCase {
  file: string;
  test: string;
  /** squawk's rule id, e.g. 'require-concurrent-index-creation'. */
  rule: string;
  sql: string;
  expect: 'error' | 'ok';
  pgVersion: number;
  assumeInTransaction: boolean;
}

type CallKind = 'error' | 'ok';

interface Helper {
  kind: CallKind;
  /** The rule the helper hard-codes, if any (else the call names it). */
  rule: string | undefined;
  /** Settings the helper hard-codes (e.g. a pg_version). */
  settings: { pgVersion?: number; assumeInTransaction?: boolean };
}

const BASE_HELPERS: Readonly<Record<string, CallKind>> = {
  lint_errors: 'error',
  lint_errors_with: 'error',
  lint_ok: 'ok',
  lint_ok_with: 'ok',
  fix_sql: 'error',
  fix_sql_with: 'error',
};

/** `RequireConcurrentIndexCreation` → 'require-concurrent-index-creation', from lib.rs's own name table. */
async function ruleNames(squawk: string): Promise<Map<string, string>> {
  const lib = await readFile(join(squawk, 'crates/squawk_linter/src/lib.rs'), 'utf8');
  const names = new Map<string, string>();
  for (const m of lib.matchAll(/"([a-z-]+)"\s*=>\s*\{?\s*Ok\(Rule::(\w+)\)/g)) {
    if (!names.has(m[2]!)) names.set(m[2]!, m[1]!);
  }
  return names;
}

/** Skips a Rust string or raw string starting at `i`; returns the index after it and its value. */
function readString(src: string, i: number): { end: number; value: string } | null {
  const raw = /^r(#*)"/.exec(src.slice(i, i + 10));
  if (raw) {
    const hashes = raw[1]!;
    const start = i + raw[0].length;
    const close = src.indexOf(`"${hashes}`, start);
    if (close === -1) return null;
    return { end: close + 1 + hashes.length, value: src.slice(start, close) };
  }
  if (src[i] !== '"') return null;
  let value = '';
  let j = i + 1;
  while (j < src.length && src[j] !== '"') {
    if (src[j] === '\\') {
      const next = src[j + 1];
      if (next === 'n') value += '\n';
      else if (next === 't') value += '\t';
      else if (next === 'r') value += '\r';
      else if (next === '\n') {
        // A backslash-newline continues the literal without the line break or leading blanks.
        j += 2;
        while (src[j] === ' ' || src[j] === '\t' || src[j] === '\n') j++;
        continue;
      } else value += next ?? '';
      j += 2;
      continue;
    }
    value += src[j];
    j++;
  }
  return { end: j + 1, value };
}

/** The text between the bracket at `open` and its match, strings and comments skipped. */
function block(src: string, open: number, close = '}'): string {
  const opener = src[open];
  let depth = 0;
  for (let i = open; i < src.length; i++) {
    const c = src[i]!;
    if (c === '/' && src[i + 1] === '/') {
      i = src.indexOf('\n', i);
      if (i === -1) break;
      continue;
    }
    if (c === '"' || (c === 'r' && /^r#*"/.test(src.slice(i, i + 10)) && !/\w/.test(src[i - 1] ?? ''))) {
      const s = readString(src, i);
      if (s) {
        i = s.end - 1;
        continue;
      }
    }
    if (c === opener) depth++;
    if (c === close) {
      depth--;
      if (depth === 0) return src.slice(open + 1, i);
    }
  }
  return src.slice(open + 1);
}

function functions(src: string): Array<{ name: string; test: boolean; body: string }> {
  const out: Array<{ name: string; test: boolean; body: string }> = [];
  for (const m of src.matchAll(/(#\[test\]\s*)?(?:#\[[^\]]*\]\s*)*fn\s+(\w+)\s*\([^)]*\)[^{;]*\{/g)) {
    out.push({ name: m[2]!, test: m[1] !== undefined, body: block(src, m.index! + m[0].length - 1) });
  }
  return out;
}

function settingsIn(text: string): { pgVersion?: number; assumeInTransaction?: boolean } {
  const version = /pg_version:\s*"(\d+)(?:\.\d+)*"/.exec(text)?.[1];
  return {
    ...(version ? { pgVersion: Number(version) } : {}),
    ...(/assume_in_transaction:\s*true/.test(text) ? { assumeInTransaction: true } : {}),
  };
}

/** Every squawk rule test as a case, in file order. */
export async function squawkCases(squawk: string): Promise<SquawkCase[]> {
  const names = await ruleNames(squawk);
  const dir = join(squawk, 'crates/squawk_linter/src/rules');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.rs') && f !== 'mod.rs').sort();
  const cases: SquawkCase[] = [];
  for (const file of files) {
    const src = await readFile(join(dir, file), 'utf8');
    const testStart = src.indexOf('#[cfg(test)]');
    if (testStart === -1) continue;
    const tests = src.slice(testStart);
    const fns = functions(tests);
    const helpers = new Map<string, Helper>(Object.entries(BASE_HELPERS).map(([n, kind]) => [n, { kind, rule: undefined, settings: {} }]));
    // The module's own wrappers (`fn lint_ok(sql) { crate::test_utils::lint_ok(sql, Rule::X) }`).
    for (const f of fns.filter((f) => !f.test)) {
      const call = /(?:test_utils::)?(lint_errors_with|lint_errors|lint_ok_with|lint_ok|fix_sql_with|fix_sql)\s*\(/.exec(f.body);
      if (!call || (helpers.has(f.name) && f.name === call[1] && !/test_utils::/.test(f.body))) continue;
      const rule = /Rule::(\w+)/.exec(f.body)?.[1];
      helpers.set(f.name, { kind: BASE_HELPERS[call[1]!]!, rule: rule ? names.get(rule) : undefined, settings: settingsIn(f.body) });
    }
    const helperNames = [...helpers.keys()].sort((a, b) => b.length - a.length).join('|');
    const callPattern = new RegExp(`(?<![\\w:])(${helperNames})\\s*\\(`, 'g');
    for (const f of fns.filter((f) => f.test)) {
      const testSettings = settingsIn(f.body);
      const sqlVars = new Map<string, string>();
      for (const m of f.body.matchAll(/let\s+(\w+)\s*=\s*/g)) {
        const s = readString(f.body, m.index! + m[0].length);
        if (s) sqlVars.set(m[1]!, s.value);
      }
      for (const call of f.body.matchAll(callPattern)) {
        const helper = helpers.get(call[1]!)!;
        const settings = { ...helper.settings, ...testSettings };
        const argStart = call.index! + call[0].length;
        const rest = f.body.slice(argStart).trimStart();
        const offset = f.body.length - f.body.slice(argStart).length + (f.body.slice(argStart).length - rest.length);
        let sql: string | undefined;
        const literal = readString(f.body, offset);
        if (literal) sql = literal.value;
        else {
          const variable = /^&?(\w+)/.exec(rest)?.[1];
          sql = variable ? sqlVars.get(variable) : undefined;
        }
        if (sql === undefined) continue;
        const args = block(f.body, argStart - 1, ')');
        const named = /Rule::(\w+)/.exec(args)?.[1];
        const rule = (named ? names.get(named) : undefined) ?? helper.rule;
        if (!rule) continue;
        cases.push({
          file,
          test: f.name,
          rule,
          sql,
          expect: helper.kind,
          pgVersion: settings.pgVersion ?? 15,
          assumeInTransaction: settings.assumeInTransaction ?? false,
        });
      }
    }
  }
  return cases;
}
