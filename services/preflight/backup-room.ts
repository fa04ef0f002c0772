import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { access, open, rm, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type pg from 'pg';
import { maybeOne, one } from '../../database/db.js';
import { lastDumpSize, tableDataBytes } from '../../database/sql/backup-room.js';
import type { EnvironmentConfig } from '../environments/model.js';
import { backupDirectory } from '../apply/backup.js';
import type { Finding, PreflightCheck } from './report.js';

// The apply pauses the workers before it dumps: a backup directory that
// cannot be written, or a disk that cannot hold the dump, must be found by
// preflight, not by the apply halfway through.

/** A dump grows with the data: the last one plus this share is the estimate. */
const GROWTH_MARGIN = 0.25;
/** Below this share of the filesystem left free after the dump, preflight warns. */
const LOW_FREE_SHARE = 0.05;

export interface BackupRoom {
  check: PreflightCheck;
  finding: Finding | null;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** The directory itself when it exists, else the nearest existing ancestor (which mkdir -p would create it in). */
async function existingAncestor(dir: string): Promise<{ path: string; isDir: boolean }> {
  let path = dir;
  for (;;) {
    try {
      return { path, isDir: (await stat(path)).isDirectory() };
    } catch (err) {
      const parent = dirname(path);
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTDIR: a file stands where a parent directory should be; the walk up finds it.
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || parent === path) throw err;
      path = parent;
    }
  }
}

export type Writable = { ok: true; at: string } | { ok: false; reason: string };

/** Whether this process can create files in `dir` (or create `dir`); `at` is where the free space is measured. */
export async function backupDirWritable(dir: string): Promise<Writable> {
  let found;
  try {
    found = await existingAncestor(dir);
  } catch (err) {
    return { ok: false, reason: `cannot be examined (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  if (!found.isDir) return { ok: false, reason: `cannot be created: ${found.path} is not a directory` };
  const notWritable = (code: string) =>
    ({ ok: false, reason: `${found.path === dir ? 'is not writable' : `cannot be created: ${found.path} is not writable`} by this process (${code}${WHY[code] ? `: ${WHY[code]}` : ''})` }) as const;
  try {
    await access(found.path, constants.W_OK | constants.X_OK);
  } catch (err) {
    return notWritable((err as NodeJS.ErrnoException).code ?? 'error');
  }
  // access() answers from the mode bits, and for root it says yes almost
  // everywhere: a read-only mount, /proc or /sys only refuse the write itself.
  // So a file is really created (and removed) where pg_dump would write.
  const probe = join(found.path, `.starforge-write-probe-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const handle = await open(probe, 'wx', 0o600);
    await handle.close();
  } catch (err) {
    return notWritable((err as NodeJS.ErrnoException).code ?? 'error');
  }
  await rm(probe, { force: true }).catch(() => undefined);
  return { ok: true, at: found.path };
}

/** What an errno means for a backup directory, in words. */
const WHY: Record<string, string> = {
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'the file system accepts no new files here',
};

async function estimateDump(client: pg.ClientBase, control: pg.Pool, env: EnvironmentConfig): Promise<{ bytes: number; basis: string }> {
  const last = await maybeOne<{ size_bytes: string }>(control, lastDumpSize(env.name));
  if (last) {
    const size = Number(last.size_bytes);
    return { bytes: Math.ceil(size * (1 + GROWTH_MARGIN)), basis: `the last verified dump of ${env.name} (${formatBytes(size)}) plus ${GROWTH_MARGIN * 100}%` };
  }
  const { bytes } = await one<{ bytes: string }>(client, tableDataBytes());
  return { bytes: Number(bytes), basis: "the target's table data (heap and TOAST; the custom-format dump is usually smaller)" };
}

/**
 * The `backup-space` check of a pg_dump environment: the backup directory
 * (under DATA_DIR unless absolute) can be written by this process, and its
 * filesystem has room for the estimated dump. null for external snapshots.
 */
export async function checkBackupRoom(client: pg.ClientBase, control: pg.Pool, env: EnvironmentConfig, dataDir: string): Promise<BackupRoom | null> {
  const dir = backupDirectory(env, dataDir);
  if (dir === null) return null;
  const fail = (rule: string, detail: string, message: string): BackupRoom => ({
    check: { id: 'backup-space', status: 'fail', detail },
    finding: { rule, severity: 'error', migration: null, statement: null, message, acknowledged: null },
  });

  const where = await backupDirWritable(dir);
  if (!where.ok) {
    return fail('backup-dir-not-writable', `Backup directory ${dir} ${where.reason}.`,
      `The backup directory ${dir} ${where.reason}: the apply could not take its backup. ` +
      'Make it writable by the service user, or set backup.dir (absolute, or relative to DATA_DIR) to a writable volume.');
  }

  const estimate = await estimateDump(client, control, env);
  const fs = await statfs(where.at);
  const available = fs.bavail * fs.bsize;
  const total = fs.blocks * fs.bsize;
  const room = `${formatBytes(available)} free on the filesystem of ${dir}; the dump is estimated at ${formatBytes(estimate.bytes)} from ${estimate.basis}`;
  if (available < estimate.bytes) {
    return fail('backup-space-insufficient', `Not enough room for the backup: ${room}.`,
      `Not enough disk space for the pre-apply backup: ${room}. Free space or point backup.dir at a larger volume before applying.`);
  }
  if (total > 0 && (available - estimate.bytes) / total < LOW_FREE_SHARE) {
    return {
      check: { id: 'backup-space', status: 'warn', detail: `The backup fits, but leaves less than ${LOW_FREE_SHARE * 100}% of the filesystem free: ${room}.` },
      finding: {
        rule: 'backup-space-low', severity: 'warning', migration: null, statement: null, acknowledged: null,
        message: `After the pre-apply backup less than ${LOW_FREE_SHARE * 100}% of the backup filesystem would be free (${room}); old backups can be pruned.`,
      },
    };
  }
  return { check: { id: 'backup-space', status: 'pass', detail: `Backup directory ${dir} is writable; ${room}.` }, finding: null };
}
