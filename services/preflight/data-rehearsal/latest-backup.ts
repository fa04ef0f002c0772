import type pg from 'pg';
import { maybeOne } from '../../../database/db.js';
import { latestVerifiedDump } from '../../../database/sql/data-rehearsal.js';
import type { BackupRecord } from '../../apply/backup.js';
import type { EnvironmentConfig } from '../../environments/model.js';

interface BackupRow {
  id: string;
  method: 'pg_dump';
  location: string;
  size_bytes: number | null;
  sha256: string;
  created_at: Date;
  verified_at: Date;
}

/** The backup a `full` rehearsal restores first: the environment's newest verified pg_dump (null for other modes or none). */
export async function latestVerifiedBackup(control: pg.Pool, env: EnvironmentConfig): Promise<BackupRecord | null> {
  if (env.preflight.data !== 'full' || env.backup.method !== 'pg_dump') return null;
  const row = await maybeOne<BackupRow>(control, latestVerifiedDump(env.name));
  if (!row) return null;
  return {
    id: row.id, method: 'pg_dump', location: row.location, sizeBytes: row.size_bytes, sha256: row.sha256,
    createdAt: row.created_at.toISOString(), verifiedAt: row.verified_at.toISOString(),
  };
}
