import { arr, nodesOf, rec, relationName, str, unwrap } from '../preflight/sql-analysis/ast.js';
import { trySplit } from '../preflight/sql-analysis/parse.js';
import { droppedNames } from '../preflight/sql-analysis/statement-fields.js';

/** Data a down migration destroys: a table, a column, or a table's rows (TRUNCATE, DELETE). */
export interface Destruction {
  kind: 'table' | 'column' | 'rows';
  migration: string;
  /** 'schema.table' */
  table: string;
  column: string | null;
  statement: string;
}

const quoteStatement = (s: string) => (s.length > 300 ? `${s.slice(0, 297)}...` : s);

/**
 * What the down SQL (captured in the rehearsal) drops, read with the real
 * PostgreSQL parser: DROP TABLE, ALTER TABLE ... DROP COLUMN, TRUNCATE and an
 * unfiltered DELETE. Statements the parser cannot read are returned apart, so
 * the plan says it could not check them instead of claiming they drop nothing.
 */
export async function destructionOf(migration: string, statements: string[]): Promise<{ drops: Destruction[]; unparsed: string[] }> {
  const drops: Destruction[] = [];
  const unparsed: string[] = [];
  for (const sql of statements) {
    const split = await trySplit(sql);
    if (!split.ok) {
      unparsed.push(quoteStatement(sql));
      continue;
    }
    for (const { text, node } of split.statements) {
      const [kind, stmt] = unwrap(node) ?? ['Unknown', {}];
      const statement = quoteStatement(text);
      if (kind === 'DropStmt' && str(stmt, 'removeType') === 'OBJECT_TABLE') {
        for (const table of droppedNames(stmt)) drops.push({ kind: 'table', migration, table, column: null, statement });
      } else if (kind === 'AlterTableStmt') {
        const table = relationName(rec(stmt, 'relation'));
        if (!table) continue;
        for (const cmd of nodesOf(arr(stmt, 'cmds'), 'AlterTableCmd')) {
          const column = str(cmd, 'name');
          if (str(cmd, 'subtype') === 'AT_DropColumn' && column) drops.push({ kind: 'column', migration, table, column, statement });
        }
      } else if (kind === 'TruncateStmt') {
        for (const r of arr(stmt, 'relations')) {
          const table = relationName(rec(r, 'RangeVar'));
          if (table) drops.push({ kind: 'rows', migration, table, column: null, statement });
        }
      } else if (kind === 'DeleteStmt' && !rec(stmt, 'whereClause')) {
        const table = relationName(rec(stmt, 'relation'));
        if (table) drops.push({ kind: 'rows', migration, table, column: null, statement });
      }
    }
  }
  return { drops, unparsed };
}
