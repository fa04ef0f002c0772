import type pg from 'pg';
import { rows } from '../../database/db.js';
import { tableStats } from '../../database/sql/preflight.js';
import type { RehearsalResult } from './rehearsal.js';
import type { ImpactEstimate, MigrationImpact, StatementEstimate, TableImpact } from './report.js';
import { analyzeStatements, type LockMode } from './sql-analysis/index.js';

// Conservative single-core throughputs for work that grows with table size
// on the target; the rehearsal ran on an empty copy, so its timings cover
// only the fixed cost.
const REWRITE_BYTES_PER_SECOND = 50 * 1024 * 1024;
const INDEX_BUILD_BYTES_PER_SECOND = 25 * 1024 * 1024;
const SCAN_BYTES_PER_SECOND = 200 * 1024 * 1024;
const ASSUMPTIONS =
  'Rehearsal time on an empty copy plus, per touched table (pg_total_relation_size on the target): ' +
  'table rewrites at 50 MiB/s, index builds at 25 MiB/s, validating scans at 200 MiB/s. Lock waits are not included.';

const LOCK_ORDER: LockMode[] = [
  'none', 'ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE',
];

function strongest(locks: LockMode[]): LockMode {
  return locks.reduce<LockMode>((max, l) => (LOCK_ORDER.indexOf(l) > LOCK_ORDER.indexOf(max) ? l : max), 'none');
}

const perSecond = (bytes: number, rate: number) => (bytes / rate) * 1000;

/**
 * Estimates, per pending migration and in total, how long applying takes on
 * the real target and which locks each statement holds meanwhile.
 */
export async function estimateImpact(target: pg.ClientBase, rehearsal: RehearsalResult, pending: string[]): Promise<ImpactEstimate> {
  const analyses = new Map<string, Awaited<ReturnType<typeof analyzeStatements>>>();
  for (const name of pending) {
    const trace = rehearsal.traces[name];
    if (trace) analyses.set(name, await analyzeStatements(trace.statements));
  }
  const touched = [...new Set([...analyses.values()].flat().flatMap((s) => s.tables))].sort();
  const stats = await rows<{ name: string; rows: string; bytes: string }>(target, tableStats(touched));
  const tables: TableImpact[] = touched.map((table) => {
    const s = stats.find((r) => r.name === table);
    return { table, exists: s !== undefined, rows: s ? Number(s.rows) : 0, bytes: s ? Number(s.bytes) : 0 };
  });
  const bytesOf = (names: string[]) => names.reduce((sum, n) => sum + (tables.find((t) => t.table === n)?.bytes ?? 0), 0);

  const migrations: MigrationImpact[] = pending.map((name) => {
    const rehearsalMs = rehearsal.steps.find((s) => s.phase === 'up' && s.migration === name)?.durationMs ?? null;
    const statements: StatementEstimate[] = (analyses.get(name) ?? []).map((s) => {
      const bytes = bytesOf(s.tables);
      const estimatedMs =
        (s.rewritesTable ? perSecond(bytes, REWRITE_BYTES_PER_SECOND) : 0) +
        (s.buildsIndex ? perSecond(bytes, INDEX_BUILD_BYTES_PER_SECOND) : 0) +
        (s.scansTable ? perSecond(bytes, SCAN_BYTES_PER_SECOND) : 0);
      return { statement: s.statement, lock: s.lock, tables: s.tables, rewritesTable: s.rewritesTable, buildsIndex: s.buildsIndex, scansTable: s.scansTable, estimatedMs: Math.round(estimatedMs) };
    });
    const estimatedMs = Math.round((rehearsalMs ?? 0) + statements.reduce((sum, s) => sum + s.estimatedMs, 0));
    return {
      migration: name,
      transactional: rehearsal.traces[name]?.transactional ?? true,
      rehearsalMs,
      estimatedMs,
      strongestLock: strongest(statements.map((s) => s.lock as LockMode)),
      statements,
    };
  });
  return { tables, migrations, totalEstimatedMs: migrations.reduce((sum, m) => sum + m.estimatedMs, 0), assumptions: ASSUMPTIONS };
}
