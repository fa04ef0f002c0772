import type pg from 'pg';
import { maybeOne, transaction } from '../../database/db.js';
import { lastDumpCalibration, type RunProgress } from '../../database/sql/progress.js';
import { appendEvent } from '../audit.js';
import type { DumpSample, RestoreSample } from './backup.js';
import { progressReporter, type ProgressReporter } from './progress.js';

/** The environment's last pg_dump: its size and the database's size it was taken from. */
export interface DumpCalibration {
  dumpBytes: number;
  databaseBytes: number;
}

export interface ExpectedDump {
  bytes: number;
  basis: 'previous-backup' | 'database-size';
}

/**
 * What a dump of a `databaseBytes` database is expected to weigh. A custom
 * dump is compressed and holds no index, so it is much smaller than the
 * database (0.1–0.5 of it is common) and the ratio depends on the data: the
 * environment's own last dump/database ratio is the best predictor there is
 * (same schema, same kind of data). Without one, the database size is the
 * upper bound used, so the ratio runs low and the ETA high.
 */
export function expectedDump(databaseBytes: number | null, calibration: DumpCalibration | null): ExpectedDump | null {
  if (databaseBytes === null || databaseBytes <= 0) return null;
  if (calibration && calibration.dumpBytes > 0 && calibration.databaseBytes > 0) {
    const bytes = Math.round(databaseBytes * (calibration.dumpBytes / calibration.databaseBytes));
    if (bytes > 0) return { bytes, basis: 'previous-backup' };
  }
  return { bytes: databaseBytes, basis: 'database-size' };
}

const rate = (done: number, seconds: number) => (seconds > 0 ? done / seconds : 0);
const eta = (done: number, total: number, perSecond: number) => (perSecond > 0 && total > done ? Math.round((total - done) / perSecond) : null);

/** A pg_dump sample as runs.progress shows it: bytes written of the expected dump size, rate, ETA. */
export function backupProgress(sample: DumpSample, calibration: DumpCalibration | null): RunProgress {
  const done = sample.doneBytes;
  if (sample.finished) {
    // pg_dump is done; the file is being checked (sha256, pg_restore --list), which can take a while too.
    return { migration: null, phase: 'backup: verifying', done, total: done, unit: 'bytes', etaSeconds: null, totalBasis: 'file-size' };
  }
  const expected = expectedDump(sample.databaseSizeBytes, calibration);
  // A dump that outgrows its calibrated size (the data compresses worse than last time) falls back
  // to the upper bound; past even that, done is the total: never done > total.
  let total = 0;
  let basis: ExpectedDump['basis'] | undefined;
  if (expected && done <= expected.bytes) ({ bytes: total, basis } = expected);
  else if (sample.databaseSizeBytes !== null && sample.databaseSizeBytes > 0) [total, basis] = [Math.max(done, sample.databaseSizeBytes), 'database-size'];
  const perSecond = rate(done, sample.elapsedSeconds);
  return {
    migration: null, phase: 'backup', done, total, unit: 'bytes', etaSeconds: eta(done, total, perSecond), bytesPerSecond: Math.round(perSecond),
    ...(basis ? { totalBasis: basis } : {}),
    ...(sample.databaseSizeBytes !== null ? { databaseSizeBytes: sample.databaseSizeBytes } : {}),
  };
}

/** A pg_restore sample: the furthest byte of the dump file it has read, of the file's size. */
export function restoreProgress(sample: RestoreSample): RunProgress {
  const total = Math.max(sample.fileSizeBytes ?? 0, sample.doneBytes);
  const perSecond = rate(sample.doneBytes, sample.elapsedSeconds);
  return {
    migration: null, phase: 'restore', done: sample.doneBytes, total, unit: 'bytes', etaSeconds: eta(sample.doneBytes, total, perSecond),
    bytesPerSecond: Math.round(perSecond), totalBasis: 'file-size',
  };
}

export interface TrackBackupOptions {
  control: pg.Pool;
  runId: string;
  environment: string;
  method: 'pg_dump' | 'external';
  actor: string;
  progress: ProgressReporter;
}

export interface BackupHooks {
  onStarted: (info: { databaseSizeBytes: number | null }) => Promise<void>;
  onProgress: (sample: DumpSample) => void;
}

/**
 * Runs `backup` with its progress going to runs.progress (and the metric) and
 * a `backup.started` event (one: a milestone of the timeline, with the size
 * expected; the samples themselves are state, not audit), and clears the
 * progress when it ends, however it ends.
 */
export async function trackBackup<T>(opts: TrackBackupOptions, backup: (hooks: BackupHooks) => Promise<T>): Promise<T> {
  const { control, runId, environment, actor, progress } = opts;
  // Without it the database size is the total: progress must never keep a backup from being taken.
  const row = await maybeOne<{ dump_bytes: number; database_bytes: number }>(control, lastDumpCalibration(environment)).catch(() => null);
  const calibration = row ? { dumpBytes: row.dump_bytes, databaseBytes: row.database_bytes } : null;
  try {
    return await backup({
      onStarted: async ({ databaseSizeBytes }) => {
        const expected = expectedDump(databaseSizeBytes, calibration);
        await transaction(control, (client) => appendEvent(client, {
          runId, environment, type: 'backup.started', actor,
          details: { method: opts.method, databaseSizeBytes, expectedBytes: expected?.bytes ?? null, expectedBasis: expected?.basis ?? null },
        }));
      },
      onProgress: (sample) => progress.tool(backupProgress(sample, calibration)),
    });
  } finally {
    await progress.clear();
  }
}

/** Runs `restore` with pg_restore's progress in runs.progress and the metric, cleared when it ends. */
export async function trackRestore<T>(control: pg.Pool, runId: string, onWrite: (p: RunProgress | null) => void, restore: (onProgress: (sample: RestoreSample) => void) => Promise<T>): Promise<T> {
  const progress = progressReporter(control, runId, onWrite);
  try {
    return await restore((sample) => progress.tool(restoreProgress(sample)));
  } finally {
    await progress.clear();
  }
}
