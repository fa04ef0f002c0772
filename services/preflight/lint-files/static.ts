import { lintMigrationDetailed } from '../sql-analysis/lint.js';
import type { SchemaFacts } from '../sql-analysis/schema-facts.js';
import { lineOf, upSection, type MigrationSource } from './collect.js';
import type { FileFinding, LintRunOptions } from './types.js';

export interface StaticStart {
  tables: Set<string>;
  facts: SchemaFacts | undefined;
  /** No catalog: tables the files do not create are assumed to exist, with rows. */
  assumeTablesExist: boolean;
  serverMajor: number;
}

/**
 * Lints .sql migrations from their text, in order, each seeing the schema the
 * ones before it leave behind (tables, column types, NOT NULL checks,
 * functions): node-pg-migrate sends a .sql file's up section as one query
 * inside its transaction, and so does this.
 */
export async function lintSqlFiles(files: MigrationSource[], start: StaticStart, options: LintRunOptions): Promise<FileFinding[]> {
  const out: FileFinding[] = [];
  let { tables, facts } = start;
  for (const file of files) {
    const result = await lintMigrationDetailed({
      migration: file.name,
      file: file.path,
      statements: [upSection(file.text)],
      transactional: true,
      existingTables: tables,
      assumeTablesExist: start.assumeTablesExist,
      facts,
      serverMajor: start.serverMajor,
      source: file.text,
      ruleLevels: options.ruleLevels,
    });
    out.push(...result.findings.map((f) => ({ ...f, path: file.path, line: lineOf(file.text, f.statement) })));
    tables = result.tablesAfter;
    facts = result.factsAfter;
  }
  return out;
}
