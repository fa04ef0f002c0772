import { one, rows, type Queryable } from '../../database/db.js';
import { lintSearchPath, lintTargetRelations } from '../../database/sql/lint-catalog.js';

// What a run's lint starts from (issue 16): the target as it is before the
// run, not the rehearsal copy before each migration. A table the run itself
// creates is new however its name looks, and unqualified names resolve
// through the search_path the migration role gets on the target.

export interface TargetRelation {
  /** 'schema.name', lower-case as the linter folds parsed names. */
  name: string;
  kind: 'table' | 'partitioned table' | 'materialized view';
  /** The planner's estimate (reltuples), 0 when never analysed. */
  rows: number;
  bytes: number;
}

export interface LintBaseline {
  relations: TargetRelation[];
  /** Schemas of the role's search_path that exist, first first ("$user" resolved); [] when none does. */
  searchPath: string[];
}

const KIND: Readonly<Record<string, TargetRelation['kind']>> = { r: 'table', p: 'partitioned table', m: 'materialized view' };

/** `"$user", public` as current_setting() prints it → the schemas PostgreSQL would search, in order. */
export function resolveSearchPath(setting: string, user: string, schemas: readonly string[]): string[] {
  const exists = new Set(schemas.map((s) => s.toLowerCase()));
  const items = setting.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    const unquoted = s.replace(/^"(.*)"$/, '$1').replace(/""/g, '"');
    return (unquoted === '$user' ? user : unquoted).toLowerCase();
  });
  // pg_catalog and pg_temp are searched implicitly; neither holds the application's tables.
  return [...new Set(items.filter((s) => exists.has(s) && s !== 'pg_catalog' && !s.startsWith('pg_temp')))];
}

/** Read-only: the target's relations and the migration role's search_path. */
export async function readLintBaseline(db: Queryable): Promise<LintBaseline> {
  const relations = (await rows<{ name: string; kind: string; rows: number; bytes: number }>(db, lintTargetRelations()))
    .map((r) => ({ name: r.name, kind: KIND[r.kind] ?? 'table', rows: Number(r.rows), bytes: Number(r.bytes) }));
  const path = await one<{ setting: string; user: string; schemas: string[] }>(db, lintSearchPath());
  return { relations, searchPath: resolveSearchPath(path.setting, path.user, path.schemas) };
}
