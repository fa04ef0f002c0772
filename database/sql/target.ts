import type { Query } from '../db.js';

export const migrationsTableExists = (schema: string, table: string): Query => ({
  text: 'SELECT to_regclass(format($1::text, $2::text, $3::text)) IS NOT NULL AS exists',
  values: ['%I.%I', schema, table],
});

// Identifiers are validated by the config loader and escaped here.
export const appliedMigrations = (qualifiedTable: string): Query => ({
  text: `SELECT name, run_on FROM ${qualifiedTable} ORDER BY run_on, id`,
});

export const serverVersion = (): Query => ({ text: "SELECT current_setting('server_version') AS version" });

export const ping = (): Query => ({ text: 'SELECT 1' });
