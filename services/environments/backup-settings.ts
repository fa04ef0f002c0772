import { integer, object, string } from './config-values.js';
import { ConfigError } from './config-error.js';

// An environment's `backup`: how the verified backup before every apply is taken.

export type BackupConfig =
  /**
   * dir: absolute, or relative to DATA_DIR (backups belong to the deployment,
   * not to the read-only application directory); null = DATA_DIR/backups.
   * lockWaitTimeoutMs: how long pg_dump waits for each table's ACCESS SHARE
   * lock (--lock-wait-timeout) before the backup, and so the apply, fails
   * instead of queueing behind a session that holds an exclusive lock.
   */
  | { method: 'pg_dump'; dir: string | null; lockWaitTimeoutMs: number }
  /** Commands run with /bin/sh; createCommand prints the snapshot id as its last line. */
  | { method: 'external'; createCommand: string; verifyCommand: string; restoreCommand: string | null };

const DEFAULT_BACKUP_LOCK_WAIT_MS = 60_000;

export function parseBackup(value: unknown, key: string): BackupConfig {
  if (value === undefined) return { method: 'pg_dump', dir: null, lockWaitTimeoutMs: DEFAULT_BACKUP_LOCK_WAIT_MS };
  const b = object(value, key);
  if (b.method === 'pg_dump') {
    object(value, key, ['method', 'dir', 'lockWaitTimeoutMs']);
    return {
      method: 'pg_dump',
      dir: b.dir === undefined ? null : string(b.dir, `${key}.dir`),
      lockWaitTimeoutMs: b.lockWaitTimeoutMs === undefined ? DEFAULT_BACKUP_LOCK_WAIT_MS : integer(b.lockWaitTimeoutMs, `${key}.lockWaitTimeoutMs`, 100, 3_600_000),
    };
  }
  if (b.method === 'external') {
    object(value, key, ['method', 'createCommand', 'verifyCommand', 'restoreCommand']);
    return {
      method: 'external',
      createCommand: string(b.createCommand, `${key}.createCommand`),
      verifyCommand: string(b.verifyCommand, `${key}.verifyCommand`),
      restoreCommand: b.restoreCommand === undefined ? null : string(b.restoreCommand, `${key}.restoreCommand`),
    };
  }
  throw new ConfigError(`${key}.method`, 'must be "pg_dump" or "external"');
}
