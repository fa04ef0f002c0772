import { arr, flag, isRecord, names, nodesOf, rec, relationName, str, unwrap, type AstNode } from './ast.js';
import { alterTableCmds, error, warning, type Hit, type Rule } from './rule.js';

// Constraints and column changes beyond the ones squawk-style linters have
// always checked: foreign keys added with a new column, exclusion constraints,
// dropping NOT NULL, domain constraints, and statements PostgreSQL rejects
// because they name a column twice.

export const schemaChangeRules: Rule = (kind, stmt, state) => {
  const hits: Hit[] = [];
  if (kind === 'AlterTableStmt') {
    const table = relationName(rec(stmt, 'relation'));
    if (!state.isExisting(table)) return hits;
    for (const cmd of alterTableCmds(stmt)) {
      const subtype = str(cmd, 'subtype');
      if (subtype === 'AT_AddColumn') {
        const def = rec(rec(cmd, 'def'), 'ColumnDef');
        const fk = nodesOf(arr(def, 'constraints'), 'Constraint').find((c) => str(c, 'contype') === 'CONSTR_FOREIGN');
        if (fk) {
          const column = str(def, 'colname');
          const target = relationName(rec(fk, 'pktable'));
          hits.push(error(
            'adding-foreign-key-constraint',
            `ADD COLUMN ${column} ... REFERENCES ${target} validates the new column against ${target} by scanning ${table}, holding ACCESS EXCLUSIVE on ${table} ` +
              `and SHARE ROW EXCLUSIVE on ${target} (writes to both wait). Add the column without REFERENCES, then ADD CONSTRAINT ... FOREIGN KEY (${column}) ` +
              `REFERENCES ${target} NOT VALID, and VALIDATE CONSTRAINT in a separate migration.`,
          ));
        }
      } else if (subtype === 'AT_AddConstraint' && str(rec(rec(cmd, 'def'), 'Constraint'), 'contype') === 'CONSTR_EXCLUSION') {
        hits.push(error(
          'adding-exclusion-constraint',
          `ADD CONSTRAINT ... EXCLUDE on ${table} builds its index and checks every row under an ACCESS EXCLUSIVE lock: no reads or writes until it finishes. ` +
            'PostgreSQL cannot attach an exclusion constraint to an index built CONCURRENTLY, so add it when the table is created, in a maintenance window ' +
            '(and acknowledge it), or enforce uniqueness with CREATE UNIQUE INDEX CONCURRENTLY where equality is enough.',
        ));
      } else if (subtype === 'AT_DropNotNull') {
        hits.push(warning(
          'ban-drop-not-null',
          `DROP NOT NULL on ${table}.${str(cmd, 'name')} lets NULLs into a column the running application may read as always set. ` +
            'Make sure every reader handles NULL (release that first); the change itself is catalog-only but takes a brief ACCESS EXCLUSIVE lock.',
        ));
      }
    }
  } else if (kind === 'CreateDomainStmt' && arr(stmt, 'constraints').length > 0) {
    hits.push(warning(
      'ban-create-domain-with-constraint',
      `CREATE DOMAIN ${names(arr(stmt, 'domainname')).join('.')} with a constraint: changing that constraint later checks every column of the domain in every table ` +
        'at once, and a domain NOT NULL does not hold for outer joins or new columns. Use a plain type with CHECK constraints on the columns.',
    ));
  } else if (kind === 'AlterDomainStmt' && str(stmt, 'subtype') === 'C' && !flag(rec(rec(stmt, 'def'), 'Constraint'), 'skip_validation')) {
    hits.push(error(
      'ban-alter-domain-with-add-constraint',
      `ALTER DOMAIN ${names(arr(stmt, 'typeName')).join('.')} ADD CONSTRAINT checks every column of the domain in every table while locking them. ` +
        'Add it NOT VALID, then ALTER DOMAIN ... VALIDATE CONSTRAINT in a separate migration, or use CHECK constraints on the columns instead.',
    ));
  }
  const duplicate = duplicateColumn(kind, stmt);
  if (duplicate) {
    hits.push(error(
      'ban-duplicate-column-assignments',
      `Column "${duplicate.name}" is ${duplicate.what} more than once in this statement; PostgreSQL rejects it (or, for SET, it is a typo that drops one value). ` +
        'Name each column once.',
    ));
  }
  return hits;
};

