import { arr, isRecord, names, nodesOf, rec, relationName, str, type AstNode } from './ast.js';

// The objects a statement touches, in every spelling an ack may name them
// with: `schema.table` and `table`, `table.column` (and `schema.table.column`)
// for columns and constraints, index names. `lint-ack: rule(object)` covers a
// finding when its object is among them.

/** 'public.users' → 'public.users', 'users'. */
export function relationForms(qualified: string): string[] {
  const bare = qualified.split('.').pop()!;
  return bare === qualified ? [qualified] : [qualified, bare];
}

function memberForms(relation: string | undefined, member: string | undefined): string[] {
  if (!relation || !member) return [];
  return relationForms(relation).map((r) => `${r}.${member.toLowerCase()}`);
}

export function touchedObjects(kind: string, stmt: AstNode): Set<string> {
  const out = new Set<string>();
  const add = (forms: string[]) => forms.forEach((f) => out.add(f));
  // Every relation the statement names, wherever it sits in the tree.
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!isRecord(node)) return;
    if (str(node, 'relname') !== undefined) {
      const name = relationName(node);
      if (name) add(relationForms(name));
    }
    Object.values(node).forEach(visit);
  };
  visit(stmt);
  const relation = relationName(rec(stmt, 'relation'));
  if (kind === 'AlterTableStmt') {
    for (const cmd of nodesOf(arr(stmt, 'cmds'), 'AlterTableCmd')) {
      add(memberForms(relation, str(cmd, 'name')));
      const def = rec(cmd, 'def');
      add(memberForms(relation, str(rec(def, 'ColumnDef'), 'colname')));
      add(memberForms(relation, str(rec(def, 'Constraint'), 'conname')));
    }
  } else if (kind === 'CreateStmt') {
    for (const col of nodesOf(arr(stmt, 'tableElts'), 'ColumnDef')) add(memberForms(relation, str(col, 'colname')));
  } else if (kind === 'RenameStmt') {
    add(memberForms(relation, str(stmt, 'subname')));
  } else if (kind === 'IndexStmt') {
    const index = str(stmt, 'idxname')?.toLowerCase();
    if (index) add([index, ...(relation ? [`${relation.split('.')[0]}.${index}`] : [])]);
  } else if (kind === 'DropStmt') {
    // DROP's objects are name lists: every tail of each is a spelling of it.
    for (const object of arr(stmt, 'objects')) {
      const parts = names(arr(rec(object, 'List'), 'items')).map((p) => p.toLowerCase());
      for (let i = 0; i < parts.length; i++) out.add(parts.slice(i).join('.'));
    }
  }
  return out;
}
