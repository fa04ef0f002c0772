import { rec, relationName, str } from './ast.js';
import { alterTableCmds, error, type Hit, type Rule } from './rule.js';
import { columnConstraintTypes, columnDefault } from './volatility.js';

/** Column changes that lock an existing table for a scan, a rewrite, or fail on existing rows. */
export const columnRules: Rule = (kind, stmt, state) => {
  if (kind !== 'AlterTableStmt') return [];
  const table = relationName(rec(stmt, 'relation'));
  if (!state.isExisting(table)) return [];
  const hits: Hit[] = [];
  for (const cmd of alterTableCmds(stmt)) {
    const subtype = str(cmd, 'subtype');
    const column = str(cmd, 'name');
    if (subtype === 'AT_SetNotNull') {
      hits.push(error(
        'adding-not-nullable-field',
        `SET NOT NULL on ${table}.${column} scans the whole table under an ACCESS EXCLUSIVE lock. ` +
          `Add a CHECK (${column} IS NOT NULL) NOT VALID constraint, VALIDATE it in a separate migration, ` +
          'then SET NOT NULL (PG12+ uses the validated check and skips the scan) and drop the check. ' +
          `Fill existing NULLs before the check with a backfill job (a definition in database/backfills/, started with POST /v1/backfills): throttled, resumable keyset batches.`,
      ));
    } else if (subtype === 'AT_AlterColumnType') {
      hits.push(error(
        'changing-column-type',
        `ALTER COLUMN ${column} TYPE on ${table} rewrites the table and its indexes under an ACCESS EXCLUSIVE lock. ` +
          'Add a new column with the new type, backfill it in batches, switch the application over, then swap and drop the old column.',
      ));
    } else if (subtype === 'AT_AddColumn') {
      const def = rec(rec(cmd, 'def'), 'ColumnDef');
      if (def) hits.push(...addColumnHits(table, def));
    }
  }
  return hits;
};

function addColumnHits(table: string, def: Record<string, unknown>): Hit[] {
  const column = str(def, 'colname');
  const types = columnConstraintTypes(def);
  const value = columnDefault(def);
  if (value.kind === 'volatile' || value.kind === 'unknown') {
    const hint = value.kind === 'unknown'
      ? ' If the function is STABLE or IMMUTABLE, acknowledge this finding with a lint-ack comment.'
      : '';
    return [error(
      'adding-field-with-volatile-default',
      `ADD COLUMN ${column} on ${table}: ${value.detail}, so every existing row is rewritten under an ACCESS EXCLUSIVE lock. ` +
        `Add the column without a default, then SET DEFAULT, and backfill existing rows in batches.${hint}`,
    )];
  }
  const notNull = types.includes('CONSTR_NOTNULL') || types.includes('CONSTR_PRIMARY');
  if (notNull && value.kind === 'none') {
    return [error(
      'adding-required-field',
      `ADD COLUMN ${column} NOT NULL without a DEFAULT on ${table} fails as soon as the table has rows. ` +
        `Add it nullable or with a default, backfill, then enforce NOT NULL: add the nullable column; backfill it with a backfill job ` +
          '(a definition in database/backfills/, started with POST /v1/backfills: throttled, resumable keyset batches); then, in later migrations, ' +
          `CHECK (${column} IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, and SET NOT NULL.`,
    )];
  }
  return [];
}
