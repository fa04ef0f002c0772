// npm run bench:etl — snapshots per second of the reference ETL worker against
// a plain SQL batch upsert of the same rows (no validation, JSON taken apart in
// SQL), both in batches of the same size on the same database, side by side.
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { processBatch } from '../services/etl/worker.js';
import { parseMigrationConfig } from '../services/environments/model.js';
import { PROJECT_ROOT } from '../database/paths.js';
import { benchServer, median, writeResult } from './support.js';

const SNAPSHOTS = Number(process.env.BENCH_ETL_SNAPSHOTS ?? 20_000);
const BATCH = 500;
const ROUNDS = 3;

const SEED = `
  INSERT INTO hero_snapshots (user_id, raw)
  SELECT 'user-' || g, jsonb_build_object(
    'schemaVersion', 1, 'capturedAt', '2026-11-01T00:00:00Z',
    'player', jsonb_build_object('id', 'user-' || g, 'name', 'Player ' || g, 'level', 1 + g % 60, 'guild', 'G' || g % 50),
    'heroes', (SELECT jsonb_agg(jsonb_build_object('id', 'h' || h, 'name', 'Hero', 'level', 1 + h, 'power', 100 * h)) FROM generate_series(1, 5) h),
    'troops', (SELECT jsonb_agg(jsonb_build_object('type', (ARRAY['infantry','archer','cavalry','siege'])[1 + t % 4], 'tier', 1 + t % 5, 'count', t * 10)) FROM generate_series(1, 8) t))
  FROM generate_series(1, $1::int) g`;

const RESET = 'TRUNCATE user_profile_summary, user_troops, etl_errors; UPDATE hero_snapshots SET processed_at = NULL, error_count = 0, last_error = NULL';

// The baseline: the same derived rows written by SQL alone, one batch per statement group.
const BASELINE_BATCH = `
  WITH batch AS (
    SELECT id, user_id, raw, created_at FROM hero_snapshots WHERE processed_at IS NULL ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED
  ), summary AS (
    INSERT INTO user_profile_summary (user_id, display_name, level, guild, power, hero_count, last_snapshot_id, last_snapshot_at, updated_at)
    SELECT user_id, raw->'player'->>'name', (raw->'player'->>'level')::int, raw->'player'->>'guild',
           (SELECT coalesce(sum((h->>'power')::bigint), 0) FROM jsonb_array_elements(raw->'heroes') h), jsonb_array_length(raw->'heroes'), id, created_at, now()
    FROM batch
    ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name, level = EXCLUDED.level, guild = EXCLUDED.guild, power = EXCLUDED.power,
      hero_count = EXCLUDED.hero_count, last_snapshot_id = EXCLUDED.last_snapshot_id, last_snapshot_at = EXCLUDED.last_snapshot_at, updated_at = now()
  ), troops AS (
    INSERT INTO user_troops (user_id, troop_type, tier, count, updated_at)
    SELECT b.user_id, t->>'type', (t->>'tier')::int, sum((t->>'count')::bigint), now()
    FROM batch b, jsonb_array_elements(b.raw->'troops') t GROUP BY b.user_id, t->>'type', (t->>'tier')::int
    ON CONFLICT (user_id, troop_type, tier) DO UPDATE SET count = EXCLUDED.count, updated_at = now()
  )
  UPDATE hero_snapshots s SET processed_at = now() FROM batch WHERE s.id = batch.id`;

async function main(): Promise<void> {
  const server = await benchServer();
  const db = await server.createDatabase('etl');
  const client = new pg.Client({ connectionString: db.url });
  try {
    await runner({ databaseUrl: db.url, dir: resolve(PROJECT_ROOT, 'database/migrations'), migrationsTable: 'pgmigrations', direction: 'up', count: Infinity, singleTransaction: false, log: () => undefined });
    await client.connect();
    await client.query(SEED, [SNAPSHOTS]);
    await client.query('ANALYZE');
    const env = parseMigrationConfig({ environments: { bench: { databaseUrlEnv: 'X', etl: { batchSize: BATCH } } } }, PROJECT_ROOT).bench!;

    const worker: number[] = [];
    const baseline: number[] = [];
    // Alternate the two so neither always runs on a warmer cache.
    for (let round = 0; round < ROUNDS; round++) {
      await client.query(RESET);
      let started = performance.now();
      let processed = 0;
      for (;;) {
        const result = await processBatch(client, env);
        processed += result.processed;
        if (result.claimed === 0) break;
      }
      worker.push(processed / ((performance.now() - started) / 1000));

      await client.query(RESET);
      started = performance.now();
      for (;;) {
        await client.query('BEGIN');
        const result = await client.query(BASELINE_BATCH, [BATCH]);
        await client.query('COMMIT');
        if (!result.rowCount) break;
      }
      baseline.push(SNAPSHOTS / ((performance.now() - started) / 1000));
    }
    const workerRate = Math.round(median(worker));
    const baselineRate = Math.round(median(baseline));
    await writeResult('etl', {
      command: 'npm run bench:etl',
      snapshots: SNAPSHOTS,
      batchSize: BATCH,
      rounds: ROUNDS,
      workerSnapshotsPerSecond: workerRate,
      plainSqlSnapshotsPerSecond: baselineRate,
      ratio: Math.round((workerRate / baselineRate) * 100) / 100,
      note: 'ratio = worker / plain SQL batch upsert of the same rows (higher is better; the worker also validates every snapshot).',
    });
  } finally {
    await client.end().catch(() => undefined);
    await db.drop();
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
