import { exec, maybeOne, one, rows, transaction } from '../../database/db.js';
import { deleteLedger, mergeApplyState } from '../../database/sql/apply.js';
import { dropTable, setSessionTimeouts } from '../../database/sql/apply-target.js';
import { userTables } from '../../database/sql/preflight.js';
import { relationOids, restoreBackupOfRun } from '../../database/sql/recovery.js';
import type { RunRow } from '../../database/sql/runs.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { appendEvent } from '../audit.js';
import { runApplicationName } from '../child-processes.js';
import type { ServiceContext } from '../context.js';
import type { ApplyState } from './apply-state.js';
import { backupTables, type BackupRecord } from './backup.js';
import { reassertPause, type EtlControlRow, type PauseState } from './workers.js';

interface BackupRow {
  id: string;
  method: 'pg_dump' | 'external';
  location: string | null;
  size_bytes: string | null;
  sha256: string | null;
  created_at: Date;
  verified_at: Date | null;
}

/**
 * The backup to restore: the newest verified one taken while none of the
 * run's migrations was on the target (a re-apply takes another backup after
 * some had landed, which would not undo them), else the newest verified one.
 */
export async function restoreBackupFor(ctx: ServiceContext, run: RunRow & { apply_state: ApplyState }): Promise<BackupRecord | null> {
  const row = await maybeOne<BackupRow>(ctx.control, restoreBackupOfRun(run.id, run.apply_state.rollback?.backupId ?? run.apply_state.pristineBackupId ?? null));
  if (!row) return null;
  return {
    id: row.id, method: row.method, location: row.location, sizeBytes: row.size_bytes === null ? null : Number(row.size_bytes),
    sha256: row.sha256, createdAt: row.created_at.toISOString(), verifiedAt: row.verified_at?.toISOString() ?? null,
  };
}

/**
 * The object ids of the backup's tables now: pg_restore --clean drops and
 * recreates every one of them in its single transaction, so after a crash a
 * changed id proves the restore committed, and unchanged ids prove it did not.
 */
export async function tableOids(ctx: ServiceContext, env: EnvironmentConfig, record: BackupRecord): Promise<Record<string, string | null> | null> {
  const tables = await backupTables(record);
  if (tables === null || tables.length === 0) return null;
  const found = await ctx.targets.withClient(env, (client) => rows<{ name: string; oid: string | null }>(client, relationOids(tables)));
  return Object.fromEntries(found.map((r) => [r.name, r.oid === null ? null : String(r.oid)]));
}

/** Whether the restore recorded in `before` committed: true, false, or null when it cannot be told. */
export async function restoreCommitted(ctx: ServiceContext, env: EnvironmentConfig, before: Record<string, string | null> | undefined): Promise<boolean | null> {
  if (!before || Object.keys(before).length === 0) return null;
  const now = await ctx.targets.withClient(env, (client) => rows<{ name: string; oid: string | null }>(client, relationOids(Object.keys(before))));
  return now.some((r) => (r.oid === null ? null : String(r.oid)) !== before[r.name]);
}

/**
 * pg_restore --clean only replaces what the backup holds: tables the run
 * created after the backup would survive a restore (and a re-apply would then
 * fail on them). Drop them, so the target is the backup again.
 */
export async function dropTablesNotInBackup(ctx: ServiceContext, env: EnvironmentConfig, record: BackupRecord, line: (l: string) => void): Promise<string[]> {
  const inBackup = await backupTables(record);
  if (inBackup === null) return [];
  return ctx.targets.withClient(env, async (client) => {
    const now = (await rows<{ name: string }>(client, userTables())).map((r) => r.name);
    const extra = now.filter((t) => !inBackup.includes(t));
    if (extra.length === 0) return [];
    await client.query('BEGIN');
    try {
      await one(client, setSessionTimeouts(env.lockTimeoutMs, env.statementTimeoutMs));
      for (const name of extra) {
        const [schema, table] = name.split('.') as [string, string];
        await exec(client, dropTable(client.escapeIdentifier(schema), client.escapeIdentifier(table)));
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    line(`dropped ${extra.length} table(s) created after the backup: ${extra.join(', ')}`);
    return extra;
  });
}

export interface EtlAfterRestore {
  /** etl_control as the backup carried it (null: no such table). */
  backupCarried: EtlControlRow | null;
  /** What was done about it, in words. */
  action: string;
}

/**
 * The backup was taken after the apply paused the ETL, so pg_restore brings
 * back `paused = true` (the apply's pause). The restore knows its own pause
 * and the apply's: it puts etl_control back to what its own pause left
 * (its pause, or an operator's pause it found), so the resume at the end
 * leaves the ETL as it was before the restore: running unless someone had paused it.
 */
export async function resetEtlAfterRestore(ctx: ServiceContext, env: EnvironmentConfig, run: RunRow & { apply_state: ApplyState }, pause: PauseState | null, actor: string, line: (l: string) => void): Promise<EtlAfterRestore> {
  if (!pause || pause.method !== 'sql') return { backupCarried: null, action: pause ? `workers are paused with the ${pause.method} method; the backup does not hold their state` : 'workers were not paused' };
  const carried = await reassertPause(pause, {
    environment: env, targetUrl: ctx.targets.url(env), runId: run.id, actor, reason: pause.pauseReason ?? `restore of run ${run.id}`, log: line,
    applicationName: runApplicationName(run.id, 'cleanup'),
  });
  if (!carried) return { backupCarried: null, action: 'no etl_control on the target' };
  const apply = run.apply_state.pauses ?? [];
  const fromApply = carried.paused && apply.some((p) => p.pausedBy === carried.changedBy && p.pauseReason === carried.reason);
  const what = !carried.paused
    ? 'the backup had the ETL running'
    : fromApply ? `the backup carried the apply's pause (by ${carried.changedBy}: ${carried.reason}), taken before the backup`
      : `the backup carried a pause by ${carried.changedBy ?? 'someone'} (${carried.reason ?? 'no reason given'})`;
  const action = pause.previous
    ? `${what}; the ETL was paused by ${pause.previous.changedBy ?? 'someone'} before the restore (${pause.previous.reason ?? 'no reason given'}), so that pause is put back and left in place`
    : `${what}; replaced by the restore's own pause, which is lifted when the restore ends, so the ETL runs as it did before the restore`;
  line(action);
  return { backupCarried: carried, action };
}

/**
 * What follows a committed pg_restore: the tables created after the backup
 * dropped, the ETL pause put right, the run's migrations out of the ledger.
 * Idempotent, so a reconciler can finish a restore whose process died.
 */
export async function completeRestore(ctx: ServiceContext, env: EnvironmentConfig, run: RunRow & { apply_state: ApplyState }, record: BackupRecord, pause: PauseState | null, actor: string, line: (l: string) => void) {
  const dropped = await dropTablesNotInBackup(ctx, env, record, line);
  const etl = await resetEtlAfterRestore(ctx, env, run, pause, actor, line);
  await transaction(ctx.control, async (client) => {
    for (const m of run.migrations) await exec(client, deleteLedger(env.name, m.name));
    await exec(client, mergeApplyState(run.id, { applied: [] }));
    await appendEvent(client, { runId: run.id, environment: env.name, type: 'backup.restored', actor, details: { backupId: record.id, dropped, etl: etl.action } });
  });
  return { dropped, etl };
}
