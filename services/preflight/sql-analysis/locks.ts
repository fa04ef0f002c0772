import { arr, flag, names, nodesOf, num, qualify, rec, relationName, str, walk, type AstNode } from './ast.js';
import { alterTableEffect } from './alter-table-locks.js';
import { effect, type Effect } from './effect.js';
import { lockModeFromNumber } from './lock-modes.js';
import { droppedNames, hasOption } from './statement-fields.js';
import type { LockMode } from './types.js';

const RELATION_DROPS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE', 'OBJECT_INDEX']);
// DROP TRIGGER/RULE/POLICY name their table before the object's own name.
const TABLE_OBJECT_DROPS = new Set(['OBJECT_TRIGGER', 'OBJECT_RULE', 'OBJECT_POLICY']);

function relations(items: unknown[]): Array<string | undefined> {
  return items.map((item) => relationName(rec(item, 'RangeVar')));
}

function dropEffect(stmt: AstNode): Effect {
  const removeType = str(stmt, 'removeType') ?? '';
  if (removeType === 'OBJECT_INDEX') {
    return effect(flag(stmt, 'concurrent') ? 'SHARE UPDATE EXCLUSIVE' : 'ACCESS EXCLUSIVE', droppedNames(stmt));
  }
  if (RELATION_DROPS.has(removeType)) return effect('ACCESS EXCLUSIVE', droppedNames(stmt));
  if (TABLE_OBJECT_DROPS.has(removeType)) {
    const tables = arr(stmt, 'objects').map((o) => qualify(names(arr(rec(o, 'List'), 'items')).slice(0, -1)));
    return effect('ACCESS EXCLUSIVE', tables);
  }
  return effect('none', []);
}

/** CREATE TABLE locks only what it references: FK targets and, for a partition, its parent. */
function createTableEffect(stmt: AstNode): Effect {
  const table = relationName(rec(stmt, 'relation'));
  const referenced: Array<string | undefined> = [];
  walk(arr(stmt, 'tableElts'), (kind, body) => {
    if (kind === 'Constraint' && str(body, 'contype') === 'CONSTR_FOREIGN') referenced.push(relationName(rec(body, 'pktable')));
  });
  const parents = relations(arr(stmt, 'inhRelations'));
  if (rec(stmt, 'partbound')) return effect('ACCESS EXCLUSIVE', [table, ...parents, ...referenced]);
  if (referenced.length > 0) return effect('SHARE ROW EXCLUSIVE', [table, ...referenced, ...parents]);
  if (parents.length > 0) return effect('SHARE UPDATE EXCLUSIVE', [table, ...parents]);
  return effect('none', [table]);
}

function selectEffect(stmt: AstNode): Effect {
  // A CTE's name reads like a table name but locks nothing.
  const ctes = new Set<string>();
  walk(stmt, (kind, body) => {
    if (kind === 'CommonTableExpr') ctes.add(str(body, 'ctename') ?? '');
  });
  const tables: Array<string | undefined> = [];
  walk(stmt, (kind, body) => {
    if (kind !== 'RangeVar') return;
    if (str(body, 'schemaname') === undefined && ctes.has(str(body, 'relname') ?? '')) return;
    tables.push(relationName(body));
  });
  if (tables.length === 0) return effect('none', []);
  return effect(arr(stmt, 'lockingClause').length > 0 ? 'ROW SHARE' : 'ACCESS SHARE', tables);
}

function vacuumEffect(stmt: AstNode): Effect {
  const tables = nodesOf(arr(stmt, 'rels'), 'VacuumRelation').map((r) => relationName(rec(r, 'relation')));
  if (!flag(stmt, 'is_vacuumcmd')) return effect('SHARE UPDATE EXCLUSIVE', tables);
  if (hasOption(stmt, 'options', 'full')) return effect('ACCESS EXCLUSIVE', tables, { rewritesTable: true });
  return effect('SHARE UPDATE EXCLUSIVE', tables, { scansTable: true });
}

