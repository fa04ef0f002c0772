import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import supertest from 'supertest';
import { migrateControlDatabase } from '../../database/control-migrate.js';
import { buildApp } from '../../src/app.js';
import { loadConfig, type AppConfig } from '../../src/config/index.js';
import { createTestDatabase, type TestDatabase } from './db.js';

/** Test callers: subject -> roles. Tokens are derived from the subject. */
export const SUBJECTS = {
  alice: ['requester'],
  amy: ['requester'],
  bob: ['engineering'],
  ben: ['engineering'],
  carol: ['sre'],
  cora: ['sre'],
  eve: ['engineering', 'sre'],
  rita: ['requester', 'engineering'],
  olga: ['operator'],
  vic: ['viewer'],
  root: ['admin'],
} as const;
export type Subject = keyof typeof SUBJECTS;

export const tokenOf = (subject: Subject) => `test-token-${subject}-0123456789abcdef`;
export const bearer = (subject: Subject) => `Bearer ${tokenOf(subject)}`;

export interface TestApp {
  app: FastifyInstance;
  config: AppConfig;
  control: TestDatabase;
  targets: Record<'staging' | 'production', TestDatabase>;
  /** supertest against the app; add `.set('authorization', bearer('alice'))`. */
  http(): supertest.Agent;
  /** Resolves once all background work (preflight, apply, rollback) has finished. */
  settle(): Promise<void>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  label: string;
  /** Source of a migration-config.js to use instead of the repo's. */
  migrationConfigSource?: string;
  /** Extra or overriding environment variables. */
  env?: Record<string, string>;
  logStream?: { write(line: string): void };
}

/**
 * A fully built app on its own control database (migrated) and two empty
 * target databases (staging, production), dropped again by close().
 */
export async function startTestApp(opts: TestAppOptions): Promise<TestApp> {
  const control = await createTestDatabase(`${opts.label}_ctl`);
  const staging = await createTestDatabase(`${opts.label}_stg`);
  const production = await createTestDatabase(`${opts.label}_prd`);
  await migrateControlDatabase(control.url);
  // DATA_DIR (backups, anything the deployment owns) in a temp dir: a test run
  // never writes into the checkout's .data/.
  const tmp = await mkdtemp(join(tmpdir(), 'sf-app-'));
  const env: Record<string, string> = {
    DATA_DIR: join(tmp, 'data'),
    DATABASE_URL: control.url,
    STAGING_DATABASE_URL: staging.url,
    PRODUCTION_DATABASE_URL: production.url,
    AUTH_TOKENS: JSON.stringify(Object.entries(SUBJECTS).map(([subject, roles]) => ({ subject, roles, token: tokenOf(subject as Subject) }))),
    LOG_LEVEL: opts.logStream ? 'info' : 'silent',
    // Tests that call services.start() must not get a ticking scheduler applying
    // their scheduled runs; scheduler tests tick by hand (or set SCHEDULER on).
    SCHEDULER: 'off',
    ...opts.env,
  };
  if (opts.migrationConfigSource) {
    env.MIGRATION_CONFIG = join(tmp, 'migration-config.js');
    await writeFile(env.MIGRATION_CONFIG, opts.migrationConfigSource);
  }
  const config = await loadConfig(env);
  const app = await buildApp(config, { logStream: opts.logStream });
  return {
    app,
    config,
    control,
    targets: { staging, production },
    http: () => supertest.agent(app.server),
    settle: () => app.services.idle(),
    async close() {
      await app.close();
      await Promise.all([control.drop(), staging.drop(), production.drop()]);
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/**
 * A migration-config.js whose environments (staging, production, and any in `more`: name → URL variable) all
 * read `dir`, need any one approval and run no smoke ETL.
 */
export function dirMigrationConfig(dir: string, more: Record<string, string> = {}): string {
  const envs = { staging: 'STAGING_DATABASE_URL', production: 'PRODUCTION_DATABASE_URL', ...more };
  return `
    const env = (urlEnv) => ({ databaseUrlEnv: urlEnv, migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] }, verify: { smokeEtl: false } });
    export default { environments: { ${Object.entries(envs).map(([name, urlEnv]) => `${name}: env(${JSON.stringify(urlEnv)})`).join(', ')} } };`;
}

/** Cancels every run still active (as olga), so the next test can create one in the same environment. */
export async function cancelActiveRuns(t: TestApp): Promise<void> {
  const active = await t.control.query(`SELECT id FROM runs WHERE status IN ('awaiting_approval', 'approved', 'created', 'preflight_running')`);
  for (const { id } of active.rows) await t.http().post(`/v1/runs/${id}/cancel`).set('authorization', bearer('olga')).send({});
}
