import { arr, nodesOf, rec, str, type AstNode } from './ast.js';
import { trySplit, type ParsedStatement } from './parse.js';

// SQL inside a DO block runs like any other statement of the migration, and
// so does an EXECUTE of a string literal; the parser hands both back as one
// opaque string. This finds the SQL statements in a PL/pgSQL body without a
// PL/pgSQL parser: the body is cut at top-level semicolons, and each piece is
// tried from every SQL keyword at parenthesis depth 0 (after IF ... THEN,
// BEGIN, LOOP ...) until the rest parses. EXECUTE of anything but literals
// is dynamic: the rehearsal's observed effects see what it does.

export interface EmbeddedStatement extends ParsedStatement {
  via: 'do' | 'execute';
}

const SQL_START = new Set([
  'ALTER', 'CREATE', 'DROP', 'TRUNCATE', 'REINDEX', 'VACUUM', 'CLUSTER', 'LOCK', 'REFRESH', 'COMMENT', 'GRANT', 'REVOKE',
  'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'SET', 'RESET', 'ANALYZE', 'EXECUTE', 'COMMIT', 'ROLLBACK',
]);
const MAX_DEPTH = 3;

interface Token {
  start: number;
  end: number;
  /** Upper-cased word, or '' for anything else. */
  word: string;
  depth: number;
}

/** Skips a quoted run (string, identifier, dollar quote, comment) at `i`; returns where it ends, or i if none starts there. */
function skipQuoted(text: string, i: number): number {
  const c = text[i];
  if (c === "'" || c === '"') {
    let j = i + 1;
    for (; j < text.length; j++) {
      if (text[j] === c) {
        if (text[j + 1] === c) {
          j++;
          continue;
        }
        return j + 1;
      }
      // E'...' strings escape with backslashes.
      if (c === "'" && text[j] === '\\' && /[eE]/.test(text[i - 1] ?? '')) j++;
    }
    return text.length;
  }
  if (c === '-' && text[i + 1] === '-') {
    const nl = text.indexOf('\n', i);
    return nl === -1 ? text.length : nl + 1;
  }
  if (c === '/' && text[i + 1] === '*') {
    const close = text.indexOf('*/', i + 2);
    return close === -1 ? text.length : close + 2;
  }
  if (c === '$') {
    const tag = /^\$[A-Za-z_]*\$/.exec(text.slice(i))?.[0];
    if (tag) {
      const close = text.indexOf(tag, i + tag.length);
      return close === -1 ? text.length : close + tag.length;
    }
  }
  return i;
}

/** Top-level `;`-separated pieces of a PL/pgSQL body, with their word tokens. */
function pieces(body: string): Array<{ text: string; tokens: Token[] }> {
  const out: Array<{ text: string; tokens: Token[] }> = [];
  let start = 0;
  let depth = 0;
  let tokens: Token[] = [];
  for (let i = 0; i < body.length; ) {
    const skipped = skipQuoted(body, i);
    if (skipped > i) {
      tokens.push({ start: i, end: skipped, word: '', depth });
      i = skipped;
      continue;
    }
    const c = body[i]!;
    if (c === '(') depth++;
    else if (c === ')') depth = Math.max(0, depth - 1);
    else if (c === ';' && depth === 0) {
      out.push({ text: body.slice(start, i), tokens: tokens.map((t) => ({ ...t, start: t.start - start, end: t.end - start })) });
      start = i + 1;
      tokens = [];
      i++;
      continue;
    }
    const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(body.slice(i, i + 64))?.[0];
    if (word && !/[A-Za-z0-9_$]/.test(body[i - 1] ?? '')) {
      tokens.push({ start: i, end: i + word.length, word: word.toUpperCase(), depth });
      i += word.length;
      continue;
    }
    i++;
  }
  out.push({ text: body.slice(start), tokens: tokens.map((t) => ({ ...t, start: t.start - start, end: t.end - start })) });
  return out;
}

/** `'a' || 'b'` (only literals) → 'ab'; anything computed → undefined. */
function literalConcatenation(text: string): string | undefined {
  let rest = text.trim();
  let value = '';
  for (;;) {
    const quoted = /^[eE]?'((?:[^']|'')*)'/.exec(rest);
    const dollar = quoted ? null : /^(\$[A-Za-z_]*\$)([\s\S]*?)\1/.exec(rest);
    if (quoted) value += quoted[1]!.replace(/''/g, "'");
    else if (dollar) value += dollar[2];
    else return undefined;
    rest = rest.slice((quoted ?? dollar)![0].length).trim();
    if (rest === '' || /^(INTO|USING)\b/i.test(rest)) return value;
    if (!rest.startsWith('||')) return undefined;
    rest = rest.slice(2).trim();
  }
}

async function fromPiece(piece: { text: string; tokens: Token[] }, depth: number): Promise<EmbeddedStatement[]> {
  for (const token of piece.tokens) {
    if (token.depth !== 0 || !SQL_START.has(token.word)) continue;
    const rest = piece.text.slice(token.start);
    if (token.word === 'EXECUTE') {
      const literal = literalConcatenation(piece.text.slice(token.end));
      if (literal === undefined) return [];
      const split = await trySplit(literal);
      if (!split.ok) return [];
      const found: EmbeddedStatement[] = [];
      for (const s of split.statements) {
        found.push({ ...s, via: 'execute' });
        found.push(...(await embeddedIn(s.node, depth + 1)));
      }
      return found;
    }
    const split = await trySplit(rest);
    if (split.ok && split.statements.length === 1) {
      const s = split.statements[0]!;
      return [{ ...s, via: 'do' }, ...(await embeddedIn(s.node, depth + 1))];
    }
  }
  return [];
}

/** The statements a DO block would run that its text shows (none for other statements). */
export async function embeddedIn(node: AstNode, depth = 0): Promise<EmbeddedStatement[]> {
  const stmt = rec(node, 'DoStmt');
  if (!stmt || depth >= MAX_DEPTH) return [];
  const args = nodesOf(arr(stmt, 'args'), 'DefElem');
  const language = str(rec(rec(args.find((d) => str(d, 'defname') === 'language'), 'arg'), 'String'), 'sval') ?? 'plpgsql';
  const body = str(rec(rec(args.find((d) => str(d, 'defname') === 'as'), 'arg'), 'String'), 'sval');
  if (language.toLowerCase() !== 'plpgsql' || body === undefined) return [];
  const found: EmbeddedStatement[] = [];
  for (const piece of pieces(body)) found.push(...(await fromPiece(piece, depth)));
  return found;
}
