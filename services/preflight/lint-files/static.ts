import { createRunLinter } from '../sql-analysis/lint-run.js';
import type { SchemaFacts } from '../sql-analysis/schema-facts.js';
import { lineOf, upSection, type MigrationSource } from './collect.js';
import type { FileFinding, LintRunOptions } from './types.js';

export interface StaticStart {
  tables: Set<string>;
  /** The database's search_path for the connecting role; null: `public`. */
  searchPath: string[] | null;
  facts: SchemaFacts | undefined;
  /** No catalog: tables the files do not create are assumed to exist, with rows. */
  assumeTablesExist: boolean;
  serverMajor: number;
}

/**
 * Lints .sql migrations from their text, in order, each seeing the schema the
 * ones before it leave behind (tables they created are new, column types, NOT
 * NULL checks, functions): node-pg-migrate sends a .sql file's up section as
 * one query inside its transaction, and so does this.
 */
export async function lintSqlFiles(files: MigrationSource[], start: StaticStart, options: LintRunOptions): Promise<FileFinding[]> {
  const out: FileFinding[] = [];
  let { facts } = start;
  const linter = createRunLinter({ existingTables: start.tables, searchPath: start.searchPath });
  for (const file of files) {
    const result = await linter.lint({
      migration: file.name,
      file: file.path,
      statements: [upSection(file.text)],
      transactional: true,
      assumeTablesExist: start.assumeTablesExist,
      facts,
      serverMajor: start.serverMajor,
      source: file.text,
      ruleLevels: options.ruleLevels,
    });
    out.push(...result.findings.map((f) => ({ ...f, path: file.path, line: lineOf(file.text, f.statement) })));
    facts = result.factsAfter;
  }
  return out;
}
