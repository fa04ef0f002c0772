import type pg from 'pg';
import { one, rows } from '../../database/db.js';
import { relationFacts, sampleSettings, tableColumns, tableIndexKeys } from '../../database/sql/estimates.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { estimateBackup } from './estimate/backup.js';
import { migrationHistory } from './estimate/history.js';
import { indexKeysOf, parseNodes, tempTableOf, type IndexKeys } from './estimate/index-keys.js';
import { DEFAULT_RATES, fromDefaultRate, indexBuildFromSample, plannedIndexWorkers, rewriteFromSample, scanFromSample, TID_KEY, type Estimate } from './estimate/model.js';
import { rowCount } from './estimate/row-counts.js';
import { sampleTable, type TableSample } from './estimate/sample.js';
import type { UpComplete } from './rehearsal.js';
import type { ImpactEstimate, MigrationImpact, StatementEstimate, TableImpact } from './report.js';
import { analyzeStatements, type LockMode, type StatementImpact } from './sql-analysis/index.js';

const LOCK_ORDER: LockMode[] = [
  'none', 'ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'SHARE', 'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE',
];

function strongest(locks: LockMode[]): LockMode {
  return locks.reduce<LockMode>((max, l) => (LOCK_ORDER.indexOf(l) > LOCK_ORDER.indexOf(max) ? l : max), 'none');
}

interface Relation {
  name: string;
  oid: number;
  schema: string;
  relname: string;
  relkind: string;
  heap_bytes: number;
  toast_bytes: number;
  total_bytes: number;
  reltuples: number;
  n_live_tup: number | null;
  n_mod_since_analyze: number | null;
  index_of: number | null;
  index_table: string | null;
}

const TABLE_KINDS = new Set(['r', 'p', 'm', 'f']);

interface Analysed {
  impact: StatementImpact;
  keys: IndexKeys | null;
}

export interface ImpactOptions {
  control: pg.Pool;
  env: EnvironmentConfig;
}

/**
 * Estimates, per pending migration and in total, how long applying takes on
 * the real target and which locks each statement holds meanwhile. The
 * rehearsal ran on an empty copy, so its timings cover only the fixed cost;
 * work that grows with a table is estimated from a timed sample of that table
 * on the target (read-only), then scaled by this environment's measured
 * history. The total includes the pre-apply backup.
 */
