import { maybeOne, rows } from '../../database/db.js';
import { backupOfRun } from '../../database/sql/apply.js';
import { userTables } from '../../database/sql/preflight.js';
import { latestReport } from '../../database/sql/reports.js';
import { selectRun, type RunRow } from '../../database/sql/runs.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { backupTables, type BackupRecord } from '../apply/backup.js';
import type { ServiceContext } from '../context.js';
import { conflict, notFound } from '../errors.js';
import { readAppliedMigrations } from '../migrations/pending.js';
import type { PreflightReport } from '../preflight/report.js';
import { windowForApply } from '../scheduler/policy.js';
import { measure } from './counts.js';
import { downVerdicts, irreversibleBlocker } from './reversibility.js';
import { planDigest } from './digest.js';
import { destructionOf } from './drops.js';
import type { AtRisk, DownPlan, RestorePlan, RollbackPlan, TableWrites, WindowState } from './types.js';
import { countersOfBackup, readWriteCounters, type CounterSnapshot } from './write-counters.js';

type PlanRun = RunRow & { apply_state: { applied?: string[] } };
type RehearsalWithDown = NonNullable<PreflightReport['rehearsal']> & { downStatements?: Record<string, string[]> };

const span = (w: { start: Date; end: Date } | null) => (w ? { start: w.start.toISOString(), end: w.end.toISOString() } : null);

export function rollbackWindow(env: EnvironmentConfig, now: Date): WindowState {
  const slot = windowForApply(env, now);
  return { hasWindows: env.windows.length > 0, open: slot.open, current: span(slot.window), next: span(slot.next) };
}

/** The run's migrations that are on the target by its own record, in the order they were applied. */
function appliedByRun(run: PlanRun) {
  const names = run.apply_state.applied ?? [];
  return run.migrations.filter((m) => names.includes(m.name));
}

async function planDown(ctx: ServiceContext, run: PlanRun, env: EnvironmentConfig, blockers: string[], notes: string[]): Promise<DownPlan> {
  const mine = appliedByRun(run);
  const preflight = await maybeOne<{ body: PreflightReport }>(ctx.control, latestReport(run.id, 'preflight'));
  const rehearsal = (preflight?.body.rehearsal ?? null) as RehearsalWithDown | null;
  const verdicts = downVerdicts(rehearsal, [...mine].reverse().map((m) => m.name));
  const migrations = verdicts.map((v) => ({
    name: v.name,
    reversible: v.reversible,
    sql: rehearsal?.downStatements?.[v.name] ?? null,
    ...(v.why ? { why: v.why } : {}),
  }));
  if (mine.length === 0) blockers.push('this run applied no migration, so there is nothing to revert (use restore if a partial change landed)');
  const irreversible = irreversibleBlocker(run.id, verdicts);
  if (irreversible) blockers.push(irreversible);
  const missing = migrations.filter((m) => m.sql === null).map((m) => m.name);
  if (missing.length) notes.push(`The down SQL of ${missing.join(', ')} was not captured (the preflight predates capturing it), so what it drops is not listed.`);

  return ctx.targets.withClient(env, async (client) => {
    const applied = await readAppliedMigrations(client, env);
    const tail = applied.slice(-mine.length).map((a) => a.name);
    if (mine.length && tail.join() !== mine.map((m) => m.name).join()) {
      blockers.push(`the target's latest migrations are ${tail.join(', ') || 'none'}, not this run's (${mine.map((m) => m.name).join(', ')}); later changes sit on top`);
    }
    const drops: AtRisk[] = [];
    for (const m of migrations) {
      if (!m.sql) continue;
      const found = await destructionOf(m.name, m.sql);
      if (found.unparsed.length) notes.push(`Could not parse part of the down SQL of ${m.name}; check it by eye: ${found.unparsed.join(' ')}`);
      for (const d of found.drops) {
        const measured = await measure(client, d);
        drops.push({ kind: d.kind, migration: d.migration, table: d.table, column: d.column, statement: d.statement, ...measured });
      }
    }
    return { migrations, drops };
  });
}

/** Writes per table between two counter snapshots; tables absent from the first count from zero. */
export function writesBetween(before: CounterSnapshot, after: CounterSnapshot, exclude: readonly string[]): { tables: TableWrites[]; reset: string[] } {
  const tables: TableWrites[] = [];
  const reset: string[] = [];
  for (const [table, now] of Object.entries(after.counters)) {
    if (exclude.includes(table)) continue;
    const then = before.counters[table];
    let [ins, upd, del] = then ? [now[0] - then[0], now[1] - then[1], now[2] - then[2]] : now;
    // Counters that went down: the table was dropped and created again (or its stats reset) since the backup.
    if (ins < 0 || upd < 0 || del < 0) {
      reset.push(table);
      [ins, upd, del] = now;
    }
    if (ins + upd + del > 0) tables.push({ table, inserted: ins, updated: upd, deleted: del, sinceCreated: !then || reset.includes(table) });
  }
  tables.sort((a, b) => b.inserted + b.updated + b.deleted - (a.inserted + a.updated + a.deleted) || a.table.localeCompare(b.table));
  return { tables, reset };
}