interface Duplicate {
  name: string;
  what: 'assigned' | 'defined';
}

function firstRepeated(list: string[]): string | undefined {
  const seen = new Set<string>();
  for (const name of list) {
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/** SET and INSERT column lists: a repeat counts unless every assignment to it is partial (`a.x`, `a[1]`). */
function repeatedAssignment(targets: unknown[]): string | undefined {
  const byName = new Map<string, boolean[]>();
  for (const t of nodesOf(targets, 'ResTarget')) {
    const name = str(t, 'name');
    if (name === undefined) continue;
    byName.set(name, [...(byName.get(name) ?? []), arr(t, 'indirection').length > 0]);
  }
  for (const [name, partial] of byName) if (partial.length > 1 && !partial.every(Boolean)) return name;
  return undefined;
}

/** The column name PostgreSQL gives an unnamed select-list item (FigureColname, simplified). */
function figureName(target: AstNode): string {
  const name = str(target, 'name');
  if (name !== undefined) return name;
  const [kind, body] = unwrap(rec(target, 'val')) ?? ['', {}];
  if (kind === 'ColumnRef') return names(arr(body, 'fields')).pop() ?? '*';
  if (kind === 'FuncCall') return names(arr(body, 'funcname')).pop() ?? '?column?';
  if (kind === 'TypeCast') {
    const inner = figureName({ val: rec(body, 'arg') });
    return inner !== '?column?' ? inner : (names(arr(rec(body, 'typeName'), 'names')).pop() ?? '?column?');
  }
  return '?column?';
}

function selectNames(select: AstNode | undefined): string[] {
  const targets = nodesOf(arr(select, 'targetList'), 'ResTarget');
  // A `*` expands to columns the parser cannot see.
  if (targets.some((t) => figureName(t) === '*')) return [];
  return targets.map(figureName);
}

function duplicateColumn(kind: string, stmt: AstNode): Duplicate | null {
  const assigned = (list: unknown[]): Duplicate | null => {
    const name = repeatedAssignment(list);
    return name === undefined ? null : { name, what: 'assigned' };
  };
  const defined = (list: string[]): Duplicate | null => {
    const name = firstRepeated(list);
    return name === undefined ? null : { name, what: 'defined' };
  };
  const columns = (elts: unknown[]) => nodesOf(elts, 'ColumnDef').flatMap((c) => str(c, 'colname') ?? []);
  switch (kind) {
    case 'UpdateStmt':
      return assigned(arr(stmt, 'targetList'));
    case 'InsertStmt':
      return assigned(arr(stmt, 'cols')) ?? assigned(arr(rec(stmt, 'onConflictClause'), 'targetList'));
    case 'MergeStmt':
      for (const clause of nodesOf(arr(stmt, 'mergeWhenClauses'), 'MergeWhenClause')) {
        const found = assigned(arr(clause, 'targetList'));
        if (found) return found;
      }
      return null;
    case 'CreateStmt':
      return defined(columns(arr(stmt, 'tableElts')));
    case 'CreateForeignTableStmt':
      return defined(columns(arr(rec(stmt, 'base'), 'tableElts')));
    case 'ViewStmt': {
      const aliases = names(arr(stmt, 'aliases'));
      const query = rec(rec(stmt, 'query'), 'SelectStmt');
      // Aliases name the first columns; the rest keep their own names.
      const own = selectNames(query);
      return defined(aliases.length ? [...aliases, ...own.slice(aliases.length)] : own);
    }
    case 'CreateTableAsStmt': {
      const colNames = names(arr(rec(stmt, 'into'), 'colNames'));
      const own = selectNames(rec(rec(stmt, 'query'), 'SelectStmt'));
      return defined(colNames.length ? [...colNames, ...own.slice(colNames.length)] : own);
    }
    case 'SelectStmt':
      return isRecord(stmt.intoClause) ? defined(selectNames(stmt)) : null;
    default:
      return null;
  }
}
