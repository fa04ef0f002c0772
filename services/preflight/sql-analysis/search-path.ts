import { arr, isRecord, rec, str, walk, type AstNode } from './ast.js';
import type { LintState } from './lint-state.js';

// After `SET search_path TO app, public` (or when the target's own setting
// for the migration role says so) an unqualified name means the first schema
// on the path that has it (or, for a new object, the first schema), not
// `public`. Rules key tables by 'schema.table', so the names are qualified in
// the parse tree before any rule looks at the statement.

/** Parse nodes whose schema came from the search_path, not from the text: still "not schema-qualified" to require-table-schema. */
export const qualifiedByPath = new WeakSet<object>();

const DROPPED_RELATIONS = new Set(['OBJECT_TABLE', 'OBJECT_INDEX', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE']);
const DROPPED_TABLE_OBJECTS = new Set(['OBJECT_TRIGGER', 'OBJECT_RULE', 'OBJECT_POLICY']);

function schemaFor(name: string, state: LintState, path: string[]): string {
  const lower = name.toLowerCase();
  return path.find((s) => state.isCreatedHere(`${s}.${lower}`) || state.isExisting(`${s}.${lower}`)) ?? path[0]!;
}

/** Qualifies the statement's unqualified relation names by the search_path the migration set (in place). */
export function qualifyBySearchPath(kind: string, stmt: AstNode, state: LintState): void {
  const path = state.searchPath;
  if (!path || path.length === 0) return;
  // A CTE's name reads like a table name but is not one.
  const ctes = new Set<string>();
  walk(stmt, (k, body) => {
    if (k === 'CommonTableExpr') ctes.add(str(body, 'ctename') ?? '');
  });
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item);
      return;
    }
    if (!isRecord(node)) return;
    const relname = str(node, 'relname');
    if (relname !== undefined && str(node, 'schemaname') === undefined && str(node, 'relpersistence') !== 't' && !ctes.has(relname)) {
      node.schemaname = schemaFor(relname, state, path);
      qualifiedByPath.add(node);
    }
    for (const value of Object.values(node)) visit(value);
  };
  visit(stmt);
  if (kind === 'DropStmt') {
    const removeType = str(stmt, 'removeType') ?? '';
    const nameParts = DROPPED_RELATIONS.has(removeType) ? 1 : DROPPED_TABLE_OBJECTS.has(removeType) ? 2 : 0;
    if (nameParts === 0) return;
    for (const object of arr(stmt, 'objects')) {
      const items = arr(rec(object, 'List'), 'items');
      const first = str(rec(items[0], 'String'), 'sval');
      if (items.length === nameParts && first !== undefined) {
        items.unshift({ String: { sval: schemaFor(first, state, path) } });
        qualifiedByPath.add(items);
      }
    }
  }
}
