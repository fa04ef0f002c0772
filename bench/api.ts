// npm run bench:api — GET /v1/runs/:id and GET /v1/runs?limit=50 of the real
// service (auth, validation, serialization, the run's approvals and backup in
// one query) under 50 concurrent connections, against a bare Fastify route
// doing a single-row SELECT with pg on the same database, side by side.
import { Agent } from 'node:http';
import { performance } from 'node:perf_hooks';
import Fastify from 'fastify';
import pg from 'pg';
import { migrateControlDatabase } from '../database/control-migrate.js';
import { listRuns, selectRunView } from '../database/sql/runs.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { benchServer, freePort, summary, timedGet, writeResult } from './support.js';

const CONNECTIONS = 50;
const DURATION_MS = Number(process.env.BENCH_API_SECONDS ?? 5) * 1000;
const WARMUP_MS = 1000;
const TOKEN = 'bench-token-0123456789abcdef';

/** CONNECTIONS loops issuing GETs for DURATION_MS; requests per second and latency percentiles. */
async function load(port: number, path: string, headers: Record<string, string>, durationMs = DURATION_MS) {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const samples: number[] = [];
  const until = performance.now() + durationMs;
  const started = performance.now();
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (performance.now() < until) samples.push(await timedGet(agent, port, path, headers));
  }));
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { requestsPerSecond: Math.round(samples.length / seconds), ...summary(samples) };
}

async function main(): Promise<void> {
  const server = await benchServer();
  const db = await server.createDatabase('api');
  try {
    await migrateControlDatabase(db.url);
    const seed = new pg.Client({ connectionString: db.url });
    await seed.connect();
    await seed.query(`INSERT INTO runs (environment, status, description, requested_by, digest, required_approvals, migrations)
      SELECT 'staging', 'succeeded', 'run ' || g, 'alice', md5(g::text), '{any}', '[{"name":"1700000000000_x","sha256":"ab"}]' FROM generate_series(1, 1000) g`);
    const { rows } = await seed.query('SELECT id FROM runs ORDER BY seq DESC LIMIT 1');
    const runId = rows[0].id as string;
    await seed.end();

    const config = await loadConfig({ DATABASE_URL: db.url, LOG_LEVEL: 'silent', AUTH_TOKENS: JSON.stringify([{ subject: 'bench', roles: ['viewer'], token: TOKEN }]) });
    const app = await buildApp(config, { logger: false });
    const appPort = await freePort();
    await app.listen({ port: appPort, host: '127.0.0.1' });

    // The baseline: the same single-row read, no auth, no schema, no joins.
    const bare = Fastify();
    const pool = new pg.Pool({ connectionString: db.url, max: 10 });
    // DROP DATABASE … WITH (FORCE) at the end may reach a connection pool.end() is still closing.
    pool.on('error', () => undefined);
    bare.get('/runs/:id', async (request) => (await pool.query('SELECT * FROM runs WHERE id = $1', [(request.params as { id: string }).id])).rows[0]);
    // Also the service's own queries, exactly as it sends them (a run with its approvals and latest backup,
    // as a named prepared statement), to separate query cost from HTTP cost.
    bare.get('/runs-same/:id', async (request) => (await pool.query(selectRunView((request.params as { id: string }).id))).rows[0]);
    bare.get('/runs', async () => (await pool.query('SELECT * FROM runs ORDER BY seq DESC LIMIT 50')).rows);
    bare.get('/runs-same', async () => (await pool.query(listRuns({ limit: 51 }))).rows);
    const barePort = await freePort();
    await bare.listen({ port: barePort, host: '127.0.0.1' });

    const auth = { authorization: `Bearer ${TOKEN}` };
    try {
      // Unrecorded warm-up of every path, so that neither side is measured while
      // its code is still being optimised or its pool still connecting.
      for (const [port, path, headers] of [[appPort, `/v1/runs/${runId}`, auth], [appPort, '/v1/runs?limit=50', auth], [barePort, `/runs/${runId}`, {}],
        [barePort, `/runs-same/${runId}`, {}], [barePort, '/runs', {}], [barePort, '/runs-same', {}]] as const) {
        await load(port, path, headers, WARMUP_MS);
      }
      const one = { service: await load(appPort, `/v1/runs/${runId}`, auth), bare: await load(barePort, `/runs/${runId}`, {}) };
      const sameQuery = await load(barePort, `/runs-same/${runId}`, {});
      const page = { service: await load(appPort, '/v1/runs?limit=50', auth), bare: await load(barePort, '/runs', {}) };
      const samePage = await load(barePort, '/runs-same', {});
      const ratio = (x: { service: { requestsPerSecond: number }; bare: { requestsPerSecond: number } }) => Math.round((x.service.requestsPerSecond / x.bare.requestsPerSecond) * 100) / 100;
      await writeResult('api', {
        command: 'npm run bench:api',
        connections: CONNECTIONS,
        secondsPerCase: DURATION_MS / 1000,
        warmupSecondsPerPath: WARMUP_MS / 1000,
        getRun: { ...one, ratio: ratio(one), bareSameQuery: sameQuery, ratioSameQuery: ratio({ service: one.service, bare: sameQuery }) },
        listRuns: { ...page, ratio: ratio(page), bareSameQuery: samePage, ratioSameQuery: ratio({ service: page.service, bare: samePage }) },
        goal: 'ratio >= 0.8, p99 < 20 ms',
        note: 'bare = SELECT * of one row (of 50 rows for the list); bareSameQuery = the service\'s own query as it sends it (approvals and latest backup joined). Load generator and servers share this 2-core machine.',
      });
    } finally {
      await app.close();
      await bare.close();
      await pool.end();
    }
  } finally {
    await db.drop();
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
