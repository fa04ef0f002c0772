import pg from 'pg';
import { one, rows } from '../../../database/db.js';
import { appliedMigrationNames, lintServerVersion, migrationsTableExists } from '../../../database/sql/lint-catalog.js';
import { readSchemaFacts } from '../catalog-facts.js';
import { readLintBaseline } from '../lint-baseline.js';
import type { SchemaFacts } from '../sql-analysis/schema-facts.js';

/** What `sfm lint --database-url` reads from the database standing for the target (it writes nothing). */
export interface TargetSnapshot {
  serverMajor: number;
  /** Relations (tables, partitioned tables, materialized views) before the migrations: what the lint treats as existing. */
  tables: Set<string>;
  /** The connecting role's search_path there ("$user" resolved, schemas that exist). */
  searchPath: string[];
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
    const baseline = await readLintBaseline(client);
    const tables = new Set(baseline.relations.map((r) => r.name));
    const facts = await readSchemaFacts(client);
    const table = `${client.escapeIdentifier(migrationsSchema)}.${client.escapeIdentifier(migrationsTable)}`;
    const { exists } = await one<{ exists: boolean }>(client, migrationsTableExists(table));
    const applied = exists ? new Set((await rows<{ name: string }>(client, appliedMigrationNames(table))).map((r) => r.name)) : new Set<string>();
    return { serverMajor: Math.floor(version_num / 10000), tables, searchPath: baseline.searchPath, facts, applied };
  } finally {
    await client.end().catch(() => undefined);
  }
}
