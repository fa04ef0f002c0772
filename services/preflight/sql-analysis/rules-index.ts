import { flag, rec, relationName, str } from './ast.js';
import { droppedNames, hasOption } from './statement-fields.js';
import { error, type Hit, type Rule } from './rule.js';
import { leaveTransactionAdvice, outsideTransactionHome } from './advice.js';
import type { LintState } from './lint-state.js';

const noTransaction = (state: LintState) => `PostgreSQL refuses CONCURRENTLY inside a transaction block; ${leaveTransactionAdvice(state)}`;
const inTransaction = (state: LintState) => (state.insideDo ? 'inside a DO block' : 'in a transactional migration');

export const indexRules: Rule = (kind, stmt, state) => {
  const hits: Hit[] = [];
  if (kind === 'IndexStmt') {
    const table = relationName(rec(stmt, 'relation'));
    const concurrent = flag(stmt, 'concurrent');
    if (concurrent && state.transactional) {
      hits.push(error('ban-concurrent-index-creation-in-transaction', `CREATE INDEX CONCURRENTLY ${inTransaction(state)} fails. ${noTransaction(state)}`));
    }
    if (!concurrent && state.isExisting(table)) {
      hits.push(error(
        'require-concurrent-index-creation',
        `CREATE INDEX on existing ${state.isMaterializedView(table) ? 'materialized view' : 'table'} ${table} holds a SHARE lock that blocks all writes for the whole build. ` +
          `Use CREATE INDEX CONCURRENTLY ${outsideTransactionHome(state)}.`,
      ));
    }
  } else if (kind === 'DropStmt' && str(stmt, 'removeType') === 'OBJECT_INDEX') {
    const concurrent = flag(stmt, 'concurrent');
    if (concurrent && state.transactional) {
      hits.push(error('ban-concurrent-index-creation-in-transaction', `DROP INDEX CONCURRENTLY ${inTransaction(state)} fails. ${noTransaction(state)}`));
    }
    if (!concurrent && droppedNames(stmt).some((index) => !state.isIndexOnNewTable(index))) {
      hits.push(error(
        'require-concurrent-index-deletion',
        "DROP INDEX takes an ACCESS EXCLUSIVE lock on the index's table, blocking reads and writes while it waits for running queries. " +
          `Use DROP INDEX CONCURRENTLY ${outsideTransactionHome(state)}.`,
      ));
    }
  } else if (kind === 'ReindexStmt' && state.transactional && hasOption(stmt, 'params', 'concurrently')) {
    hits.push(error('ban-concurrent-index-creation-in-transaction', `REINDEX CONCURRENTLY ${inTransaction(state)} fails. ${noTransaction(state)}`));
  }
  return hits;
};
