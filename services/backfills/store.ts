import type pg from 'pg';
import { exec, one, rows } from '../../database/db.js';
import {
  insertBackfillEvent, insertReceipts, mirrorEventToControl, unmirroredEvents, type BackfillEventRow, type NewBackfillEvent,
} from '../../database/sql/backfill-events.js';
import type { JobRow } from '../../database/sql/backfill-jobs.js';
import { backfillSchemaExists, createBackfillSchema, lockBackfillSchema } from '../../database/sql/backfill-schema.js';

// The job table's helpers shared by the API service and the executor: the
// schema on the target, the audit event of a state change, the job as the API
// shows it, and the copy of the target's audit events into the control database.

/** Creates the sfm_backfill schema on the target once; replicas serialise on an advisory lock. */
export async function ensureBackfillSchema(client: pg.ClientBase): Promise<void> {
  if ((await one<{ exists: boolean }>(client, backfillSchemaExists())).exists) return;
  await client.query('BEGIN');
  try {
    await exec(client, lockBackfillSchema());
    // Another replica may have created it while this one waited for the lock.
    if (!(await one<{ exists: boolean }>(client, backfillSchemaExists())).exists) await exec(client, createBackfillSchema());
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

export async function schemaExists(client: pg.ClientBase): Promise<boolean> {
  return (await one<{ exists: boolean }>(client, backfillSchemaExists())).exists;
}

/** Appends the audit event of a state change inside the caller's (target) transaction. */
export async function appendBackfillEvent(client: pg.ClientBase, event: NewBackfillEvent): Promise<void> {
  await exec(client, insertBackfillEvent(event));
}

/**
 * Copies the target's audit events that are not in the control database yet
 * into run_events, oldest first, then records receipts on the target. Every
 * step is idempotent (a unique index on the event id in run_events, ON
 * CONFLICT on the receipts), so a crash between the two, or two replicas
 * copying at once, neither loses nor duplicates an event. Returns how many
 * events it looked at.
 */
export async function mirrorEvents(target: pg.ClientBase, control: pg.Pool, limit = 200): Promise<number> {
  const pending = await rows<BackfillEventRow>(target, unmirroredEvents(limit));
  if (!pending.length) return 0;
  const client = await control.connect();
  try {
    await client.query('BEGIN');
    try {
      for (const event of pending) await exec(client, mirrorEventToControl(event));
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  } finally {
    client.release();
  }
  await exec(target, insertReceipts(pending.map((e) => e.seq)));
  return pending.length;
}

export interface BackfillJob {
  id: string;
  environment: string;
  name: string;
  status: JobRow['status'];
  description: string | null;
  table: string;
  keyColumn: string;
  definitionSha256: string;
  failuresOf: string | null;
  batchSize: number;
  maxRowsPerSecond: number | null;
  windowOnly: boolean;
  lastKey: string | null;
  rowsDone: number;
  rowsFailed: number;
  rowsScanned: number;
  batches: number;
  openFailures: number;
  remainingRows: number | null;
  remainingAt: string | null;
  progress: number | null;
  rowsPerSecond: number | null;
  maxBatchMs: number | null;
  waiting: string | null;
  lease: { owner: string; expiresAt: string } | null;
  createdBy: string;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  lastError: string | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const num = (v: string | number | null | undefined) => (v === null || v === undefined ? null : Number(v));

/**
 * Done over (done + still to do): from the definition's remaining-rows count
 * when there is one, else keys visited over the table's estimated size; 1 once
 * the job succeeded.
 */
export function progressOf(row: JobRow): number | null {
  if (row.status === 'succeeded') return 1;
  const scanned = Number(row.rows_scanned);
  const remaining = num(row.remaining_rows);
  let ratio: number | null = null;
  if (remaining !== null) ratio = scanned + remaining > 0 ? scanned / (scanned + remaining) : 0;
  else if (row.total_estimate !== null) ratio = Math.max(scanned, Number(row.total_estimate)) > 0 ? scanned / Math.max(scanned, Number(row.total_estimate)) : 0;
  return ratio === null ? null : Math.min(1, Math.round(ratio * 10_000) / 10_000);
}

export function presentJob(row: JobRow): BackfillJob {
  const leased = row.lease_owner !== null && row.lease_expires_at !== null;
  return {
    id: row.id,
    environment: row.environment,
    name: row.name,
    status: row.status,
    description: row.definition.description ?? null,
    table: row.definition.table,
    keyColumn: row.definition.keyColumn,
    definitionSha256: row.definition.sha256,
    failuresOf: row.failures_of,
    batchSize: row.batch_size,
    maxRowsPerSecond: row.max_rows_per_second,
    windowOnly: row.window_only,
    lastKey: row.last_key,
    rowsDone: Number(row.rows_done),
    rowsFailed: Number(row.rows_failed),
    rowsScanned: Number(row.rows_scanned),
    batches: Number(row.batches),
    openFailures: Number(row.failures_open ?? 0),
    remainingRows: num(row.remaining_rows),
    remainingAt: iso(row.remaining_at),
    progress: progressOf(row),
    rowsPerSecond: row.rows_per_second === null ? null : Math.round(row.rows_per_second * 10) / 10,
    maxBatchMs: row.max_batch_ms,
    waiting: row.waiting,
    lease: leased ? { owner: row.lease_owner!, expiresAt: row.lease_expires_at!.toISOString() } : null,
    createdBy: row.created_by,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    lastError: row.last_error,
  };
}
