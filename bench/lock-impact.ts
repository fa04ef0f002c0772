// npm run bench:lock-impact — a reader queries hero_snapshots every 10 ms while
// another session holds a lock for 5 s and a migration needs ACCESS EXCLUSIVE.
// The raw node-pg-migrate CLI waits for the lock with no timeout, and every
// reader queues behind it; the service waits at most lock_timeout, steps
// back and retries. Reported: the reader's worst wait in each case.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { migrate } from '../services/apply/migrate.js';
import { listMigrationFiles } from '../services/migrations/files.js';
import { diskSource } from '../services/migrations/source.js';
import { parseMigrationConfig } from '../services/environments/model.js';
import { PROJECT_ROOT } from '../database/paths.js';
import { benchServer, writeResult } from './support.js';

const HOLD_MS = 5000;
const LOCK_TIMEOUT_MS = 200;
const CLI = resolve(PROJECT_ROOT, 'node_modules/node-pg-migrate/bin/node-pg-migrate.js');

/** Runs `migrateFn` while a holder keeps a lock HOLD_MS and a reader measures its worst wait. */
async function scenario(url: string, migrateFn: () => Promise<void>): Promise<{ worstReaderWaitMs: number; readerQueries: number; migrationMs: number }> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  await setup.query('DROP TABLE IF EXISTS hero_snapshots, pgmigrations; CREATE TABLE hero_snapshots (id int PRIMARY KEY, raw jsonb); INSERT INTO hero_snapshots SELECT g, \'{}\' FROM generate_series(1, 1000) g');
  await setup.end();
  // The long transaction that has read the table: the ALTER must wait for it.
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT count(*) FROM hero_snapshots');
  const reader = new pg.Client({ connectionString: url });
  await reader.connect();
  let worst = 0;
  let queries = 0;
  let reading = true;
  const loop = (async () => {
    while (reading) {
      const t0 = performance.now();
      await reader.query('SELECT count(*) FROM hero_snapshots');
      worst = Math.max(worst, performance.now() - t0);
      queries += 1;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const release = (async () => {
    await new Promise((r) => setTimeout(r, HOLD_MS));
    await holder.query('COMMIT');
  })();
  const started = performance.now();
  await migrateFn();
  const migrationMs = performance.now() - started;
  await release;
  reading = false;
  await loop;
  await holder.end();
  await reader.end();
  return { worstReaderWaitMs: Math.round(worst), readerQueries: queries, migrationMs: Math.round(migrationMs) };
}

async function main(): Promise<void> {
  const server = await benchServer();
  const db = await server.createDatabase('lock_impact');
  const dir = await mkdtemp(join(tmpdir(), 'sf-bench-lock-'));
  try {
    await writeFile(join(dir, '1000_add-power.js'), `export const up = (pgm) => { pgm.sql('ALTER TABLE hero_snapshots ADD COLUMN power int'); };\nexport const down = (pgm) => { pgm.sql('ALTER TABLE hero_snapshots DROP COLUMN power'); };\n`);
    const raw = await scenario(db.url, () => new Promise<void>((done, fail) => {
      const child = spawn(process.execPath, [CLI, 'up', '-m', dir, '--single-transaction', 'false'], { env: { ...process.env, DATABASE_URL: db.url }, stdio: 'ignore' });
      child.on('exit', (code) => (code === 0 ? done() : fail(new Error(`CLI exited ${code}`))));
    }));
    const env = parseMigrationConfig({ environments: { bench: { databaseUrlEnv: 'X', migrationsDir: dir, lockTimeoutMs: LOCK_TIMEOUT_MS, lockRetries: { attempts: 100, baseDelayMs: 200, maxDelayMs: 1000 } } } }, PROJECT_ROOT).bench!;
    const files = await listMigrationFiles(dir);
    let retries = 0;
    const service = await scenario(db.url, async () => {
      const result = await migrate({ environment: env, targetUrl: db.url, direction: 'up', migrations: files.map((f) => ({ name: f.name, sha256: f.sha256 })), source: async () => diskSource(dir, new Map(files.map((f) => [f.name, f.sha256]))), budget: { ...env.lockRetries, deadline: null }, log: () => undefined });
      if (result.failure) throw new Error(result.failure.message);
      retries = result.lockRetries;
    });
    await writeResult('lock-impact', {
      command: 'npm run bench:lock-impact',
      holdMs: HOLD_MS,
      lockTimeoutMs: LOCK_TIMEOUT_MS,
      rawCli: raw,
      service: { ...service, lockRetries: retries },
      goal: `service worst reader wait <= lock_timeout + 100 ms (${LOCK_TIMEOUT_MS + 100} ms)`,
      meetsGoal: service.worstReaderWaitMs <= LOCK_TIMEOUT_MS + 100,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
    await db.drop();
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