async function planRestore(ctx: ServiceContext, run: PlanRun, env: EnvironmentConfig, now: Date, blockers: string[], notes: string[]): Promise<RestorePlan | null> {
  const row = await maybeOne<{ id: string; method: 'pg_dump' | 'external'; location: string | null; size_bytes: string | null; sha256: string | null; created_at: Date; verified_at: Date | null }>(ctx.control, backupOfRun(run.id));
  if (!row) {
    blockers.push(`run ${run.id} has no verified backup to restore`);
    return null;
  }
  if (env.backup.method === 'external' && !env.backup.restoreCommand) blockers.push(`${env.name} has no backup.restoreCommand: restore the snapshot with your provider's tooling`);
  const record: BackupRecord = {
    id: row.id, method: row.method, location: row.location, sizeBytes: row.size_bytes === null ? null : Number(row.size_bytes),
    sha256: row.sha256, createdAt: row.created_at.toISOString(), verifiedAt: row.verified_at?.toISOString() ?? null,
  };
  const before = await countersOfBackup(ctx.control, record.id);
  const inBackup = await backupTables(record).catch((err: Error) => {
    notes.push(`Could not list the tables in the backup (${err.message}); tables created after it are not listed.`);
    return null;
  });
  if (record.method === 'external') notes.push('Tables created after an external snapshot cannot be detected here; the restore may drop more than listed.');
  const qualifiedMigrationsTable = `${env.migrationsSchema}.${env.migrationsTable}`;
  return ctx.targets.withClient(env, async (client) => {
    const after = await readWriteCounters(client);
    const writes: RestorePlan['writesSinceBackup'] = { known: false, countersTakenAt: before?.takenAt ?? null, tables: [], total: { inserted: 0, updated: 0, deleted: 0 }, note: null };
    if (!before) {
      writes.note = 'No write counters were recorded with this backup (taken before they were), so the writes since it cannot be counted.';
    } else if (before.statsReset !== after.statsReset) {
      writes.note = `The target's statistics were reset (${after.statsReset ?? 'unknown time'}) after the backup, so the writes since it cannot be counted.`;
    } else {
      const { tables, reset } = writesBetween(before, after, [qualifiedMigrationsTable]);
      writes.known = true;
      writes.tables = tables;
      for (const t of tables) {
        writes.total.inserted += t.inserted;
        writes.total.updated += t.updated;
        writes.total.deleted += t.deleted;
      }
      writes.note = reset.length ? `${reset.join(', ')} restarted counting since the backup (dropped and created again?): all of their counted writes are listed.` : null;
    }
    const tablesDropped: AtRisk[] = [];
    if (inBackup) {
      const present = (await rows<{ name: string }>(client, userTables())).map((r) => r.name);
      for (const table of present.filter((t) => !inBackup.includes(t))) {
        tablesDropped.push({ kind: 'table', migration: null, table, column: null, statement: null, ...(await measure(client, { table, column: null })) });
      }
    }
    return {
      backup: { id: record.id, method: record.method, createdAt: record.createdAt, verifiedAt: record.verifiedAt, ageSeconds: Math.max(0, Math.round((now.getTime() - Date.parse(record.createdAt)) / 1000)), sizeBytes: record.sizeBytes },
      writesSinceBackup: writes,
      tablesDropped,
    };
  });
}

/**
 * What a rollback of the run would do, read now: for `down` the SQL of each
 * down migration (from the rehearsal), which are reversible and what they
 * drop with exact bounded row counts and sizes; for `restore` the backup's
 * age, the writes since it that would be lost and the tables it would drop.
 */
export async function planRollback(ctx: ServiceContext, runId: string, mode: 'down' | 'restore', now = new Date()): Promise<RollbackPlan> {
  const run = await maybeOne<PlanRun>(ctx.control, selectRun(runId));
  if (!run) throw notFound(`Run ${runId} does not exist.`);
  const env = ctx.config.environments[run.environment];
  if (!env) throw conflict(`Environment "${run.environment}" is no longer configured.`);
  const blockers: string[] = [];
  const notes: string[] = [];
  const down = mode === 'down' ? await planDown(ctx, run, env, blockers, notes) : null;
  const restore = mode === 'restore' ? await planRestore(ctx, run, env, now, blockers, notes) : null;
  const body = { runId, environment: env.name, mode, blockers, down, restore };
  return { ...body, computedAt: now.toISOString(), digest: planDigest(body), window: rollbackWindow(env, now), notes };
}
