// The key columns an index-building statement sorts by, from its parse tree:
// what the timed sample sorts the table's rows by. Expression keys count as
// the columns they read (their text never runs on the target: only column
// names checked against the catalog go into a sample query).
import { arr, flag, names, rec, relationName, str, unwrap, walk, type AstNode } from '../sql-analysis/ast.js';
import { splitStatements } from '../sql-analysis/index.js';

export interface IndexKeys {
  /** Column names as written (lower-cased unless quoted), in key order, without duplicates. */
  columns: string[];
  /** The access method ('btree' unless USING says otherwise). */
  method: string;
  /** CREATE INDEX: the index's name ('schema.name', in its table's schema). */
  name: string | null;
  /** CONCURRENTLY: a second pass validates the index against the heap. */
  concurrent: boolean;
}

/**
 * The parse nodes of a migration's statements, in the order and number
 * analyzeStatements reports them (null for a string the parser refused).
 */
export async function parseNodes(statements: string[]): Promise<Array<AstNode | null>> {
  const out: Array<AstNode | null> = [];
  for (const sql of statements) {
    try {
      out.push(...(await splitStatements(sql)).map((p) => p.node));
    } catch {
      out.push(null);
    }
  }
  return out;
}

function columnsOf(node: unknown): string[] {
  const out: string[] = [];
  walk(node, (kind, body) => {
    if (kind !== 'ColumnRef') return;
    const last = names(arr(body, 'fields')).at(-1);
    if (last !== undefined) out.push(last);
  });
  return out;
}

/** The keys of a CREATE INDEX or of an ALTER TABLE ... ADD PRIMARY KEY / UNIQUE / EXCLUDE (columns), else null. */
export function indexKeysOf(node: AstNode | null): IndexKeys | null {
  const [kind, body] = unwrap(node) ?? ['', {}];
  if (kind === 'IndexStmt') {
    const columns: string[] = [];
    for (const item of arr(body, 'indexParams')) {
      const elem = rec(item, 'IndexElem');
      const name = str(elem, 'name');
      columns.push(...(name !== undefined ? [name] : columnsOf(rec(elem, 'expr'))));
    }
    const table = relationName(rec(body, 'relation'));
    const idxname = str(body, 'idxname');
    return {
      columns: [...new Set(columns)],
      method: str(body, 'accessMethod') ?? 'btree',
      name: table && idxname ? `${table.slice(0, table.lastIndexOf('.'))}.${idxname.toLowerCase()}` : null,
      concurrent: flag(body, 'concurrent'),
    };
  }
  if (kind === 'AlterTableStmt') {
    for (const cmd of arr(body, 'cmds')) {
      const constraint = rec(rec(rec(cmd, 'AlterTableCmd'), 'def'), 'Constraint');
      const type = str(constraint, 'contype');
      if (type !== 'CONSTR_PRIMARY' && type !== 'CONSTR_UNIQUE' && type !== 'CONSTR_EXCLUSION') continue;
      // ADD ... USING INDEX adopts a built index: no keys to sort.
      if (str(constraint, 'indexname') !== undefined) return null;
      const keys = type === 'CONSTR_EXCLUSION' ? columnsOf(arr(constraint, 'exclusions')) : names(arr(constraint, 'keys'));
      return { columns: [...new Set(keys)], method: type === 'CONSTR_EXCLUSION' ? str(constraint, 'access_method') ?? 'gist' : 'btree', name: null, concurrent: false };
    }
  }
  return null;
}

/** The table a CREATE TEMP TABLE (or CREATE TEMP TABLE AS) makes, else null: a session's table, never the target's. */
export function tempTableOf(node: AstNode | null): string | null {
  const [kind, body] = unwrap(node) ?? ['', {}];
  const rangeVar = kind === 'CreateStmt' ? rec(body, 'relation') : kind === 'CreateTableAsStmt' ? rec(rec(body, 'into'), 'rel') : undefined;
  return rangeVar && str(rangeVar, 'relpersistence') === 't' ? relationName(rangeVar) ?? null : null;
}
