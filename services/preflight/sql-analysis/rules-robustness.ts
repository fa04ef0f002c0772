import { flag, rec, relationName, str } from './ast.js';
import { alterTableCmds, warning, type Hit, type Rule } from './rule.js';

const DROPPED_KINDS: Readonly<Record<string, string>> = {
  OBJECT_TABLE: 'TABLE', OBJECT_INDEX: 'INDEX', OBJECT_TYPE: 'TYPE', OBJECT_VIEW: 'VIEW', OBJECT_MATVIEW: 'MATERIALIZED VIEW', OBJECT_SEQUENCE: 'SEQUENCE',
};

const ROBUST_KINDS: Readonly<Record<string, string>> = {
  CreateStmt: 'CREATE TABLE without IF NOT EXISTS',
  IndexStmt: 'CREATE INDEX without IF NOT EXISTS',
};

/**
 * Without a transaction, a failure part-way leaves the earlier statements
 * applied; the migration can only be re-run if each statement tolerates
 * having already happened.
 */
export const robustnessRules: Rule = (kind, stmt, state) => {
  const hits: Hit[] = [];
  if (kind === 'CreateExtensionStmt') {
    hits.push(warning(
      'create-extension',
      `CREATE EXTENSION ${str(stmt, 'extname')} needs the CREATE privilege on the database (trusted extensions) or superuser, ` +
        'and the extension must be available on the server; preflight checks availability and privilege against the target.',
    ));
  }
  if (state.transactional) return hits;
  const fragile: string[] = [];
  const robustKind = ROBUST_KINDS[kind];
  // A temporary table dropped at commit is gone before any re-run; an unnamed index cannot take IF NOT EXISTS (and a re-run adds a second one, not a failure).
  const throwaway = kind === 'CreateStmt' && str(stmt, 'oncommit') === 'ONCOMMIT_DROP' && str(rec(stmt, 'relation'), 'relpersistence') === 't';
  const unnamedIndex = kind === 'IndexStmt' && str(stmt, 'idxname') === undefined;
  if (robustKind && !flag(stmt, 'if_not_exists') && !throwaway && !unnamedIndex) fragile.push(robustKind);
  if (kind === 'DropStmt' && !flag(stmt, 'missing_ok')) {
    const dropped = DROPPED_KINDS[str(stmt, 'removeType') ?? ''];
    if (dropped) fragile.push(`DROP ${dropped} without IF EXISTS`);
  }
  if (kind === 'AlterTableStmt') {
    const table = relationName(rec(stmt, 'relation')) ?? '';
    for (const cmd of alterTableCmds(stmt)) {
      const subtype = str(cmd, 'subtype');
      if (subtype === 'AT_AddConstraint') {
        // Re-adding a constraint the migration dropped IF EXISTS just before is the robust way.
        const name = str(rec(rec(cmd, 'def'), 'Constraint'), 'conname')?.toLowerCase();
        if (name === undefined || !state.droppedConstraints.has(`${table}/${name}`)) fragile.push('ADD CONSTRAINT (fails if it exists; DROP CONSTRAINT IF EXISTS first)');
        continue;
      }
      if (flag(cmd, 'missing_ok')) continue;
      if (subtype === 'AT_AddColumn') fragile.push('ADD COLUMN without IF NOT EXISTS');
      if (subtype === 'AT_DropColumn') fragile.push('DROP COLUMN without IF EXISTS');
      if (subtype === 'AT_DropConstraint') fragile.push('DROP CONSTRAINT without IF EXISTS');
    }
  }
  if (fragile.length > 0) {
    const invalidIndex = kind === 'IndexStmt' && flag(stmt, 'concurrent')
      ? ' After a failed CONCURRENTLY build, drop the INVALID index it leaves behind before re-running.'
      : '';
    hits.push(warning(
      'prefer-robust-stmts',
      `${[...new Set(fragile)].join('; ')} in a migration that runs outside a transaction: a partial failure cannot be re-run. ` +
        `Add IF [NOT] EXISTS.${invalidIndex}`,
    ));
  }
  return hits;
};
