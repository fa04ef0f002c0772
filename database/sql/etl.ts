import type { Query } from '../db.js';

export interface ClaimedSnapshot {
  id: string;
  user_id: string;
  raw: unknown;
  error_count: number;
  created_at: Date;
}

/**
 * Claims a batch of unprocessed snapshots, oldest first, skipping rows another
 * worker holds: two workers never process one snapshot at once.
 */
export const claimSnapshots = (batchSize: number, maxAttempts: number, onlyId: string | null = null): Query => ({
  text: `SELECT id, user_id, raw, error_count, created_at FROM hero_snapshots
         WHERE processed_at IS NULL AND error_count < $2 AND ($3::uuid IS NULL OR id = $3)
         ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
  values: [batchSize, maxAttempts, onlyId],
});

export interface SummaryRow {
  userId: string;
  displayName: string;
  level: number;
  guild: string | null;
  power: number;
  heroCount: number;
  snapshotId: string;
  snapshotAt: Date;
}

/** One statement for the whole batch (one row per user: the caller keeps each user's latest snapshot). */
export const upsertSummaries = (rows: SummaryRow[]): Query => ({
  text: `INSERT INTO user_profile_summary (user_id, display_name, level, guild, power, hero_count, last_snapshot_id, last_snapshot_at, updated_at)
         SELECT * , now() FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::bigint[], $6::int[], $7::uuid[], $8::timestamptz[])
         ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name, level = EXCLUDED.level, guild = EXCLUDED.guild,
           power = EXCLUDED.power, hero_count = EXCLUDED.hero_count, last_snapshot_id = EXCLUDED.last_snapshot_id,
           last_snapshot_at = EXCLUDED.last_snapshot_at, updated_at = now()
         WHERE user_profile_summary.last_snapshot_at IS NULL OR user_profile_summary.last_snapshot_at <= EXCLUDED.last_snapshot_at`,
  values: [rows.map((r) => r.userId), rows.map((r) => r.displayName), rows.map((r) => r.level), rows.map((r) => r.guild),
    rows.map((r) => r.power), rows.map((r) => r.heroCount), rows.map((r) => r.snapshotId), rows.map((r) => r.snapshotAt)],
});

/** A snapshot is the user's full troop list: replace their rows. */
export const deleteTroops = (userIds: string[]): Query => ({
  text: 'DELETE FROM user_troops WHERE user_id = ANY($1::text[])',
  values: [userIds],
});

export const insertTroops = (rows: Array<{ userId: string; type: string; tier: number; count: number }>): Query => ({
  text: `INSERT INTO user_troops (user_id, troop_type, tier, count, updated_at)
         SELECT *, now() FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])`,
  values: [rows.map((r) => r.userId), rows.map((r) => r.type), rows.map((r) => r.tier), rows.map((r) => r.count)],
});

export const markProcessed = (ids: string[]): Query => ({
  text: 'UPDATE hero_snapshots SET processed_at = now() WHERE id = ANY($1::uuid[])',
  values: [ids],
});

/** A failed attempt; `giveUp` marks it processed so it is not claimed again. */
export const markFailed = (id: string, error: string, giveUp: boolean): Query => ({
  text: `UPDATE hero_snapshots SET error_count = error_count + 1, last_error = $2,
           processed_at = CASE WHEN $3 THEN now() ELSE processed_at END
         WHERE id = $1`,
  values: [id, error, giveUp],
});

export const insertEtlError = (snapshotId: string, errorType: string, message: string): Query => ({
  text: 'INSERT INTO etl_errors (snapshot_id, error_type, message) VALUES ($1, $2, $3)',
  values: [snapshotId, errorType, message],
});

export const etlPaused = (): Query => ({ text: 'SELECT paused FROM public.etl_control' });
