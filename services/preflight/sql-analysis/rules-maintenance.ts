import { arr, flag, nodesOf, num, rec, relationName, str } from './ast.js';
import { outsideTransactionHome } from './advice.js';
import { lockModeFromNumber } from './lock-modes.js';
import type { LintState } from './lint-state.js';
import { alterTableCmds, error, type Hit, type Rule } from './rule.js';
import { hasOption } from './statement-fields.js';

// Maintenance commands and storage changes that hold a strong lock on an
// existing relation for as long as they copy or scan it. Relations this
// migration created are empty and exempt.

const REPACK =
  'Run it outside migrations with a tool that rewrites online (pg_repack or pg_squeeze; REPACK (CONCURRENTLY) on PostgreSQL 19+), ' +
  'or schedule it in a maintenance window and acknowledge it.';

function existingOrUnnamed(state: LintState, table: string | undefined): boolean {
  return table === undefined || state.isExisting(table);
}

function reindexHit(stmt: Record<string, unknown>, state: LintState): Hit | null {
  const kind = str(stmt, 'kind');
  // REINDEX SYSTEM cannot run concurrently at all.
  if (kind === 'REINDEX_OBJECT_SYSTEM' || hasOption(stmt, 'params', 'concurrently')) return null;
  const relation = relationName(rec(stmt, 'relation'));
  if (kind === 'REINDEX_OBJECT_TABLE' && !state.isExisting(relation)) return null;
  if (kind === 'REINDEX_OBJECT_INDEX' && relation !== undefined && state.isIndexOnNewTable(relation)) return null;
  const target = relation ?? str(stmt, 'name') ?? '';
  const what = kind === 'REINDEX_OBJECT_INDEX' ? `index ${target}` : kind === 'REINDEX_OBJECT_TABLE' ? `table ${target}` : `every index in ${target}`;
  return error(
    'require-concurrent-reindex',
    `REINDEX of ${what} blocks writes to the table (SHARE lock) and every query that would use the rebuilt index (ACCESS EXCLUSIVE on it) until it finishes. ` +
      `Use REINDEX ... CONCURRENTLY ${outsideTransactionHome(state)}.`,
  );
}

