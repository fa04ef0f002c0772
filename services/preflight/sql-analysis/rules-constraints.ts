import { flag, rec, relationName, str } from './ast.js';
import { alterTableCmds, error, type Hit, type Rule } from './rule.js';
import { columnConstraintTypes } from './volatility.js';
import { outsideTransactionHome } from './advice.js';
import type { LintState } from './lint-state.js';

const uniqueAlternative = (state: LintState) =>
  `CREATE UNIQUE INDEX CONCURRENTLY (${outsideTransactionHome(state)}), then ADD CONSTRAINT ... UNIQUE USING INDEX (or PRIMARY KEY USING INDEX).`;

/** Constraints whose validation or index build runs while an existing table is locked. */
export const constraintRules: Rule = (kind, stmt, state) => {
  if (kind !== 'AlterTableStmt') return [];
  const table = relationName(rec(stmt, 'relation'));
  if (!state.isExisting(table)) return [];
  const hits: Hit[] = [];
  for (const cmd of alterTableCmds(stmt)) {
    const subtype = str(cmd, 'subtype');
    if (subtype === 'AT_AddConstraint') {
      const constraint = rec(rec(cmd, 'def'), 'Constraint');
      const contype = str(constraint, 'contype');
      const name = str(constraint, 'conname') ?? '';
      if ((contype === 'CONSTR_CHECK' || contype === 'CONSTR_FOREIGN') && !flag(constraint, 'skip_validation')) {
        const what = contype === 'CONSTR_CHECK' ? 'CHECK' : 'FOREIGN KEY';
        hits.push(error(
          'constraint-missing-not-valid',
          `ADD CONSTRAINT ${name} ${what} on ${table} validates every row while holding its lock. ` +
            'Add it NOT VALID, then VALIDATE CONSTRAINT in a separate migration (VALIDATE takes only SHARE UPDATE EXCLUSIVE).',
        ));
      } else if ((contype === 'CONSTR_UNIQUE' || contype === 'CONSTR_PRIMARY') && str(constraint, 'indexname') === undefined) {
        hits.push(error(
          'disallowed-unique-constraint',
          `ADD ${contype === 'CONSTR_UNIQUE' ? 'UNIQUE' : 'PRIMARY KEY'} on ${table} builds its index under an ACCESS EXCLUSIVE lock. ${uniqueAlternative(state)}`,
        ));
      }
    } else if (subtype === 'AT_AddColumn') {
      const types = columnConstraintTypes(rec(rec(cmd, 'def'), 'ColumnDef') ?? {});
      if (types.includes('CONSTR_UNIQUE') || types.includes('CONSTR_PRIMARY')) {
        hits.push(error(
          'disallowed-unique-constraint',
          `ADD COLUMN ... UNIQUE/PRIMARY KEY on ${table} builds its index under an ACCESS EXCLUSIVE lock. ` +
            `Add the column without it, then ${uniqueAlternative(state)}`,
        ));
      }
    } else if (subtype === 'AT_ValidateConstraint' && state.transactional && state.wasAddedNotValid(table, str(cmd, 'name') ?? '')) {
      // The ADD's lock is held until commit, so validating in the same
      // transaction scans under it and NOT VALID bought nothing.
      hits.push(error(
        'constraint-missing-not-valid',
        `VALIDATE CONSTRAINT ${str(cmd, 'name')} runs in the same transaction that added it NOT VALID, so the validating scan of ${table} ` +
          'still holds the ADD CONSTRAINT lock. VALIDATE CONSTRAINT in a separate migration.',
      ));
    }
  }
  return hits;
};
