import pg from 'pg';
import { one, rows } from '../../../database/db.js';
import { appliedMigrationNames, lintServerVersion, migrationsTableExists } from '../../../database/sql/lint-catalog.js';
import { userTables } from '../../../database/sql/preflight.js';
import { readSchemaFacts } from '../catalog-facts.js';
import type { SchemaFacts } from '../sql-analysis/schema-facts.js';

/** What `sfm lint --database-url` reads from the database standing for the target (it writes nothing). */
export interface TargetSnapshot {
  serverMajor: number;
  tables: Set<string>;
  facts: SchemaFacts;
  /** Migration names its migrations table records as applied (empty when there is no such table). */
  applied: Set<string>;
}

export async function connect(url: string, applicationName: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined); // the query in flight reports a lost server
  await client.connect();
  return client;
}

export async function readTarget(url: string, migrationsSchema: string, migrationsTable: string): Promise<TargetSnapshot> {
  const client = await connect(url, 'sfm-lint');
  try {
    const { version_num } = await one<{ version_num: number }>(client, lintServerVersion());
    const tables = new Set((await rows<{ name: string }>(client, userTables())).map((r) => r.name.toLowerCase()));
    const facts = await readSchemaFacts(client);
    const table = `${client.escapeIdentifier(migrationsSchema)}.${client.escapeIdentifier(migrationsTable)}`;
    const { exists } = await one<{ exists: boolean }>(client, migrationsTableExists(table));
    const applied = exists ? new Set((await rows<{ name: string }>(client, appliedMigrationNames(table))).map((r) => r.name)) : new Set<string>();
    return { serverMajor: Math.floor(version_num / 10000), tables, facts, applied };
  } finally {
    await client.end().catch(() => undefined);
  }
}
