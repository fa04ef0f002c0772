// The pre-apply backup in the run's estimate: the scheduler fits backup and
// migrations together into a window, and the backup is often the larger part
// (15 s of a 23 s apply on a 435 MB database).
import type pg from 'pg';
import { one } from '../../../database/db.js';
import { databaseSize } from '../../../database/sql/estimates.js';
import type { EnvironmentConfig } from '../../environments/model.js';
import { backupHistory } from './history.js';

/** Without history: a conservative pg_dump rate over pg_database_size (indexes included, which the dump only names). */
export const DEFAULT_DUMP_BYTES_PER_SECOND = 20 * 1024 * 1024;
/** pg_dump's start, the checksum and the pg_restore --list verification of a small dump. */
const DUMP_FIXED_MS = 1500;
/** Without history: an external snapshot (create and verify commands). */
const DEFAULT_SNAPSHOT_MS = 120_000;

export interface BackupEstimate {
  method: 'pg_dump' | 'external';
  /** pg_database_size of the target now (pg_dump). */
  databaseBytes: number | null;
  /** The dump rate used (database bytes per second). */
  bytesPerSecond: number | null;
  estimatedMs: number;
  /** history (this environment's recorded backups) or default. */
  calibration: 'history' | 'default';
  basis: string;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

export async function estimateBackup(target: pg.ClientBase, control: pg.Pool, env: EnvironmentConfig): Promise<BackupEstimate> {
  const history = await backupHistory(control, env.name, env.backup.method);
  if (env.backup.method === 'external') {
    const known = history.longestMs !== null;
    const ms = history.longestMs ?? DEFAULT_SNAPSHOT_MS;
    return {
      method: 'external', databaseBytes: null, bytesPerSecond: null, estimatedMs: Math.round(ms), calibration: known ? 'history' : 'default',
      basis: known ? `the longest of the last ${history.backups} external snapshot(s) of ${env.name}` : `a default of ${DEFAULT_SNAPSHOT_MS / 1000} s for an external snapshot (none recorded yet)`,
    };
  }
  const { bytes } = await one<{ bytes: number }>(target, databaseSize());
  const rate = history.bytesPerSecond ?? DEFAULT_DUMP_BYTES_PER_SECOND;
  const calibration = history.bytesPerSecond !== null ? 'history' : 'default';
  return {
    method: 'pg_dump',
    databaseBytes: bytes,
    bytesPerSecond: Math.round(rate),
    estimatedMs: Math.round(DUMP_FIXED_MS + (bytes / rate) * 1000),
    calibration,
    basis: `pg_database_size ${mib(bytes)} at ${mib(rate)}/s (${calibration === 'history' ? `measured over the last ${history.backups} backup(s) of ${env.name}` : 'a conservative default; no backup of this environment recorded yet'}), plus ${DUMP_FIXED_MS / 1000} s to start, checksum and verify`,
  };
}
