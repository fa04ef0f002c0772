import { lintMigrationDetailed } from '../sql-analysis/lint.js';
import type { SchemaFacts } from '../sql-analysis/schema-facts.js';
import type { MigrationTrace, StaticMigration } from './types.js';

/**
 * Traces for migrations that were read, not run: each starts from the
 * tables and catalog facts the one before it would leave (as the static
 * linter of `sfm lint` carries them), beginning where the copy stood when the
 * rehearsal stopped. So a table an unrehearsed migration creates is new, not
 * existing, to the ones after it.
 */
export async function staticTraces(
  names: string[],
  read: Record<string, StaticMigration>,
  start: { tables: string[]; facts: SchemaFacts },
  serverMajor: number,
): Promise<Record<string, MigrationTrace>> {
  const out: Record<string, MigrationTrace> = {};
  let tables: ReadonlySet<string> = new Set(start.tables.map((t) => t.toLowerCase()));
  let facts = start.facts;
  for (const name of names) {
    const m = read[name];
    if (!m) continue;
    out[name] = { statements: m.statements, transactional: m.transactional, tablesBefore: [...tables], factsBefore: facts, source: 'static' };
    const after = await lintMigrationDetailed({ migration: name, statements: m.statements, transactional: m.transactional, existingTables: tables, facts, source: '', serverMajor });
    tables = after.tablesAfter;
    facts = after.factsAfter;
  }
  return out;
}
