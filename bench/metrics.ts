// npm run bench:metrics — /metrics latency with 100,000 historical runs in a
// fresh control database, against a bare route measured side by side.
//
// Uses BENCH_DATABASE_URL, else TEST_DATABASE_URL (a server where it may
// CREATE DATABASE), else an embedded PostgreSQL started for the run. Creates
// and drops its own databases. Prints JSON and writes bench/results/metrics.json.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { migrateControlDatabase } from '../database/control-migrate.js';
import { withDatabase } from '../database/db.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { startEmbeddedPostgres, type EmbeddedServer } from '../src/embedded-postgres.js';
import { PROJECT_ROOT } from '../database/paths.js';
import { freePort, summary, timedGet } from './support.js';

const HISTORICAL_RUNS = 100_000;
const BACKLOG_SNAPSHOTS = 20_000;
const PROCESSED_SNAPSHOTS = 200_000;
const ITERATIONS = { baseline: 1000, cached: 1000, uncached: 300 };
const WARMUP = 30;
const TARGET_P99_MS = 50;


/** Runs each statement on its own (VACUUM cannot share a multi-statement query). */
async function admin(url: string, ...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const sql of statements) await client.query(sql);
  } finally {
    await client.end();
  }
}




async function main(): Promise<void> {
  let embedded: EmbeddedServer | undefined;
  let embeddedDir: string | undefined;
  let serverUrl = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (!serverUrl) {
    embeddedDir = await mkdtemp(join(tmpdir(), 'starforge-bench-pg-'));
    const port = await freePort();
    process.stderr.write(`no BENCH_DATABASE_URL/TEST_DATABASE_URL: starting embedded PostgreSQL on 127.0.0.1:${port}\n`);
    embedded = await startEmbeddedPostgres({ dir: embeddedDir, port, persistent: false });
    serverUrl = embedded.url('postgres');
  }
  const suffix = randomBytes(4).toString('hex');
  const names = { control: `sf_bench_ctl_${suffix}`, staging: `sf_bench_stg_${suffix}`, production: `sf_bench_prd_${suffix}` };
  const urls = { control: withDatabase(serverUrl, names.control), staging: withDatabase(serverUrl, names.staging), production: withDatabase(serverUrl, names.production) };
  for (const name of Object.values(names)) await admin(serverUrl, `CREATE DATABASE ${name}`);
  try {
    await migrateControlDatabase(urls.control);
    // 100,000 finished runs over two environments and every terminal status, in one statement.
    await admin(urls.control, `
      INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals, migrations, created_at, updated_at)
      SELECT CASE WHEN g % 3 = 0 THEN 'production' ELSE 'staging' END,
             (ARRAY['succeeded','succeeded','succeeded','failed','cancelled','rejected','rolled_back','preflight_failed','verification_failed','degraded','restored'])[1 + g % 11],
             'historical run ' || g, 'bench', md5(g::text), ARRAY['any'],
             jsonb_build_array(jsonb_build_object('name', '1700000000000_m' || g, 'sha256', md5(g::text))),
             now() - make_interval(mins => g), now() - make_interval(mins => g)
      FROM generate_series(1, ${HISTORICAL_RUNS}) AS g`,
      // What autovacuum does soon after: index-only scans need the visibility map.
      'VACUUM ANALYZE runs');
    // Both targets on the StarForge schema; staging with a processed history and a backlog.
    for (const url of [urls.staging, urls.production]) {
      await runner({ databaseUrl: url, dir: resolve(PROJECT_ROOT, 'database/migrations'), migrationsTable: 'pgmigrations', direction: 'up', count: Infinity, singleTransaction: false, log: () => undefined });
    }
    await admin(urls.staging, `
      INSERT INTO hero_snapshots (user_id, raw, created_at, processed_at)
      SELECT 'u' || g, '{}'::jsonb, now() - make_interval(secs => g), CASE WHEN g > ${BACKLOG_SNAPSHOTS} THEN now() END
      FROM generate_series(1, ${BACKLOG_SNAPSHOTS + PROCESSED_SNAPSHOTS}) AS g;
      INSERT INTO etl_errors (error_type, message, created_at) SELECT 'processing_error', 'bench', now() - make_interval(secs => g) FROM generate_series(1, 5000) AS g`,
      'VACUUM ANALYZE hero_snapshots', 'VACUUM ANALYZE etl_errors');

    const config = await loadConfig({
      DATABASE_URL: urls.control,
      STAGING_DATABASE_URL: urls.staging,
      PRODUCTION_DATABASE_URL: urls.production,
      LOG_LEVEL: 'silent',
      ETL_WORKER: 'off',
      SCHEDULER: 'off',
    });
    const app = await buildApp(config, { logger: false });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as { port: number };
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const run = async (path: string, n: number, before?: () => void) => {
        for (let i = 0; i < WARMUP; i++) {
          before?.();
          await timedGet(agent, port, path);
        }
        const samples: number[] = [];
        for (let i = 0; i < n; i++) {
          before?.();
          samples.push(await timedGet(agent, port, path));
        }
        return summary(samples);
      };
      const baseline = await run('/healthz', ITERATIONS.baseline);
      // Prometheus scrapes every 15-60 s, past the 5 s cache: each real scrape reads
      // the databases. "uncached" forgets the cache before every request to measure that.
      const uncached = await run('/metrics', ITERATIONS.uncached, () => app.services.stateMetrics.invalidate());
      const cached = await run('/metrics', ITERATIONS.cached);
      const result = {
        benchmark: 'metrics',
        date: new Date().toISOString(),
        node: process.version,
        setup: {
          historicalRuns: HISTORICAL_RUNS,
          stagingSnapshots: { backlog: BACKLOG_SNAPSHOTS, processed: PROCESSED_SNAPSHOTS },
          environments: Object.keys(config.environments),
          requests: 'sequential, one kept-alive connection, after a warm-up of 30',
        },
        baselineHealthz: baseline,
        metricsUncached: uncached,
        metricsCached: cached,
        ratioP99UncachedToBaseline: Math.round((uncached.p99Ms / baseline.p99Ms) * 10) / 10,
        targetP99Ms: TARGET_P99_MS,
        meetsTarget: uncached.p99Ms < TARGET_P99_MS,
      };
      const out = JSON.stringify(result, null, 2);
      process.stdout.write(out + '\n');
      await mkdir(join(PROJECT_ROOT, 'bench/results'), { recursive: true });
      await writeFile(join(PROJECT_ROOT, 'bench/results/metrics.json'), out + '\n');
    } finally {
      agent.destroy();
      await app.close();
    }
  } finally {
    for (const name of Object.values(names)) await admin(serverUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    await embedded?.stop();
    if (embeddedDir) await rm(embeddedDir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
