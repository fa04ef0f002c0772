import { parse } from 'libpg-query';
import { arr, isRecord, num, type AstNode } from './ast.js';
import { stripLeadingComments } from './statement-text.js';

export interface ParsedStatement {
  text: string;
  /** The wrapped parse node, e.g. `{ IndexStmt: {...} }`. */
  node: AstNode;
}

/** Splits SQL strings into single statements with their text (uses the parser's locations). */
export async function splitStatements(sql: string): Promise<ParsedStatement[]> {
  // The parser refuses an empty query, but an empty string runs nothing.
  if (sql.trim() === '') return [];
  const result: unknown = await parse(sql);
  // Locations are byte offsets into the UTF-8 text, not string indexes.
  const bytes = Buffer.from(sql, 'utf8');
  return arr(result, 'stmts').flatMap((raw) => {
    const node = isRecord(raw) ? raw.stmt : undefined;
    if (!isRecord(node)) return [];
    // An absent location is 0 and an absent (0) length means "to the end".
    const start = num(raw, 'stmt_location') ?? 0;
    const length = num(raw, 'stmt_len') ?? 0;
    const end = length > 0 ? start + length : bytes.length;
    return [{ text: stripLeadingComments(bytes.subarray(start, end).toString('utf8')), node }];
  });
}

export type SplitResult = { ok: true; statements: ParsedStatement[] } | { ok: false; error: string };

/** Like splitStatements, but a syntax error becomes a value so a caller can report it and go on. */
export async function trySplit(sql: string): Promise<SplitResult> {
  try {
    return { ok: true, statements: await splitStatements(sql) };
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}