export async function estimateImpact(target: pg.ClientBase, rehearsal: UpComplete, pending: string[], opts: ImpactOptions): Promise<ImpactEstimate> {
  const analyses = new Map<string, Analysed[]>();
  // Temporary tables the run creates live in the migration's session: they are not tables the target holds.
  const temporary = new Set<string>();
  for (const name of pending) {
    const trace = rehearsal.traces[name];
    if (!trace) continue;
    const impacts = await analyzeStatements(trace.statements);
    const nodes = await parseNodes(trace.statements);
    for (const node of nodes) {
      const temp = tempTableOf(node);
      if (temp) temporary.add(temp);
    }
    analyses.set(name, impacts.map((impact, i) => ({ impact, keys: nodes.length === impacts.length ? indexKeysOf(nodes[i] ?? null) : null })));
  }
  const all = [...analyses.values()].flat();
  const named = [...new Set(all.flatMap((a) => a.impact.tables))].filter((t) => !temporary.has(t)).sort();
  const facts = new Map((await rows<Relation>(target, relationFacts(named))).map((r) => [r.name, r]));
  const settings = await one<{ block_size: number; version_num: number; max_parallel_maintenance_workers: number; maintenance_work_mem_kb: number; min_parallel_table_scan_blocks: number }>(target, sampleSettings());
  const { version_num: versionNum, block_size: blockSize } = settings;
  const parallel = { maxParallelMaintenanceWorkers: settings.max_parallel_maintenance_workers, maintenanceWorkMemKb: settings.maintenance_work_mem_kb, minParallelTableScanBlocks: settings.min_parallel_table_scan_blocks };

  // Indexes are not tables: an index the target has, or one the run creates (or drops), is left out of "Tables touched".
  const runIndexes = new Set([
    ...(rehearsal.created?.indexes ?? []), ...(rehearsal.dropped?.indexes ?? []),
    ...all.flatMap((a) => (a.keys?.name ? [a.keys.name] : [])),
  ]);
  const isTable = (name: string) => {
    const f = facts.get(name);
    return f ? TABLE_KINDS.has(f.relkind) : !runIndexes.has(name);
  };
  // The table whose size a statement's work grows with: an index's own table for REINDEX INDEX and the like.
  const tableOf = (name: string) => {
    const f = facts.get(name);
    return f && !TABLE_KINDS.has(f.relkind) && f.index_table ? f.index_table : name;
  };

  const tables: TableImpact[] = [];
  for (const name of named.filter(isTable)) {
    const f = facts.get(name);
    if (!f) {
      tables.push({ table: name, exists: false, rows: 0, bytes: 0 });
      continue;
    }
    const count = await rowCount(target, { schema: f.schema, relname: f.relname, reltuples: f.reltuples, nLiveTup: f.n_live_tup, nModSinceAnalyze: f.n_mod_since_analyze });
    tables.push({ table: name, exists: true, rows: count.rows, rowsSource: count.source, bytes: f.total_bytes });
  }

  // One timed sample per existing table that size-dependent work touches, sorting by every key list it needs.
  const samples = new Map<string, TableSample | null>();
  const existingIndexes = new Map<string, Array<{ name: string; keys: string[]; method: string }>>();
  const validKeys = new Map<string, Set<string>>();
  const work = all.filter((a) => a.impact.rewritesTable || a.impact.buildsIndex || a.impact.scansTable);
  for (const name of [...new Set(work.flatMap((a) => a.impact.tables.map(tableOf)))]) {
    const f = facts.get(name);
    if (!f || !TABLE_KINDS.has(f.relkind)) continue;
    const columns = new Set((await rows<{ attname: string }>(target, tableColumns(f.oid))).map((c) => c.attname));
    validKeys.set(name, columns);
    const indexes = (await rows<{ name: string; method: string; columns: string[] }>(target, tableIndexKeys(f.oid))).map((i) => ({ name: `${f.schema}.${i.name}`.toLowerCase(), keys: i.columns, method: i.method }));
    existingIndexes.set(name, indexes);
    const onThis = work.filter((a) => a.impact.tables.map(tableOf).includes(name));
    const keyLists = [
      ...onThis.flatMap((a) => (a.keys ? [a.keys.columns.filter((c) => columns.has(c))] : [])),
      ...(onThis.some((a) => a.keys?.concurrent) ? [TID_KEY] : []),
      ...(onThis.some((a) => a.impact.rewritesTable || (a.impact.buildsIndex && !a.keys)) ? indexes.map((i) => i.keys) : []),
    ].filter((k) => k.length > 0);
    samples.set(name, await sampleTable(target, { schema: f.schema, relname: f.relname, pages: Math.ceil(f.heap_bytes / blockSize) }, keyLists, versionNum));
  }

  const history = await migrationHistory(opts.control, opts.env.name);
  const ratio = history?.ratio ?? 1;

  const estimateStatement = (a: Analysed): { estimate: Estimate; work: number } => {
    const parts: Estimate[] = [];
    const seen = new Set<string>();
    for (const named of a.impact.tables) {
      const name = tableOf(named);
      const f = facts.get(name);
      if (!f || !TABLE_KINDS.has(f.relkind) || seen.has(name)) continue;
      seen.add(name);
      const sample = samples.get(name) ?? null;
      const heap = f.heap_bytes + f.toast_bytes;
      const workers = plannedIndexWorkers(Math.ceil(f.heap_bytes / blockSize), parallel);
      // A statement on one index (REINDEX INDEX) rebuilds only that one.
      const ofTable = existingIndexes.get(name) ?? [];
      const indexes = named !== name ? ofTable.filter((i) => i.name === named) : ofTable;
      if (a.impact.rewritesTable) parts.push(sample ? rewriteFromSample(sample, indexes, workers) : fromDefaultRate(heap, DEFAULT_RATES.rewriteBytesPerSecond, 'table rewrite'));
      if (a.impact.buildsIndex) {
        const keys = a.keys?.columns.filter((c) => validKeys.get(name)?.has(c)) ?? [];
        if (sample && a.keys) parts.push(indexBuildFromSample(sample, keys, a.keys.method, a.keys.concurrent, workers));
        // REINDEX TABLE and the like rebuild every index of the table.
        else if (sample) parts.push(...indexes.map((i) => indexBuildFromSample(sample, i.keys, i.method, false, workers)));
        else parts.push(fromDefaultRate(heap, DEFAULT_RATES.indexBuildBytesPerSecond, 'index build'));
      }
      if (a.impact.scansTable) parts.push(sample ? scanFromSample(sample) : fromDefaultRate(heap, DEFAULT_RATES.scanBytesPerSecond, 'validating scan'));
    }
    const raw = parts.reduce((sum, p) => sum + p.ms, 0);
    return { work: raw, estimate: { ms: raw * ratio, basis: parts.map((p) => p.basis).join('; ') } };
  };

  const migrations: MigrationImpact[] = pending.map((name) => {
    const rehearsalMs = rehearsal.steps.find((s) => s.phase === 'up' && s.migration === name)?.durationMs ?? null;
    let workMs = 0;
    const statements: StatementEstimate[] = (analyses.get(name) ?? []).map((a) => {
      const s = a.impact;
      const { estimate, work } = estimateStatement(a);
      workMs += work;
      return {
        statement: s.statement, lock: s.lock, tables: s.tables, rewritesTable: s.rewritesTable, buildsIndex: s.buildsIndex, scansTable: s.scansTable,
        estimatedMs: Math.round(estimate.ms), ...(estimate.basis ? { basis: estimate.basis } : {}),
      };
    });
    return {
      migration: name,
      transactional: rehearsal.traces[name]?.transactional ?? true,
      rehearsalMs,
      workMs: Math.round(workMs),
      estimatedMs: Math.round((rehearsalMs ?? 0) + statements.reduce((sum, s) => sum + s.estimatedMs, 0)),
      strongestLock: strongest(statements.map((s) => s.lock as LockMode)),
      statements,
    };
  });
  const migrationsEstimatedMs = migrations.reduce((sum, m) => sum + m.estimatedMs, 0);
  const backup = await estimateBackup(target, opts.control, opts.env);
  const sampledTables = [...samples.entries()].filter(([, s]) => s !== null).map(([n]) => n);
  const summary = [
    sampledTables.length ? `timed samples of ${sampledTables.join(', ')} on the target` : 'no table needed a sample',
    history ? `× ${history.ratio} from ${history.migrations} measured migration(s) of ${opts.env.name}` : `no measured history of ${opts.env.name} yet`,
    `backup from ${backup.calibration === 'history' ? 'measured backups' : 'a default rate'}`,
  ].join('; ');
  return {
    tables,
    migrations,
    migrationsEstimatedMs,
    backup,
    calibration: { sampledTables, history, summary },
    totalEstimatedMs: migrationsEstimatedMs + backup.estimatedMs,
    assumptions:
      'Rehearsal time on an empty copy plus, per touched table on the target, its size-dependent work: index builds as a read of the heap, a sort of the keys (n·log n) and the write of the index, ' +
      'rewrites as heap read and write plus index rebuilds, validating scans as one read, each scaled from a timed read-only sample of the table ' +
      `(tables too small to sample, or whose sample timed out, at default rates), then by the measured-over-estimated ratio of this environment's earlier migrations. ` +
      `Plus the pre-apply backup: ${backup.basis}. Calibration used: ${summary}. Lock waits are not included.`,
  };
}