function reindexEffect(stmt: AstNode): Effect {
  const target = relationName(rec(stmt, 'relation'));
  if (hasOption(stmt, 'params', 'concurrently')) return effect('SHARE UPDATE EXCLUSIVE', [target], { buildsIndex: true });
  // REINDEX blocks writes to the table but holds ACCESS EXCLUSIVE on each index it rebuilds.
  const lock: LockMode = str(stmt, 'kind') === 'REINDEX_OBJECT_INDEX' ? 'ACCESS EXCLUSIVE' : 'SHARE';
  return effect(lock, [target], { buildsIndex: true });
}

function renameEffect(stmt: AstNode): Effect {
  // Since PG12 renaming an index takes only SHARE UPDATE EXCLUSIVE.
  const lock: LockMode = str(stmt, 'renameType') === 'OBJECT_INDEX' ? 'SHARE UPDATE EXCLUSIVE' : 'ACCESS EXCLUSIVE';
  const relation = rec(stmt, 'relation');
  return relation ? effect(lock, [relationName(relation)]) : effect('none', []);
}

function commentEffect(stmt: AstNode): Effect {
  const objtype = str(stmt, 'objtype');
  const parts = names(arr(rec(rec(stmt, 'object'), 'List'), 'items'));
  if (objtype === 'OBJECT_TABLE') return effect('SHARE UPDATE EXCLUSIVE', [qualify(parts)]);
  if (objtype === 'OBJECT_COLUMN') return effect('SHARE UPDATE EXCLUSIVE', [qualify(parts.slice(0, -1))]);
  return effect('none', []);
}

/** Locks per the PostgreSQL 15 docs (explicit locking, ALTER TABLE, each command's page). */
export function statementEffect(kind: string, stmt: AstNode): Effect {
  const relation = relationName(rec(stmt, 'relation'));
  switch (kind) {
    case 'AlterTableStmt':
      return alterTableEffect(stmt);
    case 'IndexStmt':
      return effect(flag(stmt, 'concurrent') ? 'SHARE UPDATE EXCLUSIVE' : 'SHARE', [relation], { buildsIndex: true });
    case 'ReindexStmt':
      return reindexEffect(stmt);
    case 'DropStmt':
      return dropEffect(stmt);
    case 'TruncateStmt':
      return effect('ACCESS EXCLUSIVE', relations(arr(stmt, 'relations')));
    case 'CreateStmt':
      return createTableEffect(stmt);
    case 'CreateTableAsStmt':
      return effect('none', [relationName(rec(rec(stmt, 'into'), 'rel'))]);
    case 'InsertStmt':
    case 'MergeStmt':
      return effect('ROW EXCLUSIVE', [relation]);
    case 'UpdateStmt':
    case 'DeleteStmt':
      return effect('ROW EXCLUSIVE', [relation], { scansTable: rec(stmt, 'whereClause') === undefined });
    case 'SelectStmt':
      return selectEffect(stmt);
    case 'VacuumStmt':
      return vacuumEffect(stmt);
    case 'ClusterStmt':
      return effect('ACCESS EXCLUSIVE', [relation], { rewritesTable: true });
    case 'RefreshMatViewStmt':
      return effect(flag(stmt, 'concurrent') ? 'EXCLUSIVE' : 'ACCESS EXCLUSIVE', [relation], { rewritesTable: true });
    case 'LockStmt':
      return effect(lockModeFromNumber(num(stmt, 'mode') ?? 8), relations(arr(stmt, 'relations')));
    case 'CreateTrigStmt':
      return effect('SHARE ROW EXCLUSIVE', [relation]);
    case 'RuleStmt':
      return effect('ACCESS EXCLUSIVE', [relation]);
    case 'CreatePolicyStmt':
    case 'AlterPolicyStmt':
      return effect('ACCESS EXCLUSIVE', [relationName(rec(stmt, 'table'))]);
    case 'RenameStmt':
      return renameEffect(stmt);
    case 'AlterObjectSchemaStmt':
      return relation ? effect('ACCESS EXCLUSIVE', [relation]) : effect('none', []);
    case 'CommentStmt':
      return commentEffect(stmt);
    default:
      // Functions, types, sequences, extensions, grants, DO blocks: no table
      // lock the parser can see (a DO block's or function's body is opaque).
      return effect('none', []);
  }
}
