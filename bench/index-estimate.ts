// npm run bench:index-estimate — preflight's index-build estimate against the
// measured build on the same server. A table of BENCH_INDEX_ROWS rows
// (default 2,000,000: id, email text, created_at timestamptz, score int, a
// 64-character bio); for each key set the estimate comes from the code
// preflight runs (a timed read-only sample of the table, services/preflight/
// estimate), the measurement from CREATE INDEX CONCURRENTLY (what a migration
// on a live table uses) and plain CREATE INDEX, median of BENCH_INDEX_ROUNDS
// (default 3). The old model (25 MiB/s over pg_total_relation_size) is shown
// beside it. Goal: estimate within 1.5x of the measured CONCURRENTLY build.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { indexBuildFromSample, plannedIndexWorkers, TID_KEY } from '../services/preflight/estimate/model.js';
import { sampleSettings } from '../database/sql/estimates.js';
import { sampleTable } from '../services/preflight/estimate/sample.js';
import { benchServer, median, writeResult } from './support.js';

const ROWS = Number(process.env.BENCH_INDEX_ROWS ?? 2_000_000);
const ROUNDS = Number(process.env.BENCH_INDEX_ROUNDS ?? 3);
const KEY_SETS = [['email'], ['created_at'], ['score'], ['score', 'created_at']];
const OLD_RATE = 25 * 1024 * 1024;

async function timed(client: pg.Client, sql: string): Promise<number> {
  const started = performance.now();
  await client.query(sql);
  return performance.now() - started;
}

async function main(): Promise<void> {
  const server = await benchServer();
  const db = await server.createDatabase('index_estimate');
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query(`CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL, score int NOT NULL, bio text);
      INSERT INTO accounts SELECT g, 'user' || (random() * 1e9)::bigint || '@example.com', now() - random() * interval '1000 days', (random() * 1000)::int, repeat(md5(g::text), 2)
      FROM generate_series(1, ${ROWS}) g`);
    await client.query('VACUUM ANALYZE accounts');
    const { rows: [facts] } = await client.query<{ pages: number; total: number; version: number; heap: number }>(
      `SELECT (pg_relation_size('accounts') / current_setting('block_size')::int)::int AS pages, pg_relation_size('accounts')::float8 AS heap,
              pg_total_relation_size('accounts')::float8 AS total, current_setting('server_version_num')::int AS version`);
    const { rows: [settings] } = await client.query(sampleSettings());
    const workers = plannedIndexWorkers(facts!.pages, {
      maxParallelMaintenanceWorkers: settings.max_parallel_maintenance_workers, maintenanceWorkMemKb: settings.maintenance_work_mem_kb, minParallelTableScanBlocks: settings.min_parallel_table_scan_blocks,
    });
    const results = [];
    for (const keys of KEY_SETS) {
      const estimates: number[] = [];
      const concurrent: number[] = [];
      const plain: number[] = [];
      let basis = '';
      for (let round = 0; round < ROUNDS; round++) {
        const sample = await sampleTable(client, { schema: 'public', relname: 'accounts', pages: facts!.pages }, [keys, TID_KEY], facts!.version);
        if (!sample) throw new Error('the sample could not be taken');
        const estimate = indexBuildFromSample(sample, keys, 'btree', true, workers);
        estimates.push(estimate.ms);
        basis = estimate.basis;
        concurrent.push(await timed(client, `CREATE INDEX CONCURRENTLY bench_idx ON accounts (${keys.join(', ')})`));
        await client.query('DROP INDEX bench_idx');
        plain.push(await timed(client, `CREATE INDEX bench_idx ON accounts (${keys.join(', ')})`));
        await client.query('DROP INDEX bench_idx');
      }
      const estimatedMs = median(estimates);
      const measuredMs = median(concurrent);
      results.push({
        keys: keys.join(', '),
        estimatedMs: Math.round(estimatedMs),
        measuredConcurrentlyMs: Math.round(measuredMs),
        measuredPlainMs: Math.round(median(plain)),
        ratio: Math.round((estimatedMs / measuredMs) * 100) / 100,
        oldModelMs: Math.round((facts!.total / OLD_RATE) * 1000),
        oldRatio: Math.round(((facts!.total / OLD_RATE) * 1000 / measuredMs) * 100) / 100,
        basis,
      });
    }
    await writeResult('index-estimate', {
      rows: ROWS, rounds: ROUNDS, parallelWorkers: workers, heapMiB: Math.round(facts!.heap / 1048576), totalMiB: Math.round(facts!.total / 1048576), results,
      withinGoal: results.every((r) => r.ratio <= 1.5 && r.ratio >= 1 / 1.5),
    });
  } finally {
    await client.end();
    await db.drop();
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
