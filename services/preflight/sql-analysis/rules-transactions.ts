import { flag, isRecord, rec, str, walk, type AstNode } from './ast.js';
import { leaveTransactionAdvice } from './advice.js';
import type { LintState } from './lint-state.js';
import { alterTableCmds, error, type Hit, type Rule } from './rule.js';
import { hasOption } from './statement-fields.js';

// How the statements of a migration meet transaction blocks: node-pg-migrate
// wraps a migration in BEGIN ... COMMIT unless it calls pgm.noTransaction()
// (a .sql migration always), pgm.sql() sends its string as one query (which
// PostgreSQL runs as one implicit transaction), and some statements refuse to
// run inside any transaction block.

/** Statements PostgreSQL refuses inside a transaction block (PreventInTransactionBlock), other than CONCURRENTLY index work. */
function outsideOnly(kind: string, stmt: AstNode, serverMajor: number): string | undefined {
  switch (kind) {
    case 'VacuumStmt':
      return flag(stmt, 'is_vacuumcmd') ? 'VACUUM' : undefined;
    case 'CreatedbStmt':
      return 'CREATE DATABASE';
    case 'DropdbStmt':
      return 'DROP DATABASE';
    case 'AlterSystemStmt':
      return 'ALTER SYSTEM';
    case 'CreateTableSpaceStmt':
      return 'CREATE TABLESPACE';
    case 'DropTableSpaceStmt':
      return 'DROP TABLESPACE';
    case 'AlterEnumStmt':
      return serverMajor < 12 && str(stmt, 'oldVal') === undefined ? 'ALTER TYPE ... ADD VALUE' : undefined;
    default:
      return undefined;
  }
}

/** The CONCURRENTLY statements, which also refuse transaction blocks. */
function concurrently(kind: string, stmt: AstNode): string | undefined {
  if (kind === 'IndexStmt' && flag(stmt, 'concurrent')) return 'CREATE INDEX CONCURRENTLY';
  if (kind === 'DropStmt' && flag(stmt, 'concurrent')) return 'DROP INDEX CONCURRENTLY';
  if (kind === 'ReindexStmt' && hasOption(stmt, 'params', 'concurrently')) return 'REINDEX CONCURRENTLY';
  if (kind === 'AlterTableStmt' && alterTableCmds(stmt).some((c) => flag(rec(rec(c, 'def'), 'PartitionCmd'), 'concurrent'))) {
    return 'DETACH PARTITION CONCURRENTLY';
  }
  return undefined;
}

/** True if an A_Const string anywhere in the statement is one of `values`. */
function usesValue(stmt: AstNode, values: ReadonlySet<string>): string | undefined {
  let found: string | undefined;
  walk(stmt, (kind, body) => {
    if (kind !== 'A_Const' || found !== undefined) return;
    const value = str(rec(body, 'sval'), 'sval');
    if (value !== undefined && values.has(value)) found = value;
  });
  return found;
}

export const transactionRules: Rule = (kind, stmt, state) => {
  const hits: Hit[] = [];
  if (kind === 'TransactionStmt') {
    const hit = nestingHit(str(stmt, 'kind') ?? '', state);
    if (hit) hits.push(hit);
    return hits;
  }
  const what = concurrently(kind, stmt);
  // CREATE/DROP/REINDEX CONCURRENTLY in a block are the index rules' findings.
  if (what === 'DETACH PARTITION CONCURRENTLY' && state.transactional) {
    hits.push(error('ban-concurrent-index-creation-in-transaction', `${what} ${state.insideDo ? 'inside a DO block' : 'in a transaction block'} fails. ` +
      `PostgreSQL refuses it inside a transaction block; ${leaveTransactionAdvice(state)}`));
  }
  const refused = outsideOnly(kind, stmt, state.serverMajor);
  if (refused && (state.transactional || state.insideDo)) {
    const extra = refused === 'ALTER TYPE ... ADD VALUE'
      ? ` (before PostgreSQL 12; the target runs ${state.serverMajor})`
      : '';
    hits.push(error(
      refused === 'ALTER TYPE ... ADD VALUE' ? 'alter-enum-add-value' : 'cannot-run-in-transaction',
      `${refused} cannot run inside a transaction block${extra}, so this migration fails; ${leaveTransactionAdvice(state)}`,
    ));
  }
  if (state.transactional && state.enumValuesInTransaction.size > 0 && kind !== 'AlterEnumStmt') {
    const value = usesValue(stmt, state.enumValuesInTransaction);
    if (value !== undefined) {
      hits.push(error(
        'alter-enum-add-value',
        `This statement uses the enum value '${value}' added earlier in the same transaction; PostgreSQL refuses that ("unsafe use of new value") until the ` +
          'ADD VALUE has committed. Add the value in a migration of its own and use it in a later one.',
      ));
    }
  }
  return hits;
};

