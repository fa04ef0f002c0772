import { lintMigrationDetailed, type LintResult } from './lint.js';
import type { LintInput, RunScope } from './types.js';

// A run's migrations are linted in order against one baseline: the relations
// that exist on the target before the run. Whatever an earlier migration of
// the run did is handed on, so a table it created stays new (an empty table
// is cheap to lock, index, rewrite or drop) whatever its name, one it dropped
// stays gone, a renamed one follows its name, and a SET search_path lasts
// for the session, as it does when node-pg-migrate runs them on one connection.

export interface RunBaseline {
  /** 'schema.name' of the relations (tables, partitioned tables, materialized views) before the run. */
  existingTables: ReadonlySet<string>;
  /** The migration role's search_path on the target ("$user" resolved), first schema first; null: `public`. */
  searchPath: readonly string[] | null;
}

export function createRunLinter(baseline: RunBaseline) {
  let existing: ReadonlySet<string> = new Set([...baseline.existingTables].map((t) => t.toLowerCase()));
  let scope: RunScope = { created: new Set(), dropped: new Set(), indexes: new Map(), searchPath: baseline.searchPath, defaultSearchPath: baseline.searchPath };
  return {
    /** Lints the run's next migration and remembers what it did. */
    async lint(input: Omit<LintInput, 'existingTables' | 'run'>): Promise<LintResult> {
      const result = await lintMigrationDetailed({ ...input, existingTables: existing, run: scope });
      existing = result.existingAfter;
      scope = result.runAfter;
      return result;
    },
  };
}

export type RunLinter = ReturnType<typeof createRunLinter>;
