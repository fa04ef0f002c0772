// npm run bench:preflight — a full preflight (pg_dump of the target's schema,
// rehearsal up/down/up on a throw-away copy, lint, checks, impact, smoke ETL)
// of 5 pending migrations over a 100-migration history; goal < 5 s.
// BENCH_PREFLIGHT_PENDING=100 rehearses 100 pending ones instead (what the
// per-migration work of the rehearsal costs: fingerprints, the server guard).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runner } from 'node-pg-migrate';
import { migrateControlDatabase } from '../database/control-migrate.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { verifiedLoaders } from '../services/migrations/loader.js';
import { benchServer, median, writeResult } from './support.js';

const HISTORY = 100;
const PENDING = Number(process.env.BENCH_PREFLIGHT_PENDING ?? 5);
const ROUNDS = 3;

async function main(): Promise<void> {
  const server = await benchServer();
  const control = await server.createDatabase('preflight_ctl');
  const target = await server.createDatabase('preflight_tgt');
  const dir = await mkdtemp(join(tmpdir(), 'sf-bench-preflight-'));
  try {
    for (let i = 1; i <= HISTORY + PENDING; i++) {
      const name = `${String(1_000_000 + i)}_step-${i}`;
      await writeFile(join(dir, `${name}.js`), `export const up = (pgm) => { pgm.sql('CREATE TABLE t${i} (id int PRIMARY KEY, note text); CREATE INDEX t${i}_note ON t${i} (note)'); };\nexport const down = (pgm) => { pgm.sql('DROP TABLE t${i}'); };\n`);
    }
    await runner({ databaseUrl: target.url, dir, migrationsTable: 'pgmigrations', direction: 'up', count: HISTORY, singleTransaction: false, log: () => undefined, migrationLoaderStrategies: verifiedLoaders() });
    await migrateControlDatabase(control.url);
    const configFile = join(dir, '..', `sf-bench-preflight-config-${process.pid}.js`);
    await writeFile(configFile, `export default { environments: { staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)} } } };`);
    const config = await loadConfig({
      DATABASE_URL: control.url, STAGING_DATABASE_URL: target.url, LOG_LEVEL: 'silent', MIGRATION_CONFIG: configFile,
      AUTH_TOKENS: JSON.stringify([{ subject: 'bench', roles: ['admin'], token: 'bench-token-0123456789abcdef' }]),
    });
    const app = await buildApp(config, { logger: false });
    const durations: number[] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const { run } = await app.services.runs.create({ environment: 'staging', description: `bench ${round}` }, { subject: 'bench', roles: ['admin'] });
        await app.services.idle();
        const found = await app.services.preflight.report(run.id);
        if (found.report.outcome !== 'passed') throw new Error(`preflight failed: ${JSON.stringify(found.report.findings.filter((f) => f.severity === 'error'))}`);
        durations.push(Date.parse(found.report.finishedAt) - Date.parse(found.report.startedAt));
        await app.services.runs.cancel(run.id, { subject: 'bench', roles: ['admin'] });
      }
    } finally {
      await app.close();
      await rm(configFile, { force: true });
    }
    const middle = median(durations);
    await writeResult('preflight', {
      command: 'npm run bench:preflight',
      history: HISTORY,
      pending: PENDING,
      rounds: ROUNDS,
      medianMs: middle,
      allMs: durations,
      goal: '< 5000 ms',
      meetsGoal: middle < 5000,
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
    await control.drop();
    await target.drop();
    await server.stop();
  }
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
