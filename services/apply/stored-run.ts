import type pg from 'pg';
import { maybeOne } from '../../database/db.js';
import { selectRun, type RunRow } from '../../database/sql/runs.js';
import { notFound } from '../errors.js';
import type { ApplyState } from './apply-state.js';

/** A run as the apply reads it: the row with its apply state (phase, pauses, watch, report so far). */
export type StoredRun = RunRow & { apply_state: ApplyState };

/** The run, or a 404 naming it. */
export async function loadStoredRun(control: pg.Pool, runId: string): Promise<StoredRun> {
  const run = await maybeOne<StoredRun>(control, selectRun(runId));
  if (!run) throw notFound(`Run ${runId} does not exist.`);
  return run;
}
