// The `ci` environment of the db-bootstrap workflow's migrate-preflight job:
// the PR's migrations against an ephemeral PostgreSQL holding the base
// branch's schema. Preflight only; nothing here is ever applied.
export default {
  environments: {
    ci: {
      databaseUrlEnv: 'CI_DATABASE_URL',
      migrationsDir: 'database/migrations',
      migrationsTable: 'pgmigrations',
      approvals: { required: ['any'] },
      backup: { method: 'pg_dump' }, // dumps go to DATA_DIR/backups (a relative dir resolves under DATA_DIR)
      workers: { pause: { method: 'sql' } },
      verify: { tables: [], indexes: [], smokeEtl: true, watchMinutes: 1, degradeFactor: 2 },
    },
  },
};
