import pg from 'pg';
import { performance } from 'node:perf_hooks';
import { execFileSync } from 'node:child_process';
import { lintSchemaFacts } from './dist/database/sql/lint-catalog.js';
import { relationSignatures, relationObjects } from './dist/database/sql/schema-fingerprint.js';
import { otherObjects } from './dist/database/sql/schema-fingerprint-objects.js';
import { userTables } from './dist/database/sql/preflight.js';
const admin = new pg.Client('postgres://postgres@127.0.0.1:5432/postgres'); await admin.connect();
await admin.query('DROP DATABASE IF EXISTS sf_readcost'); await admin.query('CREATE DATABASE sf_readcost');
const url = 'postgres://postgres@127.0.0.1:5432/sf_readcost';
execFileSync('node', ['node_modules/node-pg-migrate/bin/node-pg-migrate.js', 'up', '-m', '/tmp/realhist/stacks-blockchain-api/migrations', '--no-check-order', '-d', 'DATABASE_URL'], { env: { ...process.env, DATABASE_URL: url }, stdio: 'ignore' });
const c = new pg.Client({ connectionString: url, options: '-c search_path=pg_catalog -c plan_cache_mode=force_generic_plan' }); await c.connect();
const scope = { migrationsSchema: 'public', migrationsTable: 'pgmigrations' };
const qs = { sigs: relationSignatures(scope), others: otherObjects(), rels: relationObjects(scope, null), facts: lintSchemaFacts(), tables: userTables() };
for (const [k, q] of Object.entries(qs)) {
  const name = 'p_' + k;
  let best = 1e9, n = 0;
  for (let i = 0; i < 15; i++) { const t = performance.now(); const r = await c.query({ name, text: q.text, values: q.values }); best = Math.min(best, performance.now() - t); n = r.rows.length; }
  console.log(k, best.toFixed(2), 'ms', n, 'rows');
}
await c.end(); await admin.query('DROP DATABASE sf_readcost'); await admin.end();