export const maintenanceRules: Rule = (kind, stmt, state) => {
  const hits: Hit[] = [];
  const relation = relationName(rec(stmt, 'relation'));
  switch (kind) {
    case 'ReindexStmt': {
      const hit = reindexHit(stmt, state);
      if (hit) hits.push(hit);
      break;
    }
    case 'VacuumStmt': {
      if (!flag(stmt, 'is_vacuumcmd') || !hasOption(stmt, 'options', 'full')) break;
      const tables = nodesOf(arr(stmt, 'rels'), 'VacuumRelation').map((r) => relationName(rec(r, 'relation')));
      if (tables.length > 0 && !tables.some((t) => existingOrUnnamed(state, t))) break;
      hits.push(error(
        'ban-vacuum-full',
        `VACUUM FULL ${tables.length ? tables.join(', ') : '(every table)'} rewrites each table and its indexes under an ACCESS EXCLUSIVE lock: no reads or writes until it finishes. ${REPACK}`,
      ));
      break;
    }
    case 'ClusterStmt':
      if (!existingOrUnnamed(state, relation)) break;
      hits.push(error(
        'ban-cluster',
        `CLUSTER ${relation ?? '(every previously clustered table)'} rewrites the table and its indexes under an ACCESS EXCLUSIVE lock: no reads or writes until it finishes. ${REPACK}`,
      ));
      break;
    case 'RefreshMatViewStmt': {
      if (flag(stmt, 'concurrent') || !state.isExisting(relation)) break;
      const why = flag(stmt, 'skipData')
        ? 'WITH NO DATA empties it under an ACCESS EXCLUSIVE lock, and every query on it fails until the next refresh'
        : 'holds an ACCESS EXCLUSIVE lock on it for the whole refresh: every query on it waits';
      hits.push(error(
        'require-concurrent-refresh',
        `REFRESH MATERIALIZED VIEW ${relation} ${why}. Use REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index on the view, ` +
          'and only blocks other refreshes), or refresh it outside migrations.',
      ));
      break;
    }
    case 'LockStmt': {
      const mode = lockModeFromNumber(num(stmt, 'mode') ?? 8);
      const tables = arr(stmt, 'relations').map((r) => relationName(rec(r, 'RangeVar'))).filter((t): t is string => state.isExisting(t));
      if ((num(stmt, 'mode') ?? 8) < 5 || tables.length === 0) break;
      const blocks = mode === 'ACCESS EXCLUSIVE' ? 'every read and write' : 'every write';
      hits.push(error(
        'ban-lock-table',
        `LOCK TABLE ${tables.join(', ')} IN ${mode} MODE blocks ${blocks} on it until the migration's transaction ends, however long the statements after it take. ` +
          'Let each statement take the lock it needs (the service applies with lock_timeout and retries); if the explicit lock is there to fix a lock order, ' +
          'acknowledge it with a lint-ack comment giving the reason.',
      ));
      break;
    }
    case 'AlterTableMoveAllStmt':
      hits.push(error(
        'ban-set-tablespace',
        `ALTER ... ALL IN TABLESPACE ${str(stmt, 'orig_tablespacename')} SET TABLESPACE copies every relation in it, each under an ACCESS EXCLUSIVE lock. ` +
          'Move relations outside migrations (pg_repack --tablespace rewrites online), or in a maintenance window.',
      ));
      break;
    case 'AlterTableStmt':
      hits.push(...alterTableHits(stmt, state));
      break;
  }
  return hits;
};

function alterTableHits(stmt: Record<string, unknown>, state: LintState): Hit[] {
  const objtype = str(stmt, 'objtype');
  const relation = relationName(rec(stmt, 'relation'));
  const existing = objtype === 'OBJECT_INDEX' ? relation !== undefined && !state.isIndexOnNewTable(relation) : state.isExisting(relation);
  if (!existing) return [];
  const hits: Hit[] = [];
  for (const cmd of alterTableCmds(stmt)) {
    const subtype = str(cmd, 'subtype');
    if (subtype === 'AT_SetTableSpace') {
      hits.push(error(
        'ban-set-tablespace',
        `SET TABLESPACE ${str(cmd, 'name')} copies ${relation} block by block under an ACCESS EXCLUSIVE lock: no reads or writes until the copy ends. ` +
          'Move it outside migrations (pg_repack --tablespace rewrites online), or in a maintenance window.',
      ));
    } else if (subtype === 'AT_SetLogged' || subtype === 'AT_SetUnLogged') {
      const word = subtype === 'AT_SetLogged' ? 'SET LOGGED' : 'SET UNLOGGED';
      const extra = subtype === 'AT_SetLogged' ? ', and writes all of it to the WAL' : '; an unlogged table is also emptied after a crash and not replicated';
      hits.push(error(
        'ban-set-logged-unlogged',
        `${word} rewrites ${relation} under an ACCESS EXCLUSIVE lock${extra}. Create the table with the persistence it needs, ` +
          'or copy the data into a new table in batches and swap the names.',
      ));
    } else if (subtype === 'AT_DetachPartition' && !flag(rec(rec(cmd, 'def'), 'PartitionCmd'), 'concurrent')) {
      const partition = relationName(rec(rec(rec(cmd, 'def'), 'PartitionCmd'), 'name')) ?? 'the partition';
      hits.push(error(
        'require-concurrent-partition-detach',
        `DETACH PARTITION ${partition} takes an ACCESS EXCLUSIVE lock on ${relation}: every query on the partitioned table waits. ` +
          `Use DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+) ${outsideTransactionHome(state)}.`,
      ));
    }
  }
  return hits;
}