function nestingHit(kind: string, state: LintState): Hit | null {
  const begins = kind === 'TRANS_STMT_BEGIN' || kind === 'TRANS_STMT_START';
  const ends = kind === 'TRANS_STMT_COMMIT' || kind === 'TRANS_STMT_ROLLBACK' || kind === 'TRANS_STMT_PREPARE';
  if (!begins && !ends) return null;
  const word = begins ? 'BEGIN' : kind === 'TRANS_STMT_ROLLBACK' ? 'ROLLBACK' : 'COMMIT';
  if (state.insideDo) {
    // PostgreSQL 11+ lets a DO block run at top level COMMIT; inside a transaction block it fails.
    if (begins || state.doInTransaction) {
      return error('transaction-nesting', `${word} inside a DO block${begins ? '' : ' that runs in a transaction'} fails ("invalid transaction termination"${begins ? ', or a syntax error' : ''}). Remove it.`);
    }
    return null;
  }
  if (state.migrationTransactional && !state.explicitBlockOpen) {
    const sql = state.fileType === 'sql' ? 'A .sql migration always runs inside node-pg-migrate\'s transaction' : 'node-pg-migrate already runs this migration in a transaction';
    const why = begins
      ? 'BEGIN only warns here, and a COMMIT meant for it would end that transaction early'
      : `${word} ends that transaction early: the statements after it, and node-pg-migrate recording the migration as run, happen outside it` +
        (word === 'ROLLBACK' ? ', after undoing what ran before' : '') + ', so a failure leaves the migration half-applied';
    const fix = state.fileType === 'sql'
      ? 'Remove it; to run statements outside a transaction, put them in a JS/TS migration that calls pgm.noTransaction().'
      : 'Remove it, and let node-pg-migrate manage the transaction (or call pgm.noTransaction() and keep each statement re-runnable).';
    return error('transaction-nesting', `${sql}: ${why}. ${fix}`);
  }
  if (begins && state.explicitBlockOpen) {
    return error('transaction-nesting', 'BEGIN inside the transaction this migration already opened only warns, and the next COMMIT ends both. Remove the inner BEGIN.');
  }
  if (ends && !state.explicitBlockOpen && !state.transactional) {
    return error('transaction-nesting', `${word} without a transaction in progress does nothing here; the BEGIN it belongs to is missing or was already ended. Remove it or add the BEGIN.`);
  }
  return null;
}

/** Checks that need the whole migration: a transaction it opened and never ended. */
export function endOfMigrationHits(state: LintState): Hit[] {
  if (!state.explicitBlockOpen || state.migrationTransactional) return [];
  return [error(
    'ban-uncommitted-transaction',
    'The migration opens a transaction (BEGIN) that it never commits: node-pg-migrate records the migration inside it, and whatever happens to the ' +
      'connection next decides whether any of it persists. End it with COMMIT (or drop the BEGIN and let node-pg-migrate manage the transaction).',
  )];
}

/**
 * A pgm.sql() string holding several statements reaches PostgreSQL as one
 * query, which runs as an implicit transaction block: CONCURRENTLY and the
 * other statements that refuse a block fail there even in a pgm.noTransaction()
 * migration.
 */
export function multiStatementHits(statements: Array<[kind: string, body: AstNode]>, state: LintState): Array<{ index: number; hit: Hit }> {
  if (statements.length < 2 || state.transactional) return [];
  return statements.flatMap(([kind, body], index) => {
    const what = concurrently(kind, body) ?? outsideOnly(kind, body, state.serverMajor);
    if (!what || !isRecord(body)) return [];
    return [{
      index,
      hit: error(
        'concurrently-in-multi-statement-query',
        `${what} is sent in one query string with ${statements.length - 1} other statement(s); PostgreSQL runs such a string as one implicit transaction, ` +
          `where ${what} fails. Give it a pgm.sql() call of its own (one statement per call).`,
      ),
    }];
  });
}
