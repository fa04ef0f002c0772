import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { runner } from 'node-pg-migrate';
import pg from 'pg';
import { processBatch } from '../../services/etl/worker.js';
import { parseSnapshot } from '../../services/etl/snapshot.js';
import { parseMigrationConfig, type EnvironmentConfig } from '../../services/environments/model.js';
import { PROJECT_ROOT } from '../../database/paths.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let env: EnvironmentConfig;

export function snapshotRaw(userId: string, overrides: Record<string, unknown> = {}) {
  return {
    schemaVersion: 1,
    capturedAt: '2026-11-01T10:00:00Z',
    player: { id: userId, name: `Player ${userId}`, level: 12, guild: 'Red' },
    heroes: [{ id: 'a', name: 'A', level: 5, power: 300 }, { id: 'b', name: 'B', level: 2, power: 200 }],
    troops: [{ type: 'infantry', tier: 1, count: 10 }, { type: 'infantry', tier: 1, count: 5 }, { type: 'siege', tier: 3, count: 2 }],
    ...overrides,
  };
}

async function insert(userId: string, raw: unknown): Promise<string> {
  return (await db.query('INSERT INTO hero_snapshots (user_id, raw) VALUES ($1, $2) RETURNING id', [userId, JSON.stringify(raw)])).rows[0].id;
}

async function withClient<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

before(async () => {
  db = await createTestDatabase('etl');
  await runner({ databaseUrl: db.url, dir: resolve(PROJECT_ROOT, 'database/migrations'), migrationsTable: 'pgmigrations', direction: 'up', count: Infinity, singleTransaction: false, log: () => undefined });
  env = parseMigrationConfig({ environments: { staging: { databaseUrlEnv: 'X', etl: { batchSize: 25, maxAttempts: 3 } } } }, PROJECT_ROOT).staging!;
});
after(() => db.drop());
afterEach(async () => {
  await db.query('TRUNCATE hero_snapshots, user_profile_summary, user_troops, etl_errors CASCADE; UPDATE etl_control SET paused = false');
});

describe('snapshot format', () => {
  test('valid snapshots map as database/README.md says; every rule of invalidity is caught', () => {
    const ok = parseSnapshot(snapshotRaw('p1'), 'p1');
    assert.ok(ok.ok);
    assert.deepEqual(ok.value, { displayName: 'Player p1', level: 12, guild: 'Red', power: 500, heroCount: 2, troops: [{ type: 'infantry', tier: 1, count: 15 }, { type: 'siege', tier: 3, count: 2 }] });
    const bad: Array<[unknown, RegExp]> = [
      [snapshotRaw('p1', { schemaVersion: 2 }), /schemaVersion/],
      [snapshotRaw('p1', { player: undefined }), /player must be an object/],
      [snapshotRaw('other'), /does not match user_id/],
      [snapshotRaw('p1', { heroes: 'many' }), /heroes must be an array/],
      [snapshotRaw('p1', { troops: [{ type: 'infantry', tier: 11, count: 1 }] }), /troops\[0\]\.tier/],
      [snapshotRaw('p1', { troops: [{ type: 'infantry', tier: 1, count: -1 }] }), /troops\[0\]\.count/],
      [snapshotRaw('p1', { heroes: [{ id: 'a', name: 'A', level: 1, power: '5' }] }), /heroes\[0\]\.power/],
      [snapshotRaw('p1', { troops: [{ type: '', tier: 1, count: 1 }] }), /troops\[0\]\.type/],
      ['not an object', /raw must be a JSON object/],
    ];
    for (const [raw, message] of bad) {
      const result = parseSnapshot(raw, 'p1');
      assert.equal(result.ok, false, JSON.stringify(raw));
      assert.match((result as { error: string }).error, message);
    }
  });
});

