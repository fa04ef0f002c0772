// The end schema of a database as `pg_dump --schema-only` prints it, without
// what differs between two identical schemas (the dump's header, its random
// \restrict key, SET lines, comments) and without the migrations table's
// bookkeeping: what "the same end schema" means when the service's apply is
// compared with a raw `node-pg-migrate up` of the same history.
import { runPgTool } from '../../services/pg-tools.js';

export interface DumpOptions {
  /** The migrations table ('schema.table'); it and its id sequence are left out. */
  migrationsTable?: string;
}

export function normaliseDump(text: string): string {
  return text
    .split('\n')
    .filter((line) => !/^--/.test(line) && !/^\\(un)?restrict /.test(line) && !/^SET /.test(line) && !/^SELECT pg_catalog\.set_config\('search_path'/.test(line))
    .map((line) => line.replace(/\s+$/, ''))
    .filter((line) => line !== '')
    .join('\n');
}

/** The normalised schema-only dump of the database at `url`. */
export async function schemaDump(url: string, opts: DumpOptions = {}): Promise<string> {
  const table = opts.migrationsTable ?? 'public.pgmigrations';
  const { stdout } = await runPgTool('pg_dump', ['--schema-only', `--exclude-table=${table}`, `--exclude-table=${table}_id_seq`], url);
  return normaliseDump(stdout);
}

export interface DumpDiff {
  identical: boolean;
  /** Lines only the first dump has, then lines only the second has (multiset difference, in dump order). */
  onlyInFirst: string[];
  onlyInSecond: string[];
}

export function diffDumps(first: string, second: string): DumpDiff {
  const count = (lines: string[]) => {
    const m = new Map<string, number>();
    for (const l of lines) m.set(l, (m.get(l) ?? 0) + 1);
    return m;
  };
  const a = first.split('\n');
  const b = second.split('\n');
  const only = (lines: string[], other: Map<string, number>) => {
    const left = new Map(other);
    return lines.filter((l) => {
      const n = left.get(l) ?? 0;
      if (n > 0) {
        left.set(l, n - 1);
        return false;
      }
      return true;
    });
  };
  return { identical: first === second, onlyInFirst: only(a, count(b)), onlyInSecond: only(b, count(a)) };
}
