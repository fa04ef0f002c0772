// npm run bench:backfill — the same 200,000 rows filled two ways while a
// concurrent session reads the table: once by one whole-table UPDATE (what a
// migration would do), once by the service's backfill executor (keyset batches
// of 1,000, each its own transaction, checkpointed, unthrottled). Reported:
// rows per second of each, and the longest wait of the concurrent reader,
// which locks a random row (SELECT ... FOR UPDATE, as an application write
// would) and also reads one plainly. Median of BENCH_BACKFILL_ROUNDS (3).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { migrateControlDatabase } from '../database/control-migrate.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { benchServer, median, startProbe, writeResult } from './support.js';

const ROWS = Number(process.env.BENCH_BACKFILL_ROWS ?? 200_000);
const ROUNDS = Number(process.env.BENCH_BACKFILL_ROUNDS ?? 3);
const BATCH = 1000;
const TOKEN = 'bench-backfill-operator-0123456789abcdef';
const SET_POWER = `power = (raw->>'power')::int + (raw->'heroes'->0->>'power')::int`;

async function sql(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

/** A fresh table of ROWS rows shaped like hero_snapshots' raw JSON, vacuumed and analysed. */
async function freshTable(url: string, table: string): Promise<void> {
  await sql(url, `DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id bigint PRIMARY KEY, raw jsonb NOT NULL, power int)`);
  await sql(url, `INSERT INTO ${table} (id, raw) SELECT g, jsonb_build_object('power', g % 1000, 'heroes', jsonb_build_array(jsonb_build_object('power', g % 7)))
                  FROM generate_series(1, ${ROWS}) g`);
  await sql(url, `VACUUM ANALYZE ${table}`);
}

const probeQueries = (table: string) => ({
  lockingRead: `SELECT power FROM ${table} WHERE id = $1 FOR UPDATE`,
  plainRead: `SELECT power FROM ${table} WHERE id = $1`,
});
const randomId = () => [1 + Math.floor(Math.random() * ROWS)];

async function wholeTable(url: string) {
  await freshTable(url, 'bench_whole');
  const probe = await startProbe(url, probeQueries('bench_whole'), randomId);
  await new Promise((r) => setTimeout(r, 200));
  const started = performance.now();
  const { rowCount } = await sql(url, `UPDATE bench_whole SET ${SET_POWER}`);
  const ms = performance.now() - started;
  await new Promise((r) => setTimeout(r, 200));
  const reader = await probe.stop();
  if (rowCount !== ROWS) throw new Error(`whole-table UPDATE changed ${rowCount} rows`);
  return { ms: Math.round(ms), rowsPerSecond: Math.round(ROWS / (ms / 1000)), reader };
}

async function backfill(url: string, app: Awaited<ReturnType<typeof buildApp>>) {
  await freshTable(url, 'bench_items');
  const probe = await startProbe(url, probeQueries('bench_items'), randomId);
  const res = await app.inject({
    method: 'POST', url: '/v1/backfills', headers: { authorization: `Bearer ${TOKEN}` },
    payload: { environment: 'bench', name: 'bench-power', batchSize: BATCH },
  });
  if (res.statusCode !== 202) throw new Error(`POST /v1/backfills: ${res.statusCode} ${res.body}`);
  const id = res.json().id as string;
  let job: Record<string, unknown>;
  for (;;) {
    job = (await app.inject({ method: 'GET', url: `/v1/backfills/${id}`, headers: { authorization: `Bearer ${TOKEN}` } })).json();
    if (['succeeded', 'failed', 'cancelled'].includes(job.status as string)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const reader = await probe.stop();
  if (job.status !== 'succeeded' || job.rowsDone !== ROWS) throw new Error(`backfill ended ${job.status} with ${job.rowsDone} rows`);
  const { rows } = await sql(url, `SELECT (SELECT count(*) FROM bench_items WHERE power IS NULL)::int AS missing,
    extract(epoch FROM (finished_at - started_at)) * 1000 AS ms FROM sfm_backfill.backfill_jobs WHERE id = $1`, [id]);
  if (rows[0].missing !== 0) throw new Error(`${rows[0].missing} rows not filled`);
  const ms = Number(rows[0].ms);
  return { ms: Math.round(ms), rowsPerSecond: Math.round(ROWS / (ms / 1000)), batches: job.batches as number, maxBatchMs: job.maxBatchMs as number, reader };
}

async function main(): Promise<void> {
  const server = await benchServer();
  const control = await server.createDatabase('bf_ctl');
  const target = await server.createDatabase('bf_tgt');
  const dir = await mkdtemp(join(tmpdir(), 'sf-bench-backfill-'));
  try {
    await migrateControlDatabase(control.url);
    await writeFile(join(dir, 'bench-power.json'), JSON.stringify({
      table: 'bench_items', keyColumn: 'id', batch: `UPDATE bench_items SET ${SET_POWER} WHERE id BETWEEN $1 AND $2`,
      remaining: 'SELECT count(*) FROM bench_items WHERE power IS NULL',
    }));
    await writeFile(join(dir, 'migration-config.js'), `export default ${JSON.stringify({
      environments: { bench: { databaseUrlEnv: 'BENCH_TARGET_URL', backfillsDir: dir, lockTimeoutMs: 2000, statementTimeoutMs: 600_000 } },
    })};\n`);
    const config = await loadConfig({
      DATABASE_URL: control.url, BENCH_TARGET_URL: target.url, MIGRATION_CONFIG: join(dir, 'migration-config.js'),
      AUTH_TOKENS: JSON.stringify([{ subject: 'bench', roles: ['operator'], token: TOKEN }]), LOG_LEVEL: 'silent', SCHEDULER: 'off', BACKFILLS: 'on',
    });
    const app = await buildApp(config, { logger: false });
    app.services.backfillExecutor.start();
    const whole: Array<Awaited<ReturnType<typeof wholeTable>>> = [];
    const batched: Array<Awaited<ReturnType<typeof backfill>>> = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        whole.push(await wholeTable(target.url));
        batched.push(await backfill(target.url, app));
      }
    } finally {
      await app.close();
    }
    const pick = <T>(xs: T[], f: (x: T) => number) => median(xs.map(f));
    const result = {
      rows: ROWS,
      rounds: ROUNDS,
      batchSize: BATCH,
      backfill: {
        rowsPerSecond: pick(batched, (b) => b.rowsPerSecond),
        ms: pick(batched, (b) => b.ms),
        batches: batched[0]!.batches,
        maxBatchMs: pick(batched, (b) => b.maxBatchMs),
        readerWorstLockWaitMs: pick(batched, (b) => b.reader.worstMs.lockingRead!),
        readerWorstPlainReadMs: pick(batched, (b) => b.reader.worstMs.plainRead!),
        readerQueries: pick(batched, (b) => b.reader.queries),
      },
      wholeTableUpdate: {
        rowsPerSecond: pick(whole, (w) => w.rowsPerSecond),
        ms: pick(whole, (w) => w.ms),
        readerWorstLockWaitMs: pick(whole, (w) => w.reader.worstMs.lockingRead!),
        readerWorstPlainReadMs: pick(whole, (w) => w.reader.worstMs.plainRead!),
        readerQueries: pick(whole, (w) => w.reader.queries),
      },
      throughputRatio: 0,
      worstLockWaitRatio: 0,
      rawRounds: { backfill: batched, wholeTableUpdate: whole },
    };
    result.throughputRatio = Math.round((result.backfill.rowsPerSecond / result.wholeTableUpdate.rowsPerSecond) * 100) / 100;
    result.worstLockWaitRatio = Math.round((result.wholeTableUpdate.readerWorstLockWaitMs / Math.max(1, result.backfill.readerWorstLockWaitMs)) * 10) / 10;
    await writeResult('backfill', result);
  } finally {
    await Promise.all([control.drop(), target.drop()]);
    await rm(dir, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench:backfill failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
