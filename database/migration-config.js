// Environments the service applies migrations to. Operators and CI may write
// their own file and point MIGRATION_CONFIG at it. Database URLs never live
// here: each environment names the environment variable that holds its URL.
export default {
  environments: {
    staging: {
      databaseUrlEnv: 'STAGING_DATABASE_URL',
      migrationsDir: 'database/migrations',
      migrationsTable: 'pgmigrations',
      approvals: { required: ['any'] },
      // auto: the last approval schedules the run (the default where no sre approval is required).
      apply: { mode: 'auto' },
      windows: [],
      freezes: [],
      lockTimeoutMs: 2000,
      statementTimeoutMs: 600000,
      lockRetries: { attempts: 10, baseDelayMs: 500, maxDelayMs: 30000 },
      backup: { method: 'pg_dump' }, // dumps go to DATA_DIR/backups (a relative dir resolves under DATA_DIR)
      workers: { pause: { method: 'sql' } },
      // smokeEtl: true requires StarForge's ETL tables; leave it out ('auto') in a project without them:
      // the smoke ETL, the worker pause and the watch are then reported as not configured.
      verify: { tables: [], indexes: [], smokeEtl: true, watchMinutes: 1, degradeFactor: 2 },
      notify: [],
    },
    production: {
      databaseUrlEnv: 'PRODUCTION_DATABASE_URL',
      migrationsDir: 'database/migrations',
      migrationsTable: 'pgmigrations',
      approvals: { required: ['engineering', 'sre'] },
      // confirm (the default for production): an approved run waits for an operator's
      // POST /v1/runs/:id/apply {"confirm": "production"}.
      apply: { mode: 'confirm' },
      // Promotion: uncomment to approve only digests that already succeeded on staging.
      // requires: { environment: 'staging' },
      windows: [{ cron: '0 2 * * 2-4', durationMinutes: 120, timezone: 'Europe/Berlin' }],
      freezes: [{ from: '2026-12-20T00:00:00Z', to: '2027-01-05T00:00:00Z', reason: 'holiday freeze' }],
      lockTimeoutMs: 2000,
      statementTimeoutMs: 600000,
      lockRetries: { attempts: 10, baseDelayMs: 500, maxDelayMs: 30000 },
      backup: { method: 'pg_dump' }, // dumps go to DATA_DIR/backups (a relative dir resolves under DATA_DIR)
      workers: { pause: { method: 'sql' } },
      verify: {
        tables: ['hero_snapshots', 'user_profile_summary', 'user_troops'],
        indexes: [],
        smokeEtl: true,
        watchMinutes: 30,
        degradeFactor: 2,
      },
      notify: [],
    },
  },
};
