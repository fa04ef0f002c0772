import { flag, str } from './ast.js';
import { alterTableCmds, warning, type Hit, type Rule } from './rule.js';

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
  if (robustKind && !flag(stmt, 'if_not_exists')) fragile.push(robustKind);
  if (kind === 'DropStmt' && !flag(stmt, 'missing_ok')) {
    const removeType = str(stmt, 'removeType');
    if (removeType === 'OBJECT_TABLE') fragile.push('DROP TABLE without IF EXISTS');
    if (removeType === 'OBJECT_INDEX') fragile.push('DROP INDEX without IF EXISTS');
  }
  if (kind === 'AlterTableStmt') {
    for (const cmd of alterTableCmds(stmt)) {
      if (flag(cmd, 'missing_ok')) continue;
      if (str(cmd, 'subtype') === 'AT_AddColumn') fragile.push('ADD COLUMN without IF NOT EXISTS');
      if (str(cmd, 'subtype') === 'AT_DropColumn') fragile.push('DROP COLUMN without IF EXISTS');
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
