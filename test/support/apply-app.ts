import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from './app.js';

// The app most apply tests run against: staging reads a migrations directory
// of the test's own, needs any one approval, dumps with pg_dump into a backup
// directory of its own and pauses the workers through etl_control; production
// shares the migrations directory. close() drops the app's databases and
// removes both directories.

export interface ApplyDirs {
  /** The migrations directory the test writes its migrations into. */
  dir: string;
  /** Where staging's pg_dump backups go. */
  backups: string;
}

export interface ApplyApp extends ApplyDirs {
  t: TestApp;
  close(): Promise<void>;
}

export interface ApplyAppOptions {
  /** Names the test databases and the temporary directories. */
  label: string;
  /** More staging settings, as migration-config.js source: `verify: { smokeEtl: false, watchMinutes: 0 }`. */
  staging?: string;
  /** The whole migration-config.js source instead, where the environments differ more. */
  config?: (dirs: ApplyDirs) => string;
  env?: Record<string, string>;
}

/** The shared migration-config.js, with `staging` added to staging's settings. */
export function applyConfig({ dir, backups }: ApplyDirs, staging = ''): string {
  return `export default { environments: {
    staging: { databaseUrlEnv: 'STAGING_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)}, approvals: { required: ['any'] },
      backup: { method: 'pg_dump', dir: ${JSON.stringify(backups)} }, workers: { pause: { method: 'sql' }, pauseTimeoutMs: 5000 }${staging ? `,\n      ${staging}` : ''} },
    production: { databaseUrlEnv: 'PRODUCTION_DATABASE_URL', migrationsDir: ${JSON.stringify(dir)} } } };`;
}

export async function startApplyApp(opts: ApplyAppOptions): Promise<ApplyApp> {
  const dir = await mkdtemp(join(tmpdir(), `sf-${opts.label}-migrations-`));
  const backups = await mkdtemp(join(tmpdir(), `sf-${opts.label}-backups-`));
  const dirs = { dir, backups };
  const removeDirs = async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(backups, { recursive: true, force: true });
  };
  let t: TestApp;
  try {
    t = await startTestApp({ label: opts.label, migrationConfigSource: opts.config ? opts.config(dirs) : applyConfig(dirs, opts.staging), env: opts.env });
  } catch (err) {
    await removeDirs();
    throw err;
  }
  return {
    t,
    ...dirs,
    async close() {
      await t.close();
      await removeDirs();
    },
  };
}
