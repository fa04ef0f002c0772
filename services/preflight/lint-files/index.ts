import { collectMigrations, type MigrationSource } from './collect.js';
import { lintByRehearsal } from './rehearse.js';
import { lintSqlFiles } from './static.js';
import { readTarget } from './target.js';
import type { FileFinding, LintRunOptions } from './types.js';

export { LintInputError } from './collect.js';
export type { FileFinding } from './types.js';

export interface LintFilesOptions extends LintRunOptions {
  paths: string[];
  /** A database standing for the target: its catalog is read, and JS/TS migrations are rehearsed on a copy of its schema. Never written. */
  databaseUrl?: string;
  /** Where throw-away databases for a rehearsal may be created; called only when a JS/TS migration needs one. Default: databaseUrl's server. */
  scratchServer?: () => Promise<string>;
  migrationsSchema?: string;
  migrationsTable?: string;
}

export interface LintFilesResult {
  /** The files linted, in order. */
  files: MigrationSource[];
  findings: FileFinding[];
  /** 'static': from the SQL text; 'rehearsal': from the SQL the migrations sent on a throw-away copy. */
  method: 'static' | 'rehearsal';
  notes: string[];
}

/** `sfm lint`: the preflight linter on migration files, without a running service. */
export async function lintFiles(options: LintFilesOptions): Promise<LintFilesResult> {
  let files = await collectMigrations(options.paths);
  const notes: string[] = [];
  const target = options.databaseUrl ? await readTarget(options.databaseUrl, options.migrationsSchema ?? 'public', options.migrationsTable ?? 'pgmigrations') : null;
  if (target) {
    const applied = files.filter((f) => target.applied.has(f.name));
    if (applied.length) notes.push(`Already applied on the database, not linted: ${applied.map((f) => f.name).join(', ')}.`);
    files = files.filter((f) => !target.applied.has(f.name));
  }
  const serverMajor = target?.serverMajor ?? 15;
  if (!files.some((f) => f.kind === 'script')) {
    const findings = await lintSqlFiles(files, {
      tables: target?.tables ?? new Set(),
      searchPath: target?.searchPath ?? null,
      facts: target?.facts,
      assumeTablesExist: target === null,
      serverMajor,
    }, options);
    return { files, findings, method: 'static', notes };
  }
  const serverUrl = options.scratchServer ? await options.scratchServer() : options.databaseUrl;
  if (!serverUrl) throw new Error('a JS/TS migration needs a database to be rehearsed on');
  // With a database standing for the target, what exists before the migrations is its catalog, not the copy's before each file.
  const baseline = target ? { existingTables: target.tables, searchPath: target.searchPath } : undefined;
  const rehearsal = await lintByRehearsal(files, { serverUrl, seedFrom: options.databaseUrl, serverMajor, baseline }, options);
  return { files, findings: rehearsal.findings, method: 'rehearsal', notes: [...notes, ...rehearsal.notes] };
}
