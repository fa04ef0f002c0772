// Calibration from this environment's own history: how long its earlier
// migrations and backups really took against what was predicted. Measured
// where they ran (services/apply/timings.ts records them).
import type pg from 'pg';
import { rows } from '../../../database/db.js';
import { recentBackupTimings, recentMigrationTimings } from '../../../database/sql/estimates.js';

/** Only migrations whose size-dependent work was predicted at least this long say something about the model. */
const MIN_WORK_MS = 500;
const HISTORY_MIGRATIONS = 20;
const HISTORY_BACKUPS = 5;
/** A ratio outside this range is more likely a one-off (a lock wait, a cold cache) than the server's speed. */
const RATIO_BOUNDS = [1 / 3, 3] as const;

export interface HistoryCalibration {
  /** Measured size-dependent time over predicted: what later predictions are multiplied by. */
  ratio: number;
  /** Measured migrations the ratio is taken from. */
  migrations: number;
}

/** The measured-over-predicted ratio of the environment's latest migrations, or null without history. */
export async function migrationHistory(control: pg.Pool, environment: string): Promise<HistoryCalibration | null> {
  const history = await rows<{ fixed_ms: number | null; work_ms: number; measured_ms: number }>(control, recentMigrationTimings(environment, MIN_WORK_MS, HISTORY_MIGRATIONS));
  if (history.length === 0) return null;
  const predicted = history.reduce((sum, h) => sum + h.work_ms, 0);
  const measured = history.reduce((sum, h) => sum + Math.max(h.measured_ms - (h.fixed_ms ?? 0), 0), 0);
  const ratio = Math.min(RATIO_BOUNDS[1], Math.max(RATIO_BOUNDS[0], measured / predicted));
  return { ratio: Math.round(ratio * 1000) / 1000, migrations: history.length };
}

export interface BackupHistory {
  /** pg_dump: database bytes per second over the latest backups (null when none recorded a size). */
  bytesPerSecond: number | null;
  /** The longest of the latest backups (external snapshots are not sized). */
  longestMs: number | null;
  backups: number;
}

export async function backupHistory(control: pg.Pool, environment: string, method: string): Promise<BackupHistory> {
  const history = await rows<{ database_bytes: number | null; duration_ms: number }>(control, recentBackupTimings(environment, method, HISTORY_BACKUPS));
  const sized = history.filter((h) => h.database_bytes !== null && h.database_bytes > 0);
  const bytes = sized.reduce((sum, h) => sum + h.database_bytes!, 0);
  const ms = sized.reduce((sum, h) => sum + h.duration_ms, 0);
  return {
    bytesPerSecond: sized.length && ms > 0 ? (bytes / ms) * 1000 : null,
    longestMs: history.length ? Math.max(...history.map((h) => h.duration_ms)) : null,
    backups: history.length,
  };
}