describe('reference ETL worker on real PostgreSQL', () => {
  test('good snapshots upsert the summary and replace troops; the latest snapshot wins', async () => {
    await insert('p1', snapshotRaw('p1'));
    const later = await insert('p1', snapshotRaw('p1', { player: { id: 'p1', name: 'Renamed', level: 13, guild: null }, troops: [{ type: 'archer', tier: 2, count: 7 }] }));
    const result = await withClient((c) => processBatch(c, env));
    assert.deepEqual([result.claimed, result.processed, result.failed], [2, 2, 0]);
    const summary = (await db.query('SELECT display_name, level, guild, power, hero_count, last_snapshot_id FROM user_profile_summary')).rows;
    assert.deepEqual(summary, [{ display_name: 'Renamed', level: 13, guild: null, power: '500', hero_count: 2, last_snapshot_id: later }]);
    const troops = (await db.query('SELECT troop_type, tier, count FROM user_troops ORDER BY troop_type')).rows;
    assert.deepEqual(troops, [{ troop_type: 'archer', tier: 2, count: '7' }], 'the snapshot is the full troop list');
    assert.equal((await db.query('SELECT count(*)::int AS n FROM hero_snapshots WHERE processed_at IS NULL')).rows[0].n, 0);
  });

  test('an invalid snapshot is recorded once and never blocks the others', async () => {
    const bad = await insert('p2', snapshotRaw('p2', { schemaVersion: 9 }));
    await insert('p3', snapshotRaw('p3'));
    const result = await withClient((c) => processBatch(c, env));
    assert.deepEqual([result.processed, result.failed], [1, 1]);
    const row = (await db.query('SELECT error_count, last_error, processed_at IS NOT NULL AS done FROM hero_snapshots WHERE id = $1', [bad])).rows[0];
    assert.deepEqual([row.error_count, row.done], [1, true]);
    assert.match(row.last_error, /schemaVersion/);
    const errors = (await db.query('SELECT snapshot_id, error_type FROM etl_errors')).rows;
    assert.deepEqual(errors, [{ snapshot_id: bad, error_type: 'invalid_snapshot' }]);
    assert.equal((await db.query(`SELECT count(*)::int AS n FROM user_profile_summary WHERE user_id = 'p3'`)).rows[0].n, 1);
  });

  test('a snapshot whose write fails is retried up to maxAttempts, then given up; the rest go through', async () => {
    await db.query('ALTER TABLE user_profile_summary ADD CONSTRAINT level_cap CHECK (level < 100)');
    try {
      const failing = await insert('p4', snapshotRaw('p4', { player: { id: 'p4', name: 'Too high', level: 150, guild: null } }));
      await insert('p5', snapshotRaw('p5'));
      const first = await withClient((c) => processBatch(c, env));
      assert.deepEqual([first.processed, first.failed], [1, 1]);
      let state = (await db.query('SELECT error_count, processed_at FROM hero_snapshots WHERE id = $1', [failing])).rows[0];
      assert.deepEqual([state.error_count, state.processed_at], [1, null], 'still waiting for a retry');
      await withClient((c) => processBatch(c, env));
      await withClient((c) => processBatch(c, env));
      state = (await db.query('SELECT error_count, processed_at FROM hero_snapshots WHERE id = $1', [failing])).rows[0];
      assert.equal(state.error_count, 3);
      assert.ok(state.processed_at, 'given up after maxAttempts (3)');
      const again = await withClient((c) => processBatch(c, env));
      assert.equal(again.claimed, 0);
      const errors = (await db.query(`SELECT count(*)::int AS n FROM etl_errors WHERE error_type = 'processing_error'`)).rows[0].n;
      assert.equal(errors, 3);
    } finally {
      await db.query('ALTER TABLE user_profile_summary DROP CONSTRAINT level_cap');
    }
  });

  test('two workers in parallel never process one snapshot twice', async () => {
    await db.query(`INSERT INTO hero_snapshots (user_id, raw)
      SELECT 'u' || g, jsonb_build_object('schemaVersion', 1, 'player', jsonb_build_object('id', 'u' || g, 'name', 'n', 'level', 1),
        'heroes', '[]'::jsonb, 'troops', jsonb_build_array(jsonb_build_object('type', 'infantry', 'tier', 1, 'count', g)))
      FROM generate_series(1, 600) g`);
    const work = async (): Promise<string[]> => withClient(async (c) => {
      const ids: string[] = [];
      for (;;) {
        const result = await processBatch(c, env);
        ids.push(...result.processedIds);
        if (result.claimed === 0) return ids;
      }
    });
    const [a, b] = await Promise.all([work(), work()]);
    const both = a.filter((id) => b.includes(id));
    assert.deepEqual(both, [], 'no snapshot processed by both workers');
    assert.equal(a.length + b.length, 600);
    assert.ok(a.length > 0 && b.length > 0, `both workers took part (${a.length}/${b.length})`);
    assert.equal((await db.query('SELECT count(*)::int AS n FROM user_troops')).rows[0].n, 600);
  });

  test('a paused ETL claims nothing; resuming processes the backlog', async () => {
    await insert('p6', snapshotRaw('p6'));
    await db.query(`UPDATE etl_control SET paused = true, reason = 'migration', changed_by = 'test'`);
    const paused = await withClient((c) => processBatch(c, env));
    assert.deepEqual([paused.paused, paused.claimed], [true, 0]);
    assert.equal((await db.query('SELECT count(*)::int AS n FROM hero_snapshots WHERE processed_at IS NULL')).rows[0].n, 1);
    await db.query('UPDATE etl_control SET paused = false');
    const resumed = await withClient((c) => processBatch(c, env));
    assert.equal(resumed.processed, 1);
  });
});
