// npm run bench:apply — the service's lock-safe migrate applying N small
// migrations against the raw node-pg-migrate CLI applying the same set to an
// identical fresh database (backup and worker pause excluded), side by side.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { migrate } from '../services/apply/migrate.js';
import { listMigrationFiles } from '../services/migrations/files.js';
import { diskSource } from '../services/migrations/source.js';
import { parseMigrationConfig } from '../services/environments/model.js';
import { PROJECT_ROOT } from '../database/paths.js';
import { benchServer, median, writeResult } from './support.js';

const COUNT = Number(process.env.BENCH_APPLY_MIGRATIONS ?? 200);
const ROUNDS = 3;
const CLI = resolve(PROJECT_ROOT, 'node_modules/node-pg-migrate/bin/node-pg-migrate.js');

async function main(): Promise<void> {
  const server = await benchServer();
  const dir = await mkdtemp(join(tmpdir(), 'sf-bench-apply-'));
  try {
    for (let i = 1; i <= COUNT; i++) {
      const name = `${String(1_000_000 + i)}_create-t${i}`;
      await writeFile(join(dir, `${name}.js`), `export const up = (pgm) => { pgm.sql('CREATE TABLE t${i} (id int PRIMARY KEY, note text)'); };\nexport const down = (pgm) => { pgm.sql('DROP TABLE t${i}'); };\n`);
    }
    const files = await listMigrationFiles(dir);
    const env = parseMigrationConfig({ environments: { bench: { databaseUrlEnv: 'X', migrationsDir: dir } } }, PROJECT_ROOT).bench!;
    const service: number[] = [];
    const cli: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const a = await server.createDatabase('apply_cli');
      let started = performance.now();
      const run = spawnSync(process.execPath, [CLI, 'up', '-m', dir, '--no-check-order', '--single-transaction', 'false'], {
        env: { ...process.env, DATABASE_URL: a.url }, encoding: 'utf8',
      });
      cli.push(performance.now() - started);
      await a.drop();
      if (run.status !== 0) throw new Error(`node-pg-migrate CLI failed: ${run.stderr}`);

      const b = await server.createDatabase('apply_service');
      started = performance.now();
      const result = await migrate({
        environment: env, targetUrl: b.url, direction: 'up', migrations: files.map((f) => ({ name: f.name, sha256: f.sha256 })),
        source: async () => diskSource(dir, new Map(files.map((f) => [f.name, f.sha256]))),
        budget: { ...env.lockRetries, deadline: null }, log: () => undefined,
      });
      service.push(performance.now() - started);
      await b.drop();
      if (result.failure || result.steps.length !== COUNT) throw new Error(`service migrate failed: ${JSON.stringify(result.failure)}`);
    }
    const serviceMs = Math.round(median(service));
    const cliMs = Math.round(median(cli));
    await writeResult('apply', {
      command: 'npm run bench:apply',
      migrations: COUNT,
      rounds: ROUNDS,
      serviceMs,
      rawCliMs: cliMs,
      ratio: Math.round((serviceMs / cliMs) * 100) / 100,
      goal: '<= 1.15',
      note: 'service = migrate() with lock_timeout, polled lock, hash-verified loading, one runner call for the set (split per migration by its markers); CLI = node-pg-migrate up in its own process (includes Node start-up, about 0.2 s).',
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
