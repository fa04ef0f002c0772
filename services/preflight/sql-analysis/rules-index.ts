import { flag, rec, relationName, str } from './ast.js';
import { droppedNames, hasOption } from './statement-fields.js';
import { error, type Hit, type Rule } from './rule.js';

const NO_TRANSACTION =
  'PostgreSQL refuses CONCURRENTLY inside a transaction block; call pgm.noTransaction() in this migration (and keep it to this one statement, so a failure leaves nothing half-done).';

export const indexRules: Rule = (kind, stmt, state) => {
  const hits: Hit[] = [];
  if (kind === 'IndexStmt') {
    const table = relationName(rec(stmt, 'relation'));
    const concurrent = flag(stmt, 'concurrent');
    if (concurrent && state.transactional) {
      hits.push(error('ban-concurrent-index-creation-in-transaction', `CREATE INDEX CONCURRENTLY in a transactional migration fails. ${NO_TRANSACTION}`));
    }
    if (!concurrent && state.isExisting(table)) {
      hits.push(error(
        'require-concurrent-index-creation',
        `CREATE INDEX on existing table ${table} holds a SHARE lock that blocks all writes for the whole build. ` +
          'Use CREATE INDEX CONCURRENTLY in a migration that calls pgm.noTransaction().',
      ));
    }
  } else if (kind === 'DropStmt' && str(stmt, 'removeType') === 'OBJECT_INDEX') {
    const concurrent = flag(stmt, 'concurrent');
    if (concurrent && state.transactional) {
      hits.push(error('ban-concurrent-index-creation-in-transaction', `DROP INDEX CONCURRENTLY in a transactional migration fails. ${NO_TRANSACTION}`));
    }
    if (!concurrent && droppedNames(stmt).some((index) => !state.isIndexOnNewTable(index))) {
      hits.push(error(
        'require-concurrent-index-deletion',
        "DROP INDEX takes an ACCESS EXCLUSIVE lock on the index's table, blocking reads and writes while it waits for running queries. " +
          'Use DROP INDEX CONCURRENTLY in a migration that calls pgm.noTransaction().',
      ));
    }
  } else if (kind === 'ReindexStmt' && state.transactional && hasOption(stmt, 'params', 'concurrently')) {
    hits.push(error('ban-concurrent-index-creation-in-transaction', `REINDEX CONCURRENTLY in a transactional migration fails. ${NO_TRANSACTION}`));
  }
  return hits;
};
